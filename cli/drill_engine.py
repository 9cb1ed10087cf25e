"""The drill engine: feeds a scenario's injects through a running stack's intake, plays the simulated responders and
scripted commands, and collects what the scoring needs. Used by `pingan drill run` and `pingan drill replay`.

The stack must run with PINGAN_ESCALATION_TIME_SCALE equal to --speed (e.g. `PINGAN_ESCALATION_TIME_SCALE=60 pingan
up`), so that the plan's minutes pass as fast as the scenario's; /healthz does not report the scale, so the drill
cannot verify it and says so. Every inject is an exercise (reports: status exercise, source drill; CAP: <status>
Exercise), so the notifier records every message in the sandbox (<data dir>/sandbox.log) and sends none, unless
the run is registered live (`--live-participants`) and the recipient is a listed participant.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import typer

from pingan.schemas.drill import Inject, Responder, Scenario, cap_text
from pingan.schemas.taxonomy import Grade

# The CAP severity/urgency/certainty that the default mapping turns into each grade (schemas/adapters/cap_mapping).
CAP_GRADE = {Grade.I: ("Extreme", "Immediate", "Observed"), Grade.II: ("Severe", "Immediate", "Likely"),
             Grade.III: ("Moderate", "Expected", "Likely"), Grade.IV: ("Minor", "Expected", "Possible")}


def _sub(tag: str, value: str, xml: str, count: int = 1) -> str:
    pattern = re.compile(rf"(<(?:\w+:)?{tag}>)\s*[^<]*?\s*(</(?:\w+:)?{tag}>)")
    return pattern.sub(lambda m: f"{m.group(1)}{value}{m.group(2)}", xml, count=count)


def _get(tag: str, xml: str) -> str | None:
    found = re.search(rf"<(?:\w+:)?{tag}>\s*([^<]*?)\s*</(?:\w+:)?{tag}>", xml)
    return found.group(1) if found else None


def cap_sent(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def exercise_cap(xml: str, run_id: str, now: datetime) -> str:
    """The message as an exercise of this run: <status> Exercise, a run-unique identifier and a fresh <sent>."""
    xml = _sub("status", "Exercise", xml)
    identifier = _get("identifier", xml) or "drill"
    xml = _sub("identifier", f"{identifier}.drill-{run_id}", xml)
    xml = _sub("sent", cap_sent(now), xml)
    # The run id rides as a CAP parameter (it becomes the incident's drill_run label): the notifier reads the run's
    # live participants by it.
    # CAP's schema orders an <info>'s children: parameters come before any <resource> and <area>.
    info_end = re.search(r"<(\w+:)?(?:resource|area)[\s>]|</(\w+:)?info>", xml)
    if info_end:
        prefix = info_end.group(1) or info_end.group(2) or ""
        parameter = (f"<{prefix}parameter><{prefix}valueName>drill_run</{prefix}valueName><{prefix}value>{run_id}"
                     f"</{prefix}value></{prefix}parameter>\n  ")
        xml = xml[:info_end.start()] + parameter + xml[info_end.start():]
    return xml


def cap_update(original: str, grade: Grade, n: int, now: datetime, headline: str | None = None) -> str:
    """A CAP Update of `original` (already made an exercise) that the default mapping grades `grade`."""
    sender, identifier, sent = _get("sender", original), _get("identifier", original), _get("sent", original)
    xml = _sub("msgType", "Update", original)
    xml = _sub("identifier", f"{identifier}.u{n}", xml)
    xml = _sub("sent", cap_sent(now), xml)
    xml = re.sub(r"\s*<(?:\w+:)?references>[^<]*</(?:\w+:)?references>", "", xml)
    anchor = re.search(r"<(?:\w+:)?(?:incidents|info)[\s>]", xml)
    reference = f"<references>{sender},{identifier},{sent}</references>\n  "
    xml = xml[:anchor.start()] + reference + xml[anchor.start():] if anchor else \
        re.sub(r"(</(?:\w+:)?alert>)", reference + r"\1", xml)
    severity, urgency, certainty = CAP_GRADE[grade]
    xml = _sub("urgency", urgency, xml, 0)
    xml = _sub("severity", severity, xml, 0)
    xml = _sub("certainty", certainty, xml, 0)
    if headline:
        xml = _sub("headline", headline, xml, 0)
    return xml


def exercise_report(inject: Inject, run_id: str) -> dict[str, Any]:
    assert inject.report is not None
    body = inject.report.model_dump(mode="json", exclude_none=True)
    body.update(status="exercise", source="drill", dedup_key=f"{inject.report.dedup_key or inject.id}:{run_id}")
    body["labels"] = {**body.get("labels", {}), "drill_run": run_id}
    return body


@dataclass
class Tracked:
    inject: str
    incident_id: str | None = None
    cap_xml: str | None = None
    updates: int = 0
    activated_at: datetime | None = None
    pending: list[tuple[datetime, str, str, str]] = field(default_factory=list)  # (when, verb, person, extra JSON)
    notified: int = 0
    acknowledged: int = 0
    state: str = ""


class DrillRun:
    def __init__(self, scenario: Scenario, base: Path, url: str, tokens: dict[str, str], speed: float,
                 echo: Callable[..., Any] = typer.echo, live: bool = False) -> None:
        self.scenario, self.base, self.url, self.speed = scenario, base, url.rstrip("/"), speed
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {tokens['api']}"}, timeout=30)
        self.cap_auth = {"Authorization": f"Bearer {tokens.get('cap', tokens['api'])}",
                         "content-type": "application/xml"}
        self.run_id = uuid.uuid4().hex[:8]
        self.tracked: dict[str, Tracked] = {}
        self.log: list[dict[str, Any]] = []
        self.echo = echo
        self.started_at = datetime.now(UTC)
        self.ended_at: datetime | None = None
        self.interrupted = False
        self.live = live
        self.participants: list[str] = []
        self.sent_injects = 0

    def real(self, minutes: float) -> float:
        return minutes * 60.0 / self.speed

    def note(self, what: str, **details: Any) -> None:
        minute = (datetime.now(UTC) - self.started_at).total_seconds() * self.speed / 60
        self.log.append({"at_min": round(minute, 2), "what": what, **details})
        self.echo(f"t+{minute:6.1f}  {what} {json.dumps(details, ensure_ascii=False)}")

    # -- the run's registration ---------------------------------------------------------------------------------

    def register(self) -> None:
        """Tell the stack about this run before the first inject: the notifier's sandbox rule reads it."""
        response = self.http.post("/v1/drills", json={"run_id": self.run_id, "title": self.scenario.title,
                                                      "live": self.live, "participants": self.scenario.participants})
        if response.status_code == 422:
            raise typer.BadParameter(response.json().get("error", response.text))
        response.raise_for_status()
        self.participants = response.json()["participants"]
        if self.live:
            self.note("live participants", people=self.participants)

    def end(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.http.post(f"/v1/drills/{self.run_id}/end")

    # -- injects ------------------------------------------------------------------------------------------------

    def inject(self, inject: Inject) -> None:
        now = datetime.now(UTC)
        self.sent_injects += 1
        if inject.report is not None:
            response = self.http.post("/v1/incidents", json=exercise_report(inject, self.run_id),
                                      params={"kind": inject.report_kind})
            if inject.report_kind != "report":  # an update or close of an incident already tracked
                self.note(inject.report_kind, inject=inject.id, http=response.status_code)
                return
            self._accepted(inject, response, response.json().get("id") if response.is_success else None)
        elif inject.cap is not None:
            xml = exercise_cap(cap_text(inject.cap, self.base), self.run_id, now)
            response = self.http.post("/v1/intake/cap", content=xml.encode(),
                                      headers=self.cap_auth)
            accepted = response.json().get("accepted", []) if response.is_success else []
            self._accepted(inject, response, accepted[0]["id"] if accepted else None)
            self.tracked[inject.id].cap_xml = xml
        elif inject.grade_change is not None:
            origin = self.tracked.get(inject.grade_change.of)
            if origin is None or origin.cap_xml is None:
                self.note("grade_change skipped: its CAP inject was not accepted", inject=inject.id)
                return
            origin.updates += 1
            xml = cap_update(origin.cap_xml, inject.grade_change.grade, origin.updates, now,
                             inject.grade_change.headline)
            response = self.http.post("/v1/intake/cap", content=xml.encode(),
                                      headers=self.cap_auth)
            self.note("grade_change", inject=inject.id, of=inject.grade_change.of,
                      grade=inject.grade_change.grade.value, http=response.status_code)

    def _accepted(self, inject: Inject, response: httpx.Response, incident_id: str | None) -> None:
        self.note(inject.kind, inject=inject.id, http=response.status_code, incident=incident_id,
                  **({} if response.is_success else {"error": response.text[:300]}))
        tracked = self.tracked.setdefault(inject.id, Tracked(inject.id))
        tracked.incident_id = incident_id

    # -- responders ---------------------------------------------------------------------------------------------

    def _resolve(self, responder: Responder) -> str | None:
        if responder.person:
            return responder.person
        from pingan.handlers.plans.directory import on_duty
        from pingan.handlers.plans.load import load_plans
        from pingan.plans import PLANS_DIR

        directory = load_plans(Path(os.environ.get("PINGAN_PLANS_DIR") or PLANS_DIR)).directory
        roster = directory.rosters.get(responder.roster or "")
        return on_duty(roster, datetime.now(UTC)) if roster else None

    def watch(self) -> None:
        """Find each incident's activation; schedule the responders' commands from it."""
        for tracked in self.tracked.values():
            if tracked.incident_id is None:
                continue
            if tracked.activated_at is None:
                body = self.incident(tracked.incident_id)
                activation = next((a for a in (body or {}).get("timeline", []) if a["kind"] == "plan_activated"),
                                  None)
                if activation is None:
                    continue
                tracked.activated_at = datetime.fromisoformat(activation["at"].replace("Z", "+00:00"))
                resolved = body["incident"]["id"] if body else tracked.incident_id
                # The inject whose proposed id became the incident created it; any other joined it (whichever
                # of them this loop happens to see first).
                created_here = resolved == tracked.incident_id
                joined = None if created_here else next(
                    (o.inject for o in self.tracked.values() if o is not tracked and o.incident_id == resolved), "?")
                tracked.incident_id = resolved
                if joined is not None:
                    self.note("correlated", inject=tracked.inject, joined=joined, incident=resolved)
                    continue
                self.note("plan_activated", inject=tracked.inject, plan=activation.get("plan_id"),
                          level=activation["details"].get("level"))
                for responder in self.scenario.responders:
                    if responder.incident not in (None, tracked.inject) or responder.never_answers:
                        continue
                    person = self._resolve(responder)
                    if person is None:
                        self.note("responder not resolved", responder=responder.label())
                        continue
                    if responder.acknowledges_after_min is not None:
                        when = tracked.activated_at + timedelta(seconds=self.real(responder.acknowledges_after_min))
                        tracked.pending.append((when, "ack", person, "{}"))
                    if responder.confirms_roll_call_after_min is not None:
                        when = tracked.activated_at + timedelta(
                            seconds=self.real(responder.confirms_roll_call_after_min))
                        tracked.pending.append((when, "confirm", person, "{}"))
                for command in self.scenario.commands:
                    if command.incident == tracked.inject:
                        when = tracked.activated_at + timedelta(seconds=self.real(command.after_min))
                        extra = {k: v for k, v in (("to", command.to), ("role", command.role),
                                                   ("reason", command.reason), ("task", command.task))
                                 if v and command.verb != "ack"}
                        tracked.pending.append((when, command.verb, command.by, json.dumps(extra)))
            now = datetime.now(UTC)
            for item in sorted(tracked.pending):
                when, verb, person, extra = item
                if when <= now:
                    tracked.pending.remove(item)
                    response = self.http.post(f"/v1/incidents/{tracked.incident_id}/{verb}",
                                              json={"by": person, **json.loads(extra)})
                    self.note(verb, inject=tracked.inject, by=person, http=response.status_code,
                              **({} if response.is_success else {"error": response.text[:200]}))

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        try:
            response = self.http.get(f"/v1/incidents/{incident_id}")
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    # -- the run ------------------------------------------------------------------------------------------------

    def refresh_counts(self) -> None:
        """Notifications and acknowledgements so far, per incident, for the live table."""
        seen: set[str] = set()
        for tracked in self.tracked.values():
            if tracked.incident_id is None or tracked.activated_at is None or tracked.incident_id in seen:
                continue
            seen.add(tracked.incident_id)
            body = self.incident(tracked.incident_id)
            if body is None:
                continue
            kinds = [a["kind"] for a in body.get("timeline", [])]
            tracked.notified, tracked.acknowledged = kinds.count("notified"), kinds.count("acknowledged")
            tracked.state = body["incident"]["state"]

    def table(self, elapsed_s: float) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        total = self.real(self.scenario.duration_min)
        minute = elapsed_s * self.speed / 60
        table = Table(title=f"{self.scenario.title}  t+{minute:.1f} / {self.scenario.duration_min:g} min  "
                            f"x{self.speed:g}", expand=False)
        for column in ("inject", "incident", "state", "notified", "acks"):
            table.add_column(column)
        shown: set[str] = set()
        for tracked in self.tracked.values():
            if tracked.incident_id in shown:
                continue
            shown.add(tracked.incident_id or tracked.inject)
            table.add_row(tracked.inject, tracked.incident_id or "-", tracked.state or "-", str(tracked.notified),
                          str(tracked.acknowledged))
        opened = sum(1 for t in self.tracked.values() if t.state and t.state != "closed")
        summary = (f"injects {self.sent_injects}/{len(self.scenario.injects)} · incidents open {opened} · "
                   f"notifications {sum(t.notified for t in self.tracked.values())} · "
                   f"acks {sum(t.acknowledged for t in self.tracked.values())}")
        return Group(ProgressBar(total=max(total, 0.001), completed=min(elapsed_s, total), width=60), summary, table)

    def run(self, show_live: bool = False) -> None:
        """Until the scenario's last minute; Ctrl-C stops early and the partial results still come out."""
        injects = sorted(self.scenario.injects, key=lambda i: i.at_min)
        t0 = time.monotonic()
        end = self.real(self.scenario.duration_min)
        live = None
        if show_live:
            from rich.live import Live

            live = Live(self.table(0), refresh_per_second=4, transient=False)
            live.start()
            self.echo = live.console.print
        last_count = 0.0
        try:
            self.register()
            while True:
                elapsed = time.monotonic() - t0
                while injects and self.real(injects[0].at_min) <= elapsed:
                    self.inject(injects.pop(0))
                self.watch()
                if elapsed - last_count >= 1.0:
                    last_count = elapsed
                    self.refresh_counts()
                    if live is not None:
                        live.update(self.table(elapsed))
                # The script ends when its last minute has passed and no responder or command is still due (an
                # incident that took long to activate pushes those later), within twice the scenario's length.
                waiting = any(t.pending for t in self.tracked.values())
                if not injects and elapsed >= end and (not waiting or elapsed >= 2 * end):
                    break
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.interrupted = True
            self.echo("interrupted: writing the partial report")
        finally:
            self.end()
            if live is not None:
                self.refresh_counts()
                live.update(self.table(time.monotonic() - t0))
                live.stop()
        self.ended_at = datetime.now(UTC)

    def results(self) -> dict[str, Any]:
        from pingan.handlers.drills.scoring import overall, score_incident
        from pingan.handlers.plans.load import load_plans
        from pingan.handlers.plans.reader import read_plans
        from pingan.plans import PLANS_DIR

        plans_dir = Path(os.environ.get("PINGAN_PLANS_DIR") or PLANS_DIR)
        plans = load_plans(plans_dir)
        docs = {plan.id: doc for plan, doc in read_plans(plans_dir).plans}
        repo = Path.cwd()

        def locate(plan_id: str, loc: tuple[str | int, ...]) -> str | None:
            doc = docs.get(plan_id)
            if doc is None:
                return None
            try:
                where = doc.where(loc)
            except (KeyError, IndexError, TypeError, ValueError):
                return doc.file
            try:
                return str(Path(where).relative_to(repo))
            except ValueError:
                return where

        expect = {e.incident: e for e in self.scenario.expect}
        incidents = []
        ended = self.ended_at or datetime.now(UTC)
        seen: set[str] = set()
        for inject in self.scenario.injects:
            tracked = self.tracked.get(inject.id)
            if inject.grade_change is not None or inject.report_kind != "report" or tracked is None \
                    or tracked.incident_id is None:
                continue
            body = self.incident(tracked.incident_id)
            if body is None:
                incidents.append({"inject": inject.id, "incident_id": tracked.incident_id, "levels": [],
                                  "failures": [{"kind": "not_stored", "message": "the incident never appeared",
                                                "where": None}], "notes": [], "checks": {"scored": 0, "met": 0},
                                  "figures": {}})
                continue
            if body["incident"]["id"] in seen:
                continue  # a correlated report: scored with the incident it joined
            seen.add(body["incident"]["id"])
            e = expect.get(inject.id)
            incidents.append(score_incident(
                inject.id, body, plans, time_scale=self.speed, ended_at=ended, drill_started_at=self.started_at,
                expect_plan=e.plan if e else None, expect_grade=e.grade if e else None,
                tolerance_min=self.scenario.tolerance_min, locate=locate))
        return {"scenario": self.scenario.title, "scenario_en": self.scenario.title_en, "run_id": self.run_id,
                "url": self.url, "speed": self.speed, "started_at": self.started_at.isoformat(),
                "ended_at": ended.isoformat(), "interrupted": self.interrupted,
                "duration_min": round((ended - self.started_at).total_seconds() * self.speed / 60, 2),
                "injects": [{"id": i.id, "at_min": i.at_min, "kind": i.kind, "note": i.note}
                            for i in self.scenario.injects],
                "log": self.log, "incidents": incidents, "score": overall(incidents)}

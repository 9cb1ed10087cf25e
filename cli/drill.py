"""`pingan drill run SCENARIO`: replay a scripted incident through a running stack's intake, faster than real time.

The stack must run with PINGAN_ESCALATION_TIME_SCALE equal to --speed (e.g. `PINGAN_ESCALATION_TIME_SCALE=60 pingan
up`), so that the plan's minutes pass as fast as the scenario's; /healthz does not report the scale, so the drill
cannot verify it and says so. Every inject is an exercise (reports: status exercise, source drill; CAP: <status>
Exercise), so the notifier records every message in the sandbox (<data dir>/sandbox.log) and sends none, unless
PINGAN_DRILL_LIVE_PARTICIPANTS lists a person.
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
from typing import Annotated, Any

import httpx
import typer

from pingan.schemas.drill import Inject, Responder, Scenario, cap_text, load_scenario
from pingan.schemas.taxonomy import Grade

drill_app = typer.Typer(help="Drills (演练): scripted incidents replayed through the live system, scored.",
                        no_args_is_help=True)

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
    return _sub("sent", cap_sent(now), xml)


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
    return body


@dataclass
class Tracked:
    inject: str
    incident_id: str | None = None
    cap_xml: str | None = None
    updates: int = 0
    activated_at: datetime | None = None
    pending: list[tuple[datetime, str, str]] = field(default_factory=list)  # (when, verb, person)


class DrillRun:
    def __init__(self, scenario: Scenario, base: Path, url: str, tokens: dict[str, str], speed: float,
                 echo: Callable[..., Any] = typer.echo) -> None:
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

    def real(self, minutes: float) -> float:
        return minutes * 60.0 / self.speed

    def note(self, what: str, **details: Any) -> None:
        minute = (datetime.now(UTC) - self.started_at).total_seconds() * self.speed / 60
        self.log.append({"at_min": round(minute, 2), "what": what, **details})
        self.echo(f"t+{minute:6.1f}  {what} {json.dumps(details, ensure_ascii=False)}")

    # -- injects ------------------------------------------------------------------------------------------------

    def inject(self, inject: Inject) -> None:
        now = datetime.now(UTC)
        if inject.report is not None:
            response = self.http.post("/v1/incidents", json=exercise_report(inject, self.run_id))
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
        from pingan.handlers.directory import on_duty
        from pingan.handlers.plan_loader import load_plans
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
                joined = next((o.inject for o in self.tracked.values() if o is not tracked and o.incident_id == resolved
                               and o.activated_at is not None), None)
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
                        tracked.pending.append((when, "ack", person))
                    if responder.confirms_roll_call_after_min is not None:
                        when = tracked.activated_at + timedelta(
                            seconds=self.real(responder.confirms_roll_call_after_min))
                        tracked.pending.append((when, "confirm", person))
            now = datetime.now(UTC)
            for item in sorted(tracked.pending):
                when, verb, person = item
                if when <= now:
                    tracked.pending.remove(item)
                    response = self.http.post(f"/v1/incidents/{tracked.incident_id}/{verb}", json={"by": person})
                    self.note(verb, inject=tracked.inject, by=person, http=response.status_code,
                              **({} if response.is_success else {"error": response.text[:200]}))

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        try:
            response = self.http.get(f"/v1/incidents/{incident_id}")
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    # -- the run ------------------------------------------------------------------------------------------------

    def run(self) -> None:
        injects = sorted(self.scenario.injects, key=lambda i: i.at_min)
        t0 = time.monotonic()
        end = self.real(self.scenario.duration_min)
        try:
            while True:
                elapsed = time.monotonic() - t0
                while injects and self.real(injects[0].at_min) <= elapsed:
                    self.inject(injects.pop(0))
                self.watch()
                if not injects and elapsed >= end:
                    break
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.interrupted = True
            self.echo("interrupted: writing the partial report", err=True)
        self.ended_at = datetime.now(UTC)

    def results(self) -> dict[str, Any]:
        from pingan.handlers.plan_loader import load_plans, read_plans
        from pingan.handlers.scoring import overall, score_incident
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
            if inject.grade_change is not None or tracked is None or tracked.incident_id is None:
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


def _tokens(token: str | None) -> dict[str, str]:
    """Bearer tokens of sources api and cap: PINGAN_INTAKE_TOKENS, then <data dir>/intake-tokens.json; --token
    overrides api (and stands in for cap when no cap token is known)."""
    tokens: dict[str, str] = {}
    path = Path(os.environ.get("PINGAN_DATA_DIR") or "var") / "intake-tokens.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        tokens.update({k: str(v) for k, v in json.loads(path.read_text()).items()})
    for part in (os.environ.get("PINGAN_INTAKE_TOKENS") or "").split(","):
        source, _, value = part.partition("=")
        if value.strip():
            tokens[source.strip()] = value.strip()
    if token:
        tokens["api"] = token
    if "api" not in tokens:
        raise typer.BadParameter(f"no api token: pass --token, set PINGAN_INTAKE_TOKENS or start the stack so "
                                 f"{path} exists")
    return tokens


@drill_app.command("run")
def run(
    scenario_path: Annotated[Path, typer.Argument(metavar="SCENARIO", help="Drill scenario YAML", exists=True,
                                                  dir_okay=False)],
    speed: Annotated[float, typer.Option(min=0.01, help="Plan minutes per real minute; the stack must run with "
                                         "PINGAN_ESCALATION_TIME_SCALE equal to this")] = 60.0,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the scores as JSON here")] = None,
    url: Annotated[str | None, typer.Option(help="The stack's URL; default http://127.0.0.1:$PINGAN_HTTP_PORT")]
    = None,
    token: Annotated[str | None, typer.Option(help="Bearer token of source api; default from the data dir")]
    = None,
    lang: Annotated[str, typer.Option(help="Report language: zh or en")] = "zh",
) -> None:
    """Replay SCENARIO through the stack's intake, simulate the responders, score it, write the reports."""
    from pydantic import ValidationError

    try:
        scenario = load_scenario(scenario_path)
    except ValidationError as exc:
        typer.echo(f"{scenario_path}: {exc}", err=True)
        raise typer.Exit(2) from None
    base = url or f"http://127.0.0.1:{os.environ.get('PINGAN_HTTP_PORT', '8080')}"
    try:
        health = httpx.get(base.rstrip("/") + "/healthz", timeout=5)
        health.raise_for_status()
    except httpx.HTTPError as exc:
        typer.echo(f"the stack at {base} does not answer /healthz ({exc}); start it with "
                   f"PINGAN_ESCALATION_TIME_SCALE={speed:g} pingan up", err=True)
        raise typer.Exit(1) from None
    scale = os.environ.get("PINGAN_ESCALATION_TIME_SCALE")
    if scale is None:
        typer.echo(f"warning: cannot verify the stack's time scale; it must run with "
                   f"PINGAN_ESCALATION_TIME_SCALE={speed:g}", err=True)
    elif abs(float(scale) - speed) > 1e-9:
        typer.echo(f"warning: PINGAN_ESCALATION_TIME_SCALE={scale} here but --speed {speed:g}: plan minutes will not "
                   f"match", err=True)
    drill = DrillRun(scenario, scenario_path.parent, base, _tokens(token), speed)
    typer.echo(f"drill {drill.run_id}: {scenario.title} — {len(scenario.injects)} injects over "
               f"{scenario.duration_min:g} plan minutes ≈ {drill.real(scenario.duration_min):.0f} s at x{speed:g}")
    drill.run()
    results = drill.results()
    if json_out:
        json_out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    if report:
        from pingan.handlers.drill_report import render_html

        report.write_text(render_html(results, lang="en" if lang.startswith("en") else "zh"), encoding="utf-8")
    score = results["score"]
    typer.echo(f"score {score['value']:g}/100: {score['checks_met']}/{score['checks_scored']} checks met, "
               f"{score['failures']} failures" + (" (interrupted: partial)" if drill.interrupted else ""))

"""The drill runner: feeds a scenario's injects through a running stack's intake (HTTP), plays the simulated responders
and scripted commands, and collects what the scoring needs. Used by `pingan drill run` and `pingan drill replay`.

The run registers its speed with the stack (POST /v1/drills) and its exercise incidents keep the drill's clock: their
deadlines, grade-raise and correlation windows pass `speed` times faster than real time, while actual incidents on the
same stack keep real time, so a drill runs against a plain `pingan up` (store/drills.py).
Every inject is an exercise (reports: status exercise, source
drill; CAP: <status> Exercise), so the notifier records every message in the sandbox (<data dir>/sandbox.log) and
sends none, unless the run is registered live and the recipient is a listed participant.

Output goes through callbacks (`echo` for each note, a `Progress` for a live view), so the caller decides how it is
shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from pingan.drill_intake import Routes, TwilioSigner, route_problem
from pingan.handlers.drills.injects import (
    Pending,
    cap_update,
    exercise_cap,
    exercise_report,
    scheduled_commands,
    with_references,
)
from pingan.schemas.drill import PREVIOUS, Inject, Responder, Scenario, cap_text


class DrillRefused(ValueError):
    """The stack refused to register the run (422), e.g. a participant not in its directory."""


class Progress(Protocol):
    """A live view of a run: updated about once a second, closed once the run has ended."""

    def update(self, drill: DrillRun, elapsed_s: float) -> None: ...

    def close(self, drill: DrillRun, elapsed_s: float) -> None: ...


def _silent(*_: Any, **__: Any) -> None:
    return None


def stack_problem(url: str) -> str | None:
    """Why the stack at `url` cannot take a drill (its /healthz does not answer), or None when it answers."""
    try:
        health = httpx.get(url.rstrip("/") + "/healthz", timeout=5)
        health.raise_for_status()
    except httpx.HTTPError as exc:
        return str(exc)
    return None


@dataclass
class Tracked:
    inject: str
    incident_id: str | None = None
    cap_xml: str | None = None
    activated_at: datetime | None = None
    pending: list[Pending] = field(default_factory=list)
    notified: int = 0
    acknowledged: int = 0
    state: str = ""


class DrillRun:
    def __init__(self, scenario: Scenario, base: Path, url: str, tokens: dict[str, str], speed: float,
                 echo: Callable[..., Any] = _silent, live: bool = False, person_token: str | None = None,
                 twilio: TwilioSigner | None = None) -> None:
        """`tokens`: the stack's intake tokens (api, cap, alertmanager), which carry the injects; `twilio`: what
        signs the sms and voice injects as Twilio would; `person_token`: a drill coordinator's personal token
        (pingan tokens create), which registers the run, reads its incidents and plays the simulated responders.
        Commands and reads never go with an intake token."""
        self.scenario, self.base, self.url, self.speed = scenario, base, url.rstrip("/"), speed
        self.person_token = person_token
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers={"Authorization": f"Bearer {person_token}"} if person_token else {})
        self.report_auth = {"Authorization": f"Bearer {tokens['api']}"}
        self.cap_auth = {"Authorization": f"Bearer {tokens.get('cap', tokens['api'])}",
                         "content-type": "application/xml"}
        self.run_id = uuid.uuid4().hex[:8]
        self.tokens, self.twilio = tokens, twilio
        self.routes = Routes(self.url, tokens, self.run_id, twilio)
        # CAP chains: each CAP message as sent, by inject id; each inject's chain (its first message's inject id);
        # the latest message of each chain and of the run, which an Update names in <references>.
        self.cap_sent: dict[str, str] = {}
        self.chain_of: dict[str, str] = {}
        self.chain_last: dict[str, str] = {}
        self.chain_updates: dict[str, int] = {}
        self.last_cap: str | None = None
        self.last_cap_id = ""
        self.tracked: dict[str, Tracked] = {}
        self.log: list[dict[str, Any]] = []
        self.echo = echo
        self.started_at = datetime.now(UTC)
        self.ended_at: datetime | None = None
        self.interrupted = False
        self.live = live
        self.participants: list[str] = []
        self.sent_injects = 0
        self._directory: Any = None  # the plan set's directory, for responders named by roster

    def real(self, minutes: float) -> float:
        return minutes * 60.0 / self.speed

    def note(self, what: str, **details: Any) -> None:
        minute = (datetime.now(UTC) - self.started_at).total_seconds() * self.speed / 60
        self.log.append({"at_min": round(minute, 2), "what": what, **details})
        self.echo(f"t+{minute:6.1f}  {what} {json.dumps(details, ensure_ascii=False)}")

    # -- the run's registration ---------------------------------------------------------------------------------

    def register(self) -> None:
        """Tell the stack about this run before the first inject: the notifier's sandbox rule reads it."""
        if not self.person_token:
            raise DrillRefused("a drill needs a drill coordinator's personal token (pingan tokens create --person P "
                               "--role drill_coordinator; then --token or PINGAN_TOKEN)")
        problem = route_problem(self.scenario.injects, self.tokens, self.twilio)
        if problem:  # the rest of the drill still runs; the report's log says what was left out and why
            self.echo(f"warning: {problem}")
        response = self.http.post("/v1/drills", json={"run_id": self.run_id, "title": self.scenario.title,
                                                      "live": self.live, "participants": self.scenario.participants,
                                                      "speed": self.speed})
        if response.status_code == 422:
            raise DrillRefused(response.json().get("error", response.text))
        if response.status_code in (401, 403):
            raise DrillRefused(f"the stack refused the drill coordinator's token: {response.json().get('detail')}")
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
        if inject.route in ("alertmanager", "sms", "voice"):  # core/drill_intake.py
            problem = route_problem([inject], self.tokens, self.twilio)
            if problem:
                self.note(f"{inject.kind} skipped", inject=inject.id, reason=problem)
                return
            response, incident_id = self.routes.send(inject, now)
            self._accepted(inject, response, incident_id)
        elif inject.report is not None:
            response = self.http.post("/v1/incidents", json=exercise_report(inject, self.run_id),
                                      params={"kind": inject.report_kind}, headers=self.report_auth)
            if inject.report_kind != "report":  # an update or close of an incident already tracked
                self.note(inject.report_kind, inject=inject.id, http=response.status_code)
                return
            self._accepted(inject, response, response.json().get("id") if response.is_success else None)
        elif inject.cap is not None:
            xml = exercise_cap(cap_text(inject.cap, self.base), self.run_id, now)
            ref = inject.cap.references
            if ref is not None:  # an Update or Cancel: it names the message it follows, as that was sent
                named = self.last_cap if ref == PREVIOUS else self.cap_sent.get(ref)
                if named is None:
                    self.note("cap skipped: the message it references was not sent", inject=inject.id, references=ref)
                    return
                xml = with_references(xml, named)
            response = self.http.post("/v1/intake/cap", content=xml.encode(),
                                      headers=self.cap_auth)
            if ref is None:
                accepted = response.json().get("accepted", []) if response.is_success else []
                self._accepted(inject, response, accepted[0]["id"] if accepted else None)
                self.tracked[inject.id].cap_xml = xml
            else:
                self.note("cap", inject=inject.id, references=ref, http=response.status_code,
                          **({} if response.is_success else {"error": response.text[:300]}))
            if response.is_success:
                self._cap_sent(inject.id, xml, self.chain_of.get(self._named_id(ref), inject.id) if ref else inject.id)
        elif inject.grade_change is not None:
            origin = self.tracked.get(inject.grade_change.of)
            if origin is None or origin.cap_xml is None:
                self.note("grade_change skipped: its CAP inject was not accepted", inject=inject.id)
                return
            root = self.chain_of.get(inject.grade_change.of, inject.grade_change.of)
            self.chain_updates[root] = self.chain_updates.get(root, 0) + 1
            # Built on the chain's first message, naming its latest (the last Update), as a warning service does.
            xml = cap_update(self.cap_sent.get(root, origin.cap_xml), inject.grade_change.grade,
                             self.chain_updates[root], now, inject.grade_change.headline, self.chain_last.get(root))
            response = self.http.post("/v1/intake/cap", content=xml.encode(),
                                      headers=self.cap_auth)
            self.note("grade_change", inject=inject.id, of=inject.grade_change.of,
                      grade=inject.grade_change.grade.value, http=response.status_code)
            if response.is_success:
                self._cap_sent(inject.id, xml, root)

    def _named_id(self, ref: str) -> str:
        """The inject a CAP inject's `references` names (`previous`: the last one sent)."""
        return self.last_cap_id if ref == PREVIOUS else ref

    def _cap_sent(self, inject_id: str, xml: str, root: str) -> None:
        self.cap_sent[inject_id], self.chain_of[inject_id] = xml, root
        self.chain_last[root], self.last_cap, self.last_cap_id = xml, xml, inject_id

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

        # Loaded once per run, not at every activation: reading the plan set takes 0.2 s of the inject loop, two plan
        # minutes at x600.
        if self._directory is None:
            self._directory = load_plans(Path(os.environ.get("PINGAN_PLANS_DIR") or PLANS_DIR)).directory
        roster = self._directory.rosters.get(responder.roster or "")
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
                pending, unresolved = scheduled_commands(self.scenario, tracked.inject, tracked.activated_at,
                                                         self.real, self._resolve)
                for label in unresolved:
                    self.note("responder not resolved", responder=label)
                tracked.pending.extend(pending)
            now = datetime.now(UTC)
            for item in sorted(tracked.pending):
                when, verb, person, extra = item
                if when <= now:
                    tracked.pending.remove(item)
                    # The coordinator plays the responder on this run's exercise incident (web/drills.py).
                    response = self.http.post(f"/v1/drills/{self.run_id}/incidents/{tracked.incident_id}/{verb}",
                                              json={"responder": person, **json.loads(extra)})
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
        """Notifications and acknowledgements so far, per incident, for the live view."""
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

    def run(self, progress: Progress | None = None) -> None:
        """Until the scenario's last minute; Ctrl-C stops early and the partial results still come out. Raises
        DrillRefused when the stack will not register the run."""
        injects = sorted(self.scenario.injects, key=lambda i: i.at_min)
        t0 = time.monotonic()
        end = self.real(self.scenario.duration_min)
        last_count = 0.0
        try:
            self.register()
            # The drill's clock starts once the stack has the run: a registration that took seconds (a stack still
            # warming up) made every inject of those seconds due at once, a burst no scenario asked for.
            t0, self.started_at = time.monotonic(), datetime.now(UTC)
            while True:
                elapsed = time.monotonic() - t0
                while injects and self.real(injects[0].at_min) <= elapsed:
                    self.inject(injects.pop(0))
                self.watch()
                if elapsed - last_count >= 1.0:
                    last_count = elapsed
                    self.refresh_counts()
                    if progress is not None:
                        progress.update(self, elapsed)
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
            if progress is not None:
                self.refresh_counts()
                progress.close(self, time.monotonic() - t0)
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
            if inject.chained or inject.report_kind != "report" or tracked is None or tracked.incident_id is None:
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

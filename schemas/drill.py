"""A drill scenario (演练脚本): an incident scripted as it would unfold, replayed through the live intake faster than
real time, with simulated responders and what the coordinator expects.

    title: 台风“海燕”防御演练
    participants: [roster:duty-officer, huang-liping]
    injects:                                   # at plan minutes after the drill starts
      - {id: warning, at_min: 0, cap: {file: typhoon-blue.xml}}          # or cap: {xml: "<alert …>"}
      - {id: hotline-1, at_min: 3, report: {category: …, subtype: …, grade: IV, title: …, dedup_key: hotline}}
      - {id: to-orange, at_min: 15, grade_change: {of: warning, grade: II}}
    responders:
      - {roster: duty-officer, incident: warning, acknowledges_after_min: 3}
      - {person: huang-liping, never_answers: true}
      - {person: xu-jing, incident: warning, confirms_roll_call_after_min: 12}
    expect:
      - {incident: warning, plan: typhoon, grade: II}
      - {incident: hotline-1, plan: auto}     # "let the plan decide"

Every inject goes in as an exercise: a report's status is forced to `exercise` (source `drill`), a CAP message's
<status> is rewritten to Exercise. A grade change is a CAP Update of an earlier CAP inject (the only intake path
that changes an incident's grade; a JSON report with the same dedup key is correlated, not an update); it names the
latest message of that CAP chain in <references>, as a warning service does.

Each inject goes through a real intake route (`via`, from what the inject is when not given):

      - {id: app, at_min: 1, via: api, report: {…}}                  # POST /v1/incidents (the default for a report)
      - {id: probe, at_min: 2, via: alertmanager, report: {…}}       # the report as an Alertmanager webhook alert
      - {id: text, at_min: 3, sms: {phone: "+8613800000001", text: 唐家社区树倒了压住车}}     # signed Twilio SMS
      - {id: call, at_min: 4, voice: {phone: "+8613800000002", digit: "1"}}  # signed Twilio voice call, IVR key 1
      - {id: upd, at_min: 5, cap: {file: update.xml, references: previous}}  # a CAP Update of the last CAP message

A CAP inject's `references` is `previous` (the last CAP message this run sent) or the id of an earlier CAP or
grade_change inject: the message's <references> becomes that message's sender,identifier,sent as it was sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from pingan.schemas.common import Model
from pingan.schemas.directory import ID_PATTERN
from pingan.schemas.incident import IncidentReport
from pingan.schemas.taxonomy import Grade

AUTO_PLAN = "auto"


PREVIOUS = "previous"
Via = Literal["api", "cap", "alertmanager", "sms", "voice"]
# Which routes can carry each kind of inject; the first is the default.
ROUTES: dict[str, tuple[str, ...]] = {"report": ("api", "alertmanager"), "cap": ("cap",), "grade_change": ("cap",),
                                      "sms": ("sms",), "voice": ("voice",)}
PHONE = r"^\+?[0-9]{5,20}$"


class CapInject(Model):
    """A CAP 1.1/1.2 message: inline XML or a file path (relative to the scenario file)."""

    xml: str | None = None
    file: str | None = None
    references: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$", max_length=64, description=(
        "`previous` (the last CAP message the run sent) or an earlier cap/grade_change inject's id: the message's "
        "<references> names that message as it was sent"))

    @model_validator(mode="after")
    def _one(self) -> CapInject:
        if (self.xml is None) == (self.file is None):
            raise ValueError("a cap inject needs exactly one of xml or file")
        return self


class GradeChange(Model):
    of: str = Field(description="Id of the earlier CAP inject whose incident changes grade")
    grade: Grade
    headline: str | None = Field(default=None, max_length=500, description="New CAP headline, if any")


class SmsInject(Model):
    """A citizen's text to the hotline number, posted as Twilio posts it (signed)."""

    phone: str = Field(default="+8613800000000", pattern=PHONE, description="The sender's number")
    text: str = Field(min_length=1, max_length=1600)


class VoiceInject(Model):
    """A call to the hotline's IVR, posted as Twilio posts it (signed): the menu, then the caller's key."""

    phone: str = Field(default="+8613800000000", pattern=PHONE, description="The caller's number")
    digit: str = Field(pattern=r"^[0-5]$", description="1–5 report at once; 0 leaves a recorded message")
    recording_url: str | None = Field(default=None, max_length=2000, description="digit 0: the recording's URL")

    @model_validator(mode="after")
    def _recording(self) -> VoiceInject:
        if (self.digit == "0") != (self.recording_url is not None):
            raise ValueError("a voice inject has recording_url exactly when digit is 0 (a recorded message)")
        return self


KINDS = ("report", "cap", "grade_change", "sms", "voice")


class Inject(Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    at_min: float = Field(ge=0, description="Plan minutes after the drill starts")
    via: Via | None = Field(default=None, description="The intake route: api or alertmanager for a report; cap, "
                            "sms, voice for those injects")
    report: IncidentReport | None = None
    report_kind: Literal["report", "update", "close"] = Field(
        default="report", description="report (new or correlated), update (changes the open incident with the "
        "report's dedup_key) or close")
    cap: CapInject | None = None
    grade_change: GradeChange | None = None
    sms: SmsInject | None = None
    voice: VoiceInject | None = None
    note: str | None = Field(default=None, max_length=500, description="What this inject stands for")

    @model_validator(mode="after")
    def _exactly_one(self) -> Inject:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an inject is exactly one of {', '.join(KINDS)}; got {given or 'none'}")
        routes = ROUTES[given[0]]
        if self.via is not None and self.via not in routes:
            raise ValueError(f"a {given[0]} inject cannot go via {self.via}; via is one of {', '.join(routes)}")
        if self.report_kind != "report" and self.route != "api":
            raise ValueError(f"report_kind {self.report_kind} goes only via api")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def route(self) -> str:
        return self.via or ROUTES[self.kind][0]

    @property
    def chained(self) -> bool:
        """A message about an earlier inject's incident (a grade change, a CAP Update or Cancel), not a new one."""
        return self.grade_change is not None or (self.cap is not None and self.cap.references is not None)


class Responder(Model):
    """A simulated participant: exactly one of person / roster (its member on duty when the drill runs)."""

    person: str | None = Field(default=None, pattern=ID_PATTERN)
    roster: str | None = Field(default=None, pattern=ID_PATTERN)
    incident: str | None = Field(default=None, description="Inject id; unset: every drill incident")
    acknowledges_after_min: float | None = Field(default=None, ge=0, description="After the plan activates")
    confirms_roll_call_after_min: float | None = Field(default=None, ge=0, description="After the plan activates")
    never_answers: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Responder:
        if (self.person is None) == (self.roster is None):
            raise ValueError("a responder names exactly one of person or roster")
        acts = self.acknowledges_after_min is not None or self.confirms_roll_call_after_min is not None
        if self.never_answers and acts:
            raise ValueError("a responder who never answers cannot also acknowledge or confirm")
        if not self.never_answers and not acts:
            raise ValueError("give acknowledges_after_min, confirms_roll_call_after_min or never_answers: true")
        return self

    def label(self) -> str:
        return f"roster:{self.roster}" if self.roster else str(self.person)


class ScriptedCommand(Model):
    """A command a participant gives at a set time after the incident's plan activates: a manual escalation, a
    handover, a close. `drill replay` turns the recorded commands of a past incident into these."""

    incident: str = Field(description="Inject id of the incident")
    after_min: float = Field(ge=0, description="Plan minutes after the plan activates")
    verb: Literal["ack", "escalate", "handover", "close", "confirm", "task"]
    by: str = Field(pattern=ID_PATTERN)
    to: str | None = Field(default=None, pattern=ID_PATTERN, description="handover: the new holder")
    role: str = Field(default="commander", max_length=32)
    reason: str | None = Field(default=None, max_length=2000)
    task: str | None = Field(default=None, pattern=ID_PATTERN, description="task: the plan task reported done")

    @model_validator(mode="after")
    def _needs(self) -> ScriptedCommand:
        if self.verb == "task" and not self.task:
            raise ValueError("a task command needs `task`")
        if self.verb == "handover" and not self.to:
            raise ValueError("a handover needs `to`")
        if self.verb == "close" and not self.reason:
            raise ValueError("a close needs a `reason`")
        return self


class Expectation(Model):
    incident: str = Field(description="Inject id that starts the incident")
    plan: str = Field(default=AUTO_PLAN, description="Plan id, or `auto`: let the plan decide")
    grade: Grade | None = Field(default=None, description="The grade the incident should end the drill at")


class Scenario(Model):
    title: str = Field(min_length=1, max_length=200)
    title_en: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=5000)
    participants: list[str] = Field(default_factory=list, description="Person ids, or roster:<id>")
    injects: list[Inject] = Field(min_length=1)
    responders: list[Responder] = Field(default_factory=list)
    commands: list[ScriptedCommand] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    watch_min: float = Field(default=30, ge=0, le=1440, description="Plan minutes to keep watching after the last "
                             "inject")
    tolerance_min: float = Field(default=1.0, ge=0, description="Lateness still scored as on time (plan minutes)")

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        ids = [i.id for i in self.injects]
        if len(ids) != len(set(ids)):
            raise ValueError(f"inject ids must be unique, got {ids}")
        by_id = {i.id: i for i in self.injects}
        for inject in self.injects:
            change = inject.grade_change
            if change is None:
                continue
            origin = by_id.get(change.of)
            if origin is None or origin.cap is None:
                raise ValueError(f"inject {inject.id}: grade_change.of must name a cap inject (a CAP Update is the "
                                 f"intake path that changes a grade), got {change.of!r}")
            if origin.at_min > inject.at_min:
                raise ValueError(f"inject {inject.id}: comes before the inject {change.of!r} it changes")
        order = sorted(self.injects, key=lambda i: i.at_min)  # the order the runner sends them in
        for n, inject in enumerate(order):
            ref = inject.cap.references if inject.cap else None
            if ref is None:
                continue
            earlier = [i for i in order[:n] if i.cap is not None or i.grade_change is not None]
            if ref == PREVIOUS and not earlier:
                raise ValueError(f"inject {inject.id}: cap.references: previous, but no CAP message is sent before it")
            if ref != PREVIOUS and ref not in {i.id for i in earlier}:
                raise ValueError(f"inject {inject.id}: cap.references must be `previous` or the id of a cap or "
                                 f"grade_change inject sent before it, got {ref!r}")
        starters = {i.id for i in self.injects if not i.chained}
        for ref in [r.incident for r in self.responders if r.incident] + [e.incident for e in self.expect] + \
                [c.incident for c in self.commands]:
            if ref not in starters:
                raise ValueError(f"{ref!r} is not the id of an inject that starts an incident (a report, sms, voice "
                                 f"or cap inject without references)")
        return self

    @property
    def duration_min(self) -> float:
        return max(i.at_min for i in self.injects) + self.watch_min


def load_scenario(path: Path) -> Scenario:
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Scenario.model_validate(data)


def cap_text(inject: CapInject, base: Path) -> str:
    if inject.xml is not None:
        return inject.xml
    path = Path(inject.file or "")
    if not path.is_absolute() and (base / path).exists():
        path = base / path  # relative to the scenario file first, then to the working directory
    return path.read_text(encoding="utf-8")

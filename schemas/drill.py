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
that changes an incident's grade; a JSON report with the same dedup key is correlated, not an update).
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


class CapInject(Model):
    """A CAP 1.1/1.2 message: inline XML or a file path (relative to the scenario file)."""

    xml: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> CapInject:
        if (self.xml is None) == (self.file is None):
            raise ValueError("a cap inject needs exactly one of xml or file")
        return self


class GradeChange(Model):
    of: str = Field(description="Id of the earlier CAP inject whose incident changes grade")
    grade: Grade
    headline: str | None = Field(default=None, max_length=500, description="New CAP headline, if any")


class Inject(Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    at_min: float = Field(ge=0, description="Plan minutes after the drill starts")
    report: IncidentReport | None = None
    report_kind: Literal["report", "update", "close"] = Field(
        default="report", description="report (new or correlated), update (changes the open incident with the "
        "report's dedup_key) or close")
    cap: CapInject | None = None
    grade_change: GradeChange | None = None
    note: str | None = Field(default=None, max_length=500, description="What this inject stands for")

    @model_validator(mode="after")
    def _exactly_one(self) -> Inject:
        given = [k for k in ("report", "cap", "grade_change") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an inject is exactly one of report, cap, grade_change; got {given or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("report", "cap", "grade_change") if getattr(self, k) is not None)


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
        starters = {i.id for i in self.injects if i.grade_change is None}
        for ref in [r.incident for r in self.responders if r.incident] + [e.incident for e in self.expect] + \
                [c.incident for c in self.commands]:
            if ref not in starters:
                raise ValueError(f"{ref!r} is not the id of a report or cap inject")
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

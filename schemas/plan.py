"""The response plan (应急预案): who commands, who acts, who is told, what must be done by when."""

import hashlib
import json
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from pingan.schemas.common import LocalizedText, Model
from pingan.schemas.directory import ID_PATTERN
from pingan.schemas.release import ReleaseChannel, ReleaseKind
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, Subtype


class PlanStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    retired = "retired"


class Role(StrEnum):
    """ICS-style command roles."""

    commander = "commander"  # 总指挥
    deputy = "deputy"  # 副总指挥
    liaison = "liaison"  # 联络
    public_information = "public_information"  # 新闻发布
    operations = "operations"  # 行动
    planning = "planning"  # 计划
    logistics = "logistics"  # 后勤保障


class NotifyChannel(StrEnum):
    console = "console"
    sms = "sms"
    voice = "voice"
    webhook = "webhook"
    email = "email"


AreaLevel = Literal["district", "town", "sub_district", "community", "grid"]
TARGET_KINDS = ("roster", "person", "role", "department", "grid_officer", "area_leader")


class Target(Model):
    """Exactly one of: a roster (its on-duty member), a person, a role of this level, a department, or, by where the
    incident was placed (issue 18), its grid's officers (`{grid_officer: incident}`) or the leaders of its area at a
    level (`{area_leader: community}`). An unplaced incident's area targets reach nobody (and the log says so)."""

    roster: str | None = None
    person: str | None = None
    role: Role | None = None
    department: str | None = None
    grid_officer: Literal["incident"] | None = Field(default=None, description=(
        "The officers of the incident's grid; placed no deeper than a community, of every grid of it"))
    area_leader: AreaLevel | None = Field(default=None, description="The leaders of the incident's area at that level")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Target":
        given = [k for k in TARGET_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a target names exactly one of {', '.join(TARGET_KINDS)}; got {given or 'none'}")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_area_kinds(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when not used, so a plan that names none dumps, and hashes (Plan.content_hash, in every
        # plan_activated entry), exactly as before these kinds existed.
        data = handler(self)
        for kind in ("grid_officer", "area_leader"):
            if data.get(kind) is None:
                data.pop(kind, None)
        return data

    @property
    def by_area(self) -> bool:
        return self.grid_officer is not None or self.area_leader is not None

    def key(self) -> str:
        for kind in TARGET_KINDS:
            value = getattr(self, kind)
            if value is not None:
                return f"{kind}:{getattr(value, 'value', value)}"
        raise AssertionError("unreachable")


class MatchOp(StrEnum):
    eq = "="
    ne = "!="
    re = "=~"
    nre = "!~"


class LabelMatcher(Model):
    """As in Alertmanager: `label`, an operator and a value (a full-match regex for =~ and !~)."""

    label: str = Field(min_length=1, max_length=100)
    op: MatchOp = MatchOp.eq
    value: str = Field(max_length=500)


class UncoveredCells(Model):
    """Cells a catch-all plan lists as deliberately left to it: no specific plan, and why (coverage shows it)."""

    category: Category
    subtypes: list[Subtype] = Field(default_factory=list, description="Empty: every subtype of the category")
    grades: list[Grade] = Field(default_factory=lambda: list(Grade))
    reason: LocalizedText

    @model_validator(mode="after")
    def _subtypes_in_category(self) -> "UncoveredCells":
        wrong = [s.value for s in self.subtypes if s not in SUBTYPES_BY_CATEGORY[self.category]]
        if wrong:
            raise ValueError(f"subtypes {wrong} are not in category {self.category.value!r}")
        return self

    def covers(self, category: Category, subtype: Subtype, grade: Grade) -> bool:
        return (category is self.category and (not self.subtypes or subtype in self.subtypes)
                and grade in self.grades)


class AppliesTo(Model):
    """Which incidents a plan covers. A catch-all (`catch_all: true`, no category) takes every incident that no
    other plan covers, so none goes unheard; it may not narrow, and `uncovered` documents the cells deliberately
    left to it."""

    catch_all: bool = Field(default=False, description="The plan for incidents no other plan covers (at most one)")
    category: Category | None = Field(default=None, description="Required unless catch_all")
    subtypes: list[Subtype] = Field(default_factory=list, description="Empty: every subtype of the category")
    hazards: list[str] = Field(default_factory=list, description="Empty: any hazard")
    areas: list[str] = Field(default_factory=list, description="Area code prefixes; empty: everywhere")
    matchers: list[LabelMatcher] = Field(default_factory=list, description="All must hold")
    uncovered: list[UncoveredCells] = Field(
        default_factory=list, description="catch_all only: cells deliberately left without a specific plan, and why"
    )

    @model_validator(mode="after")
    def _scope(self) -> "AppliesTo":
        if self.catch_all:
            # A catch-all that narrowed would leave some incidents with no plan at all: the very silence it prevents.
            narrowing = [k for k in ("category", "subtypes", "hazards", "areas", "matchers") if getattr(self, k)]
            if narrowing:
                raise ValueError(f"a catch-all plan covers every incident; remove {', '.join(narrowing)}")
            return self
        if self.category is None:
            raise ValueError("category is required (unless catch_all: true)")
        if self.uncovered:
            raise ValueError("uncovered is for the catch-all plan only")
        wrong = [s.value for s in self.subtypes if s not in SUBTYPES_BY_CATEGORY[self.category]]
        if wrong:
            raise ValueError(f"subtypes {wrong} are not in category {self.category.value!r}")
        return self


class NotifyStep(Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    targets: list[Target] = Field(min_length=1)
    channels: list[NotifyChannel] = Field(min_length=1)
    delay_min: float = Field(default=0, ge=0, description="Minutes after activation")
    ack_timeout_min: float | None = Field(
        default=None, gt=0, description="If nobody acknowledges within this, the next step runs at once"
    )
    repeat: int = Field(default=0, ge=0, le=10, description="How many times to repeat while unacknowledged")
    roll_call: bool = Field(default=False, description="Every recipient must confirm (点名)")
    template: LocalizedText = Field(
        description="Message text; placeholders: {id} {title} {grade} {grade_name} {area} {category} {subtype} "
        "{plan} {level} {role}"
    )


class Task(Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    title: LocalizedText
    owner: Target
    deadline_min: float = Field(gt=0, description="Minutes after activation, e.g. 30 to report up to the city")


class Level(Model):
    grade: Grade
    response_level: str = Field(min_length=1, max_length=32, description="e.g. 一级响应")
    command: dict[Role, Target] = Field(default_factory=dict, description="The ICS command chain at this level")
    departments: list[str] = Field(default_factory=list, description="Department ids activated")
    notify: list[NotifyStep] = Field(min_length=1)
    tasks: list[Task] = Field(default_factory=list)
    areas: list[str] = Field(default_factory=list, description=(
        "Area code prefixes this level applies in (issue 18), over the incident's code and the areas it was placed "
        "in; elsewhere the plan has no level at this grade and matching looks further. Empty: wherever the plan "
        "applies"))

    @model_serializer(mode="wrap")
    def _without_unset_areas(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if not data.get("areas"):
            data.pop("areas", None)  # a level without areas dumps and hashes as before they existed
        return data

    @model_validator(mode="after")
    def _unique_ids(self) -> "Level":
        for what, ids in (("notify step", [s.id for s in self.notify]), ("task", [t.id for t in self.tasks])):
            if len(ids) != len(set(ids)):
                raise ValueError(f"{what} ids must be unique within a level, got {ids}")
        return self


class EscalateRule(Model):
    """Raise the grade when reports pile up or casualties mount."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    correlated_reports: int | None = Field(default=None, ge=2, description="This many reports of one incident…")
    within_min: float | None = Field(default=None, gt=0, description="…within this many minutes")
    casualties_gte: int | None = Field(default=None, ge=1, description="Label `casualties` at least this")
    raise_to: Grade

    @model_validator(mode="after")
    def _one_condition(self) -> "EscalateRule":
        if (self.correlated_reports is None) == (self.casualties_gte is None):
            raise ValueError("an escalation rule needs exactly one of correlated_reports or casualties_gte")
        if self.correlated_reports is not None and self.within_min is None:
            raise ValueError("correlated_reports needs within_min")
        return self


# Roles a release template may name as approvers: the command roles (Role) and the account roles of
# handlers/access (kept equal to its Role by tests/unit/test_releases.py; data cannot import handlers).
ACCOUNT_ROLE_NAMES = frozenset({"viewer", "duty_officer", "commander", "public_information", "plan_author",
                                "drill_coordinator", "department_liaison", "admin"})
APPROVER_ROLE_NAMES = ACCOUNT_ROLE_NAMES | {r.value for r in Role}


class ReleaseTemplate(Model):
    """A public message (新闻发布); it always needs approval before release (handlers/releases).

    `text` is the release's description; placeholders as in a notify step's template. `headline` and `instruction`
    are optional: without a headline the incident's title and grade make one."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    grades: list[Grade] = Field(default_factory=lambda: list(Grade))
    text: LocalizedText
    headline: LocalizedText | None = None
    instruction: LocalizedText | None = None
    requires_approval: bool = True
    approver_roles: list[str] = Field(
        default_factory=lambda: ["commander"], min_length=1,
        description="Who may approve (four eyes: never the drafter or the last editor): account roles "
        "(handlers/access) or this level's command roles")
    kind: ReleaseKind | None = Field(
        default=None, description="all_clear: the template that ends the incident; None: its alert and updates")
    channels: list[ReleaseChannel] = Field(
        default_factory=lambda: list(ReleaseChannel), min_length=1, description="Where it is published")

    @model_validator(mode="after")
    def _known_approvers(self) -> "ReleaseTemplate":
        # A misspelt role would leave every release of the template unapprovable: say so when the plan loads.
        unknown = [r for r in self.approver_roles if r not in APPROVER_ROLE_NAMES]
        if unknown:
            raise ValueError(f"approver_roles {unknown} are not roles; one of {', '.join(sorted(APPROVER_ROLE_NAMES))}")
        return self


class Plan(Model):
    id: str = Field(pattern=ID_PATTERN, max_length=64)
    title: LocalizedText
    version: int = Field(ge=1)
    owner: str = Field(description="Owning department id")
    status: PlanStatus = PlanStatus.draft
    effective_from: date | None = None
    effective_to: date | None = None
    approved_by: list[str] = Field(default_factory=list, description="Person ids; set by `pingan plans approve`")
    last_editor: str | None = Field(default=None, description="Person id of the last editor (four eyes)")
    applies_to: AppliesTo
    levels: list[Level] = Field(min_length=1)
    escalate_grade: list[EscalateRule] = Field(default_factory=list)
    release: list[ReleaseTemplate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _levels(self) -> "Plan":
        grades = [level.grade for level in self.levels]
        if len(grades) != len(set(grades)):
            raise ValueError(f"each grade may have one level only, got {[g.value for g in grades]}")
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        missing = [g.value for g in Grade if g not in grades]
        if self.applies_to.catch_all and missing:
            raise ValueError(f"a catch-all plan needs a level for every grade; missing {', '.join(missing)}")
        return self

    @property
    def catch_all(self) -> bool:
        return self.applies_to.catch_all

    def level(self, grade: Grade) -> Level | None:
        return next((lv for lv in self.levels if lv.grade == grade), None)

    @property
    def grades(self) -> list[Grade]:
        return [lv.grade for lv in self.levels]

    def content_hash(self) -> str:
        """sha256 of the plan's canonical JSON: the log records exactly which text was in force."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

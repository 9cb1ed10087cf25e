"""People, departments and duty rosters (值班表): the directory that plans refer to by id."""

from datetime import date, time
from enum import StrEnum

from pydantic import Field, model_validator

from pingan.schemas.common import LocalizedText, Model, UtcDatetime

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


class Contacts(Model):
    """How to reach someone, per channel. Phone numbers are E.164."""

    sms: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    voice: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    webhook: str | None = Field(default=None, pattern=r"^https?://")
    console: str | None = Field(default=None, max_length=100, description="A console seat, e.g. duty-room")


class DirectoryRole(StrEnum):
    """What the directory itself says a person may do. (Accounts' roles, for signing in, are handlers/access.)"""

    plan_approver = "plan_approver"  # 预案审批: may approve a response plan (four eyes: never one they last edited)


class Person(Model):
    id: str = Field(pattern=ID_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    title: LocalizedText | None = None
    department: str | None = Field(default=None, description="Department id")
    lang: str = Field(default="zh", pattern=r"^(zh|en)$")
    contacts: Contacts = Field(default_factory=Contacts)
    roles: list[DirectoryRole] = Field(default_factory=list, description="e.g. [plan_approver]")
    area: str | None = Field(default=None, max_length=32, description=(
        "The area code (plans/areas/) the person is registered in, e.g. a grid officer's grid: a report they send "
        "that names no better place is placed there"))


class Department(Model):
    id: str = Field(pattern=ID_PATTERN, max_length=64)
    name: LocalizedText
    duty_roster: str | None = Field(default=None, description="Roster whose on-duty member is the contact")
    contact: str | None = Field(default=None, description="Person id when there is no roster")

    @model_validator(mode="after")
    def _reachable(self) -> "Department":
        if not self.duty_roster and not self.contact:
            raise ValueError("a department needs a duty_roster or a contact person")
        return self


class RotationKind(StrEnum):
    daily = "daily"
    weekly = "weekly"
    custom = "custom"


class Rotation(Model):
    kind: RotationKind = RotationKind.daily
    handoff: time = Field(default=time(8, 0), description="Local handoff time, e.g. 08:00")
    start: date = Field(description="The first shift starts at handoff on this day, with the first member")
    shift_hours: int | None = Field(default=None, ge=1, le=24 * 28, description="custom rotations only")

    @model_validator(mode="after")
    def _custom_has_hours(self) -> "Rotation":
        if (self.kind is RotationKind.custom) != (self.shift_hours is not None):
            raise ValueError("shift_hours is required for custom rotations and only for them")
        return self


class Override(Model):
    """A temporary cover: "Li covers Wang from 18:00 to 08:00"."""

    person: str
    covers: str | None = Field(default=None, description="Who is covered; None covers whoever is on duty")
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "Override":
        if self.end <= self.start:
            raise ValueError("override end must be after its start")
        return self


class Roster(Model):
    id: str = Field(pattern=ID_PATTERN, max_length=64)
    name: LocalizedText
    timezone: str = "Asia/Shanghai"
    members: list[str] = Field(min_length=1, description="Person ids, in rotation order")
    rotation: Rotation
    overrides: list[Override] = Field(default_factory=list)


class Directory(Model):
    people: list[Person] = Field(default_factory=list)
    departments: list[Department] = Field(default_factory=list)
    rosters: list[Roster] = Field(default_factory=list)

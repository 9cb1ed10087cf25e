"""Who is reached: on-call resolution for rosters, and targets to people. Pure: data in, answer out."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pingan.schemas.areas import Placement
from pingan.schemas.directory import Department, Directory, Person, Roster, RotationKind
from pingan.schemas.notification import Channel, Recipient
from pingan.schemas.plan import Level, NotifyChannel, Target

# A plan's channel words, to the adapter that carries them.
CHANNELS: dict[NotifyChannel, Channel] = {
    NotifyChannel.console: Channel.console,
    NotifyChannel.sms: Channel.twilio_sms,
    NotifyChannel.voice: Channel.twilio_voice,
    NotifyChannel.webhook: Channel.webhook,
    NotifyChannel.email: Channel.email,
}


@dataclass(frozen=True)
class DirectoryIndex:
    people: dict[str, Person]
    departments: dict[str, Department]
    rosters: dict[str, Roster]

    @classmethod
    def of(cls, directory: Directory) -> "DirectoryIndex":
        return cls({p.id: p for p in directory.people}, {d.id: d for d in directory.departments},
                   {r.id: r for r in directory.rosters})

    @classmethod
    def empty(cls) -> "DirectoryIndex":
        return cls({}, {}, {})


def shift_index(roster: Roster, at: datetime) -> int:
    """Which shift (counted from the rotation's start) covers the instant `at`."""
    tz = ZoneInfo(roster.timezone)
    rotation = roster.rotation
    first = datetime.combine(rotation.start, rotation.handoff, tzinfo=tz)
    hours = {RotationKind.daily: 24, RotationKind.weekly: 24 * 7}.get(rotation.kind, rotation.shift_hours or 24)
    return int((at.astimezone(tz) - first) // timedelta(hours=hours))


def on_duty(roster: Roster, at: datetime) -> str:
    """The person id on duty at `at`: the rotation's member, unless an override covers the moment."""
    scheduled = roster.members[shift_index(roster, at) % len(roster.members)]
    for override in roster.overrides:
        if override.start <= at < override.end and override.covers in (None, scheduled):
            return override.person
    return scheduled


def resolve(target: Target, level: Level | None, index: DirectoryIndex, at: datetime,
            _seen: frozenset[str] = frozenset(), placement: Placement | None = None) -> list[Person]:
    """The people a target reaches at `at`. Unknown ids resolve to nobody (lint reports them). `placement`: where
    the incident was placed, for the area targets (without it, or at a level it has not, they reach nobody)."""
    key = target.key()
    if key in _seen:
        return []  # a role that points back at itself
    seen = _seen | {key}
    if target.by_area:
        # The grid's officers; placed no deeper than a community, every officer of its grids.
        area = (placement.at("grid") or placement.at("community") if target.grid_officer
                else placement.at(str(target.area_leader))) if placement else None
        ids = (area.officers if target.grid_officer else area.leaders) if area is not None else []
        return [index.people[i] for i in dict.fromkeys(ids) if i in index.people]
    if target.person is not None:
        person = index.people.get(target.person)
        return [person] if person else []
    if target.roster is not None:
        roster = index.rosters.get(target.roster)
        person = index.people.get(on_duty(roster, at)) if roster else None
        return [person] if person else []
    if target.department is not None:
        department = index.departments.get(target.department)
        if department is None:
            return []
        inner = Target(roster=department.duty_roster) if department.duty_roster else Target(person=department.contact)
        return resolve(inner, level, index, at, seen, placement)
    if target.role is not None and level is not None and target.role in level.command:
        return resolve(level.command[target.role], level, index, at, seen, placement)
    return []


def recipient_for(person: Person, channel: NotifyChannel) -> Recipient | None:
    """The person's address on that channel, or None when they have none."""
    address = getattr(person.contacts, channel.value, None)
    if address is None and channel is NotifyChannel.voice:
        address = person.contacts.sms  # the same mobile number takes calls
    if address is None:
        return None
    return Recipient(id=person.id, name=person.name, channel=CHANNELS[channel], address=address, lang=person.lang)


def expand_participants(entries: list[str], index: DirectoryIndex) -> tuple[list[str], list[str]]:
    """(person ids, unknown entries) of a drill's participants: person ids, or roster:<id> for all its members."""
    people: list[str] = []
    unknown: list[str] = []
    for entry in entries:
        kind, _, name = entry.partition(":")
        if name and kind == "roster":
            roster = index.rosters.get(name)
            people += roster.members if roster else []
            if roster is None:
                unknown.append(entry)
        elif entry in index.people:
            people.append(entry)
        else:
            unknown.append(entry)
    return sorted(set(people)), unknown


class UnknownRoster(LookupError):
    """A roster id the directory does not have; the message lists the known ones."""


@dataclass(frozen=True)
class OnCall:
    roster: Roster
    person_id: str
    person: Person | None  # None: the roster names someone the directory does not know


def on_call(index: DirectoryIndex, roster_id: str | None, at: datetime) -> list[OnCall]:
    """Who is on duty at `at`, in roster `roster_id` or in every roster (`pingan oncall`)."""
    if roster_id and roster_id not in index.rosters:
        raise UnknownRoster(f"no roster {roster_id!r}; known: {', '.join(sorted(index.rosters))}")
    rosters = [index.rosters[roster_id]] if roster_id else list(index.rosters.values())
    out: list[OnCall] = []
    for roster in rosters:
        person_id = on_duty(roster, at)
        out.append(OnCall(roster, person_id, index.people.get(person_id)))
    return out

"""What-if replay (`pingan drill replay`): a past incident's inputs as a drill scenario, and the diff of two timelines.

Pure: pingan.drill_replay reads the store and runs the drill; this turns a recorded incident into a Scenario (its
reports at their relative times, its people's commands at their times after the plan activated) and compares the
original timeline with the replay's, entry by entry, in plan minutes after each incident was created.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pingan.schemas.drill import Inject, Scenario, ScriptedCommand
from pingan.schemas.events import RawKind
from pingan.schemas.incident import IncidentReport

# The entries a response is judged by; `delivered`/`updated`/`correlated` follow from these and would only add noise.
COMPARED = ("plan_activated", "no_plan", "grade_changed", "notified", "failed", "escalated", "roll_call",
            "acknowledged", "handed_over", "confirmed", "task_done", "closed")
COMMANDS = {"acknowledged": "ack", "escalated": "escalate", "handed_over": "handover", "closed": "close",
            "confirmed": "confirm", "task_done": "task"}


class NothingToReplay(ValueError):
    """The incident has no recorded inputs in the outbox, so there is no scenario to replay."""


@dataclass(frozen=True)
class RecordedInput:
    received_at: datetime
    kind: RawKind
    report: IncidentReport


@dataclass(frozen=True)
class Entry:
    """One timeline entry reduced to what a diff compares: what happened, to what, when (plan minutes)."""

    kind: str
    key: str
    minute: float
    detail: str = ""


@dataclass(frozen=True)
class DiffRow:
    kind: str
    key: str
    original_min: float | None
    replay_min: float | None
    change: str  # same, earlier, later, only_original, only_replay
    delta_min: float | None = None
    detail: str = ""


def _minutes(at: datetime, origin: datetime, speed: float) -> float:
    return round((at - origin).total_seconds() / 60.0 * speed, 2)


def _person(actor: str) -> str:
    return actor.removeprefix("person:")


def recorded_injects(inputs: list[RecordedInput], recorded_speed: float) -> list[Inject]:
    """The incident's reports, updates and closes at their plan minutes after the first."""
    ordered = sorted(inputs, key=lambda i: i.received_at)
    if not ordered:
        return []
    first = ordered[0].received_at
    return [Inject(id=f"input-{n}", at_min=_minutes(i.received_at, first, recorded_speed),
                   report=i.report.model_copy(update={"dedup_key": i.report.effective_dedup_key()}),
                   report_kind=i.kind.value, note=f"recorded {i.kind.value} at {i.received_at.isoformat()}")
            for n, i in enumerate(ordered, start=1)]


def recorded_commands(actions: list[dict[str, Any]], incident_inject: str, recorded_speed: float
                      ) -> list[ScriptedCommand]:
    """What the people did (acknowledge, escalate, hand over, confirm, close), relative to the plan's activation."""
    activated = next((a for a in actions if a["kind"] == "plan_activated"), None)
    if activated is None:
        return []
    origin = _at(activated["at"])
    commands: list[ScriptedCommand] = []
    for action in actions:
        verb = COMMANDS.get(action["kind"])
        actor = action["actor"]
        if verb is None or actor.startswith("system:"):
            continue
        details = action.get("details") or {}
        commands.append(ScriptedCommand(
            incident=incident_inject, after_min=max(0.0, _minutes(_at(action["at"]), origin, recorded_speed)),
            verb=verb, by=_person(actor), to=details.get("to"), role=details.get("role") or "commander",
            task=details.get("task"),
            reason=details.get("reason") or ("replayed close" if verb == "close" else None)))
    return commands


def scenario_for(incident: dict[str, Any], inputs: list[RecordedInput], timeline: list[dict[str, Any]],
                 recorded_speed: float, watch_min: float | None) -> Scenario:
    """The recorded incident as a drill scenario, watched `watch_min` plan minutes after its last input (default: as
    long as the original timeline ran on, plus 2). Raises NothingToReplay when it has no recorded inputs."""
    injects = recorded_injects(inputs, recorded_speed)
    if not injects:
        raise NothingToReplay(f"incident {incident['id']} has no recorded inputs in the outbox")
    span = max((e.minute for e in entries(timeline, recorded_speed)), default=0.0)
    commands = recorded_commands(timeline, injects[0].id, recorded_speed)
    last_command = max((c.after_min for c in commands), default=0.0)
    watch = watch_min if watch_min is not None else max(span, last_command) - injects[-1].at_min + 2.0
    return Scenario(title=f"复盘 {incident['id']}: {incident['title']}", title_en=f"What-if replay of {incident['id']}",
                    injects=injects, commands=commands, watch_min=max(1.0, watch))


def _at(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))


def entries(actions: list[dict[str, Any]], speed: float) -> list[Entry]:
    """The compared entries of one timeline, in plan minutes after its `created` entry."""
    created = next((a for a in actions if a["kind"] == "created"), None)
    if created is None:
        return []
    origin = _at(created["at"])
    out: list[Entry] = []
    for action in actions:
        kind = action["kind"]
        if kind not in COMPARED:
            continue
        d = action.get("details") or {}
        minute = _minutes(_at(action["at"]), origin, speed)
        if kind in ("notified", "failed"):
            out.append(Entry("notify", f"{d.get('step')} → {d.get('recipient')} ({d.get('channel')})", minute, kind))
        elif kind == "escalated":
            key = f"{d.get('step')} {d.get('deadline', 'manual')} #{d.get('attempt', 1)}" if d.get("step") else \
                f"manual by {_person(action['actor'])}"
            out.append(Entry(kind, key, minute, ", ".join(d.get("recipients", []))))
        elif kind == "plan_activated":
            out.append(Entry(kind, f"{action.get('plan_id')} level {d.get('level')}", minute,
                             f"v{action.get('plan_version')}"))
        elif kind == "grade_changed":
            out.append(Entry(kind, f"{d.get('from')} → {d.get('to')}", minute, str(d.get("rule") or "")))
        elif kind == "roll_call":
            out.append(Entry(kind, str(d.get("step")), minute, f"missing {d.get('missing', [])}"))
        elif kind == "task_done":
            out.append(Entry(kind, str(d.get("task")), minute, _person(action["actor"])))
        elif kind == "handed_over":
            out.append(Entry(kind, f"{d.get('role')} → {d.get('to')}", minute))
        else:
            out.append(Entry(kind, _person(action["actor"]), minute))
    return out


def diff(original: list[Entry], replay: list[Entry], tolerance_min: float = 0.5) -> list[DiffRow]:
    """Pair entries by (kind, key) in order of occurrence; say what moved, appeared or disappeared."""
    by_key: dict[tuple[str, str], list[list[Entry]]] = defaultdict(lambda: [[], []])
    for side, items in enumerate((original, replay)):
        for entry in items:
            by_key[(entry.kind, entry.key)][side].append(entry)
    rows: list[DiffRow] = []
    for (kind, key), (left, right) in by_key.items():
        for n in range(max(len(left), len(right))):
            a = left[n] if n < len(left) else None
            b = right[n] if n < len(right) else None
            if a and b:
                delta = round(b.minute - a.minute, 2)
                change = "same" if abs(delta) <= tolerance_min else ("earlier" if delta < 0 else "later")
                detail = a.detail if a.detail == b.detail else f"{a.detail} → {b.detail}"
                rows.append(DiffRow(kind, key, a.minute, b.minute, change, delta, detail))
            elif a:
                rows.append(DiffRow(kind, key, a.minute, None, "only_original", None, a.detail))
            elif b:
                rows.append(DiffRow(kind, key, None, b.minute, "only_replay", None, b.detail))
    return sorted(rows, key=lambda r: min(m for m in (r.original_min, r.replay_min) if m is not None))


def as_json(rows: list[DiffRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]

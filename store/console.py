"""The duty console's reads: the board of open incidents, new log entries for live boards, the chain head.

The board is read with three queries however many incidents are open (incidents, their responses, their next
deadline), and incident bodies are read as plain JSON rather than validated models: 500 open incidents must render
in well under 300 ms (bench/console.py)."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB

from pingan.store.tables import actions, drill_runs, escalations, incidents, responses


@dataclass(frozen=True)
class BoardRow:
    id: str
    grade: str
    status: str  # actual, exercise, test
    category: str
    subtype: str
    title: str
    area: str
    state: str  # open, acknowledged
    received_at: datetime
    plan_id: str | None
    plan_grade: str | None  # the level in force
    next_due: datetime | None  # the next pending escalation deadline
    next_kind: str | None
    # The deepest area triage placed it in (code, zh name, en name): the board links its place to the area page.
    placed: tuple[str, str | None, str | None] | None = None


@dataclass(frozen=True)
class LogEntry:
    seq: int
    incident_id: str
    kind: str
    actor: str


_GRADE_ORDER = {"I": 0, "II": 1, "III": 2, "IV": 3}


def _area_columns(engine: Engine) -> list[Any]:
    """The place fields of the incident body, read by the database rather than by parsing every body in Python
    (the bodies carry attachments and labels: parsing 500 of them was the board's biggest cost)."""
    paths = [("location", "area_name"), ("location", "area_code"), ("areas", 0, "desc"), ("areas", 0, "code"),
             ("location", "placement", "path")]
    if engine.dialect.name == "postgresql":
        body = cast(incidents.c.body, JSONB)
        return [body[p].astext for p in paths]
    return [func.json_extract(incidents.c.body, "$." + ".".join(
        f"[{k}]" if isinstance(k, int) else str(k) for k in p).replace(".[", "[")) for p in paths]


def _area(values: tuple[Any, ...]) -> str:
    name, code, first_desc, first_code = values
    return str(name or code or first_desc or first_code or "")


def _placed(path_json: str | None) -> tuple[str, str | None, str | None] | None:
    """The deepest area of a placement path (JSON text of a few entries, widest first)."""
    if not path_json:
        return None
    try:
        path = json.loads(path_json)
        deepest = path[-1]
        return str(deepest["code"]), deepest.get("name_zh"), deepest.get("name_en")
    except (ValueError, TypeError, LookupError, AttributeError):
        return None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def board(engine: Engine) -> list[BoardRow]:
    """Every open incident, most severe grade first, then the longest waiting first."""
    with engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.grade, incidents.c.status, incidents.c.category,
                                   incidents.c.subtype, incidents.c.title, incidents.c.state,
                                   incidents.c.received_at, *_area_columns(engine))
                            .where(incidents.c.state != "closed")).all()
        ids = [r.id for r in rows]
        plans = {r.incident_id: (r.plan_id, r.grade) for r in conn.execute(
            select(responses.c.incident_id, responses.c.plan_id, responses.c.grade)
            .join(incidents, incidents.c.id == responses.c.incident_id)
            .where(incidents.c.state != "closed"))} if ids else {}
        pending = and_(escalations.c.state == "pending", incidents.c.state != "closed")
        first = select(escalations.c.incident_id, func.min(escalations.c.due_at).label("due")).join(
            incidents, incidents.c.id == escalations.c.incident_id).where(pending).group_by(
            escalations.c.incident_id).subquery()
        due = {r.incident_id: (r.due, r.kind) for r in conn.execute(
            select(first.c.incident_id, first.c.due, func.min(escalations.c.kind).label("kind"))
            .join(escalations, and_(escalations.c.incident_id == first.c.incident_id,
                                    escalations.c.due_at == first.c.due, escalations.c.state == "pending"))
            .group_by(first.c.incident_id, first.c.due))} if ids else {}
    out = []
    for r in rows:
        plan_id, plan_grade = plans.get(r.id, (None, None))
        next_due, next_kind = due.get(r.id, (None, None))
        out.append(BoardRow(r.id, r.grade, r.status, r.category, r.subtype, r.title, _area(tuple(r)[8:12]),
                            r.state, _utc(r.received_at), plan_id, plan_grade,
                            _utc(next_due) if next_due else None, next_kind, _placed(tuple(r)[12])))
    out.sort(key=lambda b: (_GRADE_ORDER.get(b.grade, 9), b.received_at, b.id))
    return out


def latest_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.max(actions.c.seq))) or 0)


def entries_after(engine: Engine, seq: int, limit: int = 1000) -> list[LogEntry]:
    """Log entries after `seq`, oldest first: what live boards are told about."""
    with engine.connect() as conn:
        rows = conn.execute(select(actions.c.seq, actions.c.incident_id, actions.c.kind, actions.c.actor)
                            .where(actions.c.seq > seq).order_by(actions.c.seq).limit(limit)).all()
    return [LogEntry(r.seq, r.incident_id, r.kind, r.actor) for r in rows]


def grades_of(engine: Engine, incident_ids: list[str]) -> dict[str, tuple[str, str]]:
    """(grade, state) of each incident named, for deciding which live events alert."""
    if not incident_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.grade, incidents.c.state)
                            .where(incidents.c.id.in_(incident_ids))).all()
    return {r.id: (r.grade, r.state) for r in rows}


def chain_head(engine: Engine) -> tuple[int, str] | None:
    """The newest entry's seq and hash: what to anchor outside the database."""
    with engine.connect() as conn:
        row = conn.execute(select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else None


def shift_handovers(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest shift handovers (交接班), newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(actions.c.seq, actions.c.incident_id, actions.c.at, actions.c.actor,
                                   actions.c.details).where(actions.c.kind == "shift_handover")
                            .order_by(actions.c.seq.desc()).limit(limit)).all()
    return [{"seq": r.seq, "shift": r.incident_id.removeprefix("shift:"), "at": datetime.fromisoformat(r.at),
             "from": r.actor, **json.loads(r.details)} for r in rows]


def drill_run_rows(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Drill runs, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(drill_runs).order_by(drill_runs.c.started_at.desc()).limit(limit)).all()
    return [{"run_id": r.run_id, "title": r.title, "live": bool(r.live), "participants": json.loads(r.participants),
             "started_at": _utc(r.started_at), "ended_at": _utc(r.ended_at) if r.ended_at else None} for r in rows]

"""Reads for a situation report (态势研判): the rows handlers.sitreps.figures computes from. Read-only.

Every read runs on one `engine.connect()` that is never committed (on SQLite in WAL it takes no lock), with plain
SQLAlchemy Core, so SQLite and PostgreSQL answer alike. Only real incidents (status actual) are read; exercise and
test incidents of the period are only counted, so the report can say how many it left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, func, select

from pingan.handlers.sitreps.figures import LedgerRow, SitrepRows
from pingan.schemas.action import Action
from pingan.schemas.incident import Incident
from pingan.schemas.release import ReleaseState
from pingan.schemas.sitrep import Period
from pingan.schemas.taxonomy import IncidentState, IncidentStatus
from pingan.store.ledger import CHUNK
from pingan.store.log import _validated
from pingan.store.tables import actions, incidents, notifications, releases

ACTUAL = IncidentStatus.actual.value


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[n:n + CHUNK]) for n in range(0, len(ids), CHUNK)]


def _timelines(conn: Connection, ids: Sequence[str]) -> dict[str, list[Action]]:
    out: dict[str, list[Action]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        rows = conn.execute(select(actions).where(actions.c.incident_id.in_(chunk)).order_by(actions.c.seq)).mappings()
        for row in rows:
            out[row["incident_id"]].append(_validated(row))
    return out


def _ledger(conn: Connection, ids: Sequence[str]) -> list[LedgerRow]:
    out: list[LedgerRow] = []
    for chunk in _chunks(ids):
        rows = conn.execute(select(notifications.c.incident_id, notifications.c.channel, notifications.c.state)
                            .where(notifications.c.incident_id.in_(chunk)))
        out.extend(LedgerRow(r.incident_id, r.channel, r.state) for r in rows)
    return out


def _releases(conn: Connection, ids: Sequence[str]) -> list[tuple[str, datetime]]:
    """(incident id, published at) of every published release of these incidents (alerts, updates, all-clears)."""
    out: list[tuple[str, datetime]] = []
    for chunk in _chunks(ids):
        rows = conn.execute(select(releases.c.incident_id, releases.c.published_at).where(and_(
            releases.c.incident_id.in_(chunk), releases.c.state == ReleaseState.published.value,
            releases.c.published_at.is_not(None))).order_by(releases.c.published_at))
        out.extend((r.incident_id, r.published_at) for r in rows)
    return out


def read_sitrep_rows(engine: Engine, period: Period) -> SitrepRows:
    in_both = and_(incidents.c.received_at >= period.previous_start, incidents.c.received_at < period.end)
    with engine.connect() as conn:
        bodies = conn.scalars(select(incidents.c.body).where(and_(in_both, incidents.c.status == ACTUAL))
                              .order_by(incidents.c.received_at, incidents.c.id)).all()
        excluded = conn.scalar(select(func.count()).select_from(incidents).where(and_(
            incidents.c.received_at >= period.start, incidents.c.received_at < period.end,
            incidents.c.status != ACTUAL))) or 0
        open_bodies = conn.scalars(select(incidents.c.body).where(and_(
            incidents.c.status == ACTUAL, incidents.c.state != IncidentState.closed.value,
            incidents.c.received_at < period.end))).all()
        rows = [Incident.model_validate_json(b) for b in bodies]
        current = [i.id for i in rows if i.received_at >= period.start]
        return SitrepRows(incidents=rows, exercise_excluded=int(excluded), timelines=_timelines(conn, current),
                          ledger=_ledger(conn, current),
                          still_open=[Incident.model_validate_json(b) for b in open_bodies],
                          releases=_releases(conn, current))

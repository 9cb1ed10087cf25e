"""Reading incidents and the log for people: the API, the CLI and the console."""

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, func, select

from pingan.schemas.action import Action
from pingan.schemas.incident import Incident
from pingan.store.log import iter_log, timeline
from pingan.store.tables import actions, incidents, outbox, triage_events

# For an event ignored before its log entry said why (older rows).
IGNORED_WITHOUT_REASON = "nothing open to apply it to"


@dataclass(frozen=True)
class IncidentPage:
    items: list[Incident]
    total: int


class IncidentQueries:
    """Read-only lookups; never committed, so on SQLite they take no lock in WAL."""

    engine: Engine

    def resolve_incident_id(self, some_id: str) -> str | None:
        """An incident id, or the id a report was given at intake before triage joined it to another."""
        with self.engine.connect() as conn:
            if conn.scalar(select(func.count()).where(incidents.c.id == some_id)):
                return some_id
            return conn.scalar(
                select(triage_events.c.incident_id)
                .join(outbox, outbox.c.event_id == triage_events.c.event_id)
                .where(outbox.c.proposed_incident_id == some_id)
            )

    def is_accepted(self, some_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.scalar(select(func.count()).where(outbox.c.proposed_incident_id == some_id)))

    def ignored_reason(self, some_id: str) -> str | None:
        """Why triage ignored the event accepted under `some_id` (a Cancel naming no known message, a resolve for no
        open alert), or None when it was not ignored. Its status is final: nothing will change it later."""
        with self.engine.connect() as conn:
            event_id = conn.scalar(
                select(triage_events.c.event_id)
                .join(outbox, outbox.c.event_id == triage_events.c.event_id)
                .where(and_(outbox.c.proposed_incident_id == some_id, triage_events.c.outcome == "ignored"))
            )
            if event_id is None:
                return None
            details = conn.scalar(select(actions.c.details).where(actions.c.idempotency_key == f"ignored:{event_id}"))
        reason = json.loads(details).get("reason") if details else None
        return str(reason) if reason else IGNORED_WITHOUT_REASON

    def get_incident(self, incident_id: str) -> Incident | None:
        with self.engine.connect() as conn:
            body = conn.scalar(select(incidents.c.body).where(incidents.c.id == incident_id))
        return Incident.model_validate_json(body) if body else None

    def list_incidents(self, *, status: str | None = None, category: str | None = None,
                       source: str | None = None, since: datetime | None = None, limit: int = 50,
                       offset: int = 0, only: Collection[str] | None = None) -> IncidentPage:
        """Newest first; `only` limits the page to those ids (a department liaison's incidents)."""
        if only is not None and not only:
            return IncidentPage([], 0)
        conditions = []
        if only is not None:
            conditions.append(incidents.c.id.in_(sorted(only)))
        if status:
            conditions.append(incidents.c.status == status)
        if category:
            conditions.append(incidents.c.category == category)
        if source:
            conditions.append(incidents.c.source == source)
        if since:
            conditions.append(incidents.c.received_at >= since)
        where = and_(True, *conditions)
        with self.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(incidents).where(where)) or 0
            bodies = conn.scalars(
                select(incidents.c.body)
                .where(where)
                .order_by(incidents.c.received_at.desc(), incidents.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return IncidentPage([Incident.model_validate_json(b) for b in bodies], total)

    def timeline(self, incident_id: str) -> list[Action]:
        return timeline(self.engine, incident_id)

    def iter_log(self):  # type: ignore[no-untyped-def]
        return iter_log(self.engine)

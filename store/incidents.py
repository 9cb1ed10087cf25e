"""Incidents as triage and the response decide them: each decision stored once, with its log entries."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, func, select, update

from pingan.schemas.action import Action, ActionDraft
from pingan.schemas.common import utcnow
from pingan.schemas.events import IncidentEvent, TriageOutcome
from pingan.schemas.incident import Incident
from pingan.schemas.notification import Notification
from pingan.store.engine import write_tx
from pingan.store.ledger import ledger_row
from pingan.store.log import append_actions
from pingan.store.message_keys import remember
from pingan.store.tables import incidents, notifications, responses, triage_events


def incident_row(incident: Incident) -> dict[str, object]:
    return {
        "id": incident.id,
        "dedup_key": incident.dedup_key,
        "source": incident.source.value,
        "status": incident.status.value,
        "category": incident.category.value,
        "subtype": incident.subtype.value,
        "grade": incident.grade.value,
        "state": incident.state.value,
        "title": incident.title,
        "received_at": incident.received_at,
        "last_report_at": incident.last_report_at or incident.received_at,
        "report_count": incident.report_count,
        "body": incident.model_dump_json(),
    }


class IncidentStore:
    """Triage's and the response's writes, and the checks that make a replay re-emit instead of redo."""

    engine: Engine

    # Three hooks a batch (store/batch.py) answers from what it read once for the whole batch.
    def _incident(self, body: str) -> Incident:
        return Incident.model_validate_json(body)

    def _triaged(self, conn: Connection, event_id: str) -> Row[Any] | None:
        """Triage's row for this event, if it has one (read under the chain lock: the replay check)."""
        return conn.execute(select(triage_events).where(triage_events.c.event_id == event_id)).first()

    def _responded(self, conn: Connection, incident_id: str) -> bool:
        return bool(conn.scalar(select(func.count()).where(responses.c.incident_id == incident_id)))

    def was_ignored(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            outcome = conn.scalar(select(triage_events.c.outcome).where(triage_events.c.event_id == event_id))
        return outcome == TriageOutcome.ignored.value

    def triage_result(self, event_id: str) -> IncidentEvent | None:
        """What triage already decided for this event, for a replay to re-emit instead of redo."""
        with self.engine.connect() as conn:
            row = conn.execute(select(triage_events).where(triage_events.c.event_id == event_id)).first()
            if row is None:
                return None
            body = conn.scalar(select(incidents.c.body).where(incidents.c.id == row.incident_id))
        if body is None:
            return None
        return IncidentEvent(event_id=event_id, outcome=row.outcome, incident=self._incident(body))

    def open_incident_for(self, dedup_key: str, status: str, since: datetime | None) -> Incident | None:
        """The open incident with this key and status; `since` bounds its latest report (None: any age)."""
        with self.engine.connect() as conn:
            body = conn.scalar(
                select(incidents.c.body)
                .where(
                    and_(
                        incidents.c.dedup_key == dedup_key,
                        # An exercise report must never join an actual incident, nor the reverse.
                        incidents.c.status == status,
                        incidents.c.state != "closed",
                        incidents.c.last_report_at >= since if since else True,
                    )
                )
                .order_by(incidents.c.last_report_at.desc())
                .limit(1)
            )
        return self._incident(body) if body else None

    def open_incidents_like(self, status: str, category: str, subtypes: list[str], since: datetime,
                            limit: int = 50) -> list[Incident]:
        """Open incidents of this status and category, of one of `subtypes`, whose latest report is not before
        `since`, newest first: the candidates a report from another source may join (handlers.incidents.correlation
        decides)."""
        with self.engine.connect() as conn:
            bodies = conn.scalars(
                select(incidents.c.body)
                .where(and_(incidents.c.status == status, incidents.c.category == category,
                            incidents.c.subtype.in_(subtypes), incidents.c.state != "closed",
                            incidents.c.last_report_at >= since))
                .order_by(incidents.c.last_report_at.desc())
                .limit(limit)
            ).all()
        return [self._incident(b) for b in bodies]

    def apply_triage(self, event_id: str, outcome: TriageOutcome, incident: Incident,
                     drafts: Sequence[ActionDraft], message_keys: Sequence[str] = ()
                     ) -> tuple[IncidentEvent, list[Action]]:
        """Store triage's decision with its log entries, once. A replayed event returns the first decision.

        `message_keys`: the CAP message keys now applied to the incident, so a later follow-up naming any of them
        finds it (store/message_keys.py). An ignored event stores no incident, only its log entry saying why."""
        with write_tx(self.engine) as conn:
            done = self._triaged(conn, event_id)
            if done is not None:
                body = conn.scalar(select(incidents.c.body).where(incidents.c.id == done.incident_id))
                first = self._incident(body) if body else incident
                return IncidentEvent(event_id=event_id, outcome=done.outcome, incident=first), []
            if outcome is TriageOutcome.ignored:
                conn.execute(triage_events.insert().values(
                    event_id=event_id, incident_id=incident.id, outcome=outcome.value, at=utcnow()))
                return IncidentEvent(event_id=event_id, outcome=outcome, incident=incident), append_actions(
                    conn, drafts)
            row = incident_row(incident)
            # Rows as execute() parameters, not .values(): the compiled statement is reused, not rebuilt per call.
            if outcome is TriageOutcome.created:
                conn.execute(incidents.insert(), row)
            else:
                conn.execute(update(incidents).where(incidents.c.id == incident.id).values(**row))
            conn.execute(triage_events.insert(),
                         {"event_id": event_id, "incident_id": incident.id, "outcome": outcome.value, "at": utcnow()})
            remember(conn, message_keys, incident.id)
            logged = append_actions(conn, drafts)
        return IncidentEvent(event_id=event_id, outcome=outcome, incident=incident), logged

    def triaged_at(self, event_id: str) -> datetime | None:
        """When triage decided this event (the triage-to-match latency starts there)."""
        with self.engine.connect() as conn:
            return conn.scalar(select(triage_events.c.at).where(triage_events.c.event_id == event_id))

    def response_decided(self, incident_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).where(responses.c.incident_id == incident_id)) > 0

    def response_plan(self, incident_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(responses.c.plan_id).where(responses.c.incident_id == incident_id))

    def apply_response(self, incident_id: str, plan_id: str | None, plan_version: int | None,
                       orders: Sequence[Notification], drafts: Sequence[ActionDraft],
                       grade: str | None = None) -> list[Action]:
        """Record the plan decision and every notification intent together, once per incident."""
        now = utcnow()
        with write_tx(self.engine) as conn:
            if self._responded(conn, incident_id):
                return []
            conn.execute(responses.insert(), {"incident_id": incident_id, "plan_id": plan_id,
                                              "plan_version": plan_version, "grade": grade, "decided_at": now})
            if orders:
                conn.execute(notifications.insert(), [ledger_row(n, now) for n in orders])
            return append_actions(conn, drafts)

    def incidents_without_response(self, limit: int = 10_000) -> list[IncidentEvent]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(incidents.c.body, triage_events.c.event_id)
                .join(triage_events, and_(triage_events.c.incident_id == incidents.c.id,
                                          triage_events.c.outcome == TriageOutcome.created.value))
                .outerjoin(responses, responses.c.incident_id == incidents.c.id)
                .where(responses.c.incident_id.is_(None))
                .order_by(incidents.c.received_at)
                .limit(limit)
            ).all()
        return [
            IncidentEvent(event_id=r.event_id, outcome=TriageOutcome.created,
                          incident=Incident.model_validate_json(r.body))
            for r in rows
        ]

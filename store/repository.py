"""The store: every durable fact of the pipeline, each change in one transaction with its log entries."""

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.exc import IntegrityError

from pingan.schemas.action import Action, ActionDraft
from pingan.schemas.common import utcnow
from pingan.schemas.events import IncidentEvent, IntakeItem, RawEvent, TriageOutcome
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.notification import DeliveryState, Notification
from pingan.store.engine import make_engine, write_tx
from pingan.store.log import append_actions, iter_log, timeline
from pingan.store.tables import incidents, notifications, outbox, responses, triage_events

_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread on a phone


def new_incident_id() -> str:
    return "INC-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class Accepted:
    event_id: str
    incident_id: str
    duplicate: bool = False  # the source already sent this message; nothing new was stored


@dataclass(frozen=True)
class OutboxRow:
    event_id: str
    topic: str
    key: str
    payload: bytes


@dataclass(frozen=True)
class LedgerEntry:
    notification: Notification
    state: DeliveryState
    attempts: int
    provider_id: str | None
    detail: str
    updated_at: datetime | None = None


@dataclass(frozen=True)
class IncidentPage:
    items: list[Incident]
    total: int


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    # ---- intake: the outbox ------------------------------------------------------------------------------

    def accept(self, item: IntakeItem | IncidentReport, raw_topic: str) -> Accepted:
        """Commit one intake event to the outbox. Only after this returns may anyone say "accepted"."""
        return self.accept_many([item], raw_topic)[0]

    def accept_many(self, items: Sequence[IntakeItem | IncidentReport], raw_topic: str) -> list[Accepted]:
        """All or nothing, in one transaction: a webhook's whole batch is stored, or none of it is."""
        try:
            return self._accept_many(items, raw_topic)
        except IntegrityError:
            # A concurrent retry of the same source message won the unique source_key: now we find it.
            return self._accept_many(items, raw_topic)

    def _accept_many(self, items: Sequence[IntakeItem | IncidentReport], raw_topic: str) -> list[Accepted]:
        now = utcnow()
        results: list[Accepted] = []
        with self.engine.begin() as conn:
            for item in items:
                if isinstance(item, IncidentReport):
                    item = IntakeItem(report=item)
                if item.source_key:
                    earlier = conn.execute(
                        select(outbox.c.event_id, outbox.c.proposed_incident_id).where(
                            outbox.c.source_key == item.source_key
                        )
                    ).first()
                    if earlier is not None:
                        results.append(Accepted(earlier.event_id, earlier.proposed_incident_id, duplicate=True))
                        continue
                event = RawEvent(event_id=uuid.uuid4().hex, kind=item.kind, proposed_incident_id=new_incident_id(),
                                 received_at=now, report=item.report)
                conn.execute(
                    outbox.insert().values(
                        event_id=event.event_id,
                        proposed_incident_id=event.proposed_incident_id,
                        source_key=item.source_key,
                        topic=raw_topic,
                        key=item.report.effective_dedup_key(),
                        payload=event.model_dump_json(),
                        accepted_at=now,
                    )
                )
                results.append(Accepted(event.event_id, event.proposed_incident_id))
        return results

    def unpublished(self, limit: int = 500) -> list[OutboxRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.event_id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.accepted_at)
                .limit(limit)
            ).all()
        return [OutboxRow(r.event_id, r.topic, r.key, r.payload.encode()) for r in rows]

    def mark_published(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox).where(outbox.c.event_id.in_(list(event_ids))).values(published_at=utcnow())
            )

    # ---- triage ------------------------------------------------------------------------------------------

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
        return IncidentEvent(event_id=event_id, outcome=row.outcome, incident=Incident.model_validate_json(body))

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
        return Incident.model_validate_json(body) if body else None

    def apply_triage(self, event_id: str, outcome: TriageOutcome, incident: Incident,
                     drafts: Sequence[ActionDraft]) -> tuple[IncidentEvent, list[Action]]:
        """Store triage's decision with its log entries, once. A replayed event returns the first decision."""
        with write_tx(self.engine) as conn:
            done = conn.execute(select(triage_events).where(triage_events.c.event_id == event_id)).first()
            if done is not None:
                body = conn.scalar(select(incidents.c.body).where(incidents.c.id == done.incident_id))
                first = Incident.model_validate_json(body) if body else incident
                return IncidentEvent(event_id=event_id, outcome=done.outcome, incident=first), []
            if outcome is TriageOutcome.ignored:
                conn.execute(triage_events.insert().values(
                    event_id=event_id, incident_id=incident.id, outcome=outcome.value, at=utcnow()))
                return IncidentEvent(event_id=event_id, outcome=outcome, incident=incident), []
            row = _incident_row(incident)
            if outcome is TriageOutcome.created:
                conn.execute(incidents.insert().values(**row))
            else:
                conn.execute(update(incidents).where(incidents.c.id == incident.id).values(**row))
            conn.execute(
                triage_events.insert().values(
                    event_id=event_id, incident_id=incident.id, outcome=outcome.value, at=utcnow()
                )
            )
            logged = append_actions(conn, drafts)
        return IncidentEvent(event_id=event_id, outcome=outcome, incident=incident), logged

    # ---- response ----------------------------------------------------------------------------------------

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
            exists = conn.scalar(select(func.count()).where(responses.c.incident_id == incident_id))
            if exists:
                return []
            conn.execute(
                responses.insert().values(
                    incident_id=incident_id, plan_id=plan_id, plan_version=plan_version, grade=grade, decided_at=now
                )
            )
            if orders:
                conn.execute(notifications.insert(), [_ledger_row(n, now) for n in orders])
            return append_actions(conn, drafts)

    # ---- the notification ledger -------------------------------------------------------------------------

    def ledger_entry(self, key: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(notifications).where(notifications.c.idempotency_key == key)).first()
        return _ledger_entry(row) if row else None

    def latest_to(self, address: str, limit: int = 20) -> list[LedgerEntry]:
        """The newest notifications sent to a phone number or address: what a bare reply answers."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(notifications).where(notifications.c.recipient_address == address)
                                .order_by(notifications.c.created_at.desc()).limit(limit)).all()
        return [_ledger_entry(r) for r in rows]

    def ledger_by_provider_id(self, provider_id: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(notifications).where(notifications.c.provider_id == provider_id)).first()
        return _ledger_entry(row) if row else None

    def ledger_for(self, incident_id: str) -> list[LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.incident_id == incident_id)
                .order_by(notifications.c.created_at, notifications.c.idempotency_key)
            ).all()
        return [_ledger_entry(r) for r in rows]

    def claim(self, key: str) -> bool:
        """intended -> sending, committed before the channel is called. False: someone already has it."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(notifications)
                .where(and_(notifications.c.idempotency_key == key, notifications.c.state == "intended"))
                .values(state="sending", attempts=notifications.c.attempts + 1, updated_at=utcnow())
            )
        return result.rowcount == 1

    def release(self, key: str, detail: str) -> None:
        """sending -> intended: reconciliation proved it never went out, so it may be sent."""
        with self.engine.begin() as conn:
            conn.execute(
                update(notifications)
                .where(and_(notifications.c.idempotency_key == key, notifications.c.state == "sending"))
                .values(state="intended", detail=detail, updated_at=utcnow())
            )

    def record_result(self, key: str, state: DeliveryState, provider_id: str | None, detail: str,
                      drafts: Sequence[ActionDraft]) -> list[Action]:
        with write_tx(self.engine) as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.idempotency_key == key)
                .values(state=state.value, provider_id=provider_id, detail=detail, updated_at=utcnow())
            )
            return append_actions(conn, drafts)

    # ---- recovery: what was accepted but not finished ------------------------------------------------------

    def untriaged_events(self, limit: int = 10_000) -> list[OutboxRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.event_id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                .outerjoin(triage_events, triage_events.c.event_id == outbox.c.event_id)
                .where(triage_events.c.event_id.is_(None))
                .order_by(outbox.c.accepted_at)
                .limit(limit)
            ).all()
        return [OutboxRow(r.event_id, r.topic, r.key, r.payload.encode()) for r in rows]

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

    def ledger_in_state(self, state: DeliveryState, limit: int = 10_000) -> list[LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.state == state.value)
                .order_by(notifications.c.created_at)
                .limit(limit)
            ).all()
        return [_ledger_entry(r) for r in rows]

    # ---- reading -----------------------------------------------------------------------------------------

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

    def get_incident(self, incident_id: str) -> Incident | None:
        with self.engine.connect() as conn:
            body = conn.scalar(select(incidents.c.body).where(incidents.c.id == incident_id))
        return Incident.model_validate_json(body) if body else None

    def list_incidents(self, *, status: str | None = None, category: str | None = None,
                       source: str | None = None, since: datetime | None = None, limit: int = 50,
                       offset: int = 0) -> IncidentPage:
        conditions = []
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


def _incident_row(incident: Incident) -> dict[str, object]:
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


def _ledger_row(n: Notification, now: datetime) -> dict[str, object]:
    return {
        "idempotency_key": n.idempotency_key,
        "incident_id": n.incident_id,
        "channel": n.channel.value,
        "recipient_id": n.recipient.id,
        "recipient_address": n.recipient.address,
        "state": DeliveryState.intended.value,
        "attempts": 0,
        "provider_id": None,
        "detail": "",
        "body": n.model_dump_json(),
        "created_at": now,
        "updated_at": now,
    }


def _ledger_entry(row) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(
        notification=Notification.model_validate_json(row.body),
        state=DeliveryState(row.state),
        attempts=row.attempts,
        provider_id=row.provider_id,
        detail=row.detail,
        updated_at=row.updated_at,
    )


__all__ = ["Accepted", "IncidentPage", "LedgerEntry", "OutboxRow", "Store", "new_incident_id"]

"""Intake's outbox: an accepted event is committed here before anyone says "accepted", then relayed to the broker."""

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from pingan.schemas.common import utcnow
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.store.tables import outbox, triage_events

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


class OutboxStore:
    """The outbox rows: accepting, relaying and finding what triage never saw."""

    engine: Engine

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
                                 received_at=now, report=item.report, message_key=item.message_key,
                                 references=item.references)
                conn.execute(
                    outbox.insert().values(
                        event_id=event.event_id,
                        proposed_incident_id=event.proposed_incident_id,
                        source_key=item.source_key,
                        topic=raw_topic,
                        key=item.partition_key or item.report.effective_dedup_key(),
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

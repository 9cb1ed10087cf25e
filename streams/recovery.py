"""On start, and after a broker restart: re-publish all work that was accepted but not finished."""

import logging
from dataclasses import dataclass

from kafka import KafkaProducer

from pingan.handlers.channels.base import ChannelAdapter
from pingan.schemas.notification import DeliveryState
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams import topics
from pingan.streams.producer import publish_all
from pingan.streams.stages import reconcile_sending

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeReport:
    raw_events: int
    incidents: int
    reconciled: int
    notifications: int


def resume(store: Store, channels: dict[str, ChannelAdapter], producer: KafkaProducer,
           settings: Settings) -> ResumeReport:
    """Every consumer is idempotent, so re-publishing something already done costs a lookup, nothing more."""
    raw = store.untriaged_events()
    publish_all(producer, ((settings.topic(topics.RAW), r.key, r.payload) for r in raw))
    store.mark_published([r.event_id for r in raw])

    pending = store.incidents_without_response()
    publish_all(producer, ((settings.topic(topics.INCIDENTS), e.incident.id, e.model_dump_json().encode())
                           for e in pending))

    reconciled = reconcile_sending(store, channels, settings.live_participants)
    intended = [e.notification for e in store.ledger_in_state(DeliveryState.intended)]
    publish_all(producer, ((settings.topic(topics.NOTIFICATIONS), n.incident_id, n.model_dump_json().encode())
                           for n in intended))
    report = ResumeReport(len(raw), len(pending), len(reconciled.actions), len(intended))
    log.info("resume: %s", report)
    return report

"""On start, after a broker restart, and when a worker is given partitions: re-publish the work the store says was
accepted but not finished.

A worker that takes over partitions from a killed one re-publishes the unfinished work of those partitions: faust on
tansu was seen to skip about a fetch's worth of records right after such a takeover (docs/architecture.md), and the
store, not the topic, is the record of what is left to do.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from kafka import KafkaProducer

from pingan.handlers.channels.base import ChannelAdapter, guarantee_of
from pingan.schemas.common import utcnow
from pingan.schemas.notification import DeliveryState
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.store.response import ResponseStore
from pingan.streams import topics
from pingan.streams.partitioning import partition_for
from pingan.streams.producer import publish_all
from pingan.streams.stages import reconcile_sending

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeReport:
    raw_events: int
    incidents: int
    reconciled: int
    notifications: int


def resume(store: Store, channels: dict[str, ChannelAdapter], producer: KafkaProducer, settings: Settings,
           partitions: Mapping[str, set[int]] | None = None, publish: bool = True) -> ResumeReport:
    """Every consumer is idempotent, so re-publishing something already done costs a lookup, nothing more.

    `partitions` (logical topic name -> partition numbers): only the work whose key falls there, for a worker that
    was just given those partitions. None: everything, for a worker that starts; it also settles notifications
    left `sending` for longer than the lease (younger ones may belong to another worker that is sending them now,
    and the scheduler settles them once the lease has passed). `publish=False`: settle only, publish nothing, for
    a worker whose first assignment re-publishes (streams/takeover.py): a copy sent before it would be a second."""
    def mine(name: str, key: str) -> bool:
        return partitions is None or partition_of(producer, settings.topic(name), key) in partitions.get(name, set())

    raw = [r for r in store.untriaged_events() if mine(topics.RAW, r.key)] if publish else []
    publish_all(producer, ((settings.topic(topics.RAW), r.key, r.payload) for r in raw))
    store.mark_published([r.event_id for r in raw])

    pending = [e for e in store.incidents_without_response()
               if mine(topics.INCIDENTS, e.incident.id)] if publish else []
    publish_all(producer, ((settings.topic(topics.INCIDENTS), e.incident.id, e.model_dump_json().encode())
                           for e in pending))

    reconciled = 0
    if partitions is None:
        lease = timedelta(seconds=settings.sending_lease_s)
        # At-least-once channels (webhook, e-mail): what a killed worker had in flight goes again now, not after
        # the lease; a repeat carries the same idempotency key, for the receiver to drop (issue 15).
        again = store.take_sending_on([name for name, c in channels.items() if guarantee_of(c) == "at_least_once"])
        stale = again + ResponseStore(store).take_stale_sending(utcnow() - lease, limit=10_000)
        reconciled = len(reconcile_sending(store, channels, settings.live_participants, stale).actions)
    intended = [e.notification for e in store.ledger_in_state(DeliveryState.intended)
                if mine(topics.NOTIFICATIONS, e.notification.incident_id)] if publish else []
    publish_all(producer, ((settings.topic(topics.NOTIFICATIONS), n.incident_id, n.model_dump_json().encode())
                           for n in intended))
    # Just ordered: the scheduler's lost-order re-publishing counts its wait from now, not from before the outage
    # (it would otherwise send the same backlog of intents a second time right behind this copy).
    ResponseStore(store).touch([n.idempotency_key for n in intended])
    report = ResumeReport(len(raw), len(pending), reconciled, len(intended))
    log.info("resume%s: %s", "" if partitions is None else f" {dict(partitions)}", report)
    return report


def partition_of(producer: KafkaProducer, topic: str, key: str) -> int:
    """The partition the producer gives `key`: kafka-python's default partitioner (murmur2, as the Java client and
    aiokafka), which publish_all and the faust agents use."""
    every = sorted(producer.partitions_for(topic))
    return every[partition_for(key, len(every))]

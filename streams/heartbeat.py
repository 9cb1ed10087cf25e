"""The heartbeat's pass through each stage: stamp the store, hand on what the next agent expects.

The agents in streams/pipeline.py send a beat here instead of to the ordinary stage, so a beat never makes an
incident, a log entry or a ledger row, never reaches a channel, and counts in no incident metric. It still
needs each agent to be consuming and the store to take a write (under the chain lock, as every stage does).
"""

from pingan.handlers.incidents.heartbeat import beat_incident_event, beat_order
from pingan.schemas.common import utcnow
from pingan.schemas.events import IncidentEvent, RawEvent
from pingan.schemas.notification import Notification
from pingan.store.heartbeat import HeartbeatStore
from pingan.store.repository import Store
from pingan.streams.stages import StageOutput


def triage_beat(store: Store, event: RawEvent) -> StageOutput:
    HeartbeatStore(store).stamp(event.event_id, "triaged", utcnow())
    return StageOutput(incident_events=[beat_incident_event(event)])


def respond_beat(store: Store, event: IncidentEvent) -> StageOutput:
    HeartbeatStore(store).stamp(event.event_id, "responded", utcnow())
    return StageOutput(notifications=[beat_order(event, utcnow())])


def arrive_beat(store: Store, n: Notification) -> StageOutput:
    """The end of the line: the beat went all the way through. The watchdog reads this stamp."""
    HeartbeatStore(store).stamp(n.idempotency_key, "arrived", utcnow())
    return StageOutput()

"""The envelopes carried on the Kafka topics."""

from enum import StrEnum

from pydantic import Field

from pingan.schemas.common import Model, UtcDatetime
from pingan.schemas.incident import Incident, IncidentReport


class RawKind(StrEnum):
    report = "report"  # a new report: creates an incident or joins the open one with its dedup_key
    update = "update"  # changes the open incident with the report's dedup_key (CAP Update)
    close = "close"  # closes it (CAP Cancel, Alertmanager resolved)
    heartbeat = "heartbeat"  # the dead-man's switch's probe: passes every stage, is no incident (handlers/heartbeat.py)


class IntakeItem(Model):
    """What an intake adapter (CAP, Alertmanager, Twilio, JSON) makes of one external message."""

    kind: RawKind = RawKind.report
    report: IncidentReport
    source_key: str | None = Field(
        default=None, max_length=300,
        description="The source's own id for this message (MessageSid, CallSid, CAP sender+identifier+sent…): "
        "the same message accepted twice makes one event",
    )


class RawEvent(Model):
    """On `incidents.raw`, keyed by dedup_key: one accepted intake event, straight from the outbox."""

    event_id: str = Field(min_length=1, max_length=64)
    kind: RawKind = RawKind.report
    proposed_incident_id: str = Field(
        min_length=1, max_length=64, description="The id the incident gets if triage finds nothing to join"
    )
    received_at: UtcDatetime
    report: IncidentReport


class TriageOutcome(StrEnum):
    created = "created"
    correlated = "correlated"
    updated = "updated"
    closed = "closed"
    ignored = "ignored"  # an update or close for which no open incident exists
    heartbeat = "heartbeat"  # a heartbeat on its way to the notifier; nothing is stored as an incident


class IncidentEvent(Model):
    """On `incidents`, keyed by incident id: what triage decided about one raw event."""

    event_id: str
    outcome: TriageOutcome
    incident: Incident

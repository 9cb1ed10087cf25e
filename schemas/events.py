"""The envelopes carried on the Kafka topics."""

from enum import StrEnum

from pydantic import Field

from pingan.schemas.common import Model, UtcDatetime
from pingan.schemas.incident import Incident, IncidentReport

# A CAP message names the earlier messages it follows up; real chains name one to a handful.
MAX_REFERENCES = 100


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
    message_key: str | None = Field(
        default=None, min_length=1, max_length=256,
        description="This message's own key, for later messages that refer to it (CAP: cap:{sender}:{identifier})",
    )
    references: list[str] = Field(
        default_factory=list, max_length=MAX_REFERENCES,
        description="The message keys this one follows up (CAP <references>): an update or close applies to the "
        "incident of any of them, however long the chain",
    )
    partition_key: str | None = Field(
        default=None, min_length=1, max_length=300,
        description="The key `incidents.raw` is partitioned by, when it must not be the dedup_key: every CAP "
        "message of one sender shares a partition, so a follow-up is triaged after the message it names",
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
    # Carried from the IntakeItem; old payloads without them still parse.
    message_key: str | None = Field(default=None, min_length=1, max_length=256)
    references: list[str] = Field(default_factory=list, max_length=MAX_REFERENCES)


class TriageOutcome(StrEnum):
    created = "created"
    correlated = "correlated"
    updated = "updated"
    closed = "closed"
    ignored = "ignored"  # a close for which no open incident exists (its log entry says why)
    heartbeat = "heartbeat"  # a heartbeat on its way to the notifier; nothing is stored as an incident


class IncidentEvent(Model):
    """On `incidents`, keyed by incident id: what triage decided about one raw event."""

    event_id: str
    outcome: TriageOutcome
    incident: Incident

"""The envelopes carried on the Kafka topics."""

from enum import StrEnum

from pingan.schemas.common import Model, UtcDatetime
from pingan.schemas.incident import Incident, IncidentReport
from pydantic import Field


class RawEvent(Model):
    """On `incidents.raw`, keyed by dedup_key: one accepted intake event, straight from the outbox."""

    event_id: str = Field(min_length=1, max_length=64)
    proposed_incident_id: str = Field(
        min_length=1, max_length=64, description="The id the incident gets if triage finds nothing to join"
    )
    received_at: UtcDatetime
    report: IncidentReport


class TriageOutcome(StrEnum):
    created = "created"
    correlated = "correlated"


class IncidentEvent(Model):
    """On `incidents`, keyed by incident id: what triage decided about one raw event."""

    event_id: str
    outcome: TriageOutcome
    incident: Incident

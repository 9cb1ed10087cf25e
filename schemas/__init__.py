"""The pydantic models: the single source of every data shape, and the adapters from external formats."""

from pingan.schemas.action import Action, ActionDraft, ActionKind
from pingan.schemas.directory import Directory
from pingan.schemas.events import IncidentEvent, RawEvent, TriageOutcome
from pingan.schemas.incident import Incident, IncidentReport, Location, Reporter
from pingan.schemas.notification import Channel, DeliveryState, Notification, Recipient
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import (
    Category,
    Grade,
    IncidentState,
    IncidentStatus,
    Source,
    Subtype,
    WarningColour,
)

# Every model whose JSON Schema `pingan schema export` writes.
PUBLIC_MODELS = {
    "incident": Incident,
    "incident_report": IncidentReport,
    "action": Action,
    "notification": Notification,
    "plan": Plan,
    "directory": Directory,
    "raw_event": RawEvent,
    "incident_event": IncidentEvent,
}

__all__ = [
    "PUBLIC_MODELS", "Action", "ActionDraft", "ActionKind", "Category", "Channel", "Directory", "DeliveryState",
    "Grade",
    "Incident", "IncidentEvent", "IncidentReport", "IncidentState", "IncidentStatus", "Location", "Notification",
    "Plan", "RawEvent", "Recipient", "Reporter", "Source", "Subtype", "TriageOutcome", "WarningColour",
]

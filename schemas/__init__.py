"""The pydantic models: the single source of every data shape, and the adapters from external formats.

Names are imported on first use (PEP 562), so importing one light module (pingan.schemas.taxonomy, as the CLI's
option types do) does not build every model: `pingan --help` must start fast."""

from importlib import import_module
from typing import Any

_HOME = {
    "Action": "action", "ActionDraft": "action", "ActionKind": "action",
    "Directory": "directory",
    "IncidentEvent": "events", "RawEvent": "events", "TriageOutcome": "events",
    "Incident": "incident", "IncidentReport": "incident", "Location": "incident", "Reporter": "incident",
    "Channel": "notification", "DeliveryState": "notification", "Notification": "notification",
    "Recipient": "notification",
    "Plan": "plan",
    "Sitrep": "sitrep",
    "Category": "taxonomy", "Grade": "taxonomy", "IncidentState": "taxonomy", "IncidentStatus": "taxonomy",
    "Source": "taxonomy", "Subtype": "taxonomy", "WarningColour": "taxonomy",
}

# Every model whose JSON Schema `pingan schema export` writes: name → model name.
_PUBLIC = {"incident": "Incident", "incident_report": "IncidentReport", "action": "Action",
           "notification": "Notification", "plan": "Plan", "directory": "Directory", "raw_event": "RawEvent",
           "incident_event": "IncidentEvent", "sitrep": "Sitrep"}


def __getattr__(name: str) -> Any:
    if name == "PUBLIC_MODELS":
        return {key: __getattr__(model) for key, model in _PUBLIC.items()}
    if name in _HOME:
        return getattr(import_module(f"pingan.schemas.{_HOME[name]}"), name)
    raise AttributeError(f"module 'pingan.schemas' has no attribute {name!r}")


__all__ = ["PUBLIC_MODELS", *sorted(_HOME)]

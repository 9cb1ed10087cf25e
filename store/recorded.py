"""Stored incidents read back whole: one incident's log as `pingan timeline` shows it, and as `pingan drill replay`
re-runs it (the incident, the raw inputs triage joined to it, its log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from pingan.handlers.drills.replay import RecordedInput
from pingan.schemas.action import Action
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import Incident
from pingan.store.repository import Store
from pingan.store.tables import outbox, triage_events


@dataclass(frozen=True)
class RecordedIncident:
    incident: dict[str, Any]  # the Incident as JSON
    inputs: list[RecordedInput]  # every report, update and close triage joined to it, from the outbox
    timeline: list[dict[str, Any]]  # its log entries as JSON


def recorded(store: Store, incident_id: str) -> RecordedIncident | None:
    """The incident `incident_id` names (its own id or one a report was given), or None when there is none."""
    resolved = store.resolve_incident_id(incident_id)
    incident = store.get_incident(resolved) if resolved else None
    if incident is None:
        return None
    with store.engine.connect() as conn:
        payloads = conn.scalars(select(outbox.c.payload).join(
            triage_events, triage_events.c.event_id == outbox.c.event_id).where(
            triage_events.c.incident_id == incident.id)).all()
    events = [RawEvent.model_validate_json(p) for p in payloads]
    inputs = [RecordedInput(e.received_at, e.kind, e.report) for e in events]
    timeline = [a.model_dump(mode="json") for a in store.timeline(incident.id)]
    return RecordedIncident(incident.model_dump(mode="json"), inputs, timeline)


@dataclass(frozen=True)
class IncidentLog:
    incident: Incident | None  # None for a plan's own entries (`plan:<id>`), a report not yet triaged, an ignored one
    actions: list[Action]
    waiting: bool = False  # accepted, waiting for triage


def incident_log(store: Store, some_id: str) -> IncidentLog | None:
    """The log of the incident `some_id` names (its own id or one a report was given), of a plan (`plan:<id>`: its
    approvals live in the same chain), or of nothing yet for a report still waiting for triage; None when unknown."""
    if some_id.startswith(("plan:", "user:")):  # a plan's approvals, a person's account and sign-ins (issue 13)
        return IncidentLog(None, store.timeline(some_id))
    resolved = store.resolve_incident_id(some_id)
    if resolved is None:
        return IncidentLog(None, [], waiting=True) if store.is_accepted(some_id) else None
    # None for an event triage ignored (a Cancel naming no known message): it has no incident, only its log entry
    # saying why, under the id it was accepted with.
    return IncidentLog(store.get_incident(resolved), store.timeline(resolved))

"""An incident's reports, and the duty officer's merge and split of them, each applied in one transaction."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update

from pingan.handlers.incidents.merge import MERGED_FROM, SPLIT_OUT, MergeDecision, SplitDecision
from pingan.schemas.action import Action
from pingan.schemas.events import RawEvent, TriageOutcome
from pingan.schemas.incident import Incident
from pingan.store.engine import write_tx
from pingan.store.incidents import incident_row
from pingan.store.log import append_actions
from pingan.store.repository import Store
from pingan.store.tables import escalations, incidents, outbox, triage_events


@dataclass(frozen=True)
class ReportRow:
    """One report (警情) of an incident: the intake event, how triage took it, and what it said."""

    event_id: str
    incident_id: str  # the incident triage gave it to (a merged one's reports keep theirs)
    outcome: str
    at: datetime
    event: RawEvent


def _ids(incident: Incident, key: str) -> list[str]:
    return [v for v in incident.labels.get(key, "").split(",") if v]


def reports_of(store: Store, incident: Incident) -> list[ReportRow]:
    """The incident's reports, its merged incidents' included and split-out ones left out, oldest first."""
    owners = [incident.id, *_ids(incident, MERGED_FROM)]
    gone = set(_ids(incident, SPLIT_OUT))
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(triage_events.c.event_id, triage_events.c.incident_id, triage_events.c.outcome,
                   triage_events.c.at, outbox.c.payload)
            .join(outbox, outbox.c.event_id == triage_events.c.event_id)
            .where(and_(triage_events.c.incident_id.in_(owners),
                        triage_events.c.outcome.in_([TriageOutcome.created.value, TriageOutcome.correlated.value,
                                                     TriageOutcome.updated.value])))
            .order_by(triage_events.c.at, triage_events.c.event_id)
        ).all()
    return [ReportRow(r.event_id, r.incident_id, r.outcome, r.at, RawEvent.model_validate_json(r.payload))
            for r in rows if r.event_id not in gone]


def first_event_id(store: Store, incident_id: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.scalar(select(triage_events.c.event_id).where(and_(
            triage_events.c.incident_id == incident_id, triage_events.c.outcome == TriageOutcome.created.value)))


def apply_merge(store: Store, decision: MergeDecision) -> list[Action]:
    """Both incidents' new state, the source's escalations stopped, and the log entries: all or nothing."""
    with write_tx(store.engine) as conn:
        for incident in (decision.target, decision.source):
            conn.execute(update(incidents).where(incidents.c.id == incident.id).values(**incident_row(incident)))
        conn.execute(update(escalations).where(and_(escalations.c.incident_id == decision.source.id,
                                                    escalations.c.state == "pending")).values(state="cancelled"))
        return append_actions(conn, decision.actions)


def apply_split(store: Store, decision: SplitDecision) -> list[Action]:
    with write_tx(store.engine) as conn:
        conn.execute(update(incidents).where(incidents.c.id == decision.incident.id)
                     .values(**incident_row(decision.incident)))
        return append_actions(conn, decision.actions)

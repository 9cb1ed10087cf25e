"""The work of each pipeline stage: read the store, call a pure handler, commit, say what to emit.

Agents stay thin: they parse a message, run one of these in a thread (the store is blocking I/O),
and send what it returns. Every stage is idempotent, so a replayed topic or a re-published outbox
writes no duplicate rows and sends nothing twice.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pingan import metrics
from pingan.handlers.channels.base import ChannelAdapter
from pingan.handlers.incidents.areas import AreaVerdict, DistrictCheck, area_draft, needs_area_check
from pingan.handlers.incidents.broadcast import is_public
from pingan.handlers.incidents.correlation import best_fit, causes, joinable
from pingan.handlers.incidents.delivery import after_send
from pingan.handlers.incidents.escalation import deadlines, grade_raise
from pingan.handlers.incidents.placement import Placer, placed_report
from pingan.handlers.incidents.response import respond
from pingan.handlers.incidents.triage import needs_window, triage
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.action import Action
from pingan.schemas.common import utcnow
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome, SendResult
from pingan.schemas.events import IncidentEvent, RawEvent, RawKind, TriageOutcome
from pingan.schemas.incident import Incident
from pingan.schemas.notification import DeliveryState, Notification
from pingan.schemas.taxonomy import IncidentStatus
from pingan.store.drills import DrillStore
from pingan.store.ledger import HELD_BACK_UNTRIED, LedgerEntry
from pingan.store.message_keys import MessageKeys
from pingan.store.repository import Store
from pingan.store.response import ResponseStore
from pingan.store.subscriptions import UNSUBSCRIBED, SubscriptionStore
from pingan.streams.attempt import Tried, settlement, try_once

log = logging.getLogger(__name__)


@dataclass
class StageOutput:
    incident_events: list[IncidentEvent] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


def triage_stage(store: Store, event: RawEvent, window: timedelta, cached_id: str | None = None,
                 areas: DistrictCheck | None = None, placer: Placer | None = None) -> StageOutput:
    """`cached_id` is the faust Table's guess at the open incident for this dedup_key; the store decides.
    `areas`: the district check, so that a report never joins a warning recorded as outside our area.
    `window` is in the incident's minutes: a drill's report joins within the window of the drill's clock.
    `placer`: the district's area hierarchy; triage places the report in it (None: reports stay unplaced)."""
    if store.was_ignored(event.event_id):
        return StageOutput()
    window = window / DrillStore(store).clock_of(event.report)
    earlier = store.triage_result(event.event_id)
    if earlier is not None:
        # A replay: re-emit what was decided, so a lost downstream message is sent again.
        return StageOutput(incident_events=[earlier])
    candidate = store.get_incident(cached_id) if cached_id and not event.references else None
    if event.references:
        # A CAP Update or Cancel: the incident of any message it names, however far down its chain (services name
        # the latest message, not the first); a closed one comes back too, so triage can say so.
        candidate = MessageKeys(store).incident_for(event.references, event.report.status.value)
    elif candidate is None or candidate.state.value == "closed":
        since = event.received_at - window if needs_window(event) else None
        candidate = store.open_incident_for(event.report.effective_dedup_key(), event.report.status.value, since)
    if candidate is None and event.kind is RawKind.report and joinable(event.report):
        # No open incident with this key: one from another source may still be the same event (a citizen's text
        # about fallen trees under an observatory's typhoon warning). Placed first, so reports from one grid fit.
        report = placed_report(event.report, placer) if placer is not None else event.report
        candidates = store.open_incidents_like(report.status.value, report.category.value,
                                               [s.value for s in causes(report.subtype)], event.received_at - window)
        # Not a warning for another place: a resident's fire must not join a bushfire alert from abroad.
        candidates = [c for c in candidates if (v := _area_verdict(areas, c)) is None or v.inside]
        candidate = best_fit(report, event.received_at, candidates, window)
    decision = triage(event, candidate, window, placer)
    emitted, logged = store.apply_triage(event.event_id, decision.outcome, decision.incident, decision.actions,
                                         message_keys=[event.message_key] if event.message_key else [])
    if logged:  # decided now, not a replay
        metrics.stage_latency("intake_to_triage", metrics.seconds_since(event.received_at), event.report.status)
        if emitted.outcome is TriageOutcome.created:
            metrics.incident_created(emitted.incident)
    if emitted.outcome is TriageOutcome.ignored:
        if logged:
            log.info("ignored %s event %s (accepted as %s): %s", event.kind.value, event.event_id,
                     event.proposed_incident_id, logged[0].details.get("reason"))
        return StageOutput(actions=logged)
    return StageOutput(incident_events=[emitted], actions=logged)


def _schedule(store: Store, plans: PlanSet, incident: Incident, plan_id: str | None, grade: str,
              time_scale: float, activated_at: datetime | None = None) -> None:
    """The level's deadlines at the incident's clock: its drill's speed, else `time_scale` (the stack's). They count
    from `activated_at`, the time its `plan_activated` entry says (not from after that decision's commit, which made
    every delayed step as late as the commit took)."""
    plan = plans.get(plan_id) if plan_id else None
    level = plan.level(grade) if plan else None  # type: ignore[arg-type]
    if plan is not None and level is not None:
        ResponseStore(store).schedule(incident.id, plan.id, plan.version, grade, activated_at or utcnow(),
                                      deadlines(level), DrillStore(store).clock_of(incident, time_scale))


def _area_verdict(areas: DistrictCheck | None, incident: Incident) -> AreaVerdict | None:
    """The district check's verdict on a warning, or None when the check is off or the incident is not a warning."""
    return areas.verdict(incident.areas) if areas is not None and needs_area_check(incident) else None


def response_stage(store: Store, plans: PlanSet, event: IncidentEvent, time_scale: float = 1.0,
                   areas: DistrictCheck | None = None) -> StageOutput:
    """`areas`: the district check (None: off). A warning for an area outside the district is recorded as such,
    with no plan and nobody told; one inside, or naming no area, is planned as usual. Both are logged."""
    if event.outcome is TriageOutcome.updated:
        return regrade_stage(store, plans, event, time_scale, areas)
    if event.outcome is TriageOutcome.correlated:
        return escalate_grade_stage(store, plans, event, time_scale, areas)
    if event.outcome is not TriageOutcome.created:
        return StageOutput()  # a correlated report is logged by triage and tells nobody again
    incident = event.incident
    if store.response_decided(incident.id):
        # A replay: re-emit the intents that were never handed to a channel, and make sure of the deadlines.
        pending = [e.notification for e in store.ledger_for(incident.id) if e.state is DeliveryState.intended]
        _schedule(store, plans, incident, store.response_plan(incident.id), incident.grade.value, time_scale)
        return StageOutput(notifications=pending)
    verdict = _area_verdict(areas, incident)
    checked = [area_draft(incident, verdict, utcnow())] if verdict is not None else []
    if verdict is not None and not verdict.inside:
        logged = store.apply_response(incident.id, None, None, [], checked, grade=incident.grade.value)
        if logged:
            log.info("incident %s is outside our area, no plan: %s", incident.id, verdict.reason)
        return StageOutput(actions=logged)
    now = utcnow()
    decision = respond(incident, plans, now)
    logged = store.apply_response(
        incident.id, decision.plan_id, decision.plan_version, decision.notifications, [*checked, *decision.actions],
        grade=incident.grade.value,
    )
    if logged:
        metrics.triage_to_match(store, event.event_id, incident.status)
    _schedule(store, plans, incident, decision.plan_id, incident.grade.value, time_scale, now)
    if not logged:  # another worker decided first; its intents are in the ledger
        pending = [e.notification for e in store.ledger_for(incident.id) if e.state is DeliveryState.intended]
        return StageOutput(notifications=pending)
    return StageOutput(notifications=decision.notifications, actions=logged)


def escalate_grade_stage(store: Store, plans: PlanSet, event: IncidentEvent, time_scale: float,
                         areas: DistrictCheck | None = None) -> StageOutput:
    """A correlated report may trip the plan's escalate_grade rules (10 reports in 15 minutes, casualties ≥ 3…)."""
    incident = store.get_incident(event.incident.id) or event.incident
    plan = plans.get(store.response_plan(incident.id) or "")
    if plan is None or not plan.escalate_grade:
        return StageOutput()
    # Only the reports inside the widest rule window, from triage's own rows: reading the whole log here made each
    # correlated report cost as much as all before it (a surge of 250 reports about one event is 31,000 entries).
    # The windows are the incident's minutes: a drill's at its speed, an actual incident's real ones.
    scale = DrillStore(store).clock_of(incident)
    widest = max((r.within_min or 0 for r in plan.escalate_grade), default=0)
    since = (incident.last_report_at or utcnow()) - timedelta(minutes=widest / scale)
    times = ResponseStore(store).report_times(incident.id, since)
    raised = grade_raise(plan.escalate_grade, incident.grade.value, times, incident.last_report_at or utcnow(),
                         incident.labels, scale)
    if raised is None:
        return StageOutput()
    grade, rule = raised
    changed = ResponseStore(store).raise_grade(incident, grade, rule)
    if changed is None:
        return StageOutput()
    out = regrade_stage(store, plans, IncidentEvent(event_id=event.event_id, outcome=TriageOutcome.updated,
                                                    incident=changed), time_scale, areas)
    return out


def regrade_stage(store: Store, plans: PlanSet, event: IncidentEvent, time_scale: float,
                  areas: DistrictCheck | None = None) -> StageOutput:
    """A grade change re-plans: the new level's chain is told now and its deadlines replace the old ones."""
    incident = event.incident
    responses = ResponseStore(store)
    if not store.response_decided(incident.id) or responses.response_grade(incident.id) == incident.grade.value:
        return StageOutput()
    verdict = _area_verdict(areas, incident)
    if verdict is not None and not verdict.inside:
        return StageOutput()  # still not ours (a CAP Update keeps its areas or names new ones): no plan at any grade
    now = utcnow()
    decision = respond(incident, plans, now)
    logged = responses.regrade(incident.id, incident.grade.value, decision.plan_id, decision.plan_version,
                               decision.notifications, decision.actions)
    _schedule(store, plans, incident, decision.plan_id, incident.grade.value, time_scale, now)
    pending = {e.notification.idempotency_key for e in store.ledger_for(incident.id)
               if e.state is DeliveryState.intended}
    return StageOutput(notifications=[n for n in decision.notifications if n.idempotency_key in pending],
                       actions=logged)


def channel_for(n: Notification, channels: dict[str, ChannelAdapter],
                live_participants: frozenset[str] | None) -> ChannelAdapter | str:
    """The adapter that may carry `n`, or why none may. The drill sandbox rule lives here, in the notifier
    itself, so that no path can leak: exercise and test traffic is recorded in the sandbox and never sent,
    unless the drill runs with live participants, and then only to those listed."""
    if n.incident_status is IncidentStatus.actual:
        return channels.get(n.channel.value) or f"channel {n.channel.value} is not configured"
    if live_participants is None:
        return channels.get("sandbox") or "no sandbox channel for exercise traffic"
    if n.recipient.id not in live_participants:
        return f"refused: {n.recipient.id} is not a listed participant of this {n.incident_status.value}"
    return channels.get(n.channel.value) or f"channel {n.channel.value} is not configured"


def _live_for(store: Store, n: Notification, configured: frozenset[str] | None) -> frozenset[str] | None:
    """The operator's PINGAN_DRILL_LIVE_PARTICIPANTS, else the live participants its drill run registered."""
    if n.incident_status is IncidentStatus.actual or configured is not None:
        return configured
    return DrillStore(store).live_participants(n.drill_run)


def notify_stage(store: Store, channels: dict[str, ChannelAdapter], n: Notification,
                 live_participants: frozenset[str] | None = None) -> StageOutput:
    """Send one intent at most once (the concurrent notifier, streams/notifier.py, does the same in batches).
    A transient failure goes back to `intended`; the scheduler retries it with backoff, and every retry first
    asks the channel whether an earlier attempt went out after all (streams/attempt.py)."""
    if not store.claim(n.idempotency_key):
        return StageOutput()  # sent, sending or finished already: at most once
    entry = store.ledger_entry(n.idempotency_key)
    attempt = entry.attempts if entry else 1
    chosen = channel_for(n, channels, _live_for(store, n, live_participants))
    if is_public(n) and SubscriptionStore(store).opted_out([n.recipient.address]):
        chosen = UNSUBSCRIBED  # a public broadcast SMS to a number that sent 退订 since it was planned (issue 17)
    if isinstance(chosen, str):
        tried = Tried(SendResult(SendOutcome.permanent_failure, detail=chosen), True)
        via = None
    else:
        tried_before = attempt > 1 and (entry is None or entry.detail != HELD_BACK_UNTRIED)
        tried, via = try_once(chosen, n, attempt, tried_before), chosen.name
    if tried.sent and tried.result is not None:
        metrics.send_result(via or n.channel.value, n, tried.result)
    settled = settlement(n, tried, attempt, via)
    if settled.state is DeliveryState.intended and tried.result is not None:
        log.warning("transient failure on %s, attempt %d: %s", n.channel.value, attempt, tried.result.detail)
    return StageOutput(actions=store.settle([settled]))


def reconcile_sending(store: Store, channels: dict[str, ChannelAdapter],
                      live_participants: frozenset[str] | None = None,
                      entries: list[LedgerEntry] | None = None) -> StageOutput:
    """After a crash: settle every notification left "sending" (or just `entries`). Sends nothing itself."""
    out = StageOutput()
    for entry in store.ledger_in_state(DeliveryState.sending) if entries is None else entries:
        n = entry.notification
        chosen = channel_for(n, channels, _live_for(store, n, live_participants))
        channel = None if isinstance(chosen, str) else chosen
        verdict = channel.reconcile(n) if channel else None
        if verdict is not None and verdict.outcome in (ReconcileOutcome.not_sent, ReconcileOutcome.unknown):
            # not_sent: safe to send. unknown: release too; the notifier asks the channel again before any
            # resend and only sends on a clear not_sent (attempts are already >= 1).
            store.release(n.idempotency_key, verdict.detail or "reconciled: not sent")
            out.notifications.append(n)
            continue
        if verdict is not None and verdict.outcome is ReconcileOutcome.sent:
            outcome = SendOutcome.delivered if channel and channel.name in ("console", "sandbox") \
                else SendOutcome.accepted
            result = SendResult(outcome, provider_id=verdict.provider_id, detail="reconciled after restart")
        else:
            # No channel can carry it any more (not configured, or a refused drill recipient): record why.
            detail = verdict.detail if verdict else str(chosen)
            result = SendResult(SendOutcome.permanent_failure, detail=f"outcome unknown after restart: {detail}")
        decision = after_send(n, result, entry.attempts, utcnow(), channel.name if channel else None)
        out.actions += store.record_result(n.idempotency_key, decision.state, result.provider_id, result.detail,
                                           decision.actions)
    return out

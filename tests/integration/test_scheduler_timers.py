"""The escalation scheduler fires a deadline on time and its orders reach the notifications topic the first time
(issue 14, findings 10 and 12). Real store (both databases), real broker, the scheduler's own thread.

Before: a delayed step (a `step` deadline, which logs no entry of its own) was fired in the store but its order was
never published, because the store answered "fired, no log entries" with the same empty list as "another worker
fired it"; the order went 2 s later with the re-publish of lost intents. And the scheduler polled every 0.5 s, so a
deadline fired up to half a second late.
"""

import json
import time
from datetime import timedelta

from kafka import KafkaConsumer
from sqlalchemy import select, update

from pingan.bootstrap import Services
from pingan.handlers.incidents.escalation import Deadline, DeadlineKind
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.common import utcnow
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.store.response import ResponseStore
from pingan.store.tables import escalations, notifications
from pingan.streams import topics
from pingan.streams.producer import make_producer
from pingan.streams.scheduler import Scheduler
from pingan.streams.stages import response_stage, triage_stage
from pingan.streams.topics import ensure_topics

PLANS = load_plans(PLANS_DIR)


def _fire_incident(store: Store) -> str:
    """A building fire at grade III, triaged and planned (its t+0 orders are in the ledger, its deadlines stored)."""
    item = IntakeItem(report=IncidentReport(category="accident_disaster", subtype="fire", grade="III",
                                            title="仓库起火", dedup_key="warehouse"))
    accepted = store.accept(item, "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    event = triage_stage(store, RawEvent.model_validate_json(row.payload), timedelta(hours=1)).incident_events[0]
    response_stage(store, PLANS, event)
    return event.incident.id


def _orders(bootstrap: str, topic: str) -> list[dict]:  # type: ignore[type-arg]
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def test_a_delayed_steps_first_publish_reaches_the_topic(db_url: str, tmp_path, broker_bootstrap: str,  # type: ignore[no-untyped-def]
                                                         topic_prefix: str) -> None:
    settings = Settings(data_dir=tmp_path, topic_prefix=topic_prefix, kafka_bootstrap_servers=broker_bootstrap)
    ensure_topics(broker_bootstrap, settings)
    store = Store(db_url)
    incident_id = _fire_incident(store)
    responses = ResponseStore(store)
    step = next(r for r in responses.pending(incident_id) if r.kind == DeadlineKind.step)
    assert step.step_id == "commander-voice"  # t+10: a plain delayed step, no `escalated` entry of its own
    # Due now (at 60x; real time would take ten minutes). Not later: an intent 2 s old goes again with the
    # re-publish of lost ones, which would hide a first publish that never happened.
    with store.engine.begin() as conn:
        conn.execute(update(escalations).where(escalations.c.id == step.id).values(due_at=utcnow()))
    scheduler = Scheduler(Services(settings, store, PLANS), broker_bootstrap)
    producer = make_producer(broker_bootstrap)
    try:
        scheduler.tick(producer)
    finally:
        producer.close(timeout=2)
    sent = [o for o in _orders(broker_bootstrap, settings.topic(topics.NOTIFICATIONS)) if o["step"] == step.step_id]
    ledger = [e for e in store.ledger_for(incident_id) if e.notification.step == step.step_id]
    assert ledger, "the step fired: its intent is in the ledger"
    assert [o["idempotency_key"] for o in sent] == [e.notification.idempotency_key for e in ledger], \
        "the delayed step's order was not published when it fired"
    store.close()


def test_deadlines_fire_within_100_ms_of_their_due_time(db_url: str, tmp_path, broker_bootstrap: str,  # type: ignore[no-untyped-def]
                                                        topic_prefix: str) -> None:
    """Deadlines written after the scheduler started (waking it) fire within 100 ms of due, however they fall
    between what used to be its polls."""
    settings = Settings(data_dir=tmp_path, topic_prefix=topic_prefix, kafka_bootstrap_servers=broker_bootstrap)
    ensure_topics(broker_bootstrap, settings)
    store = Store(db_url)
    incident_id = _fire_incident(store)
    responses = ResponseStore(store)
    plan = PLANS.get("building-fire")
    assert plan is not None
    scheduler = Scheduler(Services(settings, store, PLANS), broker_bootstrap)
    scheduler.start()
    try:
        time.sleep(1.0)  # the scheduler is idle, waiting for its next due time (10 plan minutes away)
        start = utcnow()
        # Five repeats of one step, due 0.73 s to 2.53 s from now, at offsets no fixed poll would all meet.
        rows = [Deadline("duty-officer-sms", DeadlineKind.repeat, 10 + k, 0.73 + 0.45 * k, True) for k in range(5)]
        responses.schedule(incident_id, plan.id, plan.version, "III", start, rows, time_scale=60.0)
        due = {r.attempt: r.due_at for r in responses.pending(incident_id) if r.attempt >= 10}
        assert len(due) == 5
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_fired(store, incident_id)) < 5:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    fired = _fired(store, incident_id)
    late = {attempt: round((at - due[attempt]).total_seconds(), 3) for attempt, at in fired.items()}
    assert len(late) == 5 and all(0 <= s <= 0.1 for s in late.values()), f"seconds late per attempt: {late}"
    store.close()


def _fired(store: Store, incident_id: str) -> dict[int, object]:
    """attempt -> when its repeat's intent was written (the moment the scheduler fired it)."""
    out = {}
    with store.engine.connect() as conn:
        rows = conn.execute(select(notifications.c.body, notifications.c.created_at).where(
            notifications.c.incident_id == incident_id)).all()
    for body, created in rows:
        n = json.loads(body)
        if n["step"] == "duty-officer-sms" and n.get("attempt", 1) >= 10:
            out[n["attempt"]] = created
    return out

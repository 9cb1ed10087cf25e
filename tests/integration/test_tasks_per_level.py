"""A plan task is done once per plan level (issue 14, finding 12): report-city done at grade III can be reported
again once the incident runs at grade II (the grade II level has its own report-city, with its own deadline), and
the drill scoring reads each level's own report. Real store (SQLite and PostgreSQL), the real stages."""

from datetime import UTC, datetime, timedelta

import pytest

from pingan.commands import run_command
from pingan.handlers.drills.scoring import score_incident
from pingan.handlers.incidents.escalation import Command, CommandRefused
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IntakeItem, RawEvent, RawKind
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage

WINDOW = timedelta(hours=1)
PLANS = load_plans(PLANS_DIR)


def typhoon(store: Store, kind: RawKind, grade: str) -> None:
    report = IncidentReport(category="natural_disaster", subtype="meteorological", hazard="typhoon", grade=grade,
                            title="台风", dedup_key="cap:weather:typhoon-tasks", source="cap")
    accepted = store.accept(IntakeItem(kind=kind, report=report), "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
        response_stage(store, PLANS, event, time_scale=1.0)


def test_a_task_done_at_grade_iii_is_done_again_at_grade_ii_and_both_are_scored(store: Store) -> None:
    typhoon(store, RawKind.report, "III")
    incident = store.list_incidents().items[0]
    run_command(store, PLANS, incident.id, Command.task_done, "xu-jing", task="report-city")
    with pytest.raises(CommandRefused, match="already done at grade III"):
        run_command(store, PLANS, incident.id, Command.task_done, "xu-jing", task="report-city")

    typhoon(store, RawKind.update, "II")
    run_command(store, PLANS, incident.id, Command.task_done, "chen-jianhua", task="report-city")
    with pytest.raises(CommandRefused, match="already done at grade II"):
        run_command(store, PLANS, incident.id, Command.task_done, "chen-jianhua", task="report-city")

    done = [(a.details["task"], a.details["level"], a.actor) for a in store.timeline(incident.id)
            if a.kind.value == "task_done"]
    assert done == [("report-city", "III", "xu-jing"), ("report-city", "II", "chen-jianhua")]

    timeline = [a.model_dump(mode="json") for a in store.timeline(incident.id)]
    current = store.get_incident(incident.id)
    assert current is not None
    scored = score_incident("warning", {"incident": current.model_dump(mode="json"), "timeline": timeline}, PLANS,
                            time_scale=1.0, ended_at=datetime.now(UTC), drill_started_at=incident.received_at)
    by_level = {lv["grade"]: {t["task"]: t for t in lv["tasks"]} for lv in scored["levels"]}
    assert by_level["III"]["report-city"]["result"] == "met" and by_level["III"]["report-city"]["by"] == "xu-jing"
    assert by_level["II"]["report-city"]["result"] == "met"
    assert by_level["II"]["report-city"]["by"] == "chen-jianhua"
    assert scored["figures"]["tasks"]["done"] == 2

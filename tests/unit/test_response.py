"""respond(): the response decision for a new incident, on the shipped plans: an incident no specific plan covers
still reaches the duty room through the catch-all, with the reason in the log and on the console line."""

from datetime import UTC, datetime

import pytest

from pingan.handlers.incidents.response import respond
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.plans import PLANS_DIR
from pingan.schemas.action import ActionKind
from pingan.schemas.incident import Incident

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> PlanSet:
    return load_plans(PLANS_DIR)


def incident(category: str, subtype: str, grade: str, hazard: str | None = None) -> Incident:
    return Incident(id="INC-1", dedup_key="k", received_at=T0, category=category, subtype=subtype, grade=grade,
                    hazard=hazard, title="井盖缺失")


def test_an_unplanned_incident_activates_the_catch_all_and_tells_the_duty_room_why(shipped: PlanSet) -> None:
    decision = respond(incident("accident_disaster", "public_facility", "IV"), shipped, T0)
    assert decision.plan_id == "general-incident"
    [action] = decision.actions
    assert action.kind is ActionKind.plan_activated and action.details["catch_all"] is True
    assert action.details["reason"].startswith("no plan for this category and grade")
    console = [n for n in decision.notifications if n.channel.value == "console"]
    assert console and all("无对应预案" in n.text and "accident_disaster/public_facility IV级" in n.text
                           for n in console)
    sms = [n for n in decision.notifications if n.channel.value == "twilio_sms"]
    duty_officers = set(shipped.directory.rosters["duty-officer"].members)
    assert sms and {n.recipient.id for n in sms} <= duty_officers  # the duty leader on shift, by SMS


def test_a_specific_plan_keeps_its_activation_shape(shipped: PlanSet) -> None:
    decision = respond(incident("accident_disaster", "fire", "III"), shipped, T0)
    assert decision.plan_id == "building-fire" and "catch_all" not in decision.actions[0].details


def test_a_set_without_a_catch_all_logs_no_plan() -> None:
    decision = respond(incident("accident_disaster", "public_facility", "IV"), PlanSet.empty(), T0)
    assert decision.plan_id is None and decision.notifications == []
    [action] = decision.actions
    assert action.kind is ActionKind.no_plan and action.details["reason"].startswith("no plan covers")

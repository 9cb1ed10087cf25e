"""Dispatch orders from an activated plan: who, over which channel, with what text and key."""

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingan.handlers.incidents.notify import MAX_TEXT, build_notifications, render
from pingan.handlers.plans.directory import DirectoryIndex, on_duty
from pingan.schemas.directory import Directory, Roster
from pingan.schemas.incident import Incident, Location
from pingan.schemas.notification import Channel
from pingan.schemas.plan import Plan

T0 = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)  # 16:30 in Asia/Shanghai

DIRECTORY = DirectoryIndex.of(Directory.model_validate({
    "people": [
        {"id": "zhang", "name": "张伟", "contacts": {"sms": "+12025550101", "console": "duty-room"}},
        {"id": "li", "name": "李娜", "contacts": {"sms": "+12025550102", "console": "duty-room"}},
        {"id": "wang", "name": "王强", "lang": "en", "contacts": {"sms": "+12025550103"}},
        {"id": "chen", "name": "陈静", "contacts": {"email": "chen@example.org"}},
    ],
    "departments": [{"id": "fire", "name": {"zh": "区消防救援大队"}, "duty_roster": "duty-room"},
                    {"id": "health", "name": {"zh": "区卫健局"}, "contact": "chen"}],
    "rosters": [{"id": "duty-room", "name": {"zh": "区应急值班室"}, "members": ["zhang", "li"],
                 "rotation": {"kind": "daily", "handoff": "08:00", "start": "2026-11-01"}}],
}))


def fire(grade: str = "III", status: str = "actual", **extra: Any) -> Incident:
    return Incident(id="INC-0001", dedup_key="k", received_at=T0, category="accident_disaster", subtype="fire",
                    grade=grade, status=status, title="仓库起火", location=Location(area_name="东湖街道"), **extra)


def make_plan(steps: list[dict[str, Any]], command: dict[str, Any] | None = None) -> Plan:
    return Plan.model_validate({
        "id": "custom", "version": 3, "title": {"zh": "测试预案", "en": "Test Plan"}, "owner": "fire",
        "applies_to": {"category": "accident_disaster"},
        "levels": [{"grade": g, "response_level": f"{g}级响应", "command": command or {"commander": {"person": "wang"}},
                    "notify": steps} for g in ("I", "II", "III", "IV")],
    })


STEP = {"id": "first", "targets": [{"roster": "duty-room"}], "channels": ["console", "sms"],
        "template": {"zh": "【{grade_name}】{title}（{area}）启动《{plan}》{level}，编号 {id}",
                     "en": "[{grade_name}] {title} ({area}): {plan}, {level}, ref {id}"}}


def test_on_duty_follows_the_rotation_and_overrides() -> None:
    roster = DIRECTORY.rosters["duty-room"]
    day0 = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)  # 08:30 Shanghai: the first shift, zhang
    assert on_duty(roster, day0) == "zhang"
    assert on_duty(roster, datetime(2026, 11, 1, 23, 0, tzinfo=UTC)) == "zhang"  # 07:00 next day: before handoff
    assert on_duty(roster, datetime(2026, 11, 2, 0, 0, tzinfo=UTC)) == "li"  # 08:00: handed over
    assert on_duty(roster, datetime(2026, 11, 3, 0, 0, tzinfo=UTC)) == "zhang"
    covered = Roster.model_validate({**roster.model_dump(), "overrides": [
        {"person": "wang", "covers": "zhang", "start": day0, "end": datetime(2026, 11, 1, 10, tzinfo=UTC)}]})
    assert on_duty(covered, day0) == "wang"


def test_roster_step_reaches_the_person_on_duty_on_every_channel() -> None:
    orders = build_notifications(fire(), make_plan([STEP]), T0, DIRECTORY)
    on_call = on_duty(DIRECTORY.rosters["duty-room"], T0)
    assert [(n.recipient.id, n.channel) for n in orders.notifications] == [
        (on_call, Channel.console), (on_call, Channel.twilio_sms)]
    text = orders.notifications[0].text
    assert text == "【较大】仓库起火（东湖街道）启动《测试预案》III级响应，编号 INC-0001"
    assert orders.unreachable == []


def test_delayed_steps_wait_for_the_escalation_schedule() -> None:
    later = {**STEP, "id": "later", "delay_min": 5, "targets": [{"role": "commander"}], "channels": ["voice"]}
    orders = build_notifications(fire(), make_plan([STEP, later]), T0, DIRECTORY)
    assert {n.step for n in orders.notifications} == {"first"}


def test_role_and_department_targets_resolve() -> None:
    step = {**STEP, "targets": [{"role": "commander"}, {"department": "health"}], "channels": ["sms", "email"]}
    orders = build_notifications(fire(), make_plan([step]), T0, DIRECTORY)
    got = {(n.recipient.id, n.channel) for n in orders.notifications}
    assert got == {("wang", Channel.twilio_sms), ("chen", Channel.email)}
    wang = next(n for n in orders.notifications if n.recipient.id == "wang")
    assert wang.text.startswith("[relatively serious] 仓库起火 (东湖街道): Test Plan")  # wang reads English
    assert "chen has no sms contact" in " ".join(orders.unreachable)
    assert "wang has no email contact" in " ".join(orders.unreachable)


def test_unknown_target_is_reported_not_sent() -> None:
    step = {**STEP, "targets": [{"roster": "nobody"}]}
    orders = build_notifications(fire(), make_plan([step]), T0, DIRECTORY)
    assert orders.notifications == [] and "roster:nobody (resolves to nobody)" in orders.unreachable[0]


def test_keys_are_stable_and_distinct() -> None:
    plan = make_plan([STEP, {**STEP, "id": "second"}])
    first = build_notifications(fire(), plan, T0, DIRECTORY).notifications
    again = build_notifications(fire(), plan, T0, DIRECTORY).notifications
    assert [n.idempotency_key for n in first] == [n.idempotency_key for n in again]
    assert len({n.idempotency_key for n in first}) == 4


@pytest.mark.parametrize(("status", "prefix"), [("exercise", "【演练】"), ("test", "【测试】")])
def test_exercise_and_test_are_prefixed(status: str, prefix: str) -> None:
    orders = build_notifications(fire(status=status), make_plan([STEP]), T0, DIRECTORY)
    assert all(n.text.startswith(prefix) for n in orders.notifications)
    assert all(n.incident_status.value == status for n in orders.notifications)


def test_unknown_placeholder_left_visible() -> None:
    assert render("{title} {nope} {title.upper} {0}", {"title": "火"}) == "火 {nope} {title.upper} {0}"
    assert render("unbalanced {title", {"title": "火"}) == "unbalanced {title"


def test_long_text_is_truncated_keeping_the_drill_prefix() -> None:
    step = {**STEP, "template": {"zh": "x" * 5000}}
    (n, *_) = build_notifications(fire(status="exercise"), make_plan([step]), T0, DIRECTORY).notifications
    assert len(n.text) == MAX_TEXT and n.text.startswith("【演练】") and n.text.endswith("…")


@given(st.lists(st.sampled_from(["zhang", "li", "wang"]), min_size=1, max_size=3, unique=True),
       st.integers(min_value=1, max_value=4))
def test_keys_unique_per_step_and_person(people: list[str], steps: int) -> None:
    plan = make_plan([{**STEP, "id": f"s{i}", "targets": [{"person": p} for p in people], "channels": ["sms"]}
                      for i in range(steps)])
    orders = build_notifications(fire(), plan, T0, DIRECTORY).notifications
    assert len(orders) == len(people) * steps
    assert len({n.idempotency_key for n in orders}) == len(orders)

"""Dispatch orders from an activated plan: who, over which channel, with what text and key."""

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingan.handlers.notify import MAX_TEXT, build_notifications, placeholder_values, render
from pingan.handlers.plan_loader import PLACEHOLDERS, PlanSet, load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.incident import Incident, Location
from pingan.schemas.notification import Channel, idempotency_key
from pingan.schemas.plan import Plan

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> PlanSet:
    return load_plans(PLANS_DIR)


def fire(grade: str = "III", status: str = "actual", incident_id: str = "INC-20261125-0001",
         area_name: str | None = "福田区华强北街道", **extra: Any) -> Incident:
    return Incident(id=incident_id, dedup_key="k", received_at=T0, category="accident_disaster",
                    subtype="fire", grade=grade, status=status, title="仓库起火",
                    location=Location(area_name=area_name), **extra)


def custom_plan(template: dict[str, str], recipients: list[dict[str, Any]] | None = None,
                steps: int = 1) -> Plan:
    recipients = recipients or [
        {"id": "duty-room", "name": "值班室", "channel": "console", "address": "duty-room"},
    ]
    return Plan.model_validate({
        "id": "custom", "version": 3, "title": {"zh": "测试预案", "en": "Test Plan"},
        "applies_to": {"category": "accident_disaster"},
        "notify": [{"id": f"step-{i}", "recipients": recipients, "template": template} for i in range(steps)],
    })


def test_grade_three_fire_is_exactly_one_console_notification(shipped: PlanSet) -> None:
    incident = fire("III")
    plan = shipped.get("building-fire")
    assert plan is not None
    (n,) = build_notifications(incident, plan, T0)
    assert n.channel is Channel.console
    assert n.recipient.id == "duty-room" and n.recipient.address == "duty-room"
    assert incident.id in n.text
    assert n.text == ("【较大】仓库起火（福田区华强北街道）已启动《区建筑火灾事故应急预案》III级响应，"
                      "请立即响应。编号 INC-20261125-0001")
    assert (n.incident_id, n.plan_id, n.plan_version, n.step, n.attempt) == (incident.id, "building-fire", 1,
                                                                             "duty-room", 1)
    assert n.created_at == T0 and n.incident_status.value == "actual"


def test_grade_one_adds_sms_to_commanders(shipped: PlanSet) -> None:
    for plan in shipped:
        orders = build_notifications(fire("I"), plan, T0)
        channels = [n.channel for n in orders]
        assert channels[0] is Channel.console and channels.count(Channel.console) == 1
        sms = [n for n in orders if n.channel is Channel.twilio_sms]
        assert len(sms) >= 2 and all(n.recipient.address.startswith("+86138") for n in sms)
        assert all("INC-20261125-0001" in n.text and "特别重大" in n.text for n in orders)


def test_order_follows_the_plan(shipped: PlanSet) -> None:
    plan = shipped.get("typhoon")
    assert plan is not None
    expected = [(s.id, r.id) for s in plan.notify for r in s.recipients]
    assert [(n.step, n.recipient.id) for n in build_notifications(fire("II"), plan, T0)] == expected


def test_idempotency_keys_are_stable_and_distinct(shipped: PlanSet) -> None:
    plan = shipped.get("hazchem-leak")
    assert plan is not None
    first = build_notifications(fire("I"), plan, T0)
    again = build_notifications(fire("I"), plan, datetime(2026, 11, 26, tzinfo=UTC))
    keys = [n.idempotency_key for n in first]
    assert keys == [n.idempotency_key for n in again]  # the clock is not part of the key
    assert len(set(keys)) == len(keys)
    n = first[0]
    assert n.idempotency_key == idempotency_key(n.incident_id, plan.id, plan.version, n.step, n.recipient.id,
                                                attempt=1)
    other = build_notifications(fire("I", incident_id="INC-20261125-0002"), plan, T0)
    assert not set(keys) & {o.idempotency_key for o in other}


@given(st.lists(st.sampled_from(["duty-room", "mayor", "liaison", "fire-brigade"]), min_size=1, max_size=6,
                unique=True),
       st.integers(min_value=1, max_value=4))
def test_keys_unique_per_step_and_recipient(recipient_ids: list[str], steps: int) -> None:
    recipients = [{"id": r, "name": r, "channel": "console", "address": r} for r in recipient_ids]
    plan = custom_plan({"zh": "{title}"}, recipients, steps)
    orders = build_notifications(fire(), plan, T0)
    assert len(orders) == steps * len(recipient_ids)
    pairs = {(n.step, n.recipient.id) for n in orders}
    assert len({n.idempotency_key for n in orders}) == len(pairs) == len(orders)


def test_recipient_in_two_steps_gets_two_notifications() -> None:
    orders = build_notifications(fire(), custom_plan({"zh": "{title}"}, steps=2), T0)
    assert [(n.step, n.recipient.id) for n in orders] == [("step-0", "duty-room"), ("step-1", "duty-room")]


def test_step_grades_filter() -> None:
    plan = Plan.model_validate({
        "id": "g", "version": 1, "title": {"zh": "分级"}, "applies_to": {"category": "accident_disaster"},
        "notify": [{"id": "big", "grades": ["I"], "template": {"zh": "x"},
                    "recipients": [{"id": "m", "name": "m", "channel": "console", "address": "m"}]}],
    })
    assert build_notifications(fire("II"), plan, T0) == []


@pytest.mark.parametrize(("status", "lang", "prefix"), [
    ("exercise", "zh", "【演练】"), ("test", "zh", "【测试】"),
    ("exercise", "en", "[DRILL] "), ("test", "en", "[TEST] "),
])
def test_exercise_and_test_are_prefixed(status: str, lang: str, prefix: str) -> None:
    recipients = [{"id": "d", "name": "d", "channel": "console", "address": "d", "lang": lang}]
    plan = custom_plan({"zh": "{title}", "en": "{title}"}, recipients)
    (n,) = build_notifications(fire(status=status), plan, T0)
    assert n.text == prefix + "仓库起火" and n.incident_status.value == status


def test_actual_has_no_prefix(shipped: PlanSet) -> None:
    plan = shipped.get("building-fire")
    assert plan is not None
    (n,) = build_notifications(fire(), plan, T0)
    assert not n.text.startswith(("【演练】", "【测试】"))


def test_english_rendering(shipped: PlanSet) -> None:
    plan = shipped.get("building-fire")
    assert plan is not None
    english = plan.model_copy(update={"notify": [
        step.model_copy(update={"recipients": [r.model_copy(update={"lang": "en"}) for r in step.recipients]})
        for step in plan.notify
    ]})
    (n,) = build_notifications(fire(area_name=None), english, T0)
    assert n.text == ("[relatively serious] 仓库起火 (unknown area): District Building Fire Emergency Plan "
                      "activated at grade III. Respond now. Ref INC-20261125-0001")


def test_english_recipient_falls_back_to_zh_template() -> None:
    recipients = [{"id": "d", "name": "d", "channel": "console", "address": "d", "lang": "en"}]
    (n,) = build_notifications(fire(), custom_plan({"zh": "{grade_name}：{plan}"}, recipients), T0)
    assert n.text == "relatively serious：Test Plan"


def test_area_falls_back_to_code_then_unknown() -> None:
    plan = custom_plan({"zh": "{area}"})
    coded = fire().model_copy(update={"location": Location(area_code="440304")})
    assert build_notifications(coded, plan, T0)[0].text == "440304"
    assert build_notifications(fire(area_name=None), plan, T0)[0].text == "未知地点"


def test_all_placeholders(shipped: PlanSet) -> None:
    template = {"zh": "{id}|{title}|{grade}|{grade_name}|{area}|{category}|{subtype}|{plan}"}
    (n,) = build_notifications(fire(), custom_plan(template), T0)
    assert n.text == "INC-20261125-0001|仓库起火|III|较大|福田区华强北街道|accident_disaster|fire|测试预案"


def test_unknown_placeholder_left_visible() -> None:
    (n,) = build_notifications(fire(), custom_plan({"zh": "{title} {titel} {id}"}), T0)
    assert n.text == "仓库起火 {titel} INC-20261125-0001"


@pytest.mark.parametrize(("template", "expected"), [
    ("{title} {0}", "仓库起火 {0}"),
    ("{title} {", "仓库起火 {"),
    ("{title.upper} {id}", "{title.upper} INC-1"),
    ("{title[0]} {titel!r} {grade:d}", "{title[0]} {titel!r} {grade:d}"),
    ("{{literal}} {id:>6}", "{literal}  INC-1"),
])
def test_malformed_templates_still_render(template: str, expected: str) -> None:
    assert render(template, {"title": "仓库起火", "id": "INC-1", "grade": "III"}) == expected


def test_user_text_is_not_reformatted() -> None:
    incident = fire().model_copy(update={"title": "{id} 火灾"})
    (n,) = build_notifications(incident, custom_plan({"zh": "{title}"}), T0)
    assert n.text == "{id} 火灾"


def test_long_text_is_truncated_keeping_the_drill_prefix() -> None:
    incident = fire(status="exercise").model_copy(update={"title": "火" * 500})
    (n,) = build_notifications(incident, custom_plan({"zh": "{title}" * 4}), T0)
    assert len(n.text) == MAX_TEXT and n.text.startswith("【演练】") and n.text.endswith("…")


def test_rendered_placeholders_are_the_ones_the_loader_allows(shipped: PlanSet) -> None:
    plan = shipped.get("typhoon")
    assert plan is not None
    assert set(placeholder_values(fire(), plan, "zh")) == PLACEHOLDERS

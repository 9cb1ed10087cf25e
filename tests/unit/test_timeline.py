"""The escalation timeline: when each step, repeat, escalation, roll call and deadline happens, and to whom."""

from datetime import UTC, datetime
from typing import Any

import pytest

from pingan.handlers.plans.directory import DirectoryIndex
from pingan.handlers.plans.timeline import EntryKind, escalation_timeline, step_schedule
from pingan.schemas.directory import Directory
from pingan.schemas.plan import NotifyChannel, Plan
from pingan.schemas.taxonomy import Grade

# 2026-07-01 10:00 Beijing time: shift 181 of the daily duty-room rotation that started 2026-01-01 08:00.
AT = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)

DIRECTORY = Directory.model_validate({
    "people": [
        {"id": "zhang-san", "name": "张三", "title": {"zh": "值班员"}, "contacts": {"sms": "+12025550101"}},
        {"id": "li-si", "name": "李四", "title": {"zh": "值班员"}, "contacts": {"sms": "+12025550102"}},
        {"id": "wang-wu", "name": "王五", "title": {"zh": "区长"}, "contacts": {"sms": "+12025550103"}},
        {"id": "zhao-liu", "name": "赵六", "contacts": {"sms": "+12025550104"}},
    ],
    "departments": [{"id": "fire", "name": {"zh": "消防"}, "contact": "zhao-liu"}],
    "rosters": [{"id": "duty-officer", "name": {"zh": "值班"}, "members": ["zhang-san", "li-si"],
                 "rotation": {"kind": "daily", "handoff": "08:00", "start": "2026-01-01"}}],
})
INDEX = DirectoryIndex.of(DIRECTORY)


def step(sid: str, targets: list[dict[str, str]], channels: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": sid, "targets": targets, "channels": channels, "template": {"zh": "{title}"}, **extra}


def make_plan(notify: list[dict[str, Any]], tasks: list[dict[str, Any]] | None = None) -> Plan:
    return Plan.model_validate({
        "id": "p", "version": 1, "title": {"zh": "测试"}, "owner": "fire",
        "applies_to": {"category": "accident_disaster", "subtypes": ["fire"]},
        "levels": [{"grade": "II", "response_level": "二级响应", "command": {"commander": {"person": "wang-wu"}},
                    "notify": notify, "tasks": tasks or []}],
    })


PLAN = make_plan(
    [
        step("duty", [{"roster": "duty-officer"}], ["sms"], ack_timeout_min=5, repeat=1),
        step("commander", [{"role": "commander"}], ["voice"], delay_min=15),
        step("fire", [{"department": "fire"}], ["sms"], delay_min=20, ack_timeout_min=10, roll_call=True),
    ],
    [{"id": "report-city", "title": {"zh": "向市里报告", "en": "report to the city"},
      "owner": {"roster": "duty-officer"}, "deadline_min": 30}],
)


def test_worst_case_timeline_in_order() -> None:
    level = PLAN.level(Grade.II)
    assert level is not None
    timeline = escalation_timeline(PLAN, level, INDEX, AT)
    assert [(e.minute, e.kind, e.ref) for e in timeline] == [
        (0, EntryKind.notify, "duty"),
        (5, EntryKind.repeat, "duty"),
        # duty's two 5-minute windows close at t+10, before the commander's t+15: escalate at once.
        (10, EntryKind.escalate, "commander"),
        (20, EntryKind.notify, "fire"),
        (30, EntryKind.roll_call, "fire"),
        (30, EntryKind.task, "report-city"),
    ]
    first, repeat, escalate, fire, roll_call, task = timeline
    # Shift 181 is odd: the second member, 李四, is on duty.
    assert first.text == "SMS to 值班员 李四 (roster duty-officer) [step duty]"
    assert [p.id for p in first.people] == ["li-si"] and first.channels == (NotifyChannel.sms,)
    assert repeat.attempt == 1 and repeat.unless_acked == "duty" and repeat.text.startswith("if not acknowledged")
    assert escalate.unless_acked == "duty" and "区长 王五 (role commander)" in escalate.text
    assert "scheduled t+15" in escalate.text
    assert fire.targets[0].label() == "赵六 (department fire)" and fire.unless_acked is None
    assert "赵六" in roll_call.text
    assert task.text.startswith("task deadline: 向市里报告 (report to the city) — owner 值班员 李四")


def test_acknowledgment_window_after_the_next_delay_does_not_escalate() -> None:
    plan = make_plan([step("a", [{"person": "zhang-san"}], ["sms"], ack_timeout_min=30),
                      step("b", [{"person": "wang-wu"}], ["sms"], delay_min=10)])
    level = plan.levels[0]
    assert [(s.step.id, s.fires, s.escalated_from) for s in step_schedule(level)] == [("a", 0, None), ("b", 10, None)]
    kinds = [e.kind for e in escalation_timeline(plan, level, INDEX, AT)]
    assert kinds == [EntryKind.notify, EntryKind.notify]


def test_escalation_chains_through_several_steps() -> None:
    plan = make_plan([step("a", [{"person": "zhang-san"}], ["sms"], ack_timeout_min=2),
                      step("b", [{"person": "li-si"}], ["sms"], delay_min=60, ack_timeout_min=3),
                      step("c", [{"person": "wang-wu"}], ["voice"], delay_min=120)])
    schedule = step_schedule(plan.levels[0])
    assert [(s.fires, s.escalated_from, s.window_end) for s in schedule] == [(0, None, 2), (2, "a", 5), (5, "b", None)]


def test_rosters_resolve_at_the_moment_of_each_entry() -> None:
    # Activated 07:50 Beijing time; the 08:00 handoff falls between the first SMS and its repeat.
    plan = make_plan([step("duty", [{"roster": "duty-officer"}], ["sms"], ack_timeout_min=15, repeat=1)])
    at = datetime(2026, 7, 1, 23, 50, tzinfo=UTC)
    first, again = escalation_timeline(plan, plan.levels[0], INDEX, at)
    assert [p.name for p in first.people] != [p.name for p in again.people]


def test_unknown_targets_reach_nobody_but_still_appear() -> None:
    plan = make_plan([step("x", [{"roster": "gone"}], ["sms"])])
    (entry,) = escalation_timeline(plan, plan.levels[0], INDEX, AT)
    assert entry.people == () and "nobody (roster gone)" in entry.text


def test_level_must_belong_to_the_plan() -> None:
    other = make_plan([step("x", [{"person": "li-si"}], ["sms"], delay_min=3)])
    with pytest.raises(ValueError, match="not a level of plan"):
        escalation_timeline(PLAN, other.levels[0], INDEX, AT)

"""Plan tasks reported done (任务完成), per plan level. Pure.

A task belongs to a plan level: typhoon's report-city at grade III (60 minutes) and at grade II (30 minutes) are two
tasks with their own deadlines, so one done at III is due again once the incident runs at II. A `task_done` entry
names its level (`details.level`); an older entry without one belongs to the level in force when it was logged (the
last `plan_activated` before it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def task_key(incident_id: str, level: str, task: str) -> str:
    """The log entry's idempotency key: one `task_done` per incident, level and task, however often it is sent."""
    return f"task_done:{incident_id}:{level}:{task}"


def tasks_done(entries: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[tuple[str, str], int]:
    """(level, task) -> the index of its first `task_done` entry, from the timeline's (kind, details) pairs in order."""
    level: str | None = None
    done: dict[tuple[str, str], int] = {}
    for index, (kind, details) in enumerate(entries):
        if kind == "plan_activated":
            level = details.get("level") or level
        elif kind == "task_done" and details.get("task"):
            at = str(details.get("level") or level or "")
            done.setdefault((at, str(details["task"])), index)
    return done

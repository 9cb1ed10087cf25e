"""A drill's injects as exercise messages (CAP rewriting, report bodies) and its simulated people's commands. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pingan.schemas.drill import Inject, Responder, Scenario
from pingan.schemas.taxonomy import Grade

# The CAP severity/urgency/certainty that the default mapping turns into each grade (schemas/adapters/cap_mapping).
CAP_GRADE = {Grade.I: ("Extreme", "Immediate", "Observed"), Grade.II: ("Severe", "Immediate", "Likely"),
             Grade.III: ("Moderate", "Expected", "Likely"), Grade.IV: ("Minor", "Expected", "Possible")}

# (when, verb, person, extra JSON): one command a simulated person posts once `when` has passed.
Pending = tuple[datetime, str, str, str]


def _sub(tag: str, value: str, xml: str, count: int = 1) -> str:
    pattern = re.compile(rf"(<(?:\w+:)?{tag}>)\s*[^<]*?\s*(</(?:\w+:)?{tag}>)")
    return pattern.sub(lambda m: f"{m.group(1)}{value}{m.group(2)}", xml, count=count)


def _get(tag: str, xml: str) -> str | None:
    found = re.search(rf"<(?:\w+:)?{tag}>\s*([^<]*?)\s*</(?:\w+:)?{tag}>", xml)
    return found.group(1) if found else None


def cap_sent(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def exercise_cap(xml: str, run_id: str, now: datetime) -> str:
    """The message as an exercise of this run: <status> Exercise, a run-unique identifier and a fresh <sent>."""
    xml = _sub("status", "Exercise", xml)
    identifier = _get("identifier", xml) or "drill"
    xml = _sub("identifier", f"{identifier}.drill-{run_id}", xml)
    xml = _sub("sent", cap_sent(now), xml)
    # The run id rides as a CAP parameter (it becomes the incident's drill_run label): the notifier reads the run's
    # live participants by it.
    # CAP's schema orders an <info>'s children: parameters come before any <resource> and <area>.
    info_end = re.search(r"<(\w+:)?(?:resource|area)[\s>]|</(\w+:)?info>", xml)
    if info_end:
        prefix = info_end.group(1) or info_end.group(2) or ""
        parameter = (f"<{prefix}parameter><{prefix}valueName>drill_run</{prefix}valueName><{prefix}value>{run_id}"
                     f"</{prefix}value></{prefix}parameter>\n  ")
        xml = xml[:info_end.start()] + parameter + xml[info_end.start():]
    return xml


def cap_update(original: str, grade: Grade, n: int, now: datetime, headline: str | None = None) -> str:
    """A CAP Update of `original` (already made an exercise) that the default mapping grades `grade`."""
    sender, identifier, sent = _get("sender", original), _get("identifier", original), _get("sent", original)
    xml = _sub("msgType", "Update", original)
    xml = _sub("identifier", f"{identifier}.u{n}", xml)
    xml = _sub("sent", cap_sent(now), xml)
    xml = re.sub(r"\s*<(?:\w+:)?references>[^<]*</(?:\w+:)?references>", "", xml)
    anchor = re.search(r"<(?:\w+:)?(?:incidents|info)[\s>]", xml)
    reference = f"<references>{sender},{identifier},{sent}</references>\n  "
    xml = xml[:anchor.start()] + reference + xml[anchor.start():] if anchor else \
        re.sub(r"(</(?:\w+:)?alert>)", reference + r"\1", xml)
    severity, urgency, certainty = CAP_GRADE[grade]
    xml = _sub("urgency", urgency, xml, 0)
    xml = _sub("severity", severity, xml, 0)
    xml = _sub("certainty", certainty, xml, 0)
    if headline:
        xml = _sub("headline", headline, xml, 0)
    return xml


def exercise_report(inject: Inject, run_id: str) -> dict[str, Any]:
    assert inject.report is not None
    body = inject.report.model_dump(mode="json", exclude_none=True)
    body.update(status="exercise", source="drill", dedup_key=f"{inject.report.dedup_key or inject.id}:{run_id}")
    body["labels"] = {**body.get("labels", {}), "drill_run": run_id}
    return body


def scheduled_commands(scenario: Scenario, inject_id: str, activated_at: datetime, real: Callable[[float], float],
                       resolve: Callable[[Responder], str | None]) -> tuple[list[Pending], list[str]]:
    """What the simulated responders and the scripted commands do about the incident of `inject_id`, once its plan
    activated at `activated_at`: (pending commands, labels of responders no person could be found for).

    `real` turns plan minutes into real seconds at the drill's speed; `resolve` names a responder's person (a
    roster's member on duty)."""
    pending: list[Pending] = []
    unresolved: list[str] = []
    for responder in scenario.responders:
        if responder.incident not in (None, inject_id) or responder.never_answers:
            continue
        person = resolve(responder)
        if person is None:
            unresolved.append(responder.label())
            continue
        if responder.acknowledges_after_min is not None:
            when = activated_at + timedelta(seconds=real(responder.acknowledges_after_min))
            pending.append((when, "ack", person, "{}"))
        if responder.confirms_roll_call_after_min is not None:
            when = activated_at + timedelta(seconds=real(responder.confirms_roll_call_after_min))
            pending.append((when, "confirm", person, "{}"))
    for command in scenario.commands:
        if command.incident == inject_id:
            when = activated_at + timedelta(seconds=real(command.after_min))
            extra = {k: v for k, v in (("to", command.to), ("role", command.role),
                                       ("reason", command.reason), ("task", command.task))
                     if v and command.verb != "ack"}
            pending.append((when, command.verb, command.by, json.dumps(extra)))
    return pending, unresolved

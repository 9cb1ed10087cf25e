"""A drill's injects as exercise messages (CAP rewriting, report bodies) and its simulated people's commands. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pingan.schemas.adapters.twilio_forms import DRILL_FIELD
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


def cap_triple(xml: str) -> str:
    """The `sender,identifier,sent` a later message names this one by in <references>."""
    return f"{_get('sender', xml)},{_get('identifier', xml)},{_get('sent', xml)}"


def with_references(xml: str, *messages: str) -> str:
    """`xml` with its <references> naming exactly `messages` (as they were sent), where CAP's schema puts it."""
    xml = re.sub(r"\s*<(?:\w+:)?references\s*/>|\s*<(?:\w+:)?references>[^<]*</(?:\w+:)?references>", "", xml)
    root = re.search(r"<(\w+:)?alert[\s>]", xml)
    prefix = (root.group(1) or "") if root else ""
    reference = f"<{prefix}references>{' '.join(cap_triple(m) for m in messages)}</{prefix}references>\n  "
    anchor = re.search(r"<(?:\w+:)?(?:incidents|info)[\s>]", xml)
    return xml[:anchor.start()] + reference + xml[anchor.start():] if anchor else \
        re.sub(r"(</(?:\w+:)?alert>)", reference + r"\1", xml)


def cap_update(original: str, grade: Grade, n: int, now: datetime, headline: str | None = None,
               previous: str | None = None) -> str:
    """The chain's n-th CAP Update: `original` (the chain's first message, already made an exercise) graded `grade`
    by the default mapping, naming `previous` (the chain's latest message, as a warning service names the latest
    Update; default the original) in <references>."""
    identifier = _get("identifier", original)
    xml = _sub("msgType", "Update", original)
    xml = _sub("identifier", f"{identifier}.u{n}", xml)
    xml = _sub("sent", cap_sent(now), xml)
    xml = with_references(xml, previous or original)
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


def alertmanager_webhook(inject: Inject, run_id: str, now: datetime) -> dict[str, Any]:
    """The inject's report as one firing alert of an Alertmanager webhook (v4), through the default label mapping:
    pingan_* labels name the taxonomy and the exercise status, drill_run the run; the fingerprint is the run's own."""
    assert inject.report is not None
    r = inject.report
    labels = {"alertname": f"drill-{inject.id}", "pingan_category": r.category.value, "pingan_subtype":
              r.subtype.value, "pingan_grade": r.grade.value, "pingan_status": "exercise", "drill_run": run_id,
              **({"pingan_hazard": r.hazard} if r.hazard else {}),
              **({"area_code": r.location.area_code} if r.location and r.location.area_code else {}),
              **({"area": r.location.area_name} if r.location and r.location.area_name else {})}
    fingerprint = hashlib.sha256(f"{run_id}:{r.dedup_key or inject.id}".encode()).hexdigest()[:16]
    alert = {"status": "firing", "labels": labels, "annotations": {"summary": r.title, "description":
             r.description or ""}, "startsAt": now.astimezone(UTC).isoformat(), "fingerprint": fingerprint}
    return {"version": "4", "status": "firing", "receiver": "pingan-drill", "groupKey": f"drill-{run_id}:{inject.id}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "alerts": [alert]}


def twilio_sms_form(inject: Inject, run_id: str, sid: str, account: str, to: str) -> dict[str, str]:
    assert inject.sms is not None
    return {"MessageSid": sid, "AccountSid": account, "From": inject.sms.phone, "To": to, "Body": inject.sms.text,
            "NumMedia": "0", "NumSegments": "1", DRILL_FIELD: run_id}


def twilio_voice_forms(inject: Inject, run_id: str, sid: str, account: str,
                       to: str) -> list[tuple[str, dict[str, str]]]:
    """(path under /v1/intake/twilio, form) of each webhook Twilio posts for the call, in order: the call arrives
    (the menu), the caller presses the key, and for key 0 the recording is done."""
    assert inject.voice is not None
    call = {"CallSid": sid, "AccountSid": account, "From": inject.voice.phone, "To": to, "CallStatus":
            "in-progress", "Direction": "inbound", DRILL_FIELD: run_id}
    out = [("/voice", call), ("/voice/choice", {**call, "Digits": inject.voice.digit})]
    if inject.voice.recording_url:
        out.append(("/voice/recording", {**call, "RecordingUrl": inject.voice.recording_url,
                                         "RecordingSid": "RE" + sid[2:], "RecordingDuration": "12"}))
    return out

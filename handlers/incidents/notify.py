"""Turn an activated plan into dispatch orders. Pure: incident, plan and clock in, notifications out.

The output is deterministic (steps in plan order, recipients in list order) and each order carries an
idempotency key derived only from (incident, plan, version, step, recipient, attempt), so replaying
the same decision after a crash yields the same keys and the ledger refuses to send twice.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime

from pingan.handlers.plans.directory import DirectoryIndex, recipient_for, resolve
from pingan.schemas.incident import Incident
from pingan.schemas.notification import Notification, Recipient, idempotency_key
from pingan.schemas.plan import Level, NotifyStep, Plan
from pingan.schemas.taxonomy import GRADE_NAMES, IncidentStatus

_FORMATTER = string.Formatter()

MAX_TEXT = 1600  # Notification.text's limit, and Twilio's limit for one (concatenated) SMS body

UNKNOWN_AREA = {"zh": "未知地点", "en": "unknown area"}

# A drill or test message that reads like a real one is how false alarms start: mark it up front.
STATUS_PREFIX = {
    IncidentStatus.exercise: {"zh": "【演练】", "en": "[DRILL] "},
    IncidentStatus.test: {"zh": "【测试】", "en": "[TEST] "},
}


def _lang(recipient: Recipient) -> str:
    return "en" if recipient.lang == "en" else "zh"


def placeholder_values(incident: Incident, plan: Plan, lang: str, level: Level | None = None,
                       role: str = "") -> dict[str, str]:
    location = incident.location
    return {
        "id": incident.id,
        "title": incident.title,
        "grade": incident.grade.value,
        "grade_name": GRADE_NAMES[incident.grade][lang],
        "area": location.area_name or location.area_code or UNKNOWN_AREA[lang],
        "category": incident.category.value,
        "subtype": incident.subtype.value,
        "plan": plan.title.pick(lang),
        "level": level.response_level if level else "",
        "role": role,
    }


def render(template: str, values: dict[str, str]) -> str:
    """str.format-style rendering where only exact known names are replaced; anything else stays visible.

    Plain str.format_map would follow `{title.upper}` or `{x[0]}` into attributes and items (printing a
    method repr into an SMS) and raises on `{0}` or a stray brace. Templates are checked when plans load,
    but a plan built in code skips that check, and a message with a visible typo beats no message.
    """
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError:  # unbalanced braces: substitute what is recognisable, keep the rest as written
        text = template
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        raw = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name in values and not conversion:
            try:
                out.append(format(values[name], spec or ""))
                continue
            except ValueError:  # a bad format spec such as {grade:d}
                pass
        out.append(raw)
    return "".join(out)


def _truncate(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "…"  # the ellipsis tells the reader the message was cut


def render_text(incident: Incident, plan: Plan, step: NotifyStep, recipient: Recipient,
                level: Level | None = None, role: str = "") -> str:
    lang = _lang(recipient)
    values = placeholder_values(incident, plan, lang, level, role)
    prefix = STATUS_PREFIX.get(incident.status, {}).get(lang, "")
    # Once: a drill's title often says 【演练】 itself, and the marker up front already tells the reader.
    values["title"] = without_markers(values["title"])
    text = render(step.template.pick(lang), values)
    # Prefix before truncating so the drill marker can never be the part that gets cut.
    return _truncate(text if prefix and text.startswith(prefix) else prefix + text)


def without_markers(title: str) -> str:
    """The title without the status markers it starts with ("【演练】台风" -> "台风"), unless that leaves nothing."""
    markers = tuple(m.strip() for by_lang in STATUS_PREFIX.values() for m in by_lang.values())
    stripped = title.strip()
    while stripped.startswith(markers):
        stripped = next(stripped[len(m):].lstrip() for m in markers if stripped.startswith(m))
    return stripped or title


@dataclass(frozen=True)
class Orders:
    notifications: list[Notification]
    unreachable: list[str]  # "step: target (why)", logged so that a gap in the directory is seen


def step_orders(incident: Incident, plan: Plan, level: Level, step: NotifyStep, directory: DirectoryIndex,
                now: datetime, attempt: int = 1) -> Orders:
    """One notification per (person the step's targets reach, channel), in plan order, deduplicated.

    The key covers (incident, plan, version, step, person:channel, attempt): replaying the same decision
    gives the same keys, and the ledger refuses to send twice.
    """
    orders: list[Notification] = []
    unreachable: list[str] = []
    seen: set[str] = set()
    for target in step.targets:
        people = resolve(target, level, directory, now, placement=incident.location.placement)
        if not people:
            why = " (the incident is not placed in such an area)" if target.by_area else ""
            unreachable.append(f"{step.id}: {target.key()} (resolves to nobody{why})")
        role = target.role.value if target.role else ""
        for person in people:
            for channel in step.channels:
                recipient = recipient_for(person, channel)
                if recipient is None:
                    unreachable.append(f"{step.id}: {person.id} has no {channel.value} contact")
                    continue
                slot = f"{person.id}:{recipient.channel.value}"
                if slot in seen:
                    continue
                seen.add(slot)
                # The grade is in the key: after a grade change the new level's same-named step is a new duty.
                key = idempotency_key(incident.id, plan.id, plan.version, f"{level.grade.value}:{step.id}", slot,
                                      attempt)
                orders.append(Notification(
                    idempotency_key=key,
                    incident_id=incident.id,
                    incident_status=incident.status,
                    plan_id=plan.id,
                    plan_version=plan.version,
                    step=step.id,
                    attempt=attempt,
                    recipient=recipient,
                    channel=recipient.channel,
                    text=render_text(incident, plan, step, recipient, level, role),
                    created_at=now,
                    drill_run=None if incident.status.value == "actual" else incident.labels.get("drill_run"),
                ))
    return Orders(orders, unreachable)


def build_notifications(incident: Incident, plan: Plan, now: datetime,
                        directory: DirectoryIndex | None = None) -> Orders:
    """The orders due at activation: every step of the incident's level with no delay.

    Later steps (a delay, or escalation when nobody acknowledges) belong to the escalation schedule.
    """
    level = plan.level(incident.grade)
    if level is None:
        return Orders([], [f"plan {plan.id} has no level for grade {incident.grade.value}"])
    index = directory or DirectoryIndex.empty()
    notifications: list[Notification] = []
    unreachable: list[str] = []
    for step in level.notify:
        if step.delay_min > 0:
            continue
        orders = step_orders(incident, plan, level, step, index, now)
        notifications += orders.notifications
        unreachable += orders.unreachable
    return Orders(notifications, unreachable)

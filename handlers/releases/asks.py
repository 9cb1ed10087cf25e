"""Telling people when a release waits on them (issue 17): who is asked to approve a draft, and the drafter (and
the last editor, when another person) told of its approval, rejection or publication. Pure: the release, the
incident, the plan level and the directory in, notification intents out; core/releases.py writes them into the
ledger in the release step's own transaction.

Who approves: the holders *now* of the template's approver_roles among the level's command roles: a handover's new
holder (role_holders in the store) before the plan's target, which is a named person or a roster's member on duty,
exactly as core/releases.ReleaseService.actor decides who may approve. Never the drafter or the last editor (four
eyes: they could not approve it anyway).

Each message goes to the console always (the person's console seat, else their id: the console sink is the record)
and on every other channel the directory gives the person (SMS, voice, e-mail, webhook), in their language. Its
idempotency key is derived from (release id, revision, event, person, channel), so a replayed or retried step
notifies once, and a new revision (an edit back to draft) asks again with new keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import ValidationError

from pingan.handlers.incidents.notify import MAX_TEXT, STATUS_PREFIX
from pingan.handlers.plans.directory import DirectoryIndex, resolve
from pingan.schemas.directory import Person
from pingan.schemas.incident import Incident
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.schemas.plan import Level
from pingan.schemas.release import Release
from pingan.schemas.taxonomy import IncidentStatus

PLAN_ID = "release"  # the ledger's plan id when a release has no plan (as the broadcast's)
CONSOLE_PAGE = "/console/releases"


class AskEvent(StrEnum):
    """Why a person is told; also the Notification.step prefix (never `release:`, which marks a public broadcast)."""

    approval_requested = "release_approval_requested"  # to the approvers: a draft waits for them
    approval_reminder = "release_approval_reminder"  # to the approvers again: it still waits (once per revision)
    approved = "release_approved"  # to the drafter: publish it
    rejected = "release_rejected"  # to the drafter: the reason, edit it
    published = "release_published"  # to the drafter: it is out
    withdrawn = "release_withdrawn"  # to the approvers of a waiting draft and the authors: nothing more to do


def ask_key(release_id: str, revision: int, event: AskEvent, person_id: str, channel: Channel) -> str:
    basis = "|".join([release_id, str(revision), event.value, person_id, channel.value])
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def approvers(release: Release, level: Level, holders: Mapping[str, str], directory: DirectoryIndex,
              now: datetime) -> list[Person]:
    """The people who hold one of the release's approver roles on this level now, minus the drafter and the last
    editor; in approver_roles order, each once. A role the level does not give (an account-only role such as admin)
    reaches nobody here."""
    out: dict[str, Person] = {}
    for role_name in release.approver_roles:
        role = next((r for r in level.command if r.value == role_name), None)
        if role is None:
            continue
        if role_name in holders:  # handed over: the new holder, not the plan's person
            person = directory.people.get(holders[role_name])
            people = [person] if person else []
        else:
            people = resolve(level.command[role], level, directory, now)
        for person in people:
            if person.id not in (release.drafted_by, release.edited_by):
                out.setdefault(person.id, person)
    return list(out.values())


def recipients(person: Person) -> list[Recipient]:
    """The console always, and every other channel the directory has an address for (voice only when given)."""
    c = person.contacts
    pairs = [(Channel.console, c.console or person.id), (Channel.twilio_sms, c.sms), (Channel.twilio_voice, c.voice),
             (Channel.email, c.email), (Channel.webhook, c.webhook)]
    return [Recipient(id=person.id, name=person.name, channel=ch, address=addr, lang=person.lang)
            for ch, addr in pairs if addr]


def _text(release: Release, incident: Incident, event: AskEvent, lang: str, actor: str, reason: str) -> str:
    """`reason`: a rejection's reason; for a reminder, the minutes the draft has waited."""
    rid, inc = release.id, incident.id
    headline = release.texts.headline.pick(lang)
    title = incident.title
    if lang == "en":
        about = f'Release {rid} (revision {release.revision}) for incident {inc} "{title}": "{headline}".'
        text = {
            AskEvent.approval_requested: f"[Approval needed] {about} Drafted by {release.drafted_by}; it waits for "
            f"you. Approve: pingan release approve {rid} --by <you>, or reject with a reason, or in the console "
            f"{CONSOLE_PAGE}?incident={inc}.",
            AskEvent.approval_reminder: f"[Reminder: approval needed] {about} It has waited {reason} min for "
            f"approval. Approve: pingan release approve {rid} --by <you>, or reject with a reason, or in the console "
            f"{CONSOLE_PAGE}?incident={inc}.",
            AskEvent.approved: f"[Approved] {about} Approved by {actor}. Publish it: pingan release publish {rid} "
            f"--by <you>, or in the console {CONSOLE_PAGE}?incident={inc}.",
            AskEvent.rejected: f"[Rejected] {about} Rejected by {actor}: {reason}. Edit it and it is asked again: "
            f"pingan release edit {rid}, or in the console {CONSOLE_PAGE}?incident={inc}.",
            AskEvent.withdrawn: f"[Withdrawn] {about} Withdrawn by {actor}"
            + (f": {reason}" if reason else "") + ". Nothing to approve or publish.",
            AskEvent.published: f"[Published] {about} Published by {actor}"
            + (f" (CAP {release.cap_identifier})." if release.cap_identifier else "."),
        }[event]
    else:
        about = f"信息发布 {rid}（第 {release.revision} 稿，事件 {inc}「{title}」）：「{headline}」。"
        text = {
            AskEvent.approval_requested: f"【待审批】{about}由 {release.drafted_by} 起草，等待您审批。批准："
            f"pingan release approve {rid} --by <您的编号>，或说明理由退回；"
            f"也可在控制台 {CONSOLE_PAGE}?incident={inc} 办理。",
            AskEvent.approval_reminder: f"【催审】{about}已等待审批 {reason} 分钟，请尽快批准："
            f"pingan release approve {rid} --by <您的编号>，或说明理由退回；"
            f"也可在控制台 {CONSOLE_PAGE}?incident={inc} 办理。",
            AskEvent.approved: f"【已批准】{about}已由 {actor} 批准，请发布："
            f"pingan release publish {rid} --by <您的编号>，"
            f"或在控制台 {CONSOLE_PAGE}?incident={inc} 发布。",
            AskEvent.rejected: f"【被退回】{about}{actor} 退回，理由：{reason}。请修改后重新提交（修改即重新送审）："
            f"pingan release edit {rid}，或在控制台 {CONSOLE_PAGE}?incident={inc}。",
            AskEvent.withdrawn: f"【已撤回】{about}已由 {actor} 撤回" + (f"，理由：{reason}" if reason else "")
            + "。无需再审批或发布。",
            AskEvent.published: f"【已发布】{about}已由 {actor} 发布"
            + (f"（CAP {release.cap_identifier}）。" if release.cap_identifier else "。"),
        }[event]
    prefix = STATUS_PREFIX.get(incident.status, {}).get(lang, "")
    text = prefix + text
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def ask_intents(release: Release, incident: Incident, event: AskEvent, people: list[Person], now: datetime,
                plan_version: int, actor: str = "", reason: str = "") -> list[Notification]:
    """One intent per (person, channel) for this release revision and event. Exercise incidents' are exercise
    notifications (status and drill run), so the notifier's sandbox rules apply to them as to any other."""
    drill_run = None if incident.status is IncidentStatus.actual else incident.labels.get("drill_run")
    out: list[Notification] = []
    for person in people:
        for recipient in recipients(person):
            out.append(Notification(
                idempotency_key=ask_key(release.id, release.revision, event, person.id, recipient.channel),
                incident_id=release.incident_id, incident_status=incident.status,
                plan_id=release.plan_id or PLAN_ID, plan_version=plan_version,
                step=f"{event.value}:{release.id}", recipient=recipient, channel=recipient.channel,
                text=_text(release, incident, event, "en" if recipient.lang == "en" else "zh", actor, reason),
                created_at=now, drill_run=drill_run))
    return out


def authors(release: Release, directory: DirectoryIndex, actor: str) -> list[Person]:
    """The drafter, and the last editor when another person, minus whoever took the step (they know); as the
    directory knows them, or, with an account only, told on the console by id."""
    out: list[Person] = []
    for pid in dict.fromkeys(p for p in (release.drafted_by, release.edited_by) if p and p != actor):
        person = directory.people.get(pid)
        if person is None:
            try:
                person = Person(id=pid, name=pid)
            except ValidationError:  # an id the directory could not hold: nobody to tell; the log says who it was
                continue
        out.append(person)
    return out


def logged(intents: list[Notification]) -> list[dict[str, str]]:
    """The intents as the log entry of the step lists them (as plan_activated lists a plan's)."""
    return [{"key": n.idempotency_key, "recipient": n.recipient.id, "channel": n.channel.value, "step": n.step}
            for n in intents]

"""Telling people when a release waits on them (issue 17, core/releases.py + handlers/releases/asks.py), on SQLite
and PostgreSQL: a grade II typhoon's draft asks the commander the plan names now (not the drafter), once per
channel the directory gives, in the same transaction as the draft; a replay asks nobody twice; an edit back to draft
asks again with new keys; approval, rejection and publication tell the drafter; a handover's new holder is asked
instead of the plan's person; an exercise incident's are exercise notifications; the timeline lists them."""

from datetime import timedelta
from pathlib import Path

from pingan.commands import run_command
from pingan.handlers.incidents.escalation import Command
from pingan.handlers.releases.asks import AskEvent
from pingan.releases import Caller, ReleaseService
from pingan.schemas.action import ActionKind
from pingan.schemas.common import LocalizedText
from pingan.schemas.notification import Channel, DeliveryState
from pingan.schemas.release import ReleaseTexts
from pingan.schemas.taxonomy import IncidentStatus
from pingan.store import releases as release_store
from pingan.store.engine import write_tx
from pingan.store.repository import Store
from pingan.streams.release_reminders import ApprovalReminders
from tests.integration.test_release_broadcast import services
from tests.integration.test_releases import COMMANDER, PIO, PLANS, SENDER, typhoon

FIXED = ReleaseTexts(headline=LocalizedText(zh="台风“海葵”：避护场所 12 处", en="Typhoon Haikui: 12 shelters open"),
                     description=LocalizedText(zh="避护场所已增加到 12 处。", en="12 shelters are now open."))


def asks_of(store: Store, incident_id: str, step_prefix: str) -> list:  # type: ignore[type-arg]
    return [e for e in store.ledger_for(incident_id) if e.notification.step.startswith(step_prefix)]


def test_a_draft_asks_the_commander_now_once_per_channel_and_a_replay_asks_nobody_twice(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    step = service.draft(incident.id, PIO)
    release = step.release
    asked = asks_of(store, incident.id, f"{AskEvent.approval_requested.value}:{release.id}")
    # Grade II names huang-liping commander; the drafter (xiang-yun, public information) is not asked.
    assert {(e.notification.recipient.id, e.notification.channel) for e in asked} == {
        ("huang-liping", Channel.console), ("huang-liping", Channel.twilio_sms), ("huang-liping", Channel.email)}
    assert all(e.state is DeliveryState.intended for e in asked)
    sms = next(e.notification for e in asked if e.notification.channel is Channel.twilio_sms)
    assert sms.recipient.address == "+12025550103" and sms.incident_status is IncidentStatus.actual
    assert release.id in sms.text and incident.id in sms.text and release.texts.headline.zh in sms.text
    assert f"pingan release approve {release.id}" in sms.text and "/console/releases" in sms.text
    # The timeline: the draft's entry lists the intents, as plan_activated lists a plan's.
    drafted = next(a for a in step.actions if a.kind is ActionKind.release_drafted)
    assert sorted(n["key"] for n in drafted.details["notifications"]) == sorted(
        e.notification.idempotency_key for e in asked)

    # A replay of the step (the same release, revision and event) writes nothing new.
    again = service.ask_intents(release, incident, AskEvent.approval_requested, PIO)
    assert {n.idempotency_key for n in again} == {e.notification.idempotency_key for e in asked}
    with write_tx(store.engine) as conn:
        assert release_store.add_intents(conn, again) == []
    assert len(asks_of(store, incident.id, AskEvent.approval_requested.value)) == 3


def test_an_edit_back_to_draft_asks_again_and_the_drafter_hears_of_each_decision(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    release = service.draft(incident.id, PIO).release
    service.edit(release.id, PIO, texts=FIXED)  # a draft edited: the commander was asked already, not again
    assert len(asks_of(store, incident.id, AskEvent.approval_requested.value)) == 3

    service.reject(release.id, COMMANDER, "请补充避护场所地址")
    told = asks_of(store, incident.id, AskEvent.rejected.value)
    assert {e.notification.recipient.id for e in told} == {"xiang-yun"}
    assert all("请补充避护场所地址" in e.notification.text for e in told)

    edited = service.edit(release.id, PIO, texts=FIXED)  # rejected -> draft: asked again, revision 3, new keys
    assert edited.release.revision == 3
    requests = asks_of(store, incident.id, AskEvent.approval_requested.value)
    assert len(requests) == 6 and len({e.notification.idempotency_key for e in requests}) == 6
    assert edited.actions[0].details["notifications"]

    service.approve(release.id, COMMANDER, revision=3)
    approved = asks_of(store, incident.id, AskEvent.approved.value)
    assert {e.notification.recipient.id for e in approved} == {"xiang-yun"}
    assert all(f"pingan release publish {release.id}" in e.notification.text for e in approved)

    service.publish(release.id, COMMANDER, revision=3)  # someone other than the drafter publishes: she is told
    published = asks_of(store, incident.id, AskEvent.published.value)
    assert {(e.notification.recipient.id, e.notification.channel) for e in published} == {
        ("xiang-yun", Channel.console), ("xiang-yun", Channel.twilio_sms), ("xiang-yun", Channel.email)}
    # None of these is a public broadcast (the notifier's opt-out and release figures are for those only).
    assert not [e for e in store.ledger_for(incident.id) if e.notification.step.startswith("release:")]


def test_a_handover_s_new_commander_is_asked_instead_of_the_plan_s(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    run_command(store, PLANS, incident.id, Command.handover, "huang-liping", role="commander", to="lin-xiaodong")
    release = service.draft(incident.id, PIO).release
    asked = asks_of(store, incident.id, f"{AskEvent.approval_requested.value}:{release.id}")
    assert {e.notification.recipient.id for e in asked} == {"lin-xiaodong"}


def test_the_commander_drafting_is_not_asked_to_approve_their_own_draft(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    release = service.draft(incident.id, COMMANDER).release
    assert asks_of(store, incident.id, f"{AskEvent.approval_requested.value}:{release.id}") == []


def test_an_exercise_incident_s_requests_are_exercise_notifications(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store, status="exercise", key="typhoon-drill-ask")
    release = service.draft(incident.id, Caller("xiang-yun")).release
    asked = asks_of(store, incident.id, f"{AskEvent.approval_requested.value}:{release.id}")
    assert asked and all(e.notification.incident_status is IncidentStatus.exercise for e in asked)
    assert all(e.notification.text.startswith(("【演练】", "[DRILL]")) for e in asked)


def test_a_draft_still_unapproved_after_15_minutes_reminds_its_approvers_once_per_revision(
        store: Store, tmp_path: Path) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    release = service.draft(incident.id, PIO).release
    reminders = ApprovalReminders(services(store, tmp_path))
    assert reminders.due(release.drafted_at + timedelta(minutes=14), force=True) == []

    later = release.drafted_at + timedelta(minutes=20)
    sent = reminders.due(later, force=True)
    assert {(n.recipient.id, n.channel) for n in sent} == {
        ("huang-liping", Channel.console), ("huang-liping", Channel.twilio_sms), ("huang-liping", Channel.email)}
    assert all(n.text.startswith("【催审】") and "20 分钟" in n.text and release.id in n.text for n in sent)
    [entry] = [a for a in store.timeline(incident.id) if a.kind is ActionKind.release_reminded]
    assert entry.actor == "system:release-reminder" and entry.details["waited_min"] == 20
    # Another worker's sweep (or this one's next) reminds nobody twice.
    assert ApprovalReminders(services(store, tmp_path)).due(later + timedelta(minutes=30), force=True) == []
    assert reminders.due(later + timedelta(minutes=30), force=True) == []
    assert len(asks_of(store, incident.id, AskEvent.approval_reminder.value)) == 3
    assert [q.at for q in service.approval_requests(incident.id)[release.id]][1:] == [entry.at]  # on the page

    # Approved meanwhile: no reminder; a rejection's edit is a new revision, reminded again once it waits.
    service.reject(release.id, COMMANDER, "补充地址")
    edited = service.edit(release.id, PIO, texts=FIXED).release
    assert reminders.due(edited.edited_at + timedelta(minutes=16), force=True)  # type: ignore[operator]
    service.approve(release.id, COMMANDER)
    assert ApprovalReminders(services(store, tmp_path)).due(later + timedelta(hours=2), force=True) == []


def test_withdrawing_a_waiting_draft_tells_the_approvers_asked_and_not_who_withdrew_it(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    release = service.draft(incident.id, PIO).release
    step = service.withdraw(release.id, PIO, "与 R2 重复")
    told = asks_of(store, incident.id, AskEvent.withdrawn.value)
    assert {e.notification.recipient.id for e in told} == {"huang-liping"}
    assert all("已撤回" in e.notification.text and "与 R2 重复" in e.notification.text for e in told)
    assert step.actions[0].details["notifications"]
    # A rejected draft withdrawn by the commander who rejected it: the drafter hears, the commander does not.
    second = service.draft(incident.id, PIO).release
    service.reject(second.id, COMMANDER, "不需要")
    service.withdraw(second.id, COMMANDER)
    told = [e for e in asks_of(store, incident.id, AskEvent.withdrawn.value) if second.id in e.notification.step]
    assert {e.notification.recipient.id for e in told} == {"xiang-yun"}

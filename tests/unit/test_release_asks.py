"""Who is told when a release waits on them (handlers/releases/asks.py), pure: approver-role holders now (the plan's
person, a roster's member on duty, a handover's new holder), never the drafter or last editor; an account-only role
reaches nobody; channels from the directory with the console always; texts in the person's language; exercise
marked; keys per (release, revision, event, person, channel)."""

from datetime import UTC, datetime

from pingan.handlers.plans.directory import DirectoryIndex, on_duty
from pingan.handlers.plans.load import load_plans
from pingan.handlers.releases.asks import AskEvent, approvers, ask_intents, authors, recipients
from pingan.plans import PLANS_DIR
from pingan.schemas.directory import Contacts, Person
from pingan.schemas.notification import Channel
from pingan.schemas.plan import Target
from tests.unit.test_releases import T0, draft, incident

PLANS = load_plans(PLANS_DIR)
DIRECTORY: DirectoryIndex = PLANS.directory
TYPHOON = PLANS.get("typhoon")
assert TYPHOON is not None
LEVEL = TYPHOON.level("II")  # type: ignore[arg-type]
assert LEVEL is not None


def test_the_plan_s_commander_is_asked_and_a_handover_s_new_holder_instead() -> None:
    release = draft(TYPHOON)  # type: ignore[arg-type]
    assert [p.id for p in approvers(release, LEVEL, {}, DIRECTORY, T0)] == ["huang-liping"]
    assert [p.id for p in approvers(release, LEVEL, {"commander": "zhou-haibo"}, DIRECTORY, T0)] == ["zhou-haibo"]
    # The drafter or last editor holding the role is not asked (four eyes).
    own = release.model_copy(update={"drafted_by": "huang-liping"})
    assert approvers(own, LEVEL, {}, DIRECTORY, T0) == []
    edited = release.model_copy(update={"edited_by": "huang-liping"})
    assert approvers(edited, LEVEL, {}, DIRECTORY, T0) == []
    # A role the level does not give (an account role) reaches nobody here.
    assert approvers(release.model_copy(update={"approver_roles": ["admin"]}), LEVEL, {}, DIRECTORY, T0) == []


def test_a_roster_commander_is_whoever_is_on_duty_now() -> None:
    release = draft(TYPHOON)  # type: ignore[arg-type]
    level = LEVEL.model_copy(update={"command": {**LEVEL.command, "commander": Target(roster="duty-room")}})
    for at in (T0, datetime(2026, 9, 2, 2, 0, tzinfo=UTC)):
        expected = on_duty(DIRECTORY.rosters["duty-room"], at)
        assert [p.id for p in approvers(release, level, {}, DIRECTORY, at)] == [expected]


def test_channels_languages_keys_and_exercise_marks() -> None:
    english = Person(id="amy-lee", name="Amy Lee", lang="en",
                     contacts=Contacts(sms="+12025550199", webhook="https://hooks.example/amy", console="duty-room"))
    assert [(r.channel, r.address) for r in recipients(english)] == [
        (Channel.console, "duty-room"), (Channel.twilio_sms, "+12025550199"),
        (Channel.webhook, "https://hooks.example/amy")]
    assert [r.channel for r in recipients(Person(id="no-contacts", name="x"))] == [Channel.console]

    release = draft(TYPHOON)  # type: ignore[arg-type]
    inc = incident()
    intents = ask_intents(release, inc, AskEvent.approval_requested, [english], T0, 1)
    assert all(n.text.startswith("[Approval needed] Release") and release.id in n.text and inc.id in n.text
               for n in intents)
    assert release.texts.headline.en in intents[0].text and f"pingan release approve {release.id}" in intents[0].text
    again = ask_intents(release, inc, AskEvent.approval_requested, [english], T0, 1)
    assert [n.idempotency_key for n in again] == [n.idempotency_key for n in intents]
    newer = ask_intents(release.model_copy(update={"revision": 2}), inc, AskEvent.approval_requested, [english], T0, 1)
    assert not {n.idempotency_key for n in newer} & {n.idempotency_key for n in intents}
    assert all(not n.step.startswith("release:") for n in intents)  # not a public broadcast

    drill = incident(status="exercise", labels={"drill_run": "run-7"})
    told = ask_intents(release, drill, AskEvent.rejected, authors(release, DIRECTORY, "huang-liping"), T0, 1,
                       "huang-liping", "改")
    assert told and all(n.text.startswith("【演练】【被退回】") and "改" in n.text and n.drill_run == "run-7"
                        for n in told)


def test_the_drafter_and_another_last_editor_hear_the_answer_but_not_of_their_own_step() -> None:
    release = draft(TYPHOON).model_copy(update={"edited_by": "zheng-bo"})  # type: ignore[arg-type]
    assert [p.id for p in authors(release, DIRECTORY, "huang-liping")] == ["lin-xiaodong", "zheng-bo"]
    assert [p.id for p in authors(release, DIRECTORY, "lin-xiaodong")] == ["zheng-bo"]
    # Someone with an account and no directory entry is told on the console, by id.
    [account] = authors(release.model_copy(update={"drafted_by": "ops-7", "edited_by": None}), DIRECTORY, "x")
    assert [r.channel for r in recipients(account)] == [Channel.console]

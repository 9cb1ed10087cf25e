"""Public information releases (handlers/releases): drafting from the typhoon plan's templates, and the workflow's
rules, four eyes first."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pingan.handlers.plans.load import load_plans
from pingan.handlers.releases import rules
from pingan.handlers.releases.drafting import ReleaseRefused, draft_release, pick_template
from pingan.handlers.releases.rules import Actor
from pingan.schemas.common import LocalizedText
from pingan.schemas.incident import Incident, Location
from pingan.schemas.plan import Plan
from pingan.schemas.release import Release, ReleaseChannel, ReleaseKind, ReleaseState, ReleaseTexts
from pingan.schemas.taxonomy import Grade

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
PIO = Actor("lin-xiaodong", frozenset({"public_information"}))
PIO2 = Actor("zheng-bo", frozenset({"public_information"}))
COMMANDER = Actor("chen-jiawei", frozenset({"commander"}))
DUTY = Actor("lu-kai", frozenset({"duty_officer"}))


@pytest.fixture(scope="module")
def typhoon() -> Plan:
    plan = load_plans(ROOT / "plans").get("typhoon")
    assert plan is not None
    return plan


def incident(grade: str = "II", status: str = "actual", **extra: Any) -> Incident:
    return Incident(id="INC-TYPHOON01", dedup_key="k", received_at=T0, category="natural_disaster",
                    subtype="meteorological", hazard="typhoon", grade=grade, status=status,
                    title=extra.pop("title", "台风“海葵”登陆"),
                    location=Location(area_name="唐家湾镇", area_code="440402"), **extra)


def draft(plan: Plan, inc: Incident | None = None, published: list[Release] | None = None, by: Actor = PIO,
          **kw: Any) -> Release:
    inc = inc or incident()
    level = plan.level(inc.grade)
    assert level is not None
    n = len(published or []) + 1
    return draft_release(inc, plan, level, published or [], release_id=f"{inc.id}-R{n}", by=by.person,
                         at=T0 + timedelta(minutes=n), **kw)


def published_copy(release: Release, at: datetime, published: list[Release] | None = None) -> Release:
    approved = rules.approve(release, COMMANDER, at)
    return rules.publish(approved, PIO, at, published or [], cap_identifier=f"pingan-{release.id}")


def test_a_grade_ii_typhoon_draft_fills_the_template_in_both_languages(typhoon: Plan) -> None:
    release = draft(typhoon)
    assert release.kind is ReleaseKind.alert and release.state is ReleaseState.draft
    assert release.template_id == "defence-advice" and release.plan_id == "typhoon"
    assert release.approver_roles == ["commander"] and release.revision == 1
    description = release.texts.description
    assert "二级响应" in description.zh and "重大" in description.zh and "唐家湾镇" in description.zh
    assert "{" not in description.zh and description.en and "serious" in description.en
    assert release.texts.headline.zh == "台风“海葵”登陆（重大，二级响应）"
    assert release.areas[0].name == "唐家湾镇" and release.areas[0].geocodes[0].value == "440402"
    assert set(release.channels) == set(ReleaseChannel) and release.grade is Grade.II


def test_later_releases_are_updates_referencing_every_earlier_one_and_the_all_clear_ends_them(typhoon: Plan) -> None:
    first = published_copy(draft(typhoon), T0 + timedelta(minutes=5))
    second = draft(typhoon, published=[first])
    assert second.kind is ReleaseKind.update and second.references == [first.id]
    assert second.texts.headline.zh.startswith("【更新】")
    second = published_copy(second, T0 + timedelta(minutes=9), [first])
    end = draft(typhoon, published=[second, first], all_clear=True)
    assert end.kind is ReleaseKind.all_clear and end.template_id == "stand-down"
    assert end.references == [first.id, second.id]
    done = published_copy(end, T0 + timedelta(minutes=20), [first, second])
    assert done.kind is ReleaseKind.all_clear and done.references == [first.id, second.id]
    with pytest.raises(ReleaseRefused, match="ended by the all-clear"):
        draft(typhoon, published=[first, second, done])


def test_an_all_clear_needs_something_to_clear_and_templates_are_checked(typhoon: Plan) -> None:
    with pytest.raises(ReleaseRefused, match="nothing has been published"):
        draft(typhoon, all_clear=True)
    level = typhoon.level(Grade.III)
    assert level is not None
    with pytest.raises(ReleaseRefused, match="not for grade III"):
        pick_template(typhoon, level, ReleaseKind.alert, "four-stops")
    with pytest.raises(ReleaseRefused, match="no release template 'nope'"):
        pick_template(typhoon, level, ReleaseKind.alert, "nope")


def test_exercise_incidents_give_exercise_releases_marked_in_both_languages(typhoon: Plan) -> None:
    release = draft(typhoon, incident(status="exercise", title="【演练】台风“海葵”登陆"))
    assert release.is_exercise and release.status.value == "exercise"
    for text in (release.texts.headline, release.texts.description):
        assert text.zh.startswith("【演练】") and text.en and text.en.startswith("[DRILL] ")
    assert release.texts.headline.zh.count("演练") == 1 and release.texts.description.zh.count("演练") == 1
    edited = rules.edit(release, PIO, T0, texts=ReleaseTexts(headline=LocalizedText(zh="新标题", en="New"),
                                                            description=LocalizedText(zh="内容")))
    assert edited.texts.headline.zh == "【演练】新标题" and edited.texts.headline.en == "[DRILL] New"


def test_the_drafter_cannot_approve_their_own_release(typhoon: Plan) -> None:
    own = draft(typhoon, by=Actor("chen-jiawei", frozenset({"commander", "public_information"})))
    with pytest.raises(ReleaseRefused, match="four eyes: chen-jiawei drafted"):
        rules.approve(own, COMMANDER, T0)


def test_the_last_editor_cannot_approve_and_an_approver_needs_the_role(typhoon: Plan) -> None:
    release = draft(typhoon)
    editor = Actor("chen-jiawei", frozenset({"commander", "public_information"}))
    edited = rules.edit(release, editor, T0, channels=[ReleaseChannel.cap])
    assert edited.revision == 2 and edited.edited_by == "chen-jiawei"
    with pytest.raises(ReleaseRefused, match="last edited"):
        rules.approve(edited, COMMANDER, T0)
    with pytest.raises(ReleaseRefused, match="needs a person holding commander; lu-kai holds duty_officer"):
        rules.approve(release, DUTY, T0)
    with pytest.raises(ReleaseRefused, match="revision: the approval names revision 1"):
        rules.approve(edited, Actor("feng-hao", frozenset({"commander"})), T0, revision=1)
    approved = rules.approve(edited, Actor("feng-hao", frozenset({"commander"})), T0, revision=2)
    assert approved.state is ReleaseState.approved and approved.approved_revision == 2


def test_only_the_drafter_or_public_information_edits(typhoon: Plan) -> None:
    release = draft(typhoon)
    rules.may_draft(release, PIO)
    rules.may_draft(release, COMMANDER)
    with pytest.raises(ReleaseRefused, match="draft: only a public information officer or a person holding commander"):
        rules.may_draft(release, DUTY)
    with pytest.raises(ReleaseRefused, match="only the drafter"):
        rules.edit(release, COMMANDER, T0, channels=[ReleaseChannel.cap])
    by_colleague = rules.edit(release, PIO2, T0, channels=[ReleaseChannel.cap])
    assert by_colleague.edited_by == PIO2.person
    with pytest.raises(ReleaseRefused, match="nothing to change"):
        rules.edit(release, PIO, T0)


def test_publishing_without_approval_is_refused_and_an_edit_after_approval_needs_a_new_one(typhoon: Plan) -> None:
    release = draft(typhoon)
    with pytest.raises(ReleaseRefused, match="only an approved release is published"):
        rules.publish(release, PIO, T0, [], "pingan-x")
    approved = rules.approve(release, COMMANDER, T0)
    edited = rules.edit(approved, PIO, T0, channels=[ReleaseChannel.cap])
    assert edited.state is ReleaseState.draft and edited.approved_by is None
    with pytest.raises(ReleaseRefused, match="only an approved release"):
        rules.publish(edited, PIO, T0, [], "pingan-x")
    forged = edited.model_copy(update={"state": ReleaseState.approved, "approved_revision": 1})
    with pytest.raises(ReleaseRefused, match="revision 1 was approved"):
        rules.publish(forged, PIO, T0, [], "pingan-x")
    with pytest.raises(ReleaseRefused, match="neither the drafter"):
        rules.publish(approved, DUTY, T0, [], "pingan-x")
    out = rules.publish(approved, PIO, T0, [], "pingan-x")
    assert out.state is ReleaseState.published and out.published_by == PIO.person and out.cap_identifier


def test_a_rejected_release_goes_back_with_a_reason_and_editing_makes_it_a_draft(typhoon: Plan) -> None:
    release = draft(typhoon)
    with pytest.raises(ReleaseRefused, match="needs a reason"):
        rules.reject(release, COMMANDER, T0, "  ")
    with pytest.raises(ReleaseRefused, match="four eyes"):
        rules.reject(release, PIO, T0, "no")
    rejected = rules.reject(release, COMMANDER, T0, "避护场所地址写错了")
    assert rejected.state is ReleaseState.rejected and rejected.rejected_reason == "避护场所地址写错了"
    with pytest.raises(ReleaseRefused, match="edit it first"):
        rules.approve(rejected, COMMANDER, T0)
    again = rules.edit(rejected, PIO, T0, channels=[ReleaseChannel.cap, ReleaseChannel.webhook])
    assert again.state is ReleaseState.draft and again.rejected_reason is None and again.revision == 2
    assert rules.approve(again, COMMANDER, T0).state is ReleaseState.approved


def test_a_draft_made_as_the_alert_is_published_as_an_update_when_another_went_out_first(typhoon: Plan) -> None:
    first = draft(typhoon)
    late = draft(typhoon).model_copy(update={"id": "INC-TYPHOON01-R2"})
    out_first = published_copy(first, T0 + timedelta(minutes=3))
    out_late = rules.publish(rules.approve(late, COMMANDER, T0), PIO, T0 + timedelta(minutes=4), [out_first], "p-2")
    assert out_late.kind is ReleaseKind.update and out_late.references == [first.id]


def test_withdraw_only_before_publication(typhoon: Plan) -> None:
    release = draft(typhoon)
    with pytest.raises(ReleaseRefused, match="only the drafter"):
        rules.withdraw(release, DUTY)
    assert rules.withdraw(release, PIO).state is ReleaseState.withdrawn
    out = published_copy(release, T0)
    with pytest.raises(ReleaseRefused, match="correct it with an update"):
        rules.withdraw(out, PIO)
    with pytest.raises(ReleaseRefused, match="draft an update instead"):
        rules.edit(out, PIO, T0, channels=[ReleaseChannel.cap])


@pytest.mark.parametrize("prefix", ["pingan", "唐家湾 应急,局", "a<b&c"])
def test_cap_identifiers_are_stable_and_clean(prefix: str) -> None:
    identifier = rules.cap_identifier(prefix, "INC-TYPHOON01-R1")
    assert identifier == rules.cap_identifier(prefix, "INC-TYPHOON01-R1")
    assert not set(identifier) & set(" ,<&") and identifier.endswith("INC-TYPHOON01-R1")


def test_a_closed_incident_takes_only_its_all_clear(typhoon: Plan) -> None:
    first = published_copy(draft(typhoon), T0)
    closed = incident(state="closed")
    with pytest.raises(ReleaseRefused, match="is closed; only an all-clear"):
        draft(typhoon, closed, published=[first])
    assert draft(typhoon, closed, published=[first], all_clear=True).kind is ReleaseKind.all_clear


def test_a_plan_without_a_template_for_the_grade_or_an_all_clear_gets_the_default(typhoon: Plan) -> None:
    bare = typhoon.model_copy(update={"release": [t for t in typhoon.release if t.id == "four-stops"]})
    release = draft(bare, incident(grade="III"))
    assert release.template_id == "pingan-default" and "三级响应" in release.texts.description.zh
    end = draft(bare, incident(grade="III"), published=[published_copy(release, T0)], all_clear=True)
    assert end.kind is ReleaseKind.all_clear and end.template_id == "pingan-all-clear"
    assert "三级响应现已终止" in end.texts.description.zh and end.texts.description.en


def test_approver_roles_must_be_roles_and_the_schema_knows_every_account_role() -> None:
    from pingan.handlers.access.permissions import Role as AccountRole
    from pingan.schemas.plan import ACCOUNT_ROLE_NAMES, ReleaseTemplate

    assert {r.value for r in AccountRole} == ACCOUNT_ROLE_NAMES
    with pytest.raises(ValueError, match=r"approver_roles \['comander'\] are not roles"):
        ReleaseTemplate.model_validate({"id": "x", "text": {"zh": "x"}, "approver_roles": ["comander"]})
    ReleaseTemplate.model_validate({"id": "x", "text": {"zh": "x"}, "approver_roles": ["deputy", "admin"]})

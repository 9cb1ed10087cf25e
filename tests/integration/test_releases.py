"""The release workflow on the real store (SQLite and PostgreSQL) through the real triage and response stages: a
grade II typhoon's alert, its update and its all-clear, four eyes and refusals logged, the first-release task met,
the hash chain intact, and the readers the CAP feed and the broadcast use (issue 17)."""

from datetime import timedelta

import pytest

from pingan.handlers.audit.log_chain import verify_chain
from pingan.handlers.drills.scoring import score_incident
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.releases import Caller, ReleaseNotFound, ReleaseRefused, ReleaseService
from pingan.schemas.action import ActionKind
from pingan.schemas.common import LocalizedText, utcnow
from pingan.schemas.events import IntakeItem, RawEvent, RawKind
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.release import ReleaseKind, ReleaseState, ReleaseTexts
from pingan.store import releases as release_store
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage

WINDOW = timedelta(hours=1)
PLANS = load_plans(PLANS_DIR)
SENDER = "pingan@tangjiawan.example"
# The typhoon plan's grade II level names xiang-yun its public information officer and huang-liping its commander.
PIO = Caller("xiang-yun", details={"via": "test"})
COMMANDER = Caller("huang-liping", details={"via": "test"})
DUTY = Caller("cai-wenjun", frozenset({"duty_officer"}))


def typhoon(store: Store, grade: str = "II", status: str = "actual", key: str = "typhoon-release",
            kind: RawKind = RawKind.report) -> Incident:
    report = IncidentReport(category="natural_disaster", subtype="meteorological", hazard="typhoon", grade=grade,
                            title="台风“海葵”", dedup_key=f"cap:weather:{key}", source="cap", status=status,
                            location={"area_name": "唐家湾镇", "area_code": "440402"})
    accepted = store.accept(IntakeItem(kind=kind, report=report), "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
        response_stage(store, PLANS, event, time_scale=1.0)
    incident = next(i for i in store.list_incidents().items if i.dedup_key == report.dedup_key)
    return incident


def refusals(store: Store, incident_id: str) -> list[str]:
    return [a.details["reason"] for a in store.timeline(incident_id) if a.kind is ActionKind.refused]


def test_a_grade_ii_typhoon_alert_update_and_all_clear_with_four_eyes(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)

    with pytest.raises(ReleaseRefused, match="draft: only a public information officer"):
        service.draft(incident.id, DUTY)
    assert release_store.list_for_incident(store, incident.id) == []
    first = service.draft(incident.id, PIO).release
    assert first.kind is ReleaseKind.alert and "二级响应" in first.texts.description.zh

    with pytest.raises(ReleaseRefused, match="only an approved release is published"):
        service.publish(first.id, PIO)
    with pytest.raises(ReleaseRefused, match="four eyes: xiang-yun drafted"):
        service.approve(first.id, Caller("xiang-yun", frozenset({"commander"})))
    with pytest.raises(ReleaseRefused, match="needs a person holding commander"):
        service.approve(first.id, DUTY)
    reasons = refusals(store, incident.id)
    assert len(reasons) == 4 and "only an approved release" in reasons[1] and "four eyes" in reasons[2]
    assert release_store.get(store, first.id).state is ReleaseState.draft  # type: ignore[union-attr]

    approved = service.approve(first.id, COMMANDER, revision=1).release
    assert approved.approved_by == "huang-liping"
    out = service.publish(first.id, PIO, revision=1)
    assert out.release.state is ReleaseState.published and out.release.cap_identifier == f"{SENDER}-{first.id}"
    assert [a.kind for a in out.actions] == [ActionKind.release_published, ActionKind.task_done]
    assert out.actions[1].details["task"] == "first-release" and out.actions[1].details["level"] == "II"

    update = service.draft(incident.id, PIO).release
    assert update.kind is ReleaseKind.update and update.references == [first.id]
    fixed = ReleaseTexts(headline=LocalizedText(zh="台风“海葵”最新情况", en="Typhoon Haikui: latest"),
                         description=LocalizedText(zh="避护场所已增加到 12 处。", en="12 shelters are now open."))
    service.edit(update.id, Caller("lin-xiaodong", frozenset({"public_information"})), texts=fixed)
    service.approve(update.id, COMMANDER, revision=2)
    update_out = service.publish(update.id, PIO).release
    assert update_out.kind is ReleaseKind.update and update_out.references == [first.id]
    with pytest.raises(ReleaseRefused, match="is published; only an approved release"):
        service.publish(update.id, PIO)

    end = service.draft(incident.id, PIO, all_clear=True).release
    assert end.kind is ReleaseKind.all_clear and end.template_id == "stand-down"
    service.approve(end.id, COMMANDER)
    ended = service.publish(end.id, PIO).release
    assert ended.references == [first.id, update.id]
    with pytest.raises(ReleaseRefused, match="ended by the all-clear"):
        service.draft(incident.id, PIO)

    timeline = store.timeline(incident.id)
    kinds = [a.kind for a in timeline if a.kind.value.startswith("release_")]
    assert kinds.count(ActionKind.release_published) == 3 and kinds.count(ActionKind.release_approved) == 3
    assert [a.actor for a in timeline if a.kind is ActionKind.release_approved] == ["huang-liping"] * 3
    assert sum(1 for a in timeline if a.kind is ActionKind.task_done) == 1
    current = store.get_incident(incident.id)
    assert current is not None
    scored = score_incident("typhoon", {"incident": current.model_dump(mode="json"),
                                        "timeline": [a.model_dump(mode="json") for a in timeline]}, PLANS,
                            time_scale=1.0, ended_at=utcnow(), drill_started_at=incident.received_at)
    task = next(t for lv in scored["levels"] if lv["grade"] == "II" for t in lv["tasks"]
                if t["task"] == "first-release")
    assert task["result"] == "met" and task["by"] == "xiang-yun"
    checked, broken = verify_chain(store.iter_log())
    assert broken is None and checked == len(list(store.iter_log()))

    published = release_store.list_published(store)
    assert [r.id for r in published] == [first.id, update.id, end.id]
    assert release_store.list_published(store, since=ended.published_at)[0].id == end.id
    assert release_store.get_by_cap_identifier(store, f"{SENDER}-{update.id}").id == update.id  # type: ignore
    assert release_store.get_by_cap_identifier(store, "nope") is None
    assert [r.id for r in service.for_incident(incident.id)] == [first.id, update.id, end.id]


def test_rejected_withdrawn_and_exercise_releases(store: Store) -> None:
    service = ReleaseService(store, PLANS, SENDER)
    drill = typhoon(store, status="exercise", key="typhoon-drill")
    release = service.draft(drill.id, PIO).release
    assert release.status.value == "exercise" and release.texts.headline.zh.startswith("【演练】")
    rejected = service.reject(release.id, COMMANDER, "避护场所名单不全").release
    assert rejected.state is ReleaseState.rejected
    with pytest.raises(ReleaseRefused, match="edit it first"):
        service.approve(release.id, COMMANDER)
    redrafted = service.edit(release.id, PIO, channels=release.channels[:1]).release
    assert redrafted.state is ReleaseState.draft and redrafted.revision == 2
    service.approve(release.id, Caller("he-zhiming", frozenset({"commander"})))
    service.publish(release.id, PIO)
    assert release_store.list_published(store) == []
    assert [r.id for r in release_store.list_published(store, include_exercise=True)] == [release.id]

    other = service.draft(drill.id, PIO).release
    assert service.withdraw(other.id, PIO, "重复").release.state is ReleaseState.withdrawn
    with pytest.raises(ReleaseRefused, match="can no longer be edited"):
        service.edit(other.id, PIO, channels=release.channels)
    with pytest.raises(ReleaseNotFound):
        service.approve("nope", COMMANDER)
    assert len(refusals(store, drill.id)) == 2
    kinds = [a.kind for a in store.timeline(drill.id)]
    assert ActionKind.release_rejected in kinds and ActionKind.release_withdrawn in kinds
    assert utcnow() >= release.drafted_at


def test_the_first_release_at_each_level_meets_that_levels_task(store: Store) -> None:
    """typhoon's first-release is a task of grade II (120 min) and of grade I (60 min): after the incident is raised
    to I, the first release published there meets I's, and a later one meets nothing more."""
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store, grade="II", key="typhoon-levels")
    officer, commander = Caller("xu-jing", frozenset({"public_information"})), Caller("he-zhiming",
                                                                                      frozenset({"commander"}))

    def publish() -> list[str]:
        release = service.draft(incident.id, officer).release
        service.approve(release.id, commander)
        return [f"{a.details['task']}@{a.details['level']}" for a in service.publish(release.id, officer).actions
                if a.kind is ActionKind.task_done]

    assert publish() == ["first-release@II"]
    assert publish() == []
    typhoon(store, grade="I", key="typhoon-levels", kind=RawKind.update)
    assert publish() == ["first-release@I"]
    assert publish() == []

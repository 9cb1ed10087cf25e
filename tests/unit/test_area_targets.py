"""Area-aware notify targets (issue 18, part 3): `{grid_officer: incident}` reaches the officers of the grid the
incident was placed in, `{area_leader: community}` its community's leaders; an unplaced incident reaches nobody
through them and the step says why; lint accepts them."""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from pingan.handlers.incidents.notify import step_orders
from pingan.handlers.incidents.placement import Placer, placed_report
from pingan.handlers.plans.directory import DirectoryIndex, resolve
from pingan.handlers.plans.lint import lint_plans
from pingan.handlers.plans.reader import read_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import district_from_geojson
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.plan import Plan, Target
from pingan.schemas.taxonomy import Grade

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
DIRECTORY = read_plans(PLANS_DIR).directory
INDEX = DirectoryIndex.of(DIRECTORY)
DISTRICT = district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), str(AREAS_FILE))
PLACER = Placer(DISTRICT, DIRECTORY.people)
QIAO_5 = next(a for a in DISTRICT.areas if a.code == "440402100009005")
QIAO = next(a for a in DISTRICT.areas if a.code == "440402100009")


def incident(**location: object) -> Incident:
    report = IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title="着火", location=location)
    fields = placed_report(report, PLACER).model_dump()
    return Incident(**{**fields, "dedup_key": "k"}, id="INC-1", received_at=NOW)


def plan(*targets: dict) -> Plan:
    return Plan.model_validate({
        "id": "grid-fire", "version": 1, "title": {"zh": "网格火情"}, "owner": "emergency", "status": "approved",
        "applies_to": {"category": "accident_disaster", "subtypes": ["fire"]},
        "levels": [{"grade": "IV", "response_level": "四级响应", "notify": [
            {"id": "grid", "targets": list(targets), "channels": ["sms"], "template": {"zh": "{title}"}}]}]})


def test_the_grid_officer_and_the_community_leader_of_the_incidents_place() -> None:
    placed = incident(lat=22.43, lon=113.63).location.placement
    officers = resolve(Target(grid_officer="incident"), None, INDEX, NOW, placement=placed)
    leaders = resolve(Target(area_leader="community"), None, INDEX, NOW, placement=placed)
    assert [p.id for p in officers] == QIAO_5.officers and officers[0].area == QIAO_5.code
    assert [p.id for p in leaders] == QIAO.leaders and leaders[0].area == QIAO.code
    assert [p.id for p in resolve(Target(area_leader="town"), None, INDEX, NOW, placement=placed)] == ["chen-jianhua"]


def test_a_step_notifies_them_by_sms() -> None:
    p = plan({"grid_officer": "incident"}, {"area_leader": "community"})
    level, step = p.levels[0], p.levels[0].notify[0]
    orders = step_orders(incident(lat=22.43, lon=113.63), p, level, step, INDEX, NOW)
    assert [n.recipient.id for n in orders.notifications] == [*QIAO_5.officers, *QIAO.leaders]
    assert all(n.recipient.address.startswith("+447700900") for n in orders.notifications)
    assert orders.unreachable == []


def test_an_unplaced_incident_reaches_nobody_through_them_and_says_why() -> None:
    p = plan({"grid_officer": "incident"}, {"roster": "duty-officer"})
    orders = step_orders(incident(), p, p.levels[0], p.levels[0].notify[0], INDEX, NOW)
    assert orders.unreachable == ["grid: grid_officer:incident (resolves to nobody (the incident is not placed in "
                                  "such an area))"]
    assert len(orders.notifications) == 1  # the roster still gets it
    named = incident(area_name="淇澳社区").location.placement  # placed in a community, not in a grid
    assert named is not None and named.deepest.code == QIAO.code
    # Placed no deeper than the community: every officer of its grids (a community-wide warning reaches them all).
    qiao_officers = [o for a in DISTRICT.areas if a.parent == QIAO.code for o in a.officers]
    assert len(qiao_officers) == 6
    assert [p.id for p in resolve(Target(grid_officer="incident"), None, INDEX, NOW, placement=named)] == qiao_officers
    town = incident(area_name="唐家湾大道").location.placement  # the town: no grid officer by this target
    assert town is not None and town.deepest.code == "440402100"
    assert resolve(Target(grid_officer="incident"), None, INDEX, NOW, placement=town) == []
    assert [p.id for p in resolve(Target(area_leader="community"), None, INDEX, NOW, placement=named)] == QIAO.leaders


@pytest.mark.parametrize("fields", [{"grid_officer": "incident", "roster": "duty-officer"},
                                    {"area_leader": "street"}, {"grid_officer": "someone"}])
def test_a_target_names_exactly_one_thing_and_a_known_level(fields: dict) -> None:
    with pytest.raises(ValidationError):
        Target(**fields)


def test_lint_accepts_area_targets_in_a_plan(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    fire = plans / "building-fire.yaml"
    text = fire.read_text(encoding="utf-8")
    assert "targets: [{roster: duty-officer}]" in text
    fire.write_text(text.replace("targets: [{roster: duty-officer}]",
                                 "targets: [{roster: duty-officer}, {grid_officer: incident}, "
                                 "{area_leader: community}]", 1), encoding="utf-8")
    report = lint_plans(plans)
    assert report.ok, [str(e) for e in report.errors]


def test_plans_without_area_targets_hash_as_before() -> None:
    """Plan.content_hash goes into every plan_activated entry: the new target kinds are left out of a target's
    dump when unused, so an unchanged plan file keeps its hash across this change."""
    assert Target(roster="duty-room").model_dump() == {"roster": "duty-room", "person": None, "role": None,
                                                       "department": None}
    assert Target(grid_officer="incident").model_dump()["grid_officer"] == "incident"
    assert Target.model_validate(Target(area_leader="community").model_dump()).area_leader == "community"
    typhoon = next(p for p in read_plans(PLANS_DIR).plans if p[0].id == "typhoon")[0]
    dumped = json.dumps(typhoon.model_dump(mode="json"), ensure_ascii=False)
    assert "grid_officer" not in dumped and "area_leader" not in dumped  # what content_hash hashes


ISLAND_LEVEL = """id: island-fire-level
version: 1
title: {zh: 淇澳岛火灾四级处置}
owner: emergency
status: approved
applies_to: {category: accident_disaster, subtypes: [fire]}
levels:
  - grade: IV
    response_level: 四级响应
    areas: ["440402100009"]
    notify:
      - id: island-grid
        targets: [{grid_officer: incident}, {roster: duty-room}]
        channels: [sms, console]
        template: {zh: "【淇澳】{title}"}
"""


def test_a_level_that_applies_only_to_some_areas(tmp_path: Path) -> None:
    from pingan.handlers.plans.load import load_plans
    from pingan.handlers.plans.matching import match_plan

    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (plans / "island-fire-level.yaml").write_text(ISLAND_LEVEL, encoding="utf-8")
    report = lint_plans(plans)
    assert report.ok, [str(e) for e in report.errors]  # more specific on the island, absent elsewhere: no tie
    planset = load_plans(plans)
    on_island, elsewhere = incident(lat=22.43, lon=113.63), incident(lat=22.36, lon=113.58)
    assert match_plan(planset, on_island).plan.id == "island-fire-level"
    assert match_plan(planset, elsewhere).plan.id == "building-fire"
    graver = on_island.model_copy(update={"grade": Grade.III})
    assert match_plan(planset, graver).plan.id == "building-fire"  # no grade III level there
    level = planset.get("island-fire-level").levels[0]
    assert level.areas == ["440402100009"] and "areas" in level.model_dump()
    assert "areas" not in planset.get("building-fire").levels[0].model_dump()  # hashes as before


def test_a_drill_scores_a_grid_officers_notification_as_in_plan(tmp_path: Path) -> None:
    from datetime import timedelta

    from pingan.handlers.drills.scoring import score_incident
    from pingan.handlers.plans.load import load_plans

    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (plans / "island-fire-level.yaml").write_text(ISLAND_LEVEL, encoding="utf-8")
    planset = load_plans(plans)
    placed = incident(lat=22.43, lon=113.63)
    officer = QIAO_5.officers[0]

    def entry(kind: str, **details: object) -> dict:
        return {"at": NOW.isoformat(), "kind": kind, "actor": "system:x", "details": details,
                "plan_id": "island-fire-level"}

    timeline = [entry("created"), entry("plan_activated", level="IV"),
                entry("notified", step="island-grid", recipient=officer)]

    def failures(with_placement: bool) -> list[str]:
        shown = placed.model_dump(mode="json")
        if not with_placement:
            shown["location"].pop("placement")
        body = {"incident": {**shown, "status": "exercise"}, "timeline": timeline}
        result = score_incident("fire", body, planset, time_scale=60.0, ended_at=NOW + timedelta(seconds=30),
                                drill_started_at=NOW)
        return [f["kind"] for f in result["failures"]]

    assert "not_in_plan" not in failures(True)
    assert "not_in_plan" in failures(False)  # nobody's grid: the officer is not whom the plan reaches

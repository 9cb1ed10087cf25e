"""Issue 18's placement bar on a real tansu broker and a real worker, SQLite and PostgreSQL: a CAP alert with a
polygon, an SMS naming a community's landmark, and a JSON report with coordinates are each placed in the right grid
by triage; a point outside the district is kept with the district only and says so. Each goes through intake's
outbox, the relay and triage, and is read back from the store."""

from pathlib import Path

import pytest

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.twilio_forms import sms_to_item
from pingan.schemas.incident import Incident, IncidentReport
from pingan.store.repository import Store
from tests.fixtures.stack import pingan_env, wait_for

# A small polygon (lat,lon, CAP's order) in the north-east of Qi'ao island: grid 6 of 淇澳社区.
CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>TJW-PLACE-1</identifier>
  <sender>12379@cma.gov.cn</sender>
  <sent>2026-12-05T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Immediate</urgency>
    <severity>Moderate</severity>
    <certainty>Observed</certainty>
    <headline>淇澳岛东北部暴雨黄色预警</headline>
    <area>
      <areaDesc>珠海市高新区唐家湾镇</areaDesc>
      <polygon>22.425,113.645 22.425,113.66 22.44,113.66 22.44,113.645 22.425,113.645</polygon>
    </area>
  </info>
</alert>
"""
SMS = {"MessageSid": "SM" + "0" * 31 + "1", "AccountSid": "AC0123", "From": "+8613800000000",
       "To": "+8675500000000", "NumMedia": "0", "Body": "唐家社区唐绍仪故居旁边的老房子着火了"}


def report(title: str, lat: float, lon: float) -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title=title,
                          location={"lat": lat, "lon": lon})


@pytest.fixture
def pipeline(tmp_path: Path, broker_bootstrap: str, db_url: str, worker_factory):  # type: ignore[no-untyped-def]
    env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_HEARTBEAT_INTERVAL_S="0")
    store = Store(db_url)
    worker = worker_factory(env)
    yield store, env, worker
    store.close()


def test_reports_are_placed_in_their_grids_and_a_point_outside_says_so(pipeline) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    raw = env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
    [cap_item] = parse_cap(CAP.encode())
    sms = sms_to_item(SMS).item
    assert sms is not None
    ids = {name: store.accept(item, raw).incident_id for name, item in [
        ("cap", cap_item), ("sms", sms), ("json", report("仓库冒烟", 22.455, 113.597)),
        ("outside", report("路边车辆起火", 22.27, 113.57))]}

    def placed() -> dict[str, Incident]:
        found = {name: store.get_incident(i) for name, i in ids.items()}
        return {n: i for n, i in found.items() if i is not None}

    try:
        wait_for(lambda: len(placed()) == len(ids), 90, 0.1, "all four triaged")
    except AssertionError:
        raise AssertionError(worker.log_tail()) from None
    incidents = placed()
    paths = {n: [a.code for a in i.location.placement.path] for n, i in incidents.items()}  # type: ignore[union-attr]
    assert paths["cap"] == ["4404HT", "440402100", "440402100009", "440402100009006"]  # Qi'ao grid 6
    assert paths["sms"] == ["4404HT", "440402100", "440402100001", "440402100001002"]  # 唐家, the landmark's grid
    assert paths["json"] == ["4404HT", "440402100", "440402100008", "440402100008004"]  # 下栅, north-east grid
    assert paths["outside"] == ["4404HT"]
    methods = {n: i.location.placement.method for n, i in incidents.items()}  # type: ignore[union-attr]
    assert methods == {"cap": "coordinates", "sms": "place_name", "json": "coordinates", "outside": "coordinates"}
    outside = incidents["outside"].location.placement
    assert outside is not None and outside.outside and "outside 珠海高新区" in outside.evidence
    assert "kept with the district only" in outside.evidence
    assert not any(i.location.placement.outside for n, i in incidents.items() if n != "outside")  # type: ignore[union-attr]
    # The log says it too: the `created` entry names the deepest area and how it was placed.
    created = {n: next(a for a in store.timeline(i) if a.kind.value == "created") for n, i in ids.items()}
    assert created["sms"].details["area_code"] == "440402100001002"
    assert created["sms"].details["placed_by"] == "place_name" and "唐绍仪故居" in created["sms"].details["placement"]
    assert created["outside"].details["outside_district"] is True


def test_two_reports_of_one_fire_from_one_grid_join_though_their_words_differ(pipeline) -> None:  # type: ignore[no-untyped-def]
    store, env, worker = pipeline
    raw = env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"
    first = store.accept(report("仓库起火", 22.43, 113.63), raw).incident_id
    try:
        wait_for(lambda: store.get_incident(first) is not None, 90, 0.1, "the first report triaged")
        # Other words (another automatic dedup key), the same grid of Qi'ao; then one from another grid.
        store.accept(report("那边冒好大的烟，有人被困", 22.432, 113.634), raw)
        # The first's very words, in another grid: another event (its automatic key is its place, not its title).
        other = store.accept(report("仓库起火", 22.39, 113.61), raw).incident_id
        wait_for(lambda: store.get_incident(other) is not None, 90, 0.1, "the third triaged")
        wait_for(lambda: (i := store.get_incident(first)) is not None and i.report_count >= 2, 90, 0.1,
                 "the second report joined the first")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log_tail()}") from None
    assert store.get_incident(first).report_count == 2  # type: ignore[union-attr]
    assert store.resolve_incident_id(other) == other  # the other grid's fire is an incident of its own
    assert store.get_incident(other).location.placement.deepest.code == "440402100009001"  # type: ignore[union-attr]
    joined = [a for a in store.timeline(first) if a.kind.value == "correlated"]
    assert len(joined) == 1 and joined[0].details["joined_by"] == "same event"


def test_a_plan_reload_rebuilds_the_placement_with_the_new_directory(tmp_path: Path) -> None:
    import shutil

    from pingan.bootstrap import bootstrap
    from pingan.handlers.plans.load import load_plans
    from pingan.plans import PLANS_DIR
    from pingan.settings import Settings

    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    services = bootstrap(Settings(data_dir=tmp_path / "var", plans_dir=plans), channels={})
    try:
        caller = IncidentReport(category="accident_disaster", subtype="fire", grade="IV", title="有情况",
                                reporter={"phone": "+12025550188"})
        assert services.placer is not None and services.placer.place(caller).method == "unplaced"
        with (plans / "directory" / "people.yaml").open("a", encoding="utf-8") as people:
            people.write('  - id: volunteer-li\n    name: 李志愿\n    area: "440402100003"\n'
                         '    contacts: {sms: "+12025550188"}\n')
        services.reload_plans(load_plans(plans))  # what the worker's PlanWatcher calls
        placed = services.placer.place(caller)
        assert placed.method == "caller" and placed.deepest.code == "440402100003"  # type: ignore[union-attr]
    finally:
        services.close()


ISLAND_PLAN = """id: island-fire
version: 1
title: {zh: 淇澳岛火灾处置方案}
owner: emergency
status: approved
applies_to: {category: accident_disaster, subtypes: [fire], areas: ["440402100009"]}
levels:
  - grade: IV
    response_level: 四级响应
    notify:
      - id: island-grid
        targets: [{grid_officer: incident}, {area_leader: community}, {roster: duty-room}]
        channels: [sms, console]
        template: {zh: "【淇澳】{title}"}
"""


def test_a_fire_in_a_grid_notifies_its_grid_officer_and_community_leader(  # type: ignore[no-untyped-def]
        tmp_path: Path, broker_bootstrap: str, db_url: str, worker_factory) -> None:
    import shutil

    from pingan.plans import PLANS_DIR
    from pingan.schemas.adapters.areas import AREAS_FILE
    from pingan.schemas.areas import district_from_geojson

    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (plans / "island-fire.yaml").write_text(ISLAND_PLAN, encoding="utf-8")
    env = pingan_env(tmp_path / "var", KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_HEARTBEAT_INTERVAL_S="0", PINGAN_PLANS_DIR=str(plans))
    store = Store(db_url)
    worker = worker_factory(env)
    try:
        fire = store.accept(report("岛上仓库起火", 22.43, 113.63), env["PINGAN_TOPIC_PREFIX"] + "incidents.raw")

        def recipients() -> set[str]:
            return {a.details.get("recipient") for a in store.timeline(fire.incident_id)
                    if a.kind.value in ("notified", "failed")}

        areas = {a.code: a for a in district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), "f").areas}
        officer, leader = areas["440402100009005"].officers[0], areas["440402100009"].leaders[0]
        try:
            wait_for(lambda: {officer, leader} <= recipients(), 90, 0.2, "the grid officer and leader told")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{worker.log_tail()}") from None
        activated = next(a for a in store.timeline(fire.incident_id) if a.kind.value == "plan_activated")
        assert activated.plan_id == "island-fire"
    finally:
        store.close()

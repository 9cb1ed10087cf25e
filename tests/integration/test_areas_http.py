"""GET /v1/areas and GET /v1/areas/{code} (issue 18, part 5) on a real store (SQLite and PostgreSQL): reports placed
by triage (the shipped district file and placer) in two grids of 唐家社区 and one of 唐乐社区, taken through the
response so a department liaison's scope is the real one; the trend stage's report counts are recorded with the
store's own TrendStore.record, as the triage batch does.

Figures by hand: 唐家社区 (440402100001) holds a fire in grid 1 (1 report) and a diarrhoea cluster in grid 2
(3 reports joined into one incident, plus one report 3 days ago); an exercise fire in grid 1 is left out unless
?exercise=true; a fire in 唐乐社区 is not its own.
"""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pingan.bootstrap import load_placer
from pingan.handlers.access.permissions import Role
from pingan.handlers.trends.series import AreaRef
from pingan.schemas.common import utcnow
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport, Location, Reporter
from pingan.settings import Settings
from pingan.store.identity import IdentityStore
from pingan.store.repository import Store
from pingan.store.trends import TrendStore
from pingan.streams.stages import response_stage, triage_stage
from pingan.web.app import create_api
from tests.integration.access_rig import PASSWORD, PEOPLE, PLANS, WINDOW

TANGJIA, TANGLE = "440402100001", "440402100002"
GRID1, GRID2, TANGLE1 = TANGJIA + "001", TANGJIA + "002", TANGLE + "001"


class AreasRig:
    def __init__(self, tmp: Path, db_url: str) -> None:
        self.store = Store(db_url)
        self.settings = Settings(data_dir=tmp, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None)
        self.placer = load_placer(self.settings, PLANS)
        self.app = create_api(self.settings, self.store, tokens={"api": "areas-api"})
        identity = IdentityStore(self.store.engine)
        self.tokens: dict[Role, str] = {}
        for role in (Role.duty_officer, Role.department_liaison, Role.viewer):
            identity.add_user(PLANS.directory, PEOPLE[role], [role.value], PASSWORD, "cli:tests")
            self.tokens[role] = identity.create_token(PEOPLE[role], [role.value], "cli:tests")[1]
        now = utcnow()
        self.fire = self.report("唐家社区仓库起火", "accident_disaster", "fire", GRID1, "fire-1")
        self.cluster = ""
        for n in range(3):
            self.cluster = self.report(f"唐家社区多人腹泻{n}", "public_health", "infectious_disease", GRID2, "cluster")
        self.record("old-1", None, "public_health", "infectious_disease", GRID2, now - timedelta(days=3))
        self.drill = self.report("【演练】唐家社区起火", "accident_disaster", "fire", GRID1, "drill-1", "exercise")
        self.other = self.report("唐乐社区起火", "accident_disaster", "fire", TANGLE1, "fire-2")

    def report(self, title: str, category: str, subtype: str, grid: str, key: str, status: str = "actual") -> str:
        accepted = self.store.accept(IntakeItem(report=IncidentReport(
            category=category, subtype=subtype, grade="IV", title=title, dedup_key=key, status=status,
            location=Location(area_code=grid), reporter=Reporter(name="市民", phone="+12025550199"))), "raw")
        for row in self.store.unpublished():
            self.store.mark_published([row.event_id])
            event = RawEvent.model_validate_json(row.payload)
            for out in triage_stage(self.store, event, WINDOW, placer=self.placer).incident_events:
                response_stage(self.store, PLANS, out, time_scale=1.0)
        incident_id = self.store.resolve_incident_id(accepted.incident_id)
        assert incident_id
        self.record(accepted.event_id, incident_id, category, subtype, grid, utcnow(), status)
        return incident_id

    def record(self, event_id: str, incident_id: str | None, category: str, subtype: str, grid: str, at,  # type: ignore[no-untyped-def]
               status: str = "actual") -> None:
        path = [AreaRef("4404HT", "district"), AreaRef("440402100", "town"), AreaRef(grid[:12], "community"),
                AreaRef(grid, "grid")]
        TrendStore(self.store).record(event_id, incident_id, status, category, subtype, path, at)

    def get(self, url: str, role: Role = Role.duty_officer) -> "object":
        return TestClient(self.app).get(url, headers={"Authorization": f"Bearer {self.tokens[role]}"})


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[AreasRig]:
    r = AreasRig(tmp_path, db_url)
    yield r
    r.store.close()


def _window(body: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(w for w in body["counts"] if w["window"] == name)


def test_the_hierarchy_lists_every_area_with_children_and_grid_officers(rig: AreasRig) -> None:
    r = rig.get("/v1/areas")
    assert r.status_code == 200, r.text
    items = {a["code"]: a for a in r.json()["items"]}
    assert len(items) == 64 and items["4404HT"]["level"] == "district"
    assert items[TANGJIA]["parent"] == "440402100" and GRID1 in items[TANGJIA]["children"]
    assert items[GRID1]["level"] == "grid" and items[GRID1]["officers"] == ["huang-jiaxin"]
    assert items[GRID1]["name_zh"] and items[GRID1]["name_en"] == "Tangjia Community Grid 1"
    assert [a["level"] for a in r.json()["items"]][:2] == ["district", "town"]


def test_a_community_has_its_open_incidents_and_counts_by_hand(rig: AreasRig) -> None:
    r = rig.get(f"/v1/areas/{TANGJIA}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [a["code"] for a in body["path"]] == ["4404HT", "440402100", TANGJIA]
    assert len(body["children"]) == len(body["area"]["children"]) >= 4
    assert {i["id"] for i in body["open_incidents"]} == {rig.fire, rig.cluster}  # not the drill, not 唐乐's
    assert body["open_total"] == 2
    day, week = _window(body, "24h"), _window(body, "7d")
    assert (day["reports"], day["incidents"]) == (4, 2)
    assert (week["reports"], week["incidents"]) == (5, 2)
    assert {c["category"]: (c["reports"], c["incidents"]) for c in day["by_category"]} == {
        "accident_disaster": (1, 1), "public_health": (3, 1)}
    assert {c["category"]: (c["reports"], c["incidents"]) for c in week["by_category"]} == {
        "accident_disaster": (1, 1), "public_health": (4, 1)}
    daily = [s for s in body["series"] if s["level"] == "community" and s["category"] == "public_health"
             and s["subtype"] == "" and s["interval"] == "daily"]
    assert daily and daily[0]["counts"][-1] == 3 and daily[0]["counts"][-4] == 1


def test_a_grid_path_and_exercise_on_request(rig: AreasRig) -> None:
    body = rig.get(f"/v1/areas/{GRID1}").json()
    assert [a["code"] for a in body["path"]] == ["4404HT", "440402100", TANGJIA, GRID1]
    assert [i["id"] for i in body["open_incidents"]] == [rig.fire]
    with_drill = rig.get(f"/v1/areas/{GRID1}?exercise=true").json()
    assert {i["id"] for i in with_drill["open_incidents"]} == {rig.fire, rig.drill}
    assert _window(with_drill, "24h")["reports"] == 2 and with_drill["exercise"] is True


def test_an_unknown_code_is_404_naming_it(rig: AreasRig) -> None:
    r = rig.get("/v1/areas/999999")
    assert r.status_code == 404 and "999999" in r.json()["detail"]


def test_a_liaison_sees_only_their_departments_incidents_and_no_series(rig: AreasRig) -> None:
    body = rig.get(f"/v1/areas/{TANGJIA}", Role.department_liaison).json()
    assert [i["id"] for i in body["open_incidents"]] == [rig.fire]  # the fire brigade's, not the cluster
    assert (_window(body, "24h")["reports"], _window(body, "24h")["incidents"]) == (1, 1)
    assert body["series"] == []


def test_phones_are_masked_without_phones_read_and_no_person_is_401(rig: AreasRig) -> None:
    r = rig.get(f"/v1/areas/{TANGJIA}", Role.viewer)
    assert r.status_code == 200 and "+12025550199" not in r.text
    assert TestClient(rig.app).get("/v1/areas").status_code == 401


def test_the_boards_rows_carry_the_deepest_placed_area(rig: AreasRig) -> None:
    from pingan.store.console import board

    placed = {r.id: r.placed for r in board(rig.store.engine)}
    assert placed[rig.fire] == (GRID1, "唐家社区第一网格", "Tangjia Community Grid 1")
    assert placed[rig.cluster] is not None and placed[rig.cluster][0] == GRID2

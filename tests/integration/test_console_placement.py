"""The console's incident page shows where triage placed the incident (issue 18): the area path, and "outside the
district" for a point outside; the evidence as the row's title."""

from pathlib import Path

import pytest

from pingan.handlers.incidents.placement import Placer
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import district_from_geojson
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.streams.stages import response_stage, triage_stage
from tests.integration.test_console_pages import PLANS, WINDOW, Console

PLACER = Placer(district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), str(AREAS_FILE)),
                PLANS.directory.people.values())


@pytest.fixture
def console(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = Console(tmp_path)
    yield c
    c.client.close()
    c.store.close()


def placed_incident(console: Console, title: str, lat: float, lon: float) -> str:
    accepted = console.store.accept(IntakeItem(report=IncidentReport(
        category="accident_disaster", subtype="fire", grade="IV", title=title, location={"lat": lat, "lon": lon})),
        "raw")
    for row in console.store.unpublished():
        console.store.mark_published([row.event_id])
        for event in triage_stage(console.store, RawEvent.model_validate_json(row.payload), WINDOW,
                                  placer=PLACER).incident_events:
            response_stage(console.store, PLANS, event, time_scale=1.0)
    found = console.store.resolve_incident_id(accepted.incident_id)
    assert found
    return found


def test_the_incident_page_shows_the_area_path_and_outside(console: Console) -> None:
    inside = placed_incident(console, "岛上仓库起火", 22.43, 113.63)
    page = console.client.get(f"/console/incidents/{inside}").text
    assert '<dd id="incident-placed" title="point 22.43000,113.63000 is in 淇澳社区第五网格 (440402100009005)">' \
           "珠海高新区 › 唐家湾镇 › 淇澳社区 › 淇澳社区第五网格</dd>" in page
    outside = placed_incident(console, "路边车辆起火", 22.27, 113.57)
    page = console.client.get(f"/console/incidents/{outside}").text
    assert ">珠海高新区 (辖区外)</dd>" in page

"""The console's areas pages (issue 18, part 5): /console/areas lists the communities, those with open incidents
first, with their report counts; /console/areas/{code} shows the area's open incidents, counts, trend warnings and
grids, in zh and en; the board links to it; a department liaison sees only their department's incidents. The store
is filled by the rig of test_areas_http.py (triage places the reports; the trend stage's store counts them), the
person given by overriding web.auth.principal as in test_console_pages.py."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pingan.schemas.common import utcnow
from pingan.store.trends import TrendStore
from pingan.web import auth
from pingan.web.auth import Principal
from pingan.web.console.i18n import LANG_COOKIE
from tests.integration.test_areas_http import GRID1, GRID2, TANGJIA, TANGLE, AreasRig
from tests.integration.test_console_pages import FIRE_LIAISON, OFFICER

WARNING_KEY = f"trend:community:{TANGJIA}:public_health:*"


class Pages:
    def __init__(self, tmp: Path) -> None:
        self.rig = AreasRig(tmp, f"sqlite:///{tmp / 'areas.db'}")
        self.person: Principal = OFFICER
        self.rig.app.dependency_overrides[auth.principal] = lambda request: self.person
        self.client = TestClient(self.rig.app)
        # a trend warning raised for 唐家社区's diarrhoea reports (the stage's own store call), on the cluster
        TrendStore(self.rig.store).raised("actual", WARNING_KEY, self.rig.cluster, "ev-warning", utcnow(), {
            "series": WARNING_KEY, "detector": "C2", "statistic": 4.2, "threshold": 3, "count": 3})

    def get(self, path: str, lang: str = "zh") -> str:
        self.client.cookies.set(LANG_COOKIE, lang)
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
        return page.text


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[Pages]:
    p = Pages(tmp_path)
    yield p
    p.client.close()
    p.rig.store.close()


def _row(html: str, code: str) -> str:
    start = html.rindex("<tr", 0, html.index(f'data-code="{code}"'))
    return html[start:html.index("</tr>", start)]


def test_the_board_links_to_the_areas_list_of_communities_busiest_first(pages: Pages) -> None:
    board = pages.get("/console/")
    assert 'href="/console/areas"' in board
    assert f'class="area-link" href="/console/areas/{GRID1}"' in board  # each row's place links to its area
    html = pages.get("/console/areas")
    assert "区域（网格）" in html and "唐家社区" in html
    assert html.index(f'data-code="{TANGJIA}"') < html.index(f'data-code="{TANGLE}"')  # 2 open before 1
    tangjia = _row(html, TANGJIA)
    assert 'class="has-open"' in tangjia and f'href="/console/areas/{TANGJIA}"' in tangjia
    # open 2; reports 4 in 24 h (1 fire + 3 diarrhoea), 5 in 7 days (one 3 days ago)
    assert [c.split("<")[0] for c in tangjia.split("<td>")[2:5]] == ["", "4", "5"]
    assert '<strong class="warn">2</strong>' in tangjia and '<strong class="warn">1</strong>' in _row(html, TANGLE)
    assert "Tangjia Community" in pages.get("/console/areas", "en")


def test_a_community_page_shows_its_incidents_counts_warning_and_grids(pages: Pages) -> None:
    html = pages.get(f"/console/areas/{TANGJIA}")
    rig = pages.rig
    assert rig.fire in html and rig.cluster in html and rig.drill not in html and rig.other not in html
    assert "唐家社区第一网格" in html and f'href="/console/areas/{GRID2}"' in html  # where each was placed; grids
    assert "近 24 小时" in html and "<strong>4</strong>" in html and "<strong>5</strong>" in html
    assert "趋势预警" in html and WARNING_KEY in html and "C2 4.2 &gt; 3" in html
    assert 'href="/console/areas/440402100"' in html  # the path back up: 唐家湾镇
    en = pages.get(f"/console/areas/{TANGJIA}", "en")
    assert "Trend warnings" in en and "Last 24 hours" in en and "Tangjia Community Grid 1" in en
    assert rig.drill in pages.get(f"/console/areas/{GRID1}?exercise=true")


def test_a_liaison_sees_only_their_departments_incidents_and_an_unknown_area_is_404(pages: Pages) -> None:
    pages.person = FIRE_LIAISON
    html = pages.get(f"/console/areas/{TANGJIA}")
    assert pages.rig.fire in html and pages.rig.cluster not in html and WARNING_KEY not in html
    listing = pages.get("/console/areas")
    assert '<strong class="warn">1</strong>' in _row(listing, TANGJIA)  # the fire only
    pages.person = OFFICER
    assert pages.client.get("/console/areas/999999").status_code == 404

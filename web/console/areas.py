"""The console's areas pages (网格, issue 18 part 5): /console/areas lists the district's communities with their open
incidents and report counts (the busiest first) and the trend warnings still open; /console/areas/{code} shows one
area (a town, a community or a grid) as GET /v1/areas/{code} does: its path, children, open incidents, counts of the
last 24 h and 7 days, trend alarms and series. Reads only (store/area_reads.py).

For people with incidents.read; a department liaison sees only the incidents their department is involved in and
the counts of those, as on the board."""

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pingan.handlers.access.permissions import Permission, scoped
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.schemas.area_view import AreaNode, district_nodes
from pingan.schemas.areas import DistrictFileError
from pingan.schemas.common import utcnow
from pingan.store.access import incidents_involving
from pingan.store.area_reads import area_detail, open_counts_by_area, report_counts_by_area, statuses
from pingan.web.auth import Principal
from pingan.web.console.render import page_for, require_permission, signed_in

if TYPE_CHECKING:
    from pingan.web.console import Console


def areas_router(console: "Console") -> APIRouter:
    router = APIRouter()
    intake = console.intake
    store = intake.store

    def nodes() -> tuple[str, list[AreaNode]] | None:
        try:
            return district_nodes(intake.settings.district_areas)
        except (OSError, DistrictFileError):
            return None

    def only_for(person: Principal) -> set[str] | None:
        return incidents_involving(store.engine, person.departments) if scoped(person.roles) else None

    @router.get("/areas", response_class=HTMLResponse)
    async def areas(request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.incidents_read)
        page = page_for(request, person, console.tz)

        def gather():  # type: ignore[no-untyped-def]
            found = nodes()
            if found is None:
                return None
            name, all_nodes = found
            communities = [n for n in all_nodes if n.level == "community"]
            codes = [n.code for n in communities]
            only = only_for(person)
            status = statuses(False)
            opened = open_counts_by_area(store.engine, codes, status, only)
            now = utcnow()
            # A liaison's counts are their incidents' (open); district-wide report counts are not theirs to see.
            day = {} if only is not None else report_counts_by_area(store.engine, codes, now - timedelta(hours=24),
                                                                     status)
            week = {} if only is not None else report_counts_by_area(store.engine, codes, now - timedelta(days=7),
                                                                      status)
            rows = sorted(communities, key=lambda n: (-opened.get(n.code, 0), -day.get(n.code, 0), n.code))
            return name, [(n, opened.get(n.code, 0), day.get(n.code), week.get(n.code)) for n in rows]

        found = await asyncio.to_thread(gather)
        if found is None:
            return page.render("areas.html", status_code=503, district="", rows=[], error=page.t("areas.no_file"))
        district, rows = found
        return page.render("areas.html", district=district, rows=rows, error=None)

    @router.get("/areas/{code}", response_class=HTMLResponse)
    async def area(code: str, request: Request, exercise: bool = False,
                   person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.incidents_read)
        page = page_for(request, person, console.tz)

        def gather():  # type: ignore[no-untyped-def]
            found = nodes()
            by_code = {n.code: n for n in found[1]} if found else {}
            if code not in by_code:
                return None
            rules, _ = read_trend_rules(intake.settings.plans_dir)
            return area_detail(store, by_code, code, utcnow(), rules.rules if rules else [], exercise=exercise,
                               only=only_for(person), scale=intake.settings.escalation_time_scale)

        detail = await asyncio.to_thread(gather)
        if detail is None:
            return page.render("not_found.html", status_code=404, incident_id=code)
        return page.render("area.html", d=detail)

    return router

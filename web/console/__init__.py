"""The duty console (应急值班台): server-rendered pages under /console, served by the API process.

Pages: the board (值班台) with live updates, one incident with its command buttons, the shift handover (交接班), the
on-call table (值班表), the plans with the `plans test` form and the coverage table, drills, situation reports
(态势研判), an incident's public releases (信息发布), the district's areas (网格) and the log's status.
Every page needs a signed-in person (web.auth.principal); each button shows only to a role allowed to use it, and
each command runs through the same service functions as the HTTP API, with the signed-in person as the actor."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pingan.store.response import ResponseStore
from pingan.web.console.live import Broadcaster
from pingan.web.console.render import ASSET_VERSION, PREFIX, STATIC
from pingan.web.intake import Intake


@dataclass
class Console:
    app: FastAPI
    intake: Intake
    tz: ZoneInfo
    live: Broadcaster


def install_console(api: FastAPI, intake: Intake) -> Console:
    """Mount the console's pages and its vendored static files on the API."""
    from pingan.web.console.actions import actions_router
    from pingan.web.console.areas import areas_router
    from pingan.web.console.duty import duty_router
    from pingan.web.console.library import library_router
    from pingan.web.console.pages import pages_router
    from pingan.web.console.releases import releases_router
    from pingan.web.console.reports import reports_router
    from pingan.web.console.views import involved

    def departments(incident_ids: list[str]) -> dict[str, list[str]]:
        plans = intake.plans()
        out = {}
        for incident_id in incident_ids:
            found = intake.store.get_incident(incident_id)
            grade = ResponseStore(intake.store).response_grade(incident_id) or (found.grade.value if found else None)
            out[incident_id] = involved(plans, intake.store.response_plan(incident_id), grade)
        return out

    console = Console(api, intake, ZoneInfo(intake.settings.timezone), Broadcaster(intake.store, departments))
    api.mount(f"{PREFIX}/static/{ASSET_VERSION}", StaticFiles(directory=STATIC), name="console-static")
    for router in (pages_router(console), actions_router(console), duty_router(console), library_router(console),
                   reports_router(console), releases_router(console), areas_router(console)):
        api.include_router(router, prefix=PREFIX, include_in_schema=False)
    return console

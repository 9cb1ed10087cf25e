"""The reference pages: plans (list, one plan, the `plans test` form, coverage), drills and the log's status."""

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pingan.handlers.access.permissions import Permission
from pingan.handlers.audit.log_chain import verify_chain
from pingan.handlers.plans.coverage import coverage
from pingan.handlers.plans.explain import HAZARD_ALIASES, ExplainError, explain, report_from_options
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype
from pingan.store.console import chain_head, drill_run_rows
from pingan.web.auth import Principal
from pingan.web.console.drills import DEFAULT_SPEED, DrillRunner
from pingan.web.console.render import PREFIX, check_csrf, page_for, require_permission, signed_in

if TYPE_CHECKING:
    from pingan.web.console import Console


def library_router(console: "Console") -> APIRouter:
    router = APIRouter()
    intake = console.intake
    store = intake.store
    runner = DrillRunner(intake, getattr(getattr(console.app.state, "auth", None), "identity", None))

    @router.get("/plans", response_class=HTMLResponse)
    async def plans_list(request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.plans_read)
        plans = await asyncio.to_thread(intake.plans)
        return page_for(request, person, console.tz).render("plans.html", plans=plans.plans)

    @router.get("/plans/coverage", response_class=HTMLResponse)
    async def plans_coverage(request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.plans_read)
        rows = await asyncio.to_thread(lambda: coverage(intake.plans()))
        return page_for(request, person, console.tz).render("coverage.html", rows=rows)

    @router.get("/plans/test", response_class=HTMLResponse)
    async def plans_test(request: Request, category: str = "", subtype: str = "", grade: str = "",
                         person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.plans_test)
        result = error = None
        if subtype and grade:
            def run():  # type: ignore[no-untyped-def]
                report = report_from_options(Category(category) if category else None, subtype, Grade(grade), None,
                                             [], None, IncidentStatus.actual)
                return explain(intake.plans(), report, datetime.now(UTC))
            try:
                result = await asyncio.to_thread(run)
            except (ExplainError, ValueError) as exc:
                error = str(exc)
        return page_for(request, person, console.tz).render(
            "plans_test.html", categories=list(Category), subtypes=[*(s.value for s in Subtype), *HAZARD_ALIASES],
            grades=list(Grade), chosen={"category": category, "subtype": subtype, "grade": grade}, result=result,
            error=error)

    @router.get("/plans/{plan_id}", response_class=HTMLResponse)
    async def plan_detail(plan_id: str, request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.plans_read)
        plans = await asyncio.to_thread(intake.plans)
        page = page_for(request, person, console.tz)
        plan = plans.get(plan_id)
        if plan is None:
            return page.render("not_found.html", status_code=404, incident_id=plan_id)
        return page.render("plan.html", plan=plan, people=plans.directory.people,
                           source=plans.sources.get(plan.id, ""))

    @router.get("/drills", response_class=HTMLResponse)
    async def drills(request: Request, error: str | None = None, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.drills_read)
        runs = await asyncio.to_thread(drill_run_rows, store.engine)
        return page_for(request, person, console.tz).render(
            "drills.html", runs=runs, scenarios=runner.scenarios(), reports=runner.reports(),
            running=runner.running(), speed=DEFAULT_SPEED, error=error)

    @router.post("/drills")
    async def start_drill(request: Request, csrf: str = Form(""), scenario: str = Form(""), live: str = Form(""),
                          speed: str = Form(""), person: Principal = Depends(signed_in)) -> Response:
        check_csrf(request, csrf, person)
        require_permission(person, Permission.drills_start)
        if live == "yes":
            require_permission(person, Permission.drills_live)
        problem = await asyncio.to_thread(runner.start, scenario, live == "yes", person.person_id, speed)
        return RedirectResponse(f"{PREFIX}/drills" + (f"?error={problem}" if problem else ""), status_code=303)

    @router.post("/drills/{run_id}/end")
    async def end_drill(run_id: str, request: Request, csrf: str = Form(""),
                        person: Principal = Depends(signed_in)) -> Response:
        check_csrf(request, csrf, person)
        require_permission(person, Permission.drills_start)
        await asyncio.to_thread(runner.end, run_id)
        return RedirectResponse(f"{PREFIX}/drills", status_code=303)

    @router.get("/drills/{run_id}/report", response_class=HTMLResponse)
    async def drill_report(run_id: str, request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.drills_read)
        html = await asyncio.to_thread(runner.report, run_id)
        if html is None:
            return page_for(request, person, console.tz).render("not_found.html", status_code=404,
                                                                incident_id=run_id)
        # The report is self-contained (its styles inline); it may load nothing else.
        return HTMLResponse(html, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                           "img-src data:", "Cache-Control": "no-store"})

    @router.get("/log", response_class=HTMLResponse)
    async def log_status(request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.log_read)

        def check():  # type: ignore[no-untyped-def]
            count, broken = verify_chain(store.iter_log())
            return count, broken, chain_head(store.engine)

        count, broken, head = await asyncio.to_thread(check)
        return page_for(request, person, console.tz).render("log.html", count=count, broken=broken, head=head)

    return router

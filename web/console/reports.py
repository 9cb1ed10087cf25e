"""The console's reports page (态势研判): the situation reports the worker issued (store/sitreps.py), each opened as
its self-contained HTML, and a form that makes one now for a day, a week or a month, as `pingan sitrep` does.

For people with sitreps.read: every reading role but the department liaison (the report counts the whole
district)."""

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pingan import sitreps
from pingan.handlers.access.permissions import Permission
from pingan.handlers.sitreps.period import parse_since
from pingan.store.sitreps import get_sitrep, list_sitreps
from pingan.web.auth import Principal
from pingan.web.console.render import page_for, require_permission, signed_in

if TYPE_CHECKING:
    from pingan.web.console import Console

PERIODS = ("day", "week", "month")
# A report is self-contained (its styles inline, its charts inline SVG): it may load nothing else.
REPORT_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                  "Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _pdf(data: bytes, filename: str) -> Response:
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _reader(person: Principal) -> None:
    require_permission(person, Permission.sitreps_read)


def reports_router(console: "Console") -> APIRouter:
    router = APIRouter()
    intake = console.intake

    @router.get("/reports", response_class=HTMLResponse)
    async def reports(request: Request, error: str | None = None,
                      person: Principal = Depends(signed_in)) -> Response:
        _reader(person)
        items, total = await asyncio.to_thread(list_sitreps, intake.store.engine, 60, 0)
        return page_for(request, person, console.tz).render(
            "reports.html", items=items, total=total, periods=PERIODS, error=error,
            daily_at=intake.settings.sitrep_daily_at)

    @router.get("/reports/now", response_class=HTMLResponse)
    async def report_now(request: Request, period: str = "day", since: str = "", lang: str = "zh",
                         format: str = "html", person: Principal = Depends(signed_in)) -> Response:
        _reader(person)
        page = page_for(request, person, console.tz)
        if period not in PERIODS or lang not in ("zh", "en") or format not in ("html", "pdf"):
            return page.render("reports.html", status_code=400, items=[], total=0, periods=PERIODS,
                               error=page.t("reports.bad_period"), daily_at=intake.settings.sitrep_daily_at)
        try:
            start = parse_since(since, console.tz) if since.strip() else None
        except ValueError as exc:
            return page.render("reports.html", status_code=400, items=[], total=0, periods=PERIODS, error=str(exc),
                               daily_at=intake.settings.sitrep_daily_at)

        def make() -> bytes:
            report = sitreps.build(intake.store, intake.settings, period, since=start,  # type: ignore[arg-type]
                                   as_of=datetime.now(UTC))
            return sitreps.render(report, format, lang)  # type: ignore[arg-type]

        try:
            data = await asyncio.to_thread(make)
        except sitreps.PdfUnavailable as exc:
            return page.render("reports.html", status_code=503, items=[], total=0, periods=PERIODS, error=str(exc),
                               daily_at=intake.settings.sitrep_daily_at)
        if format == "pdf":
            return _pdf(data, f"sitrep-{period}.pdf")
        return HTMLResponse(data, headers=REPORT_HEADERS)

    @router.get("/reports/{sitrep_id}", response_class=HTMLResponse)
    async def report_issued(sitrep_id: str, request: Request, format: str = "html",
                            person: Principal = Depends(signed_in)) -> Response:
        _reader(person)
        row = await asyncio.to_thread(get_sitrep, intake.store.engine, sitrep_id)
        page = page_for(request, person, console.tz)
        if row is None:
            return page.render("not_found.html", status_code=404, incident_id=sitrep_id)
        if format == "pdf":
            try:
                return _pdf(await asyncio.to_thread(sitreps.html_to_pdf, row.html or ""), f"{row.id}.pdf")
            except sitreps.PdfUnavailable as exc:
                return page.render("reports.html", status_code=503, items=[], total=0, periods=PERIODS,
                                   error=str(exc), daily_at=intake.settings.sitrep_daily_at)
        return HTMLResponse(row.html or "", headers=REPORT_HEADERS)

    return router

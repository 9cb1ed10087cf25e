"""The board (值班台), its live event stream, one incident's page, sign-in and the language switch."""

import asyncio
import contextlib
import gzip
import threading
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from pingan.handlers.access.permissions import Permission, scoped
from pingan.schemas.taxonomy import Grade
from pingan.store.console import latest_seq
from pingan.store.drills import DrillStore
from pingan.web.auth import Principal
from pingan.web.console import live
from pingan.web.console.i18n import LANG_COOKIE, LANGS, catalogue, translate
from pingan.web.console.render import PREFIX, Page, check_csrf, current_person, page_for, require_permission, signed_in
from pingan.web.console.views import board_rows, describe, incident_view, sees

if TYPE_CHECKING:
    from pingan.web.console import Console


AUTH_ERRORS = ("credentials", "locked", "csrf", "rate", "code", "sms", "missing")


def _auth_error(code: str | None) -> str | None:
    """/auth/* redirects back with ?error=<code>: shown in the person's language."""
    if not code:
        return None
    return f"console.auth_{code}" if code in AUTH_ERRORS else "console.auth_failed"


def _safe_next(target: str | None) -> str:
    """Only a path of the console itself: never an open redirect to another site."""
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return f"{PREFIX}/"


def pages_router(console: "Console") -> APIRouter:
    router = APIRouter()
    store, intake = console.intake.store, console.intake

    def rows_for(person: Principal, lang: str) -> list[dict[str, object]]:
        """Each row with its words looked up here, once per row, rather than by template calls (500 rows)."""
        plans = intake.plans()
        titles = {plan.id: plan.title.pick(lang) for plan in plans.plans}
        words = catalogue(lang)
        out = []
        for r in board_rows(store, plans, person):
            grade = r.plan_grade or r.grade
            out.append({
                "row": r, "alert": console.live.alerting(r.id, r.grade, r.state),
                "plan": titles.get(r.plan_id or "", r.plan_id),
                "grade_name": words.get(f"grade.{r.grade}", r.grade),
                "badge": translate(lang, "board.grade_badge", grade=r.grade),
                "level": translate(lang, "board.level", grade=words.get(f"grade.{grade}", grade)),
                "kind": f"{words.get(f'category.{r.category}', r.category)} / "
                        f"{words.get(f'subtype.{r.subtype}', r.subtype)}",
                "status": words.get(f"status.{r.status}", r.status),
                "received": r.received_at.astimezone(console.tz).strftime("%m-%d %H:%M"),
                "due": r.next_due.isoformat() if r.next_due else None,
                "due_local": r.next_due.astimezone(console.tz).strftime("%H:%M:%S") if r.next_due else "",
                "deadline": words.get(f"deadline.{r.next_kind}", r.next_kind or ""),
                # where triage placed it, in the page's language: the cell links to that area's page
                "placed_name": ((r.placed[1] if lang == "zh" else r.placed[2]) or r.placed[1] or r.placed[2]
                                or r.placed[0]) if r.placed else "",
            })
        return out

    # Every live board fetches its rows after each event: fifty boards would render the same 500 rows fifty times.
    # The rows depend only on the language, what the person may see, the log (its latest seq) and which incidents
    # have been opened, so one render serves every board alike until one of those changes.
    # The boards all ask at once after an event, so the first renders while the others wait for its result.
    # Kept gzipped too: 500 rows are about 400 kB of HTML and 30 kB compressed, sent to every board.
    rows_cache: dict[tuple[object, ...], tuple[str, bytes]] = {}
    rows_lock = threading.Lock()

    def rows_html(person: Principal, page: Page) -> tuple[str, bytes]:
        scope = tuple(sorted(person.departments)) if scoped(person.roles) else None
        key = (page.lang, scope, latest_seq(store.engine), len(console.live.opened))
        with rows_lock:
            found = rows_cache.get(key)
            if found is None:
                html = page.html("board_rows.html", rows=rows_for(person, page.lang))
                found = (html, gzip.compress(html.encode(), compresslevel=5))
                if len(rows_cache) > 64:
                    rows_cache.clear()
                rows_cache[key] = found
        return found

    @router.get("/", response_class=HTMLResponse)
    async def board(request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.incidents_read)
        page = page_for(request, person, console.tz)
        # Reading and rendering 500 rows takes tens of milliseconds: in a thread, so live boards are not held up.
        return await asyncio.to_thread(lambda: page.render("board.html", rows=rows_for(person, page.lang)))

    @router.get("/board/rows", response_class=HTMLResponse)
    async def board_fragment(request: Request, person: Principal = Depends(signed_in)) -> Response:
        """The board's rows alone: what a live board fetches when an event says something changed."""
        require_permission(person, Permission.incidents_read)
        page = page_for(request, person, console.tz)
        html, packed = await asyncio.to_thread(rows_html, person, page)
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return page.respond(html)
        response = page.respond("")
        response.body = packed
        response.headers["Content-Length"] = str(len(packed))
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        return response

    @router.get("/events")
    async def events(request: Request, person: Principal = Depends(signed_in)) -> StreamingResponse:
        require_permission(person, Permission.incidents_read)

        def visible(departments: list[str]) -> bool:
            return sees(person, departments)

        return StreamingResponse(live.stream(console.live, visible, request.is_disconnected),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @router.get("/incidents/{incident_id}", response_class=HTMLResponse)
    async def incident(incident_id: str, request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.incidents_read)
        page = page_for(request, person, console.tz)

        def gather():  # type: ignore[no-untyped-def]
            resolved = store.resolve_incident_id(incident_id)
            found = store.get_incident(resolved) if resolved else None
            if found is None:
                return None
            # Task deadlines on the incident's clock: a drill's speed, the stack's time scale otherwise.
            view = incident_view(store, intake.plans(), found, person, page.lang,
                                 DrillStore(store).clock_of(found, intake.settings.escalation_time_scale))
            return view

        view = await asyncio.to_thread(gather)
        if view is None or not sees(person, list(view.level.departments) if view.level else []):
            # The same answer for "no such incident" and "not yours": a liaison learns nothing of the others.
            return page.render("not_found.html", status_code=404, incident_id=incident_id)
        console.live.opened.add(view.incident.id)
        return await asyncio.to_thread(page.render, "incident.html", v=view, describe=describe, grades=list(Grade),
                                       error=request.query_params.get("error"), info=request.query_params.get("info"))

    @router.get("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request, next: str | None = None, error: str | None = None) -> Response:
        person = await current_person(request)
        if person is not None and not error:
            return RedirectResponse(_safe_next(next), status_code=303)
        return page_for(request, None, console.tz).render("sign_in.html", next=_safe_next(next),
                                                          error=_auth_error(error))

    @router.get("/second-factor", response_class=HTMLResponse)
    async def second_factor(request: Request, next: str | None = None, error: str | None = None,
                            sent: str | None = None, person: Principal = Depends(signed_in)) -> Response:
        return page_for(request, person, console.tz).render("second_factor.html", next=_safe_next(next),
                                                            error=_auth_error(error), sent=bool(sent))

    @router.post("/lang")
    async def switch_language(request: Request, lang: str = Form(...), csrf: str = Form(""),
                              next: str = Form(f"{PREFIX}/")) -> Response:
        """The language switch, signed in or not: a cookie for this browser, and the person's own setting (kept by
        the identity store) so that their other devices follow."""
        person = await current_person(request)
        check_csrf(request, csrf, person)
        if lang not in LANGS:
            raise HTTPException(422, f"lang must be one of {', '.join(LANGS)}")
        identity = getattr(getattr(request.app.state, "auth", None), "identity", None)
        if person is not None and identity is not None and hasattr(identity, "set_lang"):
            # No account behind this person (a test's stand-in) raises ValueError: the cookie still works.
            with contextlib.suppress(ValueError):
                await asyncio.to_thread(identity.set_lang, person.person_id, lang, person.person_id)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True, path="/")
        return response

    return router


"""The duty pages: the shift handover (交接班) and the on-call table (值班表)."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pingan.commands import hand_over_shift
from pingan.handlers.access.permissions import Permission
from pingan.handlers.incidents.escalation import CommandRefused
from pingan.handlers.plans.directory import DirectoryIndex, on_duty, shift_index
from pingan.schemas.directory import Roster, RotationKind
from pingan.store.console import shift_handovers
from pingan.web.auth import Principal
from pingan.web.console.render import PREFIX, check_csrf, page_for, require_permission, signed_in
from pingan.web.console.views import board_rows

if TYPE_CHECKING:
    from pingan.web.console import Console

DAYS_AHEAD = 7
DUTY_ROSTER = "duty-officer"  # whose shift the handover page hands over, when the directory has it


def _shift_hours(roster: Roster) -> int:
    return {RotationKind.daily: 24, RotationKind.weekly: 24 * 7}.get(roster.rotation.kind,
                                                                       roster.rotation.shift_hours or 24)


def duty_segments(roster: Roster, start: datetime, days: int = DAYS_AHEAD) -> list[tuple[datetime, datetime, str]]:
    """(from, until, person) for the next `days`: every shift change and every override's start and end, with
    consecutive spans of one person joined."""
    end = start + timedelta(days=days)
    hours = timedelta(hours=_shift_hours(roster))
    from zoneinfo import ZoneInfo

    first = datetime.combine(roster.rotation.start, roster.rotation.handoff, tzinfo=ZoneInfo(roster.timezone))
    cuts = {start, end}
    k = shift_index(roster, start) + 1
    while (at := first + k * hours) < end:
        cuts.add(at.astimezone(UTC))
        k += 1
    for o in roster.overrides:
        cuts.update(t for t in (o.start, o.end) if start < t < end)
    ordered = sorted(cuts)
    segments: list[tuple[datetime, datetime, str]] = []
    for a, b in zip(ordered, ordered[1:], strict=False):
        person = on_duty(roster, a)
        if segments and segments[-1][2] == person:
            segments[-1] = (segments[-1][0], b, person)
        else:
            segments.append((a, b, person))
    return segments


def on_call_table(index: DirectoryIndex, now: datetime) -> list[dict[str, object]]:
    table = []
    for roster in index.rosters.values():
        segments = duty_segments(roster, now)
        overrides = [o for o in roster.overrides if o.end > now and o.start < now + timedelta(days=DAYS_AHEAD)]
        table.append({"roster": roster, "now": on_duty(roster, now), "segments": segments, "overrides": overrides})
    return table


def duty_router(console: "Console") -> APIRouter:
    router = APIRouter()
    intake = console.intake
    store = intake.store

    @router.get("/shift", response_class=HTMLResponse)
    async def shift(request: Request, error: str | None = None, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.incidents_read)

        def gather():  # type: ignore[no-untyped-def]
            plans = intake.plans()
            roster = plans.directory.rosters.get(DUTY_ROSTER)
            return (board_rows(store, plans, person), shift_handovers(store.engine),
                    on_duty(roster, datetime.now(UTC)) if roster else None, plans.directory.people)

        rows, handovers, on_duty_now, people = await asyncio.to_thread(gather)
        return page_for(request, person, console.tz).render(
            "shift.html", rows=rows, handovers=handovers, on_duty_now=on_duty_now, people=people, error=error)

    @router.post("/shift")
    async def hand_over(request: Request, csrf: str = Form(""), to: str = Form(""), note: str = Form(""),
                        person: Principal = Depends(signed_in)) -> Response:
        check_csrf(request, csrf, person)
        require_permission(person, Permission.shift_handover)

        def run() -> str | None:
            plans = intake.plans()
            if to not in plans.directory.people:
                return "console.shift_unknown_person"
            open_ids = [r.id for r in board_rows(store, plans, person)]
            today = datetime.now(console.tz).date().isoformat()
            try:
                hand_over_shift(store, person.person_id, to, note, open_ids, today)
            except CommandRefused as exc:
                return str(exc)
            return None

        problem = await asyncio.to_thread(run)
        target = f"{PREFIX}/shift" + (f"?error={problem}" if problem else "")
        return RedirectResponse(target, status_code=303)

    @router.get("/oncall", response_class=HTMLResponse)
    async def oncall(request: Request, person: Principal = Depends(signed_in)) -> Response:
        require_permission(person, Permission.oncall_read)
        index = await asyncio.to_thread(lambda: intake.plans().directory)
        table = on_call_table(index, datetime.now(UTC))
        return page_for(request, person, console.tz).render("oncall.html", table=table, people=index.people)

    return router

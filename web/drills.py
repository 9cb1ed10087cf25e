"""Drill runs over HTTP: `pingan drill run` registers its run (and live participants) before its first inject, and
ends it after the last, so that the notifier knows whom an exercise may really reach. Bearer token of source api."""

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pingan.handlers.plans.directory import expand_participants
from pingan.store.drills import DrillRunRow, DrillStore
from pingan.web.guards import check_bearer
from pingan.web.intake import Intake


class DrillRunIn(BaseModel):
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    title: str = Field(min_length=1, max_length=500)
    live: bool = Field(default=False, description="May exercise traffic really reach the participants?")
    participants: list[str] = Field(default_factory=list, max_length=500,
                                    description="Person ids, or roster:<id> for every member of the roster")


class DrillRunOut(BaseModel):
    run_id: str
    title: str
    live: bool
    participants: list[str]
    started_at: datetime
    ended_at: datetime | None


def _out(row: DrillRunRow) -> DrillRunOut:
    return DrillRunOut(run_id=row.run_id, title=row.title, live=row.live, participants=list(row.participants),
                       started_at=row.started_at, ended_at=row.ended_at)


def drills_router(intake: Intake) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/drills", response_model=DrillRunOut, status_code=201)
    def register(body: DrillRunIn, request: Request) -> DrillRunOut | JSONResponse:
        check_bearer(request, "api", intake.tokens)
        people, unknown = expand_participants(body.participants, intake.plans().directory)
        if unknown:
            return JSONResponse(status_code=422, content={
                "field": "participants", "error": f"participants: not in the directory: {', '.join(unknown)}"})
        return _out(DrillStore(intake.store).register(body.run_id, body.title, body.live, people))

    @router.post("/v1/drills/{run_id}/end", response_model=DrillRunOut)
    def end(run_id: str, request: Request) -> DrillRunOut:
        check_bearer(request, "api", intake.tokens)
        row = DrillStore(intake.store).end(run_id)
        if row is None:
            raise HTTPException(404, f"drill run {run_id!r} not found")
        return _out(row)

    @router.get("/v1/drills/{run_id}", response_model=DrillRunOut)
    def get(run_id: str, request: Request) -> DrillRunOut:
        check_bearer(request, "api", intake.tokens)
        row = DrillStore(intake.store).get(run_id)
        if row is None:
            raise HTTPException(404, f"drill run {run_id!r} not found")
        return _out(row)

    return router

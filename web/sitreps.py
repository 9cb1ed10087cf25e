"""Issued situation reports (态势研判, issue 17) over HTTP: GET /v1/sitreps (newest period first) and
GET /v1/sitreps/{id} (the report as JSON, or its HTML with ?format=html). The daily job in the worker issues them
(pingan/sitrep_daily.py); `pingan sitrep` makes one on demand.

A person with incidents.read, as other reads; a department liaison (whose roles are all department-scoped) gets 403:
the report counts the whole district's incidents, not only their departments'.
"""

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse

from pingan.handlers.access.permissions import Permission, scoped
from pingan.store.repository import Store
from pingan.store.sitreps import get_sitrep, list_sitreps
from pingan.web.auth import Principal, require


def _district_reader(person: Principal) -> Principal:
    if scoped(person.roles):
        raise HTTPException(403, "situation reports cover the whole district: not for department-scoped roles")
    return person


def sitreps_router(store: Store) -> APIRouter:
    router = APIRouter()
    reader = require(Permission.incidents_read)

    @router.get("/v1/sitreps")
    def sitreps_list(person: Principal = Depends(reader), limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> JSONResponse:
        _district_reader(person)
        items, total = list_sitreps(store.engine, limit, offset)
        return JSONResponse({"items": [i.summary() for i in items], "total": total, "limit": limit,
                             "offset": offset, "next_offset": offset + limit if offset + limit < total else None})

    @router.get("/v1/sitreps/{sitrep_id}", response_model=None)
    def sitrep_one(sitrep_id: str, person: Principal = Depends(reader),
                   format: Annotated[Literal["json", "html"], Query()] = "json") -> JSONResponse | HTMLResponse:
        _district_reader(person)
        row = get_sitrep(store.engine, sitrep_id)
        if row is None:
            raise HTTPException(404, f"situation report {sitrep_id!r} not found")
        if format == "html":
            return HTMLResponse(row.html or "")
        return JSONResponse({**row.summary(), "report": json.loads(row.body or "{}")})

    return router

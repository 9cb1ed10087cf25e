"""Issued situation reports (态势研判, issue 17) over HTTP: GET /v1/sitreps (newest period first) and
GET /v1/sitreps/{id} (the report as JSON, its HTML with ?format=html, a PDF printed from it with ?format=pdf). The
daily job in the worker issues them (pingan/sitrep_daily.py); `pingan sitrep` makes one on demand.

A person with sitreps.read: every reading role but the department liaison, since the report counts the whole
district's incidents, not only their departments'.
"""

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from pingan.handlers.access.permissions import Permission
from pingan.sitreps import PdfUnavailable, html_to_pdf
from pingan.store.repository import Store
from pingan.store.sitreps import get_sitrep, list_sitreps
from pingan.web.auth import Principal, require


def sitreps_router(store: Store) -> APIRouter:
    router = APIRouter()
    reader = require(Permission.sitreps_read)

    @router.get("/v1/sitreps")
    def sitreps_list(_: Principal = Depends(reader), limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> JSONResponse:
        items, total = list_sitreps(store.engine, limit, offset)
        return JSONResponse({"items": [i.summary() for i in items], "total": total, "limit": limit,
                             "offset": offset, "next_offset": offset + limit if offset + limit < total else None})

    @router.get("/v1/sitreps/{sitrep_id}", response_model=None)
    def sitrep_one(sitrep_id: str, _: Principal = Depends(reader),
                   format: Annotated[Literal["json", "html", "pdf"], Query()] = "json") -> Response:
        row = get_sitrep(store.engine, sitrep_id)
        if row is None:
            raise HTTPException(404, f"situation report {sitrep_id!r} not found")
        if format == "html":
            return HTMLResponse(row.html or "")
        if format == "pdf":
            try:  # a sync route: FastAPI runs it in its thread pool, so Chromium's few seconds block no one
                pdf = html_to_pdf(row.html or "")
            except PdfUnavailable as exc:
                raise HTTPException(503, f"no PDF: {exc}") from exc
            return Response(pdf, media_type="application/pdf",
                            headers={"Content-Disposition": f'attachment; filename="{sitrep_id}.pdf"'})
        return JSONResponse({**row.summary(), "report": json.loads(row.body or "{}")})

    return router

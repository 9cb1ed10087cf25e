"""The API's own description: /openapi.json, /docs (Swagger UI) and /redoc. Public only when PINGAN_PUBLIC_DOCS is
true; otherwise a signed-in person (or a personal token) reads them, like everything else."""

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from pingan.web.auth import principal
from pingan.web.openapi_doc import document


def _nobody() -> None:
    return None


def install_docs(api: FastAPI, public: bool) -> None:
    guard: Any = Depends(_nobody if public else principal)
    generate = api.openapi

    def openapi_document() -> dict[str, Any]:
        # FastAPI's own document, once, plus the bodies and security it cannot infer (web/openapi_doc.py).
        if api.openapi_schema is None:
            api.openapi_schema = document(generate())
        return api.openapi_schema

    api.openapi = openapi_document  # type: ignore[method-assign]

    @api.get("/openapi.json", include_in_schema=False, dependencies=[guard])
    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(api.openapi())

    @api.get("/docs", include_in_schema=False, dependencies=[guard])
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{api.title} – API")

    @api.get("/redoc", include_in_schema=False, dependencies=[guard])
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{api.title} – API")

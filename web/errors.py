"""The last resort for a bug: any exception no route turned into an answer becomes a 500 JSON
`{"error": "internal error", "error_id": "…"}`, and the traceback is logged once under that id, so whoever reports
the id can be matched to the log line, and no stack trace or internal detail reaches the caller.

Bad input never gets here: validation errors are 4xx naming the field (web/app.py, the routes, the adapters). An
event committed before the bug stays in the outbox and goes on through the pipeline; the sender, told 500, sends it
again, and its source key (or dedup key) joins the retry to the event already accepted.
"""

import logging
import uuid

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("pingan.web")


class ErrorIds:
    """Pure ASGI middleware (not BaseHTTPMiddleware, which would buffer streamed pages). Inside Starlette's own
    ServerErrorMiddleware, which would answer plain text and have the server log the traceback a second time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            error_id = uuid.uuid4().hex
            log.exception("500 %s %s error_id=%s", scope.get("method", "?"), scope.get("path", "?"), error_id)
            if started:
                raise  # the answer is already on its way: nothing better can be sent now
            response = JSONResponse(status_code=500, content={"error": "internal error", "error_id": error_id},
                                    headers={"X-Error-Id": error_id})
            await response(scope, receive, send)


class NoNulInUrl:
    """400 for a URL with a NUL character (%00) in its path or query, before any route: no id, name or filter
    contains one, and PostgreSQL refuses NUL in any text it compares, so `GET /v1/incidents/a%00b` was a 500 on
    PostgreSQL (and a 404 on SQLite). Bodies need no such check: the models drop NUL (schemas/common.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            where = "path" if "\x00" in scope.get("path", "") else "query" if b"%00" in query or b"\x00" in query \
                else None
            if where is not None:
                response = JSONResponse(status_code=400, content={
                    "error": f"invalid request: {where}: contains a NUL character (%00)", "field": where})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_ids(api: FastAPI) -> None:
    """The error ids, and (inside them) the URL check that comes before any route."""
    api.add_middleware(NoNulInUrl)
    api.add_middleware(ErrorIds)  # added last: the outermost, so it also catches what the URL check raises

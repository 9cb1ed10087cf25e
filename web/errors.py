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


def install_error_ids(api: FastAPI) -> None:
    api.add_middleware(ErrorIds)

"""Request body size limit (``KEYPLANE_MAX_BODY_BYTES``), for every route.

A body announced larger than the limit (``Content-Length``) is refused before it is read;
a body without a length (``Transfer-Encoding: chunked``) is counted as it streams in and
refused as soon as it passes the limit. Either way the answer is 413 with the error
envelope (``limit_exceeded``), and the handler never sees a byte past the limit.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.errors import envelope, request_id_of

__all__ = ["BodyLimitMiddleware", "BodyTooLarge", "install_body_limit"]


def install_body_limit(app: FastAPI, max_body_bytes: int) -> None:
    """Refuse request bodies over ``max_body_bytes`` on every route of ``app``."""
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)

    async def _too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLarge)
        return JSONResponse(
            envelope(
                "limit_exceeded", str(exc.detail), request_id_of(request), _details(exc.limit)
            ),
            status_code=413,
            headers={"connection": "close"},
        )

    # more specific than the generic HTTPException handler, so it wins for this class
    app.add_exception_handler(BodyTooLarge, _too_large)


def _details(limit: int) -> dict[str, int | str]:
    return {"limit": limit, "field": "body", "fga_code": 2000}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-stream; the HTTP error handler renders the envelope."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(scope, send, f"request body of {length} bytes exceeds the limit")
            return
        received = 0
        limit = self.limit

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, send: Send, message: str) -> None:
        state = scope.get("state") or {}
        rid = str(state.get("request_id", "")) if isinstance(state, dict) else ""
        body = json.dumps(
            envelope(
                "limit_exceeded",
                f"{message} of {self.limit} bytes",
                rid,
                _details(self.limit),
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

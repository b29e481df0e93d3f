"""Request body size limit (``KEYPLANE_MAX_BODY_BYTES``), for every route.

A body announced larger than the limit (``Content-Length``) is refused before it is read;
a body without a length (``Transfer-Encoding: chunked``) is counted as it streams in and
refused as soon as it passes the limit. Either way the answer is 413 with the error
envelope (``limit_exceeded``), and the handler never sees a byte past the limit.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.errors import envelope

__all__ = ["BodyLimitMiddleware", "BodyTooLarge"]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-stream; the HTTP error handler renders the envelope."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


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
                {"limit": self.limit, "fga_code": 2000},
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

"""MCP over streamable HTTP at ``/mcp`` (MCP 2025-06-18, "Transports → Streamable HTTP").

Every HTTP request to ``/mcp`` must carry a Keyplane API key (``Authorization: Bearer
kp_…``); without one, or with an unknown, expired or revoked one, the answer is ``401``
with Keyplane's JSON error envelope and ``WWW-Authenticate: Bearer``, before the MCP SDK
sees the request. The authenticated :class:`~keyplane.service.auth.Caller` rides in the
ASGI scope to the tool handlers, which read it from the request the SDK hands them.

The SDK's session manager runs *stateless* with JSON responses: each POST is a complete
exchange authenticated on its own, so nothing ties a session to a key, and any replica
behind a load balancer can answer. The manager needs a running task group, which
:func:`mount_mcp` provides by wrapping the application's lifespan.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from keyplane.api.errors import envelope
from keyplane.errors import AuthenticationError, KeyplaneError
from keyplane.mcp.server import build_server
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["CALLER_SCOPE_KEY", "McpEndpoint", "mount_mcp"]

CALLER_SCOPE_KEY = "keyplane.caller"


def _caller_from_request(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    caller = None if request is None else request.scope.get(CALLER_SCOPE_KEY)
    if not isinstance(caller, Caller):  # only reachable if the endpoint is bypassed
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
    return caller


class McpEndpoint:
    """The ASGI app serving ``/mcp``: bearer authentication, then the SDK's transport."""

    def __init__(self, services: Services, *, read_only: bool | None = None) -> None:
        self.services = services
        self.read_only = services.settings.mcp_read_only if read_only is None else read_only
        self.server = build_server(services, _caller_from_request, read_only=self.read_only)
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run the SDK's session manager (a manager runs once; each lifespan gets its own)."""
        manager = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=True)
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            caller = await self._authenticate(scope)
        except KeyplaneError as exc:
            await self._error(scope, receive, send, exc, 401)
            return
        if self._manager is None:
            down = KeyplaneError(
                "the MCP endpoint is not running (application lifespan not started)"
            )
            await self._error(scope, receive, send, down, 503)
            return
        await self._manager.handle_request({**scope, CALLER_SCOPE_KEY: caller}, receive, send)

    async def _authenticate(self, scope: Scope) -> Caller:
        from keyplane.service.keys import authenticate, missing_key

        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        client = scope.get("client")
        where: dict[str, Any] = {
            "surface": "mcp",
            "operation": f"{scope.get('method', 'POST')} {scope.get('path', '/mcp')}",
            "remote": str(client[0]) if client else None,
        }
        if scheme.lower() != "bearer" or not token.strip():
            message = "missing API key: send 'Authorization: Bearer <key>'"
            err = await anyio.to_thread.run_sync(
                functools.partial(missing_key, self.services, message, **where)
            )
            raise err
        return await anyio.to_thread.run_sync(
            functools.partial(authenticate, self.services, token.strip(), **where)
        )

    @staticmethod
    async def _error(
        scope: Scope, receive: Receive, send: Send, exc: KeyplaneError, status: int
    ) -> None:
        rid = str((scope.get("state") or {}).get("request_id", ""))
        headers = {"WWW-Authenticate": 'Bearer realm="keyplane"'} if status == 401 else None
        body = envelope(exc.code, exc.message, rid, exc.details or None)
        await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)


def mount_mcp(app: FastAPI, services: Services) -> McpEndpoint:
    """Serve MCP at ``/mcp`` on ``app`` and run its session manager in the app's lifespan.

    The existing lifespan (FastAPI's default or one given to the app) is wrapped, not
    replaced, so later lifespan work composes with this one.
    """
    endpoint = McpEndpoint(services)
    # a Route, not a Mount: the endpoint is exactly /mcp (a Mount would redirect to /mcp/)
    app.router.routes.append(
        Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with endpoint.run(), inner(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    return endpoint

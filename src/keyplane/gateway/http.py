"""The gateway over streamable HTTP at ``/gateway/{store}/mcp`` (MCP 2025-06-18,
"Transports → Streamable HTTP" and "Authorization"), served by ``keyplane serve``.

Every HTTP request must carry a Keyplane ACCESS TOKEN of the store (``Authorization:
Bearer <JWT>`` from the store's token endpoint — not an API key) whose audience is the
gateway (its resource URL ``<base>/gateway/<store>/mcp``, RFC 8707) or the store's
issuer. It is verified on every request — so a revoked token, a suspended agent or a
revoked delegation stops the next call — and a request without a valid one is answered
``401`` with Keyplane's JSON error envelope and ``WWW-Authenticate: Bearer
resource_metadata="<base>/.well-known/oauth-protected-resource/gateway/<store>/mcp"``
(RFC 9728 §5.1), before the MCP SDK sees it. That metadata document names the store's
issuer as the authorization server, so an MCP client can find where to get a token.

The SDK's session manager runs *stateless* with JSON responses (as ``/mcp`` does,
:mod:`keyplane.mcp.http`): each POST is a complete exchange authenticated on its own.
The application's lifespan is wrapped to run the manager, the
:class:`~keyplane.gateway.downstream.DownstreamPool` (the persistent sessions to the
downstream servers) and the scheduled re-discovery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from keyplane.api.errors import envelope
from keyplane.errors import AuthenticationError, KeyplaneError, StoreNotFoundError
from keyplane.gateway.runtime import Gateways, run_rediscovery
from keyplane.gateway.server import GatewayRequest, build_gateway_server
from keyplane.service.context import Services
from keyplane.service.tokens import token_issuer
from keyplane.storage.sql import STORE_ID_RE

__all__ = [
    "GATEWAY_SCOPE_KEY",
    "GatewayEndpoint",
    "gateway_path",
    "metadata_path",
    "mount_gateway",
    "protected_resource_metadata",
]

GATEWAY_SCOPE_KEY = "keyplane.gateway"


def gateway_path(store_id: str) -> str:
    return f"/gateway/{store_id}/mcp"


def metadata_path(store_id: str) -> str:
    """RFC 9728 §3.1: the well-known path inserted before the resource's path."""
    return f"/.well-known/oauth-protected-resource{gateway_path(store_id)}"


def _base(svc: Services, scope: Scope) -> str:
    return (svc.settings.issuer or str(Request(scope).base_url)).rstrip("/")


def protected_resource_metadata(svc: Services, base: str, store_id: str) -> dict[str, Any]:
    """The gateway's RFC 9728 protected resource metadata."""
    return {
        "resource": base + gateway_path(store_id),
        "authorization_servers": [token_issuer(svc, store_id, base)],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [],
        "resource_name": f"Keyplane MCP gateway ({store_id})",
    }


def _from_scope(ctx: ServerRequestContext[Any, Any]) -> GatewayRequest:
    request = ctx.request
    got = None if request is None else request.scope.get(GATEWAY_SCOPE_KEY)
    if not isinstance(got, GatewayRequest):  # only reachable if the endpoint is bypassed
        raise AuthenticationError("missing access token: send 'Authorization: Bearer <token>'")
    return got


class GatewayEndpoint:
    """The ASGI app serving ``/gateway/{store_id}/mcp``: the token, then the SDK."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.server = build_gateway_server(_from_scope)
        self._manager: StreamableHTTPSessionManager | None = None
        self.gateways: Gateways | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run the SDK's session manager, the downstream pool and the re-discovery."""
        from keyplane.gateway.downstream import DownstreamPool  # local: the MCP client side

        svc = self.services
        manager = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=True)
        async with DownstreamPool(svc) as pool, manager.run(), anyio.create_task_group() as tg:
            gateways = Gateways(svc, pool)
            tg.start_soon(run_rediscovery, svc, gateways)
            self.gateways, self._manager = gateways, manager
            try:
                yield
            finally:
                self.gateways = self._manager = None
                tg.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        store_id = str(scope.get("path_params", {}).get("store_id", ""))
        base = _base(self.services, scope)
        manager, gateways = self._manager, self.gateways
        if manager is None or gateways is None:
            down = KeyplaneError(
                "the MCP gateway is not running (application lifespan not started)"
            )
            await self._error(scope, receive, send, down, 503, base, store_id, False)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            missing = AuthenticationError(
                "missing access token: send 'Authorization: Bearer <token>' with an access "
                "token of the store's token endpoint (the resource metadata names it)"
            )
            await self._error(scope, receive, send, missing, 401, base, store_id, False)
            return
        if not STORE_ID_RE.match(store_id):
            bad = AuthenticationError("the bearer token cannot be used: no such store")
            await self._error(scope, receive, send, bad, 401, base, store_id, True)
            return
        runtime = gateways.runtime(store_id, base + gateway_path(store_id))
        try:
            verified = await anyio.to_thread.run_sync(runtime.authenticate, token)
        except KeyplaneError as exc:
            await self._error(scope, receive, send, exc, 401, base, store_id, True)
            return
        req = GatewayRequest(runtime, token, verified)
        await manager.handle_request({**scope, GATEWAY_SCOPE_KEY: req}, receive, send)

    @staticmethod
    async def _error(
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: KeyplaneError,
        status: int,
        base: str,
        store_id: str,
        invalid: bool,
    ) -> None:
        rid = str((scope.get("state") or {}).get("request_id", ""))
        headers = None
        if status == 401:
            challenge = f'Bearer resource_metadata="{base}{metadata_path(store_id)}"'
            if invalid:  # RFC 6750 §3.1: a token was presented and refused
                challenge += ', error="invalid_token"'
            headers = {"WWW-Authenticate": challenge}
        body = envelope(exc.code, exc.message, rid, exc.details or None)
        await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)


def _metadata_endpoint(services: Services) -> Any:
    async def metadata(request: Request) -> Response:
        store_id = str(request.path_params.get("store_id", ""))
        rid = str(getattr(request.state, "request_id", "") or "")
        try:
            if not STORE_ID_RE.match(store_id):
                raise StoreNotFoundError(f"store {store_id!r} not found")
            await anyio.to_thread.run_sync(services.storage.get_store, store_id)
        except KeyplaneError as exc:
            status = 404 if isinstance(exc, StoreNotFoundError) else 503
            return JSONResponse(envelope(exc.code, exc.message, rid, None), status_code=status)
        base = _base(services, request.scope)
        return JSONResponse(
            protected_resource_metadata(services, base, store_id),
            headers={"Cache-Control": "public, max-age=300"},
        )

    return metadata


def mount_gateway(app: FastAPI, services: Services) -> GatewayEndpoint:
    """Serve the gateway at ``/gateway/{store_id}/mcp`` (and its RFC 9728 metadata) on
    ``app``, running its session manager, pool and scheduler in the app's lifespan (the
    existing lifespan is wrapped, as :func:`keyplane.mcp.http.mount_mcp` does)."""
    endpoint = GatewayEndpoint(services)
    app.state.gateway = endpoint
    app.router.routes.append(
        Route(
            "/gateway/{store_id}/mcp",
            endpoint,
            methods=["GET", "POST", "DELETE"],
            include_in_schema=False,
        )
    )
    app.router.routes.append(
        Route(
            "/.well-known/oauth-protected-resource/gateway/{store_id}/mcp",
            _metadata_endpoint(services),
            methods=["GET"],
            include_in_schema=False,
        )
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with endpoint.run(), inner(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    return endpoint

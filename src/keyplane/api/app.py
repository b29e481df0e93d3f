"""The ASGI application factory.

``create_app(services)`` builds one FastAPI app serving, on one port: health and metrics,
Keyplane's REST API under ``/v1``, the OpenFGA-compatible API, the AuthZEN 1.0
Authorization API (``/access/v1``, ``/.well-known/authzen-configuration``), SCIM 2.0
provisioning (``/scim/v2/{store}/``), MCP over
streamable HTTP at ``/mcp``, and the MCP gateway at ``/gateway/{store}/mcp``. Routers live in their own modules and are included here.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane import __version__
from keyplane.api import health, metrics, v1
from keyplane.api.authzen import router as authzen_router
from keyplane.api.errors import install_error_handlers
from keyplane.api.fastpath import install_fast_lane
from keyplane.api.jwks import router as jwks_router
from keyplane.api.limits import install_body_limit
from keyplane.api.oauth import router as oauth_router
from keyplane.api.openfga import router as openfga_router
from keyplane.api.scim import router as scim_router
from keyplane.config import Settings
from keyplane.service.context import Services, request_id_var

__all__ = ["create_app"]

MAX_BODY_BYTES_DEFAULT = Settings().max_body_bytes


def create_app(
    services: Services, *, max_body_bytes: int | None = None, fast_path: bool = True
) -> FastAPI:
    """``max_body_bytes`` defaults to ``KEYPLANE_MAX_BODY_BYTES`` (services.settings);
    ``fast_path=False`` serves the decision endpoints through FastAPI's routes only."""
    app = FastAPI(
        title="Keyplane",
        version=__version__,
        summary="A headless identity control plane for humans, workloads and AI agents.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    limit = services.settings.max_body_bytes if max_body_bytes is None else max_body_bytes
    # middleware order, outermost first: metrics → request id → body limit → fast lane →
    # routes; all pure ASGI (no task group or thread per request)
    if fast_path:
        # the decision endpoints' common case, on the event loop (keyplane.api.fastpath)
        install_fast_lane(app, services)
    install_body_limit(app, limit)
    app.add_middleware(RequestIdMiddleware)
    metrics.install_metrics(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(v1.router)  # Keyplane's REST API at /v1

    app.include_router(openfga_router)  # OpenFGA's HTTP API shape at /stores…
    app.include_router(jwks_router)  # public OAuth discovery: JWKS, RFC 8414 metadata
    app.include_router(oauth_router)  # OAuth 2.0 token, introspection, revocation endpoints
    app.include_router(authzen_router)  # AuthZEN 1.0 at /access/v1… and /stores/{id}/access/v1…
    app.include_router(scim_router)  # SCIM 2.0 provisioning at /scim/v2/{store}/…

    # MCP over streamable HTTP at /mcp (keyplane.mcp.http). mount_mcp WRAPS
    # app.router.lifespan_context to run the MCP SDK's session manager: compose other lifespan
    # work with it (FastAPI(lifespan=...) above is fine), never assign lifespan_context after it.
    from keyplane.mcp.http import mount_mcp  # local: keyplane.mcp imports keyplane.api.schemas

    mount_mcp(app, services)
    # the MCP gateway at /gateway/{store}/mcp and its RFC 9728 metadata (keyplane.gateway.http);
    # it wraps the lifespan too (its session manager, downstream pool and re-discovery)
    from keyplane.gateway.http import mount_gateway  # local: the gateway imports keyplane.mcp

    mount_gateway(app, services)
    return app


class RequestIdMiddleware:
    """Every request's id: ``X-Request-ID`` if the client sent one (first 128 characters),
    else a new one; in ``request.state.request_id``, in the context variable the service
    layer reads (every ledger event of the request names it; it reaches the worker thread
    a sync endpoint runs in), and echoed in the response's ``x-request-id`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")
                break
        rid = (rid or uuid.uuid4().hex)[:128]
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

"""The ASGI application factory.

``create_app(services)`` builds one FastAPI app serving, on one port: health and metrics,
Keyplane's REST API under ``/v1``, the OpenFGA-compatible API, the AuthZEN 1.0
Authorization API (``/access/v1``, ``/.well-known/authzen-configuration``), and MCP over
streamable HTTP at ``/mcp``. Routers live in their own modules and are included here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from keyplane import __version__
from keyplane.api import health, metrics, v1
from keyplane.api.authzen import router as authzen_router
from keyplane.api.errors import install_error_handlers
from keyplane.api.limits import install_body_limit
from keyplane.api.openfga import router as openfga_router
from keyplane.config import Settings
from keyplane.service.context import Services, request_id_var

__all__ = ["create_app"]

MAX_BODY_BYTES_DEFAULT = Settings().max_body_bytes


def create_app(services: Services, *, max_body_bytes: int | None = None) -> FastAPI:
    """``max_body_bytes`` defaults to ``KEYPLANE_MAX_BODY_BYTES`` (services.settings)."""
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
    # middleware order, outermost first: metrics → request id → body limit → routes
    install_body_limit(app, limit)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid[:128]
        # the service layer reads it from here (a context variable reaches the worker thread
        # a sync endpoint runs in); every ledger event of this request names it
        token = request_id_var.set(request.state.request_id)
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["x-request-id"] = request.state.request_id
        return response

    metrics.install_metrics(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(v1.router)  # Keyplane's REST API at /v1

    app.include_router(openfga_router)  # OpenFGA's HTTP API shape at /stores…
    app.include_router(authzen_router)  # AuthZEN 1.0 at /access/v1… and /stores/{id}/access/v1…

    # MCP over streamable HTTP at /mcp (keyplane.mcp.http). mount_mcp WRAPS
    # app.router.lifespan_context to run the MCP SDK's session manager: compose other lifespan
    # work with it (FastAPI(lifespan=...) above is fine), never assign lifespan_context after it.
    from keyplane.mcp.http import mount_mcp  # local: keyplane.mcp imports keyplane.api.schemas

    mount_mcp(app, services)
    return app

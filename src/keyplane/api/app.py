"""The ASGI application factory.

``create_app(services)`` builds one FastAPI app serving, on one port: health and metrics,
Keyplane's REST API under ``/v1``, the OpenFGA-compatible API, and MCP over streamable
HTTP at ``/mcp``. Routers live in their own modules and are included here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from keyplane import __version__
from keyplane.api.errors import envelope, install_error_handlers
from keyplane.api.openfga import router as openfga_router
from keyplane.service.context import Services

__all__ = ["create_app"]

MAX_BODY_BYTES_DEFAULT = 1_048_576


def create_app(services: Services, *, max_body_bytes: int = MAX_BODY_BYTES_DEFAULT) -> FastAPI:
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

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid[:128]
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse(
                envelope(
                    "limit_exceeded",
                    f"request body of {length} bytes exceeds the limit of {max_body_bytes}",
                    request.state.request_id,
                    {"limit": max_body_bytes},
                ),
                status_code=413,
            )
        response = await call_next(request)
        response.headers["x-request-id"] = request.state.request_id
        return response

    app.include_router(openfga_router)  # OpenFGA's HTTP API shape at /stores…

    return app

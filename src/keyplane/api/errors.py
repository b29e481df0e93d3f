"""The one place where Keyplane errors become HTTP responses.

Every error, on every endpoint, is the same JSON envelope::

    {"error": {"code": "tuple_exists", "message": "…", "details": {…}, "request_id": "…"}}

(OpenFGA-compatible endpoints use OpenFGA's own error shape instead; see
:mod:`keyplane.api.openfga`.) The status comes from :data:`STATUS_BY_ERROR`, matched on the
most specific class first.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyplane import errors as e

__all__ = ["STATUS_BY_ERROR", "envelope", "install_error_handlers", "status_for"]

STATUS_BY_ERROR: dict[type[e.KeyplaneError], int] = {
    e.ValidationError: 400,
    e.LimitExceededError: 413,
    e.ResolutionTooComplexError: 422,
    e.AuthenticationError: 401,
    e.PermissionDeniedError: 403,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.ConsistencyTimeoutError: 504,
    e.StorageError: 503,
    e.DownstreamError: 502,
    e.KeyplaneError: 500,
}


def status_for(exc: e.KeyplaneError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def envelope(
    code: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(request: Request, exc: e.KeyplaneError) -> JSONResponse:
    details = dict(exc.details)
    if exc.fga_code is not None:
        details.setdefault("fga_code", exc.fga_code)
    headers = {"WWW-Authenticate": 'Bearer realm="keyplane"'} if status_for(exc) == 401 else None
    return JSONResponse(
        envelope(exc.code, exc.message, request_id_of(request), details),
        status_code=status_for(exc),
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.KeyplaneError)
    async def _keyplane(request: Request, exc: e.KeyplaneError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(x) for x in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:]) or "body"
        return JSONResponse(
            envelope(
                "validation_error",
                f"{where}: {first['msg']}",
                request_id_of(request),
                {"errors": problems, "fga_code": 2000},
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 here is a body FastAPI could not even decode (not UTF-8, not JSON at all)
        code = {
            400: "validation_error",
            404: "not_found",
            405: "method_not_allowed",
            413: "limit_exceeded",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            envelope(code, str(exc.detail), request_id_of(request)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # never leak internals; the request id ties the response to the server log
        return JSONResponse(
            envelope("internal_error", "internal error", request_id_of(request)),
            status_code=500,
        )

"""OpenFGA's error shape for the OpenFGA-compatible routes — the one mapping table.

OpenFGA answers every error as ``{"code": "<name>", "message": "…"}``; the name comes from
its numeric code (openfga/api ``errors_ignore.proto``) and the HTTP status from the code's
range (openfga/openfga ``pkg/server/errors/encoded_errors.go``): 1xxx → 401, 2xxx → 400,
3500 → 422, 4xxx → 500, 5xxx → 404, and gRPC ``Aborted`` → 409. Keyplane errors carry the
numeric code as ``fga_code``; :func:`fga_error` turns any of them into that shape, and
:class:`FgaRoute` applies it to every route of the compatible API (including errors
raised while authenticating and decoding), so these routes never answer with Keyplane's
own envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyplane import errors as e

__all__ = ["FGA_CODE_NAMES", "FgaRoute", "fga_error", "fga_error_response", "unimplemented"]

_log = logging.getLogger("keyplane.api.openfga")

#: OpenFGA's numeric error codes and their names (``ErrorCode``, ``AuthErrorCode``,
#: ``InternalErrorCode``, ``NotFoundErrorCode`` in openfga/api).
FGA_CODE_NAMES: dict[int, str] = {
    1010: "bearer_token_missing",
    1500: "unauthenticated",
    1600: "forbidden",
    2000: "validation_error",
    2001: "authorization_model_not_found",
    2002: "authorization_model_resolution_too_complex",
    2003: "invalid_write_input",
    2004: "cannot_allow_duplicate_tuples_in_one_request",
    2007: "invalid_continuation_token",
    2017: "write_failed_due_to_invalid_input",
    2020: "latest_authorization_model_not_found",
    2021: "type_not_found",
    2022: "relation_not_found",
    2027: "invalid_tuple",
    2056: "invalid_authorization_model",
    4000: "internal_error",
    4004: "deadline_exceeded",
    5000: "undefined_endpoint",
    5002: "store_id_not_found",
    5004: "unimplemented",
}


def unimplemented(what: str) -> JSONResponse:
    """OpenFGA's answer for an endpoint the server does not serve (gRPC Unimplemented, 5004)."""
    return JSONResponse(
        {"code": "unimplemented", "message": f"{what} is not supported by Keyplane"},
        status_code=404,
    )


def _status(code: int) -> int:
    if 1000 <= code < 2000:
        return 403 if code == 1600 else 401
    if 2000 <= code < 3500:
        return 400
    if 3500 <= code < 4000:
        return 422
    if 4000 <= code < 5000:
        return 500
    return 404


def _numeric(exc: e.KeyplaneError, has_token: bool) -> int:
    """OpenFGA's numeric code for a Keyplane error (most specific class first)."""
    if isinstance(exc, e.AuthenticationError):
        return 1500 if has_token else 1010
    if isinstance(exc, e.PermissionDeniedError):
        return 1600
    if isinstance(exc, e.InvalidModelError):
        return 2056  # what OpenFGA's WriteAuthorizationModel answers for a bad model
    if isinstance(exc, e.ModelNotFoundError):
        # a named model that does not exist vs a store that has no model at all
        return 2001 if "model_id" in exc.details else 2020
    if isinstance(exc, e.TupleExistsError | e.TupleMissingError):
        return 2017
    if isinstance(exc, e.StoreNotFoundError):
        return 5002
    if isinstance(exc, e.NotFoundError):
        return 5000
    if isinstance(exc, e.ConsistencyTimeoutError):
        return 4004
    code = exc.fga_code
    if code is not None and code in FGA_CODE_NAMES:
        return code
    if isinstance(exc, e.ValidationError):
        return 2000
    return 4000


def fga_error(exc: e.KeyplaneError, *, has_token: bool = True) -> tuple[int, dict[str, str]]:
    """``(http_status, {"code", "message"})`` for a Keyplane error, as OpenFGA answers it."""
    if isinstance(exc, e.ConflictError) and not isinstance(
        exc, e.TupleExistsError | e.TupleMissingError
    ):
        # OpenFGA's transaction conflicts: gRPC Aborted, HTTP 409, code "Aborted"
        return 409, {"code": "Aborted", "message": exc.message}
    code = _numeric(exc, has_token)
    status = _status(code)
    message = exc.message if status != 500 or code == 4004 else "Internal Server Error"
    return status, {"code": FGA_CODE_NAMES[code], "message": message}


def fga_error_response(request: Request, exc: e.KeyplaneError) -> JSONResponse:
    status, body = fga_error(exc, has_token=bool(request.headers.get("authorization")))
    headers = {"WWW-Authenticate": 'Bearer realm="keyplane"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    problems = exc.errors()
    if not problems:
        return "invalid request"
    first = problems[0]
    loc = [str(x) for x in first.get("loc", ())]
    where = ".".join(loc[1:]) if len(loc) > 1 else (loc[0] if loc else "body")
    return f"invalid {where}: {first.get('msg', 'invalid value')}"


class FgaRoute(APIRoute):
    """A route that answers every error in OpenFGA's shape instead of Keyplane's envelope,
    and leaves unset fields out of its answers (as protojson does)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model_exclude_none"] = True
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except e.KeyplaneError as exc:
                return fga_error_response(request, exc)
            except RequestValidationError as exc:
                return JSONResponse(
                    {"code": "validation_error", "message": _validation_message(exc)},
                    status_code=400,
                )
            except StarletteHTTPException as exc:
                # raised before the handler runs: a body that is not JSON at all (400), or
                # one past KEYPLANE_MAX_BODY_BYTES (413) — a client error, never a 500
                code = "validation_error" if exc.status_code < 500 else "internal_error"
                return JSONResponse(
                    {"code": code, "message": str(exc.detail)}, status_code=exc.status_code
                )
            except Exception:
                # a bug: log it, and never leak internals (OpenFGA's own message for 4000)
                _log.exception("unexpected error on %s %s", request.method, request.url.path)
                return JSONResponse(
                    {"code": "internal_error", "message": "Internal Server Error"},
                    status_code=500,
                )

        return route

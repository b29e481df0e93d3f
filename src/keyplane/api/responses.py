"""OpenAPI error responses: every route declares the statuses it can answer with."""

from __future__ import annotations

from typing import Any

from keyplane.api.schemas import ErrorEnvelope

__all__ = ["error_responses"]


_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, a field of the wrong shape, a bad tuple or "
    "continuation token (`validation_error`, `invalid_tuple`, `type_not_found`, …).",
    401: "No API key, or an unknown, expired or revoked one (`unauthenticated`).",
    403: "The key's roles do not allow this operation (`permission_denied`).",
    404: "The store or model does not exist (`store_not_found`, `model_not_found`).",
    409: "Conflict with the stored state (`tuple_exists`, `tuple_missing`, `store_exists`).",
    413: "A limit was exceeded: body size, batch size, page size or contextual tuples "
    "(`limit_exceeded`).",
    422: "Resolution exceeded the depth or breadth limits (`resolution_too_complex`).",
    503: "The database failed (`storage_error`); retry.",
    504: "The requested `at_least_as_fresh` revision was not reached in time "
    "(`consistency_timeout`).",
}

#: the errors any authenticated ``/v1`` call may return
BASE = (400, 401, 403, 404, 413, 503)


def error_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return.

    ``4XX`` covers the rest (405 on a wrong method, …) with the same envelope; declaring
    it also keeps FastAPI from documenting a 422 validation response: Keyplane answers
    validation errors with 400 and its one error envelope.
    """
    out: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]}
        for status in sorted({*BASE, *extra})
    }
    out["4XX"] = {"model": ErrorEnvelope, "description": "Any other client error, same envelope."}
    return out

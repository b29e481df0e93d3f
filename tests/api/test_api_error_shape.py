"""One error envelope everywhere (cf. datasette's tests/test_error_shape.py).

Every error of the REST API — whatever the endpoint, whatever went wrong (no key, a bad
key, a role that does not allow it, a missing store, model or route, a conflict, invalid
JSON, a bad tuple, a limit) — is the same JSON shape::

    {"error": {"code": "…", "message": "…", "details": {…}?, "request_id": "…"}}

with the request id echoed in the ``x-request-id`` header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_helpers import new_store, tk, write

pytestmark = pytest.mark.anyio

Q = {"user": "user:anne", "relation": "viewer", "object": "document:1"}
GHOST_MODEL = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

# (who, method, path, request kwargs, status, code); "{store}" is a store with a model and
# one tuple; who: admin, anon, bogus (a well-formed unknown key), junk (not a key),
# reader (reader on that store only), auditor
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("anon", "GET", "/v1/stores", {}, 401, "unauthenticated"),
    ("anon", "POST", "/v1/stores/{store}/check", {"json": Q}, 401, "unauthenticated"),
    ("anon", "GET", "/metrics", {}, 401, "unauthenticated"),
    ("junk", "GET", "/v1/stores/{store}", {}, 401, "unauthenticated"),
    ("bogus", "POST", "/v1/stores/{store}/tuples/write", {"json": {}}, 401, "unauthenticated"),
    ("reader", "POST", "/v1/stores", {"json": {"name": "x"}}, 403, "permission_denied"),
    ("reader", "GET", "/v1/stores", {}, 403, "permission_denied"),
    (
        "reader",
        "POST",
        "/v1/stores/{store}/tuples/write",
        {"json": {"writes": [tk("document:2", "viewer", "user:bob")]}},
        403,
        "permission_denied",
    ),
    ("reader", "GET", "/v1/stores/{store}/changes", {}, 403, "permission_denied"),
    ("reader", "DELETE", "/v1/stores/{store}", {}, 403, "permission_denied"),
    (
        "auditor",
        "POST",
        "/v1/stores/{store}/models",
        {"json": {"dsl": "x"}},
        403,
        "permission_denied",
    ),
    ("reader", "GET", "/metrics", {}, 403, "permission_denied"),
    ("admin", "GET", "/v1/stores/ghost", {}, 404, "store_not_found"),
    ("admin", "POST", "/v1/stores/ghost/check", {"json": Q}, 404, "store_not_found"),
    ("admin", "GET", f"/v1/stores/{{store}}/models/{GHOST_MODEL}", {}, 404, "model_not_found"),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/check",
        {"json": {**Q, "model_id": GHOST_MODEL}},
        404,
        "model_not_found",
    ),
    ("admin", "GET", "/v1/no/such/route", {}, 404, "not_found"),
    ("anon", "GET", "/nothing-here", {}, 404, "not_found"),
    ("admin", "PUT", "/v1/stores", {}, 405, "method_not_allowed"),
    ("admin", "POST", "/v1/stores", {"json": {"name": "x", "id": "{store}"}}, 409, "store_exists"),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/tuples/write",
        {"json": {"writes": [tk("document:1", "viewer", "user:anne")]}},
        409,
        "tuple_exists",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/check",
        {"content": b'{"user": ', "headers": {"content-type": "application/json"}},
        400,
        "validation_error",
    ),
    ("admin", "POST", "/v1/stores/{store}/check", {"json": [1, 2]}, 400, "validation_error"),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/check",
        {"json": {**Q, "user": 7}},
        400,
        "validation_error",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/check",
        {"json": {"user": "user:a"}},
        400,
        "validation_error",
    ),
    (
        "admin",
        "GET",
        "/v1/stores/{store}/tuples",
        {"params": {"page_size": "many"}},
        400,
        "validation_error",
    ),
    (
        "admin",
        "GET",
        "/v1/stores/{store}/tuples",
        {"params": {"page_size": 0}},
        400,
        "validation_error",
    ),
    (
        "admin",
        "GET",
        "/v1/stores/{store}/tuples",
        {"params": {"continuation_token": "nope"}},
        400,
        "invalid_continuation_token",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/tuples/write",
        {"json": {"writes": [tk("document:1", "viewer", "anne")]}},
        400,
        "invalid_tuple",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/tuples/write",
        {"json": {"writes": [tk("rocket:1", "viewer", "user:anne")]}},
        400,
        "type_not_found",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/models",
        {"json": {"dsl": "model\n"}},
        400,
        "invalid_model",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/check",
        {"json": {**Q, "relation": "viewer", "object": "document:c", "user": "user:cat"}},
        400,
        "condition_error",
    ),
    (
        "admin",
        "GET",
        "/v1/stores/{store}/tuples",
        {"params": {"page_size": 10_000}},
        413,
        "limit_exceeded",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/batch-check",
        {"json": {"checks": [Q] * 1001}},
        413,
        "limit_exceeded",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/list-objects",
        {
            "json": {
                "user": "user:anne",
                "relation": "viewer",
                "type": "document",
                "contextual_tuples": [
                    tk(f"document:{i}", "viewer", "user:anne") for i in range(101)
                ],
            }
        },
        413,
        "limit_exceeded",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/check",
        {
            "content": b"{" + b" " * 2_000_000 + b"}",
            "headers": {"content-type": "application/json"},
        },
        413,
        "limit_exceeded",
    ),
    (
        "admin",
        "POST",
        "/v1/stores/{store}/expand",
        {"json": {"object": "document:1", "relation": "viewer", "at_least_as_fresh": 99}},
        504,
        "consistency_timeout",
    ),
]


def _id(case: tuple[str, str, str, dict[str, Any], int, str]) -> str:
    who, method, path, _, status, code = case
    return f"{status}-{code}-{who}-{method}-{path}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
async def test_error_envelope(
    case: tuple[str, str, str, dict[str, Any], int, str],
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    client_with_roles: Callable[..., httpx.AsyncClient],
) -> None:
    who, method, path, kwargs, status, code = case
    store = await new_store(client)
    await write(
        client,
        store,
        tk("document:1", "viewer", "user:anne"),
        tk("document:c", "viewer", "user:cat", condition={"name": "in_hours"}),
    )
    callers = {
        "admin": client,
        "anon": anon,
        "reader": client_with_roles(f"reader:{store}"),
        "auditor": client_with_roles("auditor"),
    }
    if who in ("bogus", "junk"):
        token = "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + "a" * 52 if who == "bogus" else "hello"
        callers[who] = anon
        kwargs = {
            **kwargs,
            "headers": {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"},
        }
    kwargs = _fill(kwargs, store)
    r = await callers[who].request(method, path.replace("{store}", store), **kwargs)

    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert (
        {"code", "message", "request_id"}
        <= set(err)
        <= {"code", "message", "details", "request_id"}
    )
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] and err["request_id"] == r.headers["x-request-id"]
    if "details" in err:
        assert isinstance(err["details"], dict) and err["details"]
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    # never a stack trace or an internal class name in what clients see
    assert "Traceback" not in r.text and "Error(" not in err["message"]


def _fill(kwargs: dict[str, Any], store: str) -> dict[str, Any]:
    if isinstance(kwargs.get("json"), dict):
        return {
            **kwargs,
            "json": {
                k: (v.replace("{store}", store) if isinstance(v, str) else v)
                for k, v in kwargs["json"].items()
            },
        }
    return kwargs


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores/ghost", headers={"x-request-id": "trace-123"})
    assert r.json()["error"]["request_id"] == "trace-123"
    assert r.headers["x-request-id"] == "trace-123"


def test_every_error_code_maps_to_a_status() -> None:
    from keyplane.api.errors import status_for
    from keyplane.errors import all_error_classes

    for cls in all_error_classes():
        assert 400 <= status_for(cls("x")) < 600

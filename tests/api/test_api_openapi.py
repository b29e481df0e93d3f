"""The OpenAPI 3.1 document: committed at docs/openapi.json, current, and complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from keyplane.api.openapi import openapi_document, render

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def test_committed_document_is_current() -> None:
    current = render(openapi_document())
    assert COMMITTED.read_text(encoding="utf-8") == current, (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


@pytest.mark.anyio
async def test_served_document_is_the_committed_one(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/openapi.json")  # public discovery: no key needed
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc == json.loads(COMMITTED.read_text(encoding="utf-8"))


def _keyplane_operations(app: FastAPI) -> list[tuple[str, str, dict[str, object]]]:
    doc = app.openapi()
    return [
        (method, path, op)
        for path, ops in doc["paths"].items()
        if path.startswith("/v1/") or path in ("/healthz", "/readyz", "/metrics")
        for method, op in ops.items()
    ]


def test_every_operation_has_a_snake_case_id_and_declares_its_errors(app: FastAPI) -> None:
    ops = _keyplane_operations(app)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for method, path, op in ops:
        assert SNAKE.match(str(op["operationId"])), (method, path)
        assert op.get("summary") and op.get("tags"), (method, path)
        responses = op["responses"]
        assert isinstance(responses, dict)
        if path in ("/healthz", "/readyz"):
            continue  # public probes: no key, no envelope
        for status in ("400", "401", "403", "4XX"):
            ref = json.dumps(responses[status])
            assert "ErrorEnvelope" in ref, (method, path, status)
        assert "422" not in responses or "ErrorEnvelope" in json.dumps(responses["422"])


def test_the_rest_operations(app: FastAPI) -> None:
    """The route table of docs/api.md, by operation id (the surface-parity test's key)."""
    ids = {str(op["operationId"]) for _, _, op in _keyplane_operations(app)}
    assert {
        "create_store",
        "list_stores",
        "get_store",
        "delete_store",
        "write_model",
        "list_models",
        "read_latest_model",
        "read_model",
        "write_tuples",
        "read_tuples",
        "read_changes",
        "check",
        "batch_check",
        "expand",
        "list_objects",
        "streamed_list_objects",
        "list_users",
        "explain",
        "healthz",
        "readyz",
        "metrics",
    } <= ids

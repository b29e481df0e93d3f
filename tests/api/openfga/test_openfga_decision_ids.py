"""The OpenFGA-compatible API returns each decision's id in the ``X-Keyplane-Decision-Id``
header (batch-check: every item's, comma-separated, in the order of the request's
``checks``), over real HTTP to a live uvicorn — while the bodies stay OpenFGA's, so the
official ``openfga-sdk`` keeps working and can read the header too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fga_live import FgaServer
from openfga_sdk.client.models import ClientCheckRequest
from openfga_sdk.models import BatchCheckItem, BatchCheckRequest, CheckRequestTupleKey

from keyplane.api.openfga.routes import DECISION_ID_HEADER
from keyplane.graph.language import load_model
from keyplane.storage.ids import ULID_RE

DSL = """\
model
  schema 1.1

type user

type document
  relations
    define viewer: [user]
"""


@pytest.fixture
def store(fga_server: FgaServer) -> Iterator[tuple[str, httpx.Client]]:
    """A fresh store with the model and one tuple, and an HTTP client for it."""
    headers = {"Authorization": f"Bearer {fga_server.key}"}
    with httpx.Client(base_url=fga_server.url, headers=headers, timeout=10) as http:
        r = http.post("/stores", json={"name": "ids"})
        assert r.status_code == 201, r.text
        store_id = r.json()["id"]
        r = http.post(f"/stores/{store_id}/authorization-models", json=dict(load_model(DSL)))
        assert r.status_code == 201, r.text
        r = http.post(
            f"/stores/{store_id}/write",
            json={"writes": {"tuple_keys": [tk("user:anne", "viewer", "document:1")]}},
        )
        assert r.status_code == 200, r.text
        yield store_id, http


def tk(user: str, relation: str, obj: str) -> dict[str, str]:
    return {"user": user, "relation": relation, "object": obj}


def test_check_returns_its_decision_id(
    fga_server: FgaServer, store: tuple[str, httpx.Client]
) -> None:
    store_id, http = store
    r = http.post(
        f"/stores/{store_id}/check", json={"tuple_key": tk("user:anne", "viewer", "document:1")}
    )
    assert r.status_code == 200 and r.json() == {"allowed": True, "resolution": ""}
    did = r.headers[DECISION_ID_HEADER]
    assert ULID_RE.match(did)
    ev = fga_server.services.storage.get_event_by_decision(did)
    assert ev is not None
    assert (ev.type, ev.subject, ev.outcome, ev.store) == (
        "decision.check", "user:anne", "allow", store_id,
    )  # fmt: skip


def test_batch_check_lists_ids_in_item_order(
    fga_server: FgaServer, store: tuple[str, httpx.Client]
) -> None:
    store_id, http = store
    checks = [
        {"tuple_key": tk(f"user:{u}", "viewer", "document:1"), "correlation_id": cid}
        for u, cid in (("bob", "z-last"), ("anne", "a-first"), ("carl", "m-mid"))
    ]
    r = http.post(f"/stores/{store_id}/batch-check", json={"checks": checks})
    assert r.status_code == 200, r.text
    assert set(r.json()["result"]) == {"z-last", "a-first", "m-mid"}  # the body is OpenFGA's
    ids = r.headers[DECISION_ID_HEADER].split(",")
    assert len(ids) == 3 and len(set(ids)) == 3
    events = [fga_server.services.storage.get_event_by_decision(i) for i in ids]
    assert [e.details["correlation_id"] for e in events if e] == ["z-last", "a-first", "m-mid"]
    assert [e.outcome for e in events if e] == ["deny", "allow", "deny"]


@pytest.mark.parametrize(
    ("path", "body", "type"),
    [
        ("expand", {"tuple_key": {"relation": "viewer", "object": "document:1"}}, "decision.expand"),
        ("list-objects", {"user": "user:anne", "relation": "viewer", "type": "document"}, "decision.list_objects"),
        ("streamed-list-objects", {"user": "user:anne", "relation": "viewer", "type": "document"}, "decision.list_objects"),
        ("list-users", {"object": {"type": "document", "id": "1"}, "relation": "viewer", "user_filters": [{"type": "user"}]}, "decision.list_users"),
    ],
)  # fmt: skip
def test_every_query_returns_its_decision_id(
    fga_server: FgaServer,
    store: tuple[str, httpx.Client],
    path: str,
    body: dict[str, object],
    type: str,
) -> None:
    store_id, http = store
    r = http.post(f"/stores/{store_id}/{path}", json=body)
    assert r.status_code == 200, r.text
    ev = fga_server.services.storage.get_event_by_decision(r.headers[DECISION_ID_HEADER])
    assert ev is not None and ev.type == type and ev.store == store_id


def test_the_official_sdk_still_works_and_sees_the_header(
    fga_server: FgaServer, store: tuple[str, httpx.Client]
) -> None:
    store_id, _ = store
    with fga_server.client(store_id=store_id) as fga:
        # the SDK's own escape hatch for raw responses (status, headers, body)
        raw = fga.execute_api_request(
            operation_name="Check",
            method="POST",
            path="/stores/{store_id}/check",
            path_params={"store_id": store_id},
            body={"tuple_key": tk("user:anne", "viewer", "document:1")},
        )
        assert raw.status == 200 and raw.json() == {"allowed": True, "resolution": ""}
        headers = {k.lower(): v for k, v in raw.headers.items()}
        did = headers[DECISION_ID_HEADER.lower()]
        assert fga_server.services.storage.get_event_by_decision(did) is not None
        # and the typed calls parse Keyplane's answers exactly as OpenFGA's
        assert fga.check(
            ClientCheckRequest(user="user:anne", relation="viewer", object="document:1")
        ).allowed
        batch = fga._api.batch_check(
            BatchCheckRequest(
                checks=[
                    BatchCheckItem(CheckRequestTupleKey("user:anne", "viewer", "document:1"), correlation_id="c1"),
                    BatchCheckItem(CheckRequestTupleKey("user:bob", "viewer", "document:1"), correlation_id="c2"),
                ]
            )
        )  # fmt: skip
        assert batch.result["c1"].allowed is True and batch.result["c2"].allowed is False

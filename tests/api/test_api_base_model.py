"""The base model over HTTP: /v1 model writes declare the identity types, the
OpenFGA-compatible endpoint keeps models exactly as written, and identities on such a
store are refused with the error naming what is missing."""

from __future__ import annotations

import httpx
import pytest
from api_helpers import new_store

from keyplane.graph.language import load_model
from keyplane.policy.base_model import merge_base_model

pytestmark = pytest.mark.anyio

PLAIN = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"


async def test_v1_extends_and_openfga_keeps_exactly(client: httpx.AsyncClient) -> None:
    store = await new_store(client, model=None)
    uses_base = PLAIN.replace("[user]", "[user, human, agent]")
    r = await client.post(f"/v1/stores/{store}/models", json={"dsl": uses_base})
    assert r.status_code == 201, r.text
    native = r.json()
    assert "type agent" in native["dsl"] and "define owner: [human, group#member]" in native["dsl"]
    r = await client.get(f"/v1/stores/{store}/models/{native['id']}")
    assert r.json()["model"] == native["model"]

    # the OpenFGA-compatible API: exactly as written, read back identical
    plain = load_model(PLAIN)
    r = await client.post(f"/stores/{store}/authorization-models", json=plain)
    assert r.status_code == 201, r.text
    model_id = r.json()["authorization_model_id"]
    r = await client.get(f"/stores/{store}/authorization-models/{model_id}")
    got = r.json()["authorization_model"]
    assert got["type_definitions"] == plain["type_definitions"]
    assert got["type_definitions"] != merge_base_model(plain)["type_definitions"]

    # identities on that store: refused, naming the base model; nothing registered
    body = {"kind": "agent", "id": "bot", "owners": ["human:alice"]}
    r = await client.post(f"/v1/stores/{store}/identities", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "type_not_found" and "base model" in err["message"]
    assert err["details"]["model_id"] == model_id
    r = await client.get(f"/v1/stores/{store}/identities/agent/bot")
    assert r.status_code == 404

    # a conflicting owner through /v1 is invalid_model, naming the conflict
    bad = PLAIN + "type agent\n  relations\n    define owner: [user]\n"
    r = await client.post(f"/v1/stores/{store}/models", json={"dsl": bad})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_model" and "'agent#owner'" in err["message"]
    assert err["details"]["errors"][0]["error_type"] == "base_model_conflict"


async def test_first_identity_of_a_store_without_a_model(client: httpx.AsyncClient) -> None:
    store = await new_store(client, model=None)
    body = {"kind": "agent", "id": "bot", "owners": ["human:alice"]}
    r = await client.post(f"/v1/stores/{store}/identities", json=body)
    assert r.status_code == 201, r.text
    r = await client.get(f"/v1/stores/{store}/models/latest")
    assert r.status_code == 200
    assert "type service_account" in r.json()["dsl"]

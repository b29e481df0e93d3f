"""SCIM 2.0 over real HTTP (uvicorn on loopback): ``/scim/v2/{store}/``.

The flows identity providers run — Okta's (look up by userName, create, deactivate with
PATCH, group push) and Entra ID's PATCH shapes (capitalised ops, booleans as strings,
filtered paths, the enterprise extension) — plus ETags, authentication, discovery, the
SCIM error shape and ``/Agents`` with owners. What each write did to the identity plane is
read back through the embedded API on the server's own database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyplane import Keyplane
from keyplane.ledger.events import EventFilter
from keyplane.service.auth import SYSTEM_STORE_ID, Caller
from scim.scim_live import SCIM_JSON, ScimLive, scim_server

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def live(storage_url: str) -> Iterator[ScimLive]:
    with scim_server(storage_url) as server:
        yield server


@pytest.fixture
def http(live: ScimLive) -> Iterator[httpx.Client]:
    with live.http() as client:
        yield client


def kp(live: ScimLive) -> Keyplane:
    return Keyplane(live.services, caller=Caller.system_caller())


def assert_scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON), r.headers
    body = r.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)  # a string (RFC 7644 §3.12)
    assert body["detail"]
    assert body.get("scimType") == scim_type, body


def okta_user(user_name: str, given: str = "Ada", family: str = "Lovelace") -> dict[str, Any]:
    """The body Okta sends to create a user (its SCIM 2.0 integration guide)."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00u1ab2c3dE4fG5h6",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def create(http: httpx.Client, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(endpoint, json=body, headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def patch(http: httpx.Client, path: str, *ops: dict[str, Any], **headers: str) -> httpx.Response:
    return http.patch(
        path,
        json={"schemas": [PATCH_OP], "Operations": list(ops)},
        headers={"Content-Type": SCIM_JSON, **headers},
    )


# ------------------------------------------------------------------------------ discovery


def test_discovery_documents(live: ScimLive, http: httpx.Client) -> None:
    r = http.get("/ServiceProviderConfig")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(SCIM_JSON)
    spc = r.json()
    assert spc["patch"]["supported"] is True
    assert spc["filter"] == {"supported": True, "maxResults": 200}
    assert spc["sort"]["supported"] is True and spc["etag"]["supported"] is True
    assert spc["bulk"]["supported"] is False and spc["changePassword"]["supported"] is False
    assert [s["type"] for s in spc["authenticationSchemes"]] == ["oauthbearertoken"]

    types = http.get("/ResourceTypes").json()
    assert types["schemas"] == [LIST] and types["totalResults"] == 3
    by_name = {t["name"]: t for t in types["Resources"]}
    assert {n: t["endpoint"] for n, t in by_name.items()} == {
        "User": "/Users",
        "Group": "/Groups",
        "Agent": "/Agents",
    }
    assert by_name["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_name["User"]["meta"]["location"] == f"{live.base}/ResourceTypes/User"
    assert http.get("/ResourceTypes/Agent").json()["schema"] == AGENT
    assert_scim_error(http.get("/ResourceTypes/Robot"), 404)

    schemas = http.get("/Schemas").json()
    ids = [s["id"] for s in schemas["Resources"]]
    assert {USER, GROUP, AGENT, ENTERPRISE} <= set(ids)
    # the discovery resources describe themselves too (RFC 7643 §8.7.2)
    names = {s["name"] for s in schemas["Resources"]}
    assert {"ServiceProviderConfig", "ResourceType", "Schema"} <= names
    agent = http.get(f"/Schemas/{AGENT}").json()
    attrs = {a["name"]: a for a in agent["attributes"]}
    assert attrs["displayName"]["required"] is True
    assert attrs["owners"]["multiValued"] is True
    user = http.get(f"/Schemas/{USER.upper()}").json()  # URNs are case-insensitive
    assert user["id"] == USER
    assert_scim_error(http.get("/Schemas/urn:example:nothing"), 404)


def test_unknown_paths_and_methods_are_scim_errors(http: httpx.Client) -> None:
    assert_scim_error(http.get("/Robots"), 404)
    assert_scim_error(http.get("/Users/a/b"), 404)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = http.request(method, "/ServiceProviderConfig")
        assert_scim_error(r, 405)
        assert r.headers["allow"] == "GET"
    r = http.put("/Users", json={})
    assert_scim_error(r, 405)
    assert r.headers["allow"] == "GET, POST"
    assert_scim_error(http.get("/Users/.search"), 405)


def test_openapi_names_the_scim_operations(live: ScimLive) -> None:
    doc = httpx.get(f"{live.server}/openapi.json").json()
    ops = {
        op["operationId"]: (method, path)
        for path, item in doc["paths"].items()
        if path.startswith("/scim/v2/")
        for method, op in item.items()
    }
    for name, method in (
        ("scim_create", "post"),
        ("scim_list", "get"),
        ("scim_get", "get"),
        ("scim_replace", "put"),
        ("scim_patch", "patch"),
        ("scim_delete", "delete"),
    ):
        assert ops[name][0] == method


# ------------------------------------------------------------------------------ auth


def test_authentication_and_permission(live: ScimLive) -> None:
    with live.http("") as anon:
        r = anon.get("/Users")
        assert_scim_error(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        # discovery is authenticated too
        assert_scim_error(anon.get("/ServiceProviderConfig"), 401)
        r = anon.get("/Users", headers={"Authorization": "Bearer kp_not_a_key"})
        assert_scim_error(r, 401)
        r = anon.get("/Users", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert_scim_error(r, 401)
    # each refusal is in the _system chain, surface scim
    live.services.ledger.flush()
    refusals = live.services.storage.read_events(
        SYSTEM_STORE_ID, limit=100, filters=EventFilter(types=("auth.failed",))
    )
    assert {(e.reasons[0], e.details["surface"]) for e in refusals} == {
        ("missing_key", "scim"),
        ("malformed_key", "scim"),
    }
    assert "GET /scim/v2/acme/Users" in {e.resource for e in refusals}
    # a writer may manage identities through /v1 but may not provision
    with live.http("writer") as writer:
        assert_scim_error(writer.get("/Users"), 403)
        assert_scim_error(writer.post("/Users", json=okta_user("w@example.com")), 403)
    # a provisioner of another store gets nowhere here
    with live.http("other") as other:
        assert_scim_error(other.get("/ServiceProviderConfig"), 403)
    # an admin key provisions any store; an unknown store is 404
    with live.http("admin") as admin:
        assert admin.get("/ServiceProviderConfig").status_code == 200
        r = admin.get(f"{live.server}/scim/v2/nowhere/Users")
        assert_scim_error(r, 404)
    # the provisioner key never reaches the rest of the API beyond its role
    r = httpx.get(
        f"{live.server}/v1/stores/acme/identities",
        headers={"Authorization": f"Bearer {live.keys['provisioner']}"},
    )
    assert r.status_code == 403


# ------------------------------------------------------------------------------ Okta


def test_okta_flow_create_lookup_deactivate(live: ScimLive, http: httpx.Client) -> None:
    # Okta first looks the user up by userName (a filtered, paged GET)
    r = http.get(
        "/Users", params={"filter": 'userName eq "ada@example.com"', "startIndex": 1, "count": 100}
    )
    assert r.status_code == 200
    assert r.json()["totalResults"] == 0 and r.json()["schemas"] == [LIST]

    r = http.post("/Users", json=okta_user("ada@example.com"), headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    ada = r.json()
    assert r.headers["location"] == ada["meta"]["location"] == f"{live.base}/Users/{ada['id']}"
    assert r.headers["etag"] == ada["meta"]["version"]
    assert ada["userName"] == "ada@example.com" and ada["active"] is True
    assert "password" not in ada  # returned: never
    # ... and never kept: neither in the stored resource nor in the ledger
    stored = live.services.storage.get_scim("acme", "User", ada["id"])
    assert stored is not None and "1mz050nq" not in json.dumps(stored.data)
    live.services.ledger.flush()
    events = live.services.storage.read_events("acme", limit=1000)
    assert {"scim.created", "identity.created"} <= {e.type for e in events}
    assert not any("1mz050nq" in json.dumps(e.details) for e in events)
    assert ada["meta"]["resourceType"] == "User"

    # mapped onto the identity plane: a human, source scim
    human = kp(live).get_identity(f"human:{ada['id']}", store="acme")
    assert human.source == "scim" and human.status == "active"
    assert human.display_name == "Ada Lovelace"
    assert human.attributes["userName"] == "ada@example.com"
    assert human.attributes["emails"] == ["ada@example.com"]

    # the same filter now finds her; case-insensitive attribute names and value (userName
    # is caseExact false)
    found = http.get("/Users", params={"filter": 'USERNAME eq "ADA@example.com"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == ada["id"]

    # a second POST with the same userName is a uniqueness conflict
    r = http.post("/Users", json=okta_user("ada@example.com"))
    assert_scim_error(r, 409, "uniqueness")

    # Okta deactivates with PATCH replace {active: false}
    r = patch(http, f"/Users/{ada['id']}", {"op": "replace", "value": {"active": False}})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert r.headers["etag"] != ada["meta"]["version"]
    assert kp(live).get_identity(f"human:{ada['id']}", store="acme").status == "deprovisioned"

    # re-activating is refused: deprovisioning is for good in Keyplane
    r = patch(http, f"/Users/{ada['id']}", {"op": "replace", "value": {"active": True}})
    assert_scim_error(r, 400, "mutability")
    assert kp(live).get_identity(f"human:{ada['id']}", store="acme").status == "deprovisioned"

    # to provision her again: delete the old resource, Okta's lookup then creates a new one
    assert http.delete(f"/Users/{ada['id']}").status_code == 204
    filtered = http.get("/Users", params={"filter": 'userName eq "ada@example.com"'}).json()
    assert filtered["totalResults"] == 0
    again = create(http, "/Users", okta_user("ada@example.com"))
    assert again["id"] != ada["id"] and again["active"] is True
    assert kp(live).get_identity(f"human:{again['id']}", store="acme").status == "active"
    assert kp(live).get_identity(f"human:{ada['id']}", store="acme").status == "deprovisioned"


def test_okta_rename_keeps_the_id(live: ScimLive, http: httpx.Client) -> None:
    grace = create(http, "/Users", okta_user("grace@example.com", "Grace", "Hopper"))
    body = okta_user("grace.hopper@example.com", "Grace", "Hopper")
    body["id"] = grace["id"]
    r = http.put(f"/Users/{grace['id']}", json=body)
    assert r.status_code == 200, r.text
    renamed = r.json()
    assert renamed["id"] == grace["id"] and renamed["userName"] == "grace.hopper@example.com"
    assert renamed["meta"]["created"] == grace["meta"]["created"]
    human = kp(live).get_identity(f"human:{grace['id']}", store="acme")
    assert human.attributes["userName"] == "grace.hopper@example.com"
    # the same PUT again is a no-op: no new version
    again = http.put(f"/Users/{grace['id']}", json=body)
    assert (
        again.status_code == 200 and again.json()["meta"]["version"] == renamed["meta"]["version"]
    )


def test_okta_group_push(live: ScimLive, http: httpx.Client) -> None:
    ada = create(http, "/Users", okta_user("ada@example.com"))
    alan = create(http, "/Users", okta_user("alan@example.com", "Alan", "Turing"))
    eng = create(
        http,
        "/Groups",
        {"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": ada["id"]}]},
    )
    assert eng["displayName"] == "Engineering"
    assert [m["value"] for m in eng["members"]] == [ada["id"]]
    embedded = kp(live)

    def members() -> set[str]:
        page = embedded.read_tuples(object=f"group:{eng['id']}", relation="member", store="acme")
        return {t.user for t in page.items}

    assert members() == {f"human:{ada['id']}"}
    # Okta's group push: PATCH add / remove members
    r = patch(
        http,
        f"/Groups/{eng['id']}",
        {"op": "add", "path": "members", "value": [{"value": alan["id"], "display": "Alan"}]},
    )
    assert r.status_code == 200, r.text
    assert members() == {f"human:{ada['id']}", f"human:{alan['id']}"}
    r = patch(
        http, f"/Groups/{eng['id']}", {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}
    )
    assert r.status_code == 200, r.text
    assert members() == {f"human:{alan['id']}"}
    # a user's groups are listed on the user (readOnly)
    assert [g["value"] for g in http.get(f"/Users/{alan['id']}").json().get("groups", [])] == [
        eng["id"]
    ]
    # an unknown member writes nothing
    r = patch(
        http,
        f"/Groups/{eng['id']}",
        {"op": "add", "path": "members", "value": [{"value": "nobody"}]},
    )
    assert_scim_error(r, 400, "invalidValue")
    assert members() == {f"human:{alan['id']}"}
    # deleting the group removes its tuples
    assert http.delete(f"/Groups/{eng['id']}").status_code == 204
    assert members() == set()
    assert_scim_error(http.get(f"/Groups/{eng['id']}"), 404)


# ------------------------------------------------------------------------------ Entra ID


def test_entra_patch_shapes(live: ScimLive, http: httpx.Client) -> None:
    """Entra ID capitalises ops, sends booleans as strings and uses filtered paths."""
    body = okta_user("joan@contoso.com", "Joan", "Clarke")
    body["schemas"] = [USER, ENTERPRISE]
    body[ENTERPRISE] = {"employeeNumber": "701984", "department": "Crypto"}
    joan = create(http, "/Users", body)
    assert joan[ENTERPRISE]["department"] == "Crypto"
    r = patch(
        http,
        f"/Users/{joan['id']}",
        {"op": "Replace", "path": "displayName", "value": "Joan Murray"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "joan.murray@contoso.com"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Research"},
        {"op": "Add", "path": "title", "value": "Cryptanalyst"},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["displayName"] == "Joan Murray" and got["title"] == "Cryptanalyst"
    assert got[ENTERPRISE]["department"] == "Research"
    assert [e["value"] for e in got["emails"] if e.get("type") == "work"] == [
        "joan.murray@contoso.com"
    ]
    human = kp(live).get_identity(f"human:{joan['id']}", store="acme")
    assert human.attributes["department"] == "Research"
    assert human.attributes["title"] == "Cryptanalyst"
    # Entra's soft delete: active as the string "False"
    r = patch(http, f"/Users/{joan['id']}", {"op": "Replace", "path": "active", "value": "False"})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert kp(live).get_identity(f"human:{joan['id']}", store="acme").status == "deprovisioned"


# ------------------------------------------------------------------------------ versions


def test_etags_and_if_match(http: httpx.Client) -> None:
    ada = create(http, "/Users", okta_user("ada@example.com"))
    path = f"/Users/{ada['id']}"
    r = http.get(path)
    etag = r.headers["etag"]
    assert etag == ada["meta"]["version"] and etag.startswith('W/"')
    assert http.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert http.get(path, headers={"If-None-Match": etag[2:]}).status_code == 304  # weak
    assert http.get(path, headers={"If-None-Match": 'W/"0"'}).status_code == 200
    # a write with the current version succeeds and bumps it
    r = patch(
        http, path, {"op": "replace", "path": "title", "value": "Countess"}, **{"If-Match": etag}
    )
    assert r.status_code == 200, r.text
    new = r.headers["etag"]
    assert new != etag
    # the stale version is refused, whatever the method
    r = patch(http, path, {"op": "replace", "path": "title", "value": "x"}, **{"If-Match": etag})
    assert_scim_error(r, 412)
    body = okta_user("ada@example.com")
    assert_scim_error(http.put(path, json=body, headers={"If-Match": etag}), 412)
    assert_scim_error(http.delete(path, headers={"If-Match": etag}), 412)
    assert http.get(path).json()["title"] == "Countess"
    assert http.delete(path, headers={"If-Match": new}).status_code == 204
    assert_scim_error(http.get(path), 404)


# ------------------------------------------------------------------------------ Agents


def test_agents_with_owners(live: ScimLive, http: httpx.Client) -> None:
    ada = create(http, "/Users", okta_user("ada@example.com"))
    r = http.post("/Agents", json={"schemas": [AGENT], "displayName": "Planner"})
    assert_scim_error(r, 400, "invalidValue")  # an agent needs an owner
    planner = create(
        http,
        "/Agents",
        {
            "schemas": [AGENT],
            "displayName": "Planner",
            "agentType": "autonomous",
            "description": "plans the roadmap",
            "owners": [{"value": ada["id"]}],
        },
    )
    assert planner["meta"]["resourceType"] == "Agent"
    assert [o["value"] for o in planner["owners"]] == [ada["id"]]
    agent = kp(live).get_identity(f"agent:{planner['id']}", store="acme")
    assert agent.source == "scim" and agent.owners == (f"human:{ada['id']}",)
    assert not agent.orphaned
    listed = http.get("/Agents", params={"filter": 'displayName sw "plan"'}).json()
    assert [a["id"] for a in listed["Resources"]] == [planner["id"]]
    # deprovisioning its only owner orphans the agent
    assert (
        patch(
            http, f"/Users/{ada['id']}", {"op": "replace", "path": "active", "value": False}
        ).status_code
        == 200
    )
    assert kp(live).get_identity(f"agent:{planner['id']}", store="acme").orphaned


# ------------------------------------------------------------------------------ queries


def test_list_search_projection_and_paging(http: httpx.Client) -> None:
    for i, name in enumerate(["carol", "alice", "bob", "dave"]):
        body = okta_user(f"{name}@example.com", name.title(), "Example")
        body["title"] = "Engineer" if i % 2 else "Manager"
        create(http, "/Users", body)
    page = http.get(
        "/Users",
        params={"sortBy": "userName", "startIndex": 2, "count": 2, "attributes": "userName"},
    ).json()
    assert page["totalResults"] == 4 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["bob@example.com", "carol@example.com"]
    assert set(page["Resources"][0]) == {"schemas", "id", "userName"}

    r = http.post(
        "/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'title eq "Engineer" and emails co "example.com"',
            "sortBy": "userName",
            "sortOrder": "descending",
            "excludedAttributes": "emails,name",
        },
    )
    assert r.status_code == 200, r.text
    found = r.json()
    assert [u["userName"] for u in found["Resources"]] == ["dave@example.com", "alice@example.com"]
    assert "emails" not in found["Resources"][0] and "name" not in found["Resources"][0]

    # the root search spans every resource type
    r = http.post("/.search", json={"filter": 'userName sw "a"', "attributes": ["userName"]})
    assert r.status_code == 200, r.text
    assert [u["userName"] for u in r.json()["Resources"]] == ["alice@example.com"]
    create(http, "/Groups", {"schemas": [GROUP], "displayName": "Admins"})
    r = http.post(
        "/.search",
        json={"filter": 'displayName sw "a"', "sortBy": "displayName", "attributes": "displayName"},
    )
    assert r.status_code == 200, r.text
    both = r.json()
    assert [x["displayName"] for x in both["Resources"]] == ["Admins", "Alice Example"]
    assert [x["schemas"] for x in both["Resources"]] == [[GROUP], [USER]]
    assert both["totalResults"] == 2

    one = http.get("/Users", params={"filter": 'userName eq "bob@example.com"'}).json()[
        "Resources"
    ][0]
    got = http.get(f"/Users/{one['id']}", params={"attributes": "name.givenName"}).json()
    assert got["name"] == {"givenName": "Bob"} and "emails" not in got

    assert_scim_error(http.get("/Users", params={"filter": 'userName eq "x'}), 400, "invalidFilter")
    r = http.get(
        f"/Users/{one['id']}", params={"attributes": "userName", "excludedAttributes": "name"}
    )
    assert_scim_error(r, 400, "invalidSyntax")


def test_bad_bodies_are_scim_errors(http: httpx.Client) -> None:
    r = http.post("/Users", content=b"{not json", headers={"Content-Type": SCIM_JSON})
    assert_scim_error(r, 400, "invalidSyntax")
    r = http.post("/Users", json=["a", "list"])
    assert_scim_error(r, 400, "invalidSyntax")
    assert_scim_error(http.post("/Users", json={"schemas": [USER]}), 400, "invalidValue")
    assert_scim_error(http.get("/Users/nobody"), 404)
    assert_scim_error(http.delete("/Users/nobody"), 404)
    # application/json is accepted as well as application/scim+json
    r = http.post(
        "/Users", json=okta_user("json@example.com"), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text


def test_body_size_limit(live: ScimLive, http: httpx.Client) -> None:
    """KEYPLANE_MAX_BODY_BYTES (1 MiB by default) as on the rest of the API."""
    big = okta_user("big@example.com")
    big["title"] = "x" * (live.services.settings.max_body_bytes + 1)
    assert http.post("/Users", json=big).status_code == 413  # announced: refused unread

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"userName": "big@example.com", "title": "'
        for _ in range(live.services.settings.max_body_bytes // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    r = http.post("/Users", content=chunks(), headers={"Content-Type": SCIM_JSON})
    assert_scim_error(r, 413)
    assert http.get("/Users").json()["totalResults"] == 0

"""The identity plane over real HTTP (``/v1/stores/{store}/identities…``, ``/delegations…``,
``/policy``): each operation's round trip, and the error envelopes callers match on."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from idp_helpers import Live

from keyplane.storage.ids import ULID_RE

S = "/v1/stores/default"


def http(live: Live, role: str = "admin") -> httpx.Client:
    return httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {live.keys[role]}"}, timeout=30
    )


def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code, body
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def test_identities_round_trip(any_live: Live) -> None:
    live = any_live
    with http(live) as c:
        alice = ok(
            c.post(
                f"{S}/identities",
                json={
                    "kind": "human",
                    "id": "alice",
                    "display_name": "Alice",
                    "attributes": {"team": "growth"},
                },
            ),
            201,
        )
        assert alice["node"] == "human:alice" and alice["status"] == "active"
        assert alice["attributes"] == {"team": "growth"} and alice["display_name"] == "Alice"
        assert alice["revision"] >= 1 and alice["created_at"].endswith("Z")
        ok(c.post(f"{S}/identities", json={"kind": "human", "id": "bob"}), 201)
        planner = ok(
            c.post(
                f"{S}/identities",
                json={"kind": "agent", "id": "planner", "owners": ["human:alice"]},
            ),
            201,
        )
        assert planner["owners"] == ["human:alice"] and planner["orphaned"] is False
        # the owner is a tuple of the graph
        tuples = ok(c.get(f"{S}/tuples", params={"object": "agent:planner"}))["tuples"]
        assert {"object": "agent:planner", "relation": "owner", "user": "human:alice"} in tuples

        got = ok(c.get(f"{S}/identities/agent/planner"))
        assert got == planner
        listed = ok(c.get(f"{S}/identities", params={"kind": "agent"}))
        assert [i["node"] for i in listed["identities"]] == ["agent:planner"]
        owned = ok(c.get(f"{S}/identities", params={"owner": "human:alice"}))
        assert [i["node"] for i in owned["identities"]] == ["agent:planner"]
        page = ok(c.get(f"{S}/identities", params={"page_size": 2}))
        assert len(page["identities"]) == 2 and page["continuation_token"]
        rest = ok(
            c.get(
                f"{S}/identities",
                params={"page_size": 2, "continuation_token": page["continuation_token"]},
            )
        )
        assert {i["node"] for i in page["identities"] + rest["identities"]} == {
            "human:alice",
            "human:bob",
            "agent:planner",
        }

        upd = ok(
            c.patch(
                f"{S}/identities/agent/planner",
                json={"display_name": "Planner", "attributes": {"model": "large"}},
            )
        )
        assert upd["display_name"] == "Planner" and upd["attributes"] == {"model": "large"}
        assert upd["revision"] > planner["revision"]

        owners = ok(
            c.post(
                f"{S}/identities/agent/planner/owners",
                json={"add": ["human:bob"], "remove": ["human:alice"]},
            )
        )
        assert owners["owners"] == ["human:bob"]

        sus = ok(c.post(f"{S}/identities/agent/planner:suspend", json={"reason": "test"}))
        assert sus["status"] == "suspended"
        assert (
            ok(c.get(f"{S}/identities", params={"status": "suspended"}))["identities"][0]["node"]
            == "agent:planner"
        )
        react = ok(c.post(f"{S}/identities/agent/planner:reactivate"))
        assert react["status"] == "active"
        gone = ok(c.post(f"{S}/identities/human/bob:deprovision"))
        assert gone["status"] == "deprovisioned"
        # bob was planner's only owner: planner is orphaned now
        orphan = ok(c.get(f"{S}/identities/agent/planner"))
        assert orphan["orphaned"] is True
        assert [
            i["node"]
            for i in ok(c.get(f"{S}/identities", params={"orphaned": "true"}))["identities"]
        ] == ["agent:planner"]
        # a deprovisioned identity does not come back
        error(c.post(f"{S}/identities/human/bob:reactivate"), 409, "identity_state")


def test_identity_errors(live: Live) -> None:
    with http(live) as c:
        body = error(c.get(f"{S}/identities/agent/nobody"), 404, "identity_not_found")
        assert "agent:nobody" in body["message"]
        error(c.post(f"{S}/identities/agent/nobody:suspend"), 404, "identity_not_found")
        error(
            c.post(f"{S}/identities", json={"kind": "agent", "id": "lonely"}), 400, "owner_required"
        )
        ok(c.post(f"{S}/identities", json={"kind": "human", "id": "alice"}), 201)
        error(
            c.post(f"{S}/identities", json={"kind": "human", "id": "alice"}), 409, "identity_exists"
        )
        error(c.post(f"{S}/identities", json={"kind": "robot", "id": "x"}), 400, "validation_error")
        error(
            c.post(f"{S}/identities", json={"kind": "human", "id": "x", "extra": 1}),
            400,
            "validation_error",
        )
        error(c.get("/v1/stores/nope/identities/human/alice"), 404, "store_not_found")
    with http(live, "reader") as r:
        assert ok(r.get(f"{S}/identities/human/alice"))["node"] == "human:alice"
        body = error(
            r.post(f"{S}/identities", json={"kind": "human", "id": "eve"}), 403, "permission_denied"
        )
        assert "can_manage_identities" in str(body)
        error(r.post(f"{S}/identities/human/alice:suspend"), 403, "permission_denied")
    with httpx.Client(base_url=live.url) as anon:
        error(anon.get(f"{S}/identities"), 401, "unauthenticated")


def _delegation(delegator: str, delegate: str, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "delegator": delegator,
        "delegate": delegate,
        "scope": [{"actions": ["viewer"], "resource": "document:*"}],
        "expires_at": time.time() + 3600,
        "purposes": ["planning"],
        "max_depth": 1,
    }
    body.update(kw)
    return body


def _people(c: httpx.Client) -> None:
    ok(c.post(f"{S}/identities", json={"kind": "human", "id": "alice"}), 201)
    for agent in ("planner", "researcher", "writer"):
        ok(
            c.post(
                f"{S}/identities", json={"kind": "agent", "id": agent, "owners": ["human:alice"]}
            ),
            201,
        )


def test_delegations_round_trip(any_live: Live) -> None:
    live = any_live
    with http(live) as c:
        _people(c)
        root = ok(c.post(f"{S}/delegations", json=_delegation("human:alice", "agent:planner")), 201)
        assert ULID_RE.match(root["id"]) and root["status"] == "active"
        assert root["scope"] == [{"actions": ["viewer"], "resource": "document:*", "tools": []}]
        assert root["purposes"] == ["planning"] and root["max_depth"] == 1
        assert root["expires_at"].endswith("Z") and root["parent_id"] is None
        child = ok(
            c.post(
                f"{S}/delegations",
                json=_delegation(
                    "agent:planner",
                    "agent:researcher",
                    scope=[{"actions": ["viewer"], "resource": "document:roadmap"}],
                    expires_at=time.time() + 1800,
                    max_depth=0,
                    parent_id=root["id"],
                ),
            ),
            201,
        )
        assert child["parent_id"] == root["id"]
        assert ok(c.get(f"{S}/delegations/{child['id']}")) == child
        mine = ok(c.get(f"{S}/delegations", params={"delegate": "agent:researcher"}))
        assert [d["id"] for d in mine["delegations"]] == [child["id"]]
        below = ok(c.get(f"{S}/delegations", params={"parent_id": root["id"]}))
        assert [d["id"] for d in below["delegations"]] == [child["id"]]
        given = ok(c.get(f"{S}/delegations", params={"delegator": "human:alice"}))
        assert [d["id"] for d in given["delegations"]] == [root["id"]]

        revoked = ok(c.post(f"{S}/delegations/{root['id']}:revoke", json={"reason": "done"}))
        assert {d["id"] for d in revoked["revoked"]} == {root["id"], child["id"]}
        assert all(d["status"] == "revoked" and d["revoked_at"] for d in revoked["revoked"])
        after = ok(c.get(f"{S}/delegations", params={"status": "revoked"}))
        assert {d["id"] for d in after["delegations"]} == {root["id"], child["id"]}
        assert ok(c.get(f"{S}/delegations/{child['id']}"))["status"] == "revoked"


@pytest.mark.parametrize(
    ("change", "widening"),
    [
        ({"scope": [{"actions": ["editor"], "resource": "document:roadmap"}]}, "scope"),
        ({"purposes": ["marketing"]}, "purposes"),
        ({"max_depth": 1}, "depth"),
        ({"expires_at_delta": 7200}, "expires_at"),
    ],
)
def test_sub_delegation_widening_is_named(
    live: Live, change: dict[str, Any], widening: str
) -> None:
    with http(live) as c:
        _people(c)
        root = ok(c.post(f"{S}/delegations", json=_delegation("human:alice", "agent:planner")), 201)
        body = _delegation(
            "agent:planner",
            "agent:researcher",
            scope=[{"actions": ["viewer"], "resource": "document:roadmap"}],
            expires_at=time.time() + 1800,
            max_depth=0,
            parent_id=root["id"],
        )
        delta = change.pop("expires_at_delta", None)
        if delta is not None:
            body["expires_at"] = time.time() + delta
        body.update(change)
        err = error(c.post(f"{S}/delegations", json=body), 400, "delegation_widening")
        assert err["details"]["widening"] == widening


def test_delegation_errors(live: Live) -> None:
    with http(live) as c:
        _people(c)
        error(c.get(f"{S}/delegations/01JD7Q2W8V0M6X4J3N5P9R1T2Y"), 404, "delegation_not_found")
        error(
            c.post(f"{S}/delegations/01JD7Q2W8V0M6X4J3N5P9R1T2Y:revoke"),
            404,
            "delegation_not_found",
        )
        error(
            c.post(
                f"{S}/delegations",
                json=_delegation("human:alice", "agent:planner", expires_at=time.time() - 10),
            ),
            400,
            "invalid_delegation",
        )
        error(
            c.post(
                f"{S}/delegations",
                json=_delegation(
                    "human:alice", "agent:planner", expires_at=time.time() + 10 * 86400
                ),
            ),
            400,
            "invalid_delegation",
        )
        body = _delegation("human:alice", "agent:planner")
        del body["expires_at"]
        error(c.post(f"{S}/delegations", json=body), 400, "validation_error")
    with http(live, "reader") as r:
        error(
            r.post(f"{S}/delegations", json=_delegation("human:alice", "agent:planner")),
            403,
            "permission_denied",
        )
        assert ok(r.get(f"{S}/delegations"))["delegations"] == []


def test_store_policy_round_trip(live: Live) -> None:
    with http(live) as c:
        p = ok(c.get(f"{S}/policy"))
        assert p == {
            "max_delegation_seconds": 86400,
            "suspend_orphans": False,
            "actions": {},
            "revision": 0,
            "max_credential_seconds": 7776000,
            "access_token_seconds": 300,
            "allow_impersonation": False,
            "token_audiences": [],
            "trusted_issuers": [],
        }
        p = ok(
            c.patch(
                f"{S}/policy",
                json={"max_delegation_seconds": 600, "actions": {"read": "viewer"}},
            )
        )
        assert p["max_delegation_seconds"] == 600 and p["actions"] == {"read": "viewer"}
        assert p["suspend_orphans"] is False and p["revision"] > 0
        p2 = ok(c.patch(f"{S}/policy", json={"suspend_orphans": True}))
        assert p2["suspend_orphans"] is True and p2["actions"] == {"read": "viewer"}
        assert ok(c.get(f"{S}/policy")) == p2
        # the cap applies at once
        _people(c)
        err = error(
            c.post(f"{S}/delegations", json=_delegation("human:alice", "agent:planner")),
            400,
            "invalid_delegation",
        )
        assert "600" in err["message"] or err["details"]
        error(c.patch(f"{S}/policy", json={"max_delegation_seconds": 0}), 400, "validation_error")
    with http(live, "writer") as w:
        assert ok(w.get(f"{S}/policy"))["max_delegation_seconds"] == 600
        error(w.patch(f"{S}/policy", json={"suspend_orphans": False}), 403, "permission_denied")

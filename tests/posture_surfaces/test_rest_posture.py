"""Governance analytics over REST on a real server (issue 8): effective access (JSON
pages, NDJSON streaming, DOT and Mermaid drawings), over-privilege and applying its
recommendation, agents exceeding owners, the NHI inventory and the posture report (JSON,
text, HTML) — with real keys of each role."""

from __future__ import annotations

import json
from typing import Any

import httpx
from posture_helpers import PLANNER_GRANTS, Live

NDJSON = "application/x-ndjson"


def _get(live: Live, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
    return httpx.get(
        f"{live.url}/v1/stores/default{path}",
        headers={"authorization": f"Bearer {live.keys[role]}", **kw.pop("headers", {})},
        timeout=30,
        **kw,
    )


def _post(live: Live, path: str, body: dict[str, Any], role: str = "admin") -> httpx.Response:
    return httpx.post(
        f"{live.url}/v1/stores/default{path}",
        headers={"authorization": f"Bearer {live.keys[role]}"},
        json=body,
        timeout=30,
    )


def _keys(entries: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(e["user"], e["relation"], e["object"], e["via"]) for e in entries]


# ---------------------------------------------------------------------------- effective access


def test_effective_access_pages_and_streams(any_live: Live) -> None:
    live = any_live
    whole = _get(live, "/effective-access", params={"identity": "agent:planner"})
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["continuation_token"] is None
    # the page's ledger event, in the body and the header, is the decision.effective_access
    assert body["decision_id"] and whole.headers["x-decision-id"] == body["decision_id"]
    shown = httpx.get(
        f"{live.url}/v1/ledger/decisions/{body['decision_id']}",
        headers={"authorization": f"Bearer {live.keys['admin']}"},
        timeout=30,
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["event"]["type"] == "decision.effective_access"
    found = _keys(body["entries"])
    mine = {(o, r) for u, r, o, via in found if via == "graph"}
    # its grants, the group's document, and the rewrites (editor ⇒ viewer)
    assert {
        ("document:roadmap", "viewer"),
        ("document:budget", "editor"),
        ("document:budget", "viewer"),
        ("group:eng", "member"),
        ("document:specs", "viewer"),
    } <= mine
    delegated = [e for e in body["entries"] if e["via"] == "delegation"]
    assert [(e["object"], e["relation"], e["on_behalf_of"]) for e in delegated] == [
        ("document:roadmap", "viewer", "human:alice")
    ]
    assert delegated[0]["delegation_id"]
    assert all(e["paths"] for e in body["entries"])

    # one page at a time, the same entries in the same order
    paged: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params = {"identity": "agent:planner", "page_size": 2}
        if token:
            params["continuation_token"] = token
        page = _get(live, "/effective-access", params=params).json()
        assert len(page["entries"]) <= 2
        paged += page["entries"]
        token = page["continuation_token"]
        if token is None:
            break
    assert _keys(paged) == found

    # NDJSON: every page in one answer, one entry a line
    streamed = _get(
        live,
        "/effective-access",
        params={"identity": "agent:planner", "page_size": 2, "paths": "false"},
        headers={"accept": NDJSON},
    )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith(NDJSON)
    lines = [json.loads(x) for x in streamed.text.splitlines() if x]
    assert _keys(lines) == found
    assert all(e["paths"] == [] for e in lines)


def test_effective_access_filters_and_errors(live: Live) -> None:
    docs = _get(
        live,
        "/effective-access",
        params={"identity": "agent:planner", "object_type": "document", "relation": "editor"},
    ).json()
    assert _keys(docs["entries"]) == [("agent:planner", "editor", "document:budget", "graph")]
    no_delegation = _get(
        live, "/effective-access", params={"identity": "agent:planner", "delegated": "false"}
    ).json()
    assert all(e["via"] == "graph" for e in no_delegation["entries"])

    bad_type = _get(
        live, "/effective-access", params={"identity": "agent:planner", "object_type": "nope"}
    )
    assert bad_type.status_code == 400 and bad_type.json()["error"]["code"] == "type_not_found"
    bad_token = _get(
        live, "/effective-access", params={"identity": "agent:planner", "continuation_token": "x"}
    )
    assert bad_token.json()["error"]["code"] == "invalid_continuation_token"
    # an error is the usual envelope even when a stream was asked for
    streamed_err = _get(
        live,
        "/effective-access",
        params={"identity": "agent:planner", "object_type": "nope"},
        headers={"accept": NDJSON},
    )
    assert streamed_err.status_code == 400
    assert streamed_err.json()["error"]["code"] == "type_not_found"
    anonymous = httpx.get(f"{live.url}/v1/stores/default/effective-access?identity=agent:planner")
    assert anonymous.status_code == 401


def test_who_can_access(live: Live) -> None:
    r = _get(live, "/resource-access", params={"object": "document:roadmap", "relation": "viewer"})
    assert r.status_code == 200, r.text
    found = _keys(r.json()["entries"])
    assert ("human:alice", "viewer", "document:roadmap", "graph") in found
    assert ("agent:planner", "viewer", "document:roadmap", "graph") in found
    assert ("agent:planner", "viewer", "document:roadmap", "delegation") in found
    agents = _get(
        live, "/resource-access", params={"object": "document:roadmap", "user_type": "agent"}
    ).json()
    assert {e["user"] for e in agents["entries"]} == {"agent:planner"}
    streamed = _get(
        live,
        "/resource-access",
        params={"object": "document:roadmap", "relation": "viewer", "page_size": 1},
        headers={"accept": NDJSON},
    )
    assert _keys([json.loads(x) for x in streamed.text.splitlines()]) == found


def test_drawings(live: Live) -> None:
    import pydot

    dot = _get(live, "/effective-access", params={"identity": "agent:planner", "format": "dot"})
    assert dot.status_code == 200, dot.text
    assert dot.headers["content-type"].startswith("text/vnd.graphviz")
    graphs = pydot.graph_from_dot_data(dot.text)
    assert graphs, dot.text
    text = dot.text
    assert "document:budget" in text and "agent:planner" in text
    assert "dashed" in text  # the delegated entry

    mermaid = _get(
        live, "/resource-access", params={"object": "document:roadmap", "format": "mermaid"}
    )
    assert mermaid.status_code == 200
    assert "flowchart LR" in mermaid.text.splitlines()
    assert 'title: "who can access document:roadmap"' in mermaid.text
    assert "human:alice" in mermaid.text

    paged = _get(
        live,
        "/effective-access",
        params={"identity": "agent:planner", "format": "mermaid", "page_size": 1},
    )
    assert paged.headers.get("x-continuation-token")


# ---------------------------------------------------------------------------- over-privilege


def test_over_privilege_and_apply_as_review(any_live: Live) -> None:
    live = any_live
    r = _get(live, "/identities/agent/planner/over-privilege", params={"window_days": 30})
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["identity"] == "agent:planner"
    assert {g["tuple"] for g in o["grants"]} == PLANNER_GRANTS
    assert [(u["object"], u["relation"], u["uses"]) for u in o["used"]] == [
        ("document:roadmap", "viewer", 3)
    ]
    assert o["recommendation"]["keep"] == ["document:roadmap#viewer@agent:planner"]
    revoke = sorted(o["recommendation"]["revoke"])
    assert revoke == sorted(PLANNER_GRANTS - {"document:roadmap#viewer@agent:planner"})
    assert set(o["unused_grants"]) == set(revoke)

    # a stale expectation is refused and nothing is written
    stale = _post(
        live, "/identities/agent/planner/over-privilege:apply",
        {"mode": "review", "expected": ["document:x#viewer@agent:planner"]},
    )  # fmt: skip
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "recommendation_changed"
    # a writer may not open a review campaign
    refused = _post(
        live, "/identities/agent/planner/over-privilege:apply", {"mode": "review"}, role="writer"
    )
    assert refused.status_code == 403
    applied = _post(
        live, "/identities/agent/planner/over-privilege:apply",
        {"mode": "review", "expected": revoke, "reviewer": "human:alice"},
    )  # fmt: skip
    assert applied.status_code == 200, applied.text
    a = applied.json()
    assert a["mode"] == "review" and sorted(a["tuples"]) == revoke and a["review_id"]
    items = _get(live, f"/reviews/{a['review_id']}/items").json()["items"]
    assert sorted(f"{i['object']}#{i['relation']}@{i['user']}" for i in items) == revoke
    # the campaign reads back over REST with the filter that named its items
    campaign = _get(live, f"/reviews/{a['review_id']}")
    assert campaign.status_code == 200, campaign.text
    flt = campaign.json()["filter"]
    assert flt["user"] == "agent:planner" and sorted(flt["tuples"]) == revoke
    listed = _get(live, "/reviews")
    assert listed.status_code == 200, listed.text
    assert a["review_id"] in {c["id"] for c in listed.json()["reviews"]}


def test_apply_as_revocation(live: Live) -> None:
    o = _get(live, "/identities/agent/planner/over-privilege").json()
    revoke = o["recommendation"]["revoke"]
    r = _post(
        live, "/identities/agent/planner/over-privilege:apply",
        {"mode": "revoke", "expected": revoke}, role="writer",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["revision"] and sorted(r.json()["tuples"]) == sorted(revoke)
    left = _get(live, "/tuples", params={"user": "agent:planner"}).json()["tuples"]
    assert [f"{t['object']}#{t['relation']}@{t['user']}" for t in left] == [
        "document:roadmap#viewer@agent:planner"
    ]
    again = _post(live, "/identities/agent/planner/over-privilege:apply", {"mode": "revoke"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_apply"
    bad = _post(live, "/identities/agent/planner/over-privilege:apply", {"mode": "delete"})
    assert bad.status_code == 400


def test_posture_reads_need_can_read_posture(live: Live) -> None:
    for role, status in (("auditor", 200), ("writer", 200), ("reader", 403)):
        assert _get(live, "/posture/inventory", role=role).status_code == status, role
        assert (
            _get(live, "/identities/agent/planner/over-privilege", role=role).status_code == status
        )
    # effective access is a query: readers may
    assert (
        _get(
            live, "/effective-access", role="reader", params={"identity": "agent:planner"}
        ).status_code
        == 200
    )


def test_exceeding_and_inventory(live: Live) -> None:
    ex = _get(live, "/posture/exceeding-owners").json()
    pairs = {(e["agent"], e["principal"], e["relationship"]) for e in ex["agents"]}
    assert ("agent:planner", "human:alice", "owner") in pairs
    planner = next(
        e for e in ex["agents"] if (e["agent"], e["relationship"]) == ("agent:planner", "owner")
    )
    assert ("document:budget", "editor") in {
        (p["object"], p["relation"]) for p in planner["excess"]
    }
    only = _get(live, "/posture/exceeding-owners", params={"agent": "agent:helper"}).json()
    assert all(e["agent"] == "agent:helper" for e in only["agents"])

    inv = _get(live, "/posture/inventory", params={"page_size": 2}).json()
    assert len(inv["identities"]) == 2 and inv["continuation_token"]
    rest = _get(
        live, "/posture/inventory", params={"continuation_token": inv["continuation_token"]}
    ).json()
    nodes = [i["identity"] for i in inv["identities"] + rest["identities"]]
    assert sorted(nodes) == ["agent:helper", "agent:planner", "service_account:ci"]
    agents = _get(live, "/posture/inventory", params={"kind": "agent"}).json()["identities"]
    helper = next(i for i in agents if i["identity"] == "agent:helper")
    assert helper["credential_count"] == 1 and helper["environment"] == "dev"


def test_posture_report_formats(live: Live) -> None:
    r = _get(live, "/posture/report", params={"window_days": 30}).json()
    codes = {(f["code"], f["identity"]) for f in r["findings"]}
    assert ("orphaned_identity", "service_account:ci") in codes
    assert ("shared_secret_authentication", "agent:helper") in codes
    assert ("unused_grants", "agent:planner") in codes
    assert ("exceeds_owner", "agent:planner") in codes
    severities = [f["severity"] for f in r["findings"]]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    assert severities == sorted(severities, key=order.__getitem__)
    assert r["visibility"]["total"] == 3 and len(r["inventory"]) == 3
    assert all(f["owasp_title"] for f in r["findings"])
    lean = _get(live, "/posture/report", params={"inventory": "false"}).json()
    assert lean["inventory"] == [] and lean["findings"]

    html = _get(live, "/posture/report", params={"format": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text and "service_account:ci" in html.text
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "http://" not in html.text.replace("http://www.w3.org/2000/svg", "")
    text = _get(live, "/posture/report", params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "orphaned_identity" in text.text and "\x1b[" not in text.text

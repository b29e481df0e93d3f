"""Access requests, approvals and reviews on every surface (issue 7): the embedded Keyplane,
the SDK's Client and AsyncClient against a real server (REST underneath), the CLI (local
database and remote server; the approver approves through it) and MCP through the official
client — with the roles: a reader reads but cannot file, a writer files and approves, only
an admin manages entitlements and review campaigns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from idp_helpers import MODEL, Live
from test_cli_identity_plane import _run
from test_mcp_identity_plane import fails, ok, session
from test_sdk_identity_plane import SyncOverAsync

from keyplane.errors import (
    AccessRequestNotFoundError,
    AccessRequestStateError,
    ApprovalNotAllowedError,
    EntitlementExistsError,
    EntitlementNotFoundError,
    InvalidEntitlementError,
    NotRequestableError,
    PermissionDeniedError,
    ReviewNotFoundError,
)
from keyplane.governance.records import AccessRequest, Entitlement, ReviewCampaign, ReviewItem
from keyplane.mcp import NOT_EXPOSED, READ_TOOLS, WRITE_TOOLS
from keyplane.sdk import Client

pytestmark = pytest.mark.timeout(180)

LOW_AUTO = {
    "id": "low-short",
    "when": 'entitlement.risk == "low" && request.duration_seconds <= 3600',
    "outcome": "approve",
}
ROUTE_OWNERS = {"id": "owners", "outcome": "route", "approvers": ["entitlement_owners"]}


@pytest.fixture(params=["embedded", "client", "async_client"])
def kp(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "embedded":
        yield request.getfixturevalue("embedded")
        return
    live: Live = request.getfixturevalue("live")
    if request.param == "client":
        with live.client() as c:
            yield c
        return
    a = SyncOverAsync(live.url, live.keys["admin"])
    try:
        yield a
    finally:
        a.close()


def _people(kp: Any) -> None:
    kp.create_identity("human", "alice")
    kp.create_identity("human", "bob")
    kp.create_identity("agent", "bot", owners=["human:alice"])


def _entitlements(kp: Any) -> tuple[Entitlement, Entitlement]:
    low = kp.create_entitlement(
        "roadmap-viewer",
        "document:roadmap",
        "viewer",
        owners=["human:bob"],
        description="read the roadmap",
        risk="low",
        max_duration_seconds=3600,
        agents_may_request=True,
        approval=[LOW_AUTO, ROUTE_OWNERS],
    )
    high = kp.create_entitlement(
        "doc-editor",
        "document:*",
        "editor",
        owners=["human:bob"],
        risk="high",
        max_duration_seconds=7200,
        agents_may_request=True,
        approval=[ROUTE_OWNERS],
    )
    return low, high


def test_access_request_scenario(kp: Any) -> None:
    _people(kp)
    low, high = _entitlements(kp)
    assert isinstance(low, Entitlement)
    assert (low.object, low.relation, low.risk, low.owners) == (
        "document:roadmap",
        "viewer",
        "low",
        ("human:bob",),
    )
    assert [r.id for r in low.approval] == ["low-short", "owners"]
    assert low.approval[1].approvers == ("entitlement_owners",)
    assert kp.get_entitlement("doc-editor") == high
    assert {e.id for e in kp.list_entitlements().items} == {"roadmap-viewer", "doc-editor"}
    upd = kp.update_entitlement("doc-editor", description="edit any document")
    assert upd.description == "edit any document" and upd.risk == "high"
    assert upd.revision > high.revision and upd.approval == high.approval
    with pytest.raises(EntitlementExistsError):
        kp.create_entitlement("doc-editor", "document:x", "viewer", owners=["human:bob"])
    with pytest.raises(InvalidEntitlementError):
        kp.create_entitlement(
            "broken",
            "document:x",
            "viewer",
            owners=["human:bob"],
            approval=[{"id": "r", "when": "request.duration_seconds <", "outcome": "approve"}],
        )

    # low risk, short: approved by policy at once, the grant written
    assert not kp.check("agent:bot", "viewer", "document:roadmap").allowed
    auto = kp.create_access_request(
        "roadmap-viewer",
        requester="agent:bot",
        duration_seconds=600,
        purpose="planning",
        justification="summarize the roadmap",
    )
    assert isinstance(auto, AccessRequest)
    assert auto.state == "active" and auto.rule_id == "low-short"
    assert (auto.beneficiary, auto.requester, auto.object) == (
        "agent:bot",
        "agent:bot",
        "document:roadmap",
    )
    assert auto.grant_expires_at is not None and auto.grant_starts_at is not None
    assert auto.grant_expires_at - auto.grant_starts_at == pytest.approx(600, abs=1)
    assert kp.check("agent:bot", "viewer", "document:roadmap").allowed

    # high risk: routed to the entitlement's owner
    pending = kp.create_access_request(
        "doc-editor",
        object="document:plan",
        requester="agent:bot",
        duration_seconds=1800,
        justification="fix the plan",
    )
    assert pending.state == "pending" and pending.route_approvers == ("human:bob",)
    assert pending.required == 1 and pending.grant_expires_at is None
    with pytest.raises(ApprovalNotAllowedError):  # an agent never approves
        kp.approve_access_request(pending.id, approver="agent:bot")
    with pytest.raises(ApprovalNotAllowedError):  # not among the approvers
        kp.approve_access_request(pending.id, approver="human:alice")
    assert [r.id for r in kp.list_access_requests(approver="human:bob").items] == [pending.id]
    approved = kp.approve_access_request(pending.id, approver="human:bob", comment="ok")
    assert approved.state == "active"
    assert [(a.approver, a.decision, a.comment) for a in approved.approvals] == [
        ("human:bob", "approve", "ok")
    ]
    assert kp.check("agent:bot", "editor", "document:plan").allowed
    with pytest.raises(AccessRequestStateError):
        kp.deny_access_request(pending.id, approver="human:bob")

    got = kp.get_access_request(pending.id)
    assert got.id == pending.id and got.state == "active"
    active = kp.list_access_requests(state="active", beneficiary="agent:bot").items
    assert {r.id for r in active} == {auto.id, pending.id}
    assert [r.id for r in kp.list_access_requests(entitlement_id="doc-editor").items] == [
        pending.id
    ]
    assert [r.id for r in kp.list_access_requests(object="document:plan").items] == [pending.id]
    assert [r.id for r in kp.list_access_requests(relation="viewer").items] == [auto.id]
    assert [r.id for r in kp.list_access_requests(approver="human:bob").items] == [pending.id]

    h = kp.get_access_request_history(pending.id)
    assert h.request.id == pending.id
    types = [e.type for e in h.events]
    assert types[0] == "access_request.created"
    assert "access_request.approval" in types and "access_request.activated" in types
    assert all(e.resource == f"access_request:{pending.id}" for e in h.events)

    # denied, cancelled, revoked
    asked = kp.create_access_request("doc-editor", object="document:x", requester="agent:bot")
    denied = kp.deny_access_request(asked.id, approver="human:bob", comment="no")
    assert denied.state == "denied"
    asked = kp.create_access_request("doc-editor", object="document:y", requester="agent:bot")
    cancelled = kp.cancel_access_request(asked.id, requester="agent:bot", reason="done")
    assert cancelled.state == "cancelled"
    revoked = kp.revoke_access_request(auto.id, reason="no longer needed")
    assert revoked.state == "revoked" and revoked.end_reason == "no longer needed"
    assert not kp.check("agent:bot", "viewer", "document:roadmap").allowed
    with pytest.raises(NotRequestableError):
        kp.create_access_request("roadmap-viewer", requester="agent:bot", duration_seconds=7200)
    with pytest.raises(AccessRequestNotFoundError):
        kp.get_access_request("01HZZZZZZZZZZZZZZZZZZZZZZZ")

    # a review revokes the remaining agent grant
    review = kp.create_review(
        "agent grants", filter={"user_kind": "agent"}, reviewer="beneficiary_owners"
    )
    assert isinstance(review, ReviewCampaign)
    assert review.state == "open" and review.filter.user_kind == "agent"
    assert kp.get_review(review.id) == review
    assert [c.id for c in kp.list_reviews(state="open").items] == [review.id]
    items = kp.list_review_items(review.id).items
    assert [(i.user, i.relation, i.object, i.request_id) for i in items] == [
        ("agent:bot", "editor", "document:plan", pending.id)
    ]
    item = items[0]
    assert isinstance(item, ReviewItem) and item.reviewers == ("human:alice",)
    with pytest.raises(ApprovalNotAllowedError):
        kp.decide_review_item(review.id, item.id, "certify", reviewer="agent:bot")
    decided = kp.decide_review_item(
        review.id, item.id, "revoke", reviewer="human:alice", comment="unused"
    )
    assert decided.decision == "revoke" and decided.decided_by == "human:alice"
    closed = kp.close_review(review.id)
    assert closed.state == "closed" and closed.closed_at is not None
    report = kp.review_report(review.id)
    assert report.campaign.id == review.id
    assert [(i.id, i.outcome) for i in report.items] == [(item.id, "revoked")]
    assert kp.get_access_request(pending.id).state == "revoked"
    assert not kp.check("agent:bot", "editor", "document:plan").allowed
    with pytest.raises(ReviewNotFoundError):
        kp.get_review("01HZZZZZZZZZZZZZZZZZZZZZZZ")

    kp.delete_entitlement("doc-editor")
    with pytest.raises(EntitlementNotFoundError):
        kp.get_entitlement("doc-editor")
    assert [e.id for e in kp.list_entitlements().items] == ["roadmap-viewer"]


def test_rest_roles(any_live: Live) -> None:
    """A reader reads but cannot file; a writer files and approves but cannot define
    entitlements or run reviews; an admin does everything."""
    with (
        any_live.client() as admin,
        any_live.client("writer") as writer,
        any_live.client("reader") as reader,
    ):
        _people(admin)
        with pytest.raises(PermissionDeniedError):
            writer.create_entitlement("x", "document:x", "viewer", owners=["human:bob"])
        _entitlements(admin)
        with pytest.raises(PermissionDeniedError):
            writer.update_entitlement("doc-editor", risk="low")
        with pytest.raises(PermissionDeniedError):
            writer.delete_entitlement("doc-editor")
        assert len(reader.list_entitlements().items) == 2
        assert reader.get_entitlement("roadmap-viewer").risk == "low"
        with pytest.raises(PermissionDeniedError):
            reader.create_access_request("doc-editor", object="document:a", requester="agent:bot")
        r = writer.create_access_request("doc-editor", object="document:a", requester="agent:bot")
        assert r.state == "pending"
        assert reader.get_access_request(r.id).state == "pending"
        assert [x.id for x in reader.list_access_requests().items] == [r.id]
        with pytest.raises(PermissionDeniedError):
            reader.approve_access_request(r.id, approver="human:bob")
        with pytest.raises(PermissionDeniedError):
            reader.cancel_access_request(r.id, requester="agent:bot")
        assert writer.approve_access_request(r.id, approver="human:bob").state == "active"
        with pytest.raises(PermissionDeniedError):
            reader.revoke_access_request(r.id)
        assert reader.get_access_request_history(r.id).events
        with pytest.raises(PermissionDeniedError):
            writer.create_review("w", filter={"user_kind": "agent"})
        review = admin.create_review("a", filter={"user_kind": "agent"})
        assert [c.id for c in reader.list_reviews().items] == [review.id]
        assert len(reader.list_review_items(review.id).items) == 1
        with pytest.raises(PermissionDeniedError):
            writer.close_review(review.id)
        assert admin.close_review(review.id).state == "closed"
        assert admin.review_report(review.id).items[0].outcome == "defaulted_certify"
        assert writer.revoke_access_request(r.id, reason="x").state == "revoked"


def test_rest_wire(live: Live) -> None:
    """The JSON itself: strict booleans and integers, 201 on create, 204 on delete, the
    error envelope with the service's codes."""
    h = {"Authorization": f"Bearer {live.keys['admin']}"}
    base = f"{live.url}/v1/stores/default"
    with live.client() as admin:
        _people(admin)
    ent = {
        "id": "roadmap-viewer",
        "object": "document:roadmap",
        "relation": "viewer",
        "owners": ["human:bob"],
        "risk": "low",
        "max_duration_seconds": 3600,
        "agents_may_request": True,
        "approval": [LOW_AUTO],
    }
    with httpx.Client(headers=h, timeout=30) as c:
        for bad in (
            {"agents_may_request": "true"},
            {"max_duration_seconds": 3600.5},
            {"max_duration_seconds": "3600"},
            {"max_duration_seconds": 30},
            {"id": "Bad Id"},
            {"owners": []},
            {"risk": "extreme"},
            {"surprise": 1},
        ):
            resp = c.post(f"{base}/entitlements", json={**ent, **bad})
            assert resp.status_code == 400, (bad, resp.text)
            assert resp.json()["error"]["code"] == "validation_error"
        made = c.post(f"{base}/entitlements", json=ent)
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["approval"][0]["required"] == 1 and body["created_at"].endswith("Z")
        again = c.post(f"{base}/entitlements", json=ent)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "entitlement_exists")
        patched = c.patch(f"{base}/entitlements/roadmap-viewer", json={"risk": "medium"})
        assert patched.status_code == 200 and patched.json()["risk"] == "medium"
        assert patched.json()["approval"] == body["approval"]
        asked = c.post(
            f"{base}/access-requests",
            json={
                "entitlement": "roadmap-viewer",
                "requester": "agent:bot",
                "duration_seconds": 60,
            },
        )
        assert asked.status_code == 201, asked.text
        rid = asked.json()["id"]
        # medium risk now: no auto-approval; routed to the owners
        assert asked.json()["state"] == "pending"
        bad = c.post(
            f"{base}/access-requests",
            json={
                "entitlement": "roadmap-viewer",
                "requester": "agent:bot",
                "duration_seconds": True,
            },
        )
        assert bad.status_code == 400
        no = c.post(f"{base}/access-requests/{rid}:approve", json={"approver": "agent:bot"})
        assert (no.status_code, no.json()["error"]["code"]) == (403, "approval_not_allowed")
        yes = c.post(f"{base}/access-requests/{rid}:approve", json={"approver": "human:bob"})
        assert yes.status_code == 200 and yes.json()["state"] == "active"
        hist = c.get(f"{base}/access-requests/{rid}/history")
        assert hist.status_code == 200
        assert hist.json()["access_request"]["id"] == rid
        assert hist.json()["events"][0]["type"] == "access_request.created"
        gone = c.delete(f"{base}/entitlements/roadmap-viewer")
        assert gone.status_code == 204 and not gone.content
        missing = c.get(f"{base}/entitlements/roadmap-viewer")
        assert (missing.status_code, missing.json()["error"]["code"]) == (
            404,
            "entitlement_not_found",
        )
        nope = c.get(f"{base}/access-requests/nope")
        assert nope.json()["error"]["code"] == "access_request_not_found"
        item = c.post(f"{base}/reviews/nope/items/0:decide", json={"decision": "certify"})
        assert item.status_code == 400  # item numbers start at 1


@pytest.fixture(params=["local", "remote"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    monkeypatch.delenv("KEYPLANE_API_KEY", raising=False)
    (tmp_path / "model.fga").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        run, invoke = _run({"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"})
        run("model", "write", "model.fga")
        return run, invoke
    live: Live = request.getfixturevalue("live")
    return _run(
        {
            "KEYPLANE_URL": live.url,
            "KEYPLANE_API_KEY": live.keys["admin"],
            "KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-be-used.db'}",
        }
    )


def test_cli_governance(cli: Any, tmp_path: Path) -> None:
    run, invoke = cli
    run("identity", "create", "human", "alice")
    run("identity", "create", "human", "bob")
    run("identity", "create", "agent", "bot", "--owner", "human:alice")
    (tmp_path / "rules.json").write_text(json.dumps([LOW_AUTO, ROUTE_OWNERS]))
    text = run(
        "entitlement", "create", "roadmap-viewer", "--object", "document:roadmap",
        "--relation", "viewer", "--owner", "human:bob", "--risk", "low",
        "--max-duration", "3600", "--agents-may-request", "--approval", "rules.json",
    )  # fmt: skip
    assert "Created entitlement roadmap-viewer: viewer on document:roadmap" in text
    made = json.loads(
        run(
            "entitlement",
            "create",
            "doc-editor",
            "--object",
            "document:*",
            "--relation",
            "editor",
            "--owner",
            "human:bob",
            "--risk",
            "high",
            "--agents-may-request",
            "--approval",
            json.dumps([ROUTE_OWNERS]),
            "--json",
        )
    )
    assert made["object"] == "document:*" and made["approval"][0]["id"] == "owners"
    assert {e["id"] for e in json.loads(run("entitlement", "list", "--json"))} == {
        "roadmap-viewer",
        "doc-editor",
    }
    assert "doc-editor" in run("entitlement", "list")
    got = json.loads(run("entitlement", "get", "roadmap-viewer", "--json"))
    assert got["risk"] == "low" and len(got["approval"]) == 2
    upd = json.loads(
        run("entitlement", "update", "doc-editor", "--description", "any doc", "--json")
    )
    assert upd["description"] == "any doc"

    auto = json.loads(
        run(
            "request",
            "create",
            "roadmap-viewer",
            "--requester",
            "agent:bot",
            "--duration",
            "600",
            "--purpose",
            "planning",
            "--json",
        )
    )
    assert auto["state"] == "active" and auto["rule_id"] == "low-short"
    text = run(
        "request", "create", "doc-editor", "--object", "document:plan",
        "--requester", "agent:bot", "--duration", "1800", "--justification", "fix it",
    )  # fmt: skip
    assert ": pending" in text and "human:bob" in text
    rid = text.split(":", 1)[0].strip()
    pending = json.loads(run("request", "list", "--state", "pending", "--json"))
    assert [r["id"] for r in pending] == [rid]
    assert rid in run("request", "list", "--approver", "human:bob")
    on_plan = json.loads(run("request", "list", "--object", "document:plan", "--json"))
    assert [r["id"] for r in on_plan] == [rid]
    assert json.loads(run("request", "list", "--relation", "owner", "--json")) == []
    # the approver approves through the CLI; an agent cannot
    rc, _, err = invoke("request", "approve", rid, "--approver", "agent:bot")
    assert rc == 1 and "error[approval_not_allowed]" in err
    text = run("request", "approve", rid, "--approver", "human:bob", "--comment", "ok")
    assert f"{rid}: active" in text and "Granted until" in text
    got = json.loads(run("request", "get", rid, "--json"))
    assert got["approvals"][0]["approver"] == "human:bob"
    hist = json.loads(run("request", "history", rid, "--json"))
    assert next(e["type"] for e in hist["events"]) == "access_request.created"
    assert "access_request.approval" in run("request", "history", rid)

    other = json.loads(
        run(
            "request",
            "create",
            "doc-editor",
            "--object",
            "document:x",
            "--requester",
            "agent:bot",
            "--json",
        )
    )
    assert json.loads(run("request", "deny", other["id"], "--approver", "human:bob",
                          "--json"))["state"] == "denied"  # fmt: skip
    other = json.loads(
        run(
            "request",
            "create",
            "doc-editor",
            "--object",
            "document:y",
            "--requester",
            "agent:bot",
            "--json",
        )
    )
    cancelled = json.loads(
        run("request", "cancel", other["id"], "--requester", "agent:bot", "--json")
    )
    assert cancelled["state"] == "cancelled"
    assert "revoked" in run("request", "revoke", auto["id"], "--reason", "done")
    rc, _, err = invoke("request", "get", "nope")
    assert rc == 1 and "error[access_request_not_found]" in err

    review = json.loads(run("review", "create", "agents", "--user-kind", "agent", "--json"))
    assert review["state"] == "open" and review["filter"]["user_kind"] == "agent"
    assert review["id"] in run("review", "list")
    assert json.loads(run("review", "get", review["id"], "--json"))["name"] == "agents"
    items = json.loads(run("review", "items", review["id"], "--json"))
    assert [(i["user"], i["object"], i["request_id"]) for i in items] == [
        ("agent:bot", "document:plan", rid)
    ]
    assert "document:plan" in run("review", "items", review["id"])
    text = run(
        "review", "decide", review["id"], str(items[0]["id"]), "revoke",
        "--reviewer", "human:alice",
    )  # fmt: skip
    assert "revoke by human:alice" in text
    assert "Closed review" in run("review", "close", review["id"])
    report = json.loads(run("review", "report", review["id"], "--json"))
    assert [i["outcome"] for i in report["items"]] == ["revoked"]
    assert "revoked" in run("review", "report", review["id"])
    assert json.loads(run("request", "get", rid, "--json"))["state"] == "revoked"
    assert "Deleted entitlement doc-editor" in run("entitlement", "delete", "doc-editor")
    rc, _, err = invoke("entitlement", "get", "doc-editor")
    assert rc == 1 and "error[entitlement_not_found]" in err
    rc, _, err = invoke("entitlement", "create", "z", "--object", "document:z", "--relation",
                        "viewer", "--owner", "human:bob", "--approval", "[1]")  # fmt: skip
    assert rc == 2 and "list of rules" in err


GOV_READ = {
    "list_entitlements",
    "get_entitlement",
    "list_access_requests",
    "get_access_request",
    "get_access_request_history",
    "list_reviews",
    "get_review",
    "list_review_items",
}
GOV_WRITE = {
    "request_access",
    "cancel_access_request",
    "approve_access_request",
    "deny_access_request",
    "decide_review_item",
}


def test_mcp_catalogue() -> None:
    assert set(READ_TOOLS) >= GOV_READ and set(WRITE_TOOLS) >= GOV_WRITE
    for op in (
        "entitlements.create_entitlement",
        "entitlements.update_entitlement",
        "entitlements.delete_entitlement",
        "access_requests.revoke_access_request",
        "reviews.create_review",
        "reviews.close_review",
        "reviews.review_report",
    ):
        assert NOT_EXPOSED[op]
    tools = {*READ_TOOLS, *WRITE_TOOLS}
    assert not tools & {"create_entitlement", "revoke_access_request", "close_review"}


def test_mcp_tools(live: Live) -> None:
    with live.client() as admin:
        _people(admin)
        _entitlements(admin)

    async def main() -> None:
        async with session(live.url, live.keys["reader"]) as r:
            names = {t.name for t in (await r.list_tools()).tools}
            assert names >= GOV_READ and not names & GOV_WRITE
            listed, text = await ok(r, "list_entitlements", {})
            assert {e["id"] for e in listed["entitlements"]} == {"roadmap-viewer", "doc-editor"}
            assert "agents may request" in text
            await fails(
                r,
                "request_access",
                {"entitlement": "roadmap-viewer", "requester": "agent:bot"},
                "permission_denied",
            )
        async with session(live.url, live.keys["writer"]) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert names >= GOV_READ | (GOV_WRITE - {"decide_review_item"})
            got, _ = await ok(s, "get_entitlement", {"entitlement_id": "doc-editor"})
            assert got["risk"] == "high"
            auto, text = await ok(
                s,
                "request_access",
                {
                    "entitlement": "roadmap-viewer",
                    "requester": "agent:bot",
                    "duration_seconds": 900,
                    "purpose": "planning",
                    "justification": "summarize the roadmap",
                },
            )
            assert auto["state"] == "active" and "granted until" in text
            asked, text = await ok(
                s,
                "request_access",
                {"entitlement": "doc-editor", "object": "document:plan", "requester": "agent:bot"},
            )
            assert asked["state"] == "pending" and "waiting for 1 approval(s)" in text
            mine, _ = await ok(
                s, "list_access_requests", {"state": "pending", "object": "document:plan"}
            )
            assert [x["id"] for x in mine["access_requests"]] == [asked["id"]]
            await fails(
                s,
                "approve_access_request",
                {"request_id": asked["id"], "approver": "agent:bot"},
                "approval_not_allowed",
            )
            done, _ = await ok(
                s, "approve_access_request", {"request_id": asked["id"], "approver": "human:bob"}
            )
            assert done["state"] == "active"
            hist, text = await ok(s, "get_access_request_history", {"request_id": asked["id"]})
            assert hist["events"][0]["type"] == "access_request.created"
            assert "access_request.approval" in text
            other, _ = await ok(
                s,
                "request_access",
                {"entitlement": "doc-editor", "object": "document:x", "requester": "agent:bot"},
            )
            denied, _ = await ok(
                s, "deny_access_request", {"request_id": other["id"], "approver": "human:bob"}
            )
            assert denied["state"] == "denied"
            other, _ = await ok(
                s,
                "request_access",
                {"entitlement": "doc-editor", "object": "document:y", "requester": "agent:bot"},
            )
            c, _ = await ok(
                s, "cancel_access_request", {"request_id": other["id"], "requester": "agent:bot"}
            )
            assert c["state"] == "cancelled"
            await fails(s, "get_access_request", {"request_id": "nope"}, "access_request_not_found")
            await fails(s, "request_access", {"entitlement": "Bad"}, "validation_error")
        with live.client() as admin:
            review = admin.create_review("agents", filter={"user_kind": "agent"})
        async with session(live.url, live.keys["admin"]) as a:
            names = {t.name for t in (await a.list_tools()).tools}
            assert names >= GOV_READ | GOV_WRITE
            listed, _ = await ok(a, "list_reviews", {"state": "open"})
            assert [x["id"] for x in listed["reviews"]] == [review.id]
            got, _ = await ok(a, "get_review", {"review_id": review.id})
            assert got["name"] == "agents"
            items, text = await ok(a, "list_review_items", {"review_id": review.id})
            assert text.startswith("2 items")
            item = next(i for i in items["items"] if i["object"] == "document:plan")
            await fails(
                a,
                "decide_review_item",
                {
                    "review_id": review.id,
                    "item_id": item["id"],
                    "decision": "revoke",
                    "reviewer": "agent:bot",
                },
                "approval_not_allowed",
            )
            decided, text = await ok(
                a,
                "decide_review_item",
                {
                    "review_id": review.id,
                    "item_id": item["id"],
                    "decision": "revoke",
                    "reviewer": "human:alice",
                },
            )
            assert decided["decision"] == "revoke" and "revoke by human:alice" in text

    anyio.run(main)


def test_keys_bound_to_identities(live: Live) -> None:
    """A key whose owner is an identity node acts only as it: the agent's key files for the
    agent without naming it and can never approve; the owner's key approves without naming
    anyone and cannot approve as somebody else — over REST (Client) and MCP."""
    from keyplane.service.keys import authenticate, create_key

    admin_caller = authenticate(live.services, live.keys["admin"])
    _, bot_key = create_key(live.services, admin_caller, owner="agent:bot", roles=["writer"])
    _, bob_key = create_key(live.services, admin_caller, owner="human:bob", roles=["writer"])
    with live.client() as admin:
        _people(admin)
        _entitlements(admin)
    with Client(live.url, bot_key) as bot, Client(live.url, bob_key) as bob:
        r = bot.create_access_request("doc-editor", object="document:plan")
        assert (r.requester, r.beneficiary, r.state) == ("agent:bot", "agent:bot", "pending")
        with pytest.raises(ApprovalNotAllowedError):
            bot.approve_access_request(r.id)
        with pytest.raises(PermissionDeniedError) as refused:
            bot.create_access_request("doc-editor", object="document:x", requester="human:alice")
        assert refused.value.details["reason"] == "key_bound"
        assert refused.value.details["bound_to"] == "agent:bot"
        with pytest.raises(ApprovalNotAllowedError) as refused:
            bob.approve_access_request(r.id, approver="human:alice")
        assert refused.value.details["reason"] == "key_bound"
        done = bob.approve_access_request(r.id, comment="ok")
        assert done.state == "active" and done.approvals[0].approver == "human:bob"

    async def main() -> None:
        async with session(live.url, bot_key) as s:
            asked, _ = await ok(
                s, "request_access", {"entitlement": "doc-editor", "object": "document:x"}
            )
            assert asked["requester"] == "agent:bot" and asked["state"] == "pending"
            await fails(
                s, "approve_access_request", {"request_id": asked["id"]}, "approval_not_allowed"
            )
        async with session(live.url, bob_key) as s:
            denied, _ = await ok(s, "deny_access_request", {"request_id": asked["id"]})
            assert denied["state"] == "denied" and denied["approvals"][0]["approver"] == "human:bob"

    anyio.run(main)


def test_cli_files_with_a_token_from_stdin(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--token -`: the agent's access token, read from standard input, names the requester
    (and a token that does not verify is refused, naming why)."""
    from typer.testing import CliRunner

    from keyplane.cli.main import app
    from keyplane.service import tokens
    from keyplane.service.credentials import authenticate_client

    with live.client() as admin:
        _people(admin)
        _entitlements(admin)
        _, secret = admin.create_credential("agent:bot")
    assert secret is not None
    url = "http://keyplane.invalid/oauth2/token"
    client = authenticate_client(
        live.services, "default", "agent:bot", secret=secret, token_endpoint_url=url
    )
    token = tokens.issue_client_credentials(
        live.services, "default", client, issuer=tokens.token_issuer(live.services, "default")
    ).access_token
    monkeypatch.delenv("KEYPLANE_DATABASE_URL", raising=False)
    env = {"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["writer"]}
    args = ["request", "create", "doc-editor", "--object", "document:t", "--token", "-", "--json"]
    res = CliRunner().invoke(app, args, env=env, input=token + "\n")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    made = json.loads(res.stdout)
    assert made["requester"] == "agent:bot" and made["state"] == "pending"
    assert token not in res.stdout
    res = CliRunner().invoke(app, args, env=env, input="not.a.token\n")
    assert res.exit_code == 1 and "token does not verify" in res.stderr
    res = CliRunner().invoke(app, args, env=env, input="\n")
    assert res.exit_code == 2 and "no token on standard input" in res.stderr

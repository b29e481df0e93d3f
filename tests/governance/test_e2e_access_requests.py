"""Issue 7 §6, end to end, on SQLite and PostgreSQL: one store behind a live server
(tests/live_server.py), a clock the test moves (injected into Services), real API keys, the
SDK's Client, the ``keyplane`` CLI against the server, and a real HTTP receiver for the
ledger webhook.

The story: an agent (its key bound to ``agent:bot``) is denied; the denial's
``reason["request"]`` is filed as is; the low-risk entitlement's policy approves it in the
create call itself (same instant: no person, no job) and the retried decision passes. A
high-risk request waits for the agent's owner, who is notified by a signed webhook
(``event_types=["access_request.*"]``) and approves it through the CLI; the agent cannot.
Both grants stop granting exactly at their expiry, with nothing run. A third grant is never
exercised: a review campaign over unused agent grants selects it alone and revokes it on
close. The ledger holds the whole story: each request's history (its events by resource
``access_request:<id>``), the decisions, the review, and a chain that verifies online and
exported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keyplane import Client, FixedClock, Settings
from keyplane.cli.main import app
from keyplane.errors import ApprovalNotAllowedError
from keyplane.ledger.chain import read_export, verify_export
from keyplane.ledger.webhooks import SIGNATURE_HEADER, verify_signature
from keyplane.secrets import generate_master_key
from keyplane.service import identities, models, stores, tuples
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import bootstrap_admin, create_key
from live_server import serve

S = "e2e"
T0 = 1_800_000_000.0
ME = Caller.system_caller()
SECRET = "whsec_" + "e2e" * 10
MODEL = """\
model
  schema 1.1
type document
  relations
    define owner: [human]
    define viewer: [human, agent] or owner
type role
  relations
    define assignee: [human, agent]
"""
AUTO_LOW = {
    "id": "auto-low",
    "when": 'entitlement.risk == "low" && request.duration_seconds <= 3600 && facts.owner_holds',
    "outcome": "approve",
}
TO_OWNER = {"id": "to-owner", "outcome": "route", "approvers": ["beneficiary_owners"]}


class Receiver:
    """A loopback HTTP server keeping every delivery (headers, raw body); answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.lock:
                    outer.requests.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/approvers"

    def events(self) -> list[dict[str, Any]]:
        return [e for _, body in self.requests for e in json.loads(body)["events"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class World:
    def __init__(self, svc: Services, clock: FixedClock, url: str, receiver: Receiver) -> None:
        self.svc, self.clock, self.url, self.receiver = svc, clock, url, receiver
        _, self.admin_key = bootstrap_admin(svc)
        _, self.bot_key = create_key(svc, ME, owner="agent:bot", roles=["writer"])
        _, self.alice_key = create_key(svc, ME, owner="human:alice", roles=["writer"])
        self.admin = Client(url, self.admin_key, default_store=S)
        self.bot = Client(url, self.bot_key, default_store=S)

    def close(self) -> None:
        self.admin.close()
        self.bot.close()

    def allowed(self, resource: str, relation: str = "viewer") -> bool:
        """The agent's own decision, through its key."""
        return self.bot.decide("agent:bot", relation, resource).allowed

    def deliver(self) -> None:
        self.svc.ledger.flush()
        self.svc.webhooks.deliver_due()

    def cli(self, *args: str, key: str, code: int = 0) -> str:
        res = CliRunner().invoke(app, [*args, "--url", self.url, "--api-key", key, "--store", S])
        assert res.exit_code == code, res.output
        return res.output


@pytest.fixture
def world(storage_url: str, tmp_path: Path) -> Iterator[World]:
    clock = FixedClock(T0)
    settings = Settings(
        database_url=storage_url,
        poll_interval=0.0,
        default_store=S,
        master_key=generate_master_key(),
        ledger_webhook_interval=0.0,  # the test drives delivery
    )
    svc = Services.open(settings, clock=clock)
    receiver = Receiver()
    try:
        stores.create_store(svc, ME, S, store_id=S)
        models.write_model(svc, ME, S, MODEL)
        for h in ("alice", "dave"):
            identities.create_identity(svc, ME, S, "human", h)
        identities.create_identity(svc, ME, S, "agent", "bot", owners=["human:alice"])
        # the agent's owner already reads the roadmap and the specs
        tuples.write_tuples(
            svc, ME, S, writes=["document:roadmap#viewer@human:alice",
                                "document:specs#viewer@human:alice"],
        )  # fmt: skip
        with serve(svc) as url:
            w = World(svc, clock, url, receiver)
            try:
                yield w
            finally:
                w.close()
    finally:
        receiver.close()
        try:
            stores.delete_store(svc, ME, S)
        finally:
            svc.close()


def test_agent_denied_requests_gets_approved_expires_and_is_reviewed(world: World) -> None:
    w = world
    admin, bot, clock = w.admin, w.bot, w.clock

    # ---- the store's admin sets up entitlements and the approvers' webhook
    admin.create_entitlement(
        "docs", "document:*", "viewer", owners=["human:dave"], risk="low",
        max_duration_seconds=7200, agents_may_request=True, approval=[AUTO_LOW],
    )  # fmt: skip
    admin.create_entitlement(
        "billing", "role:billing-admin", "assignee", owners=["human:dave"], risk="high",
        max_duration_seconds=86_400, agents_may_request=True, approval=[TO_OWNER],
    )  # fmt: skip
    hook, secret = admin.create_webhook(
        w.receiver.url, secret=SECRET, event_types=["access_request.*"]
    )
    assert hook.event_types == ("access_request.*",) and secret == SECRET

    # ---- 1. the agent is denied; the denial says what to request
    denied = bot.decide("agent:bot", "viewer", "document:roadmap")
    assert not denied.allowed and denied.code == "subject_lacks_permission"
    hint = denied.reason["request"]
    assert hint == {
        "entitlement": "docs", "object": "document:roadmap", "relation": "viewer",
        "beneficiary": "agent:bot", "max_duration_seconds": 7200,
    }  # fmt: skip

    # ---- 2. filed as is, by the agent's key: approved by policy in the same call
    roadmap = bot.create_access_request(
        hint["entitlement"], object=hint["object"], beneficiary=hint["beneficiary"],
        duration_seconds=600, purpose="summarize the roadmap",
    )  # fmt: skip
    assert roadmap.state == "active" and roadmap.rule_id == "auto-low"
    assert (roadmap.requester, roadmap.beneficiary) == ("agent:bot", "agent:bot")
    assert roadmap.created_at == roadmap.decided_at == roadmap.grant_starts_at == T0
    assert roadmap.grant_expires_at == T0 + 600
    # ---- 3. the retried decision passes
    assert w.allowed("document:roadmap")

    # a second low-risk grant the agent never uses (the review finds it)
    specs = bot.create_access_request(
        "docs", object="document:specs", duration_seconds=3600, purpose="maybe later"
    )
    assert specs.state == "active" and specs.grant_expires_at == T0 + 3600

    # ---- 4. high risk: it waits for the agent's owner, notified by a signed webhook
    assert not w.allowed("role:billing-admin", "assignee")
    billing = bot.create_access_request(
        "billing", duration_seconds=3600, justification="month-end invoices"
    )
    assert billing.state == "pending" and billing.rule_id == "to-owner"
    assert billing.route_approvers == ("human:alice",) and billing.required == 1
    assert not w.allowed("role:billing-admin", "assignee")
    w.deliver()
    notified = [
        e for e in w.receiver.events()
        if e["resource"] == f"access_request:{billing.id}" and e["type"] == "access_request.created"
    ]  # fmt: skip
    assert len(notified) == 1
    assert notified[0]["details"]["state"] == "pending"
    assert notified[0]["details"]["route_approvers"] == ["human:alice"]
    assert notified[0]["details"]["justification"] == "month-end invoices"
    for headers, body in w.receiver.requests:
        sig = headers[SIGNATURE_HEADER]
        ts = int(sig.split(",")[0].removeprefix("t="))
        assert ts == int(clock.now())
        assert verify_signature(SECRET, sig, body, now=clock.now())
        assert not verify_signature(SECRET, sig, body.replace(b"pending", b"active"), now=ts)
        assert json.loads(body)["webhook_id"] == hook.id

    # the agent cannot approve (not through the CLI either); its owner does, via the CLI
    clock.advance(120)
    out = w.cli("request", "approve", billing.id, key=w.bot_key, code=1)
    assert out.startswith("error[approval_not_allowed]") and "only a human" in out
    with pytest.raises(ApprovalNotAllowedError):
        bot.approve_access_request(billing.id, approver="human:alice")
    assert bot.get_access_request(billing.id).state == "pending"
    approved = json.loads(
        w.cli("request", "approve", billing.id, "--comment", "ok for month end", "--json",
              key=w.alice_key)
    )  # fmt: skip
    assert approved["state"] == "active"
    billing = bot.get_access_request(billing.id)
    assert billing.state == "active" and billing.approvals[0].approver == "human:alice"
    assert (billing.grant_starts_at, billing.grant_expires_at) == (T0 + 120, T0 + 120 + 3600)
    assert w.allowed("role:billing-admin", "assignee")

    # ---- 5. a review of unused agent grants selects the specs grant alone and revokes it
    clock.advance(180)  # T0 + 300
    w.svc.ledger.flush()
    review = admin.create_review(
        "unused agent grants",
        filter={"source": "grants", "user_kind": "agent", "unused_days": 1},
        reviewer="beneficiary_owners",
    )
    items = admin.list_review_items(review.id).items
    assert [(i.user, i.relation, i.object, i.request_id) for i in items] == [
        ("agent:bot", "viewer", "document:specs", specs.id)
    ]
    (item,) = items
    assert "human:alice" in item.reviewers
    admin.decide_review_item(review.id, item.id, "revoke", reviewer="human:alice",
                             comment="never used")  # fmt: skip
    closed = admin.close_review(review.id)
    assert closed.state == "closed"
    report = admin.review_report(review.id)
    assert [(i.object, i.outcome) for i in report.items] == [("document:specs", "revoked")]
    assert bot.get_access_request(specs.id).state == "revoked"
    assert not w.allowed("document:specs")
    assert w.allowed("document:roadmap") and w.allowed("role:billing-admin", "assignee")

    # ---- 6. both grants expire on time, with nothing run
    clock.advance(299)  # T0 + 599
    assert w.allowed("document:roadmap")
    clock.advance(1)  # T0 + 600
    assert not w.allowed("document:roadmap")
    assert bot.get_access_request(roadmap.id).state == "expired"
    assert w.allowed("role:billing-admin", "assignee")
    clock.advance(3119)  # T0 + 3719
    assert w.allowed("role:billing-admin", "assignee")
    clock.advance(1)  # T0 + 3720
    assert not w.allowed("role:billing-admin", "assignee")
    assert bot.get_access_request(billing.id).state == "expired"
    # the maintenance sweep records the expiries (once)
    w.svc.graphs.run_maintenance(S)
    w.svc.graphs.run_maintenance(S)

    # ---- 7. the ledger shows the whole story
    def history(rid: str) -> list[Any]:
        h = admin.get_access_request_history(rid)
        by_resource = admin.query_events(resource=f"access_request:{rid}", limit=1000).events
        assert [e.id for e in h.events] == [e.id for e in by_resource]
        return list(h.events)

    roadmap_story = history(roadmap.id)
    assert [e.type for e in roadmap_story] == [
        "access_request.created", "access_request.approved", "access_request.activated",
        "access_request.expired",
    ]  # fmt: skip
    created = roadmap_story[0]
    assert created.details["requester"] == "agent:bot"
    assert created.details["purpose"] == "summarize the roadmap"
    # approved within the same second it was asked for, right after the denial
    denial = admin.get_decision(denied.decision_id).event
    assert denial.outcome == "deny" and denial.subject == "agent:bot"
    assert int(denial.time) == int(roadmap_story[0].time) == int(roadmap_story[2].time)
    assert roadmap_story[2].details["tuple"] == "document:roadmap#viewer@agent:bot"
    assert roadmap_story[2].details["expires_at"] == T0 + 600
    assert roadmap_story[3].details["end_reason"] == "grant_expired"

    billing_story = history(billing.id)
    assert [(e.type, e.outcome) for e in billing_story] == [
        ("access_request.created", "ok"),
        ("access_request.approval", "deny"),  # the agent's attempts, refused, on the record
        ("access_request.approval", "deny"),
        ("access_request.approval", "ok"),
        ("access_request.approved", "ok"),
        ("access_request.activated", "ok"),
        ("access_request.expired", "ok"),
    ]
    assert billing_story[0].details["state"] == "pending"
    assert billing_story[1].caller == billing_story[2].caller == created.caller  # the agent's key
    vote = billing_story[3]
    assert vote.details["approver"] == "human:alice"
    assert vote.details["comment"] == "ok for month end"
    assert vote.caller != created.caller and vote.time == T0 + 120  # alice's key, via the CLI
    assert billing_story[5].details["expires_at"] == T0 + 3720
    assert billing_story[6].details["end_reason"] == "grant_expired"

    specs_story = history(specs.id)
    assert [e.type for e in specs_story] == [
        "access_request.created", "access_request.approved", "access_request.activated",
        "access_request.revoked",
    ]  # fmt: skip
    review_story = [
        e.type for e in admin.query_events(resource=f"review:{review.id}", limit=1000).events
    ]
    assert review_story == [
        "review.created", "review.item_decided", "review.item_applied", "review.closed",
    ]  # fmt: skip
    # the agent's decisions: denied, then allowed after the grant, denied after expiry
    decisions = admin.query_events(
        types=["decision.*"], subject="agent:bot", resource="document:roadmap", limit=1000
    ).events
    assert [e.outcome for e in decisions] == ["deny", "allow", "allow", "allow", "deny"]

    # the chain verifies, online and exported
    assert admin.verify_ledger().ok
    assert verify_export(read_export(list(admin.export_events())))[S].ok

    # the approvers' webhook got every access_request event, and nothing else, signed
    w.deliver()
    wanted = admin.query_events(types=["access_request.*"], limit=1000).events
    got = w.receiver.events()
    assert [e["id"] for e in got] == [e.id for e in wanted]
    assert {e["type"] for e in got} <= set(AR_EVENT_TYPES)
    for headers, body in w.receiver.requests:
        sig = headers[SIGNATURE_HEADER]
        ts = int(sig.split(",")[0].removeprefix("t="))
        assert verify_signature(SECRET, sig, body, now=ts)


AR_EVENT_TYPES = (
    "access_request.created", "access_request.approval", "access_request.approved",
    "access_request.denied", "access_request.cancelled", "access_request.expired",
    "access_request.activated", "access_request.revoked",
)  # fmt: skip

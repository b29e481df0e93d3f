"""Access requests through the service layer, on SQLite and PostgreSQL: the approval
policy's outcomes (auto-approve, route to the beneficiary's owners, to the entitlement's
owners, to a group N of M, deny), who may request and who may approve (agents never, nobody
their own, a key bound to an identity acts only as it, tokens), grants that end by
themselves (injected clock: allowed before the expiry, denied after, no job run), early
revocation, pending expiry, cancellation, concurrent approvals, the history in one call,
and a denied decision whose reason["request"] is filed as is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Settings
from keyplane.errors import (
    AccessRequestNotFoundError,
    AccessRequestStateError,
    ApprovalNotAllowedError,
    EntitlementNotFoundError,
    KeyplaneError,
    NotRequestableError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.governance.records import AccessRequest
from keyplane.service import access_requests as AR
from keyplane.service import credentials as C
from keyplane.service import decisions as DEC
from keyplane.service import entitlements as E
from keyplane.service import identities as I
from keyplane.service import models, stores, tuples
from keyplane.service import tokens as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, create_key

S = "govreq"
NOW = 1_800_000_000.0
ME = Caller.system_caller()
URL = "https://kp.example/oauth2/token"
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


class W:
    """One store with identities, groups and entitlements; service calls bound to it."""

    def __init__(self, svc: Services, clock: FixedClock) -> None:
        self.svc = svc
        self.clock = clock

    def ent(self, eid: str, **kw: Any) -> Any:
        return E.create_entitlement(self.svc, ME, S, eid, **kw)

    def req(self, eid: str, caller: Caller = ME, **kw: Any) -> AccessRequest:
        return AR.create_access_request(self.svc, caller, S, eid, **kw)

    def approve(self, rid: str, approver: str | None, caller: Caller = ME, **kw: Any) -> Any:
        return AR.approve_access_request(self.svc, caller, S, rid, approver=approver, **kw)

    def deny(self, rid: str, approver: str, caller: Caller = ME, **kw: Any) -> Any:
        return AR.deny_access_request(self.svc, caller, S, rid, approver=approver, **kw)

    def get(self, rid: str) -> AccessRequest:
        return AR.get_access_request(self.svc, ME, S, rid)

    def decide(self, subject: str, resource: str, relation: str = "viewer") -> Any:
        return DEC.decide(self.svc, ME, S, subject, relation, resource)

    def tuple_of(self, obj: str, relation: str, user: str) -> Any:
        page = self.svc.storage.read_tuples(S, object=obj, relation=relation, user=user)
        return page.items[0] if page.items else None

    def key(self, owner: str, roles: tuple[str, ...] = ("writer",)) -> Caller:
        _, secret = create_key(self.svc, ME, owner=owner, roles=list(roles))
        return authenticate(self.svc, secret)

    def events(self, rid: str) -> list[str]:
        """The request's change events (refused and failed calls are on its record too)."""
        h = AR.get_access_request_history(self.svc, ME, S, rid)
        return [e.type for e in h.events if e.outcome == "ok"]


@pytest.fixture
def w(storage_url: str) -> Iterator[W]:
    clock = FixedClock(NOW)
    svc = Services.open(
        Settings(database_url=storage_url, poll_interval=0.0, default_store=S), clock=clock
    )
    try:
        stores.create_store(svc, ME, S, store_id=S)
        models.write_model(svc, ME, S, MODEL)
        for h in ("alice", "bob", "carol", "dave", "erin"):
            I.create_identity(svc, ME, S, "human", h)
        I.create_identity(svc, ME, S, "agent", "bot", owners=["human:alice"])
        I.create_identity(svc, ME, S, "agent", "opsbot", owners=["group:ops#member"])
        tuples.write_tuples(svc, ME, S, writes=[
            "document:roadmap#viewer@human:alice",
            "group:ops#member@human:carol",
            "group:sec#member@human:bob",
            "group:sec#member@human:dave",
            "group:sec#member@human:erin",
        ])  # fmt: skip
        world = W(svc, clock)
        world.ent("docs", object="document:*", relation="viewer", owners=["human:bob"],
                  risk="low", max_duration_seconds=7200, agents_may_request=True,
                  approval=[AUTO_LOW])  # fmt: skip
        world.ent("billing", object="role:billing-admin", relation="assignee",
                  owners=["human:dave"], risk="high", agents_may_request=True,
                  approval=[{"id": "to-owner", "outcome": "route",
                             "approvers": ["beneficiary_owners"]}])  # fmt: skip
        world.ent("secadmin", object="role:sec-admin", relation="assignee",
                  owners=["human:erin"], risk="critical",
                  approval=[{"id": "two-of-sec", "outcome": "route",
                             "approvers": ["group:sec#member"], "required": 2}])  # fmt: skip
        world.ent("reports", object="role:reports", relation="assignee",
                  owners=["human:bob", "human:dave"], risk="medium", agents_may_request=True,
                  approval=[{"id": "no-forbidden", "when": 'request.purpose == "forbidden"',
                             "outcome": "deny"}])  # fmt: skip
        yield world
    finally:
        try:
            stores.delete_store(svc, ME, S)
        finally:
            svc.close()


# ------------------------------------------------------------------------------ outcomes


def test_denied_decision_files_its_request_auto_approved_and_expiring(w: W) -> None:
    denied = w.decide("agent:bot", "document:roadmap")
    assert not denied.allowed and denied.code == "subject_lacks_permission"
    hint = denied.reason["request"]
    assert hint == {"entitlement": "docs", "object": "document:roadmap", "relation": "viewer",
                    "beneficiary": "agent:bot", "max_duration_seconds": 7200}  # fmt: skip
    # filed as is, by the agent itself (its owner alice already views the roadmap)
    r = w.req(
        hint["entitlement"], object=hint["object"], beneficiary=hint["beneficiary"],
        requester=hint["beneficiary"], duration_seconds=600, purpose="summarize",
    )  # fmt: skip
    assert r.state == "active" and r.rule_id == "auto-low"
    assert (r.grant_starts_at, r.grant_expires_at) == (NOW, NOW + 600)
    grant = w.tuple_of("document:roadmap", "viewer", "agent:bot")
    assert grant is not None and grant.expires_at == NOW + 600
    assert w.decide("agent:bot", "document:roadmap").allowed
    # the grant ends by itself: nothing runs, the clock passes its expiry
    w.clock.advance(599)
    assert w.decide("agent:bot", "document:roadmap").allowed
    assert w.get(r.id).state == "active"
    w.clock.advance(1)
    assert not w.decide("agent:bot", "document:roadmap").allowed
    assert w.get(r.id).state == "expired"
    stored = w.svc.storage.get_access_request(S, r.id)
    assert stored is not None and stored.state == "active"  # computed on read
    swept = AR.sweep_access_requests(w.svc, S)
    assert [x.id for x in swept] == [r.id] and swept[0].end_reason == "grant_expired"
    assert AR.sweep_access_requests(w.svc, S) == []
    assert w.events(r.id) == [
        "access_request.created", "access_request.approved", "access_request.activated",
        "access_request.expired",
    ]  # fmt: skip


def test_owner_not_holding_routes_to_entitlement_owners(w: W) -> None:
    # agent:bot's owner alice does not view document:plan: the auto rule does not match
    r = w.req("docs", object="document:plan", requester="agent:bot", duration_seconds=600)
    assert r.state == "pending" and r.rule_id == "default"
    assert r.route_approvers == ("human:bob",) and r.required == 1
    assert w.tuple_of("document:plan", "viewer", "agent:bot") is None
    done = w.approve(r.id, "human:bob", comment="ok")
    assert done.state == "active" and done.approvals[0].approver == "human:bob"
    assert w.decide("agent:bot", "document:plan").allowed


def test_route_to_beneficiary_owners(w: W) -> None:
    r = w.req("billing", requester="agent:bot", duration_seconds=3600, justification="invoices")
    assert r.state == "pending" and r.route_approvers == ("human:alice",)
    assert r.object == "role:billing-admin" and r.relation == "assignee"
    with pytest.raises(ApprovalNotAllowedError) as info:
        w.approve(r.id, "human:dave")  # the entitlement owner is not routed to here
    assert info.value.details["reason"] == "not_an_approver"
    active = w.approve(r.id, "human:alice")
    assert active.state == "active"
    assert w.decide("agent:bot", "role:billing-admin", "assignee").allowed


def test_group_n_of_m(w: W) -> None:
    r = w.req("secadmin", requester="human:carol", duration_seconds=600)
    assert r.state == "pending" and r.route_approvers == ("group:sec#member",)
    assert r.required == 2
    with pytest.raises(ApprovalNotAllowedError):
        w.approve(r.id, "human:alice")  # not a member of sec
    one = w.approve(r.id, "human:bob")
    assert one.state == "pending" and len(one.approvals) == 1
    with pytest.raises(AccessRequestStateError) as info:
        w.approve(r.id, "human:bob")  # the same approver twice counts once
    assert info.value.details["reason"] == "already_voted"
    assert w.get(r.id).state == "pending"
    two = w.approve(r.id, "human:dave")
    assert two.state == "active" and {a.approver for a in two.approvals} == {
        "human:bob", "human:dave",
    }  # fmt: skip
    assert w.decide("human:carol", "role:sec-admin", "assignee").allowed
    assert w.events(r.id) == [
        "access_request.created", "access_request.approval", "access_request.approval",
        "access_request.approved", "access_request.activated",
    ]  # fmt: skip


def test_one_deny_denies(w: W) -> None:
    r = w.req("secadmin", requester="human:carol", duration_seconds=600)
    w.approve(r.id, "human:bob")
    denied = w.deny(r.id, "human:dave", comment="not now")
    assert denied.state == "denied" and denied.approvals[-1].decision == "deny"
    with pytest.raises(AccessRequestStateError):
        w.approve(r.id, "human:erin")
    assert not w.decide("human:carol", "role:sec-admin", "assignee").allowed


def test_policy_denies(w: W) -> None:
    r = w.req("reports", requester="human:carol", purpose="forbidden")
    assert r.state == "denied" and r.rule_id == "no-forbidden"
    assert w.events(r.id) == ["access_request.created", "access_request.denied"]
    ok = w.req("reports", requester="human:carol", purpose="monthly")
    assert ok.state == "pending" and ok.route_approvers == ("human:bob", "human:dave")


# ------------------------------------------------------------------------------ who approves


def test_an_agent_never_approves(w: W) -> None:
    r = w.req("reports", requester="human:carol")
    with pytest.raises(ApprovalNotAllowedError) as info:
        w.approve(r.id, "agent:bot")
    assert info.value.details["reason"] == "not_human"
    bound = w.key("agent:bot")
    for approver in (None, "agent:bot"):
        with pytest.raises(ApprovalNotAllowedError):
            w.approve(r.id, approver, caller=bound)
    with pytest.raises(ApprovalNotAllowedError) as info:
        w.approve(r.id, "human:bob", caller=bound)  # a key bound to the agent acts only as it
    assert info.value.details["reason"] == "key_bound"
    # a token the agent obtained stands for the agent
    _cred, secret = C.create_credential(w.svc, ME, S, "agent:bot")
    assert secret is not None
    client = C.authenticate_client(w.svc, S, "agent:bot", secret=secret, token_endpoint_url=URL)
    tok = T.issue_client_credentials(w.svc, S, client, issuer=T.token_issuer(w.svc, S))
    with pytest.raises(ApprovalNotAllowedError) as info:
        w.approve(r.id, None, token=tok.access_token)
    assert info.value.details["reason"] == "not_human"
    with pytest.raises(ApprovalNotAllowedError) as info:
        w.approve(r.id, None, token="not.a.token")
    assert info.value.details["reason"] == "token_invalid"
    assert w.get(r.id).state == "pending" and w.get(r.id).approvals == ()
    # the token files a request as the agent
    filed = w.req("billing", token=tok.access_token, duration_seconds=600)
    assert filed.requester == "agent:bot" and filed.beneficiary == "agent:bot"
    # a key bound to a human approves as that human
    bob = w.key("human:bob")
    assert w.approve(r.id, None, caller=bob).state == "active"


def test_nobody_approves_their_own(w: W) -> None:
    # alice asks for her agent: the beneficiary's only owner is alice herself, so nobody
    # could approve it — refused when filed rather than left pending (no_eligible_approver)
    with pytest.raises(NotRequestableError) as refused:
        w.req("billing", requester="human:alice", beneficiary="agent:bot", duration_seconds=600)
    assert refused.value.details == {"reason": "no_eligible_approver",
                                     "approvers": ["human:alice"], "required": 1,
                                     "eligible": 0}  # fmt: skip
    # bob, an owner of the reports entitlement, asks for himself: he cannot approve it
    mine = w.req("reports", requester="human:bob")
    assert "human:bob" in mine.route_approvers
    with pytest.raises(ApprovalNotAllowedError) as info:
        w.approve(mine.id, "human:bob")
    assert info.value.details["reason"] == "self_approval"
    with pytest.raises(ApprovalNotAllowedError):
        w.deny(mine.id, "human:bob")
    assert w.approve(mine.id, "human:dave").state == "active"


# ------------------------------------------------------------------------------ who requests


def test_requester_and_beneficiary_rules(w: W) -> None:
    def refused(reason: str, eid: str, **kw: Any) -> None:
        with pytest.raises(NotRequestableError) as info:
            w.req(eid, **kw)
        assert info.value.details["reason"] == reason, info.value

    # only for itself or an identity it owns
    refused("not_owner", "reports", requester="agent:bot", beneficiary="human:alice")
    refused("not_owner", "billing", requester="human:bob", beneficiary="agent:bot")
    # ownership through a group: carol is in ops, which owns opsbot; while she is its only
    # member nobody else could approve (the route is ops), once dave joins it is pending
    refused("no_eligible_approver", "billing", requester="human:carol",
            beneficiary="agent:opsbot", duration_seconds=600)  # fmt: skip
    tuples.write_tuples(w.svc, ME, S, writes=["group:ops#member@human:dave"])
    got = w.req("billing", requester="human:carol", beneficiary="agent:opsbot",
                duration_seconds=600)  # fmt: skip
    assert got.state == "pending" and got.route_approvers == ("group:ops#member",)
    # agents_may_request: neither an agent requester nor an agent beneficiary
    refused("agents_not_allowed", "secadmin", requester="agent:bot")
    refused("agents_not_allowed", "secadmin", requester="human:alice", beneficiary="agent:bot")
    # the duration cap
    refused("duration_exceeded", "docs", requester="human:carol", object="document:x",
            duration_seconds=7201)  # fmt: skip
    assert w.req("docs", requester="human:carol", object="document:x",
                 duration_seconds=7200).duration_seconds == 7200  # fmt: skip
    # the object
    refused("object_required", "docs", requester="human:carol")
    refused("object_mismatch", "docs", requester="human:carol", object="role:x")
    refused("object_mismatch", "billing", requester="human:carol", object="role:other")
    # identities registered and active
    refused("unregistered", "reports", requester="human:zed")
    I.suspend_identity(w.svc, ME, S, "human:erin")
    refused("inactive", "reports", requester="human:erin")
    # the entitlement active
    E.update_entitlement(w.svc, ME, S, "reports", status="disabled")
    refused("entitlement_disabled", "reports", requester="human:carol")
    with pytest.raises(EntitlementNotFoundError):
        w.req("nope", requester="human:carol")
    # a grant without expiry already there
    refused("already_granted", "docs", requester="human:alice", object="document:roadmap")
    with pytest.raises(ValidationError):
        w.req("billing")  # nobody named, and the system caller is no identity
    with pytest.raises(ValidationError):
        w.req("billing", requester="human:carol", duration_seconds=0)


def test_a_key_bound_to_an_identity_requests_only_as_it(w: W) -> None:
    bot = w.key("agent:bot")
    r = w.req("billing", caller=bot, duration_seconds=600)
    assert (r.requester, r.beneficiary, r.caller) == ("agent:bot", "agent:bot", bot.principal)
    with pytest.raises(PermissionDeniedError):
        w.req("billing", caller=bot, requester="human:alice")
    reader = w.key("human:alice", roles=("reader",))
    with pytest.raises(PermissionDeniedError):
        w.req("billing", caller=reader)


# ------------------------------------------------------------------------------ lifecycle


def test_revoke_early(w: W) -> None:
    r = w.req("docs", requester="agent:bot", object="document:roadmap", duration_seconds=3600)
    assert r.state == "active" and w.decide("agent:bot", "document:roadmap").allowed
    pending = w.req("reports", requester="human:carol")
    with pytest.raises(AccessRequestStateError):
        AR.revoke_access_request(w.svc, ME, S, pending.id)
    with pytest.raises(PermissionDeniedError):  # carol has nothing to do with it
        AR.revoke_access_request(w.svc, ME, S, r.id, actor="human:carol")
    w.clock.advance(60)
    done = AR.revoke_access_request(w.svc, ME, S, r.id, actor="human:alice", reason="done")
    assert (done.state, done.ended_at, done.ended_by, done.end_reason) == (
        "revoked", NOW + 60, "human:alice", "done",
    )  # fmt: skip
    assert w.tuple_of("document:roadmap", "viewer", "agent:bot") is None
    assert not w.decide("agent:bot", "document:roadmap").allowed
    with pytest.raises(AccessRequestStateError):
        AR.revoke_access_request(w.svc, ME, S, r.id)
    w.clock.advance(7200)
    assert w.get(r.id).state == "revoked"  # an ended request does not turn expired
    assert AR.sweep_access_requests(w.svc, S) == [] or all(
        x.id != r.id for x in AR.sweep_access_requests(w.svc, S)
    )


def test_a_later_grant_extends_and_survives_revoking_the_first(w: W) -> None:
    first = w.req("docs", requester="agent:bot", object="document:roadmap", duration_seconds=600)
    w.clock.advance(300)
    second = w.req("docs", requester="agent:bot", object="document:roadmap",
                   duration_seconds=3600)  # fmt: skip
    assert second.state == "active"
    grant = w.tuple_of("document:roadmap", "viewer", "agent:bot")
    assert grant.expires_at == NOW + 300 + 3600
    AR.revoke_access_request(w.svc, ME, S, first.id)  # not its tuple any more
    assert w.tuple_of("document:roadmap", "viewer", "agent:bot") is not None
    w.clock.advance(600)
    assert w.decide("agent:bot", "document:roadmap").allowed
    assert w.get(first.id).state == "revoked" and w.get(second.id).state == "active"


def test_pending_expires(w: W) -> None:
    r = w.req("reports", requester="human:carol")
    assert r.pending_until == NOW + 7 * 86400
    w.clock.advance(7 * 86400)
    assert w.get(r.id).state == "expired"
    page = AR.list_access_requests(w.svc, ME, S, state="pending")
    assert r.id not in [x.id for x in page.items]
    with pytest.raises(AccessRequestStateError):
        w.approve(r.id, "human:bob")
    with pytest.raises(AccessRequestStateError):
        AR.cancel_access_request(w.svc, ME, S, r.id)
    swept = AR.sweep_access_requests(w.svc, S)
    assert [x.id for x in swept] == [r.id] and swept[0].end_reason == "pending_timeout"
    assert w.svc.storage.get_access_request(S, r.id).state == "expired"
    assert w.events(r.id)[-1] == "access_request.expired"


def test_cancel(w: W) -> None:
    r = w.req("reports", requester="human:carol", justification="quarter close")
    dave = w.key("human:dave")
    with pytest.raises(PermissionDeniedError):
        AR.cancel_access_request(w.svc, dave, S, r.id)
    carol = w.key("human:carol")
    done = AR.cancel_access_request(w.svc, carol, S, r.id, reason="not needed")
    assert done.state == "cancelled" and done.ended_by == "human:carol"
    with pytest.raises(AccessRequestStateError):
        AR.cancel_access_request(w.svc, carol, S, r.id)
    with pytest.raises(AccessRequestStateError):
        w.approve(r.id, "human:bob")
    assert w.events(r.id) == ["access_request.created", "access_request.cancelled"]
    with pytest.raises(AccessRequestNotFoundError):
        AR.cancel_access_request(w.svc, ME, S, "01NOTAREQUEST")
    # the owner of the agent it was filed for may withdraw it too
    mine = w.req("billing", requester="agent:bot", duration_seconds=600)
    with pytest.raises(PermissionDeniedError):
        AR.cancel_access_request(w.svc, ME, S, mine.id, requester="human:bob")
    gone = AR.cancel_access_request(w.svc, ME, S, mine.id, requester="human:alice")
    assert gone.state == "cancelled" and gone.ended_by == "human:alice"


def _race(*calls: Any) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except KeyplaneError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_approvals_at_once(w: W) -> None:
    # one approval needed, two approvers at once: one grant, one refusal, one activation
    r = w.req("reports", requester="human:carol")
    got = _race(lambda: w.approve(r.id, "human:bob"), lambda: w.approve(r.id, "human:dave"))
    wins = [g for g in got if isinstance(g, AccessRequest)]
    losses = [g for g in got if isinstance(g, AccessRequestStateError)]
    assert len(wins) == 1 and len(losses) == 1, got
    final = w.get(r.id)
    assert final.state == "active" and len(final.approvals) == 1
    assert w.events(r.id).count("access_request.activated") == 1
    # two needed, two at once: both count (or a loser is told to retry), never lost silently
    n = w.req("secadmin", requester="human:carol", duration_seconds=600)
    got = _race(lambda: w.approve(n.id, "human:bob"), lambda: w.approve(n.id, "human:dave"))
    after = w.get(n.id)
    ok = [g for g in got if isinstance(g, AccessRequest)]
    assert len(after.approvals) == len(ok)
    assert after.state == ("active" if len(ok) == 2 else "pending")


def test_history_in_one_call(w: W) -> None:
    r = w.req("billing", requester="agent:bot", duration_seconds=600, purpose="invoices",
              justification="month end")  # fmt: skip
    with pytest.raises(ApprovalNotAllowedError):
        w.approve(r.id, "agent:bot")  # refused: on the record too
    w.approve(r.id, "human:alice", comment="fine")
    AR.revoke_access_request(w.svc, ME, S, r.id, reason="done early")
    w.svc.ledger.flush()
    h = AR.get_access_request_history(w.svc, ME, S, r.id)
    assert h.request.state == "revoked"
    refused = [e for e in h.events if e.outcome != "ok"]
    assert [(e.type, e.outcome, e.reasons) for e in refused] == [
        ("access_request.approval", "deny", ("permission_denied",))
    ]
    h = h._replace(events=[e for e in h.events if e.outcome == "ok"])
    assert [e.type for e in h.events] == [
        "access_request.created", "access_request.approval", "access_request.approved",
        "access_request.activated", "access_request.revoked",
    ]  # fmt: skip
    assert all(e.resource == f"access_request:{r.id}" for e in h.events)
    created, vote, _, activated, revoked = h.events
    assert created.details["requester"] == "agent:bot"
    assert created.details["justification"] == "month end"
    assert vote.details["approver"] == "human:alice" and vote.details["comment"] == "fine"
    assert activated.details["tuple"] == "role:billing-admin#assignee@agent:bot"
    assert activated.details["expires_at"] == NOW + 600
    assert revoked.details["reason"] == "done early"
    request, events = h  # also unpacks
    assert request.id == r.id and len(events) == 5


def test_list_filters(w: W) -> None:
    a = w.req("billing", requester="agent:bot", duration_seconds=600)
    b = w.req("reports", requester="human:carol")
    c = w.req("docs", requester="agent:bot", object="document:roadmap", duration_seconds=60)

    def ids(**kw: Any) -> list[str]:
        return [x.id for x in AR.list_access_requests(w.svc, ME, S, **kw).items]

    assert ids() == [a.id, b.id, c.id]
    assert ids(state="pending") == [a.id, b.id]
    assert ids(state="active") == [c.id]
    assert ids(beneficiary="agent:bot") == [a.id, c.id]
    assert ids(requester="human:carol") == [b.id]
    assert ids(entitlement_id="reports") == [b.id]
    assert ids(approver="human:alice") == [a.id]
    w.clock.advance(60)
    assert ids(state="active") == [] and ids(state="expired") == [c.id]
    with pytest.raises(ValidationError):
        ids(state="nonsense")


def test_the_tailer_maintenance_runs_the_sweep(w: W) -> None:
    r = w.req("docs", requester="agent:bot", object="document:roadmap", duration_seconds=60)
    w.svc.graphs.run_maintenance(S)  # nothing due yet
    assert w.svc.storage.get_access_request(S, r.id).state == "active"
    w.clock.advance(60)
    w.svc.graphs.run_maintenance(S)  # what the tailer runs at each purge
    stored = w.svc.storage.get_access_request(S, r.id)
    assert stored is not None and stored.state == "expired"
    assert stored.end_reason == "grant_expired" and stored.ended_at == NOW + 60
    assert w.events(r.id).count("access_request.expired") == 1
    w.svc.graphs.run_maintenance(S)  # once only
    assert w.events(r.id).count("access_request.expired") == 1


def test_guardrails_still_apply_to_a_grant(w: W) -> None:
    from keyplane.service import guardrails

    guardrails.put_guardrails(w.svc, ME, S, [{
        "id": "no-agent-secrets", "effect": "forbid",
        "expression": 'subject.kind == "agent" && resource.id == "secret"',
    }])  # fmt: skip
    r = w.req("docs", requester="agent:bot", object="document:secret", duration_seconds=600)
    assert r.state == "pending"  # alice does not view it: routed to the owner
    assert w.approve(r.id, "human:bob").state == "active"
    assert w.tuple_of("document:secret", "viewer", "agent:bot") is not None
    d = w.decide("agent:bot", "document:secret")
    assert not d.allowed and d.code == "guardrail_forbid"
    # the denial that is not about a missing permission carries nothing to file
    assert "request" not in d.reason


def test_the_rules_see_the_facts_and_identities(w: W) -> None:
    # alice (who views the roadmap) asks for her agent: every fact as the graph has it
    r = w.req("docs", requester="human:alice", beneficiary="agent:bot",
              object="document:roadmap", duration_seconds=600)  # fmt: skip
    assert r.state == "active" and r.rule_id == "auto-low"
    created = AR.get_access_request_history(w.svc, ME, S, r.id).events[0]
    assert created.details["facts"] == {
        "owner_holds": True, "requester_holds": True, "beneficiary_holds": False,
        "requester_is_owner": True, "requester_is_agent": False,
    }  # fmt: skip
    # a rule over the requester's and beneficiary's identities
    I.update_identity(w.svc, ME, S, "human:carol", attributes={"team": "sre"})
    w.ent("oncall", object="role:oncall", relation="assignee", owners=["human:dave"],
          approval=[{"id": "sre", "outcome": "approve",
                     "when": 'has(requester.attributes.team) && requester.attributes.team == "sre"'
                             ' && beneficiary.kind == "human"'}])  # fmt: skip
    assert w.req("oncall", requester="human:carol").state == "active"
    other = w.req("oncall", requester="human:erin")
    assert other.state == "pending" and other.rule_id == "default"
    assert other.route_approvers == ("human:dave",)

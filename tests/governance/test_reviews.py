"""Access reviews (issue 7 §5) through the service layer, on SQLite and PostgreSQL: items
selected by filter (agent grants on a type; grants not exercised in 30 days, from real
decisions in the ledger with an injected clock), reviewers by rule, certify/revoke and who
may decide, revocations applied on close or at once, defaults for unanswered items, the
report, the ledger events, and a revoked grant that stops granting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    ApprovalNotAllowedError,
    PermissionDeniedError,
    ReviewNotFoundError,
    ReviewStateError,
    ValidationError,
)
from keyplane.governance.records import ReviewItem
from keyplane.service import access_requests as AR
from keyplane.service import credentials as C
from keyplane.service import decisions
from keyplane.service import delegations as D
from keyplane.service import entitlements as E
from keyplane.service import identities as I
from keyplane.service import reviews as R
from keyplane.service import tokens as TK
from keyplane.service import tuples as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, create_key

S = "reviews"
NOW = 1_800_000_000.0
DAY = 86400.0
MODEL = """\
model
  schema 1.1
type document
  relations
    define viewer: [human, agent, group#member]
    define editor: [human, agent]
type folder
  relations
    define viewer: [human, agent]
"""
SYSTEM = Caller.system_caller()


class Env:
    def __init__(self, kp: Keyplane, clock: FixedClock) -> None:
        self.kp = kp
        self.svc: Services = kp.services
        self.clock = clock

    def __getattr__(self, name: str) -> Any:
        for mod in (R, I, D, E, AR):
            fn = getattr(mod, name, None)
            if fn is not None:
                return lambda *a, **kw: fn(self.svc, SYSTEM, S, *a, **kw)
        raise AttributeError(name)

    def write(self, *keys: str, expires_at: float | None = None) -> None:
        writes: list[dict[str, Any]] = []
        for k in keys:
            obj, _, rest = k.partition("#")
            rel, _, user = rest.partition("@")
            w: dict[str, Any] = {"object": obj, "relation": rel, "user": user}
            if expires_at is not None:
                w["expires_at"] = expires_at
            writes.append(w)
        T.write_tuples(self.svc, SYSTEM, S, writes=writes)

    def allowed(self, subject: str, relation: str, obj: str, actors: tuple[str, ...] = ()) -> bool:
        return bool(
            decisions.decide(self.svc, SYSTEM, S, subject, relation, obj, actors=actors).allowed
        )

    def grant(self, beneficiary: str, obj: str, days: float = 60) -> Any:
        req = self.create_access_request(
            "doc-view", object=obj, beneficiary=beneficiary,
            requester=beneficiary if beneficiary.startswith("human:") else "human:alice",
            duration_seconds=int(days * DAY), purpose="work", justification="needed",
        )  # fmt: skip
        assert req.state == "active", req
        return req

    def items(self, review_id: str) -> list[ReviewItem]:
        return list(R.review_report(self.svc, SYSTEM, S, review_id).items)

    def events(self, *types: str) -> list[Any]:
        self.svc.ledger.flush()
        return [
            e
            for e in self.svc.storage.read_events(S, limit=10_000)
            if e.type in types and e.outcome == "ok"  # not the refusals
        ]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def env(storage_url: str, clock: FixedClock) -> Iterator[Env]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=clock)
    try:
        kp.write_model(MODEL)
        e = Env(kp, clock)
        for h in ("alice", "bob", "carol", "dave"):
            e.create_identity("human", h)
        e.create_identity("agent", "bot", owners=["human:alice"])
        e.create_identity("agent", "helper", owners=["human:alice"])
        e.write("group:sec#member@human:carol")
        e.create_entitlement(
            "doc-view", object="document:*", relation="viewer", owners=["human:dave"],
            risk="low", max_duration_seconds=90 * 86400, agents_may_request=True,
            approval=[{"id": "auto", "when": "true", "outcome": "approve"}],
        )  # fmt: skip
        yield e
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _keys(items: list[ReviewItem]) -> set[str]:
    return {f"{i.object}#{i.relation}@{i.user}" for i in items}


# ------------------------------------------------------------------------------ selection


def test_tuples_source_selects_by_filter(env: Env) -> None:
    env.write(
        "document:a#viewer@agent:bot", "document:b#viewer@agent:helper",
        "document:a#viewer@human:bob", "folder:f#viewer@agent:bot", "document:c#editor@agent:bot",
    )  # fmt: skip
    env.write("document:old#viewer@agent:bot", expires_at=NOW + 60)
    env.clock.advance(120)  # that one stopped granting: not standing access any more
    c = env.create_review(
        name="agent-doc-viewers",
        filter={"source": "tuples", "object_type": "document", "relation": "viewer", "user_kind": "agent"},
    )  # fmt: skip
    assert c.state == "open" and c.filter.source == "tuples"
    items = env.items(c.id)
    assert _keys(items) == {"document:a#viewer@agent:bot", "document:b#viewer@agent:helper"}
    assert [i.id for i in items] == [1, 2]
    assert all(i.request_id is None for i in items)
    # no object type: every direct tuple of the kind except the identities' owner tuples
    c2 = env.create_review(name="humans", filter={"source": "tuples", "user_kind": "human"})
    assert _keys(env.items(c2.id)) == {
        "document:a#viewer@human:bob",
        "group:sec#member@human:carol",
    }


def test_grants_source_selects_agent_grants_on_a_type(env: Env) -> None:
    r1 = env.grant("agent:bot", "document:a")
    env.grant("human:bob", "document:b")
    env.write("document:z#viewer@agent:bot")  # a plain tuple: not a grant
    c = env.create_review(
        name="agent-grants", filter={"object_type": "document", "user_kind": "agent"}
    )
    items = env.items(c.id)
    assert _keys(items) == {"document:a#viewer@agent:bot"}
    assert items[0].request_id == r1.id
    # the tuples source links a tuple that is an active grant to its request
    c2 = env.create_review(name="all", filter={"source": "tuples", "user_kind": "agent"})
    by_key = {f"{i.object}#{i.relation}@{i.user}": i for i in env.items(c2.id)}
    assert by_key["document:a#viewer@agent:bot"].request_id == r1.id
    assert by_key["document:z#viewer@agent:bot"].request_id is None
    # a grant that has run out is not standing access any more (state computed now)
    env.grant("agent:helper", "document:short", days=1)
    env.clock.advance(2 * DAY)
    c3 = env.create_review(name="later", filter={"user_kind": "agent"})
    assert _keys(env.items(c3.id)) == {"document:a#viewer@agent:bot"}


def test_unused_days_from_real_decisions_in_the_ledger(env: Env) -> None:
    env.grant("agent:bot", "document:a")
    env.grant("agent:helper", "document:b")
    env.write("document:b#viewer@human:alice")
    assert env.allowed("agent:bot", "viewer", "document:a")  # used now, then not for 40 days
    env.clock.advance(40 * DAY)
    env.create_delegation(
        delegator="human:alice", delegate="agent:helper",
        scope=[{"actions": ["viewer"], "resource": "document:*"}], expires_at=env.clock.now() + 3600,
    )  # fmt: skip
    # helper uses its grant as the actor of alice (not as the subject)
    assert env.allowed("human:alice", "viewer", "document:b", actors=("agent:helper",))
    # a denied decision on the object is not a use
    assert not env.allowed("agent:bot", "editor", "document:a")
    c = env.create_review(name="unused", filter={"user_kind": "agent", "unused_days": 30})
    items = env.items(c.id)
    assert _keys(items) == {"document:a#viewer@agent:bot"}
    assert items[0].last_used_at == NOW
    # without the window both are listed, each with its last use
    c2 = env.create_review(name="all", filter={"user_kind": "agent"})
    used = {i.user: i.last_used_at for i in env.items(c2.id)}
    assert used == {"agent:bot": NOW, "agent:helper": NOW + 40 * DAY}
    # never used at all: selected, last_used_at None
    env.grant("agent:bot", "document:never")
    c3 = env.create_review(name="unused2", filter={"user_kind": "agent", "unused_days": 30})
    assert {i.object: i.last_used_at for i in env.items(c3.id)} == {
        "document:a": NOW, "document:never": None,
    }  # fmt: skip


def test_invalid_campaigns_are_refused(env: Env) -> None:
    for kw in (
        {"name": ""},
        {"name": "x", "filter": {"source": "everything"}},
        {"name": "x", "filter": {"unused_days": 0}},
        {"name": "x", "filter": {"colour": "red"}},
        {"name": "x", "reviewer": "agent:bot"},
        {"name": "x", "reviewer": "nobody"},
        {"name": "x", "default_decision": "maybe"},
        {"name": "x", "apply": "sometime"},
        {"name": "x", "due_at": NOW - 1},
    ):
        with pytest.raises(ValidationError):
            env.create_review(**kw)
    assert env.list_reviews().items == []


# ------------------------------------------------------------------------------ reviewers


def test_reviewers_by_rule(env: Env) -> None:
    env.grant("agent:bot", "document:a")
    env.grant("human:bob", "document:b")

    def reviewers(rule: str) -> dict[str, tuple[str, ...]]:
        c = env.create_review(name=rule.replace(":", "-").replace("#", "-"), reviewer=rule)
        return {i.user: i.reviewers for i in env.items(c.id)}

    assert reviewers("beneficiary_owners") == {"agent:bot": ("human:alice",), "human:bob": ()}
    assert reviewers("entitlement_owners") == {
        "agent:bot": ("human:dave",), "human:bob": ("human:dave",),
    }  # fmt: skip
    # the item's own user is never among its reviewers
    assert reviewers("human:bob") == {"agent:bot": ("human:bob",), "human:bob": ()}
    assert reviewers("group:sec#member") == {
        "agent:bot": ("group:sec#member",), "human:bob": ("group:sec#member",),
    }  # fmt: skip


def test_who_may_decide(env: Env) -> None:
    env.grant("agent:bot", "document:a")
    env.grant("human:carol", "document:c")
    c = env.create_review(name="sec", reviewer="group:sec#member")
    bot_item = next(i for i in env.items(c.id) if i.user == "agent:bot")
    carol_item = next(i for i in env.items(c.id) if i.user == "human:carol")

    def refused(item: ReviewItem, **kw: Any) -> str:
        with pytest.raises(ApprovalNotAllowedError) as exc:
            env.decide_review_item(c.id, item.id, "certify", **kw)
        return str((exc.value.details or {}).get("reason"))

    assert refused(bot_item, reviewer="agent:helper") == "not_human"  # agents never review
    assert refused(bot_item, reviewer="human:bob") == "not_reviewer"  # not in group:sec
    assert refused(carol_item, reviewer="human:carol") == "own_access"
    # a key bound to an identity acts only as it
    bound = Caller("key:k1", "k1", "agent:bot", system=True)
    with pytest.raises(ApprovalNotAllowedError):
        R.decide_review_item(
            env.svc, bound, S, c.id, bot_item.id, "certify", reviewer="human:carol"
        )
    with pytest.raises(ValidationError):
        env.decide_review_item(c.id, bot_item.id, "certify")  # nobody named
    with pytest.raises(ValidationError):
        env.decide_review_item(c.id, bot_item.id, "approve", reviewer="human:carol")
    # carol is a member of group:sec (through the graph): she may
    done = env.decide_review_item(
        c.id, str(bot_item.id), "certify", reviewer="human:carol", comment="ok"
    )
    assert (done.decision, done.decided_by, done.decided_at, done.comment) == (
        "certify", "human:carol", NOW, "ok",
    )  # fmt: skip
    # a decision may change until the review closes
    again = env.decide_review_item(c.id, bot_item.id, "revoke", reviewer="human:carol")
    assert again.decision == "revoke" and again.outcome is None
    assert [e.details["decision"] for e in env.events("review.item_decided")] == [
        "certify",
        "revoke",
    ]


def test_reviewer_from_a_token_or_a_bound_key(env: Env) -> None:
    env.grant("agent:bot", "document:a")
    env.grant("agent:helper", "document:b")
    c = env.create_review(name="tok")
    items = {i.user: i for i in env.items(c.id)}
    # a token the agent obtained stands for the agent: agents never review
    _cred, secret = C.create_credential(env.svc, SYSTEM, S, "agent:bot")
    assert secret is not None
    url = "https://kp.example/oauth2/token"
    client = C.authenticate_client(env.svc, S, "agent:bot", secret=secret, token_endpoint_url=url)
    tok = TK.issue_client_credentials(env.svc, S, client, issuer=TK.token_issuer(env.svc, S))
    for token, reason in ((tok.access_token, "not_human"), ("not.a.token", "token_invalid")):
        with pytest.raises(ApprovalNotAllowedError) as info:
            env.decide_review_item(c.id, items["agent:helper"].id, "revoke", token=token)
        assert (info.value.details or {})["reason"] == reason
    with pytest.raises(ValidationError):  # one or the other
        env.decide_review_item(
            c.id, items["agent:helper"].id, "revoke", reviewer="human:alice", token="x.y.z"
        )
    # an admin key bound to alice decides as alice without naming her, and only as her
    _, key = create_key(env.svc, SYSTEM, owner="human:alice", roles=["admin"])
    alice = authenticate(env.svc, key)
    done = R.decide_review_item(env.svc, alice, S, c.id, items["agent:bot"].id, "certify")
    assert done.decided_by == "human:alice"
    with pytest.raises(ApprovalNotAllowedError) as info:
        R.decide_review_item(
            env.svc, alice, S, c.id, items["agent:bot"].id, "certify", reviewer="human:bob"
        )
    assert (info.value.details or {})["reason"] == "key_bound"


def test_a_group_reviewer_on_a_bound_key_revokes_at_once(env: Env) -> None:
    """carol reviews as a member of group:sec, through an admin key bound to her; she is
    not one of the request's approvers, yet the review's revocation goes through."""
    r = env.grant("agent:bot", "document:a")
    c = env.create_review(name="sec-now", reviewer="group:sec#member", apply="immediately")
    (item,) = env.items(c.id)
    _, key = create_key(env.svc, SYSTEM, owner="human:carol", roles=["admin"])
    carol = authenticate(env.svc, key)
    done = R.decide_review_item(env.svc, carol, S, c.id, item.id, "revoke")
    assert (done.decided_by, done.outcome) == ("human:carol", "revoked")
    assert env.get_access_request(r.id).state == "revoked"
    assert not env.allowed("agent:bot", "viewer", "document:a")


def test_decide_needs_manage_reviews(env: Env) -> None:
    env.grant("agent:bot", "document:a")
    c = env.create_review(name="perm")
    reader = Caller("key:reader", "reader")  # not system: holds no role in the system store
    with pytest.raises(PermissionDeniedError):
        R.decide_review_item(env.svc, reader, S, c.id, 1, "revoke", reviewer="human:alice")


# ------------------------------------------------------------------------------ applying


def test_on_close_revocations_wait_for_the_close(env: Env) -> None:
    r = env.grant("agent:bot", "document:a")
    env.grant("agent:helper", "document:b")
    c = env.create_review(name="q4", filter={"user_kind": "agent"})
    items = {i.user: i for i in env.items(c.id)}
    env.decide_review_item(c.id, items["agent:bot"].id, "revoke", reviewer="human:alice")
    env.decide_review_item(c.id, items["agent:helper"].id, "certify", reviewer="human:alice")
    # nothing is revoked before the close
    assert env.allowed("agent:bot", "viewer", "document:a")
    assert env.get_access_request(r.id).state == "active"
    env.clock.advance(60)
    closed = env.close_review(c.id)
    assert (closed.state, closed.closed_at) == ("closed", NOW + 60)
    assert env.get_access_request(r.id).state == "revoked"
    # the revoked grant stops granting; the certified one still grants
    assert not env.allowed("agent:bot", "viewer", "document:a")
    assert env.allowed("agent:helper", "viewer", "document:b")
    out = {i.user: (i.outcome, i.applied_at) for i in env.items(c.id)}
    assert out == {"agent:bot": ("revoked", NOW + 60), "agent:helper": ("certified", None)}
    with pytest.raises(ReviewStateError):
        env.decide_review_item(c.id, items["agent:helper"].id, "revoke", reviewer="human:alice")
    with pytest.raises(ReviewStateError):
        env.close_review(c.id)


def test_immediately_applies_a_revoke_when_decided(env: Env) -> None:
    r = env.grant("agent:bot", "document:a")
    c = env.create_review(name="now", apply="immediately")
    (item,) = env.items(c.id)
    done = env.decide_review_item(c.id, item.id, "revoke", reviewer="human:alice")
    assert (done.outcome, done.applied_at) == ("revoked", NOW)
    assert env.get_access_request(r.id).state == "revoked"
    assert not env.allowed("agent:bot", "viewer", "document:a")
    # applied: it cannot be changed any more
    with pytest.raises(ReviewStateError):
        env.decide_review_item(c.id, item.id, "certify", reviewer="human:alice")
    env.close_review(c.id)
    assert [(i.outcome, i.applied_at) for i in env.items(c.id)] == [("revoked", NOW)]
    # one revocation: the close applied nothing again
    assert len(env.events("review.item_applied")) == 1
    assert len(env.events("access_request.revoked")) == 1


def test_plain_tuple_revoked_through_the_tuples_service(env: Env) -> None:
    env.write("document:a#viewer@agent:bot", "document:b#viewer@agent:bot")
    c = env.create_review(name="plain", filter={"source": "tuples", "object_type": "document"})
    items = {i.object: i for i in env.items(c.id)}
    env.decide_review_item(c.id, items["document:a"].id, "revoke", reviewer="human:alice")
    env.close_review(c.id)
    assert not env.allowed("agent:bot", "viewer", "document:a")
    assert env.allowed("agent:bot", "viewer", "document:b")
    (written,) = [e for e in env.events("tuples.written") if e.details.get("deleted")]
    assert written.details["deleted"] == [
        {"object": "document:a", "relation": "viewer", "user": "agent:bot"}
    ]
    (applied,) = env.events("review.item_applied")
    assert applied.details["applied"] == "tuple_deleted"
    assert applied.seq > written.seq


@pytest.mark.parametrize("default", ["certify", "revoke"])
def test_unanswered_items_take_the_default(env: Env, default: str) -> None:
    r_bot = env.grant("agent:bot", "document:a")
    r_helper = env.grant("agent:helper", "document:b")
    c = env.create_review(name="d", default_decision=default)
    items = {i.user: i for i in env.items(c.id)}
    env.decide_review_item(c.id, items["agent:bot"].id, "certify", reviewer="human:alice")
    env.close_review(c.id)
    out = {i.user: i.outcome for i in env.items(c.id)}
    assert out == {"agent:bot": "certified", "agent:helper": f"defaulted_{default}"}
    assert env.get_access_request(r_bot.id).state == "active"
    helper_state = env.get_access_request(r_helper.id).state
    assert helper_state == ("revoked" if default == "revoke" else "active")
    assert env.allowed("agent:helper", "viewer", "document:b") is (default == "certify")


def test_a_grant_that_ended_meanwhile_is_not_revoked_twice(env: Env) -> None:
    r = env.grant("agent:bot", "document:a")
    c = env.create_review(name="ended", default_decision="revoke")
    env.revoke_access_request(r.id, reason="done early")
    env.close_review(c.id)
    (applied,) = env.events("review.item_applied")
    assert applied.details["applied"] == "already_ended"
    assert [i.outcome for i in env.items(c.id)] == ["defaulted_revoke"]


# ------------------------------------------------------------------------------ report, ledger


def test_report_lists_every_item_and_outcome(env: Env) -> None:
    for obj in ("document:a", "document:b", "document:c"):
        env.grant("agent:bot", obj)
    env.grant("human:bob", "document:d")
    c = env.create_review(name="report", default_decision="revoke")
    items = {i.object: i for i in env.items(c.id)}
    env.decide_review_item(c.id, items["document:a"].id, "certify", reviewer="human:alice")
    env.decide_review_item(c.id, items["document:b"].id, "revoke", reviewer="human:alice")
    open_report = env.review_report(c.id)
    assert open_report.counts == {"pending": 4}
    env.close_review(c.id)
    report = env.review_report(c.id)
    assert report.campaign.state == "closed"
    got = {(i.object, i.user, i.decision, i.decided_by, i.outcome) for i in report.items}
    assert got == {
        ("document:a", "agent:bot", "certify", "human:alice", "certified"),
        ("document:b", "agent:bot", "revoke", "human:alice", "revoked"),
        ("document:c", "agent:bot", None, None, "defaulted_revoke"),
        ("document:d", "human:bob", None, None, "defaulted_revoke"),
    }
    assert report.counts == {"certified": 1, "revoked": 1, "defaulted_revoke": 2}
    campaign, listed = report  # unpacks as (campaign, items)
    assert campaign.id == c.id and len(listed) == 4


def test_ledger_events_commit_with_their_change(env: Env) -> None:
    r = env.grant("agent:bot", "document:a")
    c = env.create_review(name="ledger", filter={"user_kind": "agent"})
    (created,) = env.events("review.created")
    assert created.resource == f"review:{c.id}" and created.revision == c.revision
    assert created.details["items"][0]["request_id"] == r.id
    env.decide_review_item(c.id, 1, "revoke", reviewer="human:alice", comment="unused")
    closed = env.close_review(c.id)
    (decided,) = env.events("review.item_decided")
    (applied,) = env.events("review.item_applied")
    (revoked,) = env.events("access_request.revoked")
    (closed_ev,) = env.events("review.closed")
    assert decided.details["reviewer"] == "human:alice" and decided.details["comment"] == "unused"
    assert applied.details["applied"] == "access_request_revoked"
    assert revoked.seq < applied.seq < closed_ev.seq
    assert closed_ev.revision == closed.revision
    assert closed_ev.details["outcomes"] == {"revoked": 1}
    # the item's stored revision is the one its applied event names
    (item,) = env.items(c.id)
    assert item.revision == closed.revision or item.revision == applied.revision


def test_reads_and_not_found(env: Env) -> None:
    env.grant("agent:bot", "document:a")
    a = env.create_review(name="one")
    b = env.create_review(name="two")
    env.close_review(a.id)
    assert [x.id for x in env.list_reviews().items] == [a.id, b.id]
    assert [x.id for x in env.list_reviews(state="open").items] == [b.id]
    page = env.list_reviews(page_size=1)
    assert [x.id for x in page.items] == [a.id] and page.continuation_token
    nxt = env.list_reviews(page_size=1, continuation_token=page.continuation_token)
    assert [x.id for x in nxt.items] == [b.id]
    assert env.get_review(b.id).name == "two"
    assert [i.id for i in env.list_review_items(b.id).items] == [1]
    for call in (
        lambda: env.get_review("nope"),
        lambda: env.list_review_items("nope"),
        lambda: env.review_report("nope"),
        lambda: env.close_review("nope"),
        lambda: env.decide_review_item(b.id, 99, "certify", reviewer="human:alice"),
    ):
        with pytest.raises(ReviewNotFoundError):
            call()


def test_a_change_and_its_event_commit_together(env: Env) -> None:
    """Storage: an event that cannot be recorded rolls its change back (create and
    change), and a plan that changes nothing writes nothing (no revision)."""
    from dataclasses import replace as dc_replace

    from keyplane.governance.records import ReviewCampaign, ReviewFilter
    from keyplane.storage.reviews_sql import ReviewWrite

    st: Any = env.svc.storage

    def boom(made: Any) -> list[Any]:
        raise RuntimeError("ledger down")

    c = ReviewCampaign(
        S, "R" * 26, "n", ReviewFilter(), "human:bob", "certify", "on_close", "open", "t", NOW, None
    )
    item = ReviewItem(S, c.id, 1, "agent:bot", "viewer", "document:a", None, ("human:bob",), None)
    with pytest.raises(RuntimeError):
        st.create_review(S, c, [item], ledger_events=boom)
    assert st.get_review(S, c.id) is None
    made = st.create_review(S, c, [item])
    assert made.revision == made.campaign.revision == made.items[0].revision > 0
    with pytest.raises(RuntimeError):
        st.change_review(
            S, c.id, lambda c_, items: ReviewWrite(items=[dc_replace(items[0], decision="revoke")]),
            item_ids=[1], ledger_events=boom,
        )  # fmt: skip
    assert st.get_review_item(S, c.id, 1).decision is None
    before = env.svc.storage.current_revision(S)
    same = st.change_review(S, c.id, lambda c_, items: ReviewWrite())
    assert same.revision == 0 and env.svc.storage.current_revision(S) == before

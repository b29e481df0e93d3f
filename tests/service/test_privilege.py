"""Over-privilege (issue 8 §2) through the service layer, on SQLite and PostgreSQL.

Use comes from real decisions recorded by the real decision point (decisions.decide,
access.check, access.batch_check) with an injected clock placing them inside or outside
the window. Covered: unused grants; a use reachable through two grants (one kept); an
editor grant covering a viewer use; a group membership covering a use through a folder;
an intersection needing two grants; uses as an actor of someone else's decision; HMAC-
redacted ledger fields; applying as revocations and as a review campaign; a changed
recommendation refused with nothing written; nothing to apply; a reader refused; agents
exceeding an owner and a delegator (and not flagged when within)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import (
    InvalidContinuationToken,
    NothingToApplyError,
    PermissionDeniedError,
    RecommendationChangedError,
    ValidationError,
)
from keyplane.governance.posture import OverPrivilege
from keyplane.service import access, decisions
from keyplane.service import delegations as D
from keyplane.service import identities as I
from keyplane.service import privilege as P
from keyplane.service import reviews as R
from keyplane.service import tuples as T
from keyplane.service.access import BatchItem
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, create_key

S = "privilege"
NOW = 1_800_000_000.0
DAY = 86400.0
MODEL = """\
model
  schema 1.1
type group
  relations
    define member: [human, agent, group#member]
type folder
  relations
    define viewer: [human, agent, group#member]
    define editor: [human, agent, group#member]
type document
  relations
    define parent: [folder]
    define approver: [human, agent]
    define signer: [human, agent]
    define editor: [human, agent, group#member] or editor from parent
    define viewer: [human, agent, agent:*, group#member, agent with in_hours] or editor or viewer from parent
    define can_sign: approver and signer

condition in_hours(hour: int) {
  hour >= 9 && hour < 18
}
"""
SYSTEM = Caller.system_caller()


class Env:
    def __init__(self, kp: Keyplane, clock: FixedClock) -> None:
        self.kp = kp
        self.svc: Services = kp.services
        self.clock = clock

    def write(self, *keys: str) -> None:
        T.write_tuples(self.svc, SYSTEM, S, writes=list(keys))

    def decide(self, subject: str, action: str, obj: str, actors: tuple[str, ...] = ()) -> bool:
        d = decisions.decide(self.svc, SYSTEM, S, subject, action, obj, actors=actors)
        return bool(d.allowed)

    def check(self, user: str, relation: str, obj: str) -> bool:
        return bool(access.check(self.svc, SYSTEM, S, user, relation, obj).allowed)

    # the window is [now - days, now): a minute passes first, so the decisions just made
    # (at the fixed clock's "now") are inside it
    def over(self, node: str, **kw: Any) -> OverPrivilege:
        self.clock.advance(60)
        return P.over_privilege(self.svc, SYSTEM, S, node, **kw)

    def apply(self, node: str, caller: Caller = SYSTEM, **kw: Any) -> P.PrivilegeApplied:
        self.clock.advance(60)
        return P.apply_privilege_recommendation(self.svc, caller, S, node, **kw)

    def tuples_of(self, user: str) -> set[str]:
        page = T.read_tuples(self.svc, SYSTEM, S, user=user, page_size=1000)
        return {f"{t.object}#{t.relation}@{t.user}" for t in page.items}

    def events(self, *types: str) -> list[Any]:
        self.svc.ledger.flush()
        return [
            e
            for e in self.svc.storage.read_events(S, limit=100_000)
            if e.type in types and e.outcome == "ok"
        ]


def _open(storage_url: str, clock: FixedClock, tmp_path: Path, **settings: Any) -> Keyplane:
    s = Settings(
        database_url=storage_url, poll_interval=0.0, default_store=S,
        master_key_file=str(tmp_path / "keyplane.key"), **settings,
    )  # fmt: skip
    kp = Keyplane.open(settings=s, clock=clock)
    kp.write_model(MODEL)
    return kp


def _setup(env: Env) -> None:
    svc = env.svc
    for h in ("alice", "carol"):
        I.create_identity(svc, SYSTEM, S, "human", h)
    I.create_identity(svc, SYSTEM, S, "agent", "bot", owners=["human:alice"])


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW - 100 * DAY)


@pytest.fixture
def env(storage_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[Env]:
    kp = _open(storage_url, clock, tmp_path)
    try:
        e = Env(kp, clock)
        _setup(e)
        yield e
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def _grants(op: OverPrivilege) -> dict[str, int]:
    return {g.tuple_key: g.covers for g in op.grants}


def _used(op: OverPrivilege) -> dict[tuple[str, str], int]:
    return {(u.object, u.relation): u.uses for u in op.used}


# ------------------------------------------------------------------------------ analysis


def test_unused_grants_and_the_window(env: Env) -> None:
    env.write(
        "document:a#viewer@agent:bot", "document:b#viewer@agent:bot",
        "folder:f#viewer@agent:bot", "document:c#parent@folder:f",
    )  # fmt: skip
    assert env.decide("agent:bot", "viewer", "document:a")  # 100 days ago: outside 90
    env.clock.advance(95 * DAY)
    assert env.decide("agent:bot", "viewer", "document:c")  # through the folder
    env.clock.advance(DAY)
    assert env.check("agent:bot", "viewer", "document:c")
    assert not env.decide("agent:bot", "editor", "document:c")  # a denial is no use
    env.clock.advance(4 * DAY - 60)  # now = NOW (over() lets a minute pass)
    op = env.over("agent:bot", window_days=90)
    assert (op.since, op.until) == (NOW - 90 * DAY, NOW)
    assert _used(op) == {("document:c", "viewer"): 2}
    assert op.used[0].last_used_at == NOW - 4 * DAY
    assert _grants(op) == {
        "document:a#viewer@agent:bot": 0,
        "document:b#viewer@agent:bot": 0,
        "folder:f#viewer@agent:bot": 1,
    }
    assert set(op.unused_grants) == {"document:a#viewer@agent:bot", "document:b#viewer@agent:bot"}
    assert op.keep == ("folder:f#viewer@agent:bot",)
    assert op.revoke == ("document:a#viewer@agent:bot", "document:b#viewer@agent:bot")
    # effective: a, b, c viewer and f viewer; all but c unused
    assert op.effective_total == 4 and op.unused_total == 3
    assert {(u.object, u.relation) for u in op.unused} == {
        ("document:a", "viewer"), ("document:b", "viewer"), ("folder:f", "viewer"),
    }  # fmt: skip
    # reaches: what each grant opens on its own
    assert {g.tuple_key: g.reaches for g in op.grants}["folder:f#viewer@agent:bot"] == 2
    # a wider window sees the old use too: document:a is needed again
    wide = env.over("agent:bot", window_days=120, limit=1)
    assert _grants(wide)["document:a#viewer@agent:bot"] == 1
    assert wide.revoke == ("document:b#viewer@agent:bot",)
    assert len(wide.unused) == 1 and wide.unused_total == 2


def test_two_grants_reaching_one_use_keep_one(env: Env) -> None:
    env.write(
        "document:d#viewer@agent:bot", "folder:f#viewer@agent:bot", "document:d#parent@folder:f"
    )
    env.clock.advance(99 * DAY)
    assert env.decide("agent:bot", "viewer", "document:d")
    op = env.over("agent:bot")
    assert _grants(op) == {"document:d#viewer@agent:bot": 1, "folder:f#viewer@agent:bot": 1}
    assert len(op.keep) == 1 and len(op.revoke) == 1
    assert set(op.keep) | set(op.revoke) == set(_grants(op))


def test_editor_grant_covers_a_viewer_use(env: Env) -> None:
    env.write("document:e#editor@agent:bot", "document:e#viewer@agent:bot")
    env.clock.advance(99 * DAY)
    assert env.check("agent:bot", "viewer", "document:e")
    op = env.over("agent:bot")
    assert len(op.keep) == 1  # either grant alone covers the viewer use
    # once the editor permission is used too, only the editor grant is needed
    res = access.batch_check(env.svc, SYSTEM, S, [BatchItem("agent:bot", "editor", "document:e")])
    assert res[0].allowed
    op = env.over("agent:bot")
    assert op.keep == ("document:e#editor@agent:bot",)
    assert op.revoke == ("document:e#viewer@agent:bot",)
    assert _grants(op) == {"document:e#editor@agent:bot": 2, "document:e#viewer@agent:bot": 1}


def test_group_membership_covers_use_through_a_folder(env: Env) -> None:
    env.write(
        "group:eng#member@agent:bot", "folder:g#viewer@group:eng#member",
        "document:g1#parent@folder:g", "document:x#viewer@agent:bot",
    )  # fmt: skip
    env.clock.advance(99 * DAY)
    assert env.decide("agent:bot", "viewer", "document:g1")
    op = env.over("agent:bot")
    assert op.keep == ("group:eng#member@agent:bot",)
    assert op.revoke == ("document:x#viewer@agent:bot",)
    assert _grants(op)["group:eng#member@agent:bot"] == 1


def test_intersection_needs_both_grants(env: Env) -> None:
    env.write(
        "document:s#approver@agent:bot", "document:s#signer@agent:bot",
        "document:t#signer@agent:bot",
    )  # fmt: skip
    env.clock.advance(99 * DAY)
    assert env.decide("agent:bot", "can_sign", "document:s")
    op = env.over("agent:bot")
    # neither grant alone reaches can_sign, but the use is lost without either
    assert _grants(op) == {
        "document:s#approver@agent:bot": 1,
        "document:s#signer@agent:bot": 1,
        "document:t#signer@agent:bot": 0,
    }
    assert op.keep == ("document:s#approver@agent:bot", "document:s#signer@agent:bot")
    assert op.revoke == ("document:t#signer@agent:bot",)


def test_expiring_and_conditional_grants(env: Env) -> None:
    now = env.clock.now()
    T.write_tuples(
        env.svc, SYSTEM, S,
        writes=[
            {"object": "document:x1", "relation": "viewer", "user": "agent:bot",
             "expires_at": now + 200 * DAY},
            {"object": "document:x2", "relation": "viewer", "user": "agent:bot",
             "expires_at": now + 200 * DAY},
            {"object": "document:old", "relation": "viewer", "user": "agent:bot",
             "expires_at": now + 10 * DAY},
            {"object": "document:k", "relation": "viewer", "user": "agent:bot",
             "condition": {"name": "in_hours"}},
            {"object": "document:k2", "relation": "viewer", "user": "agent:bot",
             "condition": {"name": "in_hours"}},
        ],
    )  # fmt: skip
    env.clock.advance(99 * DAY)
    assert env.decide("agent:bot", "viewer", "document:x1")
    d = decisions.decide(env.svc, SYSTEM, S, "agent:bot", "viewer", "document:k",
                         context={"hour": 10})  # fmt: skip
    assert d.allowed
    op = env.over("agent:bot")
    # the expired grant is no grant any more; the expiring ones carry their expiry
    assert set(_grants(op)) == {
        "document:x1#viewer@agent:bot", "document:x2#viewer@agent:bot",
        "document:k#viewer@agent:bot", "document:k2#viewer@agent:bot",
    }  # fmt: skip
    assert {g.tuple_key: g.expires_at for g in op.grants}["document:x1#viewer@agent:bot"] == (
        now + 200 * DAY
    )
    # the conditional grant was used under a context: checked without one it cannot be
    # decided, which counts as covering (kept: the conservative side)
    assert _grants(op)["document:k#viewer@agent:bot"] == 1
    assert op.keep == ("document:k#viewer@agent:bot", "document:x1#viewer@agent:bot")
    assert op.revoke == ("document:k2#viewer@agent:bot", "document:x2#viewer@agent:bot")
    env.apply("agent:bot", mode="revoke")
    assert env.tuples_of("agent:bot") == {
        "document:k#viewer@agent:bot", "document:x1#viewer@agent:bot",
        "document:old#viewer@agent:bot",  # expired, never a grant: left to gc_expired
    }  # fmt: skip


def test_use_as_an_actor_public_access_and_uncovered(env: Env) -> None:
    svc = env.svc
    env.write(
        "document:h#viewer@human:alice", "document:h#viewer@agent:bot",
        "document:pub#viewer@agent:*", "document:gone#viewer@agent:bot",
    )  # fmt: skip
    env.clock.advance(99 * DAY)
    D.create_delegation(
        svc, SYSTEM, S, delegator="human:alice", delegate="agent:bot",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        expires_at=env.clock.now() + 3600,
    )  # fmt: skip
    # the agent acts for alice: a use of the agent's own grant too
    assert env.decide("human:alice", "viewer", "document:h", actors=("agent:bot",))
    assert env.decide("agent:bot", "viewer", "document:pub")  # public: no grant needed
    assert env.decide("agent:bot", "viewer", "document:gone")
    T.write_tuples(svc, SYSTEM, S, deletes=["document:gone#viewer@agent:bot"])
    op = env.over("agent:bot")
    assert _used(op) == {("document:h", "viewer"): 1, ("document:pub", "viewer"): 1}
    assert [(u.object, u.relation) for u in op.uncovered] == [("document:gone", "viewer")]
    assert op.keep == ("document:h#viewer@agent:bot",) and op.revoke == ()
    # and alice's own view counts for alice; her owner tuple on the agent is no grant
    alice = env.over("human:alice")
    assert _used(alice) == {("document:h", "viewer"): 1}
    assert set(_grants(alice)) == {"document:h#viewer@human:alice"}
    assert ("agent:bot", "owner") in {(u.object, u.relation) for u in alice.unused}


def test_use_as_the_second_actor_of_a_chain(env: Env) -> None:
    """human:carol → agent:bot → agent:helper: the helper's use is found among the
    decisions of the chain's subject (a delegator two hops up)."""
    svc = env.svc
    I.create_identity(svc, SYSTEM, S, "agent", "helper", owners=["human:alice"])
    env.write(
        "document:c2#viewer@human:carol", "document:c2#viewer@agent:bot",
        "document:c2#viewer@agent:helper", "document:spare#viewer@agent:helper",
    )  # fmt: skip
    env.clock.advance(99 * DAY)
    exp = env.clock.now() + 3600
    scope = [{"actions": ["viewer"], "resource": "document:*"}]
    root = D.create_delegation(svc, SYSTEM, S, delegator="human:carol", delegate="agent:bot",
                               scope=scope, expires_at=exp, max_depth=1)  # fmt: skip
    D.create_delegation(svc, SYSTEM, S, delegator="agent:bot", delegate="agent:helper",
                        scope=scope, expires_at=exp, parent_id=root.id)  # fmt: skip
    assert env.decide("human:carol", "viewer", "document:c2", actors=("agent:bot", "agent:helper"))
    op = env.over("agent:helper")
    assert _used(op) == {("document:c2", "viewer"): 1}
    assert op.revoke == ("document:spare#viewer@agent:helper",)
    assert _used(env.over("agent:bot")) == {("document:c2", "viewer"): 1}


def test_redacted_ledger_fields_still_match(
    storage_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    kp = _open(storage_url, clock, tmp_path, ledger_hmac_fields="subject,resource,action")
    try:
        env = Env(kp, clock)
        _setup(env)
        env.write("document:r#viewer@agent:bot", "document:q#viewer@agent:bot")
        env.clock.advance(99 * DAY)
        assert env.decide("agent:bot", "viewer", "document:r")
        assert env.check("agent:bot", "viewer", "document:r")
        rows = env.svc.storage.ledger_usage(S, since=0, until=NOW, types=P.DECISION_TYPES)
        assert rows and all(
            str(r.subject).startswith("hmac-sha256:") and str(r.resource).startswith("hmac-")
            and str(r.action).startswith("hmac-")
            for r in rows
        )  # fmt: skip
        op = env.over("agent:bot")
        assert _used(op) == {("document:r", "viewer"): 2}
        assert op.revoke == ("document:q#viewer@agent:bot",)
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def test_bad_input(env: Env) -> None:
    for bad in ("agent", "group:eng#member", "agent:*", 5):
        with pytest.raises(ValidationError):
            env.over(bad)  # type: ignore[arg-type]
    for days in (0, 3651, True, 1.5):
        with pytest.raises(ValidationError):
            env.over("agent:bot", window_days=days)
    with pytest.raises(ValidationError):
        env.apply("agent:bot", mode="delete")
    with pytest.raises(ValidationError):
        env.apply("agent:bot", mode="revoke", expected=["not a tuple"])


# ------------------------------------------------------------------------------ applying


def _two_grants_one_used(env: Env) -> None:
    env.write(
        "document:u#viewer@agent:bot", "document:v#viewer@agent:bot",
        "document:w#editor@agent:bot",
    )  # fmt: skip
    env.clock.advance(99 * DAY)
    assert env.decide("agent:bot", "viewer", "document:u")


def test_apply_as_revocations(env: Env) -> None:
    _two_grants_one_used(env)
    op = env.over("agent:bot")
    assert op.revoke == ("document:v#viewer@agent:bot", "document:w#editor@agent:bot")
    done = env.apply("agent:bot", mode="revoke", expected=list(reversed(op.revoke)))
    assert done.mode == "revoke" and done.tuples == op.revoke and done.review_id is None
    assert env.tuples_of("agent:bot") == {"document:u#viewer@agent:bot"}
    assert not env.check("agent:bot", "viewer", "document:v")
    (written,) = env.events("tuples.written")[-1:]
    assert {d["object"] for d in written.details["deleted"]} == {"document:v", "document:w"}
    (applied,) = env.events("privilege.applied")
    assert applied.subject == "agent:bot" and applied.action == "revoke"
    assert applied.details["tuples"] == list(op.revoke)
    assert applied.details["revision"] == done.revision == written.revision
    assert applied.details["window"] == {"since": done.since, "until": done.until}
    assert applied.seq == written.seq + 1  # the change first, then the application
    # applied again: the recommendation now revokes nothing
    with pytest.raises(NothingToApplyError):
        env.apply("agent:bot", mode="revoke")
    assert P.PrivilegeApplied.from_dict(done.to_dict()) == done


def test_apply_as_a_review_campaign(env: Env) -> None:
    _two_grants_one_used(env)
    done = env.apply("agent:bot", reviewer="human:carol", due_at=NOW + 7 * DAY)
    assert done.mode == "review" and done.revision is None and done.review_id
    report = R.review_report(env.svc, SYSTEM, S, done.review_id)
    assert [f"{i.object}#{i.relation}@{i.user}" for i in report.items] == list(done.tuples)
    assert done.tuples == ("document:v#viewer@agent:bot", "document:w#editor@agent:bot")
    assert all(i.reviewers == ("human:carol",) for i in report.items)
    c = report.campaign
    assert c.filter.user == "agent:bot" and c.filter.tuples == done.tuples
    assert c.filter.to_json()["tuples"] == list(done.tuples)
    assert len(env.tuples_of("agent:bot")) == 3  # nothing revoked yet
    (applied,) = env.events("privilege.applied")
    assert applied.details["review_id"] == done.review_id and applied.action == "review"
    # the reviewer revokes one, closing applies it
    R.decide_review_item(env.svc, SYSTEM, S, done.review_id, 1, "revoke", reviewer="human:carol")
    R.close_review(env.svc, SYSTEM, S, done.review_id)
    assert "document:v#viewer@agent:bot" not in env.tuples_of("agent:bot")


def test_changed_recommendation_is_refused_with_nothing_written(env: Env) -> None:
    _two_grants_one_used(env)
    seen = env.over("agent:bot").revoke
    assert env.decide("agent:bot", "viewer", "document:v")  # used meanwhile
    before = env.tuples_of("agent:bot")
    for mode in ("revoke", "review"):
        with pytest.raises(RecommendationChangedError) as err:
            env.apply("agent:bot", mode=mode, expected=list(seen))
        assert err.value.details["current"] == ["document:w#editor@agent:bot"]
    assert env.tuples_of("agent:bot") == before
    assert R.list_reviews(env.svc, SYSTEM, S).items == []
    assert env.events("privilege.applied") == []


def test_nothing_to_apply(env: Env) -> None:
    env.write("document:n#viewer@agent:bot")
    env.clock.advance(99 * DAY)
    assert env.decide("agent:bot", "viewer", "document:n")
    for mode in ("revoke", "review"):
        with pytest.raises(NothingToApplyError):
            env.apply("agent:bot", mode=mode)
    assert R.list_reviews(env.svc, SYSTEM, S).items == []


def test_permission_denied_for_a_reader(env: Env) -> None:
    _two_grants_one_used(env)
    _, secret = create_key(env.svc, SYSTEM, owner="human:carol", roles=["reader"])
    reader = authenticate(env.svc, secret)
    with pytest.raises(PermissionDeniedError):
        P.over_privilege(env.svc, reader, S, "agent:bot")
    with pytest.raises(PermissionDeniedError):
        env.apply("agent:bot", reader, mode="revoke")
    with pytest.raises(PermissionDeniedError):
        P.agents_exceeding_owners(env.svc, reader, S)
    # a writer reads posture and revokes, but may not open review campaigns
    _, secret = create_key(env.svc, SYSTEM, owner="human:carol", roles=["writer"])
    writer = authenticate(env.svc, secret)
    assert P.over_privilege(env.svc, writer, S, "agent:bot").revoke
    with pytest.raises(PermissionDeniedError):
        env.apply("agent:bot", writer, mode="review")
    assert len(env.tuples_of("agent:bot")) == 3
    env.apply("agent:bot", writer, mode="revoke")
    assert env.tuples_of("agent:bot") == {"document:u#viewer@agent:bot"}


# ------------------------------------------------------------------------------ exceeding


def test_agents_exceeding_an_owner_and_a_delegator(env: Env) -> None:
    svc = env.svc
    I.create_identity(svc, SYSTEM, S, "agent", "helper", owners=["human:alice"])
    I.create_identity(svc, SYSTEM, S, "agent", "teamed", owners=["group:eng#member"])
    env.write(
        "document:a#viewer@human:alice", "document:a#viewer@agent:helper",  # within
        "document:a#viewer@agent:bot", "document:secret#editor@agent:bot",  # bot exceeds
        "document:b#viewer@human:carol",
        "document:g#viewer@group:eng#member", "document:g#viewer@agent:teamed",
        "document:z#viewer@agent:teamed",
    )  # fmt: skip
    d = D.create_delegation(
        svc, SYSTEM, S, delegator="human:carol", delegate="agent:helper",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        expires_at=env.clock.now() + 3600,
    )  # fmt: skip
    found = P.exceeding(svc, S)
    got = {(e.agent, e.relationship, e.principal): e for e in found}
    assert set(got) == {
        ("agent:bot", "owner", "human:alice"),
        ("agent:helper", "delegator", "human:carol"),
        ("agent:teamed", "owner", "group:eng#member"),
    }
    bot = got[("agent:bot", "owner", "human:alice")]
    assert {(p.object, p.relation) for p in bot.excess} == {
        ("document:secret", "editor"), ("document:secret", "viewer"),
    }  # fmt: skip
    assert bot.excess_total == 2
    helper = got[("agent:helper", "delegator", "human:carol")]
    assert {(p.object, p.relation) for p in helper.excess} == {("document:a", "viewer")}
    assert helper.delegation_id == d.id
    assert {
        (p.object, p.relation) for p in got[("agent:teamed", "owner", "group:eng#member")].excess
    } == {("document:z", "viewer")}
    assert [e.agent for e in found] == sorted(e.agent for e in found)
    # paged through the operation; one agent; limit
    page1 = P.agents_exceeding_owners(svc, SYSTEM, S, page_size=2)
    assert len(page1.items) == 2 and page1.continuation_token
    page2 = P.agents_exceeding_owners(
        svc, SYSTEM, S, page_size=2, continuation_token=page1.continuation_token
    )
    assert page2.continuation_token is None
    assert [*page1.items, *page2.items] == found
    one = P.agents_exceeding_owners(svc, SYSTEM, S, agent="agent:bot", limit=1).items
    assert len(one) == 1 and len(one[0].excess) == 1 and one[0].excess_total == 2
    with pytest.raises(InvalidContinuationToken):
        P.agents_exceeding_owners(svc, SYSTEM, S, agent="agent:bot",
                                  continuation_token=page1.continuation_token)  # fmt: skip
    # the delegation revoked and carol given what helper has: helper is within again
    D.revoke_delegation(svc, SYSTEM, S, d.id)
    assert not [e for e in P.exceeding(svc, S) if e.agent == "agent:helper"]
    # a suspended owner is not compared with (posture reports that on its own)
    I.suspend_identity(svc, SYSTEM, S, "human:alice")
    assert not [e for e in P.exceeding(svc, S) if e.agent == "agent:bot"]


def test_exceeding_a_wide_agent_compares_listings(env: Env) -> None:
    # more than a few entries: the owner's access is listed per type and relation (once,
    # shared by every agent it owns) rather than checked entry by entry
    svc = env.svc
    I.create_identity(svc, SYSTEM, S, "agent", "twin", owners=["human:alice"])
    docs = [f"document:big-{i}" for i in range(80)]
    env.write(*(f"{d}#parent@folder:big" for d in docs))
    env.write(
        "folder:big#viewer@human:alice", "folder:big#editor@agent:bot",
        "folder:big#viewer@agent:twin", "document:own#viewer@agent:twin",
    )  # fmt: skip
    got = {(e.agent, e.principal): e for e in P.exceeding(svc, S, limit=1000)}
    assert set(got) == {("agent:bot", "human:alice"), ("agent:twin", "human:alice")}
    bot = got[("agent:bot", "human:alice")]
    assert {(p.object, p.relation) for p in bot.excess} == {
        *((d, "editor") for d in docs), ("folder:big", "editor"),
    }  # fmt: skip
    assert bot.excess_total == 81
    assert [(p.object, p.relation) for p in got[("agent:twin", "human:alice")].excess] == [
        ("document:own", "viewer")
    ]


def test_a_decision_at_the_reports_instant_is_use(tmp_path: Path) -> None:
    """The window includes its end: with a fixed clock (or a report right after the
    decision) the decision recorded at ``now`` counts as use, and its grant is kept."""
    clock = FixedClock(1_800_000_000.0)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'kp.db'}", poll_interval=0.0)
    with Keyplane.open(settings=settings, clock=clock) as kp:
        kp.write_model(
            "model\n  schema 1.1\ntype human\ntype agent\n  relations\n    define owner: [human]\n"
            "type document\n  relations\n    define viewer: [human, agent]\n"
        )
        kp.create_identity("human", "anne")
        kp.create_identity("agent", "p", owners=["human:anne"])
        kp.write_tuples(["document:a#viewer@agent:p", "document:b#viewer@agent:p"])
        assert kp.decide("agent:p", "viewer", "document:a").allowed
        op = kp.over_privilege("agent:p", window_days=1)
        assert [(u.object, u.relation, u.uses) for u in op.used] == [("document:a", "viewer", 1)]
        assert op.until == clock.now()
        assert op.keep == ("document:a#viewer@agent:p",)
        assert op.revoke == ("document:b#viewer@agent:p",)

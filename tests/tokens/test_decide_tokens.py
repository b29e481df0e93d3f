"""A bearer token as the decision's input (issue 6 §5), in process on SQLite and
PostgreSQL: a token from a human → agent (→ sub-agent) delegation decides like the
explicit chain; revoking the token, a token it was exchanged from, the delegation, a
parent delegation or the client credential, or suspending an agent, denies the next
decision before the token expires; expired, forged and wrong-audience tokens deny; scopes
narrow; what the request says beside a token must agree; the ledger keeps the jti, never
the token. Tokens are minted by engineer B's service functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from decide_env import MODEL, TokenStore, build, claims_of, wait_until

from keyplane.clock import FixedClock
from keyplane.config import Settings
from keyplane.errors import ValidationError
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.policy.decide import Decision
from keyplane.secrets import generate_master_key
from keyplane.service import credentials, delegations, identities, models, policies, stores
from keyplane.service.context import Services
from keyplane.service.decisions import DecideItem, decide, decide_batch
from keyplane.service.signing_keys import published_jwks
from keyplane.service.tokens import revoke_token_id

R = "document:roadmap"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def env(storage_url: str, clock: FixedClock) -> Iterator[TokenStore]:
    settings = Settings(
        database_url=storage_url, poll_interval=0.0, master_key=generate_master_key()
    )
    svc = Services.open(settings, clock=clock)
    try:
        info = stores.create_store(svc, _admin(), "tokens")
        yield build(svc, info.id)
    finally:
        svc.close()


def _admin() -> Any:
    from keyplane.service.auth import Caller

    return Caller.system_caller()


def ask(env: TokenStore, token: str | None, resource: str = R, **kw: Any) -> Decision:
    subject = kw.pop("subject", None)
    return decide(env.svc, env.admin, env.store, subject, "viewer", resource, token=token, **kw)


def events(env: TokenStore) -> list[LedgerEvent]:
    return list(
        env.svc.storage.read_events(env.store, filters=EventFilter(types=("decision.evaluate",)))
    )


def event_of(env: TokenStore, d: Decision) -> LedgerEvent:
    found = [e for e in events(env) if e.id == d.decision_id]
    assert len(found) == 1
    return found[0]


# ------------------------------------------------------------------------------ allowed


def test_a_delegated_token_decides_like_the_explicit_chain(env: TokenStore) -> None:
    t1 = env.t1()
    c = claims_of(t1)
    assert c["sub"] == "human:alice" and c["act"] == {"sub": "agent:planner"}
    d = ask(env, t1)
    assert d.allowed and d.code == "allowed", d
    assert d.delegation_ids == (env.delegation["planner"],)
    explicit = decide(env.svc, env.admin, env.store, "human:alice", "viewer", R,
                      actors=["agent:planner"], purpose="planning")  # fmt: skip
    assert explicit.allowed and explicit.delegation_ids == d.delegation_ids
    # the sub-agent's token: worker for planner for alice
    t2 = env.t2(t1)
    assert claims_of(t2)["act"] == {"sub": "agent:worker", "act": {"sub": "agent:planner"}}
    d2 = ask(env, t2)
    assert d2.allowed, d2
    assert d2.delegation_ids == (env.delegation["planner"], env.delegation["worker"])
    # and a denial is the same denial: the worker cannot view q3 itself (no confused deputy)
    denied = ask(env, t2, "document:q3")
    same = decide(env.svc, env.admin, env.store, "human:alice", "viewer", "document:q3",
                  actors=["agent:planner", "agent:worker"], purpose="planning")  # fmt: skip
    assert not denied.allowed and denied.code == same.code == "actor_lacks_permission"
    assert denied.reason == same.reason


def test_the_event_keeps_the_jti_never_the_token(env: TokenStore) -> None:
    t2 = env.t2()
    d = ask(env, t2)
    e = event_of(env, d)
    assert e.subject == "human:alice"
    assert e.actor_chain == ("agent:planner", "agent:worker")
    assert e.purpose == "planning"
    assert e.details["token"] == {"jti": claims_of(t2)["jti"], "client_id": "agent:worker"}
    assert "human:alice" in e.details["identities"]
    bad = ask(env, t2[:-4] + ("AAAA" if not t2.endswith("AAAA") else "BBBB"))
    for ev in (e, event_of(env, bad)):
        text = json.dumps(ev.to_dict(), default=str)
        assert t2 not in text and t2.split(".")[2] not in text


def test_client_credentials_token_decides_for_the_agent_itself(env: TokenStore) -> None:
    own = env.own_token("agent:planner")
    d = ask(env, own, "document:q3")
    assert d.allowed, d
    assert event_of(env, d).subject == "agent:planner"
    assert event_of(env, d).actor_chain == ()


# ------------------------------------------------------------------------------ revoked


def _revoke_token(env: TokenStore, t1: str, t2: str) -> str:
    revoke_token_id(env.svc, env.admin, env.store, claims_of(t2)["jti"])
    return "token_revoked"


def _revoke_parent_token(env: TokenStore, t1: str, t2: str) -> str:
    revoke_token_id(env.svc, env.admin, env.store, claims_of(t1)["jti"])
    return "parent_token_revoked"


def _revoke_delegation(env: TokenStore, t1: str, t2: str) -> str:
    delegations.revoke_delegation(env.svc, env.admin, env.store, env.delegation["worker"])
    return "delegation_revoked"


def _revoke_parent_delegation(env: TokenStore, t1: str, t2: str) -> str:
    # (revoking the parent revokes the child with it, in the same transaction)
    delegations.revoke_delegation(env.svc, env.admin, env.store, env.delegation["planner"])
    return "delegation_revoked"


def _revoke_credential(env: TokenStore, t1: str, t2: str) -> str:
    credentials.revoke_credential(env.svc, env.admin, env.store, env.credential["agent:worker"])
    return "credential_revoked"


def _revoke_upstream_credential(env: TokenStore, t1: str, t2: str) -> str:
    cred = env.credential["agent:planner"]
    credentials.revoke_credential(env.svc, env.admin, env.store, cred)
    return "credential_revoked"


def _suspend_agent(env: TokenStore, t1: str, t2: str) -> str:
    identities.suspend_identity(env.svc, env.admin, env.store, "agent:worker")
    return "identity_suspended"


def _suspend_upstream_agent(env: TokenStore, t1: str, t2: str) -> str:
    identities.suspend_identity(env.svc, env.admin, env.store, "agent:planner")
    return "identity_suspended"


@pytest.mark.parametrize(
    "revoke",
    [
        _revoke_token,
        _revoke_parent_token,
        _revoke_delegation,
        _revoke_parent_delegation,
        _revoke_credential,
        _revoke_upstream_credential,
        _suspend_agent,
        _suspend_upstream_agent,
    ],
    ids=lambda f: f.__name__.lstrip("_"),
)
def test_revocation_denies_the_next_decision_before_expiry(
    env: TokenStore, clock: FixedClock, revoke: Any
) -> None:
    t1 = env.t1()
    t2 = env.t2(t1)
    assert ask(env, t2).allowed
    clock.advance(1)
    reason = revoke(env, t1, t2)
    assert clock.now() < claims_of(t2)["exp"]  # long before it expires
    d = ask(env, t2)
    assert not d.allowed and d.code == "token_invalid", d
    assert d.reason["reason"] == reason and d.reason["jti"] == claims_of(t2)["jti"]
    assert d.requestable is False and d.delegation_ids == ()
    e = event_of(env, d)
    assert e.outcome == "deny" and e.reasons == ("token_invalid",)
    assert e.details["token"] == {
        "verified": False,
        "reason": reason,
        "jti": claims_of(t2)["jti"],
    }


# ------------------------------------------------------------------------------ invalid


def test_an_expired_token_denies(env: TokenStore, clock: FixedClock) -> None:
    t1 = env.t1()
    assert ask(env, t1).allowed
    clock.set(claims_of(t1)["exp"] + 31)  # past the verifier's leeway
    d = ask(env, t1)
    assert d.code == "token_invalid" and d.reason["reason"] == "expired"
    assert "expired" in d.reason_user


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forgeries(env: TokenStore, good: str) -> dict[str, str]:
    head, body, sig = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    claims = claims_of(good)
    widened = _b64(json.dumps({**claims, "sub": "human:bob"}).encode())
    none = _b64(json.dumps({**header, "alg": "none"}).encode())
    jwk = next(k for k in published_jwks(env.svc, env.store) if k["kid"] == header["kid"])
    public = json.dumps(jwk).encode()  # what an attacker has: the published key
    hs_head = _b64(json.dumps({**header, "alg": "HS256"}).encode())
    mac = hmac.new(public, f"{hs_head}.{body}".encode(), hashlib.sha256).digest()
    hs256 = f"{hs_head}.{body}.{_b64(mac)}"  # PyJWT itself refuses to build this one
    own_key = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                         headers={"kid": header["kid"], "typ": "at+jwt"})  # fmt: skip
    return {
        "tampered payload": f"{head}.{widened}.{sig}",
        "alg none": f"{none}.{body}.",
        "signed by another key with the store's kid": own_key,
        "unknown kid": jwt.encode(
            claims,
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": "nope", "typ": "at+jwt"},
        ),
        "HS256 keyed with the store's public key": hs256,
        "not a JWT": "not-a-token",
        "the IdP's token": env.idp_token(),
    }


FORGERY_REASONS = {
    "tampered payload": "bad_signature",
    "alg none": "alg_not_allowed",
    "signed by another key with the store's kid": "bad_signature",
    "unknown kid": "unknown_kid",
    "HS256 keyed with the store's public key": "alg_not_allowed",
    "not a JWT": "malformed",
    "the IdP's token": "wrong_typ",
}


def test_forged_tokens_deny_and_never_raise(env: TokenStore) -> None:
    good = env.t1()
    forged_set = _forgeries(env, good)
    assert set(forged_set) == set(FORGERY_REASONS)
    for name, forged in forged_set.items():
        d = ask(env, forged)
        assert not d.allowed and d.code == "token_invalid", (name, d)
        assert d.reason["conjunct"] == "token", name
        assert d.reason["reason"] == FORGERY_REASONS[name], (name, d.reason)
        e = event_of(env, d)
        assert e.details["token"]["verified"] is False, name
        assert e.subject is None and "identities" not in e.details, name
    # a tampered token names the jti it claims (for the ledger), not the subject it claims
    d = ask(env, _forgeries(env, good)["tampered payload"])
    assert d.reason["jti"] == claims_of(good)["jti"]


def test_a_token_of_another_store_denies(env: TokenStore) -> None:
    other = stores.create_store(env.svc, env.admin, "other").id
    models.write_model(env.svc, env.admin, other, MODEL)
    d = decide(env.svc, env.admin, other, None, "viewer", R, token=env.t1())
    assert d.code == "token_invalid"


def test_audience(env: TokenStore) -> None:
    rs = "https://docs.example.com"
    for_rs = env.t1(audience=[rs])
    assert claims_of(for_rs)["aud"] == [rs]
    # obtained for a resource server: not usable at the decision point without naming it
    d = ask(env, for_rs)
    assert d.code == "token_invalid" and d.reason["reason"] == "wrong_audience"
    assert ask(env, for_rs, token_audience=rs).allowed
    d = ask(env, for_rs, token_audience="https://other.example.com")
    assert d.code == "token_invalid" and d.reason["reason"] == "wrong_audience"
    # a token obtained for Keyplane names its issuer; naming another audience refuses it
    plain = env.t1()
    assert ask(env, plain).allowed
    assert ask(env, plain, token_audience=rs).code == "token_invalid"


# ------------------------------------------------------------------------------ scope


def test_resource_scopes_narrow_the_decision(env: TokenStore) -> None:
    narrow = env.t1(scope=f"{R}#viewer")
    assert ask(env, narrow).allowed
    d = ask(env, narrow, "document:q3")
    assert not d.allowed and d.code == "token_scope", d
    assert d.reason["scope"] == [f"{R}#viewer"] and not d.requestable
    # a type-wide scope covers every document; an opaque scope alongside changes nothing
    wide = env.t1(scope="document:*#viewer profile")
    assert ask(env, wide, "document:q3").allowed
    assert event_of(env, ask(env, narrow)).details["token"]["scope"] == [f"{R}#viewer"]


# ------------------------------------------------------------------------------ agreement


def test_what_the_request_says_beside_the_token_must_agree(env: TokenStore) -> None:
    t2 = env.t2()
    chain = ["agent:planner", "agent:worker"]
    agreeing = ask(env, t2, subject="human:alice", actors=chain, purpose="planning",
                   delegation_id=env.delegation["worker"])  # fmt: skip
    assert agreeing.allowed
    for kw in (
        {"subject": "human:bob"},
        {"subject": "agent:worker"},
        {"actors": ["agent:worker"]},
        {"actors": list(reversed(chain))},
        {"purpose": "marketing"},
        {"delegation_id": env.delegation["planner"]},
    ):
        with pytest.raises(ValidationError) as got:
            ask(env, t2, **kw)
        assert got.value.details["reason"] == "token_mismatch", kw
    with pytest.raises(ValidationError):
        decide(env.svc, env.admin, env.store, None, "viewer", R)  # neither subject nor token
    with pytest.raises(ValidationError):
        ask(env, "")
    with pytest.raises(ValidationError):
        ask(env, None, subject="human:alice", token_audience="x")  # an audience, no token


# ------------------------------------------------------------------------------ batch


def test_batch_items_with_tokens(env: TokenStore) -> None:
    t1, t2 = env.t1(), env.t2()
    items = [
        DecideItem(None, "viewer", R, token=t1, correlation_id="t1"),
        DecideItem(None, "viewer", "document:q3", token=t2, correlation_id="t2-q3"),
        DecideItem(None, "viewer", R, token=t2 + "x", correlation_id="bad"),
        DecideItem("human:bob", "viewer", R, token=t1, correlation_id="mismatch"),
        DecideItem(
            "human:alice",
            "viewer",
            R,
            actors=["agent:planner"],
            purpose="planning",
            correlation_id="explicit",
        ),
    ]
    got = {d.correlation_id: d for d in decide_batch(env.svc, env.admin, env.store, items)}
    assert got["t1"].allowed
    assert got["t2-q3"].code == "actor_lacks_permission"
    assert got["bad"].code == "token_invalid" and got["bad"].error is None
    assert got["mismatch"].error is not None and got["mismatch"].code == "validation_error"
    assert got["explicit"].allowed
    assert t2 not in repr(items[2]) and "<redacted>" in repr(items[2])
    # deny_on_first_deny stops at the invalid token
    short = decide_batch(env.svc, env.admin, env.store, items, semantic="deny_on_first_deny")
    assert [d.correlation_id for d in short] == ["t1", "t2-q3"]


# ------------------------------------------------------------------------------ two processes


def test_revocation_reaches_another_process(
    env: TokenStore, storage_url: str, clock: FixedClock
) -> None:
    """A second Services on the same database (as another process would be, with the
    default poll interval): a revocation made by the first denies the second's decisions
    once it has polled — without anything else telling it (the time it takes is measured
    by bench/tokens.py, not asserted here)."""
    settings = Settings(database_url=storage_url, master_key=env.svc.settings.master_key)
    assert settings.poll_interval <= 0.5
    other = Services.open(settings, clock=clock)  # the tokens' time (the polls are real)
    try:
        t2 = env.t2()
        assert decide(other, env.admin, env.store, None, "viewer", R, token=t2).allowed
        delegations.revoke_delegation(env.svc, env.admin, env.store, env.delegation["worker"])

        def denied() -> bool:
            d = decide(other, env.admin, env.store, None, "viewer", R, token=t2)
            return d.code == "token_invalid"

        assert wait_until(denied, timeout=10.0)
        d = decide(other, env.admin, env.store, None, "viewer", R, token=t2)
        assert d.reason["reason"] == "delegation_revoked"
    finally:
        other.close()


def test_scopes_and_the_store_action_map(env: TokenStore) -> None:
    """A resource scope names an action: it covers a request for that action, or for an
    action the store maps to the relation it names."""
    policies.update_store_policy(env.svc, env.admin, env.store, actions={"read": "viewer"})
    delegations.create_delegation(
        env.svc, env.admin, env.store, delegator="human:alice", delegate="agent:planner",
        scope=[{"actions": ["read"], "resource": "document:*"}], purposes=["planning"],
        expires_at=env.svc.clock.now() + 600,
    )  # fmt: skip
    by_relation = env.t1(scope=f"{R}#viewer")
    assert decide(env.svc, env.admin, env.store, None, "read", R, token=by_relation).allowed
    by_action = env.t1(scope=f"{R}#read")
    assert decide(env.svc, env.admin, env.store, None, "read", R, token=by_action).allowed
    d = decide(env.svc, env.admin, env.store, None, "viewer", R, token=by_action)
    assert d.code == "token_scope"  # the scope names "read", not the relation asked for

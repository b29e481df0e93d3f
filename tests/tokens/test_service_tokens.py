"""Access tokens through the service layer (keyplane.service.tokens), in process on SQLite
and PostgreSQL: client credentials, RFC 8693 exchange along a real human → agent → agent
delegation chain (the person's token from a trusted external issuer signed with PyJWT),
scope narrowing and widening, impersonation, may_act, every kind of revocation killing a
token at once, expiry by an injected clock, forgeries refused, and PyJWT (an independent
library) verifying the issued tokens against the store's published JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from keyplane import FixedClock, Settings
from keyplane.ledger.events import LedgerEvent
from keyplane.service import credentials as C
from keyplane.service import decisions, models, policies, signing_keys, stores
from keyplane.service import delegations as D
from keyplane.service import identities as I
from keyplane.service import tokens as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.credentials import AuthenticatedClient
from keyplane.service.refusals import flush_refusals
from keyplane.tokens.errors import OAuthError, TokenInvalid

S = "tok"
NOW = float(int(time.time()))  # near the real clock, which PyJWT checks exp and iat by
IDP = "https://idp.example"
IDP_AUD = "keyplane"  # the audience the IdP puts in the tokens it issues for Keyplane
URL = "https://kp.example/oauth2/token"
ME = Caller.system_caller()
ALICE, A, B = "human:alice", "agent:a", "agent:b"
MODEL = """\
model
  schema 1.1
type human
type agent
type document
  relations
    define viewer: [human, agent]
    define editor: [human, agent]
"""
VIEW_ALL = [{"actions": ["viewer"], "resource": "document:*"}]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Env:
    svc: Services
    clock: FixedClock
    idp_key: ed25519.Ed25519PrivateKey
    secrets: dict[str, str]
    creds: dict[str, str]
    d1: str  # alice -> a (one further hop)
    d2: str  # a -> b, derived from d1

    @property
    def iss(self) -> str:
        return T.token_issuer(self.svc, S)

    def client(self, node: str) -> AuthenticatedClient:
        return C.authenticate_client(
            self.svc, S, node, secret=self.secrets[node], token_endpoint_url=URL
        )

    def cc(self, node: str, **kw: Any) -> T.IssuedToken:
        return T.issue_client_credentials(self.svc, S, self.client(node), issuer=self.iss, **kw)

    def idp_token(self, sub: str = "alice", **claims: Any) -> str:
        body = {"iss": IDP, "sub": sub, "aud": IDP_AUD, "exp": int(self.clock.now()) + 600,
                "iat": int(self.clock.now()), **claims}  # fmt: skip
        return jwt.encode(body, self.idp_key, algorithm="EdDSA", headers={"kid": "idp-1"})

    def exchange(
        self, node: str, subject: str, *, actor: str | bool | None = True, **kw: Any
    ) -> T.IssuedToken:
        """``node`` exchanges ``subject``; ``actor`` True: with its own fresh cc token."""
        actor_token = self.cc(node).access_token if actor is True else actor or None
        return T.exchange_token(
            self.svc, S, self.client(node), issuer=self.iss, subject_token=subject,
            subject_token_type=T.TT_JWT if subject.count(".") == 2 else T.TT_ACCESS,
            actor_token=actor_token,
            actor_token_type=None if actor_token is None else T.TT_ACCESS, **kw,
        )  # fmt: skip

    def verify(self, token: str, **kw: Any) -> T.VerifiedToken:
        return T.verify_access_token(self.svc, S, token, issuer=self.iss, **kw)

    def dead(self, token: str, reason: str) -> None:
        with pytest.raises(TokenInvalid) as info:
            self.verify(token)
        assert info.value.reason == reason
        assert T.introspect_token(self.svc, S, token) == {"active": False}

    def events(self, type_: str) -> list[LedgerEvent]:
        self.svc.ledger.flush()
        return [e for e in self.svc.storage.read_events(S, limit=5000) if e.type == type_]


@pytest.fixture
def env(storage_url: str) -> Iterator[Env]:
    clock = FixedClock(NOW)
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    svc = Services.open(settings, clock=clock)
    try:
        stores.create_store(svc, ME, S, store_id=S)
        models.write_model(svc, ME, S, MODEL)
        I.create_identity(svc, ME, S, "human", "alice")
        I.create_identity(svc, ME, S, "agent", "a", owners=[ALICE])
        I.create_identity(svc, ME, S, "agent", "b", owners=[ALICE])
        from keyplane.service import tuples

        tuples.write_tuples(svc, ME, S, writes=[
            "document:q3#viewer@human:alice", "document:q3#viewer@agent:a",
            "document:q3#viewer@agent:b", "document:q3#editor@human:alice",
            "document:q3#editor@agent:a", "document:q3#editor@agent:b",
        ])  # fmt: skip
        secrets: dict[str, str] = {}
        creds: dict[str, str] = {}
        for node in (A, B):
            cred, secret = C.create_credential(svc, ME, S, node)
            assert secret is not None
            secrets[node], creds[node] = secret, cred.id
        idp_key = ed25519.Ed25519PrivateKey.generate()
        x = idp_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(x), "kid": "idp-1", "alg": "EdDSA"}
        policies.update_store_policy(
            svc, ME, S,
            trusted_issuers=[{"issuer": IDP, "jwks": {"keys": [jwk]}, "audience": IDP_AUD}],
        )  # fmt: skip
        d1 = D.create_delegation(svc, ME, S, delegator=ALICE, delegate=A, scope=VIEW_ALL,
                                 expires_at=NOW + 3000, max_depth=1)  # fmt: skip
        d2 = D.create_delegation(svc, ME, S, delegator=A, delegate=B, scope=VIEW_ALL,
                                 expires_at=NOW + 2000, parent_id=d1.id)  # fmt: skip
        yield Env(svc, clock, idp_key, secrets, creds, d1.id, d2.id)
    finally:
        try:
            stores.delete_store(svc, ME, S)
        finally:
            svc.close()


def _pyjwt(env: Env, token: str, audience: str | None = None) -> dict[str, Any]:
    """Verify with PyJWT against the published JWKS (as a resource server would)."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    keys = {k["kid"]: k for k in signing_keys.published_jwks(env.svc, S)}
    key = jwt.PyJWK(keys[header["kid"]])
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["EdDSA", "ES256"], audience=audience or env.iss,
        issuer=env.iss,
        # PyJWT checks exp, nbf and iat by the real clock; ours is the injected one
        leeway=abs(time.time() - env.clock.now()) + 5,
    )  # fmt: skip
    return claims


def _refused(error: str, reason: str) -> Any:
    class _Check:
        def __enter__(self) -> None:
            return None

        def __exit__(self, tp: Any, exc: Any, tb: Any) -> bool:
            assert isinstance(exc, OAuthError), f"expected OAuthError, got {exc!r}"
            assert (exc.error, exc.reason) == (error, reason), exc
            assert "reason" not in exc.response()
            return True

    return _Check()


# ------------------------------------------------------------------------------ issuing


def test_client_credentials_token(env: Env) -> None:
    t = env.cc(A, scope="document:q3#viewer api.read", purpose="reporting")
    assert t.expires_in == 300 and t.issued_token_type is None
    body = t.response()
    assert body == {"access_token": t.access_token, "token_type": "Bearer",
                    "expires_in": 300, "scope": "api.read document:q3#viewer"}  # fmt: skip
    claims = _pyjwt(env, t.access_token)
    assert claims == dict(t.claims)
    assert claims["sub"] == claims["client_id"] == A
    assert claims["aud"] == [env.iss] and claims["iss"] == "http://keyplane.invalid"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"] == int(NOW)
    assert claims["kp_creds"] == [env.creds[A]] and claims["kp_parents"] == []
    assert claims["purpose"] == "reporting" and "act" not in claims
    vt = env.verify(t.access_token)
    assert (vt.subject, vt.actors, vt.client_id, vt.delegation_id) == (A, (), A, None)
    assert vt.scope == frozenset({"document:q3#viewer", "api.read"})
    assert vt.allows_scope("viewer", "document:q3")
    assert not vt.allows_scope("editor", "document:q3")
    assert not vt.allows_scope("viewer", "document:other")
    # unrestricted without a scope
    assert env.verify(env.cc(A).access_token).scope is None
    # the ledger has the issuance, never the token
    (ev,) = env.events("token.issued")[:1]
    assert ev.caller == A and ev.subject == A and ev.action == "client_credentials"
    assert ev.outcome == "allow" and ev.details["jti"] == claims["jti"]
    assert ev.details["credential_id"] == env.creds[A]
    dump = json.dumps([e.to_dict() for e in env.events("token.issued")])
    assert t.access_token not in dump and t.access_token.split(".")[2] not in dump


def test_lifetime_limits(env: Env) -> None:
    policies.update_store_policy(env.svc, ME, S, access_token_seconds=120, token_audiences=[
        "https://api.example"])  # fmt: skip
    t = env.cc(A, audience=["https://api.example"])
    assert t.expires_in == 120 and t.claims["aud"] == ["https://api.example"]
    _pyjwt(env, t.access_token, audience="https://api.example")
    with _refused("invalid_target", "audience_not_allowed"):
        env.cc(A, audience=["https://evil.example"])
    with _refused("invalid_target", "resource_syntax"):
        env.cc(A, resource=["not a uri"])
    # a credential expiring sooner caps the token
    cred, secret = C.create_credential(env.svc, ME, S, A, expires_at=NOW + 50)
    assert secret is not None
    client = C.authenticate_client(env.svc, S, A, secret=secret, token_endpoint_url=URL)
    t2 = T.issue_client_credentials(env.svc, S, client, issuer=env.iss)
    assert t2.expires_in == 50 and t2.claims["kp_creds"] == [cred.id]
    with _refused("invalid_scope", "scope_syntax"):
        env.cc(A, scope='bad"scope')


def test_issuer_per_store(env: Env) -> None:
    assert T.token_issuer(env.svc, S) == "http://keyplane.invalid"
    assert T.token_issuer(env.svc, "other") == "http://keyplane.invalid/stores/other"
    assert T.token_issuer(env.svc, "other", "https://kp.example/") == (
        "https://kp.example/stores/other"
    )
    t = env.cc(A)
    with pytest.raises(TokenInvalid) as info:
        T.verify_access_token(env.svc, S, t.access_token, issuer="https://elsewhere")
    assert info.value.reason == "wrong_issuer"
    with pytest.raises(TokenInvalid) as info:
        env.verify(t.access_token, audience="https://api.example")
    assert info.value.reason == "wrong_audience"


# ------------------------------------------------------------------------------ exchange


def _chain(env: Env, **kw: Any) -> tuple[T.IssuedToken, T.IssuedToken]:
    """alice's IdP token → a (under d1) → b (under d2)."""
    t1 = env.exchange(A, env.idp_token(), **kw)
    t2 = env.exchange(B, t1.access_token)
    return t1, t2


def test_two_hop_exchange(env: Env) -> None:
    t1, t2 = _chain(env)
    c1 = _pyjwt(env, t1.access_token)
    assert c1["sub"] == ALICE and c1["act"] == {"sub": A} and c1["client_id"] == A
    assert c1["delegation_id"] == env.d1 and t1.issued_token_type == T.TT_ACCESS
    assert c1["kp_creds"] == [env.creds[A]]
    assert len(c1["kp_parents"]) == 1  # a's actor token (the IdP token is not ours)
    c2 = _pyjwt(env, t2.access_token)
    assert c2["sub"] == ALICE and c2["act"] == {"sub": B, "act": {"sub": A}}
    assert c2["delegation_id"] == env.d2 and c2["client_id"] == B
    assert c2["kp_creds"] == [env.creds[B], env.creds[A]]
    assert c1["jti"] in c2["kp_parents"] and set(c1["kp_parents"]) <= set(c2["kp_parents"])
    assert "scope" not in c2  # inherited: unrestricted
    vt = env.verify(t2.access_token)
    assert vt.subject == ALICE and vt.actors == (A, B) and vt.delegation_id == env.d2
    # the exchange's expiry: the delegation and the subject token bound it
    assert c2["exp"] <= c1["exp"] <= NOW + 300
    ev = env.events("token.issued")[-1]
    assert ev.action == "token_exchange" and ev.actor_chain == (A, B) and ev.subject == ALICE
    assert ev.details["delegation_id"] == env.d2 and c1["jti"] in ev.details["parents"]
    # the chain decides: alice through a and b may view q3
    dec = decisions.decide(env.svc, ME, S, None, "viewer", "document:q3",
                           token=t2.access_token)  # fmt: skip
    assert dec.allowed, dec
    # introspection (RFC 7662)
    info = T.introspect_token(env.svc, S, t2.access_token)
    assert info["active"] is True and info["sub"] == ALICE and info["client_id"] == B
    assert info["act"] == c2["act"] and info["jti"] == c2["jti"]


def test_exchange_refusals(env: Env) -> None:
    idp = env.idp_token()
    # b holds no delegation from alice
    with _refused("invalid_request", "delegation_missing"):
        env.exchange(B, idp)
    # a's token exchanged again by a: a -> a is no delegation
    t1 = env.exchange(A, idp)
    with _refused("invalid_request", "delegation_missing"):
        env.exchange(A, t1.access_token)
    # the actor token must be the client's own
    with _refused("invalid_request", "actor_mismatch"):
        env.exchange(B, t1.access_token, actor=env.cc(A).access_token)
    with _refused("invalid_request", "subject_malformed"):
        env.exchange(A, "not.a.token")
    with _refused("invalid_request", "subject_bad_signature"):
        env.exchange(
            A, t1.access_token[:-4] + ("AAAA" if t1.access_token[-4:] != "AAAA" else "BBBB")
        )
    with _refused("invalid_request", "unsupported_subject_token_type"):
        T.exchange_token(env.svc, S, env.client(A), issuer=env.iss, subject_token=idp,
                         subject_token_type="urn:x", actor_token=env.cc(A).access_token,
                         actor_token_type=T.TT_ACCESS)  # fmt: skip
    # an IdP token for someone not registered, or suspended
    with _refused("invalid_request", "subject_subject_unknown"):
        env.exchange(A, env.idp_token(sub="mallory"))
    # purpose fixed by the delegation, then by the subject token
    d = D.create_delegation(env.svc, ME, S, delegator=ALICE, delegate=B, scope=VIEW_ALL,
                            expires_at=NOW + 1000, purposes=["audit"])  # fmt: skip
    with _refused("invalid_request", "purpose_not_delegated"):
        env.exchange(B, idp, purpose="marketing")
    tb = env.exchange(B, idp, purpose="audit")
    assert tb.claims["purpose"] == "audit" and tb.claims["delegation_id"] == d.id
    # refusals are recorded (coalesced per client and reason), never with the token
    refused = env.events("token.refused")
    reasons = {(e.subject, e.reasons[0]) for e in refused}
    assert (B, "delegation_missing") in reasons and (A, "actor_mismatch") not in reasons
    assert (B, "actor_mismatch") in reasons and (A, "subject_bad_signature") in reasons
    assert all(e.outcome == "deny" and e.details["grant_type"] == T.GRANT_TOKEN_EXCHANGE
               for e in refused)  # fmt: skip
    n = len(refused)
    for _ in range(5):  # five more of one kind in the same second: counted, not recorded
        with _refused("invalid_request", "purpose_not_delegated"):
            env.exchange(B, idp, purpose="marketing")
    assert len(env.events("token.refused")) == n
    env.clock.advance(1.5)
    assert flush_refusals(env.svc) >= 1
    summary = [e for e in env.events("token.refused") if e.details.get("coalesced")]
    assert any(e.details["count"] == 5 and e.reasons == ("purpose_not_delegated",)
               for e in summary)  # fmt: skip
    assert idp not in json.dumps([e.to_dict() for e in env.events("token.refused")])


def test_subject_token_audience(env: Env) -> None:
    idp = env.idp_token()
    # a token meant for b (its node in aud) may be exchanged by b
    t1 = env.exchange(A, idp, audience=[B])
    assert t1.claims["aud"] == [B]
    env.exchange(B, t1.access_token)
    # one meant for a resource server may not be exchanged at all
    t_api = env.exchange(A, idp, audience=["https://api.example"])
    with _refused("invalid_request", "subject_audience"):
        env.exchange(B, t_api.access_token)


def test_an_idp_token_for_another_application_is_refused(env: Env) -> None:
    """Token confusion: the trusted IdP's token for ANOTHER application (its aud), or
    with no aud at all, is not a subject_token here; only one naming Keyplane's audience."""
    for aud in ("https://mail.example", ["https://mail.example", "x"], None):
        with _refused("invalid_request", "subject_wrong_audience"):
            env.exchange(A, env.idp_token(aud=aud) if aud else _no_aud(env))
    assert env.exchange(A, env.idp_token(aud=["x", IDP_AUD])).claims["sub"] == ALICE


def _no_aud(env: Env) -> str:
    body = {"iss": IDP, "sub": "alice", "exp": int(env.clock.now()) + 600}
    return jwt.encode(body, env.idp_key, algorithm="EdDSA", headers={"kid": "idp-1"})


def test_the_default_store_answers_to_both_issuer_names(env: Env) -> None:
    """The default store is served at <base> and at <base>/stores/<default>: a token names
    the issuer of the endpoint that issued it, and verifies, is exchanged and is revoked
    under either name; no other name (nor another store's path) is an alias."""
    root = env.iss
    path = f"{root}/stores/{S}"
    assert T.accepted_issuers(env.svc, S, root) == (root, path)
    assert T.accepted_issuers(env.svc, S, path) == (root, path)
    assert T.accepted_issuers(env.svc, "other", root) == (root,)
    t = T.issue_client_credentials(env.svc, S, env.client(A), issuer=path)
    assert t.claims["iss"] == path and t.claims["aud"] == [path]
    for name in (root, path):
        assert T.verify_access_token(env.svc, S, t.access_token, issuer=name).subject == A
        assert T.introspect_token(env.svc, S, t.access_token, issuer=name)["iss"] == path
    for other in ("https://elsewhere.example", f"{root}/stores/other", f"{path}/x"):
        with pytest.raises(TokenInvalid) as info:
            T.verify_access_token(env.svc, S, t.access_token, issuer=other)
        assert info.value.reason == "wrong_issuer"
    # exchanged at the root endpoint: its aud [path] is this issuer's
    ex = env.exchange(B, t.access_token)
    assert ex.claims["iss"] == root and ex.claims["act"] == {"sub": B}
    assert not T.revoke_token(env.svc, S, t.access_token, requester=A, issuer="https://x.example")
    assert T.revoke_token(env.svc, S, t.access_token, requester=A, issuer=root)
    with pytest.raises(TokenInvalid):
        T.verify_access_token(env.svc, S, ex.access_token, issuer=path)  # revoked with it


def test_pending_refusal_summaries_are_written_on_close(storage_url: str) -> None:
    clock = FixedClock(NOW)
    settings = Settings(database_url=storage_url, poll_interval=0.0)
    svc = Services.open(settings, clock=clock)
    try:
        stores.create_store(svc, ME, S, store_id=S)
        models.write_model(svc, ME, S, MODEL)
        I.create_identity(svc, ME, S, "human", "alice")
        I.create_identity(svc, ME, S, "agent", "a", owners=[ALICE])
        _, secret = C.create_credential(svc, ME, S, A)
        assert secret is not None
        client = C.authenticate_client(svc, S, A, secret=secret, token_endpoint_url=URL)
        for _ in range(3):
            with _refused("invalid_scope", "scope_syntax"):
                T.issue_client_credentials(svc, S, client, issuer="x", scope="a  b")
    finally:
        svc.close()
    svc = Services.open(settings, clock=clock)
    try:
        evs = [e for e in svc.storage.read_events(S, limit=100) if e.type == "token.refused"]
        assert [e.details["count"] for e in evs] == [1, 2]
        assert evs[1].details["coalesced"] is True and evs[0].caller == A
        assert evs[0].details["error"] == "invalid_scope"
        assert evs[0].action == "client_credentials"
    finally:
        try:
            stores.delete_store(svc, ME, S)
        finally:
            svc.close()


def test_scope_narrowing_and_widening(env: Env) -> None:
    idp = env.idp_token()
    t1 = env.exchange(A, idp, scope="document:*#viewer")
    assert t1.scope == "document:*#viewer"
    # narrower: one document
    t2 = env.exchange(B, t1.access_token, scope="document:q3#viewer")
    assert env.verify(t2.access_token).scope == frozenset({"document:q3#viewer"})
    # no scope: inherited
    assert env.exchange(B, t1.access_token).scope == "document:*#viewer"
    # wider than the subject token
    t_narrow = env.exchange(A, idp, scope="document:q3#viewer")
    with _refused("invalid_scope", "scope_widening"):
        env.exchange(B, t_narrow.access_token, scope="document:*#viewer")
    # not in the delegation's grants (the IdP token is unrestricted, the delegation is not)
    with _refused("invalid_scope", "scope_not_delegated"):
        env.exchange(A, idp, scope="document:q3#editor")
    # the decision enforces the token's resource scopes
    dec = decisions.decide(env.svc, ME, S, None, "viewer", "document:other",
                           token=t2.access_token)  # fmt: skip
    assert not dec.allowed


def test_impersonation(env: Env) -> None:
    idp = env.idp_token()
    with _refused("unauthorized_client", "impersonation_not_allowed"):
        env.exchange(A, idp, actor=None)
    policies.update_store_policy(env.svc, ME, S, allow_impersonation=True)
    t = env.exchange(A, idp, actor=None)
    c = _pyjwt(env, t.access_token)
    assert c["sub"] == ALICE and "act" not in c and "delegation_id" not in c
    assert c["client_id"] == A and c["kp_delegations"] == [env.d1]
    vt = env.verify(t.access_token)
    assert vt.actors == () and vt.delegation_id is None
    # still only under a delegation
    with _refused("invalid_request", "delegation_missing"):
        env.exchange(B, idp, actor=None)
    # the delegation it was allowed under still holds it
    D.revoke_delegation(env.svc, ME, S, env.d1)
    env.dead(t.access_token, "delegation_revoked")


def test_external_tokens_follow_the_store_policy(env: Env) -> None:
    idp = env.idp_token()
    env.exchange(A, idp)
    env.exchange(A, idp)  # the second time from the signature cache
    # the issuer is no longer trusted: the same token is refused at once
    policies.update_store_policy(env.svc, ME, S, trusted_issuers=[])
    with pytest.raises(OAuthError) as info:
        env.exchange(A, idp)
    assert info.value.error == "invalid_request" and info.value.reason.startswith("subject_")
    # a cached token still expires (the external issuer's 30 s leeway included)
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "idp-1", "alg": "EdDSA", "x": _b64(
        env.idp_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))}  # fmt: skip
    policies.update_store_policy(
        env.svc, ME, S,
        trusted_issuers=[{"issuer": IDP, "jwks": {"keys": [jwk]}, "audience": IDP_AUD}],
    )  # fmt: skip
    short = env.idp_token(exp=int(NOW) + 10)
    assert env.exchange(A, short).expires_in == 10
    env.clock.advance(41)
    with _refused("invalid_request", "subject_expired"):
        env.exchange(A, short)


def test_may_act(env: Env) -> None:
    with _refused("invalid_request", "may_act"):
        env.exchange(A, env.idp_token(may_act={"sub": B}))
    t = env.exchange(A, env.idp_token(may_act={"sub": A}))
    assert env.verify(t.access_token).actors == (A,)


def test_unacceptable_tokens_are_invalid_request(env: Env) -> None:
    """RFC 8693 §2.2.2: a subject_token or actor_token invalid for any reason or
    unacceptable by policy is ``invalid_request`` (the reason tells which); a
    client_credentials grant with nothing of a second left stays ``invalid_grant``."""
    t1 = env.exchange(A, env.idp_token(), purpose="audit")
    with _refused("invalid_request", "purpose_change"):
        env.exchange(B, t1.access_token, purpose="billing")
    assert env.exchange(B, t1.access_token).claims["purpose"] == "audit"
    # an IdP token past its exp but inside the 30 s leeway: it verifies, nothing is left
    with _refused("invalid_request", "expired"):
        env.exchange(A, env.idp_token(exp=int(NOW) - 5))
    with _refused("invalid_request", "actor_malformed"):
        env.exchange(A, env.idp_token(), actor="not.a.token")
    reasons = {e.reasons[0]: e.details["error"] for e in env.events("token.refused")}
    assert reasons["purpose_change"] == reasons["expired"] == "invalid_request"
    _, secret = C.create_credential(env.svc, ME, S, A, expires_at=NOW + 0.5)
    client = C.authenticate_client(env.svc, S, A, secret=secret, token_endpoint_url=URL)
    with _refused("invalid_grant", "expired"):
        T.issue_client_credentials(env.svc, S, client, issuer=env.iss)


# ------------------------------------------------------------------------------ revocation

KINDS = [
    "token", "token_id", "parent_token", "credential", "delegation", "parent_delegation",
    "suspension", "client_suspension",
]  # fmt: skip


def test_revocation_counts_whatever_the_database_clock_says(env: Env) -> None:
    """The service's clock (injected here, an hour behind the real one the storage would
    use) decides which revocations have expired — the storage never filters them by its own
    clock, or a process whose clock lags the database's would forget a live revocation
    (found by the full suite, whose fixed clock had drifted minutes behind real time)."""
    env.clock.set(NOW - 3600)
    mine, other = env.cc(A), env.cc(A)
    env.verify(mine.access_token)
    assert T.revoke_token(env.svc, S, mine.access_token, requester=A)
    env.dead(mine.access_token, "token_revoked")
    env.verify(other.access_token)


@pytest.mark.parametrize("kind", KINDS)
def test_revocation_kills_at_once(env: Env, kind: str) -> None:
    t1, t2 = _chain(env)
    own_b = env.cc(B)  # b's own token: unrelated to a's revocations
    env.verify(t2.access_token)  # verified (and cached) before the revocation
    survivors = [own_b.access_token]
    if kind == "token":
        assert T.revoke_token(env.svc, S, t2.access_token, requester=B)
        assert not T.revoke_token(env.svc, S, t2.access_token, requester=B)  # already
        env.dead(t2.access_token, "token_revoked")
        survivors.append(t1.access_token)
    elif kind == "token_id":
        T.revoke_token_id(env.svc, ME, S, str(t2.claims["jti"]), reason="leaked")
        env.dead(t2.access_token, "token_revoked")
        survivors.append(t1.access_token)
    elif kind == "parent_token":
        assert T.revoke_token(env.svc, S, t1.access_token, requester=A)
        env.dead(t1.access_token, "token_revoked")
        env.dead(t2.access_token, "parent_token_revoked")
    elif kind == "credential":
        C.revoke_credential(env.svc, ME, S, env.creds[A])
        env.dead(t1.access_token, "credential_revoked")
        env.dead(t2.access_token, "credential_revoked")
    elif kind == "delegation":
        D.revoke_delegation(env.svc, ME, S, env.d2)
        env.dead(t2.access_token, "delegation_revoked")
        survivors.append(t1.access_token)
    elif kind == "parent_delegation":
        D.revoke_delegation(env.svc, ME, S, env.d1)
        env.dead(t1.access_token, "delegation_revoked")
        env.dead(t2.access_token, "delegation_revoked")
    elif kind == "suspension":
        I.suspend_identity(env.svc, ME, S, ALICE)
        env.dead(t1.access_token, "identity_suspended")
        env.dead(t2.access_token, "identity_suspended")
    else:
        I.suspend_identity(env.svc, ME, S, A)
        env.dead(t1.access_token, "identity_suspended")
        env.dead(t2.access_token, "identity_suspended")
    for tok in survivors:
        env.verify(tok)
    # a dead subject token is no grant any more (RFC 8693 §2.2.2: invalid_request)
    with pytest.raises(OAuthError) as info:
        env.exchange(B, t2.access_token)
    assert info.value.error == "invalid_request" and info.value.reason.startswith("subject_")
    # decisions deny at once too
    dec = decisions.decide(env.svc, ME, S, None, "viewer", "document:q3",
                           token=t2.access_token)  # fmt: skip
    assert not dec.allowed


def test_another_instance_sees_revocations(env: Env, storage_url: str) -> None:
    """A second Services on the same database (another process, in effect) verifies the
    tokens this one issues, and refuses them once it has caught up with a revocation."""
    t1, t2 = _chain(env)
    other = Services.open(
        Settings(database_url=storage_url, poll_interval=0.0, default_store=S), clock=env.clock
    )
    try:
        assert T.verify_access_token(other, S, t2.access_token, issuer=env.iss).actors == (A, B)
        revision = T.revoke_token_id(env.svc, ME, S, str(t1.claims["jti"]), reason="leaked")
        other.graphs.wait_for(S, revision, timeout=5.0)
        for tok, reason in ((t1, "token_revoked"), (t2, "parent_token_revoked")):
            with pytest.raises(TokenInvalid) as info:
                T.verify_access_token(other, S, tok.access_token)
            assert info.value.reason == reason
        own_b, own_a = env.cc(B), env.cc(A)
        assert T.verify_access_token(other, S, own_b.access_token).subject == B
        C.revoke_credential(env.svc, ME, S, env.creds[B])
        other.graphs.catch_up(S)
        with pytest.raises(TokenInvalid) as info:
            T.verify_access_token(other, S, own_b.access_token)
        assert info.value.reason == "credential_revoked"
        assert T.verify_access_token(other, S, own_a.access_token).subject == A
    finally:
        other.close()


def test_revoke_token_rules(env: Env) -> None:
    t1, _ = _chain(env)
    with _refused("unauthorized_client", "not_token_client"):
        T.revoke_token(env.svc, S, t1.access_token, requester=B)
    assert not T.revoke_token(env.svc, S, "garbage", requester=A)
    assert T.revoke_token(env.svc, S, t1.access_token, requester="key:admin", admin=True)
    (ev,) = env.events("token.revoked")
    assert ev.caller == "key:admin" and ev.subject == ALICE
    assert ev.details["jti"] == t1.claims["jti"] and ev.resource == f"token:{t1.claims['jti']}"
    assert env.svc.storage.is_token_revoked(S, str(t1.claims["jti"]))
    # an expired token needs no revocation
    t = env.cc(A)
    env.clock.advance(400)
    assert not T.revoke_token(env.svc, S, t.access_token, requester=A)


class _NoStorage:
    """Stands in for ``svc.storage``: any use is a failure (verification reads none)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"verification touched storage: {name}")


def test_verification_reads_no_storage(env: Env) -> None:
    t1, t2 = _chain(env)
    env.verify(t1.access_token)  # warms the store's key set and t1's signature check
    fresh = env.cc(B)  # never verified: its signature is checked below
    real = env.svc.storage
    env.svc.storage = _NoStorage()
    try:
        for tok in (t1, t2, fresh):
            assert env.verify(tok.access_token).jti == tok.claims["jti"]
        assert T.introspect_token(env.svc, S, t2.access_token)["active"] is True
    finally:
        env.svc.storage = real
    # and the live state it reads is current: a revocation is seen at once
    D.revoke_delegation(env.svc, ME, S, env.d2)
    env.svc.storage = _NoStorage()
    try:
        env.dead(t2.access_token, "delegation_revoked")
        env.verify(t1.access_token)
    finally:
        env.svc.storage = real


# ------------------------------------------------------------------------------ time, keys


def test_expiry_by_the_clock(env: Env) -> None:
    t = env.cc(A)
    env.clock.advance(299)
    env.verify(t.access_token)
    env.clock.advance(1)
    env.dead(t.access_token, "expired")
    # an exchange lives no longer than its subject token (an IdP token expiring in 100 s)
    env.clock.set(NOW)
    short = env.idp_token(exp=int(NOW) + 100)
    t1 = env.exchange(A, short)
    assert t1.expires_in == 100
    # nor than its delegation
    env.clock.set(NOW + 1950)  # d2 ends at NOW + 2000
    t2 = env.exchange(B, env.exchange(A, env.idp_token()).access_token)
    assert t2.expires_in == 50
    env.clock.advance(50)
    env.dead(t2.access_token, "expired")
    # an expired subject token is refused
    with _refused("invalid_request", "subject_expired"):
        env.exchange(A, short)


def _forge(header: dict[str, Any], claims: dict[str, Any], sig: bytes = b"x" * 64) -> str:
    enc = [_b64(json.dumps(p).encode()) for p in (header, claims)]
    return ".".join([*enc, _b64(sig)])


def test_forgeries_are_refused(env: Env) -> None:
    t = env.cc(A)
    header = jwt.get_unverified_header(t.access_token)
    claims = dict(t.claims)
    pub = signing_keys.published_jwks(env.svc, S)[0]

    def reason(token: str) -> str:
        with pytest.raises(TokenInvalid) as info:
            env.verify(token)
        assert T.introspect_token(env.svc, S, token) == {"active": False}
        return info.value.reason

    assert reason(_forge({**header, "alg": "none"}, claims, b"")) == "alg_not_allowed"
    # HS256 "keyed" with the published public key (the classic confusion)
    hs_head = _b64(json.dumps({**header, "alg": "HS256"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(json.dumps(pub).encode(), f"{hs_head}.{body}".encode(), hashlib.sha256)
    assert reason(f"{hs_head}.{body}.{_b64(mac.digest())}") == "alg_not_allowed"
    assert reason(_forge({**header, "typ": "JWT"}, claims)) == "wrong_typ"
    assert reason(_forge({**header, "kid": "nope"}, claims)) == "unknown_kid"
    assert reason(_forge({**header, "crit": ["exp"]}, claims)) == "malformed"
    # the real signature over changed claims
    h, _, s = t.access_token.split(".")
    changed = _b64(json.dumps({**claims, "sub": "agent:b"}).encode())
    assert reason(f"{h}.{changed}.{s}") == "bad_signature"
    # signed by another key under the store's kid
    other = ed25519.Ed25519PrivateKey.generate()
    assert reason(jwt.encode(claims, other, algorithm="EdDSA", headers=header)) == ("bad_signature")
    assert reason("x" * 9000) == "malformed"
    assert reason("a.b") == "malformed"
    # a token of another store does not verify in this one
    stores.create_store(env.svc, ME, "other", store_id="other")
    try:
        models.write_model(env.svc, ME, "other", MODEL)
        I.create_identity(env.svc, ME, "other", "human", "alice")
        I.create_identity(env.svc, ME, "other", "agent", "a", owners=[ALICE])
        _, secret = C.create_credential(env.svc, ME, "other", A)
        assert secret is not None
        oc = C.authenticate_client(env.svc, "other", A, secret=secret, token_endpoint_url=URL)
        foreign = T.issue_client_credentials(env.svc, "other", oc, issuer=env.iss)
        assert reason(foreign.access_token) == "unknown_kid"
    finally:
        stores.delete_store(env.svc, ME, "other")


def test_first_key_is_seen_at_once(env: Env) -> None:
    # a forged token before the store has any key: the (empty) key set is loaded
    forged = _forge({"alg": "EdDSA", "kid": "k", "typ": "at+jwt"}, {"sub": A})
    with pytest.raises(TokenInvalid):
        env.verify(forged)
    # the first token signs with a key created now; it verifies at once
    t = env.cc(A)
    assert env.verify(t.access_token).subject == A
    with pytest.raises(TokenInvalid) as info:
        T.verify_access_token(env.svc, "nowhere", t.access_token)
    assert info.value.reason == "unknown_store"


def test_rotation_keeps_old_tokens_valid(env: Env) -> None:
    before = env.cc(A)
    signing_keys.rotate_signing_key(env.svc, ME, S, algorithm="ES256")
    after = env.cc(A)
    assert jwt.get_unverified_header(after.access_token)["alg"] == "ES256"
    assert env.verify(before.access_token).jti == before.claims["jti"]
    assert env.verify(after.access_token).jti == after.claims["jti"]
    _pyjwt(env, before.access_token)
    _pyjwt(env, after.access_token)

"""The store policy's token settings (issue 6, migration 0010) through the service layer,
on SQLite and PostgreSQL: defaults, update and validation of access_token_seconds,
allow_impersonation, token_audiences and trusted_issuers (inline JWKS or jwks_uri), the
policy.updated event, the live state (svc.graphs.policy) following, no change without a
difference, roles; and expired token revocations pruned by gc_expired."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.ledger.events import EventFilter
from keyplane.policy.records import TrustedIssuer
from keyplane.service import policies as P
from keyplane.service import tuples as TU
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.storage.base import REVOKED_TOKEN_GRACE

S = "tokpol"
NOW = 1_800_000_000.0
MODEL = "model\n  schema 1.1\ntype user\n"
ME = Caller.system_caller()


def _public_jwk() -> dict[str, Any]:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(key))
    jwk["kid"] = "k1"
    return jwk


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def svc(storage_url: str, clock: FixedClock) -> Iterator[Services]:
    settings = Settings(
        database_url=storage_url, poll_interval=0.0, default_store=S, token_max_ttl=1800
    )
    kp = Keyplane.open(settings=settings, clock=clock)
    try:
        kp.write_model(MODEL)
        yield kp.services
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


def test_defaults(svc: Services) -> None:
    p = P.get_store_policy(svc, ME, S)
    assert p.access_token_seconds == 300 and p.allow_impersonation is False
    assert p.token_audiences == () and p.trusted_issuers == ()
    live = svc.graphs.policy(S).policy
    assert live.access_token_seconds == 300 and live.trusted_issuers == ()


def test_update_round_trip_event_and_live_state(svc: Services) -> None:
    jwk = _public_jwk()
    pol = P.update_store_policy(
        svc, ME, S, access_token_seconds=600, allow_impersonation=True,
        token_audiences=["https://api.example", "urn:kp:mail"],
        trusted_issuers=[
            {"issuer": "https://idp.example", "jwks": {"keys": [jwk]}, "audience": "kp",
             "subject_claim": "email", "algorithms": ["EdDSA"]},
            TrustedIssuer(
                "http://127.0.0.1:8123", jwks_uri="http://127.0.0.1:8123/jwks", audience="kp"
            ),
        ],
    )  # fmt: skip
    assert pol.access_token_seconds == 600 and pol.allow_impersonation is True
    assert pol.token_audiences == ("https://api.example", "urn:kp:mail")
    idp, local = pol.trusted_issuers
    assert idp == TrustedIssuer(
        "https://idp.example", jwks={"keys": [jwk]}, audience="kp", subject_claim="email",
        algorithms=("EdDSA",),
    )  # fmt: skip
    assert local.jwks is None and local.algorithms == ("RS256", "ES256", "EdDSA")
    assert P.get_store_policy(svc, ME, S) == pol
    # the decision's live state has it at once (same process)
    live = svc.graphs.policy(S).policy
    assert live == pol and live.trusted_issuer("https://idp.example") == idp
    [ev] = svc.storage.read_events(S, filters=EventFilter(types=("policy.updated",)))
    d = ev.details
    assert ev.revision == pol.revision
    assert d["access_token_seconds"] == 600 and d["allow_impersonation"] is True
    assert d["token_audiences"] == ["https://api.example", "urn:kp:mail"]
    assert d["trusted_issuers"] == [
        {"issuer": "https://idp.example", "subject_kind": "human", "jwks_kids": ["k1"]},
        {"issuer": "http://127.0.0.1:8123", "subject_kind": "human",
         "jwks_uri": "http://127.0.0.1:8123/jwks"},
    ]  # fmt: skip
    assert jwk["x"] not in json.dumps(d)  # the key set itself is not repeated in the ledger
    # other fields are left as they are; lists replaced as a whole; [] clears
    p2 = P.update_store_policy(svc, ME, S, token_audiences=[], max_delegation_seconds=60)
    assert p2.token_audiences == () and p2.trusted_issuers == pol.trusted_issuers
    assert p2.access_token_seconds == 600 and p2.max_delegation_seconds == 60
    p3 = P.update_store_policy(svc, ME, S, trusted_issuers=[], allow_impersonation=False)
    assert p3.trusted_issuers == () and not p3.allow_impersonation
    assert not svc.graphs.policy(S).policy.allow_impersonation


def test_no_difference_no_revision(svc: Services) -> None:
    p1 = P.update_store_policy(svc, ME, S, access_token_seconds=120, token_audiences=["a"])
    rev = svc.storage.current_revision(S)
    p2 = P.update_store_policy(svc, ME, S, access_token_seconds=120, token_audiences=["a"])
    assert p2 == p1 and svc.storage.current_revision(S) == rev


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"access_token_seconds": 59}, "access_token_seconds"),
        ({"access_token_seconds": 1801}, "access_token_seconds"),  # above token_max_ttl
        ({"access_token_seconds": True}, "access_token_seconds"),
        ({"access_token_seconds": 300.0}, "access_token_seconds"),
        ({"allow_impersonation": "yes"}, "allow_impersonation"),
        ({"allow_impersonation": 1}, "allow_impersonation"),
        ({"token_audiences": "https://api.example"}, "token_audiences"),
        ({"token_audiences": ["a b"]}, "token_audiences[0]"),
        ({"token_audiences": [""]}, "token_audiences[0]"),
        ({"token_audiences": ["ok", 3]}, "token_audiences[1]"),
        ({"token_audiences": ["a", "a"]}, "listed twice"),
        ({"token_audiences": [f"a{i}" for i in range(101)]}, "at most 100"),
        ({"trusted_issuers": {"issuer": "https://x"}}, "trusted_issuers"),
        ({"trusted_issuers": ["https://x"]}, "trusted_issuers[0]"),
        ({"trusted_issuers": [{"issuer": "https://x"}]}, "exactly one of jwks"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "jwks": {"keys": []}}]}, "exactly one of jwks"),
        ({"trusted_issuers": [{"issuer": "http://idp.example", "jwks_uri": "https://x/j"}]},
         "https"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "http://evil.example/j"}]},
         "jwks_uri"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "file:///etc/passwd"}]},
         "jwks_uri"),
        ({"trusted_issuers": [{"issuer": "https://u:p@x", "jwks_uri": "https://x/j"}]},
         "credentials"),
        ({"trusted_issuers": [{"issuer": "https://x?a=1", "jwks_uri": "https://x/j"}]}, "query"),
        ({"trusted_issuers": [{"issuer": "x", "jwks_uri": "https://x/j"}]}, "issuer"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "subject_kind": "robot"}]}, "subject_kind"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "subject_claim": "a b"}]}, "subject_claim"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "algorithms": ["HS256"]}]}, "algorithms"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "algorithms": ["none"]}]}, "algorithms"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "algorithms": []}]}, "algorithms"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "audience": ""}]}, "audience"),
        # required (token confusion): absent or null is refused
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "audience": None}]}, "is required"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "audience": 3}]}, "audience"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j",
                               "extra": 1}]}, "unknown field"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks": {"keys": []}}]}, "1 to 100 keys"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks": [1]}]}, "JWK Set"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks": {"keys": [
            {"kty": "oct", "k": "c2VjcmV0"}]}}]}, "private key material"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks": {"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "AA"}]}}]}, "no usable public key"),
        ({"trusted_issuers": [{"issuer": "https://x", "jwks_uri": "https://x/j"},
                              {"issuer": "https://x", "jwks_uri": "https://x/k"}]},
         "listed twice"),
    ],
)  # fmt: skip
def test_validation(svc: Services, kwargs: dict[str, Any], needle: str) -> None:
    before = P.get_store_policy(svc, ME, S)
    issuers = kwargs.get("trusted_issuers")
    if isinstance(issuers, list):  # each case is wrong in one way only: give the audience
        kwargs = dict(kwargs, trusted_issuers=[
            {"audience": "kp", **i} if isinstance(i, dict) and "audience" not in i else i
            for i in issuers
        ])  # fmt: skip
    with pytest.raises(ValidationError) as info:
        P.update_store_policy(svc, ME, S, **kwargs)
    assert needle in str(info.value) or needle in json.dumps(info.value.details)
    assert P.get_store_policy(svc, ME, S) == before


def test_audience_required(svc: Services) -> None:
    """A trusted issuer without an audience would accept tokens the IdP minted for ANY
    application (token confusion): refused, on every path in."""
    before = P.get_store_policy(svc, ME, S)
    for issuer in (
        {"issuer": "https://x", "jwks_uri": "https://x/j"},
        {"issuer": "https://x", "jwks": {"keys": [_public_jwk()]}},
    ):
        with pytest.raises(ValidationError) as info:
            P.update_store_policy(svc, ME, S, trusted_issuers=[issuer])
        assert info.value.details["field"] == "trusted_issuers[0].audience"
    assert P.get_store_policy(svc, ME, S) == before


def test_private_jwk_refused(svc: Services) -> None:
    priv = ed25519.Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(priv))
    assert "d" in jwk
    with pytest.raises(ValidationError, match="private key material"):
        P.update_store_policy(
            svc, ME, S,
            trusted_issuers=[{"issuer": "https://x", "jwks": {"keys": [jwk]}, "audience": "kp"}],
        )  # fmt: skip


def test_only_admins_update(svc: Services) -> None:
    from keyplane.service import keys as K

    _key, token = K.create_key(svc, ME, owner="human:alice", roles=[f"writer:{S}"])
    writer = K.authenticate(svc, token)
    assert P.get_store_policy(svc, writer, S).access_token_seconds == 300
    with pytest.raises(PermissionDeniedError):
        P.update_store_policy(svc, writer, S, allow_impersonation=True)
    assert not P.get_store_policy(svc, ME, S).allow_impersonation


def test_gc_prunes_long_expired_revocations(svc: Services, clock: FixedClock) -> None:
    svc.storage.revoke_tokens(
        S, [("old", NOW + 10), ("live", NOW + 5000)], revoked_by="system", reason=None,
        revoked_at=NOW,
    )  # fmt: skip
    clock.set(NOW + 10 + REVOKED_TOKEN_GRACE + 1)
    TU.gc_expired(svc, ME, S)
    assert not svc.storage.is_token_revoked(S, "old")
    assert svc.storage.is_token_revoked(S, "live")
    assert svc.graphs.policy(S).token_revoked("live")

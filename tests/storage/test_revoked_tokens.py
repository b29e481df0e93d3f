"""Revoked access tokens in storage (TokenStore, migration 0010) on SQLite and PostgreSQL:
one revision per revocation with its ledger events in the same transaction, an already
revoked jti left as it is, what read_policy_changes reports (revoked tokens not long
expired, revoked credentials), pruning, and removal with the store; plus the store-policy
columns of 0010 round-tripping."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from keyplane.clock import FixedClock
from keyplane.errors import StoreNotFoundError
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.policy.records import Identity, StorePolicy, TrustedIssuer
from keyplane.storage import Storage, open_storage
from keyplane.storage.base import REVOKED_TOKEN_GRACE, PolicyWrite
from keyplane.tokens.clients import Credential, CredentialRecord

S = "rt"
T0 = 1_800_000_000.0


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def st(storage_url: str, clock: FixedClock) -> Iterator[Storage]:
    s = open_storage(storage_url, clock=clock)
    try:
        s.create_store("revoked tokens", store_id=S)
        yield s
    finally:
        s.close()


def _events(revision: int, jtis: list[str]) -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(), time=T0, store=S, type="token.revoked", caller="agent:a",
        revision=revision, details={"jtis": jtis},
    )  # fmt: skip
    return [(ev, canonical_json(ev).decode("utf-8"))]


def test_revoke_bumps_once_and_commits_events(st: Storage) -> None:
    before = st.current_revision(S)
    seen: list[int] = []

    def events(rev: int) -> list[tuple[LedgerEvent, str]]:
        seen.append(rev)
        return _events(rev, ["j1", "j2"])

    rev = st.revoke_tokens(
        S, [("j1", T0 + 300), ("j2", T0 + 600)], revoked_by="agent:a", reason="leak",
        revoked_at=T0, ledger_events=events,
    )  # fmt: skip
    assert rev == before + 1 == st.current_revision(S)
    assert seen == [rev]
    assert st.is_token_revoked(S, "j1") and st.is_token_revoked(S, "j2")
    assert not st.is_token_revoked(S, "j3")
    [ev] = st.read_events(S)
    assert ev.type == "token.revoked" and ev.revision == rev and ev.details["jtis"] == ["j1", "j2"]
    ch = st.read_policy_changes(S, before)
    assert ch.revision == rev
    assert ch.revoked_tokens == (("j1", T0 + 300), ("j2", T0 + 600))
    assert st.read_policy_changes(S, rev).revoked_tokens == ()


def test_already_revoked_left_as_is(st: Storage) -> None:
    r1 = st.revoke_tokens(S, [("j1", T0 + 300)], revoked_by="a", reason=None, revoked_at=T0)
    # the same jti again (another expiry even): a new revision, the row unchanged
    r2 = st.revoke_tokens(S, [("j1", T0 + 900)], revoked_by="b", reason="x", revoked_at=T0 + 1)
    assert r2 == r1 + 1
    assert st.read_policy_changes(S, 0).revoked_tokens == (("j1", T0 + 300),)
    assert st.read_policy_changes(S, r1).revoked_tokens == ()


def test_empty_revocation_changes_nothing(st: Storage) -> None:
    rev = st.current_revision(S)
    called: list[int] = []
    out = st.revoke_tokens(
        S, [], revoked_by="a", reason=None, revoked_at=T0,
        ledger_events=lambda r: called.append(r) or [],  # type: ignore[func-returns-value]
    )  # fmt: skip
    assert out == rev == st.current_revision(S) and called == []
    assert st.read_events(S) == []


def test_failing_events_roll_back_the_revocation(st: Storage) -> None:
    rev = st.current_revision(S)

    def boom(r: int) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("ledger down")

    with pytest.raises(RuntimeError):
        st.revoke_tokens(
            S, [("j1", T0 + 60)], revoked_by="a", reason=None, revoked_at=T0, ledger_events=boom
        )
    assert not st.is_token_revoked(S, "j1")
    assert st.current_revision(S) == rev


def test_unknown_store(st: Storage) -> None:
    with pytest.raises(StoreNotFoundError):
        st.revoke_tokens("nope", [("j", T0 + 1)], revoked_by="a", reason=None, revoked_at=T0)
    with pytest.raises(StoreNotFoundError):
        st.revoke_tokens("nope", [], revoked_by="a", reason=None, revoked_at=T0)
    with pytest.raises(StoreNotFoundError):
        st.is_token_revoked("nope", "j")


def test_reported_until_pruned(st: Storage, clock: FixedClock) -> None:
    st.revoke_tokens(
        S, [("old", T0 + 10), ("new", T0 + 1000)], revoked_by="a", reason=None, revoked_at=T0
    )
    # the storage reports every stored revocation whatever its own clock says: which have
    # expired is the reader's clock's call (PolicyState drops them), so a process whose clock
    # differs from the database's never forgets a live revocation
    clock.set(T0 + 10 + REVOKED_TOKEN_GRACE + 1)
    assert dict(st.read_policy_changes(S, 0).revoked_tokens) == {"old": T0 + 10, "new": T0 + 1000}
    assert st.is_token_revoked(S, "old")  # still stored until pruned
    assert st.prune_revoked_tokens(T0 + 11) == 1
    assert not st.is_token_revoked(S, "old") and st.is_token_revoked(S, "new")
    assert st.prune_revoked_tokens(T0 + 11) == 0


def test_prune_spans_stores_revoke_prunes_its_own(st: Storage, clock: FixedClock) -> None:
    st.create_store("other", store_id="rt2")
    st.revoke_tokens(S, [("a", T0 + 5)], revoked_by="x", reason=None, revoked_at=T0)
    st.revoke_tokens("rt2", [("b", T0 + 5)], revoked_by="x", reason=None, revoked_at=T0)
    clock.set(T0 + 5 + REVOKED_TOKEN_GRACE + 1)
    # a revocation in S drops S's long-expired rows, not another store's
    st.revoke_tokens(S, [("c", T0 + 9999)], revoked_by="x", reason=None, revoked_at=clock.now())
    assert not st.is_token_revoked(S, "a") and st.is_token_revoked("rt2", "b")
    assert st.prune_revoked_tokens(clock.now() - REVOKED_TOKEN_GRACE) == 1
    assert not st.is_token_revoked("rt2", "b") and st.is_token_revoked(S, "c")


def test_deleted_with_the_store(st: Storage) -> None:
    st.revoke_tokens(S, [("j1", T0 + 300)], revoked_by="a", reason=None, revoked_at=T0)
    st.delete_store(S)
    st.create_store("again", store_id=S)
    assert not st.is_token_revoked(S, "j1")
    assert st.read_policy_changes(S, 0).revoked_tokens == ()


def _credential(cid: str, status: str = "active") -> CredentialRecord:
    return CredentialRecord(
        Credential(
            store_id=S, id=cid, client_id="agent:bot", type="client_secret", status=status,
            expires_at=T0 + 86400, created_by="system", created_at=T0,
        ),
        secret_hash="h",
    )  # fmt: skip


def test_revoked_credentials_in_policy_changes(st: Storage) -> None:
    bot = Identity(
        store_id=S, kind="agent", id="bot", display_name="Bot", attributes={}, status="active",
        owners=(), orphaned=False, source="api", created_at=T0, updated_at=T0, last_seen=None,
        revision=0,
    )  # fmt: skip
    st.write_policy(S, lambda r: PolicyWrite(new_identities=[bot]))
    st.write_credential(S, lambda r: (_credential("c1"), True))
    st.write_credential(S, lambda r: (_credential("c2"), True))
    r0 = st.current_revision(S)
    assert st.read_policy_changes(S, 0).revoked_credentials == ()
    rec = st.get_credential(S, "c1")
    assert rec is not None
    revoked = dataclasses.replace(
        rec, credential=dataclasses.replace(rec.credential, status="revoked", revoked_at=T0)
    )
    st.write_credential(S, lambda r: (revoked, False))
    assert st.read_policy_changes(S, 0).revoked_credentials == ("c1",)
    assert st.read_policy_changes(S, r0).revoked_credentials == ("c1",)
    assert st.read_policy_changes(S, r0 + 1).revoked_credentials == ()


def test_store_policy_token_fields_round_trip(st: Storage) -> None:
    default = st.get_store_policy(S)
    assert (default.access_token_seconds, default.allow_impersonation) == (300, False)
    assert default.token_audiences == () and default.trusted_issuers == ()
    idp = TrustedIssuer(
        issuer="https://idp.example", jwks={"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]},
        audience="keyplane", subject_kind="human", subject_claim="email", algorithms=("EdDSA",),
    )  # fmt: skip
    remote = TrustedIssuer(
        issuer="https://login.example/", jwks_uri="https://login.example/jwks", audience="kp"
    )
    pol = StorePolicy(
        S, access_token_seconds=900, allow_impersonation=True,
        token_audiences=("https://api.example", "urn:kp:mail"), trusted_issuers=(idp, remote),
    )  # fmt: skip
    res = st.write_policy(S, lambda r: PolicyWrite(store_policy=pol))
    got = st.get_store_policy(S)
    assert got == dataclasses.replace(pol, revision=res.revision)
    assert got.trusted_issuer("https://login.example/") == remote
    assert got.trusted_issuer("https://login.example") is None
    assert remote.algorithms == ("RS256", "ES256", "EdDSA")
    ch = st.read_policy_changes(S, 0)
    assert ch.store_policy == got
    # a later write of the older fields keeps the token ones
    later = dataclasses.replace(got, max_delegation_seconds=60)
    st.write_policy(S, lambda r: PolicyWrite(store_policy=later))
    again = st.get_store_policy(S)
    assert again.trusted_issuers == (idp, remote) and again.access_token_seconds == 900


def test_concurrent_revocations_serialize(st: Storage, storage_url: str) -> None:
    """Two connections (two processes' storages) revoking overlapping jtis at once: every
    call gets its own revision, no call fails on the shared jtis, every jti is stored once."""
    import threading

    other = open_storage(storage_url)
    try:
        start = st.current_revision(S)
        errors: list[BaseException] = []
        revs: list[int] = []

        def work(s: Storage, offset: int) -> None:
            try:
                for i in range(10):
                    items = [(f"j{offset + i}", T0 + 600), (f"shared{i}", T0 + 600)]
                    revs.append(
                        s.revoke_tokens(S, items, revoked_by="x", reason=None, revoked_at=T0)
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(st, 0)),
            threading.Thread(target=work, args=(other, 100)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(revs) == list(range(start + 1, start + 21))
        jtis = [j for j, _ in st.read_policy_changes(S, start).revoked_tokens]
        assert sorted(jtis) == sorted(
            [f"j{i}" for i in range(10)] + [f"j{100 + i}" for i in range(10)]
            + [f"shared{i}" for i in range(10)]
        )  # fmt: skip
    finally:
        other.close()

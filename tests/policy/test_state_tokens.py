"""PolicyState's revoked tokens and credentials: advanced copy-on-write from PolicyChanges,
entries dropped once their token has been expired longer than the grace (memory stays
bounded), and the state of two processes sharing a database (SQLite, PostgreSQL): a
revocation made through one reaches the other's in-memory state with wait_for, and a fresh
load reads every unexpired revocation."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from keyplane import Keyplane, Settings
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState
from keyplane.storage.base import REVOKED_TOKEN_GRACE, PolicyChanges, PolicyWrite
from keyplane.tokens.clients import Credential, CredentialRecord

S = "s"
T0 = 1_800_000_000.0


def _changes(revision: int, tokens=(), credentials=()) -> PolicyChanges:  # type: ignore[no-untyped-def]
    return PolicyChanges((), (), None, None, revision, tuple(tokens), tuple(credentials))


def test_empty_state_revokes_nothing() -> None:
    st = PolicyState.empty(S)
    assert not st.token_revoked("j") and not st.credential_revoked("c")
    assert st.revoked_token_count() == 0


def test_advancing_adds_revocations_without_touching_the_old_state() -> None:
    s0 = PolicyState.empty(S)
    s1 = s0.advanced(_changes(1, [("j1", T0 + 300)], ["c1"]), now=T0)
    s2 = s1.advanced(_changes(2, [("j2", T0 + 300)], ["c2"]), now=T0)
    assert s2.token_revoked("j1") and s2.token_revoked("j2")
    assert s2.credential_revoked("c1") and s2.credential_revoked("c2")
    assert s1.token_revoked("j1") and not s1.token_revoked("j2")
    assert not s1.credential_revoked("c2")
    assert not s0.token_revoked("j1") and not s0.credential_revoked("c1")
    # nothing new: the same maps are shared (no copy)
    s3 = s2.advanced(_changes(3), now=T0 + 1)
    assert s3._revoked_tokens is s2._revoked_tokens
    assert s3._revoked_credentials is s2._revoked_credentials
    assert s3.revision == 3 and s3.token_revoked("j1")


def test_already_expired_revocations_are_not_kept() -> None:
    st = PolicyState.empty(S).advanced(
        _changes(1, [("gone", T0 - REVOKED_TOKEN_GRACE - 1), ("live", T0 + 5)]), now=T0
    )
    assert not st.token_revoked("gone") and st.token_revoked("live")
    # within the grace after expiry it is still remembered (a verifier's exp leeway)
    st2 = PolicyState.empty(S).advanced(_changes(1, [("late", T0 - 30)]), now=T0)
    assert st2.token_revoked("late")


def test_expired_revocations_are_dropped_on_advance() -> None:
    revoked = [(f"j{i}", T0 + i) for i in range(100)] + [("long", T0 + 10_000)]
    st = PolicyState.empty(S).advanced(_changes(1, revoked, ["c1"]), now=T0)
    assert st.revoked_token_count() == 101
    # the earliest is past its grace, but pruning waits for a minute's worth to be due
    st = st.advanced(_changes(2), now=T0 + REVOKED_TOKEN_GRACE + 1)
    assert st.revoked_token_count() == 101
    later = T0 + 99 + REVOKED_TOKEN_GRACE + 61
    st = st.advanced(_changes(3), now=later)
    assert st.revoked_token_count() == 1 and st.token_revoked("long")
    assert not st.token_revoked("j0") and not st.token_revoked("j99")
    assert st.credential_revoked("c1")  # credentials are never dropped
    # a long-lived revocation never goes before its time, however often the state advances
    for i in range(4, 20):
        st = st.advanced(_changes(i), now=later + i)
    assert st.token_revoked("long")
    st = st.advanced(_changes(30), now=T0 + 10_000 + REVOKED_TOKEN_GRACE + 61)
    assert st.revoked_token_count() == 0


def test_memory_stays_bounded_under_a_stream_of_revocations() -> None:
    st = PolicyState.empty(S)
    now = T0
    for rev in range(1, 2001):
        now += 1.0
        st = st.advanced(_changes(rev, [(f"j{rev}", now + 300)]), now=now)
    # every token lives 300 s; what is kept is at most those alive plus grace plus a minute
    assert st.revoked_token_count() <= 300 + REVOKED_TOKEN_GRACE + 61
    assert st.token_revoked("j2000") and not st.token_revoked("j1")


# -- across processes ---------------------------------------------------------------------

V1 = "model\n  schema 1.1\ntype user\n"
R = "tokstate"


@pytest.fixture
def pair(storage_url: str) -> Iterator[tuple[Keyplane, Keyplane]]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=R)
    a = Keyplane.open(settings=settings)
    b = Keyplane.open(settings=settings)
    try:
        a.write_model(V1)
        yield a, b
    finally:
        try:
            a.delete_store(R)
        finally:
            for kp in (a, b):
                kp.close()


def test_revocation_reaches_the_other_process(pair: tuple[Keyplane, Keyplane]) -> None:
    a, b = pair
    now = time.time()
    a.services.storage.revoke_tokens(
        R, [("j-old", now - REVOKED_TOKEN_GRACE - 5), ("j1", now + 300)], revoked_by="x",
        reason=None, revoked_at=now,
    )  # fmt: skip
    # B loads now: every unexpired revocation (not the long-expired one)
    first = b.services.graphs.policy(R)
    assert first.token_revoked("j1") and not first.token_revoked("j-old")
    assert first.revoked_token_count() == 1
    r2 = a.services.storage.revoke_tokens(
        R, [("j2", now + 300)], revoked_by="x", reason="stolen", revoked_at=now
    )
    assert not b.services.graphs.policy(R).token_revoked("j2")  # no tailer: not yet
    b.services.graphs.wait_for(R, r2, timeout=5)
    fresh = b.services.graphs.policy(R)
    assert fresh.token_revoked("j2") and fresh.token_revoked("j1")
    assert not first.token_revoked("j2")  # the old snapshot is untouched


def test_credential_revocation_reaches_the_other_process(
    pair: tuple[Keyplane, Keyplane], storage_url: str
) -> None:
    a, b = pair
    st = a.services.storage
    now = time.time()
    bot = Identity(R, "agent", "bot", "Bot", {}, "active", (), False, "api", now, now, None, 0)
    st.write_policy(R, lambda r: PolicyWrite(new_identities=[bot]))
    cred = Credential(
        store_id=R, id="cred1", client_id="agent:bot", type="client_secret", status="active",
        expires_at=now + 3600, created_by="system", created_at=now,
    )  # fmt: skip
    st.write_credential(R, lambda r: (CredentialRecord(cred, secret_hash="h"), True))
    assert not b.services.graphs.policy(R).credential_revoked("cred1")
    revoked = CredentialRecord(
        dataclasses.replace(cred, status="revoked", revoked_at=now), secret_hash="h"
    )
    rev = st.write_credential(R, lambda r: (revoked, False)).credential.revision
    b.services.graphs.wait_for(R, rev, timeout=5)
    assert b.services.graphs.policy(R).credential_revoked("cred1")
    # a fresh process reads it on its first load
    fresh = Keyplane.open(
        settings=Settings(database_url=storage_url, poll_interval=0.0, default_store=R)
    )
    try:
        assert fresh.services.graphs.policy(R).credential_revoked("cred1")
    finally:
        fresh.close()

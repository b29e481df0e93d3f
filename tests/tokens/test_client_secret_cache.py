"""Client secrets that authenticated are remembered per process (keyplane.service.credentials,
``KEYPLANE_KEY_CACHE_TTL``): the next authentication reads no database, and the cache never
lets through what the database would refuse — a rotation or a revocation here ends the
secret at once, a suspension or a revocation elsewhere as soon as the policy state sees it,
a rotated-out secret dies at its overlap deadline and a credential at its expiry, and a
rotation elsewhere is seen within the TTL. SQLite and PostgreSQL; two Services on one
database stand for two processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from keyplane import FixedClock, Settings
from keyplane.service import credentials as C
from keyplane.service import identities, models, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.tokens.clients import ClientAuthError

S = "secrets"
URL = "https://kp.example/oauth2/token"
ME = Caller.system_caller()
BOT = "agent:bot"
MODEL = """\
model
  schema 1.1

type human

type agent
  relations
    define owner: [human]
"""
TTL = 5.0


class _NoStorage:
    """Stands in for ``svc.storage``: any use is a failure."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"storage.{name} used")


@dataclass
class Env:
    svc: Services
    other: Services  # a second process on the same database
    clock: FixedClock
    cred: str
    secret: str

    def auth(self, secret: str | None = None, svc: Services | None = None) -> C.AuthenticatedClient:
        return C.authenticate_client(
            svc or self.svc, S, BOT, secret=secret or self.secret, token_endpoint_url=URL
        )

    def refused(self, reason: str, secret: str | None = None, svc: Services | None = None) -> None:
        with pytest.raises(ClientAuthError) as info:
            self.auth(secret, svc)
        assert info.value.reason == reason

    def without_storage(self, svc: Services | None = None) -> C.AuthenticatedClient:
        svc = svc or self.svc
        real = svc.storage
        svc.storage = _NoStorage()  # type: ignore[assignment]
        try:
            return self.auth(svc=svc)
        finally:
            svc.storage = real


@pytest.fixture
def env(storage_url: str) -> Iterator[Env]:
    clock = FixedClock(1_800_000_000.0)
    settings = Settings(
        database_url=storage_url, poll_interval=0.0, default_store=S, key_cache_ttl=TTL
    )
    svc = Services.open(settings, clock=clock)
    other = Services.open(settings, clock=clock)
    try:
        stores.create_store(svc, ME, S, store_id=S)
        models.write_model(svc, ME, S, MODEL)
        identities.create_identity(svc, ME, S, "human", "alice")
        identities.create_identity(svc, ME, S, "agent", "bot", owners=["human:alice"])
        cred, secret = C.create_credential(svc, ME, S, BOT, expires_at=clock.now() + 3600)
        assert secret is not None
        other.graphs.catch_up(S)
        yield Env(svc, other, clock, cred.id, secret)
    finally:
        try:
            stores.delete_store(svc, ME, S)
        finally:
            other.close()
            svc.close()


def test_a_remembered_secret_reads_no_database(env: Env) -> None:
    first = env.auth()
    again = env.without_storage()
    assert again == first and again.credential_id == env.cred and again.node == BOT
    # a wrong secret is not served from the cache (nor is a right one for another client)
    wrong = env.secret[:-1] + ("a" if env.secret[-1] != "a" else "b")
    real = env.svc.storage
    env.svc.storage = _NoStorage()  # type: ignore[assignment]
    try:
        with pytest.raises(AssertionError, match="storage"):
            env.auth(wrong)
    finally:
        env.svc.storage = real
    env.refused("invalid_secret", wrong)
    with pytest.raises(ClientAuthError):
        C.authenticate_client(env.svc, S, "agent:other", secret=env.secret, token_endpoint_url=URL)
    # past the TTL the database is read again
    env.clock.advance(TTL)
    with pytest.raises(AssertionError, match="storage"):
        env.without_storage()
    assert env.auth() == first


def test_rotation_and_revocation_here_end_the_secret_at_once(env: Env) -> None:
    env.auth()
    _, new = C.rotate_credential(env.svc, ME, S, env.cred, overlap_seconds=0)
    assert new is not None
    env.refused("invalid_secret")  # the old secret, remembered a moment ago
    env.auth(new)
    C.revoke_credential(env.svc, ME, S, env.cred)
    env.refused("revoked_credential", new)


def test_overlap_deadline_and_expiry_are_checked_on_every_hit(env: Env) -> None:
    _, new = C.rotate_credential(env.svc, ME, S, env.cred, overlap_seconds=3)
    assert new is not None
    env.auth()  # the rotated-out secret, inside its overlap: remembered until the deadline
    env.auth(new)
    env.clock.advance(2)
    env.without_storage()
    env.clock.advance(1)  # the overlap ends before the TTL does
    env.refused("invalid_secret")
    env.auth(new)
    env.clock.advance(3600 - 3)  # the credential's expiry
    env.refused("expired_credential", new)


def test_suspension_and_revocation_elsewhere(env: Env) -> None:
    env.auth(svc=env.other)
    env.without_storage(env.other)
    identities.suspend_identity(env.svc, ME, S, BOT)
    env.other.graphs.catch_up(S)
    env.refused("identity_suspended", svc=env.other)
    identities.reactivate_identity(env.svc, ME, S, BOT)
    env.other.graphs.catch_up(S)
    env.auth(svc=env.other)
    env.without_storage(env.other)
    C.revoke_credential(env.svc, ME, S, env.cred)
    env.other.graphs.catch_up(S)
    env.refused("revoked_credential", svc=env.other)


def test_a_rotation_elsewhere_is_seen_within_the_ttl(env: Env) -> None:
    env.auth(svc=env.other)
    _, new = C.rotate_credential(env.svc, ME, S, env.cred, overlap_seconds=0)
    assert new is not None
    env.other.graphs.catch_up(S)
    env.auth(svc=env.other)  # remembered: the documented window, at most the TTL
    env.clock.advance(TTL)
    env.refused("invalid_secret", svc=env.other)
    env.auth(new, svc=env.other)

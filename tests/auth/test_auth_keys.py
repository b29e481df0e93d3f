"""API key lifecycle: create, authenticate, last used, expiry, revocation, rotation, forgery,
and what the database holds (hashes, never secrets). SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from auth_helpers import MODEL, SYSTEM

from keyplane.clock import FixedClock
from keyplane.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from keyplane.service import keys, stores, tuples
from keyplane.service.auth import SYSTEM_STORE_ID, Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, bootstrap_admin, create_key

Mint = Callable[..., tuple[str, str]]


def _fails(svc: Services, token: str, *, says: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as info:
        authenticate(svc, token)
    assert says in info.value.message
    return info.value


def test_created_key_authenticates_as_its_principal(svc: Services, clock: FixedClock) -> None:
    rec, secret = create_key(
        svc, SYSTEM, owner="ci-bot", roles=["reader"], expires_in=3600, description="ci"
    )
    assert secret.startswith(f"kp_{rec.id}_") and len(secret.split("_")[2]) == 52
    assert (rec.owner, rec.roles, rec.description) == ("ci-bot", ("reader",), "ci")
    assert rec.created_at == clock.now() and rec.expires_at == clock.now() + 3600
    assert (rec.last_used_at, rec.revoked_at) == (None, None)
    caller = authenticate(svc, secret)
    assert caller == Caller(principal=f"key:{rec.id}", key_id=rec.id, owner="ci-bot")
    assert keys.get_key(svc, SYSTEM, rec.id).roles == ("reader",)


def test_two_keys_never_share_a_secret(mint: Mint) -> None:
    a, b = mint("reader"), mint("reader")
    assert a[0] != b[0] and a[1].split("_")[2] != b[1].split("_")[2]


def test_last_used_is_written_at_most_once_a_minute(
    svc: Services, clock: FixedClock, mint: Mint
) -> None:
    key_id, secret = mint("reader")
    t0 = clock.now()
    authenticate(svc, secret)
    assert svc.storage.get_key(key_id).last_used_at == t0  # type: ignore[union-attr]
    clock.advance(30)
    authenticate(svc, secret)  # within the minute: no write
    assert svc.storage.get_key(key_id).last_used_at == t0  # type: ignore[union-attr]
    clock.advance(31)
    authenticate(svc, secret)
    assert svc.storage.get_key(key_id).last_used_at == t0 + 61  # type: ignore[union-attr]
    assert keys.get_key(svc, SYSTEM, key_id).last_used_at == t0 + 61


def test_expired_key_fails_closed_even_when_cached(
    svc: Services, clock: FixedClock, mint: Mint
) -> None:
    _, secret = mint("reader", expires_in=60)
    authenticate(svc, secret)  # now cached
    clock.advance(59.9)
    authenticate(svc, secret)
    clock.advance(0.1)
    err = _fails(svc, secret, says="expired")
    assert secret not in str(err) and secret not in repr(err.details)


def test_revoke_takes_effect_at_once_in_this_process(svc: Services, mint: Mint) -> None:
    key_id, secret = mint("writer")
    caller = authenticate(svc, secret)  # cached
    stores.get_store(svc, caller, svc.settings.default_store)
    keys.revoke_key(svc, SYSTEM, key_id)
    _fails(svc, secret, says="revoked")
    # its grants are gone too: even a Caller obtained before revocation is denied
    with pytest.raises(PermissionDeniedError):
        stores.get_store(svc, caller, svc.settings.default_store)
    assert svc.storage.read_tuples(SYSTEM_STORE_ID, user=f"key:{key_id}").items == []
    assert keys.get_key(svc, SYSTEM, key_id).revoked_at is not None
    keys.revoke_key(svc, SYSTEM, key_id)  # idempotent
    with pytest.raises(ConflictError):
        keys.rotate_key(svc, SYSTEM, key_id)


def test_revoke_reaches_another_process_within_the_cache_ttl(
    open_services: Callable[..., Services], clock: FixedClock
) -> None:
    a = open_services(key_cache_ttl=5.0)
    b = open_services(key_cache_ttl=5.0)
    _, admin_secret = bootstrap_admin(a)
    stores.list_stores(b, authenticate(b, admin_secret))  # B has loaded its system graph
    rec, secret = create_key(a, SYSTEM, owner="x", roles=["reader"])
    # a key minted by process A works in B at once (B catches up its system graph)
    caller = authenticate(b, secret)
    stores.get_store(b, caller, b.settings.default_store)
    keys.revoke_key(a, SYSTEM, rec.id)
    _fails(a, secret, says="revoked")
    clock.advance(4.9)
    authenticate(b, secret)  # B's cache entry is still young: the documented bound
    clock.advance(0.1)
    _fails(b, secret, says="revoked")


def test_zero_cache_ttl_rereads_the_key_every_time(
    open_services: Callable[..., Services],
) -> None:
    a, b = open_services(), open_services(key_cache_ttl=0.0)
    rec, secret = create_key(a, SYSTEM, owner="x", roles=["reader"])
    authenticate(b, secret)
    keys.revoke_key(a, SYSTEM, rec.id)
    _fails(b, secret, says="revoked")


def test_rotation_keeps_the_old_secret_for_the_overlap(
    svc: Services, clock: FixedClock, mint: Mint
) -> None:
    key_id, old = mint("reader")
    authenticate(svc, old)
    rec, new = keys.rotate_key(svc, SYSTEM, key_id, overlap_seconds=100)
    assert rec.id == key_id and rec.roles == ("reader",) and new != old
    assert new.startswith(f"kp_{key_id}_")
    assert authenticate(svc, old).key_id == key_id
    assert authenticate(svc, new).key_id == key_id
    clock.advance(99)
    authenticate(svc, old)
    clock.advance(1)
    _fails(svc, old, says="rotated")
    authenticate(svc, new)
    # rotating again ends the previous secret at once, whatever its overlap
    _, newer = keys.rotate_key(svc, SYSTEM, key_id, overlap_seconds=0)
    _fails(svc, new, says="rotated")
    _fails(svc, old, says="invalid API key")  # two rotations ago: simply unknown
    authenticate(svc, newer)


def test_an_expired_key_cannot_be_rotated(svc: Services, clock: FixedClock, mint: Mint) -> None:
    key_id, _ = mint("reader", expires_in=10)
    clock.advance(10)
    with pytest.raises(ConflictError):
        keys.rotate_key(svc, SYSTEM, key_id)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "kp_",
        "Bearer kp_x",
        "not-a-key",
        "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_short",
        "kp_01arz3ndektsv4rrffq69g5fav_" + "a" * 52,  # lowercase id
        "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + "A" * 52,  # uppercase secret
        "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + "a" * 53,
        " kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + "a" * 52,
        "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + "a" * 51 + "\n",
    ],
)
def test_malformed_keys_are_unauthenticated(svc: Services, token: str) -> None:
    _fails(svc, token, says="malformed")


def test_unknown_and_forged_keys_are_unauthenticated(svc: Services, mint: Mint) -> None:
    a_id, a_secret = mint("admin")
    b_id, b_secret = mint("reader")
    a_part, b_part = a_secret.split("_")[2], b_secret.split("_")[2]
    unknown = "kp_01ARZ3NDEKTSV4RRFFQ69G5FAV_" + a_part
    forged = f"kp_{a_id}_" + ("b" if a_part[0] != "b" else "c") + a_part[1:]
    swapped = f"kp_{a_id}_{b_part}"  # B's real secret under A's id
    for padded in (a_secret + "\n", a_secret + " ", "\t" + a_secret):
        _fails(svc, padded, says="malformed")
    for token in (unknown, forged, swapped):
        err = _fails(svc, token, says="invalid API key")
        # the same message whatever is wrong: no oracle, and never the secret
        assert err.message == "invalid API key" and err.details == {}
    # a stolen hash is useless as a secret
    a_hash = svc.storage.get_key(a_id).secret_hash  # type: ignore[union-attr]
    _fails(svc, f"kp_{a_id}_{a_hash}", says="malformed")
    assert authenticate(svc, b_secret).key_id == b_id


def test_only_hashes_reach_the_database(svc: Services, storage_url: str, mint: Mint) -> None:
    key_id, secret = mint("writer:" + svc.settings.default_store)
    _, rotated = keys.rotate_key(svc, SYSTEM, key_id)
    admin_rec, admin_secret = bootstrap_admin(svc, force=True)
    authenticate(svc, rotated)
    secrets = [s.split("_")[2] for s in (secret, rotated, admin_secret)]
    hashes = [
        svc.storage.get_key(key_id).secret_hash,  # type: ignore[union-attr]
        svc.storage.get_key(admin_rec.id).secret_hash,  # type: ignore[union-attr]
    ]
    dump = _dump_database(storage_url)
    for h in hashes:
        assert h in dump  # the scan does see the keys table
    for s in secrets:
        assert s not in dump, "a secret was stored"
    if storage_url.startswith("sqlite:"):
        path = Path(storage_url.removeprefix("sqlite:///"))
        for f in path.parent.glob(path.name + "*"):  # the file, its WAL and shared memory
            raw = f.read_bytes()
            for s in secrets:
                assert s.encode() not in raw and s.upper().encode() not in raw


def _dump_database(url: str) -> str:
    """Every row of every table, as text."""
    rows: list[str] = []
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for name in names:
                rows += [repr(r) for r in conn.execute(f'SELECT * FROM "{name}"')]
        finally:
            conn.close()
    else:
        with psycopg.connect(url) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                ).fetchall()
            ]
            for name in names:
                rows += [repr(r) for r in conn.execute(f'SELECT * FROM "{name}"').fetchall()]
    return "\n".join(rows)


def test_key_input_is_validated(svc: Services) -> None:
    bad: list[dict[str, object]] = [
        {"owner": "", "roles": ["reader"]},
        {"owner": "x\n", "roles": ["reader"]},
        {"owner": "x", "roles": ["root"]},
        {"owner": "x", "roles": ["admin:default"]},
        {"owner": "x", "roles": ["writer:_system"]},
        {"owner": "x", "roles": ["reader:no-such-store"]},
        {"owner": "x", "roles": "reader"},
        {"owner": "x", "roles": ["reader"], "expires_in": 0},
        {"owner": "x", "roles": ["reader"], "expires_in": -5},
        {"owner": "x", "roles": ["reader"], "expires_in": float("nan")},
    ]
    for kwargs in bad:
        with pytest.raises(ValidationError):
            create_key(svc, SYSTEM, **kwargs)  # type: ignore[arg-type]
    assert keys.list_keys(svc, SYSTEM).items == []
    with pytest.raises(NotFoundError):
        keys.get_key(svc, SYSTEM, "01ARZ3NDEKTSV4RRFFQ69G5FAV")
    with pytest.raises(NotFoundError):
        keys.revoke_key(svc, SYSTEM, "nope")
    with pytest.raises(ValidationError):
        keys.rotate_key(svc, SYSTEM, "nope", overlap_seconds=-1)


def test_list_keys_pages_in_creation_order(svc: Services, mint: Mint) -> None:
    ids = [mint("reader")[0] for _ in range(5)]
    seen: list[str] = []
    token: str | None = None
    while True:
        page = keys.list_keys(svc, SYSTEM, page_size=2, continuation_token=token)
        seen += [k.id for k in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert seen == ids


def test_bootstrap_admin_refuses_a_second_admin_unless_forced(
    svc: Services, clock: FixedClock
) -> None:
    first, _ = bootstrap_admin(svc)
    assert first.roles == ("admin",)
    with pytest.raises(ConflictError) as info:
        bootstrap_admin(svc)
    assert "--force-new-admin-key" in info.value.message
    second, secret2 = bootstrap_admin(svc, force=True)
    assert second.id != first.id and authenticate(svc, secret2).key_id == second.id
    # once no usable admin key is left, init mints one again without being forced
    keys.revoke_key(svc, SYSTEM, first.id)
    keys.revoke_key(svc, SYSTEM, second.id)
    third, _ = bootstrap_admin(svc)
    assert third.id not in (first.id, second.id)


def test_the_system_store_is_hidden_and_locked(svc: Services, admin: Caller, mint: Mint) -> None:
    ids = [s.id for s in stores.list_stores(svc, admin).items]
    assert SYSTEM_STORE_ID not in ids and svc.settings.default_store in ids
    assert SYSTEM_STORE_ID not in [s.id for s in stores.list_stores(svc, SYSTEM).items]
    forged = {"writes": [f"system:keyplane#admin@key:{'0' * 26}"]}
    for caller in (admin, SYSTEM):  # not even the in-process system caller
        with pytest.raises(PermissionDeniedError):
            tuples.write_tuples(svc, caller, SYSTEM_STORE_ID, **forged)  # type: ignore[arg-type]
        with pytest.raises(PermissionDeniedError):
            stores.delete_store(svc, caller, SYSTEM_STORE_ID)
    from keyplane.service import models

    with pytest.raises(PermissionDeniedError):
        models.write_model(svc, admin, SYSTEM_STORE_ID, MODEL)
    # admins and auditors may read it (the audit trail of grants); others may not
    auditor = authenticate(svc, mint("auditor")[1])
    writer = authenticate(svc, mint("writer")[1])
    grants = tuples.read_tuples(svc, auditor, SYSTEM_STORE_ID, object="system:keyplane")
    assert {t.relation for t in grants.items} >= {"admin", "auditor", "writer"}
    assert tuples.read_changes(svc, admin, SYSTEM_STORE_ID).changes
    with pytest.raises(PermissionDeniedError):
        tuples.read_tuples(svc, writer, SYSTEM_STORE_ID)


def test_store_lifecycle_links_and_cleans_up_grants(
    svc: Services, admin: Caller, mint: Mint
) -> None:
    stores.create_store(svc, admin, "acme", store_id="acme")
    assert svc.storage.read_tuples(SYSTEM_STORE_ID, object="store:acme").items[0].user == (
        "system:keyplane"
    )
    key_id, secret = mint("writer:acme")
    writer = authenticate(svc, secret)
    stores.get_store(svc, writer, "acme")
    stores.delete_store(svc, admin, "acme")
    assert svc.storage.read_tuples(SYSTEM_STORE_ID, object="store:acme").items == []
    # a store re-created with the same id does not inherit the old per-store grants
    stores.create_store(svc, admin, "acme again", store_id="acme")
    with pytest.raises(PermissionDeniedError):
        stores.get_store(svc, writer, "acme")
    assert keys.get_key(svc, SYSTEM, key_id).roles == ("writer:acme",)


def test_missing_store_is_not_found_for_admins_but_denied_to_others(
    svc: Services, admin: Caller, mint: Mint
) -> None:
    from keyplane.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError):
        stores.get_store(svc, admin, "no-such-store")
    scoped = authenticate(svc, mint("reader:" + svc.settings.default_store)[1])
    with pytest.raises(PermissionDeniedError):
        stores.get_store(svc, scoped, "no-such-store")
    with pytest.raises(PermissionDeniedError):
        stores.get_store(svc, scoped, "bad id with spaces")


class _CountingStorage:
    """The real storage, counting the calls that reach it (a call-count guard, not a mock)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if callable(attr):

            def counted(*args: object, **kwargs: object) -> object:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return counted
        return attr


def test_a_cached_key_costs_no_database_call(svc: Services, clock: FixedClock, mint: Mint) -> None:
    """Authentication and the system-model decision of a busy key stay in memory: the
    database sees the key once per cache TTL, and a last-used write once a minute."""
    _, secret = mint("writer:" + svc.settings.default_store)
    store = svc.settings.default_store
    caller = authenticate(svc, secret)
    counting = _CountingStorage(svc.storage)
    svc.storage = counting  # type: ignore[assignment]
    svc.graphs._storage = counting  # type: ignore[assignment]
    from keyplane.service.auth import Permission, authorize

    for _ in range(100):
        caller = authenticate(svc, secret)
        authorize(svc, caller, Permission.WRITE_TUPLES, store)
        authorize(svc, caller, Permission.READ_STORE, store)
    assert counting.calls == []
    clock.advance(svc.settings.key_cache_ttl)  # the cache entry ages out: one read again
    authenticate(svc, secret)
    assert "get_key" in counting.calls and "touch_key" not in counting.calls
    clock.advance(60)
    counting.calls.clear()
    authenticate(svc, secret)
    assert counting.calls.count("touch_key") == 1

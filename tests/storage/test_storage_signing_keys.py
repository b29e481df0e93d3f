"""Token signing keys in storage (SigningKeyStore, migration 0008) on SQLite and
PostgreSQL: a store's first key, rotation (the active key retires with its publish_until),
one revision and one ledger event per change in the same transaction, concurrent first
keys agree on one, deletion with the store."""

from __future__ import annotations

import threading

import pytest

from keyplane.errors import StoreNotFoundError
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.secrets import MasterKey
from keyplane.storage import Storage
from keyplane.storage.signing_keys_sql import SigningKeyChange
from keyplane.tokens.keys import generate_signing_key, seal_private_key, unseal_private_key

S = "sk"
MASTER = MasterKey(b"k" * 32)


def _add(st: Storage, alg: str = "EdDSA", *, rotate: bool, at: float, until: float | None = None,
         events: object = None) -> SigningKeyChange | None:  # fmt: skip
    g = generate_signing_key(alg)
    return st.add_signing_key(
        S, kid=g.kid, algorithm=alg, public_jwk=g.public_jwk,
        encrypted_private_key=seal_private_key(MASTER, S, g.kid, g.private_pkcs8),
        created_at=at, rotate=rotate, publish_until=until, ledger_events=events,  # type: ignore[arg-type]
    )  # fmt: skip


def _event(change: SigningKeyChange) -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(), time=1.0, store=S, type="signing_key.rotated", caller="system",
        revision=change.revision,
        details={"kid": change.key.kid, "retiring": [k.kid for k in change.retired]},
    )  # fmt: skip
    return [(ev, canonical_json(ev).decode("utf-8"))]


@pytest.fixture
def st(storage: Storage) -> Storage:
    storage.create_store("signing keys", store_id=S)
    return storage


def test_first_key_then_rotation(st: Storage) -> None:
    assert st.list_signing_keys(S) == []
    first = _add(st, rotate=False, at=100.0)
    assert first is not None and first.retired == () and first.revision == 1
    assert st.current_revision(S) == 1
    # a second "first key" finds the active one: no change, no revision
    assert _add(st, rotate=False, at=101.0) is None
    assert st.current_revision(S) == 1
    [k1] = st.list_signing_keys(S)
    assert (k1.kid, k1.state, k1.algorithm, k1.revision) == (first.key.kid, "active", "EdDSA", 1)
    assert k1.public_jwk["kid"] == k1.kid and "d" not in k1.public_jwk
    # the stored private key is sealed, and unseals to the key of the public JWK
    assert unseal_private_key(MASTER, k1) is not None

    second = _add(st, "ES256", rotate=True, at=200.0, until=3800.0)
    assert second is not None and second.revision == 2 == st.current_revision(S)
    assert [k.kid for k in second.retired] == [k1.kid]
    old, new = st.list_signing_keys(S)
    assert (old.kid, old.state, old.retiring_at, old.publish_until, old.revision) == (
        k1.kid, "retiring", 200.0, 3800.0, 2,
    )  # fmt: skip
    assert (new.kid, new.state, new.algorithm) == (second.key.kid, "active", "ES256")
    assert old.state_at(3799.0) == "retiring" and old.state_at(3800.0) == "retired"
    assert not old.published_at(3800.0) and new.published_at(1e12)


def test_the_ledger_event_commits_with_the_key(st: Storage) -> None:
    change = _add(st, rotate=False, at=1.0, events=_event)
    assert change is not None
    [ev] = st.read_events(S)
    assert ev.revision == change.revision and ev.details == {"kid": change.key.kid, "retiring": []}


def test_a_failing_event_rolls_the_key_back(st: Storage) -> None:
    def broken(change: SigningKeyChange) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("no ledger")

    first = _add(st, rotate=False, at=1.0)
    assert first is not None
    with pytest.raises(RuntimeError):
        _add(st, rotate=True, at=2.0, until=10.0, events=broken)
    [k] = st.list_signing_keys(S)
    assert (k.kid, k.state) == (first.key.kid, "active") and st.current_revision(S) == 1


def test_concurrent_first_keys_agree_on_one(st: Storage) -> None:
    results: list[SigningKeyChange | None] = []
    lock = threading.Lock()

    def go() -> None:
        r = _add(st, rotate=False, at=1.0)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [r for r in results if r is not None]
    assert len(made) == 1 and len(results) == 6
    [k] = st.list_signing_keys(S)
    assert k.kid == made[0].key.kid and k.state == "active"


def test_unknown_store_and_deletion(st: Storage) -> None:
    with pytest.raises(StoreNotFoundError):
        st.list_signing_keys("nope")
    with pytest.raises(StoreNotFoundError):
        _add_other = generate_signing_key()
        st.add_signing_key(
            "nope", kid=_add_other.kid, algorithm="EdDSA", public_jwk=_add_other.public_jwk,
            encrypted_private_key=b"x", created_at=1.0, rotate=False,
        )  # fmt: skip
    _add(st, rotate=False, at=1.0)
    st.delete_store(S)
    st.create_store("again", store_id=S)
    assert st.list_signing_keys(S) == []

"""Storage contract: every change method takes ``ledger_events`` and commits the change and
its ledger events in ONE transaction (both backends) — a model, a store or an API key never
exists without its event, and an event that cannot be chained rolls the change back.

"Same transaction" is shown three ways: the callback runs before the change is visible to
another connection (it is inside the open transaction), the event is in the ledger when the
call returns, and a callback that fails (a real encoding failure: NaN is not JSON) leaves
neither the change nor any event behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from keyplane.errors import ConflictError, NotFoundError, StoreNotFoundError
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.storage import Storage
from keyplane.storage.base import KeyRecord

Encoded = list[tuple[LedgerEvent, str]]
MODEL = {"schema_version": "1.1", "type_definitions": [{"type": "user"}]}


def _encoded(store: str, type: str, **fields: Any) -> Encoded:
    ev = LedgerEvent(id=new_event_id(), time=1.0, store=store, type=type, caller="system", **fields)
    return [(ev, canonical_json(ev).decode("utf-8"))]


def _unencodable(store: str) -> Encoded:
    """What the service layer's encoding raises for an event JSON cannot hold."""
    ev = LedgerEvent(
        id=new_event_id(), time=1.0, store=store, type="x", caller="system",
        details={"n": float("nan")},
    )  # fmt: skip
    return [(ev, canonical_json(ev).decode("utf-8"))]  # raises ValueError


def _key(key_id: str = "01J00000000000000000000000") -> KeyRecord:
    return KeyRecord(key_id, "h" * 64, "alice", ("reader",), "", 1.0)


class Spy:
    """A ledger_events callback that records what it was given and what storage showed to
    another connection at that moment (the change must not be visible yet)."""

    def __init__(self, events: Callable[[Any], Encoded], visible: Callable[[], bool]) -> None:
        self.events, self.visible = events, visible
        self.calls: list[Any] = []
        self.seen_from_outside: list[bool] = []

    def __call__(self, made: Any) -> Sequence[tuple[LedgerEvent, str]]:
        self.calls.append(made)
        self.seen_from_outside.append(self.visible())
        return self.events(made)


def _store_exists(storage: Storage, sid: str) -> bool:
    try:
        storage.get_store(sid)
    except StoreNotFoundError:
        return False
    return True


# ------------------------------------------------------------------------------ stores


def test_create_store_commits_its_event_in_the_new_stores_chain(storage: Storage) -> None:
    spy = Spy(
        lambda info: _encoded(info.id, "store.created", resource=info.id),
        lambda: _store_exists(storage, "s1"),
    )
    info = storage.create_store("one", store_id="s1", ledger_events=spy)
    assert [c.id for c in spy.calls] == ["s1"] and spy.seen_from_outside == [False]
    [ev] = storage.read_events("s1")
    assert (ev.seq, ev.type, ev.resource) == (1, "store.created", info.id)
    assert storage.ledger_head("s1") == (1, ev.hash)


def test_create_store_with_a_generated_id_gives_the_callback_that_id(storage: Storage) -> None:
    info = storage.create_store(
        "gen", ledger_events=lambda i: _encoded(i.id, "store.created", resource=i.id)
    )
    [ev] = storage.read_events(info.id)
    assert ev.resource == info.id


def test_create_store_whose_event_fails_does_not_exist(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.create_store("one", store_id="s1", ledger_events=lambda i: _unencodable(i.id))
    assert not _store_exists(storage, "s1")
    assert storage.read_events("s1") == [] and storage.ledger_stores() == []
    storage.create_store("one", store_id="s1")  # the id is still free


def test_delete_store_commits_its_event(storage: Storage) -> None:
    storage.create_store("one", store_id="s1")
    storage.write("s1", writes=[Tuple("doc:1", "viewer", "user:a")])
    spy = Spy(
        lambda sid: _encoded(sid, "store.deleted", resource=sid),
        lambda: _store_exists(storage, "s1"),
    )
    storage.delete_store("s1", ledger_events=spy)
    assert spy.calls == ["s1"] and spy.seen_from_outside == [True]  # not yet deleted outside
    assert not _store_exists(storage, "s1")
    assert [e.type for e in storage.read_events("s1")] == ["store.deleted"]


def test_delete_store_whose_event_fails_keeps_the_store_and_its_data(storage: Storage) -> None:
    storage.create_store("one", store_id="s1")
    storage.write("s1", writes=[Tuple("doc:1", "viewer", "user:a")])
    storage.write_model("s1", MODEL)
    with pytest.raises(ValueError):
        storage.delete_store("s1", ledger_events=_unencodable)
    assert _store_exists(storage, "s1")
    assert storage.read_tuples("s1").items == [Tuple("doc:1", "viewer", "user:a")]
    assert storage.latest_model("s1") is not None
    assert storage.read_events("s1") == []


def test_ensure_reserved_store_records_only_when_it_creates(storage: Storage) -> None:
    calls: list[str] = []

    def events(info: Any) -> Encoded:
        calls.append(info.id)
        return _encoded(info.id, "store.created")

    assert storage.ensure_reserved_store("_sys", "system", ledger_events=events) is True
    assert storage.ensure_reserved_store("_sys", "system", ledger_events=events) is False
    assert calls == ["_sys"]
    assert [e.type for e in storage.read_events("_sys")] == ["store.created"]


def test_ensure_reserved_store_whose_event_fails_creates_nothing(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.ensure_reserved_store("_sys", "system", ledger_events=lambda i: _unencodable(i.id))
    assert not _store_exists(storage, "_sys")


# ------------------------------------------------------------------------------ models


def test_write_model_commits_its_event_with_the_model_id_and_revision(storage: Storage) -> None:
    storage.create_store("one", store_id="s1")
    spy = Spy(
        lambda rec: _encoded("s1", "model.written", model_id=rec.id, revision=rec.revision),
        lambda: storage.latest_model("s1") is not None,
    )
    rec = storage.write_model("s1", MODEL, ledger_events=spy)
    assert spy.seen_from_outside == [False]
    assert (spy.calls[0].id, spy.calls[0].revision) == (rec.id, rec.revision)
    [ev] = storage.read_events("s1")
    assert (ev.type, ev.model_id, ev.revision) == ("model.written", rec.id, rec.revision)
    assert rec.revision == storage.current_revision("s1") == 1


def test_write_model_whose_event_fails_is_not_stored(storage: Storage) -> None:
    storage.create_store("one", store_id="s1")
    with pytest.raises(ValueError):
        storage.write_model("s1", MODEL, ledger_events=lambda rec: _unencodable("s1"))
    assert storage.latest_model("s1") is None
    assert storage.current_revision("s1") == 0
    assert storage.read_events("s1") == []


def test_write_model_to_a_missing_store_records_nothing(storage: Storage) -> None:
    with pytest.raises(StoreNotFoundError):
        storage.write_model("nope", MODEL, ledger_events=lambda r: _encoded("nope", "x"))
    assert storage.read_events("nope") == []


# ------------------------------------------------------------------------------ API keys


def test_create_key_commits_its_event(storage: Storage) -> None:
    spy = Spy(
        lambda r: _encoded("_system", "key.created", resource=f"key:{r.id}"),
        lambda: storage.get_key(_key().id) is not None,
    )
    storage.create_key(_key(), ledger_events=spy)
    assert spy.calls == [_key()] and spy.seen_from_outside == [False]
    [ev] = storage.read_events("_system")
    assert (ev.type, ev.resource) == ("key.created", f"key:{_key().id}")


def test_create_key_whose_event_fails_is_not_stored(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.create_key(_key(), ledger_events=lambda r: _unencodable("_system"))
    assert storage.get_key(_key().id) is None
    assert storage.read_events("_system") == []


def test_create_key_clash_records_nothing(storage: Storage) -> None:
    storage.create_key(_key())
    with pytest.raises(ConflictError):
        storage.create_key(_key(), ledger_events=lambda r: _encoded("_system", "key.created"))
    assert storage.read_events("_system") == []


def test_rotate_key_commits_its_event(storage: Storage) -> None:
    storage.create_key(_key())
    spy = Spy(
        lambda r: _encoded("_system", "key.rotated", resource=f"key:{r.id}"),
        lambda: storage.get_key(_key().id).secret_hash == "n" * 64,  # type: ignore[union-attr]
    )
    rec = storage.rotate_key(
        _key().id, secret_hash="n" * 64, previous_expires_at=9.0, now=2.0, ledger_events=spy
    )
    assert spy.seen_from_outside == [False] and spy.calls == [rec]
    assert [e.type for e in storage.read_events("_system")] == ["key.rotated"]


def test_rotate_key_whose_event_fails_keeps_the_old_secret(storage: Storage) -> None:
    storage.create_key(_key())
    with pytest.raises(ValueError):
        storage.rotate_key(
            _key().id, secret_hash="n" * 64, previous_expires_at=9.0, now=2.0,
            ledger_events=lambda r: _unencodable("_system"),
        )  # fmt: skip
    rec = storage.get_key(_key().id)
    assert rec is not None and rec.secret_hash == "h" * 64 and rec.rotated_at is None
    assert storage.read_events("_system") == []


def test_rotate_revoked_key_records_nothing(storage: Storage) -> None:
    storage.create_key(_key())
    storage.revoke_key(_key().id, now=2.0)
    with pytest.raises(ConflictError):
        storage.rotate_key(
            _key().id, secret_hash="n" * 64, previous_expires_at=9.0, now=3.0,
            ledger_events=lambda r: _encoded("_system", "key.rotated"),
        )  # fmt: skip
    assert storage.read_events("_system") == []


def test_revoke_key_commits_its_event(storage: Storage) -> None:
    storage.create_key(_key())
    spy = Spy(
        lambda r: _encoded("_system", "key.revoked", resource=f"key:{r.id}"),
        lambda: storage.get_key(_key().id).revoked_at is not None,  # type: ignore[union-attr]
    )
    rec = storage.revoke_key(_key().id, now=2.0, ledger_events=spy)
    assert spy.seen_from_outside == [False] and rec.revoked_at == 2.0
    assert [e.type for e in storage.read_events("_system")] == ["key.revoked"]


def test_revoke_key_whose_event_fails_leaves_the_key_valid(storage: Storage) -> None:
    storage.create_key(_key())
    with pytest.raises(ValueError):
        storage.revoke_key(_key().id, now=2.0, ledger_events=lambda r: _unencodable("_system"))
    rec = storage.get_key(_key().id)
    assert rec is not None and rec.revoked_at is None
    assert storage.read_events("_system") == []


# ------------------------------------------------------------------------------ expiry


def test_gc_expired_commits_its_event_only_when_it_removes(storage: Storage) -> None:
    storage.create_store("one", store_id="s1")
    calls: list[tuple[int, int]] = []

    def events(made: tuple[int, int]) -> Encoded:
        calls.append(made)
        return _encoded("s1", "tuples.expired_removed", revision=made[0])

    assert storage.gc_expired("s1", now=10.0, ledger_events=events) == 0
    assert calls == [] and storage.read_events("s1") == []
    storage.write("s1", writes=[Tuple("doc:1", "viewer", "user:a", expires_at=5.0)])
    assert storage.gc_expired("s1", now=10.0, ledger_events=events) == 1
    assert calls == [(2, 1)]
    [ev] = storage.read_events("s1")
    assert ev.revision == 2


def test_gc_expired_whose_event_fails_removes_nothing(storage: Storage) -> None:
    storage.create_store("one", store_id="s1")
    storage.write("s1", writes=[Tuple("doc:1", "viewer", "user:a", expires_at=5.0)])
    with pytest.raises(ValueError):
        storage.gc_expired("s1", now=10.0, ledger_events=lambda m: _unencodable("s1"))
    assert len(storage.read_tuples("s1").items) == 1
    assert storage.current_revision("s1") == 1


# ------------------------------------------------------------------------------ ledger administration


def _retention_set(storage: Storage, sid: str) -> bool:
    return storage.ledger_retention(sid) is not None


def test_set_ledger_retention_commits_its_event(storage: Storage) -> None:
    spy = Spy(
        lambda r: _encoded("s1", "ledger.retention_set", details={"max_events": r.max_events}),
        lambda: _retention_set(storage, "s1"),
    )
    rec = storage.set_ledger_retention(
        "s1", max_age_days=None, max_events=5, now=2.0, ledger_events=spy
    )
    assert spy.calls == [rec] and spy.seen_from_outside == [False]
    [ev] = storage.read_events("s1")
    assert (ev.type, ev.details, ev.seq) == ("ledger.retention_set", {"max_events": 5}, 1)


def test_set_ledger_retention_whose_event_fails_keeps_the_old_setting(storage: Storage) -> None:
    storage.set_ledger_retention("s1", max_age_days=3.0, max_events=None, now=1.0)
    with pytest.raises(ValueError):
        storage.set_ledger_retention(
            "s1", max_age_days=None, max_events=5, now=2.0,
            ledger_events=lambda r: _unencodable("s1"),
        )  # fmt: skip
    kept = storage.ledger_retention("s1")
    assert kept is not None and (kept.max_age_days, kept.max_events) == (3.0, None)
    assert storage.read_events("s1") == []


def test_create_webhook_commits_its_event(storage: Storage) -> None:
    spy = Spy(
        lambda h: _encoded("s1", "ledger.webhook_created", resource=f"webhook:{h.id}"),
        lambda: storage.get_webhook("01WH0000000000000000000000") is not None,
    )
    rec = storage.create_webhook(
        "01WH0000000000000000000000", "s1", "https://x.test/h", b"sealed",
        created_at=1.0, acked_seq=0, ledger_events=spy,
    )  # fmt: skip
    assert spy.seen_from_outside == [False]
    assert (spy.calls[0].id, spy.calls[0].store, spy.calls[0].acked_seq) == (rec.id, "s1", 0)
    [ev] = storage.read_events("s1")
    assert (ev.type, ev.resource) == ("ledger.webhook_created", f"webhook:{rec.id}")


def test_create_webhook_whose_event_fails_is_not_stored(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.create_webhook(
            "01WH0000000000000000000000", "s1", "https://x.test/h", b"sealed",
            created_at=1.0, ledger_events=lambda h: _unencodable("s1"),
        )  # fmt: skip
    assert storage.get_webhook("01WH0000000000000000000000") is None
    assert storage.read_events("s1") == []


def test_delete_webhook_commits_its_event_and_a_missing_one_records_nothing(
    storage: Storage,
) -> None:
    hook = "01WH0000000000000000000000"
    storage.create_webhook(hook, "s1", "https://x.test/h", b"sealed", created_at=1.0)
    with pytest.raises(ValueError):
        storage.delete_webhook("s1", hook, ledger_events=lambda h: _unencodable("s1"))
    assert storage.get_webhook(hook) is not None  # the failed event kept the subscription
    spy = Spy(
        lambda h: _encoded("s1", "ledger.webhook_deleted", resource=f"webhook:{h}"),
        lambda: storage.get_webhook(hook) is None,
    )
    storage.delete_webhook("s1", hook, ledger_events=spy)
    assert spy.calls == [hook] and spy.seen_from_outside == [False]
    assert storage.get_webhook(hook) is None
    with pytest.raises(NotFoundError):  # nothing to delete
        storage.delete_webhook("s1", hook, ledger_events=spy)
    assert spy.calls == [hook]  # not called for a missing subscription
    assert [e.type for e in storage.read_events("s1")] == ["ledger.webhook_deleted"]


def test_prune_events_chains_its_event_after_the_deletion(storage: Storage) -> None:
    for i in range(5):
        storage.append_events(_encoded_events("s1", i))
    spy = Spy(
        lambda n: _encoded("s1", "ledger.pruned", details={"deleted": n}),
        lambda: len(storage.read_events("s1")) < 5,
    )
    assert storage.prune_events("s1", 4, ledger_events=spy) == 3
    assert spy.calls == [3] and spy.seen_from_outside == [False]
    kept = storage.read_events("s1")
    assert [(e.seq, e.type) for e in kept] == [(4, "x"), (5, "x"), (6, "ledger.pruned")]
    assert kept[-1].prev_hash == kept[-2].hash and kept[-1].details == {"deleted": 3}


def test_prune_events_whose_event_fails_deletes_nothing(storage: Storage) -> None:
    for i in range(5):
        storage.append_events(_encoded_events("s1", i))
    with pytest.raises(ValueError):
        storage.prune_events("s1", 4, ledger_events=lambda n: _unencodable("s1"))
    assert [e.seq for e in storage.read_events("s1")] == [1, 2, 3, 4, 5]


def _encoded_events(store: str, i: int) -> list[LedgerEvent]:
    return [LedgerEvent(id=new_event_id(), time=float(i), store=store, type="x", caller="system")]

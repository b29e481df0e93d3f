"""A tuple change and its ledger event commit in one transaction (storage contract, both
backends), and the service layer uses it: no grant without its event."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from keyplane import Keyplane, Settings
from keyplane.errors import StorageError, StoreNotFoundError, TupleExistsError
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.storage import Storage, open_storage


def _event(store: str, revision: int) -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(), time=1.0, store=store, type="tuples.written", caller="system",
        revision=revision,
    )  # fmt: skip
    return [(ev, canonical_json(ev).decode("utf-8"))]


def test_event_commits_with_the_change(storage: Storage) -> None:
    storage.create_store("s", store_id="s")
    rev = storage.write(
        "s", writes=[Tuple("doc:1", "viewer", "user:a")], ledger_events=lambda r: _event("s", r)
    )
    [ev] = storage.read_events("s")
    assert (ev.seq, ev.revision, ev.type) == (1, rev, "tuples.written")
    assert storage.ledger_head("s") == (1, ev.hash)


def test_a_failing_event_rolls_the_change_back(storage: Storage) -> None:
    storage.create_store("s", store_id="s")
    before = storage.current_revision("s")

    def broken(revision: int) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("the ledger cannot take this event")

    with pytest.raises(RuntimeError):
        storage.write("s", writes=[Tuple("doc:1", "viewer", "user:a")], ledger_events=broken)
    assert storage.current_revision("s") == before
    assert storage.read_tuples("s").items == []
    assert storage.read_events("s") == []


def test_a_failing_change_leaves_no_event(storage: Storage) -> None:
    storage.create_store("s", store_id="s")
    storage.write("s", writes=[Tuple("doc:1", "viewer", "user:a")])
    with pytest.raises(TupleExistsError):
        storage.write(
            "s",
            writes=[Tuple("doc:1", "viewer", "user:a")],
            ledger_events=lambda r: _event("s", r),
        )
    assert storage.read_events("s") == []


def test_service_write_records_in_the_same_transaction(storage_url: str) -> None:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store="atx")
    with Keyplane.open(settings=settings) as kp:
        kp.write_model(
            "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
        )
        rev = kp.write_tuples(["doc:1#viewer@user:a"]).revision
        events = kp.services.storage.read_events("atx", filters=None)
        written = [e for e in events if e.type == "tuples.written"]
        assert [e.revision for e in written] == [rev]
        assert written[0].details["written"]
        report = kp.verify_ledger(store="atx")
        assert report.ok


# ------------------------------------------------------------------------------ models, stores, keys

_DIE_AFTER_CHANGES = """
import os, sys
from keyplane import Keyplane, Settings
settings = Settings(database_url=sys.argv[1], poll_interval=0.0, ledger_mode="async",
                    default_store="dflt")
kp = Keyplane.open(settings=settings)
kp.create_store("doomed", store_id="doomed")
rec = kp.write_model("model\\n  schema 1.1\\ntype user\\n")
key, _ = kp.create_key(owner="ops", roles=["reader"])
kp.rotate_key(key.id, overlap_seconds=0)
kp.revoke_key(key.id)
kp.delete_store("doomed")
print(rec.id, key.id, flush=True)
os._exit(0)  # no close(), no drain of the async writer's queue: only committed rows count
"""


def test_changes_keep_their_events_when_the_process_dies_right_after(
    storage_url: str, tmp_path: Path
) -> None:
    """In ``async`` ledger mode a queued event dies with the process; a change's event must
    not, because it commits in the change's own transaction."""
    out = subprocess.run(
        [sys.executable, "-c", _DIE_AFTER_CHANGES, storage_url],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=True,
    )  # fmt: skip
    model_id, key_id = out.stdout.split()
    st = open_storage(storage_url)
    try:
        doomed = [(e.type, e.resource) for e in st.read_events("doomed")]
        assert doomed == [("store.created", "doomed"), ("store.deleted", "doomed")]
        written = [e for e in st.read_events("dflt") if e.type == "model.written"]
        assert [e.model_id for e in written] == [model_id]
        assert written[0].revision is not None
        key_events = [e.type for e in st.read_events("_system") if e.resource == f"key:{key_id}"]
        assert key_events == ["key.created", "key.rotated", "key.revoked"]
        system_types = {e.type for e in st.read_events("_system")}
        assert {"store.created", "model.written"} <= system_types  # the system store itself
    finally:
        st.close()


def _refuse_ledger_rows(db: Path, event_type: str) -> None:
    """A database that refuses one event type's ledger rows (a real failure inside the
    change's transaction)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON ledger_events WHEN NEW.type = '{event_type}'"
            " BEGIN SELECT RAISE(ABORT, 'ledger refused'); END"
        )


def test_a_change_whose_event_cannot_be_stored_does_not_happen(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    settings = Settings(database_url=f"sqlite:///{db}", poll_interval=0.0, default_store="d")
    with Keyplane.open(settings=settings) as kp:
        for event_type in ("model.written", "store.created", "key.created", "store.deleted"):
            _refuse_ledger_rows(db, event_type)
            if event_type == "model.written":
                with pytest.raises(StorageError):
                    kp.write_model("model\n  schema 1.1\ntype user\n")
                assert kp.services.storage.latest_model("d") is None
            elif event_type == "store.created":
                with pytest.raises(StorageError):
                    kp.create_store("x", store_id="x")
                with pytest.raises(StoreNotFoundError):
                    kp.services.storage.get_store("x")
            elif event_type == "key.created":
                with pytest.raises(StorageError):
                    kp.create_key(owner="ops", roles=["reader"])
                assert kp.services.storage.list_keys().items == []
            else:
                kp.services.storage.create_store("y", store_id="y")
                with pytest.raises(StorageError):
                    kp.delete_store("y")
                assert kp.services.storage.get_store("y").id == "y"
            with sqlite3.connect(db) as conn:
                conn.execute("DROP TRIGGER refuse")
        # nothing of the refused changes reached the ledger either, and the chain is whole
        types = [e.type for e in kp.services.storage.read_events("d")]
        assert "model.written" not in types
        assert kp.services.storage.read_events("x") == []
        assert kp.verify_ledger(store="d").ok


def test_key_rotation_and_revocation_events_name_the_key(storage_url: str) -> None:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store="k")
    with Keyplane.open(settings=settings) as kp:
        key, secret = kp.create_key(owner="ops", roles=["reader"])
        kp.rotate_key(key.id, overlap_seconds=60)
        kp.revoke_key(key.id)
        events = [
            e for e in kp.services.storage.read_events("_system") if e.type.startswith("key.")
        ]
        assert [(e.type, e.resource) for e in events] == [
            ("key.created", f"key:{key.id}"),
            ("key.rotated", f"key:{key.id}"),
            ("key.revoked", f"key:{key.id}"),
        ]
        assert events[0].details["roles"] == ["reader"]
        assert events[1].details["previous_secret_valid_for"] == 60
        bodies = [e.to_dict() for e in events]
        assert secret.rsplit("_", 1)[1] not in repr(bodies)


def test_ledger_admin_changes_commit_their_events_themselves(storage_url: str) -> None:
    """Retention, webhooks and pruning chain their events in the change's own transaction,
    not through the group-commit writer: with the writer closed they still record (a
    change recorded afterwards by the writer would fail here with storage_error)."""
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store="adm")
    with Keyplane.open(settings=settings) as kp:
        kp.write_model(
            "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
        )
        for i in range(3):
            kp.write_tuples([f"doc:{i}#viewer@user:a"])
        kp.services.ledger.close()
        with pytest.raises(StorageError):  # the writer's own path is really gone
            kp.services.ledger.record_many([_event("adm", 1)[0][0]])
        kp.set_ledger_retention(max_events=3)
        hook, _ = kp.create_webhook("https://hooks.example.test/l")
        kp.delete_webhook(hook.id)
        pruned = kp.prune_ledger()
        events = kp.services.storage.read_events("adm", limit=1000)
        types = [e.type for e in events]
        assert types[-4:] == [
            "ledger.retention_set", "ledger.webhook_created", "ledger.webhook_deleted",
            "ledger.pruned",
        ]  # fmt: skip
        assert events[-3].resource == events[-2].resource == f"webhook:{hook.id}"
        assert events[-1].details["deleted"] == pruned.deleted > 0
        assert events[-4].details == {"max_age_days": None, "max_events": 3}
        assert len(events) == 4  # the three kept, then the pruning
        assert kp.verify_ledger(store="adm").ok

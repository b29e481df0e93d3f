"""A tuple change and its ledger event commit in one transaction (storage contract, both
backends), and the service layer uses it: no grant without its event."""

from __future__ import annotations

import pytest

from keyplane import Keyplane, Settings
from keyplane.errors import TupleExistsError
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.storage import Storage


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

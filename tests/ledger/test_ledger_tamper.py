"""Tampering with the database behind Keyplane's back, each way the issue names; verify
(through ``verify_stored``, what ``keyplane ledger verify`` runs) reports exactly the kind
and seq of the first problem. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from ledger_helpers import Raw, make_event

from keyplane.ledger.chain import canonical_json, chain_body, chain_hash, verify_stored
from keyplane.ledger.checkpoints import LedgerKeyring
from keyplane.ledger.events import LedgerEvent
from keyplane.storage import Storage

STORE = "t"


@pytest.fixture
def chain(storage: Storage, keyring: LedgerKeyring) -> list[LedgerEvent]:
    """20 events in store t, checkpoints at 10 and 20; a little noise in another store."""
    out: list[LedgerEvent] = []
    for lo in (0, 10):
        out += storage.append_events(
            [make_event(i, store=STORE) for i in range(lo + 1, lo + 11)]
            + [make_event(i, store="other") for i in range(2)]
        )
        last = [e for e in out if e.store == STORE][-1]
        assert last.seq is not None and last.hash is not None
        storage.write_checkpoint(keyring.sign(STORE, last.seq, last.hash, 100.0 + lo))
    events = [e for e in out if e.store == STORE]
    report = verify_stored(storage, STORE)
    assert report.ok and report.last_checkpoint_seq == 20 and report.unsigned_tail == 0
    return events


def _problem(storage: Storage) -> tuple[str, int]:
    report = verify_stored(storage, STORE)
    assert not report.ok and report.first_problem is not None, report
    return report.first_problem.kind, report.first_problem.seq


def _shift(raw: Raw, from_seq: int, by: int) -> None:
    """Renumber rows seq >= from_seq by ``by`` (through a far-away range: no PK clash)."""
    raw.execute(
        "UPDATE ledger_events SET seq = seq + 1000000 WHERE store_id = ? AND seq >= ?",
        (STORE, from_seq),
    )
    raw.execute(
        "UPDATE ledger_events SET seq = seq - 1000000 + ? WHERE store_id = ? AND seq >= 1000000",
        (by, STORE),
    )


def _forge(prev: LedgerEvent, seq: int) -> tuple[LedgerEvent, str]:
    """A forged event that chains perfectly after ``prev`` (hashes are public knowledge)."""
    fake = make_event(999, store=STORE, subject="user:mallory")
    assert prev.hash is not None
    body = chain_body(canonical_json(fake).decode(), seq, prev.hash)
    return fake.chained(seq, prev.hash, chain_hash(prev.hash, body.encode())), body


def _insert_row(raw: Raw, e: LedgerEvent, body: str) -> None:
    raw.execute(
        "INSERT INTO ledger_events (store_id, seq, id, time, type, caller, subject, outcome,"
        " body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            STORE,
            e.seq,
            e.id,
            e.time,
            e.type,
            e.caller,
            e.subject,
            e.outcome,
            body,
            e.prev_hash,
            e.hash,
        ),
    )


def test_an_edited_event_body(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    raw.execute(
        "UPDATE ledger_events SET body = replace(body, '\"allow\"', '\"deny\"'), outcome = 'deny'"
        " WHERE store_id = ? AND seq = 7",
        (STORE,),
    )
    assert _problem(storage) == ("modified", 7)


def test_an_edited_and_rehashed_event(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    (row,) = raw.execute(
        "SELECT body, prev_hash FROM ledger_events WHERE store_id = ? AND seq = 7", (STORE,)
    )
    body = row[0].replace('"allow"', '"deny"')
    raw.execute(
        "UPDATE ledger_events SET body = ?, hash = ? WHERE store_id = ? AND seq = 7",
        (body, chain_hash(row[1], body.encode()), STORE),
    )
    assert _problem(storage) == ("modified", 7)


def test_an_unparseable_body(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    raw.execute(
        "UPDATE ledger_events SET body = 'garbage' WHERE store_id = ? AND seq = 4", (STORE,)
    )
    assert _problem(storage) == ("modified", 4)


def test_a_deleted_event(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    raw.execute("DELETE FROM ledger_events WHERE store_id = ? AND seq = 7", (STORE,))
    assert _problem(storage) == ("deleted", 7)


def test_a_deleted_and_renumbered_event(
    storage: Storage, raw: Raw, chain: list[LedgerEvent]
) -> None:
    raw.execute("DELETE FROM ledger_events WHERE store_id = ? AND seq = 7", (STORE,))
    _shift(raw, 8, -1)  # close the gap in the seq column; bodies still say 8, 9, …
    assert _problem(storage) == ("deleted", 7)


def test_deleted_last_events(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    raw.execute("DELETE FROM ledger_events WHERE store_id = ? AND seq >= 18", (STORE,))
    raw.execute(  # even with the head moved back, the checkpoint at 20 remembers
        "UPDATE ledger_heads SET seq = 17, hash = ? WHERE store_id = ?", (chain[16].hash, STORE)
    )
    assert _problem(storage) == ("deleted", 18)


def test_an_inserted_forged_event(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    _shift(raw, 7, +1)
    forged, body = _forge(chain[5], 7)
    _insert_row(raw, forged, body)
    assert _problem(storage) == ("inserted", 7)


def test_two_swapped_events(storage: Storage, raw: Raw, chain: list[LedgerEvent]) -> None:
    raw.execute("UPDATE ledger_events SET seq = -7 WHERE store_id = ? AND seq = 7", (STORE,))
    raw.execute("UPDATE ledger_events SET seq = 7 WHERE store_id = ? AND seq = 8", (STORE,))
    raw.execute("UPDATE ledger_events SET seq = 8 WHERE store_id = ? AND seq = -7", (STORE,))
    assert _problem(storage) == ("reordered", 7)


def test_a_corrupted_checkpoint_signature(
    storage: Storage, raw: Raw, chain: list[LedgerEvent]
) -> None:
    (row,) = raw.execute(
        "SELECT signature FROM ledger_checkpoints WHERE store_id = ? AND seq = 10", (STORE,)
    )
    sig = bytes(row[0])
    raw.execute(
        "UPDATE ledger_checkpoints SET signature = ? WHERE store_id = ? AND seq = 10",
        (bytes([sig[0] ^ 0x01]) + sig[1:], STORE),
    )
    assert _problem(storage) == ("bad_signature", 10)


def test_a_rehashed_chain_is_caught_by_the_checkpoint(
    storage: Storage, raw: Raw, chain: list[LedgerEvent]
) -> None:
    """Change event 13 and recompute every later hash and the head: only the signature
    at seq 20 can tell."""
    rows = raw.execute(
        "SELECT seq, body FROM ledger_events WHERE store_id = ? AND seq >= 13 ORDER BY seq",
        (STORE,),
    )
    prev = chain[11].hash
    assert prev is not None
    for seq, body in rows:
        e = LedgerEvent.from_dict({**json.loads(body), "prev_hash": None, "seq": None})
        if seq == 13:
            e = replace(e, outcome="deny")
        new_body = chain_body(canonical_json(e).decode(), seq, prev)
        digest = chain_hash(prev, new_body.encode())
        raw.execute(
            "UPDATE ledger_events SET body = ?, prev_hash = ?, hash = ? WHERE store_id = ? AND seq = ?",
            (new_body, prev, digest, STORE, seq),
        )
        prev = digest
    raw.execute("UPDATE ledger_heads SET hash = ? WHERE store_id = ?", (prev, STORE))
    assert _problem(storage) == ("checkpoint_mismatch", 20)


def test_appended_after_the_last_checkpoint(
    storage: Storage, raw: Raw, chain: list[LedgerEvent]
) -> None:
    forged, body = _forge(chain[-1], 21)
    _insert_row(raw, forged, body)
    # the database's own head was not moved: the row was not appended by Keyplane
    assert _problem(storage) == ("inserted", 21)
    # a careful forger moves the head too: the chain holds, but the tail is unsigned
    raw.execute(
        "UPDATE ledger_heads SET seq = 21, hash = ? WHERE store_id = ?", (forged.hash, STORE)
    )
    report = verify_stored(storage, STORE)
    assert report.ok
    assert (report.last_checkpoint_seq, report.last_seq, report.unsigned_tail) == (20, 21, 1)


def test_the_other_store_is_unaffected(
    storage: Storage, raw: Raw, chain: list[LedgerEvent]
) -> None:
    raw.execute("DELETE FROM ledger_events WHERE store_id = ? AND seq = 3", (STORE,))
    assert _problem(storage) == ("deleted", 3)
    assert verify_stored(storage, "other").ok

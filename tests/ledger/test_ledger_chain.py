"""The hash chain and checkpoints, offline: canonical JSON, hashing, signatures, verify."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_helpers import make_event

from keyplane.ledger import chain
from keyplane.ledger.chain import (
    GENESIS_HASH,
    canonical_json,
    chain_body,
    chain_hash,
    read_export,
    verify,
    verify_export,
    write_export,
)
from keyplane.ledger.checkpoints import (
    Checkpoint,
    LedgerKeyRecord,
    LedgerKeyring,
    checkpoint_message,
    verify_checkpoint,
)
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.secrets import MasterKey


def test_canonical_json_is_sorted_compact_utf8_and_omits_only_the_hash() -> None:
    e = LedgerEvent(
        id="01A",
        time=1.5,
        store="s",
        type="decision.check",
        caller="key:k",
        subject="user:zoë",
        actor_chain=("agent:a", "agent:b"),
        details={"b": 1, "a": [1.0, 2], "z": None},
        seq=3,
        prev_hash="ab" * 32,
        hash="should-not-appear",
    )
    text = canonical_json(e).decode("utf-8")
    assert "should-not-appear" not in text and '"hash"' not in text
    assert " " not in text.replace("user:zoë", "")  # no whitespace at all
    assert "zoë" in text  # UTF-8, not \\u escapes
    parsed = json.loads(text)
    assert list(parsed) == sorted(parsed)
    assert parsed["actor_chain"] == ["agent:a", "agent:b"]  # tuples as lists
    assert text.count('"a":[1.0,2]') == 1  # floats keep their repr, ints stay ints
    assert parsed["seq"] == 3 and parsed["prev_hash"] == "ab" * 32  # chain fields covered


def test_canonical_json_is_stable_across_round_trips_and_construction_order() -> None:
    e = make_event(7, details={"x": {"b": 2, "a": 1}, "f": 0.1 + 0.2, "big": 1e16})
    again = LedgerEvent.from_dict(json.loads(json.dumps(e.to_dict())))
    assert canonical_json(again) == canonical_json(e)
    shuffled = replace(e, details={"big": 1e16, "f": 0.1 + 0.2, "x": {"a": 1, "b": 2}})
    assert canonical_json(shuffled) == canonical_json(e)
    # a pinned encoding: changing it would break every existing chain
    fixed = LedgerEvent(
        id="01X", time=1800000000.25, store="s", type="store.created", caller="system"
    )
    assert canonical_json(fixed) == (
        b'{"action":null,"actor_chain":[],"caller":"system","decision_id":null,"details":{},'
        b'"id":"01X","model_id":null,"outcome":"ok","policy_version":null,"prev_hash":null,'
        b'"purpose":null,"reasons":[],"request_id":null,"resource":null,"revision":null,'
        b'"seq":null,"store":"s","subject":null,"time":1800000000.25,"type":"store.created"}'
    )


def test_canonical_json_refuses_values_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        canonical_json(make_event(1, details={"x": float("nan")}))
    with pytest.raises(ValueError):
        canonical_json(make_event(1, details={"x": {1, 2}}))


def test_chain_hash_is_sha256_over_prev_newline_canonical() -> None:
    body = b'{"a":1}'
    expected = hashlib.sha256(GENESIS_HASH.encode() + b"\n" + body).hexdigest()
    assert chain_hash(GENESIS_HASH, body) == expected
    assert GENESIS_HASH == "0" * 64
    assert chain_hash("1" * 64, body) != expected


def _chain(n: int, store: str = "s1") -> list[LedgerEvent]:
    out, prev = [], GENESIS_HASH
    for i in range(1, n + 1):
        e = replace(make_event(i, store=store), seq=i, prev_hash=prev)
        prev = chain_hash(prev, canonical_json(e))
        out.append(replace(e, hash=prev))
    return out


class _Keys:
    def __init__(self) -> None:
        self.rows: dict[str, list[LedgerKeyRecord]] = {}

    def put_ledger_key(
        self, store_id: str, key_id: str, public_key: bytes, enc: bytes, at: float
    ) -> None:
        self.rows.setdefault(store_id, []).append(LedgerKeyRecord(key_id, public_key, enc, at))

    def ledger_keys(self, store_id: str) -> list[LedgerKeyRecord]:
        return list(self.rows.get(store_id, []))


def _ring() -> LedgerKeyring:
    mk = MasterKey(os.urandom(32))
    return LedgerKeyring(_Keys(), lambda: mk)


def test_sign_and_verify_a_checkpoint() -> None:
    ring = _ring()
    cp = ring.sign("s1", 5, "ab" * 32, 1_800_000_000.5)
    keys = ring.public_keys("s1")
    assert list(keys) == [cp.key_id] and cp.key_id.startswith("lk_")
    assert verify_checkpoint(cp, keys[cp.key_id])
    for forged in (
        replace(cp, seq=6),
        replace(cp, hash="cd" * 32),
        replace(cp, store="s2"),
        replace(cp, time=cp.time + 1),
        replace(cp, signature=bytes([cp.signature[0] ^ 1]) + cp.signature[1:]),
    ):
        assert not verify_checkpoint(forged, keys[cp.key_id])
    other = _ring().sign("s1", 5, "ab" * 32, 1.0)
    assert not verify_checkpoint(cp, bytes(32))  # not the signer's key
    assert checkpoint_message("s", 1, "h", 2.0).startswith(b"keyplane-ledger-checkpoint/v1\n")
    assert other.key_id != cp.key_id


def test_the_keyring_reuses_the_stores_key_and_keeps_it_encrypted() -> None:
    store = _Keys()
    mk = MasterKey(os.urandom(32))
    ring = LedgerKeyring(store, lambda: mk)
    a = ring.sign("s1", 1, "0" * 64, 1.0)
    b = LedgerKeyring(store, lambda: mk).sign("s1", 2, "1" * 64, 2.0)  # another process
    assert a.key_id == b.key_id
    assert len(store.rows["s1"]) == 1
    rec = store.rows["s1"][0]
    assert rec.encrypted_private_key.startswith(b"kp1") and len(rec.public_key) == 32
    with pytest.raises(Exception, match="decrypt"):  # another master key cannot use it
        LedgerKeyring(store, lambda: MasterKey(os.urandom(32))).sign("s1", 3, "2" * 64, 3.0)
    assert ring.sign("s2", 1, "0" * 64, 1.0).key_id != a.key_id  # one key per store


def _signed(events: list[LedgerEvent], ring: LedgerKeyring, *seqs: int) -> list[Checkpoint]:
    return [ring.sign(events[0].store, s, events[s - 1].hash or "", 1.0 + s) for s in seqs]


def test_verify_accepts_a_valid_chain_and_reports_the_unsigned_tail() -> None:
    ring = _ring()
    events = _chain(12)
    report = verify(events, _signed(events, ring, 5, 10), ring.public_keys("s1"))
    assert report.ok and report.first_problem is None
    assert (report.checked, report.last_seq, report.last_checkpoint_seq) == (12, 12, 10)
    assert report.unsigned_tail == 2
    empty = verify([], [], {})
    assert empty.ok and empty.checked == 0


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        ("edit", "modified", 4),
        ("delete", "deleted", 4),
        ("delete_range", "deleted", 4),
        ("swap", "reordered", 4),
        ("insert", "inserted", 4),
        ("insert_naive", "inserted", 4),
        ("rehash_from", "checkpoint_mismatch", 5),
        ("truncate", "deleted", 9),
    ],
)
def test_verify_names_the_first_problem(tamper: str, kind: str, seq: int) -> None:
    ring = _ring()
    events = _chain(10)
    cps = _signed(events, ring, 5, 10)
    ev = list(events)
    if tamper == "edit":
        ev[3] = replace(ev[3], outcome="deny")
    elif tamper == "delete":
        del ev[3]
    elif tamper == "delete_range":
        del ev[3:6]
    elif tamper == "swap":
        ev[3], ev[4] = ev[4], ev[3]
    elif tamper in ("insert", "insert_naive"):
        forged = replace(make_event(99), seq=4, prev_hash=ev[2].hash)
        digest = chain_hash(ev[2].hash or "", canonical_json(forged))
        forged = replace(forged, hash=digest if tamper == "insert" else "f" * 64)
        ev.insert(3, forged)
    elif tamper == "rehash_from":
        # change event 4 and recompute every later hash: only the signature can tell
        ev = ev[:3]
        prev = ev[-1].hash or ""
        for e in events[3:]:
            e = replace(e, prev_hash=prev, outcome="deny" if e.seq == 4 else e.outcome)
            prev = chain_hash(prev, canonical_json(e))
            ev.append(replace(e, hash=prev))
    elif tamper == "truncate":
        ev = ev[:8]
    report = verify(ev, cps, ring.public_keys("s1"))
    assert not report.ok
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.seq) == (kind, seq), report


def test_verify_reports_a_bad_checkpoint_signature() -> None:
    ring = _ring()
    events = _chain(10)
    good, bad = _signed(events, ring, 5, 10)
    bad = replace(bad, signature=bytes(64))
    report = verify(events, [good, bad], ring.public_keys("s1"))
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.seq) == ("bad_signature", 10)
    # an unknown key is as bad as a wrong signature
    report = verify(events, [good], {})
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.seq) == ("bad_signature", 5)


def test_verify_checks_the_database_head() -> None:
    events = _chain(6)
    ok = verify(events, [], {}, head=(6, events[-1].hash or ""), max_seq=6)
    assert ok.ok
    gone = verify(events[:5], [], {}, head=(6, events[-1].hash or ""), max_seq=6)
    assert gone.first_problem is not None and (gone.first_problem.kind, gone.first_problem.seq) == (
        "deleted",
        6,
    )
    extra = verify(events, [], {}, head=(5, events[4].hash or ""), max_seq=5)
    assert extra.first_problem is not None
    assert (extra.first_problem.kind, extra.first_problem.seq) == ("inserted", 6)


def test_a_pruned_chain_verifies_from_its_signed_anchor() -> None:
    ring = _ring()
    events = _chain(10)
    cps = _signed(events, ring, 4, 10)
    report = verify(events[4:], cps, ring.public_keys("s1"))
    assert report.ok and report.checked == 6 and report.last_checkpoint_seq == 10
    unanchored = verify(events[4:], cps[1:], ring.public_keys("s1"))
    assert unanchored.first_problem is not None
    assert (unanchored.first_problem.kind, unanchored.first_problem.seq) == ("deleted", 1)


def test_the_export_format_round_trips_and_verifies() -> None:
    ring = _ring()
    a, b = _chain(5, "s1"), _chain(3, "s2")
    cps = _signed(a, ring, 5) + _signed(b, ring, 3)
    buf = io.StringIO()
    n = write_export(
        buf, [*a, *b], cps, {"s1": ring.public_keys("s1"), "s2": ring.public_keys("s2")}
    )
    assert n == 8
    lines = buf.getvalue().splitlines()
    assert sum('"checkpoint"' in ln[:14] for ln in lines) == 2
    assert sum(ln.startswith('{"public_key"') for ln in lines) == 2
    parsed = read_export(io.StringIO(buf.getvalue()))
    assert parsed.events["s1"] == a and parsed.events["s2"] == b
    reports = verify_export(parsed)
    assert all(r.ok for r in reports.values()) and reports["s1"].last_checkpoint_seq == 5
    # one edited line in the file is found
    edited = buf.getvalue().replace('"user:u2"', '"user:mallory"', 1)
    report = verify_export(read_export(io.StringIO(edited)))["s1"]
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.seq) == ("modified", 2)
    with pytest.raises(ValueError, match="line 1"):
        read_export(["not json\n"])


@pytest.mark.parametrize(
    "details",
    [
        {},
        {"prev_hash": None, "seq": None},
        {"z": {"prev_hash": None, "seq": None}, "a": ['"prev_hash":null', '"seq":null']},
        {"note": 'x","prev_hash":null,"seq":null'},
    ],
)
def test_chain_body_splices_exactly_what_canonical_json_would_encode(details: dict) -> None:
    e = make_event(3, details=details, reasons=('"seq":null', '"prev_hash":null'))
    e = replace(e, subject='"prev_hash":null', purpose='"seq":null')
    template = canonical_json(e).decode()
    for seq, prev in ((1, GENESIS_HASH), (123456789, "ab" * 32)):
        assert chain_body(template, seq, prev) == canonical_json(e.chained(seq, prev, "h")).decode()


# ------------------------------------------------------------------------------ fast encoding

_text = st.text(max_size=12)
_opt = st.none() | _text


@given(
    action=_opt, caller=_text, subject=_opt, resource=_opt, purpose=_opt, request_id=_opt,
    actors=st.lists(_text, max_size=3), reasons=st.lists(_text, max_size=3),
    time=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5),
    revision=st.none() | st.integers(-(2**70), 2**70) | st.booleans(),
    seq=st.none() | st.integers(0, 2**64), prev=st.none() | st.text(max_size=64),
    details=st.dictionaries(_text, st.none() | st.integers() | _text | st.lists(st.integers(), max_size=2), max_size=3),
)  # fmt: skip
def test_canonical_text_fast_path_equals_the_generic_encoder(
    action: str | None, caller: str, subject: str | None, resource: str | None,
    purpose: str | None, request_id: str | None, actors: list[str], reasons: list[str],
    time: float, revision: int | None, seq: int | None, prev: str | None,
    details: dict[str, object],
) -> None:  # fmt: skip
    e = LedgerEvent(
        id=new_event_id(), time=time, store="s\u00e9", type="decision.check", caller=caller,
        subject=subject, actor_chain=tuple(actors), purpose=purpose, action=action,
        resource=resource, reasons=tuple(reasons), revision=revision, request_id=request_id,
        details=details, seq=seq, prev_hash=prev,
    )  # fmt: skip
    try:
        expected = chain._generic_text(e)
    except ValueError:
        with pytest.raises(ValueError):
            chain.canonical_text(e)
        return
    assert chain.canonical_text(e) == expected
    assert canonical_json(e) == expected.encode("utf-8")

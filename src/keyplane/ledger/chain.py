"""The hash chain: canonical JSON, chaining, offline verification and the export format.

Each store has one chain. Event ``seq`` (1, 2, 3, … with no gaps) records ``prev_hash``,
the hash of event ``seq - 1`` (:data:`GENESIS_HASH`, 64 zeros, for the first), and

    hash = hex SHA-256( prev_hash (ASCII) || "\\n" || canonical_json(event) )

where :func:`canonical_json` covers every field of the event except ``hash`` itself (so
``seq`` and ``prev_hash`` are covered too). Changing, removing, adding or moving any event
therefore breaks the chain after it; signed checkpoints (:mod:`keyplane.ledger.checkpoints`)
pin the chain head so that even a fully re-hashed chain is caught.

:func:`verify` recomputes everything from the events' content — it trusts no stored hash
— and reports the FIRST problem: ``modified``, ``deleted``, ``inserted``, ``reordered``,
``bad_signature`` or ``checkpoint_mismatch``, with its seq, plus how many events after the
last valid checkpoint are not yet covered by a signature (the unsigned tail).

The export format (JSON Lines, :func:`write_export` / :func:`read_export`), one JSON
object per line:

* ``{"public_key": {"store": S, "key_id": K, "public_key": <base64url raw Ed25519>}}``
* one event per line: the event's fields (``seq``, ``prev_hash`` and ``hash`` included);
* ``{"checkpoint": {"store", "seq", "hash", "time", "key_id", "signature"}}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any, Literal

from keyplane.ledger.checkpoints import Checkpoint, b64decode, b64encode, verify_checkpoint
from keyplane.ledger.events import LedgerEvent

if TYPE_CHECKING:
    from keyplane.storage.base import LedgerStore

__all__ = [
    "GENESIS_HASH",
    "LedgerExport",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "canonical_json",
    "chain_body",
    "chain_hash",
    "event_from_body",
    "events_from_rows",
    "export_lines",
    "read_export",
    "verify",
    "verify_export",
    "verify_stored",
    "write_export",
]

GENESIS_HASH = "0" * 64

ProblemKind = Literal[
    "modified", "deleted", "inserted", "reordered", "bad_signature", "checkpoint_mismatch"
]


def _dumps(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_json(event: LedgerEvent) -> bytes:
    """The bytes an event's hash covers: every field but ``hash``, as JSON with sorted keys,
    no whitespace, UTF-8 (not ASCII-escaped), floats as Python's shortest ``repr``, tuples
    as lists. Raises ``ValueError`` for values JSON cannot hold (NaN, non-str keys, sets…)."""
    return canonical_text(event).encode("utf-8")


def _generic_text(event: LedgerEvent) -> str:
    body = event.to_dict()
    del body["hash"]
    try:
        return _dumps(body)
    except TypeError as exc:
        raise ValueError(f"ledger event {event.id} is not JSON: {exc}") from exc


_str = json.encoder.encode_basestring  # the C string encoder json.dumps itself uses
_float_repr = float.__repr__


def _s(value: object) -> str | None:
    """A string field as JSON, or None when it is not a plain str/None (slow path)."""
    if value is None:
        return "null"
    if type(value) is str:
        return _str(value)
    return None


def canonical_text(event: LedgerEvent) -> str:
    """:func:`canonical_json` as text — what the ledger writer hashes and stores.

    Every event is encoded once on the decision path, so the common shape (string fields,
    a finite float time, int revision/seq, tuples of strings) is written field by field in
    the fixed sorted key order, ~3x faster than ``json.dumps(to_dict())``; anything else
    takes the generic encoder. Both give the same text (tests/ledger/test_ledger_chain.py
    checks them against each other on random events)."""
    e = event
    t = e.time
    rev, seq = e.revision, e.seq
    fields = (
        _s(e.action), _s(e.caller), _s(e.decision_id), _s(e.id), _s(e.model_id), _s(e.outcome),
        _s(e.policy_version), _s(e.prev_hash), _s(e.purpose), _s(e.request_id), _s(e.resource),
        _s(e.store), _s(e.subject), _s(e.type),
    )  # fmt: skip
    if (
        None in fields
        or not (type(t) is float and t - t == 0.0)  # finite floats only (NaN/inf: slow path)
        or not (rev is None or type(rev) is int)
        or not (seq is None or type(seq) is int)
        or type(e.actor_chain) is not tuple
        or type(e.reasons) is not tuple
    ):
        return _generic_text(e)
    chain = e.actor_chain
    reasons = e.reasons
    if chain and any(type(a) is not str for a in chain):
        return _generic_text(e)
    if reasons and any(type(r) is not str for r in reasons):
        return _generic_text(e)
    details = e.details
    if not details:
        if type(details) is not dict and not isinstance(details, Mapping):
            return _generic_text(e)
        dtext = "{}"
    else:
        try:
            dtext = _dumps(dict(details))
        except TypeError as exc:
            raise ValueError(f"ledger event {e.id} is not JSON: {exc}") from exc
    (action, caller, decision_id, eid, model_id, outcome, policy_version, prev_hash, purpose,
     request_id, resource, store, subject, etype) = fields  # fmt: skip
    actors = "[" + ",".join(map(_str, chain)) + "]" if chain else "[]"
    why = "[" + ",".join(map(_str, reasons)) + "]" if reasons else "[]"
    return (
        f'{{"action":{action},"actor_chain":{actors},"caller":{caller},'
        f'"decision_id":{decision_id},"details":{dtext},"id":{eid},"model_id":{model_id},'
        f'"outcome":{outcome},"policy_version":{policy_version},"prev_hash":{prev_hash},'
        f'"purpose":{purpose},"reasons":{why},"request_id":{request_id},'
        f'"resource":{resource},"revision":{"null" if rev is None else int.__repr__(rev)},'
        f'"seq":{"null" if seq is None else int.__repr__(seq)},"store":{store},'
        f'"subject":{subject},"time":{_float_repr(t)},"type":{etype}}}'
    )


_PREV_NULL = '"prev_hash":null'
_SEQ_NULL = '"seq":null'


def chain_body(template: str, seq: int, prev_hash: str) -> str:
    """The canonical JSON of an event given ``canonical_json`` of it UNCHAINED (its
    ``template``): the same text as ``canonical_json(event.chained(seq, prev_hash, …))``,
    without encoding the event again (storage's hot path).

    The top-level ``"prev_hash":null`` and ``"seq":null`` are the LAST occurrences of those
    byte sequences: keys are sorted, the only fields after them hold strings, numbers or
    lists of strings (where a quote is always escaped), and nested ``details`` keys come
    before them."""
    i = template.rfind(_PREV_NULL)
    j = template.rfind(_SEQ_NULL)
    if i < 0 or j < i:
        raise ValueError("not the canonical JSON of an unchained event")
    return (
        f'{template[:i]}"prev_hash":"{prev_hash}"{template[i + len(_PREV_NULL) : j]}'
        f'"seq":{int(seq)}{template[j + len(_SEQ_NULL) :]}'
    )


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """hex SHA-256 over ``prev_hash`` (ASCII), a newline, then the canonical bytes."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical)
    return h.hexdigest()


def event_from_body(body: str | bytes, hash: str | None) -> LedgerEvent:
    """An event from its stored canonical JSON and its stored hash."""
    return replace(LedgerEvent.from_dict(json.loads(body)), hash=hash)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    seq: int
    event_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" + (f" (event {self.event_id})" if self.event_id else "")
        return f"{self.kind} at {where}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify` found. ``ok`` is True when there is no problem; an unsigned tail
    (events after the last valid checkpoint) is reported, not a failure."""

    ok: bool
    store: str | None
    checked: int
    first_problem: Problem | None
    last_seq: int
    last_checkpoint_seq: int
    unsigned_tail: int

    def to_dict(self) -> dict[str, Any]:
        p = self.first_problem
        return {
            "ok": self.ok,
            "store": self.store,
            "checked": self.checked,
            "last_seq": self.last_seq,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "unsigned_tail": self.unsigned_tail,
            "first_problem": None
            if p is None
            else {"kind": p.kind, "seq": p.seq, "event_id": p.event_id, "message": p.message},
        }


def _computed(e: LedgerEvent) -> str | None:
    try:
        return chain_hash(e.prev_hash or "", canonical_json(e))
    except ValueError:
        return None


def verify(
    events: Iterable[LedgerEvent],
    checkpoints: Sequence[Checkpoint],
    public_keys: Mapping[str, bytes],
    *,
    store: str | None = None,
    head: tuple[int, str] | None = None,
    max_seq: int | Callable[[], int] | None = None,
) -> VerifyReport:
    """Verify one store's chain offline, from its events in storage order (by seq).

    ``checkpoints`` are the store's signed checkpoints and ``public_keys`` the store's
    ledger public keys by key id. A database may add what it knows of the chain head:
    ``head`` — ``(seq, hash)`` read BEFORE the events (every event up to it must be
    present and end on that hash) — and ``max_seq``, the head seq read AFTER the events
    (a callable is called once the events are consumed, so they can stream)
    (an event beyond it was not appended by Keyplane).
    """
    it = iter(events)
    first = next(it, None)
    if store is None:
        store = (
            first.store if first is not None else (checkpoints[0].store if checkpoints else None)
        )
    cps = sorted((c for c in checkpoints if store is None or c.store == store), key=lambda c: c.seq)
    good_sig: dict[int, Checkpoint] = {}
    sig_problem: Problem | None = None
    for cp in cps:
        key = public_keys.get(cp.key_id)
        if key is None or not verify_checkpoint(cp, key):
            if sig_problem is None:
                why = "unknown signing key " + cp.key_id if key is None else "invalid signature"
                sig_problem = Problem("bad_signature", cp.seq, None, f"checkpoint: {why}")
        else:
            good_sig.setdefault(cp.seq, cp)

    expected, prev_hash = 1, GENESIS_HASH
    if first is not None and first.seq is not None and first.seq > 1:
        anchor = good_sig.get(first.seq - 1)
        if anchor is not None:  # a pruned chain resumes from a signed anchor
            expected, prev_hash = anchor.seq + 1, anchor.hash
    start = expected
    # seq -> recomputed hash, kept only where a checkpoint or the head needs it (streaming)
    wanted = set(good_sig) | ({head[0]} if head is not None else set())
    computed_at: dict[int, str] = {}
    problem: Problem | None = None
    checked = 0
    prev_event: LedgerEvent | None = None
    prev_prev_hash: str | None = None
    pending: LedgerEvent | None = first
    while pending is not None:
        e = pending
        pending = next(it, None)
        s = e.seq
        if s is None or (store is not None and e.store != store):
            problem = Problem("modified", expected, e.id, "the event's seq or store was changed")
            break
        if s > expected:
            rest_has = _seq_follows(expected, pending, it)
            if rest_has:
                problem = Problem(
                    "reordered", expected, None, f"event {expected} comes after event {s}"
                )
            else:
                missing = f"{expected}" if s == expected + 1 else f"{expected}..{s - 1}"
                problem = Problem("deleted", expected, None, f"event(s) {missing} are missing")
            break
        if s < expected:
            if prev_event is not None and prev_event.seq == s and e.prev_hash == prev_prev_hash:
                problem = Problem(
                    "inserted",
                    s,
                    prev_event.id,
                    f"two events claim seq {s}; event {prev_event.id} was inserted before"
                    f" event {e.id}",
                )
            else:
                problem = Problem(
                    "inserted", s, e.id, f"seq {s} appears again after {expected - 1}"
                )
            break
        if e.prev_hash != prev_hash:
            attested = prev_event is not None and (
                (att := good_sig.get(s - 1)) is not None and att.hash == prev_hash
            )
            if prev_event is None or attested:
                problem = Problem(
                    "modified", s, e.id, "its prev_hash does not match the chain before it"
                )
            else:
                problem = Problem(
                    "modified",
                    s - 1,
                    prev_event.id,
                    f"its content no longer hashes to the prev_hash recorded by event {s}",
                )
            break
        got = _computed(e)
        if got is None or got != e.hash:
            if pending is not None and pending.seq == s and pending.prev_hash == prev_hash:
                problem = Problem(
                    "inserted", s, e.id, f"a forged event was inserted before the real event {s}"
                )
            else:
                problem = Problem("modified", s, e.id, "its content does not match its hash")
            break
        if s in wanted:
            computed_at[s] = got
        checked += 1
        prev_prev_hash, prev_hash, prev_event = prev_hash, got, e
        expected = s + 1

    last_seq = expected - 1
    candidates: list[Problem] = [p for p in (problem, sig_problem) if p is not None]
    last_cp = start - 1 if start > 1 else 0
    limit = problem.seq if problem is not None else None
    for seq, cp in sorted(good_sig.items()):
        if seq < start or (limit is not None and seq >= limit):
            continue
        if seq > last_seq:
            candidates.append(
                Problem(
                    "deleted",
                    last_seq + 1,
                    None,
                    f"checkpoint at seq {seq} signs events the chain no longer holds",
                )
            )
            break
        if computed_at.get(seq) != cp.hash:
            candidates.append(
                Problem(
                    "checkpoint_mismatch",
                    seq,
                    None,
                    f"the chain up to seq {seq} is not what was signed: an event after seq"
                    f" {last_cp} was modified and the chain re-hashed",
                )
            )
            break
        last_cp = seq
    if problem is None and head is not None:
        hseq, hhash = head
        if hseq > last_seq:
            candidates.append(
                Problem("deleted", last_seq + 1, None, f"the chain head is at seq {hseq}")
            )
        elif hseq >= start and computed_at.get(hseq) != hhash:
            candidates.append(
                Problem("modified", hseq, None, "the chain head's hash does not match event")
            )
    if callable(max_seq):
        max_seq = max_seq()
    if problem is None and max_seq is not None and last_seq > max_seq:
        candidates.append(
            Problem(
                "inserted",
                max_seq + 1,
                None,
                f"events after the chain head (seq {max_seq}) were not appended by Keyplane",
            )
        )
    first_problem = min(candidates, key=lambda p: p.seq) if candidates else None
    return VerifyReport(
        ok=first_problem is None,
        store=store,
        checked=checked,
        first_problem=first_problem,
        last_seq=last_seq,
        last_checkpoint_seq=last_cp,
        unsigned_tail=max(0, last_seq - last_cp),
    )


def _seq_follows(seq: int, pending: LedgerEvent | None, rest: Iterator[LedgerEvent]) -> bool:
    if pending is not None and pending.seq == seq:
        return True
    return any(e.seq == seq for e in rest)


# -- the export format ------------------------------------------------------------------


@dataclass
class LedgerExport:
    """A parsed export file: events, checkpoints and public keys, by store."""

    events: dict[str, list[LedgerEvent]] = field(default_factory=dict)
    checkpoints: dict[str, list[Checkpoint]] = field(default_factory=dict)
    public_keys: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def stores(self) -> list[str]:
        return sorted(set(self.events) | set(self.checkpoints))


def export_lines(
    events: Iterable[LedgerEvent],
    checkpoints: Iterable[Checkpoint],
    public_keys: Mapping[str, Mapping[str, bytes]],
) -> Iterator[str]:
    """The export's lines (each ending in ``\\n``): public keys, events, then checkpoints.

    ``public_keys`` maps store → key id → raw public key. Events stream through."""
    for store, keys in sorted(public_keys.items()):
        for kid, pub in sorted(keys.items()):
            rec = {"store": store, "key_id": kid, "public_key": b64encode(bytes(pub))}
            yield _dumps({"public_key": rec}) + "\n"
    for e in events:
        yield _dumps(e.to_dict()) + "\n"
    for cp in checkpoints:
        yield _dumps({"checkpoint": cp.to_dict()}) + "\n"


def write_export(
    fp: IO[str],
    events: Iterable[LedgerEvent],
    checkpoints: Iterable[Checkpoint],
    public_keys: Mapping[str, Mapping[str, bytes]],
) -> int:
    """Write an export to a text file; return the number of events written."""
    n = 0
    for line in export_lines(events, checkpoints, public_keys):
        fp.write(line)
        if not line.startswith(('{"checkpoint"', '{"public_key"')):
            n += 1
    return n


def read_export(lines: Iterable[str]) -> LedgerExport:
    """Parse an export (any iterable of lines, e.g. an open file). Events keep file order.
    A malformed line raises ``ValueError`` naming its line number."""
    out = LedgerExport()
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            if "checkpoint" in obj and len(obj) == 1:
                cp = Checkpoint.from_dict(obj["checkpoint"])
                out.checkpoints.setdefault(cp.store, []).append(cp)
            elif "public_key" in obj and len(obj) == 1:
                rec = obj["public_key"]
                keys = out.public_keys.setdefault(str(rec["store"]), {})
                keys[str(rec["key_id"])] = b64decode(str(rec["public_key"]))
            else:
                e = LedgerEvent.from_dict(obj)
                out.events.setdefault(e.store, []).append(e)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {no}: not a ledger export record ({exc})") from exc
    return out


def verify_export(export: LedgerExport) -> dict[str, VerifyReport]:
    """Verify every store of a parsed export, by store."""
    return {
        s: verify(
            export.events.get(s, []),
            export.checkpoints.get(s, []),
            export.public_keys.get(s, {}),
            store=s,
        )
        for s in export.stores
    }


# -- verifying what a database holds -----------------------------------------------------


def events_from_rows(
    store: str, rows: Iterable[tuple[int, str, str, str]]
) -> Iterator[LedgerEvent]:
    """Events from raw chain rows ``(seq, body, prev_hash, hash)``. A body that no longer
    parses yields a placeholder that cannot verify (reported as ``modified`` at its seq)."""
    for seq, body, prev_hash, digest in rows:
        try:
            yield event_from_body(body, digest)
        except (ValueError, TypeError):
            yield LedgerEvent(
                id="",
                time=0.0,
                store=store,
                type="",
                caller="",
                seq=seq,
                prev_hash=prev_hash,
                hash=None,
            )


def verify_stored(
    storage: LedgerStore,
    store: str,
    *,
    public_keys: Mapping[str, bytes] | None = None,
    page_size: int = 5000,
) -> VerifyReport:
    """Verify a store's chain as the database holds it, recomputing everything.

    Reads the raw rows (by the seq column), the checkpoints and — unless ``public_keys``
    (trusted keys obtained out of band) are given — the store's published public keys; the
    chain head is read before and after the rows (see :func:`verify`)."""
    head = storage.ledger_head(store)

    def rows() -> Iterator[tuple[int, str, str, str]]:
        after = 0
        while True:
            page = storage.read_chain_rows(store, after_seq=after, limit=page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1][0]

    checkpoints = storage.read_checkpoints(store)
    keys = (
        dict(public_keys)
        if public_keys is not None
        else {r.key_id: bytes(r.public_key) for r in storage.ledger_keys(store)}
    )
    return verify(
        events_from_rows(store, rows()),
        checkpoints,
        keys,
        store=store,
        head=head,
        max_seq=lambda: storage.ledger_head(store)[0],
    )

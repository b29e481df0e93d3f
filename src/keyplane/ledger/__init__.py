"""The provenance ledger: every decision and change, hash-chained, signed, verifiable offline.

* :mod:`keyplane.ledger.events` — :class:`LedgerEvent`, :data:`EVENT_TYPES`, :class:`EventFilter`;
* :mod:`keyplane.ledger.chain` — canonical JSON, the hash chain, :func:`verify`, the export format;
* :mod:`keyplane.ledger.checkpoints` — Ed25519 checkpoints and per-store ledger keys;
* :mod:`keyplane.ledger.redact` — HMAC of configured sensitive fields;
* :mod:`keyplane.ledger.writer` — the group-committing :class:`LedgerWriter`.

See ``docs/ledger.md``.
"""

from keyplane.ledger.chain import (
    GENESIS_HASH,
    Problem,
    VerifyReport,
    canonical_json,
    chain_hash,
    verify,
)
from keyplane.ledger.checkpoints import Checkpoint, LedgerKeyRecord
from keyplane.ledger.events import (
    EVENT_TYPES,
    SYSTEM_STORE,
    EventFilter,
    LedgerEvent,
    new_event_id,
)

__all__ = [
    "EVENT_TYPES",
    "GENESIS_HASH",
    "SYSTEM_STORE",
    "Checkpoint",
    "EventFilter",
    "LedgerEvent",
    "LedgerKeyRecord",
    "Problem",
    "VerifyReport",
    "canonical_json",
    "chain_hash",
    "new_event_id",
    "verify",
]

"""Checkpoints: the chain head of a store, signed with the store's ledger key (Ed25519).

A checkpoint says "in store S, event ``seq`` has hash H" at time T, signed over
:func:`checkpoint_message` with the store's Ed25519 key (RFC 8032). Whoever holds the
public key can then check that nothing up to ``seq`` was changed since — offline, without
trusting the server (see :func:`keyplane.ledger.chain.verify`).

Each store has its own ledger key, created the first time the store's chain is
checkpointed. The private key is kept in storage ENCRYPTED under the master key
(:mod:`keyplane.secrets`, AES-GCM bound to the store and key id); the public key is
published. :class:`LedgerKeyring` creates, caches and uses them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from keyplane.clock import Clock, SystemClock
from keyplane.secrets import MasterKey

__all__ = [
    "Checkpoint",
    "CheckpointSigner",
    "LedgerKeyRecord",
    "LedgerKeyStore",
    "LedgerKeyring",
    "b64decode",
    "b64encode",
    "checkpoint_message",
    "key_id_for",
    "verify_checkpoint",
]

_DOMAIN = b"keyplane-ledger-checkpoint/v1\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed chain head: event ``seq`` of ``store`` has hash ``hash``."""

    store: str
    seq: int
    hash: str
    time: float
    key_id: str
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "key_id": self.key_id,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        try:
            return cls(
                str(data["store"]),
                int(data["seq"]),
                str(data["hash"]),
                float(data["time"]),
                str(data["key_id"]),
                b64decode(str(data["signature"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from exc


class LedgerKeyRecord(NamedTuple):
    """A store's ledger key as stored: the public key (raw 32 bytes) and the private key
    encrypted under the master key."""

    key_id: str
    public_key: bytes
    encrypted_private_key: bytes
    created_at: float


class LedgerKeyStore(Protocol):
    """What the keyring needs from storage (a part of :class:`keyplane.storage.base.LedgerStore`)."""

    def put_ledger_key(
        self,
        store_id: str,
        key_id: str,
        public_key: bytes,
        encrypted_private_key: bytes,
        created_at: float,
    ) -> None: ...

    def ledger_keys(self, store_id: str) -> list[LedgerKeyRecord]: ...


class CheckpointSigner(Protocol):
    """Signs chain heads (the writer's seam; :class:`LedgerKeyring` is the implementation)."""

    def sign(self, store: str, seq: int, hash: str, time: float) -> Checkpoint: ...


def b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def checkpoint_message(store: str, seq: int, hash: str, time: float) -> bytes:
    """The exact bytes a checkpoint signature covers: a domain tag, then canonical JSON."""
    body = {"hash": hash, "seq": seq, "store": store, "time": time}
    return _DOMAIN + json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def key_id_for(public_key: bytes) -> str:
    """A ledger key's id: ``lk_`` + the first 16 hex digits of SHA-256(public key)."""
    return "lk_" + hashlib.sha256(public_key).hexdigest()[:16]


def verify_checkpoint(cp: Checkpoint, public_key: bytes) -> bool:
    """True when ``cp`` carries a valid signature by ``public_key`` (raw Ed25519 bytes)."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(
            bytes(cp.signature), checkpoint_message(cp.store, cp.seq, cp.hash, cp.time)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _aad(store: str, key_id: str) -> bytes:
    return f"keyplane-ledger-key/v1\n{store}\n{key_id}".encode()


class LedgerKeyring:
    """Per-store ledger keys: created on first use, private parts encrypted at rest.

    ``master_key`` is a callable so the master key (and its file) is only touched when a
    key is first needed. When two processes create a store's first key at once both keys
    are stored; every process then signs with the oldest, so all agree.
    """

    def __init__(
        self,
        storage: LedgerKeyStore,
        master_key: Callable[[], MasterKey],
        *,
        clock: Clock | None = None,
    ) -> None:
        self._storage = storage
        self._master_key = master_key
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, Ed25519PrivateKey]] = {}

    def signing_key(self, store: str) -> tuple[str, Ed25519PrivateKey]:
        """The store's signing key ``(key_id, private key)``, created if it has none."""
        with self._lock:
            cached = self._keys.get(store)
            if cached is not None:
                return cached
            records = self._storage.ledger_keys(store)
            if not records:
                private = Ed25519PrivateKey.generate()
                public = private.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
                kid = key_id_for(public)
                raw = private.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
                sealed = self._master_key().encrypt(raw, aad=_aad(store, kid))
                self._storage.put_ledger_key(store, kid, public, sealed, self._clock.now())
                records = self._storage.ledger_keys(store)
            rec = min(records, key=lambda r: (r.created_at, r.key_id))
            raw = self._master_key().decrypt(rec.encrypted_private_key, aad=_aad(store, rec.key_id))
            key = (rec.key_id, Ed25519PrivateKey.from_private_bytes(raw))
            self._keys[store] = key
            return key

    def sign(self, store: str, seq: int, hash: str, time: float) -> Checkpoint:
        kid, private = self.signing_key(store)
        signature = private.sign(checkpoint_message(store, seq, hash, time))
        return Checkpoint(store, seq, hash, time, kid, signature)

    def public_keys(self, store: str) -> dict[str, bytes]:
        """Every public key the store's checkpoints may be signed with, by key id."""
        return {r.key_id: bytes(r.public_key) for r in self._storage.ledger_keys(store)}

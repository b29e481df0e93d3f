"""Token signing keys of a store: list, rotate, the published JWKS, and the signer.

Operations (``fn(svc, caller, store_id, ...)``):

* :func:`list_signing_keys` — every key of the store with its state, public JWK and
  times (READ_IDENTITIES). Never any private material.
* :func:`rotate_signing_key` — a new active key (``EdDSA`` by default, or ``ES256``); the
  active key becomes ``retiring``: it signs no more but stays published for
  ``overlap_seconds`` (default and minimum: ``KEYPLANE_TOKEN_MAX_TTL``, the longest a
  token may live), so every token it signed can still be verified (MANAGE_POLICY).
  [signing_key.rotated]

Internal helpers (not operations: no caller):

* :func:`published_jwks` — the keys a verifier may meet (active and retiring), creating
  the store's first key when it has none [signing_key.created, by ``system``];
* :func:`signer` — signs JWTs with the store's active key (created likewise on first need).

Keys are kept by storage (:mod:`keyplane.storage.signing_keys_sql`), private parts sealed
under the master key (:mod:`keyplane.tokens.keys`); decrypted private keys are cached in
this process by their ciphertext, so a rotation in another process is seen at the next
signing (the key list is read from storage for every :func:`signer` call).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyplane.errors import ValidationError
from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.storage.signing_keys_sql import SigningKeyChange
from keyplane.tokens.keys import (
    DEFAULT_ALGORITHM,
    PrivateKey,
    SigningKeyRecord,
    check_algorithm,
    generate_signing_key,
    seal_private_key,
    sign_jws,
    unseal_private_key,
)

__all__ = [
    "MAX_OVERLAP_SECONDS",
    "Signer",
    "SigningKeyInfo",
    "list_signing_keys",
    "published_jwks",
    "rotate_signing_key",
    "signer",
]

#: the longest a retiring key may stay published (30 days)
MAX_OVERLAP_SECONDS = 30 * 86400


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    """A signing key as callers see it: public parts and lifecycle only."""

    store_id: str
    kid: str
    algorithm: str
    state: str  # active | retiring | retired (at the time of the read)
    public_jwk: Mapping[str, Any]
    created_at: float
    retiring_at: float | None
    publish_until: float | None
    revision: int

    @classmethod
    def of(cls, rec: SigningKeyRecord, now: float) -> SigningKeyInfo:
        return cls(
            rec.store_id, rec.kid, rec.algorithm, rec.state_at(now), dict(rec.public_jwk),
            rec.created_at, rec.retiring_at, rec.publish_until, rec.revision,
        )  # fmt: skip


@audited(None)
def list_signing_keys(svc: Services, caller: Caller, store_id: str) -> list[SigningKeyInfo]:
    """Every signing key of the store, oldest first (none until first needed or rotated)."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    now = svc.clock.now()
    return [SigningKeyInfo.of(r, now) for r in svc.storage.list_signing_keys(store_id)]


def _overlap(svc: Services, overlap_seconds: int | None) -> int:
    floor = int(svc.settings.token_max_ttl)
    if overlap_seconds is None:
        return floor
    if (
        isinstance(overlap_seconds, bool)
        or not isinstance(overlap_seconds, int)
        or not floor <= overlap_seconds <= MAX_OVERLAP_SECONDS
    ):
        raise ValidationError(
            f"overlap_seconds must be an integer in {floor}..{MAX_OVERLAP_SECONDS}"
            " (at least KEYPLANE_TOKEN_MAX_TTL: every token the retiring key signed must"
            " stay verifiable until it expires)",
            details={"overlap_seconds": str(overlap_seconds)[:50]},
        )
    return overlap_seconds


def _new_key(
    svc: Services, caller: Caller, store_id: str, algorithm: str, *, rotate: bool, overlap: int
) -> SigningKeyChange | None:
    gen = generate_signing_key(algorithm)
    sealed = seal_private_key(svc.master_key(), store_id, gen.kid, gen.private_pkcs8)
    now = svc.clock.now()
    publish_until = now + overlap if rotate else None

    def events(change: SigningKeyChange) -> list[tuple[LedgerEvent, str]]:
        details: dict[str, Any] = {"kid": change.key.kid, "algorithm": change.key.algorithm}
        if rotate:
            details["retiring"] = [k.kid for k in change.retired]
            details["publish_until"] = publish_until
        return audit.change_events(
            svc, caller, "signing_key.rotated" if rotate else "signing_key.created", store_id,
            resource=f"signing_key:{change.key.kid}", action="rotate" if rotate else "create",
            revision=change.revision, details=details,
        )  # fmt: skip

    return svc.storage.add_signing_key(
        store_id, kid=gen.kid, algorithm=algorithm, public_jwk=gen.public_jwk,
        encrypted_private_key=sealed, created_at=now, rotate=rotate,
        publish_until=publish_until, ledger_events=events,
    )  # fmt: skip


@audited("signing_key.rotated")
def rotate_signing_key(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    overlap_seconds: int | None = None,
) -> SigningKeyInfo:
    """Make a new key of ``algorithm`` the store's active key; the previous active key
    (if any) retires: it signs no more and is published ``overlap_seconds`` longer."""
    authorize(svc, caller, Permission.MANAGE_POLICY, store_id)
    check_algorithm(algorithm)
    overlap = _overlap(svc, overlap_seconds)
    change = _new_key(svc, caller, store_id, algorithm, rotate=True, overlap=overlap)
    assert change is not None  # a rotation always adds its key
    # read-your-writes: this process's cached signer (per store revision) moves at once
    svc.graphs.catch_up(store_id)
    return SigningKeyInfo.of(change.key, svc.clock.now())


def _keys(svc: Services, store_id: str) -> list[SigningKeyRecord]:
    """The store's keys, with an active one created first if it has none."""
    keys = svc.storage.list_signing_keys(store_id)
    if not any(k.state == "active" for k in keys):
        _new_key(svc, Caller.system_caller(), store_id, DEFAULT_ALGORITHM, rotate=False, overlap=0)
        keys = svc.storage.list_signing_keys(store_id)
    return keys


def published_jwks(svc: Services, store_id: str) -> list[dict[str, Any]]:
    """The public JWKs a verifier of the store's tokens may need: the active key and every
    retiring key still within its overlap window (the active key first)."""
    now = svc.clock.now()
    keys = [k for k in _keys(svc, store_id) if k.published_at(now)]
    keys.sort(key=lambda k: (k.state != "active", -k.created_at, k.kid))
    return [dict(k.public_jwk) for k in keys]


_CACHE_SIZE = 256
_cache: OrderedDict[tuple[int, bytes], PrivateKey] = OrderedDict()
_cache_lock = threading.Lock()


def _private(svc: Services, rec: SigningKeyRecord) -> PrivateKey:
    ck = (id(svc.master_key), rec.encrypted_private_key)
    with _cache_lock:
        hit = _cache.get(ck)
        if hit is not None:
            _cache.move_to_end(ck)
            return hit
    key = unseal_private_key(svc.master_key(), rec)
    with _cache_lock:
        _cache[ck] = key
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return key


class Signer:
    """Signs with one key (the store's active key when :func:`signer` was called)."""

    __slots__ = ("_private", "algorithm", "kid", "store_id")

    def __init__(self, store_id: str, kid: str, algorithm: str, private: PrivateKey) -> None:
        self.store_id, self.kid, self.algorithm = store_id, kid, algorithm
        self._private = private

    def __repr__(self) -> str:
        return f"Signer(store_id={self.store_id!r}, kid={self.kid!r}, alg={self.algorithm!r})"

    def sign(self, claims: Mapping[str, Any], *, header: Mapping[str, Any] | None = None) -> str:
        """A compact JWS over ``claims`` (header ``alg`` and ``kid`` set from the key, plus
        ``header``, e.g. ``{"typ": "at+jwt"}`` for RFC 9068 access tokens)."""
        return sign_jws(self._private, self.algorithm, self.kid, claims, header=header)


def signer(svc: Services, store_id: str) -> Signer:
    """The signer of the store's active key (created if the store has none yet)."""
    active = [k for k in _keys(svc, store_id) if k.state == "active"]
    rec = active[0]
    return Signer(store_id, rec.kid, rec.algorithm, _private(svc, rec))

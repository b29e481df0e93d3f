"""API keys: create, list, get, rotate, revoke — and :func:`authenticate`, the one call that
turns a bearer token into a :class:`~keyplane.service.auth.Caller` or fails closed.

**Format.** ``kp_<id>_<secret>``: ``id`` is a ULID (26 characters of Crockford base32,
public — it names the key in role tuples, ``key:<id>``, and in listings); ``secret`` is 32
bytes from :func:`secrets.token_bytes`, written as 52 lowercase base32 characters. The
prefix makes leaked keys easy to spot (secret scanners, logs).

**Storage.** Only ``SHA-256("keyplane/api-key/v1" NUL id NUL secret)`` is stored, never
the secret. A plain hash, not a slow password hash (bcrypt, argon2) nor an HMAC with a
server-side pepper, because the secret is 256 random bits: guessing it from a stolen hash
is as hopeless with one SHA-256 as with a million iterations, so a slow hash would only
cost every request its latency; and a pepper protects low-entropy secrets, which these are
not, while adding a second secret to manage whose loss would invalidate every key. The id
is bound into the hash, so a hash copied onto another key's row does not authenticate it.
The stored hash is compared with :func:`hmac.compare_digest` (constant time). Secrets are
never logged and never part of an error message; the full key is returned once, by
:func:`create_key`, :func:`rotate_key` and :func:`bootstrap_admin`.

**Validity.** A key authenticates while it is neither revoked nor expired (``expires_at``
is checked against the services' clock on every call, cached or not). Anything else —
malformed, unknown id, wrong secret, expired, revoked — raises
:class:`~keyplane.errors.AuthenticationError`; the message says "expired" or "revoked"
only once the secret has matched, so it is no oracle for guessing.

**Rotation.** :func:`rotate_key` gives the key a new secret (same id, same roles); the old
secret keeps working for ``overlap_seconds`` so clients can be redeployed, then dies. Only
one previous secret is kept: rotating again ends the older one at once.

**Caching and revocation timing.** Authenticated keys are cached per process for
``KEYPLANE_KEY_CACHE_TTL`` seconds (default 5; see :mod:`keyplane.service.authcache`).
Revoking or rotating a key drops it from this process's cache at once; another process
notices within that TTL — and sooner when it tails the changelog, because revocation also
deletes the key's role tuples, after which the system model denies it everything.
``last_used_at`` is written at most once a minute per key and process.

Roles and what they allow: :mod:`keyplane.service.system`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    StorageError,
    StoreNotFoundError,
    ValidationError,
)
from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit, system
from keyplane.service.audit import audited
from keyplane.service.auth import SYSTEM_STORE_ID, Caller, Permission, authorize
from keyplane.service.authcache import CachedKey
from keyplane.service.authfailures import AuthFailure
from keyplane.service.context import Services, request_id_var
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import KeyRecord, Page
from keyplane.storage.ids import UlidGenerator

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "authenticate",
    "authenticate_cached",
    "bootstrap_admin",
    "create_key",
    "get_key",
    "list_keys",
    "missing_key",
    "revoke_key",
    "rotate_key",
]

KEY_PREFIX = "kp_"
_SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"kp_([0-7][0-9A-HJKMNP-TV-Z]{25})_([a-z2-7]{52})")  # fullmatch
_HASH_DOMAIN = b"keyplane/api-key/v1\x00"
_MAX_OWNER = 256
_MAX_DESCRIPTION = 1024
_MAX_ROLES = 100
_MAX_SECONDS = 100 * 365 * 86400.0  # expiries and overlaps beyond a century are typos


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the API shows it: never its secret nor its hash.

    ``roles``: ``admin``, ``auditor``, ``writer``, ``reader`` (every store) or
    ``writer:<store>``, ``reader:<store>`` (one store). ``last_used_at`` lags by up to a
    minute (it is written at most once a minute per key and process).
    """

    id: str
    owner: str
    roles: tuple[str, ...]
    description: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """The key as JSON (REST, CLI, SDK): times in RFC 3339 UTC, absent ones null."""
        return {
            "id": self.id,
            "owner": self.owner,
            "roles": list(self.roles),
            "description": self.description,
            "created_at": _when(self.created_at),
            "expires_at": None if self.expires_at is None else _when(self.expires_at),
            "last_used_at": None if self.last_used_at is None else _when(self.last_used_at),
            "revoked_at": None if self.revoked_at is None else _when(self.revoked_at),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApiKey:
        """The inverse of :meth:`to_dict` (what the SDK client decodes)."""

        def t(v: Any) -> float | None:
            return None if v is None else datetime.fromisoformat(str(v)).timestamp()

        return cls(
            str(d["id"]),
            str(d["owner"]),
            tuple(str(r) for r in d.get("roles", ())),
            str(d.get("description", "")),
            t(d["created_at"]) or 0.0,
            t(d.get("expires_at")),
            t(d.get("last_used_at")),
            t(d.get("revoked_at")),
        )

    def status(self, now: float) -> str:
        """``active``, ``expired`` or ``revoked`` at time ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


def _public(rec: KeyRecord) -> ApiKey:
    return ApiKey(
        rec.id,
        rec.owner,
        rec.roles,
        rec.description,
        rec.created_at,
        rec.expires_at,
        rec.last_used_at,
        rec.revoked_at,
    )


def _hash(key_id: str, secret: str) -> str:
    return hashlib.sha256(_HASH_DOMAIN + key_id.encode() + b"\x00" + secret.encode()).hexdigest()


def _new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=").lower()


def _seconds(name: str, value: float, *, allow_zero: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
        or value > _MAX_SECONDS
    ):
        raise ValidationError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number of "
            f"seconds (at most {_MAX_SECONDS:.0f})",
            details={"field": name, "received": value if isinstance(value, int | float) else None},
        )
    return float(value)


def _text(name: str, value: str, limit: int, *, required: bool) -> str:
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise ValidationError(
            f"{name} must be {'a non-empty' if required else 'a'} string of at most {limit} "
            "characters",
            details={"field": name},
        )
    if any(ord(c) < 32 for c in value):
        raise ValidationError(
            f"{name} must not contain control characters", details={"field": name}
        )
    return value


def _check_roles(svc: Services, roles: Sequence[str]) -> tuple[str, ...]:
    if isinstance(roles, str) or len(roles) > _MAX_ROLES:
        raise ValidationError(
            f"roles must be a list of at most {_MAX_ROLES} role names", details={"field": "roles"}
        )
    out = tuple(dict.fromkeys(roles))
    for role in out:
        _, store = system.parse_role(role)
        if store is not None:
            try:
                svc.storage.get_store(store)
            except StoreNotFoundError:
                raise ValidationError(
                    f"role {role!r} names store {store!r}, which does not exist",
                    details={"role": role, "store_id": store},
                ) from None
    return out


def _mint(
    svc: Services,
    caller: Caller,
    *,
    owner: str,
    roles: tuple[str, ...],
    expires_in: float | None,
    description: str,
) -> tuple[ApiKey, str]:
    now = svc.clock.now()
    if svc.auth.key_ids is None:
        svc.auth.key_ids = UlidGenerator(svc.clock)
    key_id = svc.auth.key_ids.new()
    secret = _new_secret()
    rec = KeyRecord(
        id=key_id,
        secret_hash=_hash(key_id, secret),
        owner=owner,
        roles=roles,
        description=description,
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )
    # The key row first (with its key.created event, in one transaction), its grants
    # second: if granting fails the key is revoked (with its key.revoked event), and a key
    # whose grants are missing is denied everything (deny by default) — fail closed.
    svc.storage.create_key(
        rec,
        ledger_events=lambda r: _key_events(
            svc, caller, "key.created", r.id, owner=r.owner, roles=list(r.roles)
        ),
    )
    try:
        system.grant_roles(svc, key_id, roles)
    except BaseException:
        svc.storage.revoke_key(
            key_id,
            now=now,
            ledger_events=lambda r: _key_events(
                svc, caller, "key.revoked", r.id, reason="role_grants_failed"
            ),
        )
        raise
    return _public(rec), f"{KEY_PREFIX}{key_id}_{secret}"


def _key_events(
    svc: Services, caller: Caller, type: str, key_id: str, **details: Any
) -> list[tuple[LedgerEvent, str]]:
    """A key change's event in the system chain, encoded for the key write's own
    transaction: the key's id and public facts, never its secret."""
    return audit.change_events(
        svc, caller, type, SYSTEM_STORE_ID, resource=f"key:{key_id}", details=details
    )


# ------------------------------------------------------------------------------ management


@audited("key.created")
def create_key(
    svc: Services,
    caller: Caller,
    *,
    owner: str,
    roles: Sequence[str],
    expires_in: float | None = None,
    description: str = "",
) -> tuple[ApiKey, str]:
    """Mint a key; returns ``(record, secret)`` — the secret ``kp_…`` is shown only now.

    A role naming a store requires the store to exist. ``expires_in`` is in seconds
    (None: never expires). An empty ``roles`` makes a key that is denied everything.
    """
    authorize(svc, caller, Permission.MANAGE_KEYS)
    owner = _text("owner", owner, _MAX_OWNER, required=True)
    description = _text("description", description, _MAX_DESCRIPTION, required=False)
    exp = None if expires_in is None else _seconds("expires_in", expires_in, allow_zero=False)
    return _mint(
        svc,
        caller,
        owner=owner,
        roles=_check_roles(svc, roles),
        expires_in=exp,
        description=description,
    )


@audited(None)
def list_keys(
    svc: Services, caller: Caller, *, page_size: int = 100, continuation_token: str | None = None
) -> Page[ApiKey]:
    """Every key, revoked and expired ones included, oldest first."""
    authorize(svc, caller, Permission.MANAGE_KEYS)
    size = check_page_size(page_size, svc.settings.max_page_size)
    page = svc.storage.list_keys(page_size=size, continuation_token=continuation_token)
    return Page([_public(r) for r in page.items], page.continuation_token)


def _record(svc: Services, key_id: str) -> KeyRecord:
    rec = svc.storage.get_key(key_id) if isinstance(key_id, str) else None
    if rec is None:
        raise NotFoundError(f"API key {key_id!r} not found", details={"key_id": key_id})
    return rec


@audited(None)
def get_key(svc: Services, caller: Caller, key_id: str) -> ApiKey:
    authorize(svc, caller, Permission.MANAGE_KEYS)
    return _public(_record(svc, key_id))


@audited("key.rotated")
def rotate_key(
    svc: Services, caller: Caller, key_id: str, *, overlap_seconds: float = 3600
) -> tuple[ApiKey, str]:
    """Give the key a new secret; the current one stays valid for ``overlap_seconds``.

    Same id, same roles. A revoked or expired key cannot be rotated (ConflictError).
    """
    authorize(svc, caller, Permission.MANAGE_KEYS)
    overlap = _seconds("overlap_seconds", overlap_seconds, allow_zero=True)
    rec = _record(svc, key_id)
    now = svc.clock.now()
    if rec.expires_at is not None and now >= rec.expires_at:
        raise ConflictError(
            f"API key {key_id!r} has expired; create a new key instead",
            details={"key_id": key_id},
        )
    secret = _new_secret()
    new = svc.storage.rotate_key(
        key_id,
        secret_hash=_hash(key_id, secret),
        previous_expires_at=now + overlap,
        now=now,
        ledger_events=lambda r: _key_events(
            svc, caller, "key.rotated", r.id, previous_secret_valid_for=overlap
        ),
    )
    svc.auth.invalidate(key_id)
    return _public(new), f"{KEY_PREFIX}{key_id}_{secret}"


@audited("key.revoked")
def revoke_key(svc: Services, caller: Caller, key_id: str) -> None:
    """Revoke the key for good: it fails authentication at once in this process (within
    ``KEYPLANE_KEY_CACHE_TTL`` in others) and its role grants are deleted. Idempotent."""
    authorize(svc, caller, Permission.MANAGE_KEYS)
    _record(svc, key_id)
    svc.storage.revoke_key(
        key_id,
        now=svc.clock.now(),
        ledger_events=lambda r: _key_events(svc, caller, "key.revoked", r.id),
    )
    svc.auth.invalidate(key_id)
    system.revoke_grants(svc, key_id)


def bootstrap_admin(
    svc: Services, *, owner: str = "admin", force: bool = False
) -> tuple[ApiKey, str]:
    """The first admin key (``keyplane init``), minted as the trusted in-process caller.

    Refuses with ConflictError while a usable (unrevoked, unexpired) admin key exists,
    unless ``force`` — so re-running ``init`` never silently mints a second admin key.
    """
    owner = _text("owner", owner, _MAX_OWNER, required=True)
    system.ensure_system(svc)
    now = svc.clock.now()
    token: str | None = None
    while not force:
        page = svc.storage.list_keys(page_size=1000, continuation_token=token)
        for rec in page.items:
            usable = rec.revoked_at is None and (rec.expires_at is None or now < rec.expires_at)
            if usable and "admin" in rec.roles:
                raise ConflictError(
                    f"this database already has an admin API key ({rec.id}, owner "
                    f"{rec.owner!r}); refusing to mint another — ask for one explicitly "
                    "(keyplane init --force-new-admin-key) or create keys with an admin key",
                    details={"key_id": rec.id},
                )
        token = page.continuation_token
        if token is None:
            break
    return _mint(
        svc,
        Caller.system_caller(),
        owner=owner,
        roles=("admin",),
        expires_in=None,
        description="created by keyplane init",
    )


# ------------------------------------------------------------------------------ authentication


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Refused(Exception):
    """An authentication failure and its ledger reason (kept off the client's error: telling
    ``unknown_key`` from ``invalid_secret`` would be an oracle for which ids exist)."""

    def __init__(self, reason: str, error: AuthenticationError) -> None:
        super().__init__(reason)
        self.reason, self.error = reason, error


def authenticate(
    svc: Services,
    token: str,
    *,
    surface: str = "api",
    operation: str | None = None,
    remote: str | None = None,
) -> Caller:
    """The caller a bearer token stands for, or AuthenticationError. Fails closed.

    A refusal is recorded as an ``auth.failed`` event in the ``_system`` chain (coalesced:
    see :mod:`keyplane.service.authfailures`) naming ``surface``, ``operation`` (e.g.
    ``"POST /v1/stores"``) and the ``remote`` address; the key id when the token carries
    one, never its secret."""
    try:
        return _authenticate(svc, token)
    except _Refused as refused:
        _record_failure(svc, refused.reason, token, surface, operation, remote)
        raise refused.error from None


def authenticate_cached(svc: Services, token: str) -> Caller | None:
    """The caller ``token`` stands for when this process authenticated it within the key
    cache's TTL (and its expiry or rotation deadline has not passed) and no ``last_used_at``
    write is due — an answer with no database access, for code on an event loop. ``None``
    otherwise: then :func:`authenticate` decides (and records a refusal)."""
    m = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    if m is None:
        return None
    key_id = m.group(1)
    now = svc.clock.now()
    caller = svc.auth.get(
        key_id, _hash(key_id, m.group(2)), now=now, ttl=svc.settings.key_cache_ttl
    )
    if caller is None or svc.auth.touch_due(key_id, now):
        return None
    return caller


def missing_key(
    svc: Services,
    message: str,
    *,
    surface: str,
    operation: str | None = None,
    remote: str | None = None,
) -> AuthenticationError:
    """Record a call that presented no API key at all; returns the error to raise."""
    _record_failure(svc, "missing_key", None, surface, operation, remote)
    return AuthenticationError(message)


_KEY_ID_RE = re.compile(r"kp_([0-7][0-9A-HJKMNP-TV-Z]{25})_")  # match: the public id part


def _record_failure(
    svc: Services,
    reason: str,
    token: str | None,
    surface: str,
    operation: str | None,
    remote: str | None,
) -> None:
    m = _KEY_ID_RE.match(token) if isinstance(token, str) else None
    failure = AuthFailure(
        reason=reason,
        key_id=m.group(1) if m else None,  # the id only: the secret never leaves here
        surface=surface,
        operation=operation,
        remote=remote,
        request_id=request_id_var.get(),
    )
    svc.auth_failures.record(svc, failure)


def _authenticate(svc: Services, token: str) -> Caller:
    m = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    if m is None:
        raise _Refused(
            "malformed_key",
            AuthenticationError("malformed API key: Keyplane API keys look like kp_<id>_<secret>"),
        )
    key_id, secret = m.group(1), m.group(2)
    digest = _hash(key_id, secret)
    now = svc.clock.now()
    ttl = svc.settings.key_cache_ttl
    caller = svc.auth.get(key_id, digest, now=now, ttl=ttl)
    if caller is None:
        caller = _authenticate_stored(svc, key_id, digest, now, ttl)
    if svc.auth.should_touch(key_id, now):
        # best effort: a busy database must not turn a valid key away
        with contextlib.suppress(StorageError):
            svc.storage.touch_key(key_id, at=now)
    return caller


def _authenticate_stored(svc: Services, key_id: str, digest: str, now: float, ttl: float) -> Caller:
    rec = svc.storage.get_key(key_id)
    if rec is None:
        raise _Refused("unknown_key", AuthenticationError("invalid API key"))
    valid_until = rec.expires_at
    if hmac.compare_digest(digest, rec.secret_hash):
        pass
    elif rec.previous_secret_hash is not None and hmac.compare_digest(
        digest, rec.previous_secret_hash
    ):
        deadline = rec.previous_expires_at or 0.0
        if now >= deadline:
            raise _Refused(
                "rotated_secret",
                AuthenticationError(
                    f"API key {key_id} was rotated and this secret stopped working at "
                    f"{_when(deadline)}; use the new secret",
                    details={"key_id": key_id},
                ),
            )
        valid_until = deadline if valid_until is None else min(valid_until, deadline)
    else:
        raise _Refused("invalid_secret", AuthenticationError("invalid API key"))
    if rec.revoked_at is not None:
        raise _Refused(
            "revoked_key",
            AuthenticationError(f"API key {key_id} is revoked", details={"key_id": key_id}),
        )
    if rec.expires_at is not None and now >= rec.expires_at:
        raise _Refused(
            "expired_key",
            AuthenticationError(
                f"API key {key_id} expired at {_when(rec.expires_at)}",
                details={"key_id": key_id},
            ),
        )
    caller = Caller(principal=f"key:{key_id}", key_id=key_id, owner=rec.owner)
    # grants made by another process before this key was first used are visible at once
    system.refresh(svc)
    svc.auth.put(key_id, digest, CachedKey(caller, valid_until, now), ttl=ttl)
    return caller

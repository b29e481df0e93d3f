"""Client credentials of non-human identities, and :func:`authenticate_client`.

A credential belongs to a registered non-human identity (``agent``, ``workload``,
``service_account``); its ``client_id`` is the identity's node (``agent:planner``). The
identity's owners govern it (who they are is the identity's business; the credential
records ``created_by``, the caller who made it). Types, secret format and hashing,
registered keys and assertion rules: :mod:`keyplane.tokens.clients`.

Operations (``can_manage_credentials`` to change, ``can_read_identities`` to read):
:func:`create_credential` (a secret is returned ONCE), :func:`list_credentials`,
:func:`get_credential`, :func:`rotate_credential` (client secrets: a new secret, the old one
valid ``overlap_seconds`` more; a ``private_key_jwt`` client registers a new key with
:func:`create_credential` and revokes the old one) and :func:`revoke_credential`. Each
change bumps the store revision and commits its ledger event (``credential.created``,
``credential.rotated``, ``credential.revoked``) in the same transaction; no event holds a
secret or its hash.

``expires_at`` defaults to, and is capped at, now + the store policy's
``max_credential_seconds`` (90 days unless changed). Rotation keeps the expiry.

:func:`authenticate_client` (not an operation: the token endpoint calls it) fails closed:
it returns an :class:`AuthenticatedClient` (the identity and the credential used) or raises
:class:`~keyplane.tokens.clients.ClientAuthError` (OAuth ``invalid_client``). Suspending or
deprovisioning the identity makes every credential of it unusable at once — the identity's
status is read at every authentication. Failures are ``credential.auth_failed`` events in
the store's ledger, coalesced per (store, client, reason) in 1-second windows (beyond 64
open windows, and for a store that does not exist, one window per reason in the
``_system`` chain);
``last_used_at`` is written at most once a minute per credential and process.

A client secret that authenticated is remembered per process for
``KEYPLANE_KEY_CACHE_TTL`` seconds (as API keys are, :mod:`keyplane.service.authcache`), by
(store, credential id, secret hash): within that time the next authentication with it reads
no database — the identity's status and the credential's revocation come from the store's
live policy state, and the credential's expiry (or a rotated-out secret's overlap deadline)
is checked on every hit, so the cache never extends a secret. Rotating or revoking the
credential through this process drops its entries at once; a rotation in another process
ends an old secret here at most that TTL later (a revocation as soon as this process's
policy state sees it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Final

from keyplane.errors import (
    ConflictError,
    IdentityNotFoundError,
    IdentityStateError,
    KeyplaneError,
    NotFoundError,
    StorageError,
    StoreNotFoundError,
    ValidationError,
)
from keyplane.ledger.events import SYSTEM_STORE, LedgerEvent, new_event_id
from keyplane.policy.records import NON_HUMAN_KINDS, Identity
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services, request_id_var
from keyplane.service.identities import parse_node
from keyplane.service.inputs import check_page_size
from keyplane.service.refusals import MAX_WINDOWS, WINDOW, flush_refusals, record_refusal
from keyplane.storage.base import CredentialTxReader, Page
from keyplane.storage.ids import UlidGenerator
from keyplane.tokens.clients import (
    CREDENTIAL_STATUSES,
    CREDENTIAL_TYPES,
    LEEWAY,
    ClientAuthError,
    Credential,
    CredentialRecord,
    check_public_jwk,
    hash_secret,
    new_secret,
    parse_assertion,
    secret_matches,
    split_secret,
    verify_assertion,
)

__all__ = [
    "MAX_OVERLAP_SECONDS",
    "AuthenticatedClient",
    "authenticate_client",
    "create_credential",
    "get_credential",
    "list_credentials",
    "revoke_credential",
    "rotate_credential",
]

log = logging.getLogger("keyplane.credentials")

#: the longest a rotated-out secret may stay valid
MAX_OVERLAP_SECONDS: Final = 7 * 86400
#: ``last_used_at`` is written at most this often per credential and process
USED_EVERY: Final = 60.0
FAILURE_WINDOW: Final = WINDOW
MAX_FAILURE_WINDOWS: Final = MAX_WINDOWS

_ids = UlidGenerator()


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """An OAuth client that authenticated: its identity (registered, non-human, active
    when it authenticated), the credential it used, that credential's expiry (no token it
    obtains outlives it) and the method (``client_secret`` or ``private_key_jwt``)."""

    identity: Identity
    credential_id: str
    credential_expires_at: float
    method: str

    @property
    def node(self) -> str:
        """The client id: the identity's graph node (``agent:planner``)."""
        return self.identity.node


# ------------------------------------------------------------------------------ helpers


def _client(r: CredentialTxReader, identity: str) -> Identity:
    kind, id_ = parse_node(identity)
    if kind not in NON_HUMAN_KINDS:
        raise ValidationError(
            f"credentials are for non-human identities ({', '.join(NON_HUMAN_KINDS)}), "
            f"not {kind!r}",
            details={"identity": identity},
        )
    found = r.identity(kind, id_)
    if found is None:
        raise IdentityNotFoundError(
            f"identity {identity!r} not found", details={"identity": identity}
        )
    if found.status != "active":
        raise IdentityStateError(
            f"identity {identity!r} is {found.status}: it may not get credentials",
            details={"identity": identity, "status": found.status},
        )
    return found


def _expiry(value: Any, now: float, cap: int) -> float:
    if value is None:
        return now + cap
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError("expires_at must be a time in seconds since the epoch")
    if value <= now:
        raise ValidationError(
            "expires_at must be in the future", details={"expires_at": float(value)}
        )
    if value > now + cap:
        raise ValidationError(
            f"expires_at is beyond the store policy's max_credential_seconds ({cap} s)",
            details={"expires_at": float(value), "max_credential_seconds": cap},
        )
    return float(value)


def _load(r: CredentialTxReader, credential_id: str) -> CredentialRecord:
    rec = r.credential(credential_id) if isinstance(credential_id, str) else None
    if rec is None:
        raise NotFoundError(
            f"credential {credential_id!r} not found", details={"credential_id": credential_id}
        )
    return rec


def _details(c: Credential, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"identity": c.client_id, "type": c.type, "expires_at": c.expires_at}
    if c.type == "private_key_jwt":
        out.update(alg=c.alg, thumbprint=c.thumbprint)
    out.update(extra)
    return out


# ------------------------------------------------------------------------------ operations


@audited("credential.created")
def create_credential(
    svc: Services,
    caller: Caller,
    store_id: str,
    identity: str,
    *,
    type: str = "client_secret",
    public_jwk: Any = None,
    expires_at: float | None = None,
) -> tuple[Credential, str | None]:
    """A new credential for the non-human identity ``identity`` (``kind:id``, registered
    and active): ``client_secret`` (the secret is returned now and never again) or
    ``private_key_jwt`` with ``public_jwk``. Returns (the credential, the secret or None)."""
    authorize(svc, caller, Permission.MANAGE_CREDENTIALS, store_id)
    if type not in CREDENTIAL_TYPES:
        raise ValidationError(
            f"unknown credential type {type!r}: one of {', '.join(CREDENTIAL_TYPES)}",
            details={"type": str(type)[:100]},
        )
    jwk: dict[str, Any] | None = None
    alg = thumb = None
    if type == "private_key_jwt":
        if public_jwk is None:
            raise ValidationError("a private_key_jwt credential needs public_jwk")
        try:
            jwk, alg, thumb = check_public_jwk(public_jwk)
        except ValueError as exc:
            raise ValidationError(
                f"invalid public_jwk: {exc}", details={"field": "public_jwk"}
            ) from None
    elif public_jwk is not None:
        raise ValidationError("public_jwk is only for private_key_jwt credentials")
    cred_id = _ids.new()
    secret, digest = new_secret(cred_id) if type == "client_secret" else (None, None)
    now = svc.clock.now()

    def plan(r: CredentialTxReader) -> tuple[CredentialRecord, bool]:
        ident = _client(r, identity)
        exp = _expiry(expires_at, now, r.store_policy().max_credential_seconds)
        cred = Credential(
            store_id=store_id, id=cred_id, client_id=ident.node, type=type, status="active",
            expires_at=exp, created_by=caller.principal, created_at=now, public_jwk=jwk,
            alg=alg, thumbprint=thumb,
        )  # fmt: skip
        return CredentialRecord(cred, digest), True

    def events(revision: int, c: Credential) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "credential.created", store_id, resource=f"credential:{c.id}",
            action="create", revision=revision, details=_details(c),
        )  # fmt: skip

    rec = svc.storage.write_credential(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return rec.credential, secret


@audited(None)
def get_credential(svc: Services, caller: Caller, store_id: str, credential_id: str) -> Credential:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    rec = svc.storage.get_credential(store_id, credential_id)
    if rec is None:
        raise NotFoundError(
            f"credential {credential_id!r} not found", details={"credential_id": credential_id}
        )
    return rec.credential


@audited(None)
def list_credentials(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    identity: str | None = None,
    status: str | None = None,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[Credential]:
    """The store's credentials by id (oldest first), optionally of one identity or status."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    page_size = check_page_size(page_size, svc.settings.max_page_size)
    if identity is not None:
        kind, id_ = parse_node(identity)
        identity = f"{kind}:{id_}"
    if status is not None and status not in CREDENTIAL_STATUSES:
        raise ValidationError(
            f"unknown status {status!r}: one of {', '.join(CREDENTIAL_STATUSES)}",
            details={"status": str(status)[:100]},
        )
    page = svc.storage.list_credentials(
        store_id,
        client_id=identity,
        status=status,
        page_size=page_size,
        continuation_token=continuation_token,
    )
    return Page([r.credential for r in page.items], page.continuation_token)


@audited("credential.rotated")
def rotate_credential(
    svc: Services,
    caller: Caller,
    store_id: str,
    credential_id: str,
    *,
    overlap_seconds: float = 3600,
) -> tuple[Credential, str | None]:
    """A new secret for a ``client_secret`` credential (returned once); the previous one
    keeps working for ``overlap_seconds`` (0: ends now; at most 7 days), then dies. Only
    one previous secret is kept: rotating again ends the older one at once. The expiry
    stays. A ``private_key_jwt`` client rotates by registering its new key
    (:func:`create_credential`) and revoking the old credential."""
    authorize(svc, caller, Permission.MANAGE_CREDENTIALS, store_id)
    if (
        isinstance(overlap_seconds, bool)
        or not isinstance(overlap_seconds, int | float)
        or not 0 <= overlap_seconds <= MAX_OVERLAP_SECONDS
    ):
        raise ValidationError(
            f"overlap_seconds must be a number in 0..{MAX_OVERLAP_SECONDS}",
            details={"overlap_seconds": str(overlap_seconds)[:50]},
        )
    now = svc.clock.now()
    out: dict[str, str] = {}

    def plan(r: CredentialTxReader) -> tuple[CredentialRecord, bool]:
        rec = _load(r, credential_id)
        c = rec.credential
        if c.type != "client_secret":
            raise ValidationError(
                "only client secrets rotate: register the new public key as a new "
                "private_key_jwt credential, then revoke this one",
                details={"credential_id": c.id, "type": c.type},
            )
        if c.status != "active" or now >= c.expires_at:
            raise ConflictError(
                f"credential {c.id} is {'revoked' if c.status != 'active' else 'expired'}",
                details={"credential_id": c.id},
            )
        _client(r, c.client_id)
        secret, digest = new_secret(c.id)
        out["secret"] = secret
        new = dataclasses.replace(
            c, rotated_at=now, previous_expires_at=min(now + overlap_seconds, c.expires_at)
        )
        return CredentialRecord(new, digest, rec.secret_hash), False

    def events(revision: int, c: Credential) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "credential.rotated", store_id, resource=f"credential:{c.id}",
            action="rotate", revision=revision,
            details=_details(c, previous_expires_at=c.previous_expires_at),
        )  # fmt: skip

    rec = svc.storage.write_credential(store_id, plan, ledger_events=events)
    _forget_secrets(svc, store_id, credential_id)
    svc.graphs.catch_up(store_id)
    return rec.credential, out["secret"]


@audited("credential.revoked")
def revoke_credential(
    svc: Services,
    caller: Caller,
    store_id: str,
    credential_id: str,
    *,
    reason: str | None = None,
) -> Credential:
    """Revoke a credential at once (its secrets, current and previous, or its key). An
    already revoked credential is returned unchanged (no new event)."""
    authorize(svc, caller, Permission.MANAGE_CREDENTIALS, store_id)
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1024):
        raise ValidationError("reason must be a string of at most 1024 characters")
    found = svc.storage.get_credential(store_id, credential_id)
    if found is not None and found.credential.status == "revoked":
        return found.credential
    now = svc.clock.now()

    def plan(r: CredentialTxReader) -> tuple[CredentialRecord, bool]:
        rec = _load(r, credential_id)
        c = dataclasses.replace(
            rec.credential, status="revoked", revoked_at=now, revoked_reason=reason
        )
        return CredentialRecord(c, rec.secret_hash, rec.previous_secret_hash), False

    def events(revision: int, c: Credential) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "credential.revoked", store_id, resource=f"credential:{c.id}",
            action="revoke", revision=revision, details=_details(c, reason=reason),
        )  # fmt: skip

    rec = svc.storage.write_credential(store_id, plan, ledger_events=events)
    _forget_secrets(svc, store_id, credential_id)
    svc.graphs.catch_up(store_id)
    return rec.credential


# ------------------------------------------------------------------------------ authentication


@dataclass(frozen=True, slots=True)
class _Verified:
    """A client secret that authenticated (see the module docstring)."""

    client: AuthenticatedClient
    cached_at: float
    valid_until: float  # the credential's expiry, or the rotated-out secret's deadline


#: at most this many remembered client secrets per process (then the memory starts over)
_MAX_VERIFIED: Final = 10_000


class _Usage:
    """Per-process bookkeeping of a Services: when each credential's ``last_used_at`` was
    last written, and the client secrets recently verified."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.used: dict[tuple[str, str], float] = {}
        #: (store, credential id, secret hash) -> the authentication it gave
        self.verified: dict[tuple[str, str, str], _Verified] = {}


# by id(Services) (a dataclass, unhashable); an entry goes when its Services is collected
_usage: dict[int, _Usage] = {}
_usage_lock = threading.Lock()


def _forget(key: int) -> None:
    with _usage_lock:
        _usage.pop(key, None)


def _usage_of(svc: Services) -> _Usage:
    key = id(svc)
    with _usage_lock:
        u = _usage.get(key)
        if u is None:
            u = _usage[key] = _Usage()
            weakref.finalize(svc, _forget, key)
        return u


def _cached_client(
    svc: Services, key: tuple[str, str, str], client_id: str, now: float
) -> AuthenticatedClient | None:
    """The client a remembered secret authenticates, still valid and live; else None (the
    database decides, and gives the exact refusal)."""
    u = _usage_of(svc)
    hit = u.verified.get(key)
    if hit is None:
        return None
    if (
        hit.client.node != client_id
        or now - hit.cached_at >= svc.settings.key_cache_ttl
        or now >= hit.valid_until
    ):
        with u.lock:
            u.verified.pop(key, None)
        return None
    try:
        state = svc.graphs.policy(key[0])
    except KeyplaneError:
        return None
    ident = state.identity(client_id)
    if ident is None or ident.status != "active" or state.credential_revoked(key[1]):
        return None
    return dataclasses.replace(hit.client, identity=ident)


def _remember(
    svc: Services, key: tuple[str, str, str], client: AuthenticatedClient, valid_until: float
) -> None:
    if svc.settings.key_cache_ttl <= 0:
        return
    u = _usage_of(svc)
    with u.lock:
        if len(u.verified) >= _MAX_VERIFIED:
            u.verified.clear()
        u.verified[key] = _Verified(client, svc.clock.now(), valid_until)


def _forget_secrets(svc: Services, store_id: str, credential_id: str) -> None:
    """Drop the remembered secrets of a credential (rotated or revoked here)."""
    u = _usage_of(svc)
    with u.lock:
        for key in [k for k in u.verified if k[0] == store_id and k[1] == credential_id]:
            del u.verified[key]


def _note_used(svc: Services, store_id: str, credential_id: str, now: float) -> None:
    u = _usage_of(svc)
    key = (store_id, credential_id)
    with u.lock:
        last = u.used.get(key)
        if last is not None and now - last < USED_EVERY:
            return
        u.used[key] = now
    with contextlib.suppress(StorageError):  # advisory: never turn a valid client away
        svc.storage.touch_credentials(store_id, [(credential_id, now)])


def _failure_event(
    store_id: str,
    client_id: str | None,
    reason: str,
    at: float,
    count: int,
    extra: dict[str, Any],
) -> LedgerEvent:
    return LedgerEvent(
        id=new_event_id(),
        time=at,
        store=store_id,
        type="credential.auth_failed",
        caller="anonymous",
        subject=None if client_id is None else client_id[:256],
        action="authenticate",
        resource=None if client_id is None else f"client:{client_id[:256]}",
        outcome="deny",
        reasons=(reason,),
        request_id=(request_id_var.get() or None),
        details={"count": count, "window_seconds": FAILURE_WINDOW, **extra},
    )


def flush_auth_failures(svc: Services, *, force: bool = False) -> int:
    """Write the summaries of ended coalesced refusal windows (``credential.auth_failed``,
    ``token.refused``; all with ``force``); returns how many events were written."""
    return flush_refusals(svc, force=force)


def _record_failure(svc: Services, store_id: str, client_id: str | None, reason: str) -> None:
    record_refusal(svc, "credential.auth_failed", store_id, client_id, reason, _failure_event)


def authenticate_client(
    svc: Services,
    store_id: str,
    client_id: str,
    *,
    secret: str | None = None,
    assertion: str | None = None,
    token_endpoint_url: str,
) -> AuthenticatedClient:
    """Authenticate an OAuth client of ``store_id`` by ``secret`` (``client_secret_basic``
    / ``client_secret_post``) or by ``assertion`` (``private_key_jwt``, RFC 7523; its
    ``aud`` must be ``token_endpoint_url``). Exactly one of the two. Returns the
    :class:`AuthenticatedClient` (its identity registered, non-human, active, and the
    credential used); anything else raises
    :class:`~keyplane.tokens.clients.ClientAuthError` (``invalid_client``) and records a
    ``credential.auth_failed`` event. Never raises anything else for a client's input."""
    try:
        return _authenticate(svc, store_id, client_id, secret, assertion, token_endpoint_url)
    except ClientAuthError as exc:
        known = client_id if isinstance(client_id, str) and len(client_id) <= 300 else None
        _record_failure(svc, store_id, known, exc.reason)
        raise
    except StoreNotFoundError as exc:  # no ledger of its own: the _system chain
        _record_failure(svc, SYSTEM_STORE, None, "unknown_store")
        raise ClientAuthError("unknown_store", "client authentication failed") from exc
    except KeyplaneError as exc:  # a storage error: fail closed
        _record_failure(svc, SYSTEM_STORE, None, "server_error")
        raise ClientAuthError("server_error", "client authentication failed") from exc


def _authenticate(
    svc: Services,
    store_id: str,
    client_id: str,
    secret: str | None,
    assertion: str | None,
    audience: str,
) -> AuthenticatedClient:
    if (secret is None) == (assertion is None):
        raise ClientAuthError(
            "no_single_method", "authenticate with exactly one of a client secret or assertion"
        )
    kind, _, id_ = client_id.partition(":") if isinstance(client_id, str) else ("", "", "")
    if kind not in NON_HUMAN_KINDS or not id_:
        raise ClientAuthError("unknown_client")
    now = svc.clock.now()
    cred_id = split_secret(secret) if secret is not None else None
    cache_key: tuple[str, str, str] | None = None
    if secret is not None and cred_id is not None:
        cache_key = (store_id, cred_id, hash_secret(cred_id, secret))
        cached = _cached_client(svc, cache_key, client_id, now)
        if cached is not None:
            _note_used(svc, store_id, cred_id, now)
            return cached
    ident = svc.storage.get_identity(store_id, kind, id_)
    if ident is None:
        raise ClientAuthError("unknown_client")
    valid_until = math.inf
    if secret is not None:
        rec = None if cred_id is None else svc.storage.get_credential(store_id, cred_id)
        if rec is None or rec.credential.client_id != ident.node:
            raise ClientAuthError("invalid_secret")
        if rec.credential.type != "client_secret" or not secret_matches(rec, secret, now):
            raise ClientAuthError("invalid_secret")
        cred = rec.credential
        if cred.status != "active":
            raise ClientAuthError("revoked_credential", "the client credential is revoked")
        if now >= cred.expires_at:
            raise ClientAuthError("expired_credential", "the client credential has expired")
        valid_until = cred.expires_at
        if cache_key is not None and cache_key[2] != rec.secret_hash:
            # the rotated-out secret (secret_matches checked its deadline)
            valid_until = min(valid_until, cred.previous_expires_at or now)
    else:
        parsed = parse_assertion(assertion)
        candidates = [
            r.credential
            for r in svc.storage.credentials_of(store_id, ident.node)
            if r.credential.type == "private_key_jwt" and r.credential.usable(now)
        ]
        cred, jti, exp = verify_assertion(
            parsed, candidates, client_id=ident.node, audience=audience, now=now
        )
        if not svc.storage.use_jti(store_id, ident.node, jti, exp + LEEWAY, now):
            raise ClientAuthError("replayed_jti", "the client assertion was already used")
    if ident.status != "active":
        raise ClientAuthError(f"identity_{ident.status}", f"the client is {ident.status}")
    _note_used(svc, store_id, cred.id, now)
    client = AuthenticatedClient(ident, cred.id, cred.expires_at, cred.type)
    if cache_key is not None:
        _remember(svc, cache_key, client, valid_until)
    return client

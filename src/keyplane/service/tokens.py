"""Access tokens (issue 6 §3): issue, exchange, verify, introspect, revoke.

Keyplane issues RFC 9068 JWT access tokens signed with the store's active key
(:func:`keyplane.service.signing_keys.signer`); claims in :mod:`keyplane.tokens.access`.

* :func:`issue_client_credentials` — RFC 6749 §4.4: a token for the authenticated client
  itself (``sub`` = ``client_id`` = the client's node).
* :func:`exchange_token` — RFC 8693: the client acts for the subject of ``subject_token``
  (a Keyplane token of the store, or a trusted external issuer's token) under a delegation
  from the previous principal to the client; the new token's ``act`` chain gains the
  client. Without ``actor_token`` the exchange is impersonation (``allow_impersonation``):
  the token has the subject's chain unchanged and the delegation it was allowed under in
  ``kp_delegations``.
* :func:`verify_access_token` — ONE call that fails closed (:class:`TokenInvalid`): the
  JWS against the store's published keys (cached; the signature result cached per token
  string in a bounded LRU), the times, issuer and audience, then the LIVE state of
  ``svc.graphs.policy(store)`` — no database read: the token, its parents and its
  credentials not revoked, its subject, actors and client active, its delegations and
  their ancestors active and current. A revocation or suspension is seen by the writing
  process at once and by others within the poll interval.
* :func:`introspect_token` (RFC 7662), :func:`revoke_token` (RFC 7009, the token's client
  or an admin) and :func:`revoke_token_id` (a control-plane operation by ``jti``).

Ledger: ``token.issued`` (never the token), ``token.refused`` (coalesced like
``credential.auth_failed``: :mod:`keyplane.service.refusals`), ``token.revoked`` (committed
in the revocation's transaction). Introspection and verification record nothing.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from keyplane.errors import KeyplaneError, StoreNotFoundError, ValidationError
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.policy.records import Delegation, StorePolicy, TrustedIssuer
from keyplane.policy.state import PolicyState
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services, request_id_var
from keyplane.service.credentials import AuthenticatedClient
from keyplane.service.refusals import record_refusal
from keyplane.service.signing_keys import Signer, signer
from keyplane.storage.ids import UlidGenerator
from keyplane.tokens.access import (
    MAX_PARENTS,
    PublishedKey,
    TokenClaims,
    build_claims,
    check_claims,
    check_header,
    check_time,
    load_published_key,
    parse_jws,
    verify_signature,
)
from keyplane.tokens.errors import OAuthError, TokenInvalid
from keyplane.tokens.external import LEEWAY as EXTERNAL_LEEWAY
from keyplane.tokens.external import ExternalToken, find_trusted_issuer, verify_external_token
from keyplane.tokens.jwks import issuer_for
from keyplane.tokens.scopes import (
    delegation_covers,
    format_scope,
    narrow_scope,
    parse_scope,
    scope_allows,
)

__all__ = [
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_TOKEN_EXCHANGE",
    "TT_ACCESS",
    "TT_JWT",
    "AuthenticatedClient",
    "IssuedToken",
    "OAuthError",
    "TokenInvalid",
    "VerifiedToken",
    "accepted_issuers",
    "exchange_token",
    "introspect_token",
    "introspection_body",
    "issue_client_credentials",
    "record_token_refused",
    "revoke_token",
    "revoke_token_id",
    "token_issuer",
    "verify_access_token",
]

GRANT_CLIENT_CREDENTIALS: Final = "client_credentials"
GRANT_TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
TT_ACCESS: Final = "urn:ietf:params:oauth:token-type:access_token"
TT_JWT: Final = "urn:ietf:params:oauth:token-type:jwt"
_TOKEN_TYPES: Final = (TT_ACCESS, TT_JWT)
#: RFC 8693 §2.2.2: a subject_token or actor_token that is invalid for any reason or
#: unacceptable by policy (no covering delegation, may_act, purpose, actor not the client...)
#: MUST be answered ``invalid_request``; the internal reason tells which (ledger)
_EXCHANGE_REFUSED: Final = "invalid_request"
#: the issuer base when neither the settings nor the caller give one (embedded use)
DEFAULT_BASE: Final = "http://keyplane.invalid"
#: how many verified token strings are remembered (their signature checked once)
VERIFIED_CACHE_SIZE: Final = 10_000
#: a store's keys are reread on an unknown kid at most this often (seconds) — unless the
#: store revision moved (a rotation in this process is seen at once)
KEYS_REFRESH: Final = 1.0
#: the longest an external token's checked signature is reused (its issuer's JWKS TTL)
EXTERNAL_CACHE_SECONDS: Final = 300.0
MAX_AUDIENCES: Final = 16
MAX_DELEGATION_DEPTH: Final = 64
_MAX_VALUE = 512

_ids = UlidGenerator()


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class IssuedToken:
    """A token the endpoint issued, and what its response says about it."""

    access_token: str
    expires_in: int
    scope: str | None
    issued_token_type: str | None  # exchange only (RFC 8693 §2.2.1)
    claims: Mapping[str, Any]
    token_type: str = "Bearer"

    def response(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 / RFC 8693 §2.2.1 JSON body."""
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.issued_token_type is not None:
            out["issued_token_type"] = self.issued_token_type
        if self.scope is not None:
            out["scope"] = self.scope
        return out

    def __repr__(self) -> str:  # never print the token
        return f"IssuedToken(jti={self.claims.get('jti')!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class VerifiedToken:
    """A Keyplane access token that passed :func:`verify_access_token`."""

    claims: Mapping[str, Any]
    subject: str
    actors: tuple[str, ...]  # A1..An, oldest first (the order decide() takes)
    purpose: str | None
    #: the delegation the newest actor acts under (None when there are no actors)
    delegation_id: str | None
    scope: frozenset[str] | None  # None: unrestricted
    client_id: str
    jti: str
    expires_at: float
    audience: tuple[str, ...] = field(default=())

    def allows_scope(self, action: str, resource: str) -> bool:
        """Whether the token's RESOURCE scopes let it be used for ``action`` on
        ``resource`` (an object ``type:id``). Unrestricted tokens allow everything;
        opaque scopes are for resource servers and allow nothing here."""
        return scope_allows(self.scope, action, resource)

    def __repr__(self) -> str:
        return f"VerifiedToken(jti={self.jti!r}, subject={self.subject!r}, actors={self.actors!r})"


# ------------------------------------------------------------------------------ caches


@dataclass(slots=True)
class _KeySet:
    generation: str
    revision: int
    loaded_at: float
    keys: dict[str, PublishedKey]


@dataclass(frozen=True, slots=True)
class _Checked:
    """What a token's signature check established (cached per token string)."""

    kid: str
    tc: TokenClaims
    token: VerifiedToken
    delegations: tuple[str, ...]  # delegation_id (if any) + kp_delegations


class _Caches:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keysets: dict[str, _KeySet] = {}
        self.signers: dict[str, tuple[str, int, Signer]] = {}
        self.verified: OrderedDict[tuple[str, str], _Checked] = OrderedDict()
        # external subject tokens: (store, token) -> (the trusted issuer record it was
        # verified under, the result, when)
        self.external: OrderedDict[tuple[str, str], tuple[TrustedIssuer, ExternalToken, float]] = (
            OrderedDict()
        )


_caches: dict[int, _Caches] = {}
_caches_lock = threading.Lock()


def _forget(key: int) -> None:
    with _caches_lock:
        _caches.pop(key, None)


def _caches_of(svc: Services) -> _Caches:
    key = id(svc)
    c = _caches.get(key)
    if c is not None:
        return c
    with _caches_lock:
        c = _caches.get(key)
        if c is None:
            c = _caches[key] = _Caches()
            weakref.finalize(svc, _forget, key)
        return c


def _keyset(svc: Services, store_id: str, *, refresh: bool = False) -> dict[str, PublishedKey]:
    """The store's published keys by kid, loaded once per store (generation), reread when
    ``refresh`` (an unknown kid) and the revision moved or :data:`KEYS_REFRESH` passed."""
    c = _caches_of(svc)
    g = svc.graphs.graph(store_id)
    ks = c.keysets.get(store_id)
    now = svc.clock.now()
    if ks is not None and ks.generation == g.generation:
        if not refresh:
            return ks.keys
        if g.applied == ks.revision and now - ks.loaded_at < KEYS_REFRESH:
            return ks.keys
    keys: dict[str, PublishedKey] = {}
    for rec in svc.storage.list_signing_keys(store_id):
        if not rec.published_at(now):
            continue
        try:
            keys[rec.kid] = load_published_key(
                rec.public_jwk, rec.algorithm, None if rec.state == "active" else rec.publish_until
            )
        except (ValueError, KeyError):  # a key this build cannot use: not published
            continue
    with c.lock:
        c.keysets[store_id] = _KeySet(g.generation, g.applied, now, keys)
    return keys


def _signer(svc: Services, store_id: str) -> Signer:
    """The store's signer, cached per store revision (a rotation bumps it)."""
    c = _caches_of(svc)
    g = svc.graphs.graph(store_id)
    hit = c.signers.get(store_id)
    if hit is not None and hit[0] == g.generation and hit[1] == g.applied:
        return hit[2]
    s = signer(svc, store_id)
    with c.lock:
        c.signers[store_id] = (g.generation, g.applied, s)
        ks = c.keysets.get(store_id)
        if ks is not None and s.kid not in ks.keys:  # a key this process has not loaded yet
            del c.keysets[store_id]
    return s


# ------------------------------------------------------------------------------ issuer


def token_issuer(svc: Services, store_id: str, base: str | None = None) -> str:
    """The issuer of the store's tokens: ``base`` (else ``KEYPLANE_ISSUER``, else
    :data:`DEFAULT_BASE`) for the default store, ``<base>/stores/<id>`` for another.

    The default store is also served at ``<base>/stores/<default>`` (its RFC 8414 metadata
    there names that issuer and the endpoints under it): a token's ``iss`` is the issuer of
    the endpoint that issued it (the HTTP layer passes it), and the store's tokens verify
    under either name (:func:`accepted_issuers`)."""
    b = base or svc.settings.issuer or DEFAULT_BASE
    return issuer_for(b, None if store_id == svc.settings.default_store else store_id)


def accepted_issuers(svc: Services, store_id: str, issuer: str) -> tuple[str, ...]:
    """The ``iss`` values a token of ``store_id`` checked against ``issuer`` may carry:
    ``issuer`` itself, and for the default store both of its names — ``<base>`` (the root
    endpoints) and ``<base>/stores/<default>`` — whichever of the two ``issuer`` is."""
    default = svc.settings.default_store
    if store_id != default:
        return (issuer,)
    suffix = f"/stores/{default}"
    base = issuer[: -len(suffix)] if issuer.endswith(suffix) else issuer.rstrip("/")
    return (base, base + suffix)


# ------------------------------------------------------------------------------ verification


def verify_access_token(
    svc: Services,
    store_id: str,
    token: str,
    *,
    issuer: str | None = None,
    audience: str | None = None,
) -> VerifiedToken:
    """Verify a Keyplane access token of ``store_id`` (see the module docstring). Raises
    :class:`TokenInvalid` with the reason; never anything else for a bad token."""
    try:
        checked = _checked(svc, store_id, token)
        now = svc.clock.now()
        tc = checked.tc
        check_time(tc, now)
        if issuer is not None and tc.issuer not in accepted_issuers(svc, store_id, issuer):
            raise TokenInvalid("wrong_issuer")
        if audience is not None and audience not in tc.audience:
            raise TokenInvalid("wrong_audience")
        _live(svc.graphs.policy(store_id), checked, now)
        return checked.token
    except StoreNotFoundError:
        raise TokenInvalid("unknown_store") from None
    except KeyplaneError:  # storage trouble: fail closed
        raise TokenInvalid("unavailable") from None


def _checked(svc: Services, store_id: str, token: str) -> _Checked:
    """The token's signature-checked claims: from the cache, or checked now (and cached)."""
    c = _caches_of(svc)
    ck = (store_id, token)
    hit = c.verified.get(ck)
    keys = _keyset(svc, store_id)
    if hit is not None:
        key = keys.get(hit.kid)
        if key is None:  # the key is gone (retired, or the store was recreated)
            raise TokenInvalid("unknown_kid")
        if key.publish_until is not None and svc.clock.now() >= key.publish_until:
            raise TokenInvalid("unknown_kid")
        with c.lock:
            if ck in c.verified:
                c.verified.move_to_end(ck)
        return hit
    p = parse_jws(token)
    try:
        key = check_header(p, keys)
    except TokenInvalid as exc:
        if exc.reason != "unknown_kid":
            raise
        key = check_header(p, _keyset(svc, store_id, refresh=True))
    if key.publish_until is not None and svc.clock.now() >= key.publish_until:
        raise TokenInvalid("unknown_kid")
    verify_signature(p, key)
    tc = check_claims(p.claims)
    extra = p.claims.get("kp_delegations", [])
    if (
        not isinstance(extra, list)
        or len(extra) > MAX_PARENTS
        or not all(isinstance(d, str) and d for d in extra)
    ):
        raise TokenInvalid("invalid_kp_delegations")
    try:
        scope = parse_scope(tc.scope)
    except OAuthError:
        raise TokenInvalid("invalid_scope") from None
    vt = VerifiedToken(
        claims=p.claims,
        subject=tc.subject,
        actors=tc.actors,
        purpose=tc.purpose,
        delegation_id=tc.delegation_id if tc.actors else None,
        scope=scope,
        client_id=tc.client_id,
        jti=tc.jti,
        expires_at=float(tc.expires_at),
        audience=tc.audience,
    )
    dels = tuple(dict.fromkeys(([tc.delegation_id] if tc.delegation_id else []) + extra))
    checked = _Checked(key.kid, tc, vt, dels)
    with c.lock:
        c.verified[ck] = checked
        while len(c.verified) > VERIFIED_CACHE_SIZE:
            c.verified.popitem(last=False)
    return checked


def _live(state: PolicyState, checked: _Checked, now: float) -> None:
    """The live checks: nothing the token depends on was revoked, suspended or expired."""
    tc = checked.tc
    if state.token_revoked(tc.jti):
        raise TokenInvalid("token_revoked")
    for j in tc.parents:
        if state.token_revoked(j):
            raise TokenInvalid("parent_token_revoked")
    for cred in tc.creds:
        if state.credential_revoked(cred):
            raise TokenInvalid("credential_revoked")
    ident = state.identity
    for node in (tc.subject, *tc.actors, tc.client_id):
        i = ident(node)
        if i is not None and i.status != "active":
            raise TokenInvalid(f"identity_{i.status}")
    for did in checked.delegations:
        _delegation_holds(state, did, now)


def _delegation_holds(state: PolicyState, delegation_id: str, now: float) -> None:
    """``delegation_id`` and every ancestor active and within its validity."""
    did: str | None = delegation_id
    for _ in range(MAX_DELEGATION_DEPTH):
        if did is None:
            return
        d = state.delegation(did)
        if d is None:
            raise TokenInvalid("delegation_missing")
        if d.status != "active":
            raise TokenInvalid("delegation_revoked")
        if not d.not_before <= now < d.expires_at:
            raise TokenInvalid("delegation_expired")
        did = d.parent_id
    raise TokenInvalid("delegation_too_deep")


# ------------------------------------------------------------------------------ issuance


T = TypeVar("T")


def _refusing(
    svc: Services, store_id: str, client: AuthenticatedClient, grant: str, fn: Callable[[], T]
) -> T:
    """Run ``fn``; an :class:`OAuthError` it raises is recorded (``token.refused``) and
    re-raised; a storage error becomes ``server_error``."""
    try:
        return fn()
    except OAuthError as exc:
        record_token_refused(svc, store_id, client.node, exc, grant)
        raise
    except KeyplaneError as exc:
        err = OAuthError("server_error", "the token could not be issued", reason="server_error")
        record_token_refused(svc, store_id, client.node, err, grant)
        raise err from exc


def record_token_refused(
    svc: Services, store_id: str, client_id: str | None, error: OAuthError, grant_type: str | None
) -> None:
    """Record a refused token request (``token.refused``, coalesced per store, client and
    reason). For surfaces too: a malformed request refused before any service call."""

    def build(
        store: str, subject: str | None, reason: str, at: float, count: int, extra: dict[str, Any]
    ) -> LedgerEvent:
        return LedgerEvent(
            id=new_event_id(),
            time=at,
            store=store,
            type="token.refused",
            caller=subject or "anonymous",
            subject=subject,
            action=_grant_name(grant_type),
            outcome="deny",
            reasons=(reason,),
            request_id=request_id_var.get() or None,
            details={
                "error": error.error,
                "grant_type": None if grant_type is None else grant_type[:200],
                "count": count,
                "window_seconds": 1.0,
                **extra,
            },
        )

    subject = client_id[:256] if isinstance(client_id, str) else None
    record_refusal(svc, "token.refused", store_id, subject, error.reason[:100], build)


def _grant_name(grant_type: str | None) -> str:
    if grant_type == GRANT_TOKEN_EXCHANGE:
        return "token_exchange"
    if grant_type == GRANT_CLIENT_CREDENTIALS:
        return "client_credentials"
    return "token"


def _audience(
    policy: StorePolicy, issuer: str, audience: Sequence[str], resource: Sequence[str]
) -> list[str]:
    """The token's ``aud``: the requested audiences and resources (RFC 8693 §2.1, RFC 8707),
    else the issuer. Each must be allowed by the store's ``token_audiences`` (when set; the
    issuer always is)."""
    if isinstance(audience, str) or isinstance(resource, str):
        raise OAuthError("invalid_request", "audience and resource are lists of strings")
    wanted: list[str] = []
    for a in audience:
        if not isinstance(a, str) or not a or len(a) > _MAX_VALUE:
            raise OAuthError("invalid_target", "invalid audience", reason="audience_syntax")
        wanted.append(a)
    for r in resource:
        parts = urlsplit(r) if isinstance(r, str) and 0 < len(r) <= _MAX_VALUE else None
        if parts is None or not parts.scheme or parts.fragment:
            raise OAuthError(
                "invalid_target",
                "a resource must be an absolute URI without a fragment",
                reason="resource_syntax",
            )
        wanted.append(r)
    out = list(dict.fromkeys(wanted))
    if len(out) > MAX_AUDIENCES:
        raise OAuthError("invalid_target", "too many audiences", reason="too_many_audiences")
    allowed = policy.token_audiences
    if allowed:
        bad = [a for a in out if a not in allowed and a != issuer]
        if bad:
            raise OAuthError(
                "invalid_target",
                f"audience not allowed by the store policy: {bad[0]}"[:300],
                reason="audience_not_allowed",
            )
    return out or [issuer]


def _purpose(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 128:
        raise OAuthError("invalid_request", "purpose must be 1..128 characters")
    return value


def _expiry(now: float, *limits: float, error: str = "invalid_grant") -> tuple[int, int]:
    """(iat, exp) with exp the earliest limit, whole seconds; ``error`` (reason
    ``expired``) if nothing of a second is left: ``invalid_grant`` for client_credentials
    (RFC 6749 §5.2), ``invalid_request`` for an exchange (RFC 8693 §2.2.2)."""
    iat = int(now)
    exp = math.floor(min(limits))
    if exp <= iat:
        raise OAuthError(error, "the grant expires now", reason="expired")
    return iat, exp


def _client_live(state: PolicyState, client: AuthenticatedClient) -> None:
    ident = state.identity(client.node)
    if ident is not None and ident.status != "active":
        raise OAuthError("invalid_client", "the client is not active", reason="client_inactive")
    if state.credential_revoked(client.credential_id):
        raise OAuthError("invalid_client", "the credential is revoked", reason="credential_revoked")


def _issue(
    svc: Services,
    store_id: str,
    client: AuthenticatedClient,
    state: PolicyState,
    claims: dict[str, Any],
    grant: str,
    issued_token_type: str | None,
) -> IssuedToken:
    token = _signer(svc, store_id).sign(claims, header={"typ": "at+jwt"})
    actors = tuple(_actors_of(claims))
    ev = LedgerEvent(
        id=new_event_id(),
        time=svc.clock.now(),
        store=store_id,
        type="token.issued",
        caller=client.node,
        subject=claims["sub"],
        actor_chain=actors,
        purpose=claims.get("purpose"),
        action=_grant_name(grant),
        outcome="allow",
        revision=state.revision,
        request_id=request_id_var.get() or None,
        details={
            "jti": claims["jti"],
            "aud": claims["aud"],
            "scope": claims.get("scope"),
            "exp": claims["exp"],
            "delegation_id": claims.get("delegation_id"),
            "kp_delegations": claims.get("kp_delegations", []),
            "client_id": client.node,
            "credential_id": client.credential_id,
            "parents": claims["kp_parents"],
        },
    )
    svc.ledger.record(ev)
    return IssuedToken(
        access_token=token,
        expires_in=int(claims["exp"]) - int(claims["iat"]),
        scope=claims.get("scope"),
        issued_token_type=issued_token_type,
        claims=claims,
    )


def _actors_of(claims: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    act = claims.get("act")
    while isinstance(act, Mapping):
        out.append(str(act["sub"]))
        act = act.get("act")
    out.reverse()
    return out


def issue_client_credentials(
    svc: Services,
    store_id: str,
    client: AuthenticatedClient,
    *,
    issuer: str,
    scope: str | None = None,
    audience: Sequence[str] = (),
    resource: Sequence[str] = (),
    purpose: str | None = None,
) -> IssuedToken:
    """RFC 6749 §4.4: a token for the authenticated ``client`` itself. Raises
    :class:`OAuthError` (recorded as ``token.refused``)."""

    def run() -> IssuedToken:
        state = svc.graphs.policy(store_id)
        pol = state.policy
        now = svc.clock.now()
        _client_live(state, client)
        granted = parse_scope(scope)
        aud = _audience(pol, issuer, audience, resource)
        purp = _purpose(purpose)
        iat, exp = _expiry(
            now,
            now + pol.access_token_seconds,
            client.credential_expires_at,
            now + svc.settings.token_max_ttl,
        )
        claims = build_claims(
            issuer=issuer, subject=client.node, audience=aud, issued_at=iat, expires_at=exp,
            jti=_ids.new(), client_id=client.node, scope=format_scope(granted), purpose=purp,
            creds=[client.credential_id],
        )  # fmt: skip
        return _issue(svc, store_id, client, state, claims, GRANT_CLIENT_CREDENTIALS, None)

    return _refusing(svc, store_id, client, GRANT_CLIENT_CREDENTIALS, run)


@dataclass(frozen=True, slots=True)
class _Upstream:
    """The parts of a subject or actor token an exchange builds on."""

    subject: str
    actors: tuple[str, ...]
    delegation_id: str | None  # of the newest actor
    scope: frozenset[str] | None
    purpose: str | None
    expires_at: float
    jti: str | None  # None: an external token
    creds: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    delegations: tuple[str, ...] = ()  # kp_delegations
    may_act: Any = None


def _keyplane_upstream(vt: VerifiedToken) -> _Upstream:
    c = vt.claims
    return _Upstream(
        subject=vt.subject,
        actors=vt.actors,
        delegation_id=vt.delegation_id,
        scope=vt.scope,
        purpose=vt.purpose,
        expires_at=vt.expires_at,
        jti=vt.jti,
        creds=tuple(c.get("kp_creds", ())),
        parents=tuple(c.get("kp_parents", ())),
        delegations=tuple(c.get("kp_delegations", ())),
        may_act=c.get("may_act"),
    )


def _token_type(value: str | None, what: str) -> None:
    if value not in _TOKEN_TYPES:
        raise OAuthError(
            "invalid_request",
            f"{what} must be {TT_ACCESS} or {TT_JWT}",
            reason=f"unsupported_{what}",
        )


def _external(
    svc: Services, store_id: str, state: PolicyState, token: str, now: float
) -> ExternalToken | None:
    """The token verified as a trusted external issuer's, or None when it names no trusted
    issuer. The signature result is cached per token string (bounded, at most
    :data:`EXTERNAL_CACHE_SECONDS`, and only while the store policy holds the very issuer
    record it was verified under); the expiry is checked at every use."""
    c = _caches_of(svc)
    ck = (store_id, token)
    trusted_all = state.policy.trusted_issuers
    if not trusted_all or ck in c.verified:
        # no issuer to trust, or a token this store signed (its signature checked and
        # cached): not an external one — no need to parse it to peek at its issuer
        return None
    hit = c.external.get(ck)
    if hit is not None:
        trusted, ext, at = hit
        if any(t is trusted for t in trusted_all) and now - at < EXTERNAL_CACHE_SECONDS:
            if ext.expires_at <= now - EXTERNAL_LEEWAY:
                raise TokenInvalid("expired")
            return ext
    found = find_trusted_issuer(trusted_all, token)
    if found is None:
        return None
    ext = verify_external_token(token, found, now=now)
    with c.lock:
        c.external[ck] = (found, ext, now)
        while len(c.external) > VERIFIED_CACHE_SIZE:
            c.external.popitem(last=False)
    return ext


def _subject(
    svc: Services,
    store_id: str,
    state: PolicyState,
    client: AuthenticatedClient,
    issuer: str,
    token: str,
    now: float,
) -> _Upstream:
    try:
        ext = _external(svc, store_id, state, token, now)
        if ext is not None:
            ident = state.identity(ext.subject)
            if ident is None:
                raise TokenInvalid("subject_unknown")
            if ident.status != "active":
                raise TokenInvalid(f"identity_{ident.status}")
            return _Upstream(
                subject=ext.subject, actors=(), delegation_id=None, scope=None, purpose=None,
                expires_at=ext.expires_at, jti=None, may_act=ext.claims.get("may_act"),
            )  # fmt: skip
        vt = verify_access_token(svc, store_id, token, issuer=issuer)
    except TokenInvalid as exc:
        raise OAuthError(
            _EXCHANGE_REFUSED, "the subject_token is invalid", reason=f"subject_{exc.reason}"
        ) from None
    names = accepted_issuers(svc, store_id, issuer)
    if not any(i in vt.audience for i in names) and client.node not in vt.audience:
        raise OAuthError(
            _EXCHANGE_REFUSED,
            "the subject_token is not meant for this issuer or client",
            reason="subject_audience",
        )
    return _keyplane_upstream(vt)


def _find_delegation(
    state: PolicyState,
    principal: str,
    client: str,
    parent_id: str | None,
    requested: frozenset[str] | None,
    purpose: str | None,
    pinned: str | None,
    now: float,
) -> Delegation:
    ok: list[Delegation] = []
    near = ""  # why the best near miss failed (a live delegation, wrong purpose or scope)
    for d in state.delegations_between(principal, client):
        if pinned is not None and d.id != pinned:
            continue
        if not (
            d.status == "active"
            and d.not_before <= now < d.expires_at
            and (parent_id is None or d.parent_id == parent_id)
        ):
            continue
        try:
            if d.parent_id is not None:
                _delegation_holds(state, d.parent_id, now)
        except TokenInvalid:
            continue
        if d.purposes and purpose not in d.purposes:
            near = near or "purpose"
            continue
        if requested is not None and not delegation_covers(d.scope, requested):
            near = "scope"
            continue
        ok.append(d)
    if not ok and near == "scope":
        raise OAuthError(
            "invalid_scope",
            "the delegation does not grant the requested scope",
            reason="scope_not_delegated",
        )
    if not ok and near == "purpose":
        raise OAuthError(
            _EXCHANGE_REFUSED,
            "the delegation does not allow this purpose",
            reason="purpose_not_delegated",
        )
    if not ok:
        raise OAuthError(
            _EXCHANGE_REFUSED,
            f"no delegation from {principal} to {client} allows this exchange"[:300],
            reason="delegation_missing",
        )
    return max(ok, key=lambda d: (d.created_at, d.id))


def exchange_token(
    svc: Services,
    store_id: str,
    client: AuthenticatedClient,
    *,
    issuer: str,
    subject_token: str,
    subject_token_type: str,
    actor_token: str | None = None,
    actor_token_type: str | None = None,
    requested_token_type: str | None = None,
    scope: str | None = None,
    audience: Sequence[str] = (),
    resource: Sequence[str] = (),
    purpose: str | None = None,
    delegation_id: str | None = None,
) -> IssuedToken:
    """RFC 8693 token exchange (the rules are in the module docstring and docs/tokens.md).
    Raises :class:`OAuthError` (recorded as ``token.refused``)."""

    def run() -> IssuedToken:
        state = svc.graphs.policy(store_id)
        pol = state.policy
        now = svc.clock.now()
        _client_live(state, client)
        if requested_token_type is not None:
            _token_type(requested_token_type, "requested_token_type")
        _token_type(subject_token_type, "subject_token_type")
        if not isinstance(subject_token, str) or not subject_token:
            raise OAuthError("invalid_request", "subject_token is required")
        if delegation_id is not None and (
            not isinstance(delegation_id, str) or len(delegation_id) > _MAX_VALUE
        ):
            raise OAuthError("invalid_request", "invalid delegation_id")
        requested = parse_scope(scope)
        aud = _audience(pol, issuer, audience, resource)
        subj = _subject(svc, store_id, state, client, issuer, subject_token, now)
        actor: _Upstream | None = None
        if actor_token is not None:
            _token_type(actor_token_type, "actor_token_type")
            try:
                av = verify_access_token(svc, store_id, actor_token, issuer=issuer)
            except TokenInvalid as exc:
                raise OAuthError(
                    _EXCHANGE_REFUSED, "the actor_token is invalid", reason=f"actor_{exc.reason}"
                ) from None
            if av.subject != client.node:
                raise OAuthError(
                    _EXCHANGE_REFUSED,
                    "the actor_token's subject must be the client",
                    reason="actor_mismatch",
                )
            actor = _keyplane_upstream(av)
        elif actor_token_type is not None:
            raise OAuthError("invalid_request", "actor_token_type without actor_token")
        elif not pol.allow_impersonation:
            raise OAuthError(
                "unauthorized_client",
                "impersonation (an exchange without actor_token) is not allowed in this store",
                reason="impersonation_not_allowed",
            )
        may_act = subj.may_act
        if may_act is not None and (
            not isinstance(may_act, Mapping) or may_act.get("sub") != client.node
        ):
            raise OAuthError(
                _EXCHANGE_REFUSED, "the subject_token does not allow this actor", reason="may_act"
            )
        purp = _purpose(purpose)
        if purp is not None and subj.purpose is not None and purp != subj.purpose:
            raise OAuthError(
                _EXCHANGE_REFUSED,
                "the purpose may not change from the subject_token's",
                reason="purpose_change",
            )
        purp = purp if purp is not None else subj.purpose
        principal = subj.actors[-1] if subj.actors else subj.subject
        d = _find_delegation(
            state, principal, client.node, subj.delegation_id, requested, purp, delegation_id,
            now,
        )  # fmt: skip
        granted = narrow_scope(subj.scope, requested, d.scope)
        limits = [
            now + pol.access_token_seconds,
            subj.expires_at,
            d.expires_at,
            client.credential_expires_at,
            now + svc.settings.token_max_ttl,
        ]
        if actor is not None:
            limits.append(actor.expires_at)
        iat, exp = _expiry(now, *limits, error=_EXCHANGE_REFUSED)
        ups = [subj] if actor is None else [subj, actor]
        parents = [u.jti for u in ups if u.jti is not None]
        for u in ups:
            parents.extend(u.parents)
        creds = [client.credential_id]
        dels = [d.id] if actor is None else []
        for u in ups:
            creds.extend(u.creds)
            dels.extend(u.delegations)
        if actor is not None and actor.delegation_id is not None:
            dels.append(actor.delegation_id)
        if actor is None:  # impersonation: the chain stays the subject token's
            actors, last = subj.actors, subj.delegation_id
        else:
            actors, last = (*subj.actors, client.node), d.id
        claims = build_claims(
            issuer=issuer, subject=subj.subject, audience=aud, issued_at=iat, expires_at=exp,
            jti=_ids.new(), client_id=client.node, scope=format_scope(granted), actors=actors,
            delegation_id=last, purpose=purp, creds=creds, parents=parents, delegations=dels,
        )  # fmt: skip
        issued = requested_token_type or TT_ACCESS
        return _issue(svc, store_id, client, state, claims, GRANT_TOKEN_EXCHANGE, issued)

    return _refusing(svc, store_id, client, GRANT_TOKEN_EXCHANGE, run)


# ------------------------------------------------------------------------------ introspection


def introspect_token(
    svc: Services, store_id: str, token: str, *, issuer: str | None = None
) -> dict[str, Any]:
    """The RFC 7662 §2.2 body: ``{"active": false}`` for any token that fails verification
    (never why), else ``active``, ``scope``, ``client_id``, ``token_type``, ``exp``,
    ``iat``, ``nbf``, ``sub``, ``aud``, ``iss``, ``jti`` and Keyplane's ``act``,
    ``delegation_id``, ``purpose``."""
    try:
        vt = verify_access_token(svc, store_id, token, issuer=issuer)
    except TokenInvalid:
        return {"active": False}
    return introspection_body(vt)


def introspection_body(vt: VerifiedToken) -> dict[str, Any]:
    """The RFC 7662 §2.2 body of a token that verified (``active`` true; see
    :func:`introspect_token`)."""
    c = vt.claims
    out: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti"):
        if name in c:
            out[name] = c[name]
    for name in ("act", "delegation_id", "purpose"):
        if name in c:
            out[name] = c[name]
    return out


# ------------------------------------------------------------------------------ revocation


def _revoked_event(
    svc: Services,
    caller: str,
    store_id: str,
    revision: int,
    subject: str | None,
    jti: str,
    reason: str | None,
    **extra: Any,
) -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(),
        time=svc.clock.now(),
        store=store_id,
        type="token.revoked",
        caller=caller,
        subject=subject,
        action="revoke",
        resource=f"token:{jti}",
        outcome="ok",
        revision=revision,
        request_id=request_id_var.get() or None,
        details={"jti": jti, "jtis": [jti], "reason": reason, **extra},
    )
    return [svc.ledger.prepare(ev)]


def revoke_token(
    svc: Services,
    store_id: str,
    token: str,
    *,
    requester: str,
    issuer: str | None = None,
    admin: bool = False,
) -> bool:
    """RFC 7009: revoke ``token`` — a Keyplane token of the store whose signature verifies
    (expired, revoked or otherwise dead tokens need nothing: ``False``, and so does a token
    that is not ours: RFC 7009 §2.2 answers 200 either way). Only the token's client
    (``requester``) may revoke it, or an ``admin`` (an API-key caller with
    ``can_manage_credentials``); anyone else gets ``unauthorized_client``. Every token
    derived from it (``kp_parents``) dies with it. Returns whether it was revoked now."""
    try:
        checked = _checked(svc, store_id, token)
    except (TokenInvalid, KeyplaneError):
        return False
    tc = checked.tc
    if issuer is not None and tc.issuer not in accepted_issuers(svc, store_id, issuer):
        return False
    if not admin and requester != tc.client_id:
        raise OAuthError(
            "unauthorized_client",
            "only the client the token was issued to may revoke it",
            reason="not_token_client",
        )
    now = svc.clock.now()
    if now >= tc.expires_at or svc.graphs.policy(store_id).token_revoked(tc.jti):
        return False
    reason = "revoked by an administrator" if admin else "revoked by its client (RFC 7009)"

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return _revoked_event(
            svc, requester, store_id, revision, tc.subject, tc.jti, reason,
            client_id=tc.client_id, expires_at=tc.expires_at,
        )  # fmt: skip

    svc.storage.revoke_tokens(
        store_id, [(tc.jti, float(tc.expires_at))], revoked_by=requester, reason=reason,
        revoked_at=now, ledger_events=events,
    )  # fmt: skip
    svc.graphs.catch_up(store_id)
    return True


@audited("token.revoked")
def revoke_token_id(
    svc: Services,
    caller: Caller,
    store_id: str,
    jti: str,
    *,
    expires_at: float | None = None,
    reason: str | None = None,
) -> int:
    """Revoke the token ``jti`` (MANAGE_CREDENTIALS) — and every token derived from it.
    ``expires_at`` (when the token expires: its revocation is kept until then) defaults to
    now + ``KEYPLANE_TOKEN_MAX_TTL``, the longest any token lives. Returns the revision."""
    authorize(svc, caller, Permission.MANAGE_CREDENTIALS, store_id)
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_VALUE:
        raise ValidationError("jti must be a string of 1..512 characters", details={"field": "jti"})
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1024):
        raise ValidationError("reason must be a string of at most 1024 characters")
    now = svc.clock.now()
    if expires_at is None:
        exp = now + svc.settings.token_max_ttl
    elif (
        isinstance(expires_at, bool)
        or not isinstance(expires_at, int | float)
        or not math.isfinite(expires_at)
    ):
        raise ValidationError(
            "expires_at must be a time in seconds since the epoch", details={"field": "expires_at"}
        )
    else:
        exp = float(expires_at)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "token.revoked", store_id, resource=f"token:{jti}", action="revoke",
            revision=revision, details={"jti": jti, "jtis": [jti], "expires_at": exp,
                                        "reason": reason},
        )  # fmt: skip

    revision = svc.storage.revoke_tokens(
        store_id, [(jti, exp)], revoked_by=caller.principal, reason=reason, revoked_at=now,
        ledger_events=events,
    )  # fmt: skip
    svc.graphs.catch_up(store_id)
    return revision

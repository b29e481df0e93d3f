"""The store policy: the delegation duration cap, orphan handling and the action map.

* ``max_delegation_seconds`` caps ``expires_at - not_before`` of every new delegation
  (default 86,400: 24 h);
* ``suspend_orphans``: when deprovisioning an owner leaves a non-human identity without an
  active owner, suspend it too (it is always flagged ``orphaned``);
* ``max_credential_seconds`` caps ``expires_at - created`` of every new client credential
  (default 7,776,000: 90 days; see :mod:`keyplane.service.credentials`);
* ``actions``: store-level action names → relations, used by decisions (and AuthZEN
  ``action.name``): ``decide(..., action="read")`` checks ``actions.get("read", "read")``;
* the token endpoint's settings (see :mod:`keyplane.service.tokens`):
  ``access_token_seconds`` (default 300; 60 … ``KEYPLANE_TOKEN_MAX_TTL``) the lifetime of
  issued access tokens; ``allow_impersonation`` (default false) whether a token exchange
  without ``actor_token`` may be granted; ``token_audiences`` (default none: any) the only
  ``audience``/``resource`` values tokens may be issued for; ``trusted_issuers`` the
  external issuers (:class:`~keyplane.policy.records.TrustedIssuer`, each with its required
  ``audience``) whose tokens an exchange accepts as ``subject_token`` — replaced as a whole,
  like ``actions``.

A store that never set its policy has the defaults (revision 0).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from keyplane.errors import ValidationError
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.records import (
    IDENTITY_KINDS,
    TRUSTED_ISSUER_ALGORITHMS,
    StorePolicy,
    TrustedIssuer,
)
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.storage.base import PolicyTxReader, PolicyWrite

__all__ = ["get_store_policy", "update_store_policy"]

#: the longest delegation a store policy may allow (one year)
MAX_DELEGATION_CAP = 366 * 86400
#: the longest client credential a store policy may allow (two years)
MAX_CREDENTIAL_CAP = 731 * 86400
MAX_ACTIONS = 1000
_NAME_RE = re.compile(r"^[^\s#:*]{1,128}$")
#: the shortest access-token lifetime a store policy may set (the longest:
#: KEYPLANE_TOKEN_MAX_TTL)
MIN_ACCESS_TOKEN_SECONDS = 60
MAX_TOKEN_AUDIENCES = 100
MAX_TRUSTED_ISSUERS = 20
#: the JWS algorithms a trusted issuer may be configured with
ISSUER_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
_MAX_URI = 512
_MAX_JWKS_CHARS = 64 * 1024
_AUDIENCE_RE = re.compile(r"^[\x21-\x7e\u00a0-\U0010ffff]{1,512}$")
_CLAIM_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_TI_FIELDS = frozenset(
    {"issuer", "jwks", "jwks_uri", "audience", "subject_kind", "subject_claim", "algorithms"}
)


def _actions(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("actions must be an object: action name -> relation")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _NAME_RE.match(k):
            raise ValidationError(f"invalid action name {k!r}", details={"action": str(k)[:200]})
        if not isinstance(v, str) or not _NAME_RE.match(v):
            raise ValidationError(f"invalid relation {v!r} for action {k!r}", details={"action": k})
        out[k] = v
    if len(out) > MAX_ACTIONS:
        raise ValidationError(f"at most {MAX_ACTIONS} actions")
    return out


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", details={"field": field})


def _access_token_seconds(value: Any, ceiling: int) -> int:
    top = max(MIN_ACCESS_TOKEN_SECONDS, int(ceiling))
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (MIN_ACCESS_TOKEN_SECONDS <= value <= top)
    ):
        raise ValidationError(
            f"access_token_seconds must be an integer in {MIN_ACCESS_TOKEN_SECONDS}..{top}"
            " (the top is KEYPLANE_TOKEN_MAX_TTL)",
            details={"access_token_seconds": str(value)[:50]},
        )
    return value


def _strings(value: Any, field: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _bad(field, "must be a list")
    return list(value)


def _token_audiences(value: Any) -> tuple[str, ...]:
    items = _strings(value, "token_audiences")
    if len(items) > MAX_TOKEN_AUDIENCES:
        raise _bad("token_audiences", f"at most {MAX_TOKEN_AUDIENCES} values")
    out: list[str] = []
    for i, a in enumerate(items):
        if not isinstance(a, str) or not _AUDIENCE_RE.match(a):
            raise _bad(
                f"token_audiences[{i}]",
                "must be a string of 1 to 512 characters without spaces or control characters",
            )
        if a in out:
            raise _bad(f"token_audiences[{i}]", f"{a!r} is listed twice")
        out.append(a)
    return tuple(out)


def _https_url(value: Any, field: str) -> str:
    """An absolute https URL (http only for a loopback host: local development and
    tests), no fragment, no credentials."""
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_URI or not value.isprintable():
        raise _bad(field, f"must be a URL of at most {_MAX_URI} characters")
    try:
        u = urlsplit(value)
        host = u.hostname or ""
        _ = u.port  # raises ValueError for a bad port
    except ValueError:
        raise _bad(field, "is not a valid URL") from None
    if any(c.isspace() for c in value) or not host or u.fragment or u.username or u.password:
        raise _bad(field, "must be an absolute URL with a host, no fragment and no credentials")
    if u.scheme == "https":
        return value
    if u.scheme == "http" and _loopback(host):
        return value
    raise _bad(field, "must use https (http only for localhost)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _jwks(value: Any, field: str) -> dict[str, Any]:
    from keyplane.tokens.clients import _load

    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), list):
        raise _bad(field, "must be a JWK Set: an object with a 'keys' list")
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError):
        raise _bad(field, "must be JSON") from None
    if len(text) > _MAX_JWKS_CHARS:
        raise _bad(field, f"is larger than {_MAX_JWKS_CHARS} characters")
    keys = value["keys"]
    if not keys or len(keys) > 100:
        raise _bad(field, "must hold 1 to 100 keys")
    usable = 0
    for i, jwk in enumerate(keys):
        if not isinstance(jwk, Mapping):
            raise _bad(f"{field}.keys[{i}]", "must be a JWK (an object)")
        private = sorted(_PRIVATE_JWK_MEMBERS & set(jwk))
        if private:
            raise _bad(
                f"{field}.keys[{i}]",
                f"holds private key material ({', '.join(private)}): give the PUBLIC keys only",
            )
        try:
            _load(jwk)
            usable += 1
        except (ValueError, TypeError):
            continue
    if not usable:
        raise _bad(field, "has no usable public key (Ed25519, P-256 or RSA >= 2048 bits)")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _trusted_issuer(value: Any, i: int) -> TrustedIssuer:
    f = f"trusted_issuers[{i}]"
    if isinstance(value, TrustedIssuer):
        value = value.to_json()
    if not isinstance(value, Mapping):
        raise _bad(f, "must be an object")
    unknown = sorted(str(k) for k in value if k not in _TI_FIELDS)
    if unknown:
        raise _bad(f, f"unknown field(s): {', '.join(unknown)[:200]}")
    issuer = _https_url(value.get("issuer"), f"{f}.issuer")
    if urlsplit(issuer).query:
        raise _bad(f"{f}.issuer", "must have no query (RFC 8414 §2)")
    jwks, jwks_uri = value.get("jwks"), value.get("jwks_uri")
    if (jwks is None) == (jwks_uri is None):
        raise _bad(f, "give exactly one of jwks (an inline JWK Set) and jwks_uri")
    audience = value.get("audience")
    if audience is None:  # without it, a token the IdP issued for ANY application would do
        raise _bad(
            f"{f}.audience",
            "is required: the value the issuer's tokens carry in aud for Keyplane",
        )
    if not isinstance(audience, str) or not _AUDIENCE_RE.match(audience):
        raise _bad(f"{f}.audience", "must be a string of 1 to 512 characters without spaces")
    kind = value.get("subject_kind", "human")
    if kind not in IDENTITY_KINDS:
        raise _bad(f"{f}.subject_kind", f"must be one of {', '.join(IDENTITY_KINDS)}")
    claim = value.get("subject_claim", "sub")
    if not isinstance(claim, str) or not _CLAIM_RE.match(claim):
        raise _bad(f"{f}.subject_claim", "must be a claim name ([A-Za-z0-9_.:-], 1 to 64)")
    algs_in = value.get("algorithms")
    algs: tuple[str, ...] = TRUSTED_ISSUER_ALGORITHMS
    if algs_in is not None:
        listed = _strings(algs_in, f"{f}.algorithms")
        if not listed or any(a not in ISSUER_ALGORITHMS for a in listed):
            raise _bad(
                f"{f}.algorithms", f"must be a non-empty list of {', '.join(ISSUER_ALGORITHMS)}"
            )
        algs = tuple(dict.fromkeys(listed))
    return TrustedIssuer(
        issuer=issuer,
        jwks=None if jwks is None else _jwks(jwks, f"{f}.jwks"),
        jwks_uri=None if jwks_uri is None else _https_url(jwks_uri, f"{f}.jwks_uri"),
        audience=audience,
        subject_kind=kind,
        subject_claim=claim,
        algorithms=algs,
    )


def _trusted_issuers(value: Any) -> tuple[TrustedIssuer, ...]:
    items = _strings(value, "trusted_issuers")
    if len(items) > MAX_TRUSTED_ISSUERS:
        raise _bad("trusted_issuers", f"at most {MAX_TRUSTED_ISSUERS} issuers")
    out: list[TrustedIssuer] = []
    for i, v in enumerate(items):
        t = _trusted_issuer(v, i)
        if any(o.issuer == t.issuer for o in out):
            raise _bad(f"trusted_issuers[{i}].issuer", f"{t.issuer!r} is listed twice")
        out.append(t)
    return tuple(out)


@audited(None)
def get_store_policy(svc: Services, caller: Caller, store_id: str) -> StorePolicy:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    return svc.storage.get_store_policy(store_id)


@audited("policy.updated")
def update_store_policy(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    max_delegation_seconds: int | None = None,
    suspend_orphans: bool | None = None,
    actions: Mapping[str, str] | None = None,
    max_credential_seconds: int | None = None,
    access_token_seconds: int | None = None,
    allow_impersonation: bool | None = None,
    token_audiences: Sequence[str] | None = None,
    trusted_issuers: Sequence[TrustedIssuer | Mapping[str, Any]] | None = None,
) -> StorePolicy:
    """Change the given settings (``actions``, ``token_audiences`` and ``trusted_issuers``
    replace the whole list or map). Existing delegations keep their expiry; the cap
    applies to new ones; likewise tokens already issued keep theirs. Nothing given, or
    nothing different: the policy is returned unchanged (no revision, no event)."""
    authorize(svc, caller, Permission.MANAGE_POLICY, store_id)
    if max_delegation_seconds is not None and (
        isinstance(max_delegation_seconds, bool)
        or not isinstance(max_delegation_seconds, int)
        or not 1 <= max_delegation_seconds <= MAX_DELEGATION_CAP
    ):
        raise ValidationError(
            f"max_delegation_seconds must be an integer in 1..{MAX_DELEGATION_CAP}",
            details={"max_delegation_seconds": str(max_delegation_seconds)[:50]},
        )
    if max_credential_seconds is not None and (
        isinstance(max_credential_seconds, bool)
        or not isinstance(max_credential_seconds, int)
        or not 60 <= max_credential_seconds <= MAX_CREDENTIAL_CAP
    ):
        raise ValidationError(
            f"max_credential_seconds must be an integer in 60..{MAX_CREDENTIAL_CAP}",
            details={"max_credential_seconds": str(max_credential_seconds)[:50]},
        )
    if suspend_orphans is not None and not isinstance(suspend_orphans, bool):
        raise ValidationError("suspend_orphans must be true or false")
    if allow_impersonation is not None and not isinstance(allow_impersonation, bool):
        raise ValidationError("allow_impersonation must be true or false")
    acts = None if actions is None else _actions(actions)
    ttl = (
        None
        if access_token_seconds is None
        else _access_token_seconds(access_token_seconds, svc.settings.token_max_ttl)
    )
    auds = None if token_audiences is None else _token_audiences(token_audiences)
    issuers = None if trusted_issuers is None else _trusted_issuers(trusted_issuers)
    state: dict[str, StorePolicy] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        old = r.store_policy()
        state["old"] = old
        new = dataclasses.replace(
            old,
            max_delegation_seconds=old.max_delegation_seconds
            if max_delegation_seconds is None
            else max_delegation_seconds,
            suspend_orphans=old.suspend_orphans if suspend_orphans is None else suspend_orphans,
            actions=old.actions if acts is None else acts,
            max_credential_seconds=old.max_credential_seconds
            if max_credential_seconds is None
            else max_credential_seconds,
            access_token_seconds=old.access_token_seconds if ttl is None else ttl,
            allow_impersonation=old.allow_impersonation
            if allow_impersonation is None
            else allow_impersonation,
            token_audiences=old.token_audiences if auds is None else auds,
            trusted_issuers=old.trusted_issuers if issuers is None else issuers,
        )
        if new == old:
            return PolicyWrite()
        state["new"] = new
        return PolicyWrite(store_policy=new)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        new = state["new"]
        return audit.change_events(
            svc, caller, "policy.updated", store_id, resource=store_id, action="update",
            revision=revision,
            details={
                "max_delegation_seconds": new.max_delegation_seconds,
                "suspend_orphans": new.suspend_orphans, "actions": dict(new.actions),
                "max_credential_seconds": new.max_credential_seconds,
                "access_token_seconds": new.access_token_seconds,
                "allow_impersonation": new.allow_impersonation,
                "token_audiences": list(new.token_audiences),
                # the issuers and where their keys come from (an inline key set is not
                # repeated in the ledger: its keys' ids are)
                "trusted_issuers": [_issuer_summary(t) for t in new.trusted_issuers],
            },
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed or result.store_policy is None:
        return state["old"]
    svc.graphs.catch_up(store_id)
    return result.store_policy


def _issuer_summary(t: TrustedIssuer) -> dict[str, Any]:
    out: dict[str, Any] = {"issuer": t.issuer, "subject_kind": t.subject_kind}
    if t.jwks_uri is not None:
        out["jwks_uri"] = t.jwks_uri
    if t.jwks is not None:
        out["jwks_kids"] = [k.get("kid") for k in t.jwks.get("keys", []) if isinstance(k, Mapping)][
            :100
        ]
    return out

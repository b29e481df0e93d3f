"""Keyplane access tokens (RFC 9068 JWTs): the claims, the actor chain, and checking a
compact JWS against a store's published keys. Domain rules only: no storage, no service
(:mod:`keyplane.service.tokens` issues, exchanges, verifies and revokes).

**Claims** (:func:`build_claims`): ``iss``, ``sub`` (a graph node), ``aud`` (always a
list), ``exp``/``iat``/``nbf`` (ints; ``nbf`` = ``iat``), ``jti`` (a ULID), ``client_id``
(the client that obtained it), ``scope`` (only when restricted), ``act`` (RFC 8693 §4.1:
the newest actor outermost), ``delegation_id`` (the delegation the newest actor acts
under), ``purpose``, ``kp_creds`` (the client credentials of the token's whole lineage, own
first), ``kp_parents`` (the jtis of the upstream Keyplane tokens, at most
:data:`MAX_PARENTS`) and, when any, ``kp_delegations`` (delegations the token depends on
beyond ``delegation_id``'s chain: the one an impersonation was allowed under, inherited
by every token derived from it). Header ``{"typ": "at+jwt", "alg", "kid"}``.

**Checking** (:func:`parse_jws`, :func:`verify_signature`, :func:`check_claims`): at most
:data:`MAX_TOKEN_BYTES`, three base64url parts of JSON objects; header ``typ`` ``at+jwt``;
``alg`` must be the algorithm of the published key the ``kid`` names (``none``, ``HS*`` and
an unknown ``kid`` are refused before any cryptography); no ``crit``; then the signature.
Claims: every required member present and well typed; ``exp`` in the future; ``nbf`` and
``iat`` not more than :data:`LEEWAY` seconds ahead. Every refusal raises
:class:`~keyplane.tokens.errors.TokenInvalid` with a reason code.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keyplane.tokens.errors import TokenInvalid

__all__ = [
    "LEEWAY",
    "MAX_ACTORS",
    "MAX_CREDS",
    "MAX_PARENTS",
    "MAX_TOKEN_BYTES",
    "TOKEN_TYP",
    "ParsedToken",
    "PublishedKey",
    "TokenClaims",
    "build_claims",
    "check_claims",
    "check_header",
    "check_time",
    "flatten_act",
    "load_published_key",
    "nest_act",
    "parse_jws",
    "verify_signature",
]

#: the largest token accepted (bytes of the compact serialization)
MAX_TOKEN_BYTES: Final = 8192
#: clock skew tolerated on ``nbf``/``iat`` (``exp`` gets none: it is ours)
LEEWAY: Final = 30
#: the most upstream token ids a token records
MAX_PARENTS: Final = 32
#: the most credential ids a token records
MAX_CREDS: Final = 32
#: the longest actor chain (``act`` nesting) a token may carry
MAX_ACTORS: Final = 16
#: RFC 9068 §2.1
TOKEN_TYP: Final = "at+jwt"

_B64 = re.compile(r"[A-Za-z0-9_-]*")
_MAX_STR = 512


def _b64d(text: str) -> bytes:
    if not _B64.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------------------ the act chain


def nest_act(actors: Sequence[str]) -> dict[str, Any] | None:
    """The RFC 8693 ``act`` claim of ``actors`` (oldest first): the newest outermost."""
    act: dict[str, Any] | None = None
    for a in actors:  # oldest first: each newer one wraps the chain so far
        act = {"sub": a} if act is None else {"sub": a, "act": act}
    return act


def flatten_act(act: Any) -> tuple[str, ...]:
    """The actors of an ``act`` claim, oldest first (``None``: no actors). Raises
    :class:`TokenInvalid` (``malformed_act``) for anything else than nested ``{"sub"}``."""
    out: list[str] = []
    while act is not None:
        if not isinstance(act, Mapping) or not isinstance(act.get("sub"), str):
            raise TokenInvalid("malformed_act")
        sub = act["sub"]
        if not sub or len(sub) > _MAX_STR or len(out) >= MAX_ACTORS:
            raise TokenInvalid("malformed_act")
        out.append(sub)
        act = act.get("act")
    out.reverse()
    return tuple(out)


# ------------------------------------------------------------------------------ claims


def _dedup(items: Sequence[str], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)[:limit]


def build_claims(
    *,
    issuer: str,
    subject: str,
    audience: Sequence[str],
    issued_at: int,
    expires_at: int,
    jti: str,
    client_id: str,
    scope: str | None = None,
    actors: Sequence[str] = (),
    delegation_id: str | None = None,
    purpose: str | None = None,
    creds: Sequence[str] = (),
    parents: Sequence[str] = (),
    delegations: Sequence[str] = (),
) -> dict[str, Any]:
    """The claims of a new access token (see the module docstring)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": list(audience),
        "exp": expires_at,
        "iat": issued_at,
        "nbf": issued_at,
        "jti": jti,
        "client_id": client_id,
    }
    if scope is not None:
        claims["scope"] = scope
    act = nest_act(actors)
    if act is not None:
        claims["act"] = act
    if delegation_id is not None:
        claims["delegation_id"] = delegation_id
    if purpose is not None:
        claims["purpose"] = purpose
    claims["kp_creds"] = _dedup(creds, MAX_CREDS)
    claims["kp_parents"] = _dedup(parents, MAX_PARENTS)
    if delegations:
        claims["kp_delegations"] = _dedup(delegations, MAX_PARENTS)
    return claims


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The checked claims of a token (what verification derived from them)."""

    claims: Mapping[str, Any]
    issuer: str
    subject: str
    actors: tuple[str, ...]  # oldest first
    audience: tuple[str, ...]
    expires_at: int
    not_before: int
    issued_at: int
    jti: str
    client_id: str
    scope: str | None
    delegation_id: str | None
    purpose: str | None
    creds: tuple[str, ...]
    parents: tuple[str, ...]


def _int(claims: Mapping[str, Any], name: str) -> int:
    v = claims.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TokenInvalid(f"invalid_{name}")
    return int(v)


def _str(claims: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    v = claims.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v or len(v) > (4096 if name == "scope" else _MAX_STR):
        raise TokenInvalid(f"invalid_{name}")
    return v


def _strs(claims: Mapping[str, Any], name: str, limit: int) -> tuple[str, ...]:
    v = claims.get(name, [])
    if (
        not isinstance(v, list)
        or len(v) > limit
        or not all(isinstance(x, str) and 0 < len(x) <= _MAX_STR for x in v)
    ):
        raise TokenInvalid(f"invalid_{name}")
    return tuple(v)


def check_claims(claims: Mapping[str, Any]) -> TokenClaims:
    """The token's claims, checked for presence and type (not for time: :func:`check_time`)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        aud = [aud]
    if (
        not isinstance(aud, list)
        or not aud
        or len(aud) > 32
        or not all(isinstance(a, str) and a for a in aud)
    ):
        raise TokenInvalid("invalid_aud")
    return TokenClaims(
        claims=claims,
        issuer=_str(claims, "iss", required=True) or "",
        subject=_str(claims, "sub", required=True) or "",
        actors=flatten_act(claims.get("act")),
        audience=tuple(aud),
        expires_at=_int(claims, "exp"),
        not_before=_int(claims, "nbf") if "nbf" in claims else _int(claims, "iat"),
        issued_at=_int(claims, "iat"),
        jti=_str(claims, "jti", required=True) or "",
        client_id=_str(claims, "client_id", required=True) or "",
        scope=_str(claims, "scope", required=False),
        delegation_id=_str(claims, "delegation_id", required=False),
        purpose=_str(claims, "purpose", required=False),
        creds=_strs(claims, "kp_creds", MAX_CREDS),
        parents=_strs(claims, "kp_parents", MAX_PARENTS),
    )


def check_time(tc: TokenClaims, now: float) -> None:
    """``exp`` in the future (no leeway), ``nbf``/``iat`` at most :data:`LEEWAY` ahead."""
    if now >= tc.expires_at:
        raise TokenInvalid("expired")
    if tc.not_before > now + LEEWAY or tc.issued_at > now + LEEWAY:
        raise TokenInvalid("not_yet_valid")


# ------------------------------------------------------------------------------ the JWS


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A compact JWS split and decoded (not yet verified)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_jws(token: Any) -> ParsedToken:
    """Split and decode a compact JWS; :class:`TokenInvalid` (``malformed``) otherwise."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        raise TokenInvalid("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("malformed")
    try:
        header = json.loads(_b64d(parts[0]))
        claims = json.loads(_b64d(parts[1]))
        signature = _b64d(parts[2])
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise TokenInvalid("malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenInvalid("malformed")
    return ParsedToken(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """A store's published signing key, loaded: verifies until ``publish_until``."""

    kid: str
    algorithm: str
    key: PublicKey
    publish_until: float | None  # None: the active key


def load_published_key(
    jwk: Mapping[str, Any], algorithm: str, publish_until: float | None
) -> PublishedKey:
    """A :class:`PublishedKey` from one of the store's public JWKs (EdDSA or ES256)."""
    kid = str(jwk["kid"])
    if algorithm == "EdDSA" and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        key: PublicKey = ed25519.Ed25519PublicKey.from_public_bytes(_b64d(str(jwk["x"])))
    elif algorithm == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_b64d(str(jwk["x"])), "big"),
            int.from_bytes(_b64d(str(jwk["y"])), "big"),
            ec.SECP256R1(),
        ).public_key()
    else:
        raise ValueError(f"cannot load a {algorithm} key from this JWK")
    return PublishedKey(kid, algorithm, key, publish_until)


def check_header(p: ParsedToken, keys: Mapping[str, PublishedKey]) -> PublishedKey:
    """The published key the header names, with its ``alg`` and ``typ`` checked (before any
    cryptography). :class:`TokenInvalid`: ``wrong_typ``, ``alg_not_allowed``, ``unknown_kid``,
    ``malformed`` (``crit``)."""
    h = p.header
    typ = h.get("typ")
    if not isinstance(typ, str) or typ.lower() not in (TOKEN_TYP, "application/at+jwt"):
        raise TokenInvalid("wrong_typ")
    alg = h.get("alg")
    if alg not in ("EdDSA", "ES256"):  # none, HS*, RS*, anything else: never
        raise TokenInvalid("alg_not_allowed")
    if "crit" in h:
        raise TokenInvalid("malformed")
    kid = h.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenInvalid("unknown_kid")
    if key.algorithm != alg:
        raise TokenInvalid("alg_not_allowed")
    return key


def verify_signature(p: ParsedToken, key: PublishedKey) -> None:
    """The signature over the token by ``key``; :class:`TokenInvalid` (``bad_signature``)."""
    try:
        if isinstance(key.key, ed25519.Ed25519PublicKey):
            key.key.verify(p.signature, p.signing_input)
        else:
            if len(p.signature) != 64:
                raise TokenInvalid("bad_signature")
            r = int.from_bytes(p.signature[:32], "big")
            s = int.from_bytes(p.signature[32:], "big")
            key.key.verify(encode_dss_signature(r, s), p.signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenInvalid("bad_signature") from None

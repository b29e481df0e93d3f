"""Tokens of trusted external issuers: the person's IdP token a token exchange accepts as
``subject_token`` (RFC 8693 §2.1), verified in ONE call that fails closed.

A store's policy lists its :class:`~keyplane.policy.records.TrustedIssuer` records;
:func:`verify_external_token` accepts a compact JWS (RFC 7515) only when

* it is at most :data:`MAX_TOKEN_BYTES` long, three base64url parts, its header and
  claims JSON objects without repeated members (no parser differentials);
* its header ``alg`` is one of :data:`SUPPORTED_ALGORITHMS` AND of the issuer's configured
  ``algorithms`` — ``none``, ``HS*`` (an HMAC "keyed" with a public key) and anything else
  refused before any cryptography (RFC 8725 §3.1); ``crit`` refused (RFC 7515 §4.1.11: we
  understand no extension); ``jku``/``x5u``/``jwk`` headers are never used to find a key;
* its ``iss`` is the issuer's, exactly;
* a key of the issuer's JWK Set — inline ``jwks`` or fetched from ``jwks_uri`` — whose
  ``kid`` is the header's (a token without ``kid``: the set's only key for that alg),
  whose type fits the alg (RSA ≥ 2048 bits for RS256/PS256, EC P-256 for ES256, OKP
  Ed25519 for EdDSA) and whose own ``alg``, ``use`` and ``key_ops``, when present, allow
  it, verifies the signature;
* ``exp`` is present and after now − :data:`LEEWAY`; ``nbf`` and ``iat``, when present, at
  most now + :data:`LEEWAY` (RFC 7519 §4.1.4-6);
* ``aud`` contains the issuer's ``audience`` — always: it is required (RFC 7519 §4.1.3;
  a token minted for another application is never accepted, RFC 8725 §3.9);
* the ``subject_claim`` is a string making ``f"{subject_kind}:{value}"`` a valid graph
  object — the subject node. (Whether that identity is registered and active is the
  service's check: it needs the store's live state.)

Every refusal raises :class:`~keyplane.tokens.errors.TokenInvalid` whose ``reason``
(``alg_not_allowed``, ``unknown_kid``, ``bad_signature``, ``expired``, ...) is for the
ledger only.

**Key sets from** ``jwks_uri`` (:class:`JWKSCache`) are fetched with httpx (no redirects,
:data:`FETCH_TIMEOUT` s, at most :data:`MAX_JWKS_BYTES`, status 200), cached
:data:`JWKS_TTL` s per issuer, and refetched early when a token names an unknown ``kid``
(the issuer rotated) — at most once per :data:`REFETCH_INTERVAL` s per issuer, so tokens
naming made-up kids cannot make Keyplane hammer the IdP. A failed fetch is retried no
sooner either; a set that cannot be refreshed once stale is not used (fail closed).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keyplane.clock import Clock, SystemClock
from keyplane.graph.tuples import object_error
from keyplane.policy.records import TrustedIssuer
from keyplane.tokens.clients import _b64d, _load
from keyplane.tokens.errors import TokenInvalid

__all__ = [
    "FETCH_TIMEOUT",
    "JWKS_TTL",
    "LEEWAY",
    "MAX_JWKS_BYTES",
    "MAX_TOKEN_BYTES",
    "REFETCH_INTERVAL",
    "SUPPORTED_ALGORITHMS",
    "ExternalToken",
    "JWKSCache",
    "default_jwks_cache",
    "find_trusted_issuer",
    "peek_issuer",
    "verify_external_token",
]

#: the algorithms an external token may use (each issuer narrows them further)
SUPPORTED_ALGORITHMS: Final = ("RS256", "PS256", "ES256", "EdDSA")
MAX_TOKEN_BYTES: Final = 8192
#: clock skew tolerated on exp, nbf and iat (seconds)
LEEWAY: Final = 30
#: how long a fetched JWK Set is used (seconds)
JWKS_TTL: Final = 300.0
#: the least time between two fetches of one issuer's set (seconds)
REFETCH_INTERVAL: Final = 10.0
FETCH_TIMEOUT: Final = 5.0
MAX_JWKS_BYTES: Final = 256 * 1024

_KEY_TYPES: Final = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class ExternalToken:
    """A verified external token: its issuer, the subject node it names, its claims."""

    issuer: str
    subject: str  # graph node, e.g. "human:alice"
    claims: Mapping[str, Any]
    alg: str
    kid: str | None
    expires_at: float
    jti: str | None


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str | None
    kty: str
    alg: str | None  # the JWK's own "alg", when it names one
    key: _PublicKey = field(repr=False)

    def fits(self, alg: str) -> bool:
        return self.kty == _KEY_TYPES[alg] and self.alg in (None, alg)


# ------------------------------------------------------------------------------ parsing


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"repeated member {k!r}")
        out[k] = v
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any]:
    value = json.loads(
        raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant
    )
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class _JWS:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _parse(token: Any) -> _JWS:
    if not isinstance(token, str) or not token:
        raise TokenInvalid("malformed")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenInvalid("too_large")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("malformed")
    try:
        header = _json_object(_b64d(parts[0], "header"))
        claims = _json_object(_b64d(parts[1], "payload"))
        signature = _b64d(parts[2], "signature")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenInvalid("malformed") from None
    return _JWS(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def peek_issuer(token: Any) -> str | None:
    """The UNVERIFIED ``iss`` of a compact JWS — only to pick which issuer's rules verify
    it (:func:`find_trusted_issuer`); ``None`` when there is none or the token is malformed."""
    try:
        iss = _parse(token).claims.get("iss")
    except TokenInvalid:
        return None
    return iss if isinstance(iss, str) else None


def find_trusted_issuer(trusted: Sequence[TrustedIssuer], token: Any) -> TrustedIssuer | None:
    """The trusted issuer the token claims to come from (by its unverified ``iss``), or
    ``None``: a Keyplane token, or one of an issuer the store does not trust."""
    iss = peek_issuer(token)
    if iss is None:
        return None
    return next((t for t in trusted if t.issuer == iss), None)


# ---------------------------------------------------------------------------- key sets


def _parse_jwks(value: Any) -> tuple[_Key, ...]:
    """The usable signature keys of a JWK Set; keys this module cannot use (other types,
    curves, short RSA, "use": "enc", private members) are skipped, not fatal."""
    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), list):
        raise ValueError("a JWK Set is an object with a 'keys' list")
    keys: list[_Key] = []
    for jwk in value["keys"][:100]:
        if not isinstance(jwk, Mapping) or _PRIVATE_MEMBERS & set(jwk):
            continue
        if jwk.get("use") not in (None, "sig"):
            continue
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        kid, alg = jwk.get("kid"), jwk.get("alg")
        if (kid is not None and not isinstance(kid, str)) or (
            alg is not None and alg not in SUPPORTED_ALGORITHMS
        ):
            continue
        try:
            key = _load(jwk)
        except (ValueError, TypeError):
            continue
        kty = str(jwk["kty"])
        if alg is not None and _KEY_TYPES[alg] != kty:
            continue
        keys.append(_Key(kid, kty, alg, key))
    return tuple(keys)


@dataclass
class _Entry:
    keys: tuple[_Key, ...] = ()
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float = -math.inf  # last attempt, successful or not
    lock: threading.Lock = field(default_factory=threading.Lock)


class JWKSCache:
    """JWK Sets of trusted issuers: fetched from ``jwks_uri`` and kept ``ttl`` seconds;
    refetched early for an unknown kid, at most once per ``refetch_interval`` seconds per
    issuer. Inline sets are parsed once per content. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        ttl: float = JWKS_TTL,
        refetch_interval: float = REFETCH_INTERVAL,
        timeout: float = FETCH_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._ttl = ttl
        self._interval = refetch_interval
        self._timeout = timeout
        self._transport = transport
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._inline: dict[str, tuple[_Key, ...]] = {}
        self._lock = threading.Lock()
        #: successful and failed fetches so far (for tests and metrics)
        self.fetches = 0
        self.failures = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._inline.clear()

    def _inline_keys(self, jwks: Mapping[str, Any]) -> tuple[_Key, ...]:
        text = json.dumps(jwks, sort_keys=True, default=str)
        keys = self._inline.get(text)
        if keys is None:
            try:
                keys = _parse_jwks(jwks)
            except ValueError:
                keys = ()
            with self._lock:
                if len(self._inline) >= 256:
                    self._inline.clear()
                self._inline[text] = keys
        return keys

    def _fetch(self, uri: str) -> tuple[_Key, ...]:
        if not uri.startswith(("https://", "http://")):
            raise ValueError("jwks_uri must be an http(s) URL")
        with (
            httpx.Client(
                timeout=self._timeout, follow_redirects=False, transport=self._transport
            ) as client,
            client.stream(
                "GET", uri, headers={"Accept": "application/jwk-set+json, application/json"}
            ) as resp,
        ):
            if resp.status_code != 200:
                raise ValueError(f"jwks_uri answered {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("the JWK Set is too large")
        return _parse_jwks(_json_object(bytes(body)))

    def keys(self, issuer: TrustedIssuer, kid: str | None) -> tuple[_Key, ...]:
        """The issuer's usable keys, fresh enough for a token naming ``kid`` (None: any).
        Raises TokenInvalid ``jwks_unavailable`` when no usable set can be had."""
        if issuer.jwks is not None:
            return self._inline_keys(issuer.jwks)
        uri = issuer.jwks_uri
        if not uri:
            raise TokenInvalid("jwks_unavailable")
        with self._lock:
            entry = self._entries.setdefault((issuer.issuer, uri), _Entry())
        with entry.lock:
            now = self._clock.now()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < self._ttl
            known = kid is None or any(k.kid == kid for k in entry.keys)
            if fresh and known:
                return entry.keys
            if now - entry.attempted_at >= self._interval:
                entry.attempted_at = now
                try:
                    keys = self._fetch(uri)
                except (httpx.HTTPError, ValueError, UnicodeDecodeError, RecursionError):
                    self.failures += 1
                    # a set we could not refresh is not used once stale (fail closed)
                    if not fresh:
                        entry.keys, entry.fetched_at = (), None
                else:
                    self.fetches += 1
                    entry.keys, entry.fetched_at = keys, now
                    return keys
            if entry.fetched_at is None or now - entry.fetched_at >= self._ttl:
                raise TokenInvalid("jwks_unavailable")
            return entry.keys  # fresh, without the kid: the caller says unknown_kid


_default_cache = JWKSCache()


def default_jwks_cache() -> JWKSCache:
    """The process-wide cache :func:`verify_external_token` uses unless given one."""
    return _default_cache


# ----------------------------------------------------------------------------- verify


def _signature_ok(key: _Key, alg: str, jws: _JWS) -> bool:
    k = key.key
    try:
        if alg == "EdDSA" and isinstance(k, ed25519.Ed25519PublicKey):
            k.verify(jws.signature, jws.signing_input)
        elif alg == "ES256" and isinstance(k, ec.EllipticCurvePublicKey):
            if len(jws.signature) != 64:
                return False
            r = int.from_bytes(jws.signature[:32], "big")
            s = int.from_bytes(jws.signature[32:], "big")
            k.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256" and isinstance(k, rsa.RSAPublicKey):
            k.verify(jws.signature, jws.signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(k, rsa.RSAPublicKey):
            k.verify(
                jws.signature,
                jws.signing_input,
                padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size),
                hashes.SHA256(),
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    v = claims.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TokenInvalid(f"invalid_{name}")
    return float(v)


def verify_external_token(
    token: str,
    issuer: TrustedIssuer,
    *,
    now: float,
    cache: JWKSCache | None = None,
) -> ExternalToken:
    """Verify ``token`` as a JWT of the trusted ``issuer`` at time ``now`` (the module
    docstring lists every check). Returns the :class:`ExternalToken`; raises
    :class:`TokenInvalid` otherwise."""
    jws = _parse(token)
    h = jws.header
    alg = h.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS or alg not in issuer.algorithms:
        raise TokenInvalid("alg_not_allowed")  # none, HS*, unconfigured: before any crypto
    if "crit" in h:
        raise TokenInvalid("crit_unsupported")
    kid = h.get("kid")
    if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
        raise TokenInvalid("malformed")
    c = jws.claims
    if c.get("iss") != issuer.issuer:
        raise TokenInvalid("wrong_issuer")

    keys = (cache or _default_cache).keys(issuer, kid)
    fitting = [k for k in keys if k.fits(alg)]
    if kid is not None:
        candidates = [k for k in fitting if k.kid == kid]
        if not candidates:
            raise TokenInvalid("unknown_kid")
    else:
        if len(fitting) != 1:
            raise TokenInvalid("kid_missing")
        candidates = fitting
    if not any(_signature_ok(k, alg, jws) for k in candidates[:4]):
        raise TokenInvalid("bad_signature")

    exp = _time(c, "exp")
    if exp is None:
        raise TokenInvalid("missing_exp")
    if exp <= now - LEEWAY:
        raise TokenInvalid("expired")
    nbf = _time(c, "nbf")
    if nbf is not None and nbf > now + LEEWAY:
        raise TokenInvalid("not_yet_valid")
    iat = _time(c, "iat")
    if iat is not None and iat > now + LEEWAY:
        raise TokenInvalid("iat_in_future")
    # always: a token the issuer minted for another application is not for Keyplane
    # (token confusion); an issuer without an audience (only a stale stored one) accepts none
    aud = c.get("aud")
    auds = [aud] if isinstance(aud, str) else aud
    if not issuer.audience or not isinstance(auds, list) or issuer.audience not in auds:
        raise TokenInvalid("wrong_audience")
    value = c.get(issuer.subject_claim)
    if not isinstance(value, str) or not value:
        raise TokenInvalid("invalid_subject")
    subject = f"{issuer.subject_kind}:{value}"
    if object_error(subject) is not None:
        raise TokenInvalid("invalid_subject")
    jti = c.get("jti")
    return ExternalToken(
        issuer=issuer.issuer,
        subject=subject,
        claims=c,
        alg=alg,
        kid=kid,
        expires_at=exp,
        jti=jti if isinstance(jti, str) else None,
    )

"""Client credentials of non-human identities: the domain rules (no storage, no service).

**Clients.** An OAuth client is a registered non-human identity (``agent``, ``workload``,
``service_account``); its ``client_id`` is the identity's graph node, e.g.
``agent:planner`` — so the client an access token names and the identity decisions see
are one and the same, with no mapping table to drift. A client may hold several
credentials (a new key registered before the old one is revoked); each has an id (a
ULID) of its own.

**Types.**

* ``client_secret``: 32 random bytes, written ``kpcs_<credential id>_<52 base32
  characters>`` (256 bits; the prefix makes leaked ones easy to spot and the id lets the
  server find the credential without scanning). Only
  ``SHA-256("keyplane/client-secret/v1" NUL id NUL secret)`` is stored — the approach of
  API keys (:mod:`keyplane.service.keys`): the secret is high-entropy, so a slow hash
  would add latency and no safety; the id is bound into the hash. Compared with
  :func:`hmac.compare_digest`. The secret is returned once, by create and rotate.
* ``private_key_jwt`` (RFC 7523 §2.2): a registered PUBLIC JWK — ``OKP``/``Ed25519``
  (``EdDSA``), ``EC``/``P-256`` (``ES256``) or ``RSA`` ≥ 2048 bits (``RS256``, or ``PS256``
  when the JWK says so). A JWK carrying private members (``d``, ``p``, ``q``, ...) is
  refused. The client authenticates with a JWS it signs: :func:`verify_assertion`.

**Assertions** (:func:`verify_assertion`): compact JWS whose header ``alg`` equals the
registered key's algorithm (``none``, ``HS*`` and anything else refused before any
cryptography), signature valid, ``iss`` = ``sub`` = client_id, ``aud`` = the token
endpoint URL (a string or a list containing it), ``exp`` required, in the future and at
most :data:`MAX_ASSERTION_SECONDS` (3600 s) away — the lifetime common clients sign by
default (authlib's ``PrivateKeyJWT``, among others), so they work unchanged; shorter is
better (RFC 7523 §3) — ``nbf``/``iat`` not in the future (with :data:`LEEWAY` seconds of
clock skew), ``jti`` required (single use: the caller records it until ``exp`` +
:data:`LEEWAY`, so an assertion cannot be replayed for as long as it is accepted).

Every refusal raises :class:`ClientAuthError` carrying the OAuth error ``invalid_client``
and an internal ``reason`` code (for the ledger); its message never contains a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keyplane.tokens.keys import jwk_thumbprint

__all__ = [
    "CREDENTIAL_STATUSES",
    "CREDENTIAL_TYPES",
    "DEFAULT_MAX_CREDENTIAL_SECONDS",
    "MAX_ASSERTION_SECONDS",
    "ClientAuthError",
    "Credential",
    "CredentialRecord",
    "check_public_jwk",
    "hash_secret",
    "new_secret",
    "secret_matches",
    "split_secret",
    "verify_assertion",
]

CREDENTIAL_TYPES: Final = ("client_secret", "private_key_jwt")
CREDENTIAL_STATUSES: Final = ("active", "revoked")
#: the store-policy default for ``max_credential_seconds`` (90 days)
DEFAULT_MAX_CREDENTIAL_SECONDS: Final = 90 * 86400
#: the longest ``exp - now`` a client assertion may have: one hour, what authlib's
#: ``PrivateKeyJWT`` and other common clients sign by default (RFC 7523 §3 wants it short;
#: single use holds either way — its ``jti`` is kept until ``exp`` + :data:`LEEWAY`)
MAX_ASSERTION_SECONDS: Final = 3600
#: clock skew tolerated on ``exp``, ``nbf`` and ``iat``
LEEWAY: Final = 30
MAX_ASSERTION_BYTES: Final = 8192

_SECRET_BYTES = 32
_HASH_DOMAIN = b"keyplane/client-secret/v1\x00"
SECRET_PREFIX: Final = "kpcs_"
_SECRET_RE = re.compile(r"kpcs_([0-7][0-9A-HJKMNP-TV-Z]{25})_([a-z2-7]{52})")

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: signature algorithms a registered key may use (by key type)
ALGORITHMS: Final = ("EdDSA", "ES256", "RS256", "PS256")


class ClientAuthError(Exception):
    """A client failed to authenticate. ``error`` is the OAuth error code
    (``invalid_client``, RFC 6749 §5.2); ``reason`` the internal cause recorded in the
    ledger (``unknown_client``, ``invalid_secret``, ``bad_signature``, ``replayed_jti``,
    ...); ``description`` is safe to return to the client."""

    error = "invalid_client"

    def __init__(self, reason: str, description: str = "client authentication failed") -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


@dataclass(frozen=True, slots=True)
class Credential:
    """A client credential as every surface shows it: never a secret nor its hash."""

    store_id: str
    id: str  # ULID
    client_id: str  # the identity node, e.g. "agent:planner"
    type: str  # CREDENTIAL_TYPES
    status: str  # "active" | "revoked"
    expires_at: float
    created_by: str  # caller principal
    created_at: float
    last_used_at: float | None = None
    rotated_at: float | None = None
    previous_expires_at: float | None = None  # the rotated-out secret works until then
    revoked_at: float | None = None
    revoked_reason: str | None = None
    public_jwk: dict[str, Any] | None = None  # private_key_jwt only
    alg: str | None = None
    thumbprint: str | None = None  # RFC 7638, private_key_jwt only
    revision: int = 0

    @property
    def identity(self) -> str:
        return self.client_id

    def usable(self, now: float) -> bool:
        return self.status == "active" and now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "id": self.id,
            "client_id": self.client_id,
            "identity": self.client_id,
            "type": self.type,
            "status": self.status,
            "expires_at": self.expires_at,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "rotated_at": self.rotated_at,
            "previous_expires_at": self.previous_expires_at,
            "revoked_at": self.revoked_at,
            "revoked_reason": self.revoked_reason,
            "public_jwk": None if self.public_jwk is None else dict(self.public_jwk),
            "alg": self.alg,
            "thumbprint": self.thumbprint,
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Credential:
        def t(v: Any) -> float | None:
            return None if v is None else float(v)

        return cls(
            store_id=str(d["store_id"]),
            id=str(d["id"]),
            client_id=str(d["client_id"]),
            type=str(d["type"]),
            status=str(d["status"]),
            expires_at=float(d["expires_at"]),
            created_by=str(d["created_by"]),
            created_at=float(d["created_at"]),
            last_used_at=t(d.get("last_used_at")),
            rotated_at=t(d.get("rotated_at")),
            previous_expires_at=t(d.get("previous_expires_at")),
            revoked_at=t(d.get("revoked_at")),
            revoked_reason=d.get("revoked_reason"),
            public_jwk=None if d.get("public_jwk") is None else dict(d["public_jwk"]),
            alg=d.get("alg"),
            thumbprint=d.get("thumbprint"),
            revision=int(d.get("revision", 0)),
        )


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A credential as storage holds it: the public part plus the secret hashes."""

    credential: Credential
    secret_hash: str | None = None
    previous_secret_hash: str | None = field(default=None)


# ------------------------------------------------------------------------------ secrets


def hash_secret(credential_id: str, secret: str) -> str:
    return hashlib.sha256(
        _HASH_DOMAIN + credential_id.encode() + b"\x00" + secret.encode()
    ).hexdigest()


def new_secret(credential_id: str) -> tuple[str, str]:
    """A new secret for ``credential_id``: (the full secret shown once, its hash)."""
    raw = base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=").lower()
    full = f"{SECRET_PREFIX}{credential_id}_{raw}"
    return full, hash_secret(credential_id, full)


def split_secret(secret: Any) -> str | None:
    """The credential id a well-formed secret names, or None."""
    if not isinstance(secret, str):
        return None
    m = _SECRET_RE.fullmatch(secret)
    return m.group(1) if m else None


def secret_matches(rec: CredentialRecord, secret: str, now: float) -> bool:
    """Whether ``secret`` is the credential's current secret, or its previous one inside
    the rotation overlap. Both hashes are compared (constant time) whatever the outcome."""
    digest = hash_secret(rec.credential.id, secret)
    current = rec.secret_hash is not None and hmac.compare_digest(digest, rec.secret_hash)
    prev = rec.previous_secret_hash is not None and hmac.compare_digest(
        digest, rec.previous_secret_hash
    )
    deadline = rec.credential.previous_expires_at
    return current or (prev and deadline is not None and now < deadline)


# ------------------------------------------------------------------------------ JWKs


def _b64d(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError(f"{what} must be base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _load(jwk: Mapping[str, Any]) -> PublicKey:
    kty = jwk.get("kty")
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise ValueError("an OKP key must have crv Ed25519")
        x = _b64d(jwk.get("x"), "x")
        if len(x) != 32:
            raise ValueError("an Ed25519 key's x must be 32 bytes")
        return ed25519.Ed25519PublicKey.from_public_bytes(x)
    if kty == "EC":
        if jwk.get("crv") != "P-256":
            raise ValueError("an EC key must have crv P-256")
        x, y = _b64d(jwk.get("x"), "x"), _b64d(jwk.get("y"), "y")
        if len(x) != 32 or len(y) != 32:
            raise ValueError("a P-256 key's x and y must be 32 bytes each")
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()  # raises ValueError for a point not on the curve
    if kty == "RSA":
        n, e = _b64d(jwk.get("n"), "n"), _b64d(jwk.get("e"), "e")
        num = int.from_bytes(n, "big")
        if num.bit_length() < 2048:
            raise ValueError("an RSA key must have at least 2048 bits")
        if num.bit_length() > 8192:
            raise ValueError("an RSA key may have at most 8192 bits")
        return rsa.RSAPublicNumbers(int.from_bytes(e, "big"), num).public_key()
    raise ValueError("kty must be OKP (Ed25519), EC (P-256) or RSA")


def check_public_jwk(value: Any) -> tuple[dict[str, Any], str, str]:
    """Validate a public JWK to register: returns (the JWK as stored, its algorithm, its
    RFC 7638 thumbprint). Raises ValueError with a message naming the problem."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError("public_jwk must be a JSON object (a JWK)")
    private = sorted(_PRIVATE_MEMBERS & set(value))
    if private:
        raise ValueError(
            f"public_jwk holds private key material ({', '.join(private)}): register the "
            "PUBLIC key only, and keep the private key with the client"
        )
    if len(json.dumps(dict(value), default=str)) > 4096:
        raise ValueError("public_jwk is too large")
    key = _load(value)
    kty = value["kty"]
    default = {"OKP": "EdDSA", "EC": "ES256", "RSA": "RS256"}[kty]
    alg = value.get("alg", default)
    allowed = {"OKP": ("EdDSA",), "EC": ("ES256",), "RSA": ("RS256", "PS256")}[kty]
    if alg not in allowed:
        raise ValueError(f"alg {alg!r} does not fit a {kty} key: one of {', '.join(allowed)}")
    if value.get("use") not in (None, "sig"):
        raise ValueError("public_jwk 'use' must be 'sig'")
    del key
    stored: dict[str, Any] = {
        k: value[k] for k in ("kty", "crv", "x", "y", "n", "e", "kid") if k in value
    }
    stored["alg"] = alg
    if "kid" in stored and (not isinstance(stored["kid"], str) or len(stored["kid"]) > 256):
        raise ValueError("kid must be a string of at most 256 characters")
    return stored, alg, jwk_thumbprint(stored)


# ------------------------------------------------------------------------------ assertions


@dataclass(frozen=True, slots=True)
class Assertion:
    """A parsed compact JWS (not yet verified)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_assertion(token: Any) -> Assertion:
    if not isinstance(token, str) or len(token) > MAX_ASSERTION_BYTES:
        raise ClientAuthError("malformed_assertion", "malformed client assertion")
    parts = token.split(".")
    if len(parts) != 3:
        raise ClientAuthError("malformed_assertion", "malformed client assertion")
    try:
        header = json.loads(_b64d(parts[0], "header"))
        claims = json.loads(_b64d(parts[1], "payload"))
        signature = _b64d(parts[2], "signature")
    except (ValueError, UnicodeDecodeError):
        raise ClientAuthError("malformed_assertion", "malformed client assertion") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ClientAuthError("malformed_assertion", "malformed client assertion")
    return Assertion(header, claims, f"{parts[0]}.{parts[1]}".encode(), signature)


def _verify_signature(jwk: Mapping[str, Any], alg: str, a: Assertion) -> bool:
    key = _load(jwk)
    try:
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(a.signature, a.signing_input)
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(a.signature) != 64:
                return False
            r = int.from_bytes(a.signature[:32], "big")
            s = int.from_bytes(a.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), a.signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(a.signature, a.signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                a.signature,
                a.signing_input,
                padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size),
                hashes.SHA256(),
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    v = claims.get(name)
    if v is None:
        if required:
            raise ClientAuthError(f"missing_{name}", f"the client assertion has no '{name}'")
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ClientAuthError(f"invalid_{name}", f"the client assertion's '{name}' is invalid")
    return float(v)


def check_assertion_header(a: Assertion, registered_algs: set[str]) -> str:
    """The header's ``alg`` — refused unless it is one of the client's registered keys'."""
    alg = a.header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS or alg not in registered_algs:
        # "none", HS256 (an HMAC keyed with the public key), and any unregistered alg
        raise ClientAuthError(
            "alg_not_allowed", "the client assertion's alg is not the registered key's"
        )
    if a.header.get("crit") is not None:
        raise ClientAuthError("malformed_assertion", "unsupported 'crit' header")
    return alg


def verify_assertion(
    a: Assertion,
    candidates: list[Credential],
    *,
    client_id: str,
    audience: str,
    now: float,
) -> tuple[Credential, str, float]:
    """Verify a parsed assertion against the client's usable ``private_key_jwt``
    credentials: returns (the credential whose key verified it, the jti, exp). Raises
    :class:`ClientAuthError`. Replay (the jti) is the caller's to record."""
    usable = [c for c in candidates if c.public_jwk is not None and c.alg is not None]
    if not usable:
        raise ClientAuthError("no_usable_key", "the client has no usable registered key")
    alg = check_assertion_header(a, {c.alg for c in usable if c.alg})
    kid = a.header.get("kid")
    keys = [c for c in usable if c.alg == alg]
    if isinstance(kid, str):
        named = [c for c in keys if (c.public_jwk or {}).get("kid") == kid or c.thumbprint == kid]
        keys = named or keys
    match = next((c for c in keys if _verify_signature(c.public_jwk or {}, alg, a)), None)
    if match is None:
        raise ClientAuthError("bad_signature", "the client assertion's signature is invalid")
    c = a.claims
    if c.get("iss") != client_id or c.get("sub") != client_id:
        raise ClientAuthError(
            "wrong_issuer", "the client assertion's iss and sub must be the client_id"
        )
    aud = c.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if audience not in auds:
        raise ClientAuthError(
            "wrong_audience", "the client assertion's aud must be the token endpoint URL"
        )
    exp = _number(c, "exp", required=True)
    assert exp is not None
    if exp <= now - LEEWAY:
        raise ClientAuthError("expired_assertion", "the client assertion has expired")
    if exp > now + MAX_ASSERTION_SECONDS + LEEWAY:
        raise ClientAuthError(
            "assertion_too_long",
            f"the client assertion's exp is more than {MAX_ASSERTION_SECONDS} s away",
        )
    nbf = _number(c, "nbf", required=False)
    if nbf is not None and nbf > now + LEEWAY:
        raise ClientAuthError("assertion_not_yet_valid", "the client assertion is not yet valid")
    iat = _number(c, "iat", required=False)
    if iat is not None and iat > now + LEEWAY:
        raise ClientAuthError(
            "assertion_not_yet_valid", "the client assertion's iat is in the future"
        )
    jti = c.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
        raise ClientAuthError(
            "missing_jti", "the client assertion needs a jti (at most 256 characters)"
        )
    return match, jti, exp

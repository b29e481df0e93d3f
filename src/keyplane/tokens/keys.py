"""Per-store token signing keys: generation, JWK form, RFC 7638 key ids, sealing under the
master key, and JWS signing (RFC 7515 compact serialization).

* Algorithms: ``EdDSA`` (Ed25519, RFC 8037 — the default) and ``ES256`` (ECDSA P-256 with
  SHA-256, RFC 7518 §3.4: the signature is ``R || S``, 32 bytes each, not DER).
* ``kid`` is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key: anyone
  holding the public JWK recomputes it.
* The private key (PKCS#8 DER) is encrypted with the master key (AES-256-GCM,
  :class:`keyplane.secrets.MasterKey`) and associated data binding it to its store and
  kid, as the ledger's keys are (:mod:`keyplane.ledger.checkpoints`): a ciphertext moved
  to another row does not decrypt.
* States: ``active`` (signs; one per store), ``retiring`` (signs no more, still published
  until ``publish_until`` = the time it stopped signing + the overlap, at least the longest
  token lifetime), ``retired`` (``retiring`` past ``publish_until``: no longer published).
  The stored state is ``active`` or ``retiring``; ``retired`` is derived from the clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keyplane.errors import ValidationError
from keyplane.secrets import MasterKey

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "KEY_STATES",
    "GeneratedKey",
    "PrivateKey",
    "SigningKeyRecord",
    "b64url",
    "generate_signing_key",
    "jwk_thumbprint",
    "load_private_key",
    "seal_private_key",
    "sign_jws",
    "unseal_private_key",
]

ALGORITHMS = ("EdDSA", "ES256")
DEFAULT_ALGORITHM = "EdDSA"
KEY_STATES = ("active", "retiring", "retired")

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """A store's signing key as stored. ``public_jwk`` holds only public members (with
    ``kid``, ``alg``, ``use``); ``encrypted_private_key`` never leaves the server."""

    store_id: str
    kid: str
    algorithm: str
    public_jwk: Mapping[str, Any]
    encrypted_private_key: bytes
    state: str  # stored: "active" | "retiring"
    created_at: float
    retiring_at: float | None
    publish_until: float | None
    revision: int

    def state_at(self, now: float) -> str:
        """``active``, ``retiring`` or — a retiring key past ``publish_until`` — ``retired``."""
        if (
            self.state == "retiring"
            and self.publish_until is not None
            and now >= self.publish_until
        ):
            return "retired"
        return self.state

    def published_at(self, now: float) -> bool:
        return self.state_at(now) != "retired"

    def __repr__(self) -> str:  # never print the (encrypted) private key
        return (
            f"SigningKeyRecord(store_id={self.store_id!r}, kid={self.kid!r},"
            f" algorithm={self.algorithm!r}, state={self.state!r})"
        )


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    private_pkcs8: bytes

    def __repr__(self) -> str:
        return f"GeneratedKey(kid={self.kid!r}, algorithm={self.algorithm!r})"


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ValidationError(
            f"unsupported signing algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}",
            details={"algorithm": str(algorithm)[:50]},
        )
    return algorithm


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace; base64url."""
    kty = jwk.get("kty")
    members: tuple[str, ...]
    if kty == "OKP":
        members = ("crv", "kty", "x")
    elif kty == "EC":
        members = ("crv", "kty", "x", "y")
    elif kty == "RSA":  # registered client keys (private_key_jwt) may be RSA
        members = ("e", "kty", "n")
    else:
        raise ValidationError(f"no thumbprint for key type {kty!r}")
    body = _canonical({m: jwk[m] for m in members}).encode("utf-8")
    return b64url(hashlib.sha256(body).digest())


def _public_jwk(private: PrivateKey, algorithm: str) -> dict[str, Any]:
    if isinstance(private, Ed25519PrivateKey):
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    else:
        nums = private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big")),
        }
    kid = jwk_thumbprint(jwk)
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


def generate_signing_key(algorithm: str = DEFAULT_ALGORITHM) -> GeneratedKey:
    check_algorithm(algorithm)
    private: PrivateKey = (
        Ed25519PrivateKey.generate()
        if algorithm == "EdDSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    jwk = _public_jwk(private, algorithm)
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return GeneratedKey(str(jwk["kid"]), algorithm, jwk, pkcs8)


def _aad(store_id: str, kid: str) -> bytes:
    return f"keyplane-signing-key/v1\n{store_id}\n{kid}".encode()


def seal_private_key(master: MasterKey, store_id: str, kid: str, pkcs8: bytes) -> bytes:
    return master.encrypt(pkcs8, aad=_aad(store_id, kid))


def unseal_private_key(master: MasterKey, record: SigningKeyRecord) -> PrivateKey:
    """The record's private key; ValidationError if it does not decrypt (wrong master key,
    altered row, or a row moved to another store or kid)."""
    pkcs8 = master.decrypt(record.encrypted_private_key, aad=_aad(record.store_id, record.kid))
    return load_private_key(pkcs8, record.algorithm)


def load_private_key(pkcs8: bytes, algorithm: str) -> PrivateKey:
    key = serialization.load_der_private_key(pkcs8, password=None)
    if algorithm == "EdDSA" and isinstance(key, Ed25519PrivateKey):
        return key
    if (
        algorithm == "ES256"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise ValidationError(f"the stored key does not match its algorithm {algorithm}")


def sign_jws(
    private: PrivateKey,
    algorithm: str,
    kid: str,
    claims: Mapping[str, Any],
    *,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS (a JWT): ``{"alg", "kid", **header}`` . claims . signature.
    ``alg`` and ``kid`` always come from the key, whatever ``header`` says."""
    head = {**(header or {}), "alg": algorithm, "kid": kid}
    signing_input = (
        b64url(_canonical(head).encode("utf-8")) + "." + b64url(_canonical(dict(claims)).encode())
    ).encode("ascii")
    if algorithm == "EdDSA" and isinstance(private, Ed25519PrivateKey):
        sig = private.sign(signing_input)
    elif algorithm == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raise ValidationError(f"the key cannot sign {algorithm}")
    return signing_input.decode("ascii") + "." + b64url(sig)

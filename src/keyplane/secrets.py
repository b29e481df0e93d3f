"""The master key: what encrypts the secrets Keyplane keeps at rest (ledger signing keys).

Where it comes from, first match wins:

1. ``KEYPLANE_MASTER_KEY`` — 32 random bytes, base64url (``keyplane`` prints one with
   ``python -c "import keyplane.secrets as s; print(s.generate_master_key())"``);
2. the key file ``KEYPLANE_MASTER_KEY_FILE`` — by default ``keyplane.key`` beside the SQLite
   database (``keyplane.db`` → ``keyplane.key``), or in the working directory for
   PostgreSQL. It is created on first use, with mode ``0600``, and refused when other users
   may read it (as ``ssh`` refuses a readable private key).

Secrets are encrypted with AES-256-GCM (NIST SP 800-38D): a fresh 96-bit nonce per
message and associated data binding each ciphertext to what it belongs to (a ledger key's
store and id), so a ciphertext moved to another row does not decrypt. Other keys (the
ledger's HMAC key) are derived from the master key with HKDF-SHA256 (RFC 5869) under a
label. Nothing here ever logs or prints a key: ``repr`` hides it.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyplane.errors import ValidationError

__all__ = [
    "KEY_FILE_NAME",
    "MasterKey",
    "default_key_file",
    "generate_master_key",
    "load_master_key",
]

KEY_FILE_NAME = "keyplane.key"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_FORMAT = b"kp1"  # version tag of the ciphertext layout: tag | nonce | AES-GCM output


def generate_master_key() -> str:
    """A new random master key, base64url without padding (for ``KEYPLANE_MASTER_KEY``)."""
    return _b64(os.urandom(_KEY_BYTES))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"{what} is not base64url") from exc
    if len(raw) != _KEY_BYTES:
        raise ValidationError(f"{what} must hold {_KEY_BYTES} bytes, it holds {len(raw)}")
    return raw


class MasterKey:
    """A 256-bit key: encrypts and decrypts secrets at rest, derives sub-keys."""

    __slots__ = ("_aead", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != _KEY_BYTES:
            raise ValidationError(f"a master key holds {_KEY_BYTES} bytes")
        self._raw = bytes(raw)
        self._aead = AESGCM(self._raw)

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        """The plaintext, or ValidationError when the blob was altered, belongs to other
        associated data, or was encrypted under another master key."""
        blob = bytes(blob)
        if not blob.startswith(_FORMAT) or len(blob) < len(_FORMAT) + _NONCE_BYTES + 16:
            raise ValidationError("not a Keyplane encrypted secret")
        nonce = blob[len(_FORMAT) : len(_FORMAT) + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(_FORMAT) + _NONCE_BYTES :], aad)
        except InvalidTag as exc:
            raise ValidationError(
                "cannot decrypt a secret: wrong master key, or the data was altered"
            ) from exc

    def derive(self, label: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256, ``info`` = label)."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode("utf-8")
        ).derive(self._raw)


def default_key_file(database_url: str | None) -> Path:
    """``keyplane.key`` beside a SQLite database, else in the working directory."""
    url = database_url or ""
    if url.startswith(("postgresql://", "postgres://")):
        return Path(KEY_FILE_NAME)
    path = url
    if path.startswith("sqlite:"):
        rest = path[len("sqlite:") :]
        path = rest[3:] if rest.startswith("///") else ""
    if not path:
        return Path(KEY_FILE_NAME)
    return Path(path).parent / KEY_FILE_NAME


def load_master_key(*, key: str | None = None, key_file: str | Path | None = None) -> MasterKey:
    """The master key from ``key`` (base64url) if given, else from ``key_file`` — created
    (mode 0600, never overwritten) when it does not exist."""
    if key:
        return MasterKey(_unb64(key, "KEYPLANE_MASTER_KEY"))
    path = Path(key_file or KEY_FILE_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return MasterKey(_read_key_file(path))
    except OSError as exc:
        raise ValidationError(f"cannot create the master key file {path}: {exc}") from exc
    raw = os.urandom(_KEY_BYTES)
    try:
        os.write(fd, (_b64(raw) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return MasterKey(raw)


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValidationError(
                f"the master key file {path} is accessible by other users"
                f" (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
            )
        text = path.read_text(encoding="ascii")
        for _ in range(50):
            if text.strip():
                break
            # another process created it a moment ago and has not written it yet
            time.sleep(0.02)
            text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise ValidationError(f"cannot read the master key file {path}: {exc}") from exc
    return _unb64(text, f"the master key file {path}")

"""Opaque continuation tokens for keyset pagination.

A token is URL-safe base64 of a small JSON document holding the sort key of the last
item returned and a fingerprint of the query (kind, store and filters), so a token cannot
be replayed against another store or other filters. Anything that does not decode to
exactly that shape raises :class:`~keyplane.errors.InvalidContinuationToken`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence

from keyplane.errors import InvalidContinuationToken, ValidationError

__all__ = ["check_page_size", "decode_token", "encode_token"]

MAX_PAGE_SIZE = 100_000


def _fingerprint(query: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps(list(query)).encode()).hexdigest()[:16]


def encode_token(query: Sequence[object], key: Sequence[object]) -> str:
    doc = {"q": _fingerprint(query), "k": list(key)}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, query: Sequence[object], arity: int) -> list[object]:
    """The key stored in ``token``; it must have been made for ``query`` and hold ``arity`` values."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidContinuationToken("invalid continuation token") from None
    if (
        not isinstance(doc, dict)
        or doc.get("q") != _fingerprint(query)
        or not isinstance(doc.get("k"), list)
        or len(doc["k"]) != arity
        or not all(isinstance(v, str | int) for v in doc["k"])
    ):
        raise InvalidContinuationToken("invalid continuation token")
    return list(doc["k"])


def check_page_size(page_size: int) -> None:
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", details={"page_size": page_size}
        )

"""Wire form of the signing-key operations (``/v1/stores/{store}/signing-keys``)."""

from __future__ import annotations

from typing import Any

from keyplane.sdk.wire import Call, seg
from keyplane.service.signing_keys import SigningKeyInfo

__all__ = ["list_signing_keys", "rotate_signing_key", "signing_key"]


def signing_key(store: str, d: Any) -> SigningKeyInfo:
    return SigningKeyInfo(
        store_id=store,
        kid=str(d["kid"]),
        algorithm=str(d["algorithm"]),
        state=str(d["state"]),
        public_jwk=dict(d["public_jwk"]),
        created_at=float(d["created_at"]),
        retiring_at=None if d.get("retiring_at") is None else float(d["retiring_at"]),
        publish_until=None if d.get("publish_until") is None else float(d["publish_until"]),
        revision=int(d["revision"]),
    )


def _path(store: str) -> str:
    return f"/v1/stores/{seg(store)}/signing-keys"


def list_signing_keys(store: str) -> Call[list[SigningKeyInfo]]:
    return Call(
        "GET",
        _path(store),
        lambda d: [signing_key(store, k) for k in d["keys"]],
        idempotent=True,
    )


def rotate_signing_key(
    store: str, algorithm: str, overlap_seconds: int | None
) -> Call[SigningKeyInfo]:
    body: dict[str, Any] = {"algorithm": algorithm}
    if overlap_seconds is not None:
        body["overlap_seconds"] = overlap_seconds
    return Call("POST", _path(store) + ":rotate", lambda d: signing_key(store, d), body=body)

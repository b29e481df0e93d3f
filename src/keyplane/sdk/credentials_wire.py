"""Wire form of the credential operations (``/v1/stores/{store}/credentials``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyplane.sdk.wire import Call, seg
from keyplane.storage.base import Page
from keyplane.tokens.clients import Credential

__all__ = [
    "create_credential",
    "get_credential",
    "list_credentials",
    "revoke_credential",
    "rotate_credential",
]


def credential(store: str, d: Mapping[str, Any]) -> Credential:
    return Credential.from_dict({**d, "store_id": store})


def _with_secret(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> tuple[Credential, str | None]:
        return credential(store, d["credential"]), d.get("secret")

    return decode


def _path(store: str, rest: str = "") -> str:
    return f"/v1/stores/{seg(store)}/credentials{rest}"


def create_credential(
    store: str,
    identity: str,
    type: str,
    public_jwk: Mapping[str, Any] | None,
    expires_at: float | None,
) -> Call[tuple[Credential, str | None]]:
    body: dict[str, Any] = {"identity": identity, "type": type}
    if public_jwk is not None:
        body["public_jwk"] = dict(public_jwk)
    if expires_at is not None:
        body["expires_at"] = expires_at
    return Call("POST", _path(store), _with_secret(store), body=body)


def list_credentials(
    store: str, identity: str | None, status: str | None, page_size: int, token: str | None
) -> Call[Page[Credential]]:
    params: dict[str, Any] = {"page_size": page_size}
    for k, v in (("identity", identity), ("status", status), ("continuation_token", token)):
        if v is not None:
            params[k] = v

    def decode(d: Mapping[str, Any]) -> Page[Credential]:
        items = [credential(store, x) for x in d.get("credentials") or []]
        return Page(items, d.get("continuation_token") or None)

    return Call("GET", _path(store), decode, params=params, idempotent=True)


def get_credential(store: str, credential_id: str) -> Call[Credential]:
    return Call(
        "GET",
        _path(store, f"/{seg(credential_id)}"),
        lambda d: credential(store, d),
        idempotent=True,
    )


def rotate_credential(
    store: str, credential_id: str, overlap_seconds: float
) -> Call[tuple[Credential, str | None]]:
    return Call(
        "POST",
        _path(store, f"/{seg(credential_id)}:rotate"),
        _with_secret(store),
        body={"overlap_seconds": overlap_seconds},
    )


def revoke_credential(store: str, credential_id: str, reason: str | None) -> Call[Credential]:
    return Call(
        "POST",
        _path(store, f"/{seg(credential_id)}:revoke"),
        lambda d: credential(store, d),
        body={"reason": reason},
    )

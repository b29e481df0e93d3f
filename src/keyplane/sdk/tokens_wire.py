"""Wire form of the control-plane token operations (``/v1/stores/{store}/tokens:…``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyplane.sdk.wire import Call, seg
from keyplane.service.token_admin import TokenRevocation

__all__ = ["introspect_token", "revoke_token"]


def _path(store: str, op: str) -> str:
    return f"/v1/stores/{seg(store)}/tokens:{op}"


def introspect_token(store: str, token: str) -> Call[dict[str, Any]]:
    # a read: nothing changes, so it may be retried like one
    return Call(
        "POST", _path(store, "introspect"), lambda d: dict(d), body={"token": token},
        idempotent=True,
    )  # fmt: skip


def _revocation(d: Mapping[str, Any]) -> TokenRevocation:
    revision = d.get("revision")
    return TokenRevocation(
        revoked=bool(d["revoked"]),
        jti=d.get("jti"),
        revision=None if revision is None else int(revision),
    )


def revoke_token(
    store: str,
    token: str | None,
    jti: str | None,
    expires_at: float | None,
    reason: str | None,
) -> Call[TokenRevocation]:
    body: dict[str, Any] = {}
    for k, v in (("token", token), ("jti", jti), ("expires_at", expires_at), ("reason", reason)):
        if v is not None:
            body[k] = v
    return Call("POST", _path(store, "revoke"), _revocation, body=body)

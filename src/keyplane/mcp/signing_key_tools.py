"""MCP tools of the token signing keys (issue 6): listing them (public parts only).
Rotating is not a tool: see :data:`SIGNING_KEY_NOT_EXPOSED`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from keyplane.api.v1.signing_keys import SigningKeyList, SigningKeyOut
from keyplane.service import signing_keys
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["SIGNING_KEY_NOT_EXPOSED", "SIGNING_KEY_SERVICE_OF_TOOL", "SIGNING_KEY_SPECS"]


class ListSigningKeysArgs(BaseModel):
    """The store's token signing keys."""

    model_config = ConfigDict(extra="forbid")


def _list_signing_keys(
    svc: Services, caller: Caller, store: str, a: ListSigningKeysArgs
) -> tuple[BaseModel, str]:
    keys = signing_keys.list_signing_keys(svc, caller, store)
    lines = [f"{k.kid} {k.algorithm} {k.state}" for k in keys]
    text = f"{len(keys)} signing keys" + (":\n" + "\n".join(lines) if lines else "")
    return SigningKeyList(keys=[SigningKeyOut.of(k) for k in keys]), text


SIGNING_KEY_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "list_signing_keys",
        "List signing keys",
        "List the store's token signing keys (kid, algorithm, state: active, retiring or "
        "retired, public JWK). Use it to check which key signs a store's tokens. "
        "Example: {}.",
        ListSigningKeysArgs,
        SigningKeyList,
        _list_signing_keys,
        False,
        None,
        False,
    ),
]

SIGNING_KEY_SERVICE_OF_TOOL: dict[str, Any] = {
    "list_signing_keys": signing_keys.list_signing_keys,
}

SIGNING_KEY_NOT_EXPOSED: dict[str, str] = {
    "signing_keys.rotate_signing_key": (
        "rotating the key every token of a store is signed with is an operator's act "
        "(REST, CLI, SDK), never an agent's: it would let a token holder churn its own "
        "issuer's keys"
    ),
}

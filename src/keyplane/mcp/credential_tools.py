"""MCP tools of client credentials (issue 6): listing and reading them — never a secret.
Creating, rotating and revoking are not tools: see :data:`CREDENTIAL_NOT_EXPOSED`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from keyplane.api.v1.credentials import CredentialList, CredentialOut
from keyplane.service import credentials
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["CREDENTIAL_NOT_EXPOSED", "CREDENTIAL_SERVICE_OF_TOOL", "CREDENTIAL_SPECS"]


class ListCredentialsArgs(BaseModel):
    """The store's client credentials, optionally of one identity or status."""

    model_config = ConfigDict(extra="forbid")

    identity: str | None = Field(default=None, max_length=300, description="e.g. agent:bot")
    status: Literal["active", "revoked"] | None = None
    page_size: int = Field(default=50, ge=1, le=1000)
    continuation_token: str | None = None


class GetCredentialArgs(BaseModel):
    """One client credential by id."""

    model_config = ConfigDict(extra="forbid")

    credential_id: str = Field(min_length=1, max_length=64)


def _list_credentials(
    svc: Services, caller: Caller, store: str, a: ListCredentialsArgs
) -> tuple[BaseModel, str]:
    page = credentials.list_credentials(
        svc, caller, store, identity=a.identity, status=a.status, page_size=a.page_size,
        continuation_token=a.continuation_token,
    )  # fmt: skip
    lines = [f"{c.id} {c.client_id} {c.type} {c.status}" for c in page.items]
    text = f"{len(lines)} credentials" + (":\n" + "\n".join(lines) if lines else "")
    out = CredentialList(
        credentials=[CredentialOut.of(c) for c in page.items],
        continuation_token=page.continuation_token,
    )
    return out, text


def _get_credential(
    svc: Services, caller: Caller, store: str, a: GetCredentialArgs
) -> tuple[BaseModel, str]:
    c = credentials.get_credential(svc, caller, store, a.credential_id)
    return CredentialOut.of(c), f"{c.id}: {c.type} of {c.client_id}, {c.status}"


CREDENTIAL_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "list_credentials",
        "List client credentials",
        "List the store's OAuth client credentials of agents, workloads and service accounts "
        "(id, client_id, type, status, expiry, last use) — never a secret. "
        'Example: {"identity": "agent:bot", "status": "active"}.',
        ListCredentialsArgs,
        CredentialList,
        _list_credentials,
        False,
        None,
        False,
    ),
    (
        "get_credential",
        "Get a client credential",
        "Read one client credential by id (never its secret). "
        'Example: {"credential_id": "01J..."}.',
        GetCredentialArgs,
        CredentialOut,
        _get_credential,
        False,
        None,
        False,
    ),
]

CREDENTIAL_SERVICE_OF_TOOL: dict[str, Any] = {
    "list_credentials": credentials.list_credentials,
    "get_credential": credentials.get_credential,
}

_WHY = (
    "an agent must not mint, extend or revoke credentials — its own or another identity's: "
    "credentials are issued by the identity's owners and operators (REST, CLI, SDK)"
)
CREDENTIAL_NOT_EXPOSED: dict[str, str] = {
    "credentials.create_credential": _WHY,
    "credentials.rotate_credential": _WHY,
    "credentials.revoke_credential": _WHY,
}

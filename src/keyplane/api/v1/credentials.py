"""``/v1/stores/{store}/credentials`` — client credentials of non-human identities.

A thin surface over :mod:`keyplane.service.credentials`: create (a client secret is in the
answer ONCE), list, get, ``:rotate`` (client secrets; the old one valid for the overlap)
and ``:revoke``. No answer ever holds a stored secret or its hash. See ``docs/tokens.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import credentials
from keyplane.tokens.clients import Credential

__all__ = ["CredentialOut", "router"]

router = APIRouter(prefix="/stores/{store}/credentials", tags=["credentials"])

CredentialId = Annotated[str, Path(min_length=1, max_length=64, description="The credential id.")]


class CredentialOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The credential id (a ULID).")
    client_id: str = Field(description="The OAuth client id: the identity's node.")
    type: Literal["client_secret", "private_key_jwt"]
    status: Literal["active", "revoked"]
    expires_at: float = Field(description="Seconds since the epoch.")
    created_by: str
    created_at: float
    last_used_at: float | None = None
    rotated_at: float | None = None
    previous_expires_at: float | None = Field(
        default=None, description="Until when the secret before the last rotation works."
    )
    revoked_at: float | None = None
    revoked_reason: str | None = None
    public_jwk: dict[str, Any] | None = Field(
        default=None, description="The registered public key (private_key_jwt)."
    )
    alg: str | None = None
    thumbprint: str | None = Field(default=None, description="RFC 7638 thumbprint of the key.")
    revision: int = Field(description="The store revision of the credential's last change.")

    @classmethod
    def of(cls, c: Credential) -> CredentialOut:
        d = c.to_dict()
        d.pop("store_id")
        d.pop("identity")
        return cls(**d)


class CredentialWithSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: CredentialOut
    secret: str | None = Field(
        description="The client secret — shown now and never again (null for private_key_jwt)."
    )


class CredentialList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: list[CredentialOut]
    continuation_token: str | None = None


class CreateCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: str = Field(max_length=300, description="The non-human identity, e.g. `agent:bot`.")
    type: Literal["client_secret", "private_key_jwt"] = "client_secret"
    public_jwk: dict[str, Any] | None = Field(
        default=None,
        description="The PUBLIC JWK (Ed25519, P-256 or RSA ≥ 2048) for private_key_jwt.",
    )
    expires_at: float | None = Field(
        default=None,
        description="Seconds since the epoch; default and cap: the store policy's"
        " `max_credential_seconds` from now.",
    )


class RotateCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float = Field(
        default=3600, ge=0, le=7 * 86400, description="How long the old secret keeps working."
    )


class RevokeCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1024)


@router.post(
    "",
    operation_id="create_credential",
    status_code=201,
    responses=error_responses(409),
    summary="Create a client credential",
)
def create_credential(
    store: StoreId, body: CreateCredentialRequest, svc: ServicesDep, caller: CallerDep
) -> CredentialWithSecret:
    """A credential for an active non-human identity. A `client_secret` is in this answer
    and never again; a `private_key_jwt` credential registers `public_jwk` (private keys
    are refused)."""
    cred, secret = credentials.create_credential(
        svc, caller, store, body.identity, type=body.type, public_jwk=body.public_jwk,
        expires_at=body.expires_at,
    )  # fmt: skip
    return CredentialWithSecret(credential=CredentialOut.of(cred), secret=secret)


@router.get(
    "", operation_id="list_credentials", responses=error_responses(), summary="List credentials"
)
def list_credentials(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    identity: Annotated[
        str | None, Query(max_length=300, description="Only this identity's credentials.")
    ] = None,
    status: Annotated[
        Literal["active", "revoked"] | None, Query(description="Only this status.")
    ] = None,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> CredentialList:
    """The store's credentials (oldest first), one page at a time. Never a secret."""
    page = credentials.list_credentials(
        svc, caller, store, identity=identity, status=status, page_size=page_size,
        continuation_token=continuation_token,
    )  # fmt: skip
    return CredentialList(
        credentials=[CredentialOut.of(c) for c in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/{credential_id}",
    operation_id="get_credential",
    responses=error_responses(),
    summary="Get a credential",
)
def get_credential(
    store: StoreId, credential_id: CredentialId, svc: ServicesDep, caller: CallerDep
) -> CredentialOut:
    """404 `not_found` when the store has no such credential."""
    return CredentialOut.of(credentials.get_credential(svc, caller, store, credential_id))


@router.post(
    "/{credential_id}:rotate",
    operation_id="rotate_credential",
    responses=error_responses(409),
    summary="Rotate a client secret",
)
def rotate_credential(
    store: StoreId,
    credential_id: CredentialId,
    svc: ServicesDep,
    caller: CallerDep,
    body: RotateCredentialRequest | None = None,
) -> CredentialWithSecret:
    """A new secret (in this answer only); the old one works `overlap_seconds` more."""
    body = body or RotateCredentialRequest()
    cred, secret = credentials.rotate_credential(
        svc, caller, store, credential_id, overlap_seconds=body.overlap_seconds
    )
    return CredentialWithSecret(credential=CredentialOut.of(cred), secret=secret)


@router.post(
    "/{credential_id}:revoke",
    operation_id="revoke_credential",
    responses=error_responses(),
    summary="Revoke a credential",
)
def revoke_credential(
    store: StoreId,
    credential_id: CredentialId,
    svc: ServicesDep,
    caller: CallerDep,
    body: RevokeCredentialRequest | None = None,
) -> CredentialOut:
    """The credential stops authenticating at once."""
    return CredentialOut.of(
        credentials.revoke_credential(
            svc, caller, store, credential_id, reason=None if body is None else body.reason
        )
    )

"""``/v1/stores/{store}/signing-keys`` — the store's token signing keys (public parts only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import signing_keys
from keyplane.service.signing_keys import SigningKeyInfo

__all__ = ["SigningKeyOut", "router"]

router = APIRouter(prefix="/stores/{store}", tags=["signing keys"])


class SigningKeyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kid: str = Field(description="The RFC 7638 JWK thumbprint of the public key.")
    algorithm: Literal["EdDSA", "ES256"]
    state: Literal["active", "retiring", "retired"] = Field(
        description="active: signs; retiring: published until publish_until; retired: gone."
    )
    public_jwk: dict[str, Any] = Field(description="The public JWK, as the JWKS serves it.")
    created_at: float
    retiring_at: float | None = None
    publish_until: float | None = None
    revision: int = Field(description="The store revision of the key's last change.")

    @classmethod
    def of(cls, k: SigningKeyInfo) -> SigningKeyOut:
        return cls(
            kid=k.kid, algorithm=k.algorithm, state=k.state,  # type: ignore[arg-type]
            public_jwk=dict(k.public_jwk), created_at=k.created_at, retiring_at=k.retiring_at,
            publish_until=k.publish_until, revision=k.revision,
        )  # fmt: skip


class SigningKeyList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[SigningKeyOut]


class RotateSigningKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["EdDSA", "ES256"] = "EdDSA"
    overlap_seconds: int | None = Field(
        default=None,
        description="How long the retiring key stays published (default and minimum:"
        " KEYPLANE_TOKEN_MAX_TTL).",
    )


@router.get(
    "/signing-keys",
    operation_id="list_signing_keys",
    responses=error_responses(),
    summary="List the store's signing keys",
)
def list_signing_keys(store: StoreId, svc: ServicesDep, caller: CallerDep) -> SigningKeyList:
    """Every signing key of the store, oldest first, with its state. Public parts only."""
    return SigningKeyList(
        keys=[SigningKeyOut.of(k) for k in signing_keys.list_signing_keys(svc, caller, store)]
    )


@router.post(
    "/signing-keys:rotate",
    operation_id="rotate_signing_key",
    responses=error_responses(),
    summary="Rotate the store's signing key",
)
def rotate_signing_key(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    body: RotateSigningKeyRequest | None = None,
) -> SigningKeyOut:
    """A new active key; the previous one retires (published `overlap_seconds` longer)."""
    body = body or RotateSigningKeyRequest()
    return SigningKeyOut.of(
        signing_keys.rotate_signing_key(
            svc, caller, store, algorithm=body.algorithm, overlap_seconds=body.overlap_seconds
        )
    )

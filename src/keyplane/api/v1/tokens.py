"""``/v1/stores/{store}/tokens:introspect`` and ``tokens:revoke`` — the token operations of
control-plane callers (an API key), beside the OAuth endpoints the token holders use.

A thin surface over :mod:`keyplane.service.token_admin`: introspection answers the RFC 7662
body (``{"active": false}`` for any token that does not verify now); revocation takes a
token or a ``jti``. See ``docs/tokens.md`` ("Token operations on every surface").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import token_admin
from keyplane.service.token_admin import MAX_TOKEN_CHARS, TokenRevocation

__all__ = ["IntrospectionOut", "RevocationOut", "router"]

router = APIRouter(prefix="/stores/{store}", tags=["tokens"])


class IntrospectTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1, max_length=MAX_TOKEN_CHARS, description="The access token (a JWT)."
    )


class IntrospectionOut(BaseModel):
    """RFC 7662 §2.2. When active, the token's claims besides: ``iss``, ``sub``, ``aud``,
    ``exp``, ``iat``, ``nbf``, ``jti``, ``client_id``, ``scope``, ``act``, ``delegation_id``,
    ``purpose`` …, and ``token_type``. When inactive, ``keyplane_inactive_reason``: why (the
    verifier's reason code — ``expired``, ``token_revoked``, ``parent_token_revoked``,
    ``credential_revoked``, ``identity_suspended``, ``delegation_revoked``,
    ``bad_signature``, ``malformed``, …; for the store's administrators only: the OAuth
    introspection endpoint never says why)."""

    model_config = ConfigDict(extra="allow")

    active: bool = Field(
        description="Whether the token verifies now; if false, only "
        "`keyplane_inactive_reason` (why) besides."
    )


class RevokeTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TOKEN_CHARS,
        description="The access token to revoke. Give this or `jti`.",
    )
    jti: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="The id of the token to revoke (its `jti` claim). Give this or `token`.",
    )
    expires_at: float | None = Field(
        default=None,
        description="With `jti`: the token's `exp` (seconds since the epoch), when known — the"
        " revocation entry is dropped after it. Default: now + KEYPLANE_TOKEN_MAX_TTL.",
    )
    reason: str | None = Field(
        default=None, max_length=1024, description="With `jti`: why (recorded)."
    )


class RevocationOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revoked: bool = Field(
        description="False when `token` was not a live token of this store (nothing to revoke)."
    )
    jti: str | None = Field(default=None, description="The revoked token's `jti`.")
    revision: int | None = Field(
        default=None, description="The store revision of the revocation (revocation by jti)."
    )

    @classmethod
    def of(cls, r: TokenRevocation) -> RevocationOut:
        return cls(revoked=r.revoked, jti=r.jti, revision=r.revision)


@router.post(
    "/tokens:introspect",
    operation_id="introspect_token",
    responses=error_responses(),
    summary="Introspect an access token",
)
def introspect_token(
    store: StoreId, body: IntrospectTokenRequest, svc: ServicesDep, caller: CallerDep
) -> IntrospectionOut:
    """RFC 7662: whether the token is a live token of this store now (signature, expiry,
    revocations, suspended identities, revoked delegations), and its claims if so."""
    answer: dict[str, Any] = token_admin.introspect_token(svc, caller, store, body.token)
    return IntrospectionOut(**answer)


@router.post(
    "/tokens:revoke",
    operation_id="revoke_token",
    responses=error_responses(),
    summary="Revoke an access token",
)
def revoke_token(
    store: StoreId, body: RevokeTokenRequest, svc: ServicesDep, caller: CallerDep
) -> RevocationOut:
    """The token (or the token with this `jti`) and every token exchanged from it stop
    verifying at once. Exactly one of `token` and `jti`."""
    return RevocationOut.of(
        token_admin.revoke_token(
            svc, caller, store, body.token, jti=body.jti, expires_at=body.expires_at,
            reason=body.reason,
        )
    )  # fmt: skip

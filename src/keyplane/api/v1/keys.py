"""``/v1/keys`` — create, list, get, rotate and revoke API keys (admin only).

A thin surface over :mod:`keyplane.service.keys`: the secret appears in the response of
create and rotate only. See ``docs/security.md``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.schemas import (
    ApiKeyOut,
    CreateKeyRequest,
    KeyList,
    KeyWithSecret,
    RotateKeyRequest,
    rfc3339,
)
from keyplane.api.v1.common import PageSize, Token, error_responses
from keyplane.service import keys
from keyplane.service.keys import ApiKey

__all__ = ["router"]

router = APIRouter(prefix="/keys", tags=["keys"])

KeyId = Annotated[
    str, Path(min_length=1, max_length=64, description="The key id (the `<id>` in `kp_<id>_…`).")
]


def _out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=k.id,
        owner=k.owner,
        roles=list(k.roles),
        description=k.description,
        created_at=rfc3339(k.created_at),  # type: ignore[arg-type]
        expires_at=rfc3339(k.expires_at),
        last_used_at=rfc3339(k.last_used_at),
        revoked_at=rfc3339(k.revoked_at),
    )


@router.post(
    "",
    operation_id="create_key",
    status_code=201,
    responses=error_responses(),
    summary="Create an API key",
)
def create_key(body: CreateKeyRequest, svc: ServicesDep, caller: CallerDep) -> KeyWithSecret:
    """Mint a key with an owner, roles and an optional expiry. The secret is in this
    response only: store it now."""
    rec, secret = keys.create_key(
        svc,
        caller,
        owner=body.owner,
        roles=body.roles,
        expires_in=body.expires_in,
        description=body.description,
    )
    return KeyWithSecret(key=_out(rec), secret=secret)


@router.get("", operation_id="list_keys", responses=error_responses(), summary="List API keys")
def list_keys(
    svc: ServicesDep, caller: CallerDep, page_size: PageSize = 100, continuation_token: Token = None
) -> KeyList:
    """Every key — revoked and expired ones included — oldest first, without secrets."""
    page = keys.list_keys(svc, caller, page_size=page_size, continuation_token=continuation_token)
    return KeyList(keys=[_out(k) for k in page.items], continuation_token=page.continuation_token)


@router.get(
    "/{key_id}", operation_id="get_key", responses=error_responses(), summary="Get an API key"
)
def get_key(key_id: KeyId, svc: ServicesDep, caller: CallerDep) -> ApiKeyOut:
    return _out(keys.get_key(svc, caller, key_id))


@router.post(
    "/{key_id}/rotate",
    operation_id="rotate_key",
    responses=error_responses(409),
    summary="Rotate an API key's secret",
)
def rotate_key(
    key_id: KeyId, svc: ServicesDep, caller: CallerDep, body: RotateKeyRequest | None = None
) -> KeyWithSecret:
    """A new secret for the same key (same id, same roles). The old secret keeps working
    for ``overlap_seconds`` (default 3600), then stops."""
    overlap = 3600.0 if body is None else body.overlap_seconds
    rec, secret = keys.rotate_key(svc, caller, key_id, overlap_seconds=overlap)
    return KeyWithSecret(key=_out(rec), secret=secret)


@router.delete(
    "/{key_id}",
    operation_id="revoke_key",
    status_code=204,
    response_class=Response,
    responses=error_responses(),
    summary="Revoke an API key",
)
def revoke_key(key_id: KeyId, svc: ServicesDep, caller: CallerDep) -> Response:
    """Revoke the key for good: refused at once by this server, within
    ``KEYPLANE_KEY_CACHE_TTL`` seconds by every other; its role grants are deleted."""
    keys.revoke_key(svc, caller, key_id)
    return Response(status_code=204)

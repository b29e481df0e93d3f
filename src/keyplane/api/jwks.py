"""Public OAuth discovery: the JWK Set and the authorization server metadata (no API key,
as OAuth requires: a verifier holds no credential).

* ``GET /.well-known/jwks.json`` — the default store's (``KEYPLANE_DEFAULT_STORE``);
* ``GET /stores/{store_id}/.well-known/jwks.json`` — a store's;
* ``GET /.well-known/oauth-authorization-server`` — RFC 8414 metadata (default store);
* ``GET /.well-known/oauth-authorization-server/stores/{store_id}`` — a store's (§3.1).

A store's first signing key is created when its JWKS is first asked for. See
docs/tokens.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keyplane.api.deps import ServicesDep
from keyplane.api.responses import error_responses
from keyplane.api.v1.common import StoreId
from keyplane.service.signing_keys import published_jwks
from keyplane.tokens.jwks import (
    JWKS_CACHE_CONTROL,
    METADATA_CACHE_CONTROL,
    authorization_server_metadata,
    jwks_document,
)

__all__ = ["router"]

router = APIRouter(tags=["oauth"])


class JWKSResponse(JSONResponse):
    """A JWK Set document: ``application/jwk-set+json`` (RFC 7517 §8.5)."""

    media_type = "application/jwk-set+json"


#: the 200 is a JWK Set (the errors keep the JSON error envelope)
_JWKS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The JWK Set (RFC 7517 §5).",
        "content": {"application/jwk-set+json": {"schema": {"type": "object"}}},
    },
    **error_responses(),
}


def _base(svc: ServicesDep, request: Request) -> str:
    return (svc.settings.issuer or str(request.base_url)).rstrip("/")


def _jwks(svc: ServicesDep, store_id: str) -> JSONResponse:
    doc = jwks_document(published_jwks(svc, store_id))
    return JWKSResponse(doc, headers={"Cache-Control": JWKS_CACHE_CONTROL})


def _metadata(svc: ServicesDep, request: Request, store_id: str | None) -> JSONResponse:
    if store_id is not None:
        svc.storage.get_store(store_id)  # 404 for an unknown store
    return JSONResponse(
        authorization_server_metadata(_base(svc, request), store_id),
        headers={"Cache-Control": METADATA_CACHE_CONTROL},
    )


@router.get(
    "/.well-known/jwks.json",
    operation_id="jwks",
    responses=_JWKS_RESPONSES,
    summary="JWK Set (the default store)",
)
def jwks(svc: ServicesDep) -> JSONResponse:
    """The public keys the default store's tokens are signed with (active and retiring)."""
    return _jwks(svc, svc.settings.default_store)


@router.get(
    "/stores/{store_id}/.well-known/jwks.json",
    operation_id="jwks_store",
    responses=_JWKS_RESPONSES,
    summary="JWK Set (a store)",
)
def jwks_store(store_id: StoreId, svc: ServicesDep) -> JSONResponse:
    """The public keys a store's tokens are signed with (active and retiring)."""
    return _jwks(svc, store_id)


@router.get(
    "/.well-known/oauth-authorization-server",
    operation_id="oauth_authorization_server",
    responses=error_responses(),
    summary="OAuth 2.0 authorization server metadata (the default store)",
)
def oauth_metadata(request: Request, svc: ServicesDep) -> JSONResponse:
    """RFC 8414 metadata of the default store's issuer."""
    return _metadata(svc, request, None)


@router.get(
    "/.well-known/oauth-authorization-server/stores/{store_id}",
    operation_id="oauth_authorization_server_store",
    responses=error_responses(),
    summary="OAuth 2.0 authorization server metadata (a store)",
)
def oauth_metadata_store(store_id: StoreId, request: Request, svc: ServicesDep) -> JSONResponse:
    """RFC 8414 metadata of issuer ``<base>/stores/{store_id}`` (§3.1 path insertion)."""
    return _metadata(svc, request, store_id)

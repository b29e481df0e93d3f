"""The documents a verifier and an OAuth client fetch: the JWK Set (RFC 7517 §5) of a
store's signing keys and the authorization server metadata (RFC 8414).

Issuers: the default store's issuer is the base issuer (``KEYPLANE_ISSUER``, else the
request's base URL); another store's is ``<base>/stores/<id>``. The metadata of issuer
``<base>/stores/<id>`` is served at ``<base>/.well-known/oauth-authorization-server/stores/<id>``
(RFC 8414 §3.1: the well-known segment inserted before the issuer's path).

The metadata lists what exists: the token endpoint (``client_credentials`` and RFC 8693
token exchange), the introspection (RFC 7662) and revocation (RFC 7009) endpoints, each at
``<issuer>/oauth2/…`` (:mod:`keyplane.api.oauth`), with the client authentication methods
and assertion algorithms they accept. There is no authorization endpoint, so
``response_types_supported`` is empty, and no ``scopes_supported``: scopes are the store's
own (resource scopes name its objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyplane.tokens.clients import ALGORITHMS as CLIENT_ASSERTION_ALGORITHMS
from keyplane.tokens.keys import ALGORITHMS

__all__ = [
    "CLIENT_AUTH_METHODS",
    "GRANT_TYPES",
    "JWKS_CACHE_CONTROL",
    "METADATA_CACHE_CONTROL",
    "authorization_server_metadata",
    "issuer_for",
    "jwks_document",
    "jwks_uri_for",
]

#: verifiers refetch on an unknown ``kid`` (a rotation signs with the new key at once), so
#: a short max-age only bounds how long a retired key lingers in caches
JWKS_CACHE_CONTROL = "public, max-age=300"
METADATA_CACHE_CONTROL = "public, max-age=3600"

#: the grants of the token endpoint (RFC 6749 §4.4, RFC 8693 §2.1)
GRANT_TYPES = ("client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange")
#: how a client authenticates at the token, introspection and revocation endpoints
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


def issuer_for(base: str, store_id: str | None) -> str:
    """``base`` for the default store (``store_id`` None), else ``base/stores/<id>``."""
    base = base.rstrip("/")
    return base if store_id is None else f"{base}/stores/{store_id}"


def jwks_uri_for(base: str, store_id: str | None) -> str:
    return issuer_for(base, store_id) + "/.well-known/jwks.json"


def jwks_document(keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"keys": [...]}`` with only the public members of each JWK."""
    public = ("kty", "crv", "x", "y", "kid", "alg", "use")
    return {"keys": [{m: k[m] for m in public if m in k} for k in keys]}


def authorization_server_metadata(base: str, store_id: str | None) -> dict[str, Any]:
    issuer = issuer_for(base, store_id)
    methods = list(CLIENT_AUTH_METHODS)
    algs = list(CLIENT_ASSERTION_ALGORITHMS)  # private_key_jwt assertions (RFC 7523)
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri_for(base, store_id),
        "token_endpoint": f"{issuer}/oauth2/token",
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        # REQUIRED by RFC 8414; no authorization endpoint exists, so no response types
        "response_types_supported": [],
        "grant_types_supported": list(GRANT_TYPES),
        # Keyplane's extension: the algorithms its tokens are signed with
        "keyplane_token_signing_alg_values_supported": list(ALGORITHMS),
    }

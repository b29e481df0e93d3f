"""Access tokens (issue 6 §3): issue, exchange, verify, introspect, revoke.

SKELETON: the signatures and dataclasses are final; the bodies land next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.credentials import AuthenticatedClient
from keyplane.tokens.errors import OAuthError, TokenInvalid

__all__ = [
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_TOKEN_EXCHANGE",
    "TT_ACCESS",
    "TT_JWT",
    "AuthenticatedClient",
    "IssuedToken",
    "OAuthError",
    "TokenInvalid",
    "VerifiedToken",
    "exchange_token",
    "introspect_token",
    "issue_client_credentials",
    "revoke_token",
    "revoke_token_id",
    "token_issuer",
    "verify_access_token",
]

GRANT_CLIENT_CREDENTIALS: Final = "client_credentials"
GRANT_TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
TT_ACCESS: Final = "urn:ietf:params:oauth:token-type:access_token"
TT_JWT: Final = "urn:ietf:params:oauth:token-type:jwt"


@dataclass(frozen=True)
class IssuedToken:
    """A token the endpoint issued, and what its response says about it."""

    access_token: str
    expires_in: int
    scope: str | None
    issued_token_type: str | None  # exchange only (RFC 8693 §2.2.1)
    claims: Mapping[str, Any]
    token_type: str = "Bearer"

    def response(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 / RFC 8693 §2.2.1 JSON body."""
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.issued_token_type is not None:
            out["issued_token_type"] = self.issued_token_type
        if self.scope is not None:
            out["scope"] = self.scope
        return out

    def __repr__(self) -> str:  # never print the token
        return f"IssuedToken(jti={self.claims.get('jti')!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class VerifiedToken:
    """A Keyplane access token that passed :func:`verify_access_token`."""

    claims: Mapping[str, Any]
    subject: str
    actors: tuple[str, ...]  # A1..An, oldest first (the order decide() takes)
    purpose: str | None
    delegation_id: str | None
    scope: frozenset[str] | None  # None: unrestricted
    client_id: str
    jti: str
    expires_at: float
    audience: tuple[str, ...] = field(default=())

    def allows_scope(self, action: str, resource: str) -> bool:
        """Whether the token's RESOURCE scopes let it be used for ``action`` on
        ``resource`` (opaque scopes are ignored: resource servers enforce those)."""
        raise NotImplementedError


def token_issuer(svc: Services, store_id: str, base: str | None = None) -> str:
    """The issuer of the store's tokens: ``issuer_for(base or settings.issuer or
    "http://keyplane.invalid", None if the default store else store_id)``."""
    raise NotImplementedError


def issue_client_credentials(
    svc: Services,
    store_id: str,
    client: AuthenticatedClient,
    *,
    issuer: str,
    scope: str | None = None,
    audience: Sequence[str] = (),
    resource: Sequence[str] = (),
    purpose: str | None = None,
) -> IssuedToken:
    raise NotImplementedError


def exchange_token(
    svc: Services,
    store_id: str,
    client: AuthenticatedClient,
    *,
    issuer: str,
    subject_token: str,
    subject_token_type: str,
    actor_token: str | None = None,
    actor_token_type: str | None = None,
    requested_token_type: str | None = None,
    scope: str | None = None,
    audience: Sequence[str] = (),
    resource: Sequence[str] = (),
    purpose: str | None = None,
    delegation_id: str | None = None,
) -> IssuedToken:
    raise NotImplementedError


def verify_access_token(
    svc: Services,
    store_id: str,
    token: str,
    *,
    issuer: str | None = None,
    audience: str | None = None,
) -> VerifiedToken:
    """Raises :class:`TokenInvalid` (fails closed)."""
    raise NotImplementedError


def introspect_token(
    svc: Services, store_id: str, token: str, *, issuer: str | None = None
) -> dict[str, Any]:
    """The RFC 7662 §2.2 body: ``{"active": false}`` for any token that fails."""
    raise NotImplementedError


def revoke_token(
    svc: Services,
    store_id: str,
    token: str,
    *,
    requester: str,
    issuer: str | None = None,
    admin: bool = False,
) -> bool:
    """RFC 7009: revoke ``token`` (``requester`` = the client node; ``admin``: an API-key
    caller with MANAGE_CREDENTIALS). Returns whether something was revoked now."""
    raise NotImplementedError


def revoke_token_id(
    svc: Services,
    caller: Caller,
    store_id: str,
    jti: str,
    *,
    expires_at: float | None = None,
    reason: str | None = None,
) -> int:
    """Revoke a token by its ``jti`` (MANAGE_CREDENTIALS); returns the new revision."""
    raise NotImplementedError

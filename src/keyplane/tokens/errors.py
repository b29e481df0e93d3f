"""The errors of the token endpoint and of token verification.

::

    Exception
     ├── OAuthError            an OAuth 2.0 error response (RFC 6749 §5.2, RFC 8693 §2.2.2)
     └── TokenInvalid          an access token that fails verification (one reason code)

:class:`OAuthError` carries the RFC ``error`` code, a ``description`` safe to return to the
client, the HTTP ``status`` a surface answers with (400, or 401 for ``invalid_client``,
500 for ``server_error``) and ``reason``: the internal cause recorded in the ledger's
``token.refused`` event (``delegation_missing``, ``scope_widening``, ``token_revoked``...),
never returned to the client.

:class:`TokenInvalid` is raised by :func:`keyplane.service.tokens.verify_access_token`; its
``reason`` (``expired``, ``bad_signature``, ``token_revoked``, ``identity_suspended``...) goes
to the ledger and to authenticated administrators, never to an unauthenticated caller
(introspection answers only ``{"active": false}``). A :class:`TokenInvalid` met while
exchanging a token becomes ``OAuthError("invalid_request", reason=<its reason>)`` (RFC 8693
§2.2.2: a subject_token or actor_token invalid for any reason or unacceptable by policy).

Both are plain exceptions, not :class:`keyplane.errors.KeyplaneError`: they are protocol
answers of the OAuth endpoints, mapped by those endpoints alone.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "OAUTH_ERRORS",
    "OAuthError",
    "TokenInvalid",
]

#: error code -> default HTTP status (RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 7009 §2.2.1)
OAUTH_ERRORS: Final[dict[str, int]] = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_grant": 400,
    "unauthorized_client": 400,
    "unsupported_grant_type": 400,
    "invalid_scope": 400,
    "invalid_target": 400,  # RFC 8707 §2 / RFC 8693 §2.2.2
    "unsupported_token_type": 400,  # RFC 7009 §2.2.1
    "server_error": 500,
}


class OAuthError(Exception):
    """An OAuth error answer: ``error`` (RFC code), ``description`` (for the client),
    ``status`` (HTTP), ``reason`` (internal, for the ledger only)."""

    def __init__(
        self,
        error: str,
        description: str | None = None,
        *,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        if error not in OAUTH_ERRORS:
            raise ValueError(f"unknown OAuth error code {error!r}")
        self.error = error
        self.description = description or error.replace("_", " ")
        self.status = OAUTH_ERRORS[error] if status is None else status
        self.reason = reason or error
        super().__init__(self.description)

    def response(self) -> dict[str, str]:
        """The RFC 6749 §5.2 JSON body (never the internal ``reason``)."""
        return {"error": self.error, "error_description": self.description}

    def __repr__(self) -> str:
        return f"OAuthError({self.error!r}, reason={self.reason!r})"


class TokenInvalid(Exception):
    """An access token failed verification; ``reason`` says why (for the ledger)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"TokenInvalid({self.reason!r})"

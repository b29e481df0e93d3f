"""Token operations for control-plane callers: introspection (RFC 7662) and revocation
(RFC 7009, or by ``jti``) asked by an API key or in-process — not by an OAuth client.

The OAuth endpoints (``/oauth2/introspect``, ``/oauth2/revoke``) serve the clients that hold
the tokens; this module serves operators and programs with a Keyplane key: the REST routes
``/v1/stores/{store}/tokens:introspect|revoke``, the SDK, the CLI (``keyplane token``) and the
MCP tools call these two functions, which authorize the caller and hand over to
:mod:`keyplane.service.tokens`.

* :func:`introspect_token` — ``can_read_identities`` on the store. The answer is the RFC 7662
  body; for a token that does not verify now, ``{"active": false,
  "keyplane_inactive_reason": <why>}`` — these callers are authenticated administrators of
  the store, so they are told why (the verifier's reason code: ``expired``,
  ``token_revoked``, ``parent_token_revoked``, ``credential_revoked``,
  ``identity_suspended``, ``delegation_revoked``, ``bad_signature``, ``malformed``, …).
  The OAuth introspection endpoint, which serves clients, never says why.
* :func:`revoke_token` — ``can_manage_credentials`` on the store. Either a token (any of the
  store's tokens, whoever it was issued to) or a ``jti`` (with the token's expiry when known,
  so the revocation entry can be dropped once the token is dead anyway).

Verification here pins no issuer URL: a token verifies when the store's published keys
signed it, so an operator reaching the server under another host name than the client did
still gets the right answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keyplane.errors import ValidationError
from keyplane.service import tokens
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.tokens.access import parse_jws
from keyplane.tokens.errors import TokenInvalid

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = ["INACTIVE_REASON", "TokenRevocation", "introspect_token", "revoke_token"]

#: the member of an inactive token's introspection answer naming why (a Keyplane extension
#: of RFC 7662 §2.2, for control-plane callers only)
INACTIVE_REASON = "keyplane_inactive_reason"

#: longest token string accepted (verification refuses more than 8 KiB anyway)
MAX_TOKEN_CHARS = 16384


@dataclass(frozen=True, slots=True)
class TokenRevocation:
    """What a revocation did: ``revoked`` is false when ``token`` was not a live token of the
    store (nothing to revoke: expired, malformed, another issuer's, already dead); ``jti``
    the revoked token's id; ``revision`` the store revision of a revocation by ``jti``."""

    revoked: bool
    jti: str | None = None
    revision: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"revoked": self.revoked, "jti": self.jti, "revision": self.revision}


def _check_token(token: Any) -> str:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise ValidationError(
            f"token must be a non-empty string of at most {MAX_TOKEN_CHARS} characters"
        )
    return token


@audited(None)
def introspect_token(svc: Services, caller: Caller, store_id: str, token: str) -> dict[str, Any]:
    """RFC 7662 §2.2: ``{"active": true, <claims>…}`` for a token of ``store_id`` that
    verifies now (signature, expiry, and the live state: revocations, suspensions,
    delegations), else ``{"active": false, "keyplane_inactive_reason": <reason code>}``."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    try:
        vt = tokens.verify_access_token(svc, store_id, _check_token(token))
    except TokenInvalid as exc:
        return {"active": False, INACTIVE_REASON: exc.reason}
    return tokens.introspection_body(vt)


@audited("token.revoked")
def revoke_token(
    svc: Services,
    caller: Caller,
    store_id: str,
    token: str | None = None,
    *,
    jti: str | None = None,
    expires_at: float | None = None,
    reason: str | None = None,
) -> TokenRevocation:
    """Revoke ``token``, or the token whose id is ``jti``, at once: it and every token
    obtained from it (exchanges name it in ``kp_parents``) stop verifying everywhere.

    Exactly one of ``token`` and ``jti``. ``expires_at`` and ``reason`` go with ``jti``
    (a token carries its own expiry; ``reason`` is recorded in the ``token.revoked`` event).
    """
    authorize(svc, caller, Permission.MANAGE_CREDENTIALS, store_id)
    if (token is None) == (jti is None):
        raise ValidationError("give exactly one of token and jti")
    if token is not None:
        if expires_at is not None or reason is not None:
            raise ValidationError("expires_at and reason go with jti, not with token")
        revoked = tokens.revoke_token(
            svc, store_id, _check_token(token), requester=caller.principal, admin=True
        )
        if not revoked:
            return TokenRevocation(revoked=False)
        # it verified (or it would not have been revoked): its jti is the one revoked
        claimed = parse_jws(token).claims.get("jti")
        return TokenRevocation(revoked=True, jti=claimed if isinstance(claimed, str) else None)
    assert jti is not None
    revision = tokens.revoke_token_id(
        svc, caller, store_id, jti, expires_at=expires_at, reason=reason
    )
    return TokenRevocation(revoked=True, jti=jti, revision=revision)

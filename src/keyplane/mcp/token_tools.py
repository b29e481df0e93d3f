"""MCP tools of access tokens (issue 6): introspecting a token and revoking one — the
control-plane operations of :mod:`keyplane.service.token_admin`, with the REST request and
response models as schemas. Getting a token is not a tool: an agent gets its tokens from
the OAuth token endpoint with its own client credential."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from keyplane.api.v1.tokens import (
    IntrospectionOut,
    IntrospectTokenRequest,
    RevocationOut,
    RevokeTokenRequest,
)
from keyplane.service import token_admin
from keyplane.service.auth import Caller, Permission
from keyplane.service.context import Services

__all__ = ["TOKEN_NOT_EXPOSED", "TOKEN_SERVICE_OF_TOOL", "TOKEN_SPECS"]


def _introspect_token(
    svc: Services, caller: Caller, store: str, a: IntrospectTokenRequest
) -> tuple[BaseModel, str]:
    answer = token_admin.introspect_token(svc, caller, store, a.token)
    if not answer.get("active"):
        why = answer.get(token_admin.INACTIVE_REASON)
        return IntrospectionOut(**answer), f"inactive: not a live token of this store ({why})"
    actors = ""
    act = answer.get("act")
    chain: list[str] = []
    while isinstance(act, dict) and isinstance(act.get("sub"), str):
        chain.append(act["sub"])
        act = act.get("act")
    if chain:
        actors = f", acted by {' <- '.join(chain)}"
    text = (
        f"active: {answer.get('sub')}{actors}; client {answer.get('client_id')}, "
        f"jti {answer.get('jti')}, expires at {answer.get('exp')}"
    )
    if answer.get("scope"):
        text += f", scope {answer['scope']}"
    return IntrospectionOut(**answer), text


def _revoke_token(
    svc: Services, caller: Caller, store: str, a: RevokeTokenRequest
) -> tuple[BaseModel, str]:
    r = token_admin.revoke_token(
        svc, caller, store, a.token, jti=a.jti, expires_at=a.expires_at, reason=a.reason
    )
    if r.revoked:
        at = "" if r.revision is None else f" (revision {r.revision})"
        text = f"revoked token {r.jti}{at} and every token exchanged from it"
    else:
        text = "nothing to revoke: not a live token of this store"
    return RevocationOut.of(r), text


TOKEN_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "introspect_token",
        "Introspect an access token",
        "Whether an access token is live in this store right now (signature, expiry, "
        "revocations, suspended identities, revoked delegations) and, if so, its claims: "
        "sub (the party acted for), act (the chain of actors, newest outermost), client_id, "
        "scope, aud, exp, jti, delegation_id, purpose. An inactive token answers "
        '{"active": false, "keyplane_inactive_reason": "<why>"} (expired, token_revoked, '
        'identity_suspended, delegation_revoked, ...). Example: {"token": "eyJ..."}.',
        IntrospectTokenRequest,
        IntrospectionOut,
        _introspect_token,
        False,
        None,
        False,
    ),
    (
        "revoke_token",
        "Revoke an access token",
        "Revoke an access token at once — it and every token exchanged from it stop "
        "working everywhere. Give the token, or its id (`jti`, e.g. from introspect_token "
        "or a ledger event) with its `exp` as `expires_at` and a `reason`. Needs the "
        'credential-management permission. Example: {"jti": "01J...", "reason": "leaked"}.',
        RevokeTokenRequest,
        RevocationOut,
        _revoke_token,
        True,
        Permission.MANAGE_CREDENTIALS,
        True,
    ),
]

TOKEN_SERVICE_OF_TOOL: dict[str, Any] = {
    "introspect_token": token_admin.introspect_token,
    "revoke_token": token_admin.revoke_token,
}

TOKEN_NOT_EXPOSED: dict[str, str] = {}

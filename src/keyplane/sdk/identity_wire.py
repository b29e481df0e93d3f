"""The identity-plane calls of the HTTP SDK (see :mod:`keyplane.sdk.wire`): identities,
delegations, the store policy, guardrails and decisions — each one request and the decoder
that rebuilds the record the embedded :class:`keyplane.Keyplane` returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from keyplane.policy.records import (
    Delegation,
    Guardrail,
    GuardrailSet,
    Identity,
    ScopeGrant,
    StorePolicy,
    TrustedIssuer,
)
from keyplane.sdk.wire import Call, _body, _params, seconds, seg
from keyplane.service.guardrails import GuardrailDryRun, GuardrailFlip
from keyplane.storage.base import Page

__all__ = [
    "create_delegation",
    "create_identity",
    "deprovision_identity",
    "dry_run_guardrails",
    "get_delegation",
    "get_guardrails",
    "get_identity",
    "get_store_policy",
    "list_delegations",
    "list_guardrail_versions",
    "list_identities",
    "put_guardrails",
    "reactivate_identity",
    "revoke_delegation",
    "set_identity_owners",
    "suspend_identity",
    "update_identity",
    "update_store_policy",
]


def _path(store: str, rest: str) -> str:
    return f"/v1/stores/{seg(store)}{rest}"


def _identity_path(store: str, node: str, rest: str = "") -> str:
    kind, sep, ident = node.partition(":")
    if not sep or not kind or not ident:
        from keyplane.errors import ValidationError

        raise ValidationError(
            f"{node!r} is not an identity node: write it `kind:id` (e.g. `agent:planner`)",
            details={"node": node},
        )
    return _path(store, f"/identities/{seg(kind)}/{seg(ident)}{rest}")


def _opt_seconds(value: Any) -> float | None:
    return None if value is None else seconds(value)


def rfc3339_text(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


# ---------------------------------------------------------------------------- decoders


def identity(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> Identity:
        return Identity(
            store_id=store,
            kind=d["kind"],
            id=d["id"],
            display_name=d.get("display_name") or "",
            attributes=dict(d.get("attributes") or {}),
            status=d["status"],
            owners=tuple(d.get("owners") or ()),
            orphaned=bool(d.get("orphaned")),
            source=d.get("source") or "",
            created_at=seconds(d["created_at"]),
            updated_at=seconds(d["updated_at"]),
            last_seen=_opt_seconds(d.get("last_seen")),
            revision=int(d.get("revision") or 0),
        )

    return decode


def scope_grant(d: Mapping[str, Any]) -> ScopeGrant:
    return ScopeGrant(tuple(d.get("actions") or ()), d["resource"], tuple(d.get("tools") or ()))


def delegation(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> Delegation:
        return Delegation(
            store_id=store,
            id=d["id"],
            delegator=d["delegator"],
            delegate=d["delegate"],
            parent_id=d.get("parent_id"),
            scope=tuple(scope_grant(g) for g in d.get("scope") or ()),
            purposes=tuple(d.get("purposes") or ()),
            not_before=seconds(d["not_before"]),
            expires_at=seconds(d["expires_at"]),
            max_depth=int(d.get("max_depth") or 0),
            condition=d.get("condition"),
            status=d["status"],
            revoked_at=_opt_seconds(d.get("revoked_at")),
            revoked_reason=d.get("revoked_reason"),
            created_by=d.get("created_by") or "",
            created_at=seconds(d["created_at"]),
            revision=int(d.get("revision") or 0),
        )

    return decode


def store_policy(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> StorePolicy:
        return StorePolicy(
            store_id=store,
            max_delegation_seconds=int(d["max_delegation_seconds"]),
            suspend_orphans=bool(d["suspend_orphans"]),
            actions=dict(d.get("actions") or {}),
            revision=int(d.get("revision") or 0),
            max_credential_seconds=int(d.get("max_credential_seconds") or 7_776_000),
            access_token_seconds=int(d.get("access_token_seconds") or 300),
            allow_impersonation=bool(d.get("allow_impersonation", False)),
            token_audiences=tuple(d.get("token_audiences") or ()),
            trusted_issuers=tuple(
                TrustedIssuer.from_json(t) for t in d.get("trusted_issuers") or ()
            ),
        )

    return decode


def guardrail(d: Mapping[str, Any]) -> Guardrail:
    return Guardrail(
        id=d["id"],
        description=d.get("description") or "",
        effect=d["effect"],
        expression=d["expression"],
        enabled=bool(d.get("enabled", True)),
    )


def guardrail_set(store: str) -> Any:
    def decode(d: Mapping[str, Any]) -> GuardrailSet:
        return GuardrailSet(
            store_id=store,
            version=int(d["version"]),
            rules=tuple(guardrail(r) for r in d.get("rules") or ()),
            created_by=d.get("created_by") or "",
            created_at=seconds(d["created_at"]),
            revision=int(d.get("revision") or 0),
        )

    return decode


def _page(key: str, item: Any) -> Any:
    def decode(d: Mapping[str, Any]) -> Page[Any]:
        return Page([item(x) for x in d.get(key) or []], d.get("continuation_token") or None)

    return decode


def rule_json(rule: Guardrail | Mapping[str, Any]) -> dict[str, Any]:
    """A rule as the wire's ``GuardrailIn`` (a :class:`Guardrail` or its dict form)."""
    if isinstance(rule, Guardrail):
        return {
            "id": rule.id,
            "description": rule.description,
            "effect": rule.effect,
            "expression": rule.expression,
            "enabled": rule.enabled,
        }
    return dict(rule)


def grant_json(grant: ScopeGrant | Mapping[str, Any]) -> dict[str, Any]:
    """A grant as the wire's ``ScopeGrantModel`` (a :class:`ScopeGrant` or its dict form)."""
    if isinstance(grant, ScopeGrant):
        return {
            "actions": list(grant.actions),
            "resource": grant.resource,
            "tools": list(grant.tools),
        }
    return dict(grant)


# ---------------------------------------------------------------------------- identities


def create_identity(
    store: str,
    kind: str,
    id: str,
    display_name: str | None,
    attributes: Mapping[str, Any] | None,
    owners: Sequence[str],
    source: str,
) -> Call[Identity]:
    body = _body(
        kind=kind,
        id=id,
        display_name=display_name,
        attributes=None if attributes is None else dict(attributes),
        owners=list(owners),
        source=source,
    )
    return Call("POST", _path(store, "/identities"), identity(store), body=body)


def get_identity(store: str, node: str) -> Call[Identity]:
    return Call("GET", _identity_path(store, node), identity(store), idempotent=True)


def list_identities(
    store: str,
    kind: str | None,
    status: str | None,
    owner: str | None,
    orphaned: bool | None,
    page_size: int,
    token: str | None,
) -> Call[Page[Identity]]:
    params = _params(
        kind=kind,
        status=status,
        owner=owner,
        orphaned=None if orphaned is None else ("true" if orphaned else "false"),
        page_size=page_size,
        continuation_token=token,
    )
    return Call(
        "GET",
        _path(store, "/identities"),
        _page("identities", identity(store)),
        params=params,
        idempotent=True,
    )


def update_identity(
    store: str, node: str, display_name: str | None, attributes: Mapping[str, Any] | None
) -> Call[Identity]:
    body = _body(
        display_name=display_name, attributes=None if attributes is None else dict(attributes)
    )
    return Call("PATCH", _identity_path(store, node), identity(store), body=body)


def set_identity_owners(
    store: str, node: str, add: Sequence[str], remove: Sequence[str]
) -> Call[Identity]:
    return Call(
        "POST",
        _identity_path(store, node, "/owners"),
        identity(store),
        body={"add": list(add), "remove": list(remove)},
    )


def _transition(store: str, node: str, verb: str, reason: str | None) -> Call[Identity]:
    return Call(
        "POST", _identity_path(store, node, f":{verb}"), identity(store), body=_body(reason=reason)
    )


def suspend_identity(store: str, node: str, reason: str | None) -> Call[Identity]:
    return _transition(store, node, "suspend", reason)


def reactivate_identity(store: str, node: str) -> Call[Identity]:
    return _transition(store, node, "reactivate", None)


def deprovision_identity(store: str, node: str, reason: str | None) -> Call[Identity]:
    return _transition(store, node, "deprovision", reason)


# ---------------------------------------------------------------------------- delegations


def create_delegation(
    store: str,
    *,
    delegator: str,
    delegate: str,
    scope: Sequence[ScopeGrant | Mapping[str, Any]],
    expires_at: float,
    purposes: Sequence[str],
    not_before: float | None,
    max_depth: int,
    condition: str | None,
    parent_id: str | None,
) -> Call[Delegation]:
    body = _body(
        delegator=delegator,
        delegate=delegate,
        scope=[grant_json(g) for g in scope],
        expires_at=rfc3339_text(expires_at),
        purposes=list(purposes),
        not_before=rfc3339_text(not_before),
        max_depth=max_depth,
        condition=condition,
        parent_id=parent_id,
    )
    return Call("POST", _path(store, "/delegations"), delegation(store), body=body)


def get_delegation(store: str, delegation_id: str) -> Call[Delegation]:
    return Call(
        "GET",
        _path(store, f"/delegations/{seg(delegation_id)}"),
        delegation(store),
        idempotent=True,
    )


def list_delegations(
    store: str,
    delegator: str | None,
    delegate: str | None,
    status: str | None,
    parent_id: str | None,
    page_size: int,
    token: str | None,
) -> Call[Page[Delegation]]:
    params = _params(
        delegator=delegator,
        delegate=delegate,
        status=status,
        parent_id=parent_id,
        page_size=page_size,
        continuation_token=token,
    )
    return Call(
        "GET",
        _path(store, "/delegations"),
        _page("delegations", delegation(store)),
        params=params,
        idempotent=True,
    )


def revoke_delegation(store: str, delegation_id: str, reason: str | None) -> Call[list[Delegation]]:
    decode = delegation(store)
    return Call(
        "POST",
        _path(store, f"/delegations/{seg(delegation_id)}:revoke"),
        lambda d: [decode(x) for x in d.get("revoked") or []],
        body=_body(reason=reason),
    )


# ---------------------------------------------------------------------------- store policy


def get_store_policy(store: str) -> Call[StorePolicy]:
    return Call("GET", _path(store, "/policy"), store_policy(store), idempotent=True)


def update_store_policy(
    store: str,
    max_delegation_seconds: int | None,
    suspend_orphans: bool | None,
    actions: Mapping[str, str] | None,
    max_credential_seconds: int | None = None,
    access_token_seconds: int | None = None,
    allow_impersonation: bool | None = None,
    token_audiences: Sequence[str] | None = None,
    trusted_issuers: Sequence[TrustedIssuer | Mapping[str, Any]] | None = None,
) -> Call[StorePolicy]:
    body = _body(
        max_delegation_seconds=max_delegation_seconds,
        suspend_orphans=suspend_orphans,
        actions=None if actions is None else dict(actions),
        max_credential_seconds=max_credential_seconds,
        access_token_seconds=access_token_seconds,
        allow_impersonation=allow_impersonation,
        token_audiences=None if token_audiences is None else list(token_audiences),
        trusted_issuers=None
        if trusted_issuers is None
        else [t.to_json() if isinstance(t, TrustedIssuer) else dict(t) for t in trusted_issuers],
    )
    return Call("PATCH", _path(store, "/policy"), store_policy(store), body=body)


# ---------------------------------------------------------------------------- guardrails


def put_guardrails(
    store: str, rules: Sequence[Guardrail | Mapping[str, Any]]
) -> Call[GuardrailSet]:
    return Call(
        "PUT",
        _path(store, "/guardrails"),
        guardrail_set(store),
        body={"rules": [rule_json(r) for r in rules]},
    )


def get_guardrails(store: str, version: int | None) -> Call[GuardrailSet]:
    return Call(
        "GET",
        _path(store, "/guardrails"),
        guardrail_set(store),
        params=_params(version=version),
        idempotent=True,
    )


def list_guardrail_versions(
    store: str, page_size: int, token: str | None
) -> Call[Page[GuardrailSet]]:
    return Call(
        "GET",
        _path(store, "/guardrails/versions"),
        _page("versions", guardrail_set(store)),
        params=_params(page_size=page_size, continuation_token=token),
        idempotent=True,
    )


def dry_run(d: Mapping[str, Any]) -> GuardrailDryRun:
    return GuardrailDryRun(
        considered=int(d["considered"]),
        evaluated=int(d["evaluated"]),
        changed=int(d["changed"]),
        outcome_changed=int(d["outcome_changed"]),
        denied_before_guardrails=int(d.get("denied_before_guardrails") or 0),
        skipped=dict(d.get("skipped") or {}),
        current_version=int(d.get("current_version") or 0),
        flips=tuple(
            GuardrailFlip(
                event_id=f["event_id"],
                decision_id=f["decision_id"],
                seq=f.get("seq"),
                time=float(f["time"]),
                subject=f["subject"],
                actors=tuple(f.get("actors") or ()),
                action=f["action"],
                resource=f["resource"],
                old_outcome=f["old_outcome"],
                new_outcome=f["new_outcome"],
                old_code=f["old_code"],
                new_code=f["new_code"],
                rule_ids=tuple(f.get("rule_ids") or ()),
                old_rule_ids=tuple(f.get("old_rule_ids") or ()),
                errors=dict(f.get("errors") or {}),
            )
            for f in d.get("flips") or ()
        ),
        rule_errors=int(d.get("rule_errors") or 0),
    )


def dry_run_guardrails(
    store: str, rules: Sequence[Guardrail | Mapping[str, Any]], last: int
) -> Call[GuardrailDryRun]:
    return Call(
        "POST",
        _path(store, "/guardrails:dry-run"),
        dry_run,
        body={"rules": [rule_json(r) for r in rules], "last": last},
        idempotent=True,
    )

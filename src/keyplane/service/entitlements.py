"""Requestable entitlements (issue 7 §1): a relation on an object (``document:roadmap``),
on every object of a type (``document:*``) or on a role (``role:billing-admin`` relation
``assignee``), with its owners, risk, maximum grant duration, whether agents may request
it, and its approval policy (:mod:`keyplane.governance.approval`, compiled here, at write
time).

Managing entitlements needs ``can_manage_entitlements`` (admin); reading them
``can_read_identities``. Every change is one ledger event (``entitlement.created``,
``entitlement.updated``, ``entitlement.deleted``; resource ``entitlement:<id>``) committed
in the change's own transaction. Deleting an entitlement leaves its grants alone (they
end at their expiry or by revocation); no request can be filed for it any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from keyplane.errors import (
    EntitlementExistsError,
    EntitlementNotFoundError,
    InvalidEntitlementError,
    ValidationError,
)
from keyplane.governance.approval import parse_approval
from keyplane.governance.records import (
    ENTITLEMENT_ID_RE,
    ENTITLEMENT_RISKS,
    ENTITLEMENT_STATUSES,
    MAX_GRANT_SECONDS,
    MIN_GRANT_SECONDS,
    ApprovalRule,
    Entitlement,
)
from keyplane.graph.tuples import object_error
from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page, PolicyTxReader, PolicyWrite

__all__ = [
    "create_entitlement",
    "delete_entitlement",
    "entitlement_details",
    "get_entitlement",
    "list_entitlements",
    "update_entitlement",
]

MAX_OWNERS: Final = 32
MAX_DESCRIPTION: Final = 2048


def _invalid(message: str, **details: Any) -> InvalidEntitlementError:
    return InvalidEntitlementError(message, details=details)


def _not_found(entitlement_id: str) -> EntitlementNotFoundError:
    return EntitlementNotFoundError(
        f"entitlement {entitlement_id!r} not found",
        details={"entitlement_id": str(entitlement_id)[:100]},
    )


def _id(value: Any) -> str:
    if not isinstance(value, str) or not ENTITLEMENT_ID_RE.match(value):
        raise _invalid(
            f"entitlement id must match [a-z0-9][a-z0-9_.-]{{0,63}}, got {value!r}"[:300],
            field="id",
        )
    return value


def _target(svc: Services, store_id: str, obj: Any, relation: Any) -> tuple[str, str]:
    """``object`` (one object or ``type:*``) and ``relation``, checked against the model."""
    if not isinstance(obj, str) or not isinstance(relation, str) or not relation:
        raise _invalid("object and relation must be strings", field="object")
    typ, sep, oid = obj.partition(":")
    if oid != "*":
        why = object_error(obj)
        if why is not None or not sep:
            raise _invalid(
                f"invalid object {obj!r}: {why or 'expected type:id or type:*'}", field="object"
            )
    engine, _ = svc.graphs.engine(store_id)
    rels = engine.model.types.get(typ)
    if rels is None:
        raise _invalid(f"type '{typ}' is not in the store's model", field="object", type=typ)
    if relation not in rels:
        raise _invalid(
            f"'{relation}' is not a relation of type '{typ}'",
            field="relation",
            type=typ,
            relation=relation,
        )
    return obj, relation


def _owners(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _invalid(
            "owners must be a list of 'human:<id>' or 'group:<id>#member'", field="owners"
        )
    out: list[str] = []
    for o in value:
        ok = isinstance(o, str) and (
            (o.startswith("human:") and ":" not in o[6:] and "#" not in o and len(o) > 6)
            or (o.startswith("group:") and o.endswith("#member") and len(o) > 13)
        )
        if not ok:
            raise _invalid(
                f"owner {o!r} must be 'human:<id>' or 'group:<id>#member'"[:300], field="owners"
            )
        if o not in out:
            out.append(o)
    if not out:
        raise _invalid("an entitlement has at least one owner", field="owners")
    if len(out) > MAX_OWNERS:
        raise _invalid(f"at most {MAX_OWNERS} owners", field="owners")
    return tuple(out)


def _risk(value: Any) -> str:
    if value not in ENTITLEMENT_RISKS:
        raise _invalid(
            f"risk must be one of {', '.join(ENTITLEMENT_RISKS)}, got {value!r}"[:300],
            field="risk",
        )
    return str(value)


def _duration(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_GRANT_SECONDS <= value <= MAX_GRANT_SECONDS
    ):
        raise _invalid(
            f"max_duration_seconds must be an integer in {MIN_GRANT_SECONDS}..{MAX_GRANT_SECONDS}",
            field="max_duration_seconds",
        )
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"{field} must be a boolean", field=field)
    return value


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise _invalid(
            f"description must be a string of at most {MAX_DESCRIPTION} characters",
            field="description",
        )
    return value


def _status(value: Any) -> str:
    if value not in ENTITLEMENT_STATUSES:
        raise _invalid(f"status must be one of {', '.join(ENTITLEMENT_STATUSES)}", field="status")
    return str(value)


def _check_human_owners(r: PolicyTxReader, owners: tuple[str, ...]) -> None:
    for o in owners:
        if o.startswith("human:"):
            ident = r.identity("human", o[6:])
            if ident is None or ident.status != "active":
                raise _invalid(
                    f"owner {o!r} is not a registered, active identity", field="owners", owner=o
                )


def entitlement_details(e: Entitlement) -> dict[str, Any]:
    """An entitlement as its ledger events carry it."""
    return {
        "entitlement_id": e.id,
        "object": e.object,
        "relation": e.relation,
        "owners": list(e.owners),
        "risk": e.risk,
        "max_duration_seconds": e.max_duration_seconds,
        "agents_may_request": e.agents_may_request,
        "approval": e.approval_json(),
        "status": e.status,
    }


# ------------------------------------------------------------------------------ operations


@audited("entitlement.created")
def create_entitlement(
    svc: Services,
    caller: Caller,
    store_id: str,
    entitlement_id: str,
    *,
    object: str,
    relation: str,
    owners: Iterable[str],
    description: str | None = None,
    risk: str = "medium",
    max_duration_seconds: int = 3600,
    agents_may_request: bool = False,
    approval: Iterable[ApprovalRule | Mapping[str, Any]] | None = None,
    status: str = "active",
) -> Entitlement:
    """Create a requestable entitlement (``approval``: its rules, first true wins; none:
    routed to the owners, one approval)."""
    authorize(svc, caller, Permission.MANAGE_ENTITLEMENTS, store_id)
    eid = _id(entitlement_id)
    obj, rel = _target(svc, store_id, object, relation)
    own = _owners(owners)
    rules = parse_approval(approval)
    now = svc.clock.now()
    e = Entitlement(
        store_id, eid, obj, rel, _description(description), own, _risk(risk),
        _duration(max_duration_seconds), _bool(agents_may_request, "agents_may_request"),
        rules, _status(status), caller.principal, now, now, 0,
    )  # fmt: skip

    def plan(r: PolicyTxReader) -> PolicyWrite:
        if r.entitlement(eid) is not None:
            raise EntitlementExistsError(
                f"entitlement {eid!r} already exists", details={"entitlement_id": eid}
            )
        _check_human_owners(r, own)
        return PolicyWrite(new_entitlements=[e])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            svc, caller, "entitlement.created", store_id, resource=f"entitlement:{eid}",
            action="create", revision=revision, details=entitlement_details(e),
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return _stored(result, e)


def _stored(result: Any, e: Entitlement) -> Entitlement:
    for got in getattr(result, "entitlements", ()):
        if got.id == e.id:
            return got  # type: ignore[no-any-return]
    return replace(e, revision=result.revision)


@audited(None)
def get_entitlement(
    svc: Services, caller: Caller, store_id: str, entitlement_id: str
) -> Entitlement:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    found = svc.storage.get_entitlement(store_id, str(entitlement_id))
    if found is None:
        raise _not_found(entitlement_id)
    return found


@audited(None)
def list_entitlements(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    status: str | None = None,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[Entitlement]:
    """Entitlements by id, optionally only those of ``status`` (active|disabled)."""
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    if status is not None and status not in ENTITLEMENT_STATUSES:
        raise ValidationError(
            f"unknown status {status!r}: one of {', '.join(ENTITLEMENT_STATUSES)}",
            details={"status": str(status)[:100]},
        )
    size = check_page_size(page_size, svc.settings.max_page_size)
    return svc.storage.list_entitlements(
        store_id, status=status, page_size=size, continuation_token=continuation_token
    )


@audited("entitlement.updated")
def update_entitlement(
    svc: Services,
    caller: Caller,
    store_id: str,
    entitlement_id: str,
    *,
    description: str | None = None,
    owners: Iterable[str] | None = None,
    risk: str | None = None,
    max_duration_seconds: int | None = None,
    agents_may_request: bool | None = None,
    approval: Iterable[ApprovalRule | Mapping[str, Any]] | None = None,
    status: str | None = None,
) -> Entitlement:
    """Change an entitlement's metadata (its target — object, relation — is fixed: create
    another one). Only the fields given (not None) change — ``approval=[]`` clears the
    rules, ``description=""`` the description; requests already filed keep what they were
    decided with."""
    authorize(svc, caller, Permission.MANAGE_ENTITLEMENTS, store_id)
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = _description(description)
    if owners is not None:
        changes["owners"] = _owners(owners)
    if risk is not None:
        changes["risk"] = _risk(risk)
    if max_duration_seconds is not None:
        changes["max_duration_seconds"] = _duration(max_duration_seconds)
    if agents_may_request is not None:
        changes["agents_may_request"] = _bool(agents_may_request, "agents_may_request")
    if approval is not None:
        changes["approval"] = parse_approval(approval)
    if status is not None:
        changes["status"] = _status(status)
    now = svc.clock.now()
    made: list[tuple[Entitlement, list[str]]] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        made.clear()
        old = r.entitlement(str(entitlement_id))
        if old is None:
            raise _not_found(entitlement_id)
        if "owners" in changes:
            _check_human_owners(r, changes["owners"])
        changed = [k for k, v in changes.items() if getattr(old, k) != v]
        if not changed:
            return PolicyWrite()
        new = replace(old, **{k: changes[k] for k in changed}, updated_at=now)
        made.append((new, changed))
        return PolicyWrite(entitlements=[new])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        new, changed = made[0]
        return audit.change_events(
            svc, caller, "entitlement.updated", store_id, resource=f"entitlement:{new.id}",
            action="update", revision=revision,
            details={**entitlement_details(new), "changed": changed},
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        return get_entitlement(svc, caller, store_id, entitlement_id)
    svc.graphs.catch_up(store_id)
    return _stored(result, made[0][0])


@audited("entitlement.deleted")
def delete_entitlement(
    svc: Services, caller: Caller, store_id: str, entitlement_id: str
) -> Entitlement:
    """Delete an entitlement; returns it as it was. Its grants stay until they expire or
    are revoked; its pending requests can still be decided by their approvers."""
    authorize(svc, caller, Permission.MANAGE_ENTITLEMENTS, store_id)
    gone: list[Entitlement] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        gone.clear()
        old = r.entitlement(str(entitlement_id))
        if old is None:
            raise _not_found(entitlement_id)
        gone.append(old)
        return PolicyWrite(deleted_entitlements=[old.id])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        e = gone[0]
        return audit.change_events(
            svc, caller, "entitlement.deleted", store_id, resource=f"entitlement:{e.id}",
            action="delete", revision=revision, details=entitlement_details(e),
        )  # fmt: skip

    svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return gone[0]

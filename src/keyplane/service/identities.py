"""Identities: humans and non-human identities (agents, workloads, service accounts).

Each identity is a node of the graph (``kind:id``; the kinds are types of the built-in
base model, see :mod:`keyplane.policy.base_model`). Every non-human identity (NHI) has at
least one owner — a human (``human:alice``) or a group's members (``group:eng#member``) —
kept on the identity row AND as ``owner`` tuples (``agent:bot#owner@human:alice``)
written in the same transaction, so the graph can use ownership like any relation.

Lifecycle: ``active`` ⇄ ``suspended`` → ``deprovisioned`` (final).

* Suspending is the kill switch: the identity denies in every decision it appears in
  (the decision reads the in-memory state, which this process updates at once and other
  processes within the poll interval), and every delegation it gave or holds — with
  everything derived from them — is revoked in the same transaction, one
  ``delegation.revoked`` event each.
* Deprovisioning does the same, for good, and re-examines what the identity owned: an
  NHI none of whose owners is an active human or a group is flagged ``orphaned``
  (``identity.orphaned``) and, when the store policy says ``suspend_orphans``, suspended
  (``identity.suspended``, its delegations revoked) — all in one transaction.

Every change is one storage transaction (:meth:`PolicyStore.write_policy`) that also
commits its ledger events.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyplane.errors import (
    IdentityNotFoundError,
    IdentityStateError,
    InvalidTupleError,
    ModelNotFoundError,
    OwnerRequiredError,
    RelationNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.base_model import base_model, missing_hint
from keyplane.policy.records import (
    IDENTITY_KINDS,
    IDENTITY_STATUSES,
    NON_HUMAN_KINDS,
    Delegation,
    Identity,
)
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import ModelRecord, Page, PolicyTxReader, PolicyWrite

__all__ = [
    "create_identity",
    "deprovision_identity",
    "get_identity",
    "list_identities",
    "reactivate_identity",
    "set_identity_owners",
    "suspend_identity",
    "update_identity",
]

_ID_RE = re.compile(r"^[^\s:#*]{1,256}$")
_GROUP_RE = re.compile(r"^group:[^\s:#*]{1,256}#member$")
MAX_ATTRIBUTES_BYTES = 16_384
MAX_OWNERS = 50
OWNER_RELATION = "owner"


# ------------------------------------------------------------------------------ validation


def parse_node(node: Any, *, what: str = "identity") -> tuple[str, str]:
    """``"kind:id"`` → (kind, id) for an identity kind, else ValidationError."""
    if not isinstance(node, str):
        raise ValidationError(f"{what} must be 'kind:id'", details={what: repr(node)[:200]})
    kind, sep, id_ = node.partition(":")
    if not sep:
        raise ValidationError(f"{what} {node!r} must be 'kind:id'", details={what: node})
    check_kind(kind)
    check_id(id_)
    return kind, id_


def check_kind(kind: Any) -> str:
    if kind not in IDENTITY_KINDS:
        raise ValidationError(
            f"unknown identity kind {kind!r}: one of {', '.join(IDENTITY_KINDS)}",
            details={"kind": str(kind)[:100], "kinds": list(IDENTITY_KINDS)},
        )
    return str(kind)


def check_id(id_: Any) -> str:
    if not isinstance(id_, str) or not _ID_RE.match(id_):
        raise ValidationError(
            f"invalid identity id {id_!r}: 1-256 characters, no spaces, ':', '#' or '*'",
            details={"id": str(id_)[:300]},
        )
    return id_


def check_owner(owner: Any) -> str:
    """An owner is a human (``human:alice``) or a group's members (``group:eng#member``)."""
    if isinstance(owner, str):
        if owner.startswith("human:") and _ID_RE.match(owner[6:]):
            return owner
        if _GROUP_RE.match(owner):
            return owner
    raise ValidationError(
        f"invalid owner {owner!r}: a human ('human:alice') or a group's members "
        "('group:eng#member')",
        details={"owner": str(owner)[:300]},
    )


def _owners(values: Any, what: str = "owners") -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValidationError(f"{what} must be a list of owners", details={"field": what})
    out: list[str] = []
    for v in values:
        o = check_owner(v)
        if o not in out:
            out.append(o)
    if len(out) > MAX_OWNERS:
        raise ValidationError(f"at most {MAX_OWNERS} owners", details={"field": what})
    return tuple(out)


def _attributes(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError("attributes must be a JSON object", details={"field": "attributes"})
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"attributes must be JSON: {exc}", details={"field": "attributes"}
        ) from None
    if len(text) > MAX_ATTRIBUTES_BYTES:
        raise ValidationError(
            f"attributes exceed {MAX_ATTRIBUTES_BYTES} bytes", details={"field": "attributes"}
        )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _display_name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise ValidationError(
            "display_name must be a string of at most 256 characters",
            details={"field": "display_name"},
        )
    return value


def _source(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 128
        or any(c.isspace() for c in value)
    ):
        raise ValidationError(
            "source must be a short name ('api', 'scim', 'import:aws', ...)",
            details={"field": "source"},
        )
    return value


def check_reason(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 1024:
        raise ValidationError("reason must be a string of at most 1024 characters")
    return value


def owner_tuple(node: str, owner: str) -> Tuple:
    return Tuple(node, OWNER_RELATION, owner)


def ensure_model(services: Services, caller: Caller, store_id: str) -> CompiledModel:
    """The store's latest model, compiled; a store with none gets the built-in base model
    as its first model (a ``model.written`` event by ``caller`` with details
    ``{"base_model": true}``, in the model's transaction), so that registering the first
    identity of a new store needs no model written beforehand. The caller is already
    authorized for the identity operation; the base model declares only the identity
    types and grants nothing. Two such calls racing on one empty store may both write it:
    two identical versions, harmless."""
    try:
        return services.graphs.model(store_id)
    except ModelNotFoundError:
        pass

    def event_of(made: ModelRecord) -> list[tuple[LedgerEvent, str]]:
        return audit.change_events(
            services, caller, "model.written", store_id, model_id=made.id,
            revision=made.revision, details={"base_model": True},
        )  # fmt: skip

    rec = services.storage.write_model(store_id, base_model(), ledger_events=event_of)
    services.graphs.catch_up(store_id)
    return services.graphs.model(store_id, rec.id)


def check_in_model(
    services: Services,
    caller: Caller,
    store_id: str,
    node: str,
    owner_tuples: Sequence[Tuple],
    *,
    first: bool = False,
) -> None:
    """The store's latest model must declare the identity's type and accept its owner
    tuples — validated like any tuple write (``type_not_found``, ``relation_not_found``,
    ``invalid_tuple``), the message naming the base model and how to extend the model.
    With ``first`` (registering an identity), a store with no model yet gets the base model
    as its first (:func:`ensure_model`)."""
    kind = node.partition(":")[0]
    model = ensure_model(services, caller, store_id) if first else services.graphs.model(store_id)
    try:
        if not model.has_type(kind):
            raise TypeNotFoundError(f"type '{kind}' not found", details={"type": kind})
        for t in owner_tuples:
            model.validate_tuple(t)
    except (TypeNotFoundError, RelationNotFoundError) as exc:
        raise type(exc)(
            f"{exc.message} in the store's model {model.model_id}: {missing_hint(kind)}",
            details={**exc.details, "identity": node, "model_id": model.model_id},
        ) from None
    except InvalidTupleError as exc:
        raise InvalidTupleError(
            f"{exc.message}: the store's model {model.model_id} does not allow this owner in "
            f"'{kind}#{OWNER_RELATION}' (the built-in base model allows [human, group#member]"
            "; write a model whose owner relation allows it)",
            details={**exc.details, "identity": node, "model_id": model.model_id},
        ) from None


# ------------------------------------------------------------------------------ in a transaction


def _load(r: PolicyTxReader, node: str) -> Identity:
    kind, id_ = parse_node(node)
    found = r.identity(kind, id_)
    if found is None:
        raise IdentityNotFoundError(f"identity {node!r} not found", details={"identity": node})
    return found


def _check_owners_active(r: PolicyTxReader, owners: Sequence[str]) -> None:
    """Owners that are registered identities must be active (a group is always fine)."""
    for o in owners:
        if o.startswith("human:"):
            found = r.identity("human", o[6:])
            if found is not None and found.status != "active":
                raise IdentityStateError(
                    f"owner {o!r} is {found.status}; an owner must be active",
                    details={"owner": o, "status": found.status},
                )


def owner_alive(r: PolicyTxReader, owner: str, changed: Mapping[str, Identity]) -> bool:
    """A group, or a human who is active (or not registered: a plain graph node)."""
    if not owner.startswith("human:"):
        return True
    found = changed.get(owner) or r.identity("human", owner[6:])
    return found is None or found.status == "active"


def is_orphaned(r: PolicyTxReader, owners: Sequence[str], changed: Mapping[str, Identity]) -> bool:
    return not any(owner_alive(r, o, changed) for o in owners)


@dataclasses.dataclass
class Revocation:
    delegation: Delegation
    cause: str


def revoke_all(
    r: PolicyTxReader,
    roots: Sequence[Delegation],
    *,
    now: float,
    reason: str | None,
    cause: str,
    already: Mapping[str, Revocation] | None = None,
) -> list[Revocation]:
    """``roots`` (active ones) and every active delegation below them, revoked at ``now``;
    ``cause`` for the roots, ``parent_revoked`` for the rest. Skips ids in ``already``."""
    skip = dict(already or {})
    out: list[Revocation] = []
    active_roots = [d for d in roots if d.status == "active" and d.id not in skip]
    for d in active_roots:
        skip[d.id] = Revocation(d, cause)
        out.append(Revocation(_revoked(d, now, reason), cause))
    for d in r.descendants([d.id for d in active_roots]):
        if d.id in skip:
            continue
        skip[d.id] = Revocation(d, "parent_revoked")
        out.append(Revocation(_revoked(d, now, reason), "parent_revoked"))
    return out


def _revoked(d: Delegation, now: float, reason: str | None) -> Delegation:
    return dataclasses.replace(d, status="revoked", revoked_at=now, revoked_reason=reason)


def revocation_events(
    services: Services,
    caller: Caller,
    store_id: str,
    revision: int,
    revoked: Sequence[Revocation],
) -> list[tuple[LedgerEvent, str]]:
    out: list[tuple[LedgerEvent, str]] = []
    for rv in revoked:
        d = rv.delegation
        out += audit.change_events(
            services, caller, "delegation.revoked", store_id,
            resource=f"delegation:{d.id}", action="revoke", revision=revision,
            details={
                "delegation_id": d.id, "delegator": d.delegator, "delegate": d.delegate,
                "parent_id": d.parent_id, "cause": rv.cause, "reason": d.revoked_reason,
            },
        )  # fmt: skip
    return out


def identity_event(
    services: Services,
    caller: Caller,
    type: str,
    store_id: str,
    revision: int,
    ident: Identity,
    details: Mapping[str, Any],
) -> list[tuple[LedgerEvent, str]]:
    return audit.change_events(
        services, caller, type, store_id, resource=ident.node, action=type.partition(".")[2],
        revision=revision, details={"kind": ident.kind, **details},
    )  # fmt: skip


# ------------------------------------------------------------------------------ operations


@audited("identity.created")
def create_identity(
    svc: Services,
    caller: Caller,
    store_id: str,
    kind: str,
    id: str,
    *,
    display_name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    owners: Iterable[str] = (),
    source: str = "api",
) -> Identity:
    """Register an identity. A non-human one needs at least one owner (``owner_required``);
    a human has none. Owners that are registered must be active. The owner tuples are
    written with the identity, in one transaction with its ``identity.created`` event."""
    authorize(svc, caller, Permission.MANAGE_IDENTITIES, store_id)
    check_kind(kind)
    check_id(id)
    own = _owners(owners)
    if kind in NON_HUMAN_KINDS and not own:
        raise OwnerRequiredError(
            f"a {kind} needs at least one owner (a human or a group's members)",
            details={"identity": f"{kind}:{id}"},
        )
    if kind == "human" and own:
        raise ValidationError("a human identity has no owners", details={"identity": f"human:{id}"})
    name = id if display_name is None else _display_name(display_name)
    attrs = {} if attributes is None else _attributes(attributes)
    src = _source(source)
    now = svc.clock.now()
    ident = Identity(store_id, kind, id, name, attrs, "active", own, False, src, now, now, None, 0)
    tuples = [owner_tuple(ident.node, o) for o in own]
    check_in_model(svc, caller, store_id, ident.node, tuples, first=True)

    def plan(r: PolicyTxReader) -> PolicyWrite:
        _check_owners_active(r, own)
        return PolicyWrite(new_identities=[ident], tuple_writes=tuples)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return identity_event(
            svc, caller, "identity.created", store_id, revision, ident,
            {"owners": list(own), "source": src, "display_name": name},
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    svc.graphs.catch_up(store_id)
    return result.identities[0]


@audited(None)
def get_identity(svc: Services, caller: Caller, store_id: str, node: str) -> Identity:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    kind, id_ = parse_node(node)
    found = svc.storage.get_identity(store_id, kind, id_)
    if found is None:
        raise IdentityNotFoundError(f"identity {node!r} not found", details={"identity": node})
    return found


@audited(None)
def list_identities(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    kind: str | None = None,
    status: str | None = None,
    owner: str | None = None,
    orphaned: bool | None = None,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[Identity]:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    if kind is not None:
        check_kind(kind)
    if status is not None and status not in IDENTITY_STATUSES:
        raise ValidationError(
            f"unknown status {status!r}: one of {', '.join(IDENTITY_STATUSES)}",
            details={"status": str(status)[:100]},
        )
    if owner is not None:
        check_owner(owner)
    if orphaned is not None and not isinstance(orphaned, bool):
        raise ValidationError("orphaned must be true or false")
    size = check_page_size(page_size, svc.settings.max_page_size)
    return svc.storage.list_identities(
        store_id, kind=kind, status=status, owner=owner, orphaned=orphaned,
        page_size=size, continuation_token=continuation_token,
    )  # fmt: skip


def _not_deprovisioned(ident: Identity, action: str) -> None:
    if ident.status == "deprovisioned":
        raise IdentityStateError(
            f"identity {ident.node!r} is deprovisioned; it cannot be {action}",
            details={"identity": ident.node, "status": ident.status},
        )


@audited("identity.updated")
def update_identity(
    svc: Services,
    caller: Caller,
    store_id: str,
    node: str,
    *,
    display_name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Identity:
    """Replace the display name and/or the attributes (the whole object). Giving neither
    returns the identity unchanged (no revision, no event)."""
    authorize(svc, caller, Permission.MANAGE_IDENTITIES, store_id)
    parse_node(node)
    name = None if display_name is None else _display_name(display_name)
    attrs = None if attributes is None else _attributes(attributes)
    now = svc.clock.now()
    changed: list[str] = []
    updated: list[Identity] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        changed.clear()
        updated.clear()
        ident = _load(r, node)
        _not_deprovisioned(ident, "updated")
        new = ident
        if name is not None and name != ident.display_name:
            new = dataclasses.replace(new, display_name=name)
            changed.append("display_name")
        if attrs is not None and attrs != ident.attributes:
            new = dataclasses.replace(new, attributes=attrs)
            changed.append("attributes")
        updated.append(new)
        if not changed:
            return PolicyWrite()
        return PolicyWrite(identities=[dataclasses.replace(new, updated_at=now)])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return identity_event(
            svc, caller, "identity.updated", store_id, revision, updated[0], {"changed": changed}
        )

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        return updated[0]
    svc.graphs.catch_up(store_id)
    return result.identities[0]


@audited("identity.owners_changed")
def set_identity_owners(
    svc: Services,
    caller: Caller,
    store_id: str,
    node: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> Identity:
    """Add and remove owners of a non-human identity (the owner tuples change with them).
    Removing the last owner is ``owner_required``; added owners must be active. The
    ``orphaned`` flag is recomputed (an identity with an active owner again is no longer
    orphaned)."""
    authorize(svc, caller, Permission.MANAGE_IDENTITIES, store_id)
    kind, _ = parse_node(node)
    if kind not in NON_HUMAN_KINDS:
        raise ValidationError("only non-human identities have owners", details={"identity": node})
    to_add, to_remove = _owners(add, "add"), _owners(remove, "remove")
    both = set(to_add) & set(to_remove)
    if both:
        raise ValidationError(
            f"an owner cannot be both added and removed: {sorted(both)}",
            details={"owners": sorted(both)},
        )
    if to_add:
        check_in_model(svc, caller, store_id, node, [owner_tuple(node, o) for o in to_add])
    now = svc.clock.now()
    seen: list[Identity] = []

    def plan(r: PolicyTxReader) -> PolicyWrite:
        seen.clear()
        ident = _load(r, node)
        seen.append(ident)
        _not_deprovisioned(ident, "given owners")
        _check_owners_active(r, to_add)
        owners = [o for o in ident.owners if o not in to_remove]
        owners += [o for o in to_add if o not in owners]
        if not owners:
            raise OwnerRequiredError(
                f"{node!r} would be left without an owner", details={"identity": node}
            )
        if len(owners) > MAX_OWNERS:
            raise ValidationError(f"at most {MAX_OWNERS} owners", details={"identity": node})
        if tuple(owners) == ident.owners:
            return PolicyWrite()
        new = dataclasses.replace(
            ident, owners=tuple(owners), orphaned=is_orphaned(r, owners, {}), updated_at=now
        )
        seen.append(new)
        added = [o for o in owners if o not in ident.owners]
        removed = [o for o in ident.owners if o not in owners]
        return PolicyWrite(
            identities=[new],
            tuple_writes=[owner_tuple(node, o) for o in added],
            tuple_deletes=[owner_tuple(node, o) for o in removed],
        )

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        old, new = seen[0], seen[-1]
        return identity_event(
            svc, caller, "identity.owners_changed", store_id, revision, new,
            {
                "added": [o for o in new.owners if o not in old.owners],
                "removed": [o for o in old.owners if o not in new.owners],
                "owners": list(new.owners), "orphaned": new.orphaned,
            },
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        return seen[0]
    svc.graphs.catch_up(store_id)
    return result.identities[0]


@audited("identity.suspended")
def suspend_identity(
    svc: Services, caller: Caller, store_id: str, node: str, *, reason: str | None = None
) -> Identity:
    """The kill switch: the identity denies in every decision it appears in, and every
    delegation it gave or holds — with everything below them — is revoked, in one
    transaction (one ``delegation.revoked`` event each). Suspending a suspended identity
    changes nothing."""
    authorize(svc, caller, Permission.MANAGE_IDENTITIES, store_id)
    parse_node(node)
    why = check_reason(reason)
    now = svc.clock.now()
    state: dict[str, Any] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        ident = _load(r, node)
        state["before"] = ident
        _not_deprovisioned(ident, "suspended")
        if ident.status == "suspended":
            return PolicyWrite()
        new = dataclasses.replace(ident, status="suspended", updated_at=now)
        revoked = revoke_all(
            r, r.delegations_of(node), now=now, reason=why or f"{node} suspended",
            cause="identity_suspended",
        )  # fmt: skip
        state["new"], state["revoked"] = new, revoked
        return PolicyWrite(identities=[new], delegations=[rv.delegation for rv in revoked])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        revoked: list[Revocation] = state["revoked"]
        return identity_event(
            svc, caller, "identity.suspended", store_id, revision, state["new"],
            {"reason": why, "revoked": [rv.delegation.id for rv in revoked]},
        ) + revocation_events(svc, caller, store_id, revision, revoked)  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        before: Identity = state["before"]
        return before
    svc.graphs.catch_up(store_id)
    return result.identities[0]


@audited("identity.reactivated")
def reactivate_identity(svc: Services, caller: Caller, store_id: str, node: str) -> Identity:
    """Make a suspended identity active again. Its revoked delegations stay revoked (grant
    new ones). A deprovisioned identity cannot come back (``identity_state``), nor an
    orphaned one until it has an active owner again."""
    authorize(svc, caller, Permission.MANAGE_IDENTITIES, store_id)
    parse_node(node)
    now = svc.clock.now()
    state: dict[str, Identity] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        ident = _load(r, node)
        state["before"] = ident
        _not_deprovisioned(ident, "reactivated")
        if ident.status == "active":
            return PolicyWrite()
        if ident.kind in NON_HUMAN_KINDS and is_orphaned(r, ident.owners, {}):
            raise IdentityStateError(
                f"{node!r} has no active owner; give it one before reactivating it",
                details={"identity": node, "orphaned": True},
            )
        new = dataclasses.replace(ident, status="active", orphaned=False, updated_at=now)
        state["new"] = new
        return PolicyWrite(identities=[new])

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return identity_event(
            svc, caller, "identity.reactivated", store_id, revision, state["new"], {}
        )

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        return state["before"]
    svc.graphs.catch_up(store_id)
    return result.identities[0]


@dataclasses.dataclass
class Deprovision:
    """What deprovisioning one identity changes, planned inside a transaction
    (:func:`plan_deprovision`): the identity itself, the NHIs it leaves orphaned (each
    with whether the store policy suspended it), every identity row changed (by node) and
    every delegation revoked."""

    node: str
    identity: Identity
    changed: dict[str, Identity]
    revoked: list[Revocation]
    orphans: list[tuple[Identity, bool]]

    def write(self) -> PolicyWrite:
        return PolicyWrite(
            identities=list(self.changed.values()),
            delegations=[rv.delegation for rv in self.revoked],
        )


def plan_deprovision(
    r: PolicyTxReader, ident: Identity, *, now: float, reason: str | None
) -> Deprovision | None:
    """Plan deprovisioning ``ident`` (as the transaction reads it, possibly with other
    changes already applied, e.g. new attributes): None when it is already deprovisioned.
    Its delegations (given and held, and everything below) are revoked; each NHI it owned
    that is left without an active owner is flagged orphaned and, when the store policy
    has ``suspend_orphans``, suspended with its delegations revoked. Used by
    :func:`deprovision_identity` and by SCIM (``active: false``, DELETE)."""
    node = ident.node
    if ident.status == "deprovisioned":
        return None
    new = dataclasses.replace(ident, status="deprovisioned", updated_at=now)
    changed: dict[str, Identity] = {node: new}
    done: dict[str, Revocation] = {}
    revoked = revoke_all(
        r, r.delegations_of(node), now=now, reason=reason or f"{node} deprovisioned",
        cause="identity_deprovisioned",
    )  # fmt: skip
    done.update((rv.delegation.id, rv) for rv in revoked)
    orphans: list[tuple[Identity, bool]] = []
    suspend = r.store_policy().suspend_orphans
    for owned in r.identities_owned_by(node) if ident.kind == "human" else []:
        if owned.status == "deprovisioned" or owned.orphaned:
            continue
        if not is_orphaned(r, owned.owners, changed):
            continue
        o = dataclasses.replace(owned, orphaned=True, updated_at=now)
        suspended = suspend and owned.status == "active"
        if suspended:
            o = dataclasses.replace(o, status="suspended")
            more = revoke_all(
                r, r.delegations_of(owned.node), now=now,
                reason=f"{owned.node} suspended: orphaned", cause="identity_suspended",
                already=done,
            )  # fmt: skip
            done.update((rv.delegation.id, rv) for rv in more)
            revoked += more
        changed[owned.node] = o
        orphans.append((o, suspended))
    return Deprovision(node, new, changed, revoked, orphans)


def deprovision_events(
    services: Services,
    caller: Caller,
    store_id: str,
    revision: int,
    d: Deprovision,
    *,
    reason: str | None,
) -> list[tuple[LedgerEvent, str]]:
    """The events of a planned deprovisioning: ``identity.deprovisioned``, then per orphan
    ``identity.orphaned`` (and ``identity.suspended``), then one ``delegation.revoked`` each."""
    out = identity_event(
        services, caller, "identity.deprovisioned", store_id, revision, d.identity,
        {"reason": reason, "revoked": [rv.delegation.id for rv in d.revoked]},
    )  # fmt: skip
    for o, suspended in d.orphans:
        out += identity_event(
            services, caller, "identity.orphaned", store_id, revision, o,
            {"cause": d.node, "owners": list(o.owners), "suspended": suspended},
        )  # fmt: skip
        if suspended:
            out += identity_event(
                services, caller, "identity.suspended", store_id, revision, o,
                {"reason": "orphaned", "cause": d.node},
            )  # fmt: skip
    return out + revocation_events(services, caller, store_id, revision, d.revoked)


@audited("identity.deprovisioned")
def deprovision_identity(
    svc: Services, caller: Caller, store_id: str, node: str, *, reason: str | None = None
) -> Identity:
    """Deprovision an identity for good: its delegations (given and held, and everything
    below) are revoked; each NHI it owned that is left without an active owner is flagged
    orphaned (``identity.orphaned``) and, when the store policy has ``suspend_orphans``,
    suspended with its delegations revoked — all in one transaction. Deprovisioning a
    deprovisioned identity changes nothing."""
    authorize(svc, caller, Permission.MANAGE_IDENTITIES, store_id)
    parse_node(node)
    why = check_reason(reason)
    now = svc.clock.now()
    state: dict[str, Any] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        ident = _load(r, node)
        state["before"] = ident
        d = plan_deprovision(r, ident, now=now, reason=why)
        if d is None:
            return PolicyWrite()
        state["plan"] = d
        return d.write()

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        return deprovision_events(svc, caller, store_id, revision, state["plan"], reason=why)

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed:
        before: Identity = state["before"]
        return before
    svc.graphs.catch_up(store_id)
    return result.identities[0]

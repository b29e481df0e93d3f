"""The control plane's own authorization: the built-in system model, decided by our engine.

Keyplane dogfoods its decisions. Who may do what *to Keyplane itself* — create stores,
manage keys, read or write a store — is an OpenFGA model (:data:`SYSTEM_MODEL_DSL`) kept
in a reserved store, ``_system``, whose tuples are the role grants of API keys. Every
service operation asks :func:`allowed`, which runs an ordinary check on Keyplane's own
engine (the same :class:`~keyplane.graph.engine.Engine`, over the same changelog-fed
in-memory graph as any store)::

    check(user="key:<id>", relation=<permission>, object="system:keyplane" | "store:<id>")

Role grants (written when a key is created, deleted when it is revoked):

==================  ===========================================  ===========================
role                tuple                                        allows
==================  ===========================================  ===========================
``admin``           ``system:keyplane#admin@key:<id>``           everything
``auditor``         ``system:keyplane#auditor@key:<id>``         list stores; read every
                                                                 store, its tuples, changes;
                                                                 query; read ``_system``
``writer``          ``system:keyplane#writer@key:<id>``          list stores; on every store:
                                                                 read, query, read/write
                                                                 tuples and models, changes
``reader``          ``system:keyplane#reader@key:<id>``          list stores; on every store:
                                                                 read, query, read tuples
``writer:<store>``  ``store:<store>#writer@key:<id>``            ``writer``, on that store only
``reader:<store>``  ``store:<store>#reader@key:<id>``            ``reader``, on that store only
==================  ===========================================  ===========================

The ledger: ``can_read_ledger`` (query, export, verify, public keys) is granted to admins,
auditors and writers (of every store, or of that store); ``can_manage_ledger`` (retention,
pruning, webhooks) to admins only.

The identity plane: ``can_read_identities`` (identities, delegations, guardrails, the store
policy) goes with reading a store; ``can_manage_identities`` and ``can_manage_delegations``
with writing it (admins, writers); ``can_manage_policy`` (guardrails, the store policy:
action map, delegation caps) to admins only — guardrails restrict what writers grant;
``can_manage_credentials`` (client credentials of non-human identities) with writing a
store (admins, writers). The key events in ``_system``'s own ledger are read by
admins and auditors. A change to :data:`SYSTEM_MODEL_DSL` is written as a new system model
version by :func:`ensure_system` when a process starts, so stored system models upgrade.

Every store is linked to the system object (``store:<id>#system@system:keyplane``),
written when the store is created and deleted, with all its grants, when it is deleted.
A check on a store that has no link (a missing store, so that an admin gets a plain
``store_not_found`` rather than ``permission_denied``) is retried with that link as a
contextual tuple: system-wide roles reach every store, per-store grants only their own.

Deny by default: a key without tuples, an unknown permission, a malformed store id, or a
caller that is not a key is refused. The ``_system`` store is never writable through the
tuple or model API (not even by the in-process system caller: see
:func:`keyplane.service.auth.authorize`); admins and auditors may read it, which makes its
changelog the audit trail of role grants. It is hidden from ``list_stores``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from keyplane.errors import StoreNotFoundError, ValidationError
from keyplane.graph.language import load_model
from keyplane.graph.tuples import Tuple
from keyplane.service import audit
from keyplane.service.auth import (
    PERMISSIONS,
    SYSTEM_PERMISSIONS,
    SYSTEM_STORE_ID,
    Caller,
    Permission,
)
from keyplane.storage.sql import STORE_ID_RE

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = [
    "GLOBAL_ROLES",
    "STORE_ROLES",
    "SYSTEM_MODEL_DSL",
    "SYSTEM_OBJECT",
    "SYSTEM_STORE_ID",
    "allowed",
    "ensure_system",
    "grant_roles",
    "link_store",
    "parse_role",
    "revoke_grants",
    "unlink_store",
]

SYSTEM_OBJECT = "system:keyplane"
GLOBAL_ROLES = ("admin", "auditor", "writer", "reader")
STORE_ROLES = ("writer", "reader", "provisioner")

SYSTEM_MODEL_DSL = """\
model
  schema 1.1

type key

type system
  relations
    define admin: [key]
    define auditor: [key]
    define writer: [key]
    define reader: [key]
    define can_create_store: admin
    define can_list_stores: admin or auditor or writer or reader
    define can_manage_keys: admin
    define can_audit: admin or auditor

type store
  relations
    define system: [system]
    define admin: admin from system
    define auditor: auditor from system
    define writer: [key] or writer from system
    define reader: [key] or reader from system
    define can_read_store: admin or auditor or writer or reader
    define can_query: admin or auditor or writer or reader
    define can_read_tuples: admin or auditor or writer or reader
    define can_read_changes: admin or auditor or writer
    define can_write_tuples: admin or writer
    define can_write_model: admin or writer
    define can_delete_store: admin
    define can_read_ledger: admin or auditor or writer
    define can_manage_ledger: admin
    define can_read_identities: admin or auditor or writer or reader
    define can_manage_identities: admin or writer
    define can_manage_delegations: admin or writer
    define can_manage_policy: admin
    define can_manage_credentials: admin or writer
    define can_manage_entitlements: admin
    define can_request_access: admin or writer
    define can_approve_requests: admin or writer
    define can_manage_reviews: admin
    define can_read_posture: admin or auditor or writer
    define can_read_gateway: admin or auditor or writer or reader
    define can_manage_gateway: admin
    define provisioner: [key]
    define can_provision: admin or provisioner
    define can_import_sources: admin or writer
"""

#: the model as stored (a JSON round trip, so it compares equal to what storage returns)
SYSTEM_MODEL: dict[str, Any] = json.loads(json.dumps(load_model(SYSTEM_MODEL_DSL)))

# What reading the reserved store itself maps to: the system object's ``can_audit``.
_SYSTEM_STORE_READS = frozenset(
    {
        Permission.READ_STORE,
        Permission.QUERY,
        Permission.READ_TUPLES,
        Permission.READ_CHANGES,
        Permission.READ_LEDGER,
    }
)
_ensure_lock = threading.Lock()
_PAGE = 1000


# ------------------------------------------------------------------------------ roles


def parse_role(role: str) -> tuple[str, str | None]:
    """``"admin"`` → ``("admin", None)``; ``"writer:acme"`` → ``("writer", "acme")``.

    Raises ValidationError for anything else (unknown role, role that takes no store,
    malformed or reserved store id).
    """
    if not isinstance(role, str):
        raise ValidationError(f"a role must be a string, got {role!r}")
    name, sep, store = role.partition(":")
    if not sep:
        if name in GLOBAL_ROLES:
            return name, None
    elif name in STORE_ROLES:
        if store == SYSTEM_STORE_ID or not STORE_ID_RE.match(store):
            raise ValidationError(
                f"invalid store id in role {role!r}", details={"role": role, "store_id": store}
            )
        return name, store
    raise ValidationError(
        f"unknown role {role!r}: use admin, auditor, writer, reader, writer:<store>, "
        "reader:<store> or provisioner:<store>",
        details={"role": role},
    )


def _role_tuple(key_id: str, role: str) -> Tuple:
    name, store = parse_role(role)
    obj = SYSTEM_OBJECT if store is None else f"store:{store}"
    return Tuple(obj, name, f"key:{key_id}")


# ------------------------------------------------------------------------------ the system store


def ensure_system(svc: Services) -> str:
    """Create the system store and model if missing; return the model id this process uses.

    Idempotent and cheap after the first call in a process (the id is kept in
    ``svc.auth``). When the stored latest model differs from :data:`SYSTEM_MODEL` (an
    upgrade) a new version is written. When this call creates the store, every existing
    store is linked to the system object.
    """
    mid = svc.auth.system_model_id
    if mid is not None:
        return mid
    with _ensure_lock:
        if svc.auth.system_model_id is not None:
            return svc.auth.system_model_id
        created = False
        me = Caller.system_caller()
        try:
            svc.storage.get_store(SYSTEM_STORE_ID)
        except StoreNotFoundError:
            # each change commits with its ledger event (see audit.change_events)
            created = svc.storage.ensure_reserved_store(
                SYSTEM_STORE_ID,
                "Keyplane system",
                ledger_events=lambda info: audit.change_events(
                    svc, me, "store.created", info.id, details={"system": True}
                ),
            )
        latest = svc.storage.latest_model(SYSTEM_STORE_ID)
        if latest is None or latest.model != SYSTEM_MODEL:
            latest = svc.storage.write_model(
                SYSTEM_STORE_ID,
                SYSTEM_MODEL,
                ledger_events=lambda rec: audit.change_events(
                    svc, me, "model.written", rec.store_id, model_id=rec.id, revision=rec.revision
                ),
            )
        svc.auth.system_model_id = latest.id
        if created:
            _link_existing_stores(svc)
        return latest.id


def _link_existing_stores(svc: Services) -> None:
    token: str | None = None
    while True:
        page = svc.storage.list_stores(page_size=_PAGE, continuation_token=token)
        links = [_link(s.id) for s in page.items if s.id != SYSTEM_STORE_ID]
        if links:
            _write(svc, writes=links)
        token = page.continuation_token
        if token is None:
            return


def _link(store_id: str) -> Tuple:
    return Tuple(f"store:{store_id}", "system", SYSTEM_OBJECT)


def _write(svc: Services, *, writes: Sequence[Tuple] = (), deletes: Sequence[Tuple] = ()) -> None:
    """Write to the system store (idempotently) and apply the change to this process's graph."""
    if not writes and not deletes:
        return
    mid = ensure_system(svc)
    model = svc.graphs.model(SYSTEM_STORE_ID, mid)
    for t in writes:
        model.validate_tuple(t)
    svc.storage.write(SYSTEM_STORE_ID, writes=writes, deletes=deletes, idempotent=True)
    svc.graphs.catch_up(SYSTEM_STORE_ID)


def _read_all(svc: Services, *, object: str | None = None, user: str | None = None) -> list[Tuple]:
    found: list[Tuple] = []
    token: str | None = None
    while True:
        page = svc.storage.read_tuples(
            SYSTEM_STORE_ID, object=object, user=user, page_size=_PAGE, continuation_token=token
        )
        found.extend(page.items)
        token = page.continuation_token
        if token is None:
            return found


def link_store(svc: Services, store_id: str) -> None:
    """Put a new store under the system object (called by ``create_store``)."""
    ensure_system(svc)
    _write(svc, writes=[_link(store_id)])


def unlink_store(svc: Services, store_id: str) -> None:
    """Delete a store's link and every grant on it (called by ``delete_store``, before the
    store itself goes: if this fails the store stays, without grants — fail closed)."""
    ensure_system(svc)
    _write(svc, deletes=_read_all(svc, object=f"store:{store_id}"))


def grant_roles(svc: Services, key_id: str, roles: Iterable[str]) -> None:
    """Write the tuples that give ``key:<key_id>`` its roles."""
    _write(svc, writes=[_role_tuple(key_id, r) for r in dict.fromkeys(roles)])


def revoke_grants(svc: Services, key_id: str) -> None:
    """Delete every tuple that names ``key:<key_id>``: from now on it is denied everything."""
    ensure_system(svc)
    _write(svc, deletes=_read_all(svc, user=f"key:{key_id}"))


def refresh(svc: Services) -> None:
    """Apply every committed grant change to this process's system graph now."""
    ensure_system(svc)
    svc.graphs.catch_up(SYSTEM_STORE_ID)


# ------------------------------------------------------------------------------ decisions


def allowed(svc: Services, caller: Caller, permission: str, store_id: str | None) -> bool:
    """Whether the system model grants ``permission`` to ``caller`` (on ``store_id``).

    Decided by Keyplane's engine over the ``_system`` store's in-memory graph; anything
    not granted — including a caller that is not ``key:…`` — is denied.
    """
    principal = caller.principal
    if not principal.startswith("key:") or permission not in PERMISSIONS:
        return False
    if permission in SYSTEM_PERMISSIONS:
        obj, relation = SYSTEM_OBJECT, permission
    elif store_id is None:
        return False
    elif store_id == SYSTEM_STORE_ID:
        if permission not in _SYSTEM_STORE_READS:
            return False
        obj, relation = SYSTEM_OBJECT, "can_audit"
    else:
        obj, relation = f"store:{store_id}", permission
    mid = ensure_system(svc)
    engine, graph = svc.graphs.engine(SYSTEM_STORE_ID, mid)
    try:
        with graph.lock:
            if engine.check(principal, relation, obj):
                return True
            if obj == SYSTEM_OBJECT or store_id is None:
                return False
            # an unlinked (e.g. missing) store: system-wide roles still reach it
            return engine.check(principal, relation, obj, contextual_tuples=[_link(store_id)])
    except ValidationError:
        return False  # a malformed store id or principal: nothing can be granted on it

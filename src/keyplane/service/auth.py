"""Who is calling, and may they? The control plane authorizes its own callers.

Every service function takes a :class:`Caller` and calls :func:`authorize` with one of the
permissions below before doing anything. In-process embedding uses :meth:`Caller.system`
(whoever holds the database holds everything); every network surface authenticates a
bearer API key into a key caller, whose permissions are decided by Keyplane's own engine
on the built-in system model (see :mod:`keyplane.service.system`). Deny by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keyplane.errors import PermissionDeniedError

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = [
    "PERMISSIONS",
    "SYSTEM_PERMISSIONS",
    "SYSTEM_STORE_ID",
    "Caller",
    "Permission",
    "authorize",
]

#: the reserved store holding the system model and the role grants of API keys
SYSTEM_STORE_ID = "_system"


class Permission:
    """The permissions service operations ask for; relations of the system model."""

    # on the system object
    CREATE_STORE = "can_create_store"
    LIST_STORES = "can_list_stores"
    MANAGE_KEYS = "can_manage_keys"
    # on a store object
    READ_STORE = "can_read_store"  # get the store, read models
    QUERY = "can_query"  # check, batch check, expand, list objects/users, explain
    READ_TUPLES = "can_read_tuples"
    READ_CHANGES = "can_read_changes"
    WRITE_TUPLES = "can_write_tuples"
    WRITE_MODEL = "can_write_model"
    DELETE_STORE = "can_delete_store"
    READ_LEDGER = "can_read_ledger"  # query, export, verify the store's ledger; its keys
    MANAGE_LEDGER = "can_manage_ledger"  # retention, pruning, webhooks (admin)
    READ_IDENTITIES = "can_read_identities"  # identities, delegations, guardrails, store policy
    MANAGE_IDENTITIES = "can_manage_identities"  # create/update/suspend/deprovision, owners
    MANAGE_DELEGATIONS = "can_manage_delegations"  # create and revoke delegations
    MANAGE_POLICY = "can_manage_policy"  # guardrails and the store policy (admin)
    MANAGE_CREDENTIALS = "can_manage_credentials"  # client credentials of NHIs
    MANAGE_ENTITLEMENTS = "can_manage_entitlements"  # requestable entitlements (admin)
    REQUEST_ACCESS = "can_request_access"  # file and cancel access requests
    APPROVE_REQUESTS = "can_approve_requests"  # approve/deny requests, revoke grants
    MANAGE_REVIEWS = "can_manage_reviews"  # create, decide, close review campaigns
    READ_POSTURE = "can_read_posture"  # over-privilege, NHI inventory and posture reports
    READ_GATEWAY = "can_read_gateway"  # the MCP gateway's servers, tools, toolsets, settings
    MANAGE_GATEWAY = "can_manage_gateway"  # register servers, approve tools, kill switches (admin)
    PROVISION = "can_provision"  # SCIM 2.0 provisioning of users, groups, agents (IdP keys)
    IMPORT_SOURCES = "can_import_sources"  # import AWS IAM, Kubernetes, GitHub into the graph


PERMISSIONS: tuple[str, ...] = tuple(
    v for k, v in vars(Permission).items() if k.isupper() and isinstance(v, str)
)

SYSTEM_PERMISSIONS = frozenset(
    {Permission.CREATE_STORE, Permission.LIST_STORES, Permission.MANAGE_KEYS}
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal behind a call.

    ``principal`` is the subject checked against the system model (``key:<id>``);
    ``system`` marks the trusted in-process caller. ``read_only`` callers (e.g. an MCP
    server started read-only) are refused every write whatever their roles.
    """

    principal: str
    key_id: str | None = None
    owner: str | None = None
    system: bool = False
    read_only: bool = False

    @classmethod
    def system_caller(cls) -> Caller:
        return cls(principal="system", system=True)

    def with_read_only(self) -> Caller:
        return Caller(self.principal, self.key_id, self.owner, self.system, True)


_WRITES = frozenset(
    {
        Permission.CREATE_STORE,
        Permission.MANAGE_KEYS,
        Permission.WRITE_TUPLES,
        Permission.WRITE_MODEL,
        Permission.DELETE_STORE,
        Permission.MANAGE_LEDGER,
        Permission.MANAGE_IDENTITIES,
        Permission.MANAGE_DELEGATIONS,
        Permission.MANAGE_POLICY,
        Permission.MANAGE_CREDENTIALS,
        Permission.MANAGE_ENTITLEMENTS,
        Permission.REQUEST_ACCESS,
        Permission.APPROVE_REQUESTS,
        Permission.MANAGE_REVIEWS,
        Permission.MANAGE_GATEWAY,
        Permission.PROVISION,
        Permission.IMPORT_SOURCES,
    }
)


_SYSTEM_STORE_LOCKED = frozenset(
    {
        Permission.WRITE_TUPLES,
        Permission.WRITE_MODEL,
        Permission.DELETE_STORE,
        Permission.MANAGE_IDENTITIES,
        Permission.MANAGE_DELEGATIONS,
        Permission.MANAGE_POLICY,
        Permission.MANAGE_CREDENTIALS,
        Permission.MANAGE_ENTITLEMENTS,
        Permission.REQUEST_ACCESS,
        Permission.APPROVE_REQUESTS,
        Permission.MANAGE_REVIEWS,
        Permission.MANAGE_GATEWAY,
        Permission.PROVISION,
        Permission.IMPORT_SOURCES,
    }
)


def authorize(svc: Services, caller: Caller, permission: str, store_id: str | None = None) -> None:
    """Raise :class:`PermissionDeniedError` unless ``caller`` holds ``permission``.

    Store permissions are checked on ``store:<store_id>``; system permissions on
    ``system:keyplane``. The decision is made by the engine over the system store.
    """
    if caller.read_only and permission in _WRITES:
        raise PermissionDeniedError(
            f"{permission.removeprefix('can_').replace('_', ' ')} refused: this caller is read-only",
            details={"permission": permission, "read_only": True},
        )
    if store_id == SYSTEM_STORE_ID and permission in _SYSTEM_STORE_LOCKED:
        # role grants change only through API keys, so they always match the keys table
        raise PermissionDeniedError(
            f"the system store {SYSTEM_STORE_ID!r} is managed by Keyplane: grant and revoke "
            "roles through API keys",
            details={"permission": permission, "store": store_id},
        )
    if caller.system:
        return
    from keyplane.service.system import allowed  # local: system.py imports this module

    if not allowed(svc, caller, permission, store_id):
        target = "the system" if store_id is None else f"store {store_id!r}"
        raise PermissionDeniedError(
            f"{caller.principal} may not {permission.removeprefix('can_').replace('_', ' ')} on {target}",
            details={"permission": permission, "store": store_id, "principal": caller.principal},
        )

"""The store policy: the delegation duration cap, orphan handling and the action map.

* ``max_delegation_seconds`` caps ``expires_at - not_before`` of every new delegation
  (default 86,400: 24 h);
* ``suspend_orphans``: when deprovisioning an owner leaves a non-human identity without an
  active owner, suspend it too (it is always flagged ``orphaned``);
* ``max_credential_seconds`` caps ``expires_at - created`` of every new client credential
  (default 7,776,000: 90 days; see :mod:`keyplane.service.credentials`);
* ``actions``: store-level action names → relations, used by decisions (and AuthZEN
  ``action.name``): ``decide(..., action="read")`` checks ``actions.get("read", "read")``.

A store that never set its policy has the defaults (revision 0).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from keyplane.errors import ValidationError
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.records import StorePolicy
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.storage.base import PolicyTxReader, PolicyWrite

__all__ = ["get_store_policy", "update_store_policy"]

#: the longest delegation a store policy may allow (one year)
MAX_DELEGATION_CAP = 366 * 86400
#: the longest client credential a store policy may allow (two years)
MAX_CREDENTIAL_CAP = 731 * 86400
MAX_ACTIONS = 1000
_NAME_RE = re.compile(r"^[^\s#:*]{1,128}$")


def _actions(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("actions must be an object: action name -> relation")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _NAME_RE.match(k):
            raise ValidationError(f"invalid action name {k!r}", details={"action": str(k)[:200]})
        if not isinstance(v, str) or not _NAME_RE.match(v):
            raise ValidationError(f"invalid relation {v!r} for action {k!r}", details={"action": k})
        out[k] = v
    if len(out) > MAX_ACTIONS:
        raise ValidationError(f"at most {MAX_ACTIONS} actions")
    return out


@audited(None)
def get_store_policy(svc: Services, caller: Caller, store_id: str) -> StorePolicy:
    authorize(svc, caller, Permission.READ_IDENTITIES, store_id)
    return svc.storage.get_store_policy(store_id)


@audited("policy.updated")
def update_store_policy(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    max_delegation_seconds: int | None = None,
    suspend_orphans: bool | None = None,
    actions: Mapping[str, str] | None = None,
    max_credential_seconds: int | None = None,
) -> StorePolicy:
    """Change the given settings (``actions`` replaces the whole map). Existing delegations
    keep their expiry; the cap applies to new ones. Nothing given, or nothing different:
    the policy is returned unchanged (no revision, no event)."""
    authorize(svc, caller, Permission.MANAGE_POLICY, store_id)
    if max_delegation_seconds is not None and (
        isinstance(max_delegation_seconds, bool)
        or not isinstance(max_delegation_seconds, int)
        or not 1 <= max_delegation_seconds <= MAX_DELEGATION_CAP
    ):
        raise ValidationError(
            f"max_delegation_seconds must be an integer in 1..{MAX_DELEGATION_CAP}",
            details={"max_delegation_seconds": str(max_delegation_seconds)[:50]},
        )
    if max_credential_seconds is not None and (
        isinstance(max_credential_seconds, bool)
        or not isinstance(max_credential_seconds, int)
        or not 60 <= max_credential_seconds <= MAX_CREDENTIAL_CAP
    ):
        raise ValidationError(
            f"max_credential_seconds must be an integer in 60..{MAX_CREDENTIAL_CAP}",
            details={"max_credential_seconds": str(max_credential_seconds)[:50]},
        )
    if suspend_orphans is not None and not isinstance(suspend_orphans, bool):
        raise ValidationError("suspend_orphans must be true or false")
    acts = None if actions is None else _actions(actions)
    state: dict[str, StorePolicy] = {}

    def plan(r: PolicyTxReader) -> PolicyWrite:
        old = r.store_policy()
        state["old"] = old
        new = dataclasses.replace(
            old,
            max_delegation_seconds=old.max_delegation_seconds
            if max_delegation_seconds is None
            else max_delegation_seconds,
            suspend_orphans=old.suspend_orphans if suspend_orphans is None else suspend_orphans,
            actions=old.actions if acts is None else acts,
            max_credential_seconds=old.max_credential_seconds
            if max_credential_seconds is None
            else max_credential_seconds,
        )
        if new == old:
            return PolicyWrite()
        state["new"] = new
        return PolicyWrite(store_policy=new)

    def events(revision: int) -> list[tuple[LedgerEvent, str]]:
        new = state["new"]
        return audit.change_events(
            svc, caller, "policy.updated", store_id, resource=store_id, action="update",
            revision=revision,
            details={
                "max_delegation_seconds": new.max_delegation_seconds,
                "suspend_orphans": new.suspend_orphans, "actions": dict(new.actions),
                "max_credential_seconds": new.max_credential_seconds,
            },
        )  # fmt: skip

    result = svc.storage.write_policy(store_id, plan, ledger_events=events)
    if not result.changed or result.store_policy is None:
        return state["old"]
    svc.graphs.catch_up(store_id)
    return result.store_policy

"""Delegation scopes and the containment rule: a sub-delegation may only narrow its parent.

A scope is a tuple of :class:`~keyplane.policy.records.ScopeGrant`: actions (relations or
store-level action names) on one object (``document:roadmap``) or on every object of a
type (``document:*``), optionally limited to named MCP tools (a grant naming no tools
does not restrict tools). :func:`check_contained` is the whole rule of ISSUE 5 §2 — a
child is contained in its parent when

* the parent may be sub-delegated (``parent.max_depth >= 1``) and the child allows fewer
  further hops (``child.max_depth < parent.max_depth``)                        — ``depth``
* every action of every child grant is covered by one parent grant: the same action, the
  same object or the parent's ``type:*`` over it                                — ``scope``
* ... and, when that parent grant names tools, the child grant names tools, all of them
  among the parent's                                                            — ``tools``
* the child's purposes are a subset of the parent's (a parent with none allows any; a
  child with none, under a parent with some, would allow any: wider)         — ``purposes``
* ``not_before >= parent.not_before``                                       — ``not_before``
* ``expires_at <= parent.expires_at``                                       — ``expires_at``

Anything wider raises :class:`~keyplane.errors.DelegationWideningError` whose details name
the widening (``{"widening": "scope", "grant": ..., "action": ...}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyplane.errors import DelegationInvalidError, DelegationWideningError
from keyplane.policy.records import ScopeGrant

__all__ = [
    "check_contained",
    "grant_covers",
    "parse_scope",
    "resource_covers",
    "scope_to_json",
]

#: the most grants one delegation may carry
MAX_GRANTS = 100


def _invalid(message: str, **details: Any) -> DelegationInvalidError:
    return DelegationInvalidError(message, details=details)


def _names(value: Any, what: str, *, allow_empty: bool) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _invalid(f"{what} must be a list of strings", field=what)
    out: list[str] = []
    for v in value:
        if not isinstance(v, str) or not v or len(v) > 256 or any(c.isspace() for c in v):
            raise _invalid(f"{what}: {v!r} is not a non-empty name without spaces", field=what)
        if v not in out:
            out.append(v)
    if not out and not allow_empty:
        raise _invalid(f"{what} must not be empty", field=what)
    return tuple(out)


def _resource(value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid("a grant's resource must be 'type:id' or 'type:*'", field="resource")
    t, sep, i = value.partition(":")
    if (
        not sep
        or not t
        or not i
        or any(c.isspace() or c in "#:*" for c in t)
        or any(c.isspace() or c == "#" for c in i)
        or ("*" in i and i != "*")
    ):
        raise _invalid(
            f"invalid resource {value!r}: 'type:id' (one object) or 'type:*' (every object)",
            field="resource",
            resource=value,
        )
    return value


def parse_scope(scope: Any) -> tuple[ScopeGrant, ...]:
    """A scope from ScopeGrants or JSON-like mappings ``{"actions", "resource", "tools"}``,
    validated (DelegationInvalidError on a bad shape)."""
    if isinstance(scope, str | bytes | Mapping) or not isinstance(scope, Iterable):
        raise _invalid("scope must be a list of grants {actions, resource, tools}", field="scope")
    grants: list[ScopeGrant] = []
    for item in scope:
        if isinstance(item, ScopeGrant):
            raw: Mapping[str, Any] = {
                "actions": item.actions,
                "resource": item.resource,
                "tools": item.tools,
            }
        elif isinstance(item, Mapping):
            raw = item
            unknown = set(raw) - {"actions", "resource", "tools"}
            if unknown:
                raise _invalid(f"unknown grant fields {sorted(unknown)}", field="scope")
        else:
            raise _invalid("each grant must be {actions, resource, tools}", field="scope")
        grants.append(
            ScopeGrant(
                _names(raw.get("actions"), "actions", allow_empty=False),
                _resource(raw.get("resource")),
                _names(raw.get("tools", ()), "tools", allow_empty=True),
            )
        )
    if not grants:
        raise _invalid("scope must hold at least one grant", field="scope")
    if len(grants) > MAX_GRANTS:
        raise _invalid(f"scope holds at most {MAX_GRANTS} grants", field="scope")
    return tuple(grants)


def scope_to_json(scope: Sequence[ScopeGrant]) -> list[dict[str, Any]]:
    return [
        {"actions": list(g.actions), "resource": g.resource, "tools": list(g.tools)} for g in scope
    ]


def resource_covers(parent: str, child: str) -> bool:
    """Whether a grant on ``parent`` ("doc:1" or "doc:*") covers ``child`` ("doc:1"/"doc:*")."""
    if parent == child:
        return True
    ptype, _, pid = parent.partition(":")
    return pid == "*" and child.partition(":")[0] == ptype


def grant_covers(parent: ScopeGrant, action: str, resource: str, tools: Sequence[str]) -> bool:
    """Whether ``parent`` covers ``action`` on ``resource`` for a grant naming ``tools``."""
    if action not in parent.actions or not resource_covers(parent.resource, resource):
        return False
    return not parent.tools or (bool(tools) and set(tools) <= set(parent.tools))


def _widening(message: str, **details: Any) -> DelegationWideningError:
    return DelegationWideningError(message, details=details)


def check_contained(
    *,
    parent_scope: Sequence[ScopeGrant],
    parent_purposes: Sequence[str],
    parent_not_before: float,
    parent_expires_at: float,
    parent_max_depth: int,
    scope: Sequence[ScopeGrant],
    purposes: Sequence[str],
    not_before: float,
    expires_at: float,
    max_depth: int,
) -> None:
    """Raise DelegationWideningError unless the child is contained in the parent."""
    if parent_max_depth < 1:
        raise _widening(
            "the parent delegation allows no further delegation (max_depth 0)",
            widening="depth",
            parent_max_depth=parent_max_depth,
            max_depth=max_depth,
        )
    if max_depth >= parent_max_depth:
        raise _widening(
            f"max_depth {max_depth} must be smaller than the parent's ({parent_max_depth})",
            widening="depth",
            parent_max_depth=parent_max_depth,
            max_depth=max_depth,
        )
    for g in scope:
        for action in g.actions:
            if any(grant_covers(p, action, g.resource, g.tools) for p in parent_scope):
                continue
            grant = {"actions": list(g.actions), "resource": g.resource, "tools": list(g.tools)}
            if any(
                action in p.actions and resource_covers(p.resource, g.resource)
                for p in parent_scope
            ):
                raise _widening(
                    f"{action!r} on {g.resource!r} is delegated for tools the parent does "
                    "not allow",
                    widening="tools",
                    grant=grant,
                    action=action,
                )
            raise _widening(
                f"{action!r} on {g.resource!r} is not within the parent delegation's scope",
                widening="scope",
                grant=grant,
                action=action,
            )
    if parent_purposes:
        extra = [p for p in purposes if p not in parent_purposes]
        if not purposes or extra:
            raise _widening(
                "purposes must be a subset of the parent's"
                + (f" ({extra} are not)" if extra else " (none given: any purpose)"),
                widening="purposes",
                parent_purposes=list(parent_purposes),
                purposes=list(purposes),
            )
    if not_before < parent_not_before:
        raise _widening(
            "not_before is earlier than the parent's",
            widening="not_before",
            parent_not_before=parent_not_before,
            not_before=not_before,
        )
    if expires_at > parent_expires_at:
        raise _widening(
            "expires_at is later than the parent's",
            widening="expires_at",
            parent_expires_at=parent_expires_at,
            expires_at=expires_at,
        )

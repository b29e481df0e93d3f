"""A store's identity plane in memory: the immutable snapshot a decision reads.

The :class:`~keyplane.service.graphs.GraphRegistry` holds one :class:`PolicyState` per
store beside the tuple index and advances it in ``catch_up`` from
:meth:`~keyplane.storage.base.PolicyStore.read_policy_changes` (rows whose revision is
greater than the state's), with the same revision counter as tuples. Advancing never
mutates a state: :meth:`PolicyState.advanced` returns a new one (copy-on-write of the
maps that changed) and the registry swaps the reference, so a decision that took
``svc.graphs.policy(store)`` once reads one consistent state without any lock, however
long it runs. Every lookup is a dict access.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from keyplane.governance.records import ENTITLEMENT_DELETED, Entitlement
from keyplane.policy.records import Delegation, GuardrailSet, Identity, StorePolicy
from keyplane.storage.base import REVOKED_TOKEN_GRACE, PolicyChanges

__all__ = ["PolicyState"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True, eq=False)
class PolicyState:
    """One store's identities, delegations, latest guardrail set and store policy, as of
    ``revision``. Build with :meth:`empty`, then :meth:`advanced`."""

    store_id: str
    revision: int
    policy: StorePolicy
    guardrails: GuardrailSet | None = None
    _identities: Mapping[str, Identity] = field(default_factory=dict)
    _delegations: Mapping[str, Delegation] = field(default_factory=dict)
    _between: Mapping[tuple[str, str], tuple[Delegation, ...]] = field(default_factory=dict)
    _children: Mapping[str, tuple[Delegation, ...]] = field(default_factory=dict)
    # revoked token ids -> the token's expiry; dropped REVOKED_TOKEN_GRACE after it (on
    # advance, once the earliest is due: _prune_at), so memory stays bounded
    _revoked_tokens: Mapping[str, float] = field(default_factory=dict)
    _prune_at: float = math.inf
    _revoked_credentials: frozenset[str] = frozenset()
    # requestable entitlements (issue 7) by id, and by (object, relation) sorted by id
    _entitlements: Mapping[str, Entitlement] = field(default_factory=dict)
    _entitlements_on: Mapping[tuple[str, str], tuple[Entitlement, ...]] = field(
        default_factory=dict
    )

    @classmethod
    def empty(cls, store_id: str, revision: int = 0) -> PolicyState:
        return cls(store_id, revision, StorePolicy(store_id))

    # -- reads (what the decision uses) -------------------------------------------------

    def identity(self, node: str) -> Identity | None:
        """The registered identity whose graph node is ``node`` ("agent:bot"), or None."""
        return self._identities.get(node)

    def delegations_between(self, delegator: str, delegate: str) -> Sequence[Delegation]:
        """Every delegation (active and revoked) from ``delegator`` to ``delegate``, by id."""
        return self._between.get((delegator, delegate), ())

    def delegation(self, delegation_id: str) -> Delegation | None:
        return self._delegations.get(delegation_id)

    def children(self, delegation_id: str) -> Sequence[Delegation]:
        """The delegations derived directly from ``delegation_id`` (any status), by id."""
        return self._children.get(delegation_id, ())

    def token_revoked(self, jti: str) -> bool:
        """Whether the access token ``jti`` was revoked (as of this state's revision)."""
        return jti in self._revoked_tokens

    def credential_revoked(self, credential_id: str) -> bool:
        """Whether the client credential ``credential_id`` was revoked (every token
        obtained with it, directly or upstream, is dead)."""
        return credential_id in self._revoked_credentials

    def revoked_token_count(self) -> int:
        """How many revoked token ids this state remembers (for tests and metrics)."""
        return len(self._revoked_tokens)

    def entitlement(self, entitlement_id: str) -> Entitlement | None:
        """The entitlement (any status; a deleted one is gone), or None."""
        return self._entitlements.get(entitlement_id)

    def entitlements_on(self, object: str, relation: str) -> Sequence[Entitlement]:
        """The entitlements whose ``object`` is exactly ``object`` ("document:roadmap" or
        "document:*") and whose relation is ``relation``, any status, by id."""
        return self._entitlements_on.get((object, relation), ())

    def entitlements_for(self, object: str, relation: str) -> list[Entitlement]:
        """The ACTIVE entitlements a request for ``relation`` on the concrete ``object``
        could be filed under: those on exactly ``object`` first, then those on every
        object of its type ("document:*"), each group by id. Two dict look-ups."""
        otype, sep, oid = object.partition(":")
        if not (sep and oid) or oid == "*":
            return []  # not a concrete object
        found = [e for e in self._entitlements_on.get((object, relation), ()) if _active(e)]
        wild = self._entitlements_on.get((f"{otype}:*", relation), ())
        found += [e for e in wild if _active(e)]
        return found

    def entitlements(self) -> Iterator[Entitlement]:
        return iter(self._entitlements.values())

    def identities(self) -> Iterator[Identity]:
        return iter(self._identities.values())

    def delegations(self) -> Iterator[Delegation]:
        return iter(self._delegations.values())

    def __len__(self) -> int:
        return len(self._identities) + len(self._delegations)

    # -- advancing ----------------------------------------------------------------------

    def advanced(self, changes: PolicyChanges, *, now: float | None = None) -> PolicyState:
        """A new state with ``changes`` applied (this one is left untouched).

        Rows older than what this state holds are ignored (a change read twice, or out of
        order, never moves a row backwards). Revoked token ids whose token expired more
        than :data:`~keyplane.storage.base.REVOKED_TOKEN_GRACE` seconds before ``now``
        (default: the wall clock) are dropped."""
        revision = max(self.revision, changes.revision)
        identities: Mapping[str, Identity] = self._identities
        if changes.identities:
            new_ids = dict(self._identities)
            for i in changes.identities:
                old = new_ids.get(i.node)
                if old is None or old.revision <= i.revision:
                    new_ids[i.node] = i
            identities = new_ids
        delegations: Mapping[str, Delegation] = self._delegations
        between = self._between
        children = self._children
        if changes.delegations:
            new_dels = dict(self._delegations)
            touched: dict[str, Delegation] = {}
            for d in changes.delegations:
                old_d = new_dels.get(d.id)
                if old_d is None or old_d.revision <= d.revision:
                    new_dels[d.id] = d
                    touched[d.id] = d
            delegations = new_dels
            between = _reindex(
                self._between, self._delegations, touched, lambda d: (d.delegator, d.delegate)
            )
            children = _reindex(self._children, self._delegations, touched, lambda d: d.parent_id)
        policy = self.policy
        if changes.store_policy is not None and changes.store_policy.revision >= policy.revision:
            policy = changes.store_policy
        guardrails = self.guardrails
        if changes.guardrail_set is not None and (
            guardrails is None or changes.guardrail_set.version >= guardrails.version
        ):
            guardrails = changes.guardrail_set
        revoked, prune_at = self._revoked_tokens, self._prune_at
        at = time.time() if now is None else float(now)
        if changes.revoked_tokens or at >= prune_at:
            revoked, prune_at = _revoked_after(revoked, changes.revoked_tokens, at)
        credentials = self._revoked_credentials
        if changes.revoked_credentials:
            credentials = credentials.union(changes.revoked_credentials)
        entitlements, entitlements_on = self._entitlements, self._entitlements_on
        if changes.entitlements:
            entitlements, entitlements_on = _entitlements_after(
                entitlements, entitlements_on, changes.entitlements
            )
        return PolicyState(
            self.store_id,
            revision,
            policy,
            guardrails,
            identities,
            delegations,
            between,
            children,
            revoked,
            prune_at,
            credentials,
            entitlements,
            entitlements_on,
        )


def _active(e: Entitlement) -> bool:
    return e.status == "active"


def _entitlements_after(
    by_id: Mapping[str, Entitlement],
    by_target: Mapping[tuple[str, str], tuple[Entitlement, ...]],
    changed: Sequence[Entitlement],
) -> tuple[dict[str, Entitlement], dict[tuple[str, str], tuple[Entitlement, ...]]]:
    """Copies of the two maps with ``changed`` applied (a row older than the one held is
    ignored; a tombstone removes the entitlement)."""
    ids = dict(by_id)
    targets = dict(by_target)
    for e in changed:
        old = ids.get(e.id)
        if old is not None:
            if old.revision > e.revision:
                continue
            key = (old.object, old.relation)
            rest = tuple(x for x in targets.get(key, ()) if x.id != e.id)
            if rest:
                targets[key] = rest
            else:
                targets.pop(key, None)
            del ids[e.id]
        if e.status == ENTITLEMENT_DELETED:
            continue
        ids[e.id] = e
        key = (e.object, e.relation)
        targets[key] = tuple(sorted((*targets.get(key, ()), e), key=lambda x: x.id))
    return ids, targets


def _revoked_after(
    old: Mapping[str, float], added: Sequence[tuple[str, float]], now: float
) -> tuple[Mapping[str, float], float]:
    """``old`` plus ``added`` without the entries due (expired more than the grace before
    ``now``), and when the next one falls due (inf: none). Pruning copies the map, so it
    runs only when the earliest entry is due; entries expiring within a minute of it go
    at the same time (one copy a minute at most, however many expire)."""
    cutoff = now - REVOKED_TOKEN_GRACE
    out = {j: e for j, e in old.items() if e >= cutoff}
    for jti, exp in added:
        if exp >= cutoff:
            out[jti] = max(exp, out.get(jti, exp))
    due = min(out.values(), default=math.inf) + REVOKED_TOKEN_GRACE
    return out, due + 60.0 if due != math.inf else due


def _reindex(
    index: Mapping[K, tuple[Delegation, ...]],
    before: Mapping[str, Delegation],
    touched: Mapping[str, Delegation],
    key: Callable[[Delegation], K | None],
) -> dict[K, tuple[Delegation, ...]]:
    """Copy ``index`` with the ``touched`` delegations (re)placed under their key (and
    removed from the key they had before, should it differ); each entry stays sorted by id.
    ``key`` returning None leaves a delegation out (a root has no parent)."""
    out = dict(index)
    affected: dict[K, dict[str, Delegation]] = {}
    for did, d in touched.items():
        old = before.get(did)
        if old is not None:
            k_old = key(old)
            if k_old is not None:
                bucket = affected.setdefault(k_old, {x.id: x for x in out.get(k_old, ())})
                bucket.pop(did, None)
        k_new = key(d)
        if k_new is not None:
            bucket = affected.setdefault(k_new, {x.id: x for x in out.get(k_new, ())})
            bucket[did] = d
    for k, bucket in affected.items():
        if bucket:
            out[k] = tuple(bucket[i] for i in sorted(bucket))
        else:
            out.pop(k, None)
    return out

"""Tuples: atomic writes with preconditions, filtered reads, the changelog, expiry clean-up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keyplane.graph.tuples import Tuple
from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import (
    TupleLike,
    check_limit,
    check_page_size,
    check_revision,
    to_tuples,
)
from keyplane.storage.base import ChangesPage, Page

__all__ = ["WriteResult", "gc_expired", "read_changes", "read_tuples", "write_tuples"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    revision: int
    written: int
    deleted: int


@audited("tuples.written")
def write_tuples(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    writes: Iterable[TupleLike] | None = None,
    deletes: Iterable[TupleLike] | None = None,
    model_id: str | None = None,
    idempotent: bool = False,
) -> WriteResult:
    """Write and delete tuples atomically; returns the revision that holds the change.

    Written tuples are validated against the model (the latest, or ``model_id``): unknown
    types (2021), unknown relations (2022), user types or conditions the relation does not
    allow (2027). Writing an existing tuple or deleting a missing one is a conflict unless
    ``idempotent``. Nothing is written when anything fails.
    """
    authorize(svc, caller, Permission.WRITE_TUPLES, store_id)
    w, d = to_tuples(writes), to_tuples(deletes)
    check_limit("writes+deletes", [*w, *d], svc.settings.max_write_tuples)
    model = svc.graphs.model(store_id, model_id)
    for t in w:
        model.validate_tuple(t)
    details = {"written": audit.tuple_keys(w), "deleted": audit.tuple_keys(d)}

    def event_at(revision: int) -> list[tuple[LedgerEvent, str]]:
        # the grant and its ledger event commit in one transaction: no change without its
        # event, even if the process dies right after the commit
        return audit.change_events(
            svc, caller, "tuples.written", store_id, revision=revision, model_id=model_id,
            details=details,
        )  # fmt: skip

    revision = svc.storage.write(
        store_id, writes=w, deletes=d, idempotent=idempotent, ledger_events=event_at
    )
    svc.graphs.catch_up(store_id)
    return WriteResult(revision, len(w), len(d))


@audited(None)
def read_tuples(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    object: str | None = None,
    relation: str | None = None,
    user: str | None = None,
    page_size: int = 100,
    continuation_token: str | None = None,
) -> Page[Tuple]:
    authorize(svc, caller, Permission.READ_TUPLES, store_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    return svc.storage.read_tuples(
        store_id,
        object=object,
        relation=relation,
        user=user,
        page_size=size,
        continuation_token=continuation_token,
    )


@audited(None)
def read_changes(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    after_revision: int = 0,
    page_size: int = 100,
    object_type: str | None = None,
) -> ChangesPage:
    authorize(svc, caller, Permission.READ_CHANGES, store_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    after = check_revision("after_revision", after_revision)
    return svc.storage.read_changes(
        store_id, after_revision=after, page_size=size, object_type=object_type
    )


@audited("tuples.expired_removed")
def gc_expired(svc: Services, caller: Caller, store_id: str) -> int:
    """Delete tuples whose ``expires_at`` has passed (they already stopped granting)."""
    authorize(svc, caller, Permission.WRITE_TUPLES, store_id)

    def event_at(made: tuple[int, int]) -> list[tuple[LedgerEvent, str]]:
        revision, removed = made
        return audit.change_events(
            svc, caller, "tuples.expired_removed", store_id, revision=revision,
            details={"removed": removed},
        )  # fmt: skip

    # the event commits with the removal; when nothing had expired there is no change (no
    # revision, no transaction) and the call is recorded on its own
    removed = svc.storage.gc_expired(store_id, now=svc.clock.now(), ledger_events=event_at)
    # housekeeping of the same kind: revocations of tokens long expired (every store; not
    # a change, no revision, no event)
    svc.graphs.prune_revoked_tokens()
    svc.graphs.catch_up(store_id)
    if removed == 0:
        audit.change(svc, caller, "tuples.expired_removed", store_id, details={"removed": 0})
    return removed

"""SCIM 2.0 provisioning (RFC 7643, RFC 7644): an identity provider keeps a store's
people, groups and agents in step with its directory.

The operations are the protocol's six (create, get, replace, patch, delete, list) on three
resource types; each takes the identity provider's API key (:data:`Permission.PROVISION`)
and answers SCIM JSON (``meta`` included; projection of ``attributes`` /
``excludedAttributes`` is the HTTP layer's). A SCIM resource is stored as sent
(:mod:`keyplane.scim.schemas.clean_input` makes it canonical) in ``scim_resources``, and
projected on the identity plane in the SAME transaction
(:meth:`~keyplane.storage.base.ScimStore.write_scim`), so the graph is never a partial
projection of what the identity provider sent
(the mapping: :mod:`keyplane.service.scim_mapping`).

The SCIM ``id`` is a readable slug of userName (User) or displayName (Group, Agent) chosen
at creation — lower-cased, characters other than ``a-z 0-9 . _ @ + -`` made ``-``,
suffixed ``-2``, ``-3``… when the id (or, for a User or Agent, the identity node) is taken
— and never changed by a rename.

``active: false`` deprovisions the human or agent (:func:`~keyplane.service.identities.
plan_deprovision`: its delegations revoked, the agents it alone owned orphaned — and
suspended when the store policy says so). Deprovisioning is for good in Keyplane, so
``active: true`` on a resource that was inactive is refused (``400 mutability``):
provision a new user instead. DELETE deprovisions too and removes the resource (``404``
afterwards) and its memberships in groups; deleting a group removes its member tuples.

Versions: ``meta.version`` is ``W/"<n>"``; every write that changes a resource bumps it;
``if_match`` that names another version is ``412``. Re-sending the same PUT or PATCH
changes nothing (no new version, no event), so retries are harmless; POST with a userName
(or agent displayName) already provisioned is ``409 uniqueness``. Without If-Match the last
writer wins, whole: each write is the projection of the resource it stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keyplane.scim import filter as scim_filter
from keyplane.scim import patch as patch_ops
from keyplane.scim import projection as scim_projection
from keyplane.scim import schemas as S
from keyplane.scim.errors import ScimError
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.identities import ensure_model
from keyplane.service.scim_mapping import (
    ScimPlan,
    answer,
    canonical,
    changed_attributes,
    check_if_match,
    groups_by_user,
    invalid,
    new_id,
    not_found,
    resource_type_of_name,
    to_scim,
)
from keyplane.storage.base import ScimResource, ScimTxReader, ScimWrite

__all__ = [
    "scim_create",
    "scim_delete",
    "scim_get",
    "scim_list",
    "scim_patch",
    "scim_replace",
]


# ------------------------------------------------------------------------------ the write


def _write(
    svc: Services,
    caller: Caller,
    store_id: str,
    rt: S.ResourceType,
    run: Callable[[ScimTxReader, ScimPlan], None],
) -> tuple[ScimPlan, bool]:
    model = ensure_model(svc, caller, store_id)
    holder: list[ScimPlan] = []

    def plan(r: ScimTxReader) -> ScimWrite:
        p = ScimPlan(svc, caller, store_id, rt, svc.clock.now(), model)
        holder[:] = [p]
        run(r, p)
        return p.write()

    result = svc.storage.write_scim(store_id, plan, ledger_events=lambda rev: holder[0].ledger(rev))
    if result.changed:
        svc.graphs.catch_up(store_id)
    return holder[0], result.changed


def _load(r: ScimTxReader, rt: S.ResourceType, id: str, if_match: str | None) -> ScimResource:
    old = r.scim(rt.name, id)
    if old is None:
        raise not_found(rt, id)
    check_if_match(if_match, old.version)
    return old


def _update(
    r: ScimTxReader,
    p: ScimPlan,
    old: ScimResource,
    data: dict[str, Any],
    op: str,
    details: dict[str, Any],
) -> None:
    """Store ``data`` over ``old`` unless it is the same (a retry: nothing written)."""
    p.seed(old)
    data = p.resolve_refs(r, old.id, data)
    if {**data, "id": old.id} == dict(old.data):
        p.result = old
        return
    if op == "replaced":
        details = {**details, "changed": changed_attributes(old.data, {**data, "id": old.id})}
    p.project(r, old.id, data, old, op=op, details=details)


# ------------------------------------------------------------------------------ operations


@audited("scim.created")
def scim_create(
    svc: Services,
    caller: Caller,
    store_id: str,
    resource_type: str,
    body: Mapping[str, Any],
    *,
    base_url: str,
) -> dict[str, Any]:
    """POST /<Type>s (RFC 7644 §3.3): a new resource, its id a slug of its name; a userName
    (agent displayName) already provisioned is 409 uniqueness."""
    authorize(svc, caller, Permission.PROVISION, store_id)
    rt = resource_type_of_name(resource_type)
    data = canonical(rt, body, existing=None)

    def run(r: ScimTxReader, p: ScimPlan) -> None:
        p.project(r, new_id(r, rt, data), data, None, op="created", details={})

    p, _ = _write(svc, caller, store_id, rt, run)
    assert p.result is not None
    return answer(svc, store_id, p.result, base_url)


@audited(None)
def scim_get(
    svc: Services, caller: Caller, store_id: str, resource_type: str, id: str, *, base_url: str
) -> dict[str, Any]:
    """GET /<Type>s/<id> (RFC 7644 §3.4.1)."""
    authorize(svc, caller, Permission.PROVISION, store_id)
    rt = resource_type_of_name(resource_type)
    res = svc.storage.get_scim(store_id, rt.name, id)
    if res is None:
        raise not_found(rt, id)
    return answer(svc, store_id, res, base_url)


@audited("scim.replaced")
def scim_replace(
    svc: Services,
    caller: Caller,
    store_id: str,
    resource_type: str,
    id: str,
    body: Mapping[str, Any],
    *,
    if_match: str | None = None,
    base_url: str,
) -> dict[str, Any]:
    """PUT /<Type>s/<id> (RFC 7644 §3.5.1): the resource replaced whole (readOnly
    attributes ignored, immutable ones must not change); the same body again changes
    nothing."""
    authorize(svc, caller, Permission.PROVISION, store_id)
    rt = resource_type_of_name(resource_type)
    if not isinstance(body, Mapping):
        raise ScimError("the body must be a JSON object", status=400, scim_type="invalidSyntax")

    def run(r: ScimTxReader, p: ScimPlan) -> None:
        old = _load(r, rt, id, if_match)
        data = canonical(rt, body, existing=old.data)
        _update(r, p, old, data, "replaced", {})

    p, _ = _write(svc, caller, store_id, rt, run)
    assert p.result is not None
    return answer(svc, store_id, p.result, base_url)


@audited("scim.patched")
def scim_patch(
    svc: Services,
    caller: Caller,
    store_id: str,
    resource_type: str,
    id: str,
    body: Mapping[str, Any],
    *,
    if_match: str | None = None,
    base_url: str,
) -> dict[str, Any]:
    """PATCH /<Type>s/<id> (RFC 7644 §3.5.2): the operations applied, in order, to the
    resource as stored (all or nothing); operations that change nothing write nothing."""
    authorize(svc, caller, Permission.PROVISION, store_id)
    rt = resource_type_of_name(resource_type)
    if not isinstance(body, Mapping):
        raise ScimError("the body must be a JSON object", status=400, scim_type="invalidSyntax")
    ops = patch_ops.patch_operations(body)
    summary = [
        {"op": str(o.get("op", "")).lower(), "path": o.get("path") if isinstance(o.get("path"), str) else None}
        for o in ops
    ]  # fmt: skip

    def run(r: ScimTxReader, p: ScimPlan) -> None:
        old = _load(r, rt, id, if_match)
        patched = patch_ops.apply_patch(old.data, ops, rt)
        data = canonical(rt, patched, existing=old.data)
        _update(r, p, old, data, "patched", {"operations": summary})

    p, _ = _write(svc, caller, store_id, rt, run)
    assert p.result is not None
    return answer(svc, store_id, p.result, base_url)


@audited("scim.deleted")
def scim_delete(
    svc: Services,
    caller: Caller,
    store_id: str,
    resource_type: str,
    id: str,
    *,
    if_match: str | None = None,
) -> None:
    """DELETE /<Type>s/<id> (RFC 7644 §3.6): a User or Agent is deprovisioned (for good),
    a Group's member tuples removed; the resource leaves the groups it was a member of and
    is gone (404 afterwards)."""
    authorize(svc, caller, Permission.PROVISION, store_id)
    rt = resource_type_of_name(resource_type)

    def run(r: ScimTxReader, p: ScimPlan) -> None:
        p.remove(r, _load(r, rt, id, if_match))

    _write(svc, caller, store_id, rt, run)


@audited(None)
def scim_list(
    svc: Services,
    caller: Caller,
    store_id: str,
    resource_type: str,
    *,
    filter: str | None = None,
    start_index: int = 1,
    count: int | None = None,
    sort_by: str | None = None,
    sort_order: str = "ascending",
    base_url: str,
) -> dict[str, Any]:
    """GET /<Type>s (RFC 7644 §3.4.2): a ListResponse, filtered, sorted, paged
    (``start_index`` 1-based; ``count`` at most :data:`~keyplane.scim.schemas.MAX_RESULTS`,
    0 answers only ``totalResults``). Resources are by id unless ``sort_by``."""
    authorize(svc, caller, Permission.PROVISION, store_id)
    rt = resource_type_of_name(resource_type)
    order = (sort_order or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid(f"sortOrder must be ascending or descending, not {sort_order!r}")
    node = scim_filter.parse_filter(filter) if filter else None
    start = max(1, int(start_index or 1))
    size = S.MAX_RESULTS if count is None else max(0, min(int(count), S.MAX_RESULTS))
    groups = groups_by_user(svc, store_id) if rt.name == "User" else None
    found = [to_scim(x, base_url, groups=groups) for x in svc.storage.list_scim(store_id, rt.name)]
    if node is not None:
        found = [x for x in found if scim_filter.matches(node, x, resource_type=rt)]
    if sort_by:
        found.sort(
            key=lambda x: scim_projection.sort_key(x, sort_by, schemas=rt),
            reverse=order == "descending",
        )
    page = found[start - 1 : start - 1 + size]
    return S.list_response(page, total_results=len(found), start_index=start)

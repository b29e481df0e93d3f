"""Stores (tenants): create, read, list, delete."""

from __future__ import annotations

from keyplane.ledger.events import LedgerEvent
from keyplane.service import audit, system
from keyplane.service.audit import audited
from keyplane.service.auth import SYSTEM_STORE_ID, Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import Page, StoreInfo

__all__ = ["create_store", "delete_store", "get_store", "list_stores"]


@audited("store.created")
def create_store(
    svc: Services, caller: Caller, name: str, *, store_id: str | None = None
) -> StoreInfo:
    authorize(svc, caller, Permission.CREATE_STORE)

    def event_of(made: StoreInfo) -> list[tuple[LedgerEvent, str]]:
        # in the new store's own chain, committed with the store
        return audit.change_events(svc, caller, "store.created", made.id, details={"name": name})

    info = svc.storage.create_store(name, store_id=store_id, ledger_events=event_of)
    system.link_store(svc, info.id)  # store:<id>#system@system:keyplane — see system.py
    return info


@audited(None)
def get_store(svc: Services, caller: Caller, store_id: str) -> StoreInfo:
    authorize(svc, caller, Permission.READ_STORE, store_id)
    return svc.storage.get_store(store_id)


@audited(None)
def list_stores(
    svc: Services, caller: Caller, *, page_size: int = 100, continuation_token: str | None = None
) -> Page[StoreInfo]:
    authorize(svc, caller, Permission.LIST_STORES)
    size = check_page_size(page_size, svc.settings.max_page_size)
    page = svc.storage.list_stores(page_size=size, continuation_token=continuation_token)
    # the reserved system store is Keyplane's own; it is never listed
    items = [s for s in page.items if s.id != SYSTEM_STORE_ID]
    return page if len(items) == len(page.items) else Page(items, page.continuation_token)


@audited("store.deleted")
def delete_store(svc: Services, caller: Caller, store_id: str) -> None:
    authorize(svc, caller, Permission.DELETE_STORE, store_id)
    svc.storage.get_store(store_id)  # a missing store is store_not_found, before any clean-up
    system.unlink_store(svc, store_id)  # grants go first: a failure below leaves none behind
    svc.storage.delete_store(
        store_id,
        ledger_events=lambda sid: audit.change_events(svc, caller, "store.deleted", sid),
    )
    svc.graphs.forget(store_id)

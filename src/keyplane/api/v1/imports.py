"""``/v1/stores/{store}/imports…`` — identity source imports (issue 10): AWS IAM,
Kubernetes RBAC and GitHub exports into the graph, and the record of each import.

A thin surface over :mod:`keyplane.service.imports`: each handler is one service call.
Importing needs ``can_import_sources`` (admins, writers), listing ``can_read_identities``.
The request body is the export as the source produced it (the JSON of ``aws iam
get-account-authorization-details``, of ``kubectl get … -o json``, the GitHub bundle);
bodies are limited like every request (``KEYPLANE_MAX_BODY_BYTES``). See
``docs/identity-sources.md``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.import_schemas import ImportList, ImportRecordOut, ImportResultOut
from keyplane.api.v1.common import StoreId, error_responses
from keyplane.service import imports

__all__ = ["router"]

router = APIRouter(prefix="/stores/{store}/imports", tags=["imports"])

Source = Annotated[
    str,
    Path(
        min_length=1,
        max_length=32,
        description="The source: `aws`, `kubernetes` or `github`.",
    ),
]


@router.post(
    "/{source}",
    operation_id="import_source",
    responses=error_responses(),
    summary="Import an identity source's export",
)
def import_source(
    store: StoreId,
    source: Source,
    svc: ServicesDep,
    caller: CallerDep,
    export: Annotated[Any, Body(description="The source's export, as JSON.")],
    dry_run: Annotated[
        bool, Query(description="Compute what would change, write nothing.")
    ] = False,
) -> ImportResultOut:
    """Import the export: identities and tuples created, changed and removed against the
    previous import of the same scope; the model extended with the source's types when
    they are missing. Re-importing the same export changes nothing. A bad export is a 400
    `validation_error` naming the field's path; nothing is written."""
    return ImportResultOut.of(
        imports.import_source(svc, caller, store, source, export, dry_run=dry_run)
    )


@router.get(
    "",
    operation_id="list_imports",
    responses=error_responses(),
    summary="List the imports of a store",
)
def list_imports(store: StoreId, svc: ServicesDep, caller: CallerDep) -> ImportList:
    """The latest import of each (source, scope), by source and scope."""
    return ImportList(
        imports=[ImportRecordOut.of(r) for r in imports.list_imports(svc, caller, store)]
    )

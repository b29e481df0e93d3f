"""MCP tools of identity source imports (issue 10): read which sources were imported.

Same rules as :mod:`keyplane.mcp.tools`: one tool, one service function of
:mod:`keyplane.service.imports`; the output is the REST response model
(:mod:`keyplane.api.import_schemas`). Importing itself is not offered to agents
(:data:`IMPORT_NOT_EXPOSED`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from keyplane.api import import_schemas as im
from keyplane.service import imports
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["IMPORT_NOT_EXPOSED", "IMPORT_SERVICE_OF_TOOL", "IMPORT_SPECS"]

Result = tuple[BaseModel, str]


class NoArgs(BaseModel):
    """No arguments but the store."""

    model_config = ConfigDict(extra="forbid")


def _line(r: im.ImportRecordOut) -> str:
    i, t = r.identities, r.tuples
    return (
        f"- {r.source} {r.scope}: {r.identity_count} identities, {r.tuple_count} tuples; last "
        f"change identities +{i.added} ~{i.changed} -{i.removed}, tuples +{t.added} "
        f"-{t.removed}; {len(r.warnings)} warning(s)"
    )


def _list_imports(svc: Services, caller: Caller, store: str, a: NoArgs) -> Result:
    out = im.ImportList(
        imports=[im.ImportRecordOut.of(r) for r in imports.list_imports(svc, caller, store)]
    )
    return out, "\n".join([f"{len(out.imports)} import(s):", *map(_line, out.imports)])


IMPORT_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "list_imports",
        "Imported identity sources",
        "Which identity sources (AWS accounts, Kubernetes clusters, GitHub organisations) "
        "were imported into the store: per source and scope, the identities and tuples the "
        "import keeps in the graph, what its last run changed, its warnings (what could not "
        "be modelled), when and by whom. Identities an import created have source "
        "`import:<source>`. Needs can_read_identities. Example: {}.",
        NoArgs, im.ImportList, _list_imports, False, None, False,
    ),
]  # fmt: skip

IMPORT_SERVICE_OF_TOOL: dict[str, Any] = {"list_imports": imports.list_imports}

IMPORT_NOT_EXPOSED: dict[str, str] = {
    "imports.import_source": (
        "bulk input of a whole export file (megabytes of JSON an agent's context should not "
        "carry) that rewrites identities and grants across the store: an operator's act, "
        "run with the CLI, REST or the SDK"
    ),
}

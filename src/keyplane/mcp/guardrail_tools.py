"""The guardrails' MCP tools: read the rules in force, their versions, and dry-run a
candidate set over the last recorded decisions. Writing guardrails is not a tool: the
rules that bound agents are set by people (REST, CLI, SDK), never by an agent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyplane.api import identity_schemas as ids
from keyplane.service import guardrails
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["GUARDRAIL_NOT_EXPOSED", "GUARDRAIL_SERVICE_OF_TOOL", "GUARDRAIL_SPECS"]

Result = tuple[BaseModel, str]


class GetGuardrailsArgs(BaseModel):
    """The guardrails in force (or one version)."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        default=None, ge=1, description="This version; the latest if omitted."
    )


class ListGuardrailVersionsArgs(BaseModel):
    """Every guardrail version, newest first."""

    model_config = ConfigDict(extra="forbid")

    page_size: int = Field(default=50, ge=1, description="At most this many (capped).")
    continuation_token: str | None = None


def _set_text(g: Any) -> str:
    if g.version == 0:
        return "no guardrails (version 0)"
    rules = "\n".join(
        f"- {r.id} [{r.effect}{'' if r.enabled else ', disabled'}]: {r.expression}"
        + (f" — {r.description}" if r.description else "")
        for r in g.rules
    )
    return f"guardrails version {g.version} ({len(g.rules)} rules)" + (
        f":\n{rules}" if rules else ""
    )


def _get(svc: Services, caller: Caller, store: str, a: GetGuardrailsArgs) -> Result:
    g = guardrails.get_guardrails(svc, caller, store, version=a.version)
    return ids.GuardrailSetOut.from_set(g), _set_text(g)


def _versions(svc: Services, caller: Caller, store: str, a: ListGuardrailVersionsArgs) -> Result:
    page = guardrails.list_guardrail_versions(
        svc, caller, store, page_size=a.page_size, continuation_token=a.continuation_token
    )
    out = ids.GuardrailVersionList(
        versions=[ids.GuardrailSetOut.from_set(g) for g in page.items],
        continuation_token=page.continuation_token,
    )
    text = f"{len(page.items)} versions: " + ", ".join(
        f"v{g.version} ({len(g.rules)} rules)" for g in page.items
    )
    return out, text


def _dry_run(svc: Services, caller: Caller, store: str, a: ids.DryRunRequest) -> Result:
    r = guardrails.dry_run_guardrails(
        svc, caller, store, [x.to_record() for x in a.rules], last=a.last
    )
    lines = [
        f"- {f.decision_id}: {f.subject} {f.action} {f.resource} {f.old_outcome} → "
        f"{f.new_outcome} ({', '.join(f.rule_ids) or f.new_code})"
        for f in r.flips[:20]
    ]
    text = (
        f"{r.evaluated} of {r.considered} recent decisions re-evaluated: {r.changed} would "
        f"change ({r.outcome_changed} allow ↔ deny)" + ("\n" + "\n".join(lines) if lines else "")
    )
    return ids.GuardrailDryRunOut.from_dry_run(r), text


#: (name, title, description, input, output, run, writes, permission to be listed, destructive)
GUARDRAIL_SPECS: list[
    tuple[str, str, str, type[BaseModel], type[BaseModel], Any, bool, str | None, bool]
] = [
    (
        "get_guardrails",
        "Read the guardrails",
        "Read the store's guardrails in force (or one `version`): CEL rules, each with an "
        "id, a description and an effect — `forbid` (the decision denies) or "
        "`require_approval` (it denies until approved). Read them to know in advance what "
        "`decide` will refuse. Example: {}.",
        GetGuardrailsArgs,
        ids.GuardrailSetOut,
        _get,
        False,
        None,
        False,
    ),
    (
        "list_guardrail_versions",
        "List guardrail versions",
        "Every version of the store's guardrails, newest first (a decision names the "
        'version it used). Example: {"page_size": 10}.',
        ListGuardrailVersionsArgs,
        ids.GuardrailVersionList,
        _versions,
        False,
        None,
        False,
    ),
    (
        "dry_run_guardrails",
        "Dry-run guardrails",
        "Replay a candidate rule set over the store's last recorded decisions (`last`, "
        "default 1000) and report which would change — each with its decision id, old and "
        "new outcome and the rules that fired. Stores nothing. Needs a key that may read "
        'the ledger. Example: {"rules": [{"id": "no-agent-delete", "effect": "forbid", '
        '"expression": "chain_length > 0 && action == \\"delete\\""}], "last": 500}.',
        ids.DryRunRequest,
        ids.GuardrailDryRunOut,
        _dry_run,
        False,
        None,
        False,
    ),
]

GUARDRAIL_SERVICE_OF_TOOL: dict[str, Any] = {
    "get_guardrails": guardrails.get_guardrails,
    "list_guardrail_versions": guardrails.list_guardrail_versions,
    "dry_run_guardrails": guardrails.dry_run_guardrails,
}

GUARDRAIL_NOT_EXPOSED: dict[str, str] = {
    "guardrails.put_guardrails": (
        "guardrails bound what agents may do: set by people (REST, CLI, SDK), never by an "
        "agent that could lift its own limits"
    ),
}

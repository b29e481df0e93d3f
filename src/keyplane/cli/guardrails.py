"""``keyplane guardrails put|get|versions|dry-run`` — the store's guardrail rules.

A rule file is JSON: a list of rules, or ``{"rules": [...]}``; each rule
``{"id", "description", "effect": "forbid"|"require_approval", "expression", "enabled"}``
(``-`` reads stdin). ``dry-run`` replays a candidate file over the last recorded decisions
and lists those that would flip, without storing anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    all_pages,
    connect,
    emit_json,
    err,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.cli.identities import show_table
from keyplane.policy.records import GuardrailSet

__all__ = ["guardrails_app"]

guardrails_app = typer.Typer(
    help="Guardrails: versioned CEL rules that forbid or require approval.",
    no_args_is_help=True,
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
FileArg = Annotated[
    str, typer.Argument(help='A JSON rule file (a list, or {"rules": [...]}); - for stdin.')
]


def read_rules(path: str) -> list[dict[str, Any]]:
    """The rules of a JSON file (usage error, exit 2, when it is not one)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        err.print(
            f"error[validation_error]: cannot read {path}: {exc}", highlight=False, markup=False
        )
        raise typer.Exit(2) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(
            f"error[validation_error]: {path} is not valid JSON: {exc}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2) from None
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        err.print(
            f"error[validation_error]: {path}: expected a list of rule objects or "
            '{"rules": [...]}',
            highlight=False,
            markup=False,
        )
        raise typer.Exit(2)
    return rules


def set_json(g: GuardrailSet) -> dict[str, Any]:
    return {
        "version": g.version,
        "rules": [
            {
                "id": r.id,
                "description": r.description,
                "effect": r.effect,
                "expression": r.expression,
                "enabled": r.enabled,
            }
            for r in g.rules
        ],
        "created_by": g.created_by,
        "created_at": g.created_at,
        "revision": g.revision,
    }


def _show(g: GuardrailSet, as_json: bool, verb: str | None = None) -> None:
    if as_json:
        emit_json(set_json(g))
        return
    if g.version == 0:
        out.print("no guardrails (version 0)")
        return
    head = f"{verb} version" if verb else "version"
    out.print(
        f"{head} {g.version} ({len(g.rules)} rules, by {escape(g.created_by)} at "
        f"{timestamp(g.created_at)}, revision {g.revision})",
        highlight=False,
    )
    t = table("id", "effect", "enabled", "expression", "description")
    for r in g.rules:
        t.add_row(
            escape(r.id),
            r.effect,
            "yes" if r.enabled else "no",
            escape(r.expression),
            escape(r.description),
        )
    show_table(t)


@guardrails_app.command("put")
def guardrails_put(
    file: FileArg,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Store the file's rules as the next guardrail version (in force at once)."""
    rules = read_rules(file)
    with connect(db, url, api_key) as kp:
        g = kp.put_guardrails(rules, store=store)
    _show(g, wants_json(as_json, output), "wrote")


@guardrails_app.command("get")
def guardrails_get(
    version: Annotated[
        int | None, typer.Option("--version", help="This version (default: the latest).")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Show the latest guardrails (or --version)."""
    with connect(db, url, api_key) as kp:
        g = kp.get_guardrails(store=store, version=version)
    _show(g, wants_json(as_json, output))


@guardrails_app.command("versions")
def guardrails_versions(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every guardrail version, newest first."""
    with connect(db, url, api_key) as kp:
        found: list[GuardrailSet] = all_pages(
            lambda token: kp.list_guardrail_versions(
                store=store, page_size=1000, continuation_token=token
            )
        )
    if wants_json(as_json, output):
        emit_json({"versions": [set_json(g) for g in found]})
        return
    t = table("version", "rules", "created", "by", "revision")
    for g in found:
        t.add_row(
            str(g.version),
            str(len(g.rules)),
            timestamp(g.created_at),
            escape(g.created_by),
            str(g.revision),
        )
    show_table(t)


@guardrails_app.command("dry-run")
def guardrails_dry_run(
    file: FileArg,
    last: Annotated[
        int, typer.Option("--last", "-n", help="Replay this many of the last decisions.")
    ] = 1000,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """How the file's rules would have changed the last decisions (nothing is stored)."""
    rules = read_rules(file)
    with connect(db, url, api_key) as kp:
        r = kp.dry_run_guardrails(rules, store=store, last=last)
    if wants_json(as_json, output):
        emit_json(
            {
                "considered": r.considered,
                "evaluated": r.evaluated,
                "changed": r.changed,
                "outcome_changed": r.outcome_changed,
                "denied_before_guardrails": r.denied_before_guardrails,
                "skipped": dict(r.skipped),
                "current_version": r.current_version,
                "rule_errors": r.rule_errors,
                "flips": [
                    {
                        "event_id": f.event_id,
                        "decision_id": f.decision_id,
                        "seq": f.seq,
                        "time": f.time,
                        "subject": f.subject,
                        "actors": list(f.actors),
                        "action": f.action,
                        "resource": f.resource,
                        "old_outcome": f.old_outcome,
                        "new_outcome": f.new_outcome,
                        "old_code": f.old_code,
                        "new_code": f.new_code,
                        "rule_ids": list(f.rule_ids),
                        "old_rule_ids": list(f.old_rule_ids),
                        "errors": dict(f.errors),
                    }
                    for f in r.flips
                ],
            }
        )
        return
    out.print(
        f"{r.considered} decisions read, {r.evaluated} re-evaluated against the candidate "
        f"(in force now: version {r.current_version}): {r.changed} would change, "
        f"{r.outcome_changed} of them allow ↔ deny",
        highlight=False,
    )
    if r.skipped:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.skipped.items()))
        out.print(f"skipped: {skipped}", highlight=False)
    if not r.flips:
        return
    t = table(
        "decision", "time", "subject", "actors", "action", "resource", "was", "would be", "rules"
    )
    for f in r.flips:
        t.add_row(
            f.decision_id,
            timestamp(f.time),
            escape(f.subject),
            escape(" → ".join(f.actors)),
            escape(f.action),
            escape(f.resource),
            f"{f.old_outcome} ({f.old_code})",
            f"{f.new_outcome} ({f.new_code})",
            escape(", ".join(f.rule_ids)),
        )
    show_table(t)

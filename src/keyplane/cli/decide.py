"""``keyplane decide`` — the decision point from the command line: may SUBJECT, through the
actor chain, do ACTION on RESOURCE? Prints allowed or denied, the code and the reason in
words, and the decision id; exit status 0 if allowed, 3 if denied (1 on errors).

With ``--token`` (an access token of the store, or ``-`` to read it from standard input)
the token gives the subject, the chain and the purpose: ``keyplane decide --token - read
document:roadmap`` (SUBJECT may be left out; given, it must be the token's)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    out,
    wants_json,
)
from keyplane.cli.identities import StoreOpt, parse_json_object

__all__ = ["decide", "decision_json"]


def decision_json(d: Any) -> dict[str, Any]:
    err_ = d.error
    return {
        "decision_id": d.decision_id,
        "allowed": d.allowed,
        "code": d.code,
        "reason_user": d.reason_user,
        "reason": d.reason,
        "requestable": d.requestable,
        "revision": d.revision,
        "model_id": d.model_id,
        "guardrail_version": d.guardrail_version,
        "delegation_ids": list(d.delegation_ids),
        "evaluated": d.evaluated,
        "correlation_id": d.correlation_id,
        "error": None
        if err_ is None
        else {"code": getattr(err_, "code", ""), "message": getattr(err_, "message", str(err_))},
    }


def decide(
    subject: Annotated[
        str,
        typer.Argument(
            help="On whose behalf (KIND:ID, e.g. human:alice); left out with --token.",
            show_default=False,
        ),
    ],
    action: Annotated[
        str | None, typer.Argument(help="A relation, or an action of the store policy.")
    ] = None,
    resource: Annotated[str | None, typer.Argument(help="The object, TYPE:ID.")] = None,
    actor: Annotated[
        list[str] | None,
        typer.Option(
            "--actor",
            "-a",
            help="The actor chain, nearest the subject first (repeatable): -a agent:planner "
            "-a agent:researcher.",
        ),
    ] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", "-p", help="Why.")] = None,
    context: Annotated[
        str | None, typer.Option("--context", "-c", help="Request context as a JSON object.")
    ] = None,
    delegation: Annotated[
        str | None, typer.Option("--delegation", help="Pin the last link to this delegation.")
    ] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="The MCP tool about to run.")] = None,
    resource_properties: Annotated[
        str | None,
        typer.Option("--resource-properties", help="The resource's attributes (JSON object)."),
    ] = None,
    subject_properties: Annotated[
        str | None,
        typer.Option("--subject-properties", help="Extra subject attributes (JSON object)."),
    ] = None,
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="Model version (default latest).")
    ] = None,
    fresh: Annotated[
        int | None,
        typer.Option("--at-least-as-fresh", help="Wait until this revision is applied."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="A bearer access token of the store ('-': read it from stdin): the subject, "
            "chain and purpose come from it.",
        ),
    ] = None,
    token_audience: Annotated[
        str | None,
        typer.Option("--token-audience", help="The audience the token must name."),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """May SUBJECT, through the --actor chain, do ACTION on RESOURCE? Prints the reason;
    exit status 0 if allowed, 3 if denied. With --token: [SUBJECT] ACTION RESOURCE."""
    subj: str | None = subject
    if resource is None:
        if token is None or action is None:
            raise typer.BadParameter(
                "give SUBJECT ACTION RESOURCE (or ACTION RESOURCE with --token)",
                param_hint="RESOURCE",
            )
        subj, action, resource = None, subject, action
    assert action is not None
    if token == "-":
        token = sys.stdin.readline().strip()
        if not token:
            raise typer.BadParameter("no token on standard input", param_hint="--token")
    ctx = parse_json_object(context, "--context")
    rprops = parse_json_object(resource_properties, "--resource-properties")
    sprops = parse_json_object(subject_properties, "--subject-properties")
    with connect(db, url, api_key) as kp:
        d = kp.decide(
            subj,
            action,
            resource,
            store=store,
            actors=actor or (),
            purpose=purpose,
            context=ctx,
            delegation_id=delegation,
            tool=tool,
            model_id=model_id,
            at_least_as_fresh=fresh,
            resource_properties=rprops,
            subject_properties=sprops,
            token=token,
            token_audience=token_audience,
        )
    if wants_json(as_json, output):
        emit_json(decision_json(d))
    else:
        if d.allowed:
            out.print(f"[green]allowed[/green]: {escape(d.reason_user)}", highlight=False)
        else:
            more = " (requestable)" if d.requestable else ""
            out.print(
                f"[red]denied[/red] \\[{escape(d.code)}]{more}: {escape(d.reason_user)}",
                highlight=False,
            )
        out.print(
            f"decision {d.decision_id} at revision {d.revision}"
            + (f", delegations {', '.join(d.delegation_ids)}" if d.delegation_ids else "")
            + (f", guardrails v{d.guardrail_version}" if d.guardrail_version else ""),
            highlight=False,
            markup=False,
        )
    raise typer.Exit(0 if d.allowed else 3)

"""``keyplane gateway …`` — the MCP gateway (issue 9) from the command line: downstream
servers (``server add|update|get|list|delete|discover``), their tools (``tool list|get|
approve|disable|enable|classify``), toolsets (``toolset put|list|delete``), kill switches
(``kill``), the store's gateway settings (``settings get|set``) and the gateway itself
over stdio for a local agent host (``stdio``).

Like every command: the local database (``--db``) or a server (``--url`` + ``--api-key``);
a table for people, ``--json`` for scripts (the REST API's JSON). A downstream secret is
never a plain command-line argument (argv is visible to other users and kept in shell
history): it comes from an environment variable (``--secret-env VAR``), from stdin
(``--secret-stdin``) or from a hidden prompt.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated, Any

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    err,
    out,
    table,
    timestamp,
    wants_json,
)
from keyplane.cli.identities import show_table
from keyplane.gateway.records import McpServer, McpTool, split_ref

__all__ = ["gateway_app"]

gateway_app = typer.Typer(
    help="The MCP gateway: downstream MCP servers, their tools (approve, classify, "
    "disable), toolsets, kill switches, settings, and the gateway over stdio.",
    no_args_is_help=True,
)
server_app = typer.Typer(help="Downstream MCP servers.", no_args_is_help=True)
tool_app = typer.Typer(
    help="The tools of downstream servers: approve, classify, disable, enable.",
    no_args_is_help=True,
)
toolset_app = typer.Typer(
    help="Toolsets: named groups of tools, granted with `toolset:<name>#member@<agent>`.",
    no_args_is_help=True,
)
settings_app = typer.Typer(help="The store's gateway settings.", no_args_is_help=True)
gateway_app.add_typer(server_app, name="server")
gateway_app.add_typer(tool_app, name="tool")
gateway_app.add_typer(toolset_app, name="toolset")
gateway_app.add_typer(settings_app, name="settings")

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
ToolArg = Annotated[str, typer.Argument(help="The tool, as <server>/<tool>.")]


def _when(ts: float | None) -> str:
    return "" if ts is None else timestamp(ts)


def _usage(message: str) -> typer.Exit:
    err.print(f"error[validation_error]: {message}", markup=False, highlight=False)
    return typer.Exit(2)


def _ref(ref: str) -> tuple[str, str]:
    parts = split_ref(ref)
    if parts is None:
        raise _usage(f"{ref!r} is not a tool: write <server>/<tool>, e.g. github/list_issues")
    return parts


def _env(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    found: dict[str, str] = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise _usage(f"--env {p!r}: write NAME=VALUE")
        found[name] = value
    return found


def _secret(secret_env: str | None, secret_stdin: bool, *, prompt: bool) -> str | None:
    """The downstream secret: from the named variable, stdin, or a hidden prompt."""
    if secret_env and secret_stdin:
        raise _usage("give --secret-env or --secret-stdin, not both")
    if secret_env:
        value = os.environ.get(secret_env)
        if not value:
            raise _usage(f"--secret-env {secret_env}: the variable is not set or empty")
        return value
    if secret_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise _usage("--secret-stdin: nothing read from stdin")
        return value
    if prompt:
        value = typer.prompt("Secret for the downstream server", hide_input=True)
        return str(value) or None
    return None


def _credential(
    kind: str | None,
    header: str | None,
    token_url: str | None,
    client_id: str | None,
    scope: str | None,
    audience: str | None,
    env_var: str | None,
) -> dict[str, Any] | None:
    if kind is None:
        if any(v is not None for v in (header, token_url, client_id, scope, audience, env_var)):
            raise _usage("credential options need --credential (the kind)")
        return None
    given = {
        "header": header,
        "token_url": token_url,
        "client_id": client_id,
        "scope": scope,
        "audience": audience,
        "env_var": env_var,
    }
    return {"kind": kind, **{k: v for k, v in given.items() if v is not None}}


def _server_json(s: McpServer) -> dict[str, Any]:
    return s.to_dict()


def _show_server(s: McpServer, as_json: bool) -> None:
    if as_json:
        emit_json(_server_json(s))
        return
    where = s.url if s.transport == "http" else shlex.join(s.command)
    out.print(f"{s.name} ({s.transport}) {where}", markup=False, highlight=False)
    c = s.credential
    secret = f", secret set {_when(c.secret_set_at)}" if c.secret_set_at is not None else ""
    out.print(f"  status: {s.status}" + (f" ({s.status_reason})" if s.status_reason else ""),
              markup=False, highlight=False)  # fmt: skip
    out.print(f"  credential: {c.kind}{secret}", markup=False, highlight=False)
    out.print(
        f"  discovery: every {s.discovery_interval_seconds}s, last {_when(s.last_discovered_at)}"
        + (f", error: {s.last_discovery_error}" if s.last_discovery_error else ""),
        markup=False,
        highlight=False,
    )


def _tool_rows(tools: list[McpTool]) -> None:
    t = table("tool", "exposed as", "status", "kind", "risk", "digest")
    for x in tools:
        t.add_row(x.ref, x.exposed, x.status, x.kind, x.risk, x.digest[:19])
    show_table(t)


def _show_tool(x: McpTool, as_json: bool) -> None:
    if as_json:
        emit_json(x.to_dict())
        return
    out.print(f"{x.ref} ({x.exposed}): {x.status}" + (f" — {x.status_reason}" if x.status_reason
              else ""), markup=False, highlight=False)  # fmt: skip
    out.print(f"  kind {x.kind}, risk {x.risk}; digest {x.digest}", markup=False, highlight=False)
    if x.approved_digest:
        out.print(
            f"  approved by {x.approved_by} at {_when(x.approved_at)} ({x.approved_digest})",
            markup=False,
            highlight=False,
        )
    if x.description:
        out.print(f"  {x.description}", markup=False, highlight=False)


# ---------------------------------------------------------------------------- servers

CredKindOpt = Annotated[
    str | None,
    typer.Option(
        "--credential",
        help="How the gateway authenticates: none, bearer, header, oauth_client_credentials "
        "(HTTP) or env (stdio).",
    ),
]
HeaderOpt = Annotated[str | None, typer.Option("--header", help="For header: the header name.")]
TokenUrlOpt = Annotated[
    str | None, typer.Option("--token-url", help="For oauth_client_credentials.")
]
ClientIdOpt = Annotated[
    str | None, typer.Option("--client-id", help="For oauth_client_credentials.")
]
ScopeOpt = Annotated[str | None, typer.Option("--scope", help="OAuth scope, sent when set.")]
AudienceOpt = Annotated[str | None, typer.Option("--audience", help="OAuth audience.")]
EnvVarOpt = Annotated[
    str | None, typer.Option("--env-var", help="For env: the variable the secret goes in.")
]
SecretEnvOpt = Annotated[
    str | None,
    typer.Option("--secret-env", help="Read the secret from this environment variable."),
]
SecretStdinOpt = Annotated[
    bool, typer.Option("--secret-stdin", help="Read the secret from the first line of stdin.")
]
UrlArgOpt = Annotated[
    str | None, typer.Option("--server-url", help="For http: the server's MCP endpoint URL.")
]
CommandOpt = Annotated[
    str | None,
    typer.Option("--command", help="For stdio: the command line (split like a shell, no shell)."),
]
EnvOpt = Annotated[
    list[str] | None, typer.Option("--env", help="For stdio: NAME=VALUE (repeatable; not secret).")
]
DescOpt = Annotated[str | None, typer.Option("--description", help="What the server is for.")]


@server_app.command("add")
def server_add(
    name: Annotated[str, typer.Argument(help="The server's name, e.g. github.")],
    transport: Annotated[str, typer.Option("--transport", help="http or stdio.")] = "http",
    server_url: UrlArgOpt = None,
    command: CommandOpt = None,
    env: EnvOpt = None,
    description: DescOpt = None,
    credential: CredKindOpt = None,
    header: HeaderOpt = None,
    token_url: TokenUrlOpt = None,
    client_id: ClientIdOpt = None,
    scope: ScopeOpt = None,
    audience: AudienceOpt = None,
    env_var: EnvVarOpt = None,
    secret_env: SecretEnvOpt = None,
    secret_stdin: SecretStdinOpt = False,
    discovery_interval: Annotated[
        int, typer.Option("--discovery-interval", min=0, help="Seconds (0: on demand only).")
    ] = 3600,
    discover: Annotated[
        bool, typer.Option("--discover/--no-discover", help="Discover its tools now.")
    ] = True,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Register a downstream MCP server; its tools are discovered (pending approval)."""
    cred = _credential(credential, header, token_url, client_id, scope, audience, env_var)
    needs_secret = cred is not None and cred["kind"] != "none"
    secret = _secret(secret_env, secret_stdin, prompt=needs_secret)
    with connect(db, url, api_key) as kp:
        s = kp.register_server(
            name, store=store, transport=transport, url=server_url,
            command=None if command is None else shlex.split(command), env=_env(env),
            description=description, credential=cred, secret=secret,
            discovery_interval_seconds=discovery_interval, discover=discover,
        )  # fmt: skip
    _show_server(s, wants_json(as_json, output))


@server_app.command("update")
def server_update(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    server_url: UrlArgOpt = None,
    command: CommandOpt = None,
    env: EnvOpt = None,
    description: DescOpt = None,
    credential: CredKindOpt = None,
    header: HeaderOpt = None,
    token_url: TokenUrlOpt = None,
    client_id: ClientIdOpt = None,
    scope: ScopeOpt = None,
    audience: AudienceOpt = None,
    env_var: EnvVarOpt = None,
    secret_env: SecretEnvOpt = None,
    secret_stdin: SecretStdinOpt = False,
    prompt_secret: Annotated[
        bool, typer.Option("--prompt-secret", help="Set a new secret, typed at a hidden prompt.")
    ] = False,
    discovery_interval: Annotated[
        int | None, typer.Option("--discovery-interval", min=0, help="Seconds (0: on demand).")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Change a server: options not given are unchanged. A new secret comes from
    --secret-env, --secret-stdin or --prompt-secret (a new credential kind needing one
    prompts for it)."""
    cred = _credential(credential, header, token_url, client_id, scope, audience, env_var)
    needs_secret = prompt_secret or (cred is not None and cred["kind"] != "none")
    secret = _secret(secret_env, secret_stdin, prompt=needs_secret)
    with connect(db, url, api_key) as kp:
        s = kp.update_server(
            name, store=store, url=server_url,
            command=None if command is None else shlex.split(command), env=_env(env),
            description=description, credential=cred, secret=secret,
            discovery_interval_seconds=discovery_interval,
        )  # fmt: skip
    _show_server(s, wants_json(as_json, output))


@server_app.command("get")
def server_get(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """One server (never its secret)."""
    with connect(db, url, api_key) as kp:
        s = kp.get_server(name, store=store)
    _show_server(s, wants_json(as_json, output))


@server_app.command("list")
def server_list(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's downstream servers."""
    with connect(db, url, api_key) as kp:
        found = kp.list_servers(store=store)
    if wants_json(as_json, output):
        emit_json([_server_json(s) for s in found])
        return
    t = table("name", "transport", "where", "status", "credential", "last discovered", "error")
    for s in found:
        where = s.url or shlex.join(s.command)
        t.add_row(s.name, s.transport, where, s.status, s.credential.kind,
                  _when(s.last_discovered_at), s.last_discovery_error or "")  # fmt: skip
    show_table(t)


@server_app.command("delete")
def server_delete(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Remove a server with its tools and every grant on them."""
    with connect(db, url, api_key) as kp:
        revision = kp.delete_server(name, store=store)
    if wants_json(as_json, output):
        emit_json({"revision": revision})
    else:
        out.print(f"Deleted server {name} (revision {revision}).", markup=False, highlight=False)


@server_app.command("discover")
def server_discover(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Discover the server's tools now: new and changed tools become pending."""
    with connect(db, url, api_key) as kp:
        d = kp.discover_tools(name, store=store)
    if wants_json(as_json, output):
        emit_json(d.to_dict())
    elif d.error:
        out.print(f"Discovery of {name} failed: {d.error}", markup=False, highlight=False)
    else:
        out.print(
            f"{name}: {len(d.added)} added, {len(d.changed)} changed, {len(d.removed)} removed, "
            f"{len(d.unchanged)} unchanged, {len(d.skipped)} skipped",
            markup=False,
            highlight=False,
        )
        for label, names in (("added", d.added), ("changed", d.changed), ("removed", d.removed)):
            for n in names:
                out.print(f"  {label}: {n}", markup=False, highlight=False)
        for n, why in d.skipped.items():
            out.print(f"  skipped: {n} ({why})", markup=False, highlight=False)
    if d.error:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- tools

KindOpt = Annotated[str | None, typer.Option("--kind", help="read, write or delete.")]
RiskOpt = Annotated[str | None, typer.Option("--risk", help="normal, sensitive or dangerous.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the ledger).")]


@tool_app.command("list")
def tool_list(
    server: Annotated[str | None, typer.Option("--server", help="Only this server's.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, enabled, disabled or removed.")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The gateway's tools with status and classification."""
    with connect(db, url, api_key) as kp:
        found = kp.list_tools(store=store, server=server, status=status)
    if wants_json(as_json, output):
        emit_json([x.to_dict() for x in found])
    else:
        _tool_rows(found)


@tool_app.command("get")
def tool_get(
    ref: ToolArg,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """One tool: definition, digest, status, classification."""
    server, name = _ref(ref)
    with connect(db, url, api_key) as kp:
        x = kp.get_tool(server, name, store=store)
    _show_tool(x, wants_json(as_json, output))


def _update(
    ref: str,
    store: str,
    db: str | None,
    url: str | None,
    api_key: str | None,
    as_json: bool,
    **changes: Any,
) -> None:
    server, name = _ref(ref)
    with connect(db, url, api_key) as kp:
        x = kp.update_tool(server, name, store=store, **changes)
    _show_tool(x, as_json)


@tool_app.command("approve")
def tool_approve(
    ref: ToolArg,
    kind: KindOpt = None,
    risk: RiskOpt = None,
    digest: Annotated[
        str | None,
        typer.Option("--digest", help="The digest you reviewed (refused if it changed)."),
    ] = None,
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Approve a pending tool (optionally classifying it): it becomes callable by whoever
    is granted it."""
    _update(ref, store, db, url, api_key, wants_json(as_json, output), status="enabled",
            kind=kind, risk=risk, reason=reason, expected_digest=digest)  # fmt: skip


@tool_app.command("disable")
def tool_disable(
    ref: ToolArg,
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Disable a tool (its kill switch): every call refused."""
    _update(ref, store, db, url, api_key, wants_json(as_json, output), status="disabled",
            reason=reason)  # fmt: skip


@tool_app.command("enable")
def tool_enable(
    ref: ToolArg,
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Enable a disabled tool again (a pending one: this approves it)."""
    _update(ref, store, db, url, api_key, wants_json(as_json, output), status="enabled",
            reason=reason)  # fmt: skip


@tool_app.command("classify")
def tool_classify(
    ref: ToolArg,
    kind: KindOpt = None,
    risk: RiskOpt = None,
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Set a tool's kind and risk (what guardrails read as resource.attributes)."""
    if kind is None and risk is None:
        raise _usage("give --kind, --risk or both")
    _update(ref, store, db, url, api_key, wants_json(as_json, output), kind=kind, risk=risk,
            reason=reason)  # fmt: skip


# ---------------------------------------------------------------------------- toolsets


@toolset_app.command("put")
def toolset_put(
    name: Annotated[str, typer.Argument(help="The toolset's name.")],
    tools: Annotated[list[str], typer.Argument(help="Its tools, as <server>/<tool>.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create or replace a toolset. Grant it with
    `keyplane tuple write toolset:<name>#member@agent:x`."""
    with connect(db, url, api_key) as kp:
        ts = kp.put_toolset(name, tools, store=store)
    if wants_json(as_json, output):
        emit_json(ts.to_dict())
    else:
        out.print(f"Toolset {ts.name}: {', '.join(ts.tools)}", markup=False, highlight=False)


@toolset_app.command("list")
def toolset_list(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every toolset with its tools and members."""
    with connect(db, url, api_key) as kp:
        found = kp.list_toolsets(store=store)
    if wants_json(as_json, output):
        emit_json([ts.to_dict() for ts in found])
        return
    t = table("toolset", "tools", "members")
    for ts in found:
        t.add_row(ts.name, ", ".join(ts.tools), ", ".join(ts.members))
    show_table(t)


@toolset_app.command("delete")
def toolset_delete(
    name: Annotated[str, typer.Argument(help="The toolset's name.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Delete a toolset with its member grants."""
    with connect(db, url, api_key) as kp:
        revision = kp.delete_toolset(name, store=store)
    if wants_json(as_json, output):
        emit_json({"revision": revision})
    else:
        out.print(f"Deleted toolset {name} (revision {revision}).", markup=False, highlight=False)


# ---------------------------------------------------------------------------- kill switch


@gateway_app.command("kill")
def kill(
    server: Annotated[str | None, typer.Option("--server", help="Kill one server.")] = None,
    tool: Annotated[
        str | None, typer.Option("--tool", help="Kill one tool: <server>/<tool>.")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Block one agent, e.g. agent:planner.")
    ] = None,
    release: Annotated[bool, typer.Option("--release", help="Release the switch instead.")] = False,
    reason: ReasonOpt = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Engage a kill switch — the whole store's gateway (only --store), a server, a tool or
    an agent — effective on the very next call; --release releases it."""
    given = [(lvl, v) for lvl, v in (("server", server), ("tool", tool), ("agent", agent)) if v]
    if len(given) > 1:
        raise _usage("give at most one of --server, --tool, --agent")
    level, target = given[0] if given else ("store", None)
    if level == "tool" and target is not None:
        _ref(target)
    with connect(db, url, api_key) as kp:
        k = kp.set_kill_switch(
            store=store, level=level, target=target, engaged=not release, reason=reason
        )
    if wants_json(as_json, output):
        emit_json(k.to_dict())
    else:
        what = f"{k.level} {k.target}" if k.target else f"store {store}"
        state = "engaged" if k.engaged else "released"
        out.print(f"Kill switch {state}: {what}.", markup=False, highlight=False)


# ---------------------------------------------------------------------------- settings


@settings_app.command("get")
def settings_get(
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The store's gateway settings and kill switches."""
    with connect(db, url, api_key) as kp:
        s = kp.get_gateway_settings(store=store)
    _show_settings(s.to_dict(), wants_json(as_json, output))


@settings_app.command("set")
def settings_set(
    record_arguments: Annotated[
        bool | None,
        typer.Option(
            "--record-arguments/--no-record-arguments",
            help="Keep tool-call arguments in the ledger (default: only their digest).",
        ),
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Change the store's gateway settings."""
    with connect(db, url, api_key) as kp:
        s = kp.update_gateway_settings(store=store, record_arguments=record_arguments)
    _show_settings(s.to_dict(), wants_json(as_json, output))


def _show_settings(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(d)
        return
    state = "enabled" if d["enabled"] else f"DISABLED ({d['disabled_reason'] or 'no reason'})"
    out.print(f"gateway: {state}", markup=False, highlight=False)
    out.print(f"record arguments: {'yes' if d['record_arguments'] else 'no (digest only)'}",
              markup=False, highlight=False)  # fmt: skip
    for node, why in sorted(d["blocked_agents"].items()):
        out.print(f"blocked: {node} ({why})", markup=False, highlight=False)


# ---------------------------------------------------------------------------- stdio


@gateway_app.command("stdio")
def stdio(
    store: StoreOpt = "default",
    db: DbOpt = None,
) -> None:
    """Serve the gateway over stdio for a local agent host: the agent's access token
    (a Keyplane JWT) comes from KEYPLANE_ACCESS_TOKEN; only the tools it may call are
    listed, every call is decided and recorded."""
    from keyplane.cli.common import fail
    from keyplane.config import Settings
    from keyplane.errors import KeyplaneError
    from keyplane.gateway.stdio import serve_gateway_stdio
    from keyplane.service.context import Services

    try:
        svc = Services.open(Settings.from_env(database_url=db))
    except KeyplaneError as exc:
        fail(exc)
    try:
        serve_gateway_stdio(svc, store, os.environ.get("KEYPLANE_ACCESS_TOKEN"))
    except KeyplaneError as exc:
        fail(exc)
    finally:
        svc.close()

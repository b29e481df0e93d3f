"""``make demo``: Keyplane end to end on a throw-away SQLite file, in well under a minute.

Run with ``python -m keyplane.demo``. Part 1 is what an operator and a developer do:
``keyplane init`` (the first admin API key), ``keyplane serve`` (REST, OpenFGA API and MCP
on one port), then the CLI and the Python SDK against that server — a model, an
organisation, checks, explain, a least-privilege reader key that is refused a write — and
the MCP gateway: a ticket-tracker MCP server (stdio, ``keyplane.gateway.example_server``)
registered with a sealed token, its tools discovered pending and two approved, a toolset
granted to an agent, the agent (the official MCP client, with its access token) listing and
calling tools through ``/gateway/default/mcp``, a pending tool refused, a tool kill switch
taking effect on the next call, and each call's ``gateway.tool_call`` ledger event.
Part 2 tours the graph engine in-process: exclusion, contextual tuples, a CEL condition,
an expiring grant and the errors bad input gets. Part 3 is the identity plane: a person, the
agent she delegates to and its sub-agent, decisions over the whole chain (purpose, scope),
a guardrail, the kill switch and the ledger's provenance of it all. Part 4 is tokens and
access on request: the planner gets a client secret and an access token (client
credentials), the summarizer exchanges it (RFC 8693) to act for the planner; the planner is
denied a document with its token, files the access request the denial names, is approved
by policy at once and allowed; then the token is revoked, and the exchanged one with it.
Part 5 is governance analytics: what the summarizer can reach and through which path (drawn
as Mermaid), what the planner was granted against what it used (and the least-privilege
recommendation), and the non-human identities' posture — findings mapped to the OWASP NHI
Top 10, the visibility score, and the HTML report written next to the demo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.panel import Panel

from keyplane.clock import FixedClock
from keyplane.config import Settings
from keyplane.embedded import Keyplane
from keyplane.errors import KeyplaneError
from keyplane.governance.report import render_html
from keyplane.graph.draw import access_mermaid
from keyplane.policy.decide import Decision as PolicyDecision
from keyplane.sdk import Client
from keyplane.sdk.oauth import TokenClient
from keyplane.service import access_requests, entitlements
from keyplane.service.credentials import authenticate_client
from keyplane.service.tokens import exchange_token, issue_client_credentials, token_issuer

MODEL = """\
model
  schema 1.1

type human

type agent
  relations
    define owner: [human]

type group
  relations
    define member: [human, agent, group#member]

type folder
  relations
    define viewer: [human, agent, group#member]
    define editor: [human, group#member]

type document
  relations
    define parent: [folder]
    define owner: [human]
    define blocked: [human, agent]
    define editor: [human, group#member] or owner or editor from parent
    define viewer: ([human, agent, human:*, group#member, agent with office_hours] or editor or viewer from parent) but not blocked

condition office_hours(hour: int) {
  hour >= 9 && hour < 18
}
"""

console = Console(width=110, soft_wrap=True)


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def show(label: str, value: object) -> None:
    if isinstance(value, bool):
        value = "allowed" if value else "denied"
    console.print(f"  {label:<48} [bold]{value}[/bold]", highlight=False)


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keyplane-demo-") as tmp:
        console.print(Panel.fit(f"Keyplane demo — throw-away databases in [bold]{tmp}[/bold]"))
        server_part(Path(tmp))
        db = Path(tmp) / "engine.db"
        clock = FixedClock(time.time())
        settings = Settings.from_env(database_url=f"sqlite:///{db}", poll_interval=0.0)
        with Keyplane.open(settings=settings, clock=clock) as kp:
            tour(kp, clock)
    console.print(f"\n[green]Demo finished in {time.monotonic() - started:.1f}s.[/green]")


ORG_MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type folder
  relations
    define viewer: [user, group#member]
    define editor: [user, group#member]

type document
  relations
    define parent: [folder]
    define editor: [user, group#member] or editor from parent
    define viewer: [user, group#member] or editor or viewer from parent
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    """Run the real ``keyplane`` CLI and echo the command and its output."""
    console.print(f"  [dim]$ keyplane {' '.join(args)}[/dim]", highlight=False)
    res = subprocess.run(
        [sys.executable, "-m", "keyplane", *args], env=env, capture_output=True, text=True
    )
    text = (res.stdout + res.stderr).rstrip()
    for line in text.splitlines():
        console.print(f"    {line}", highlight=False, markup=False)
    return text


def server_part(tmp: Path) -> None:
    db = f"sqlite:///{tmp / 'server.db'}"
    env = {**os.environ, "KEYPLANE_DATABASE_URL": db, "NO_COLOR": "1", "COLUMNS": "110"}

    step("Part 1. keyplane init: the database and the first admin API key (shown once)")
    admin = json.loads(_cli(env, "init", "--output", "json"))["api_key"]
    console.print(f"  admin key: {admin[:12]}… (only its hash is stored)", highlight=False)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    step(f"keyplane serve --port {port}: REST /v1, OpenFGA API, MCP /mcp on one port")
    server = subprocess.Popen(
        [sys.executable, "-m", "keyplane", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    try:
        client = Client(url, admin)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.list_stores()
                break
            except KeyplaneError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        remote = {**env, "KEYPLANE_URL": url, "KEYPLANE_API_KEY": admin}
        org_walkthrough(tmp, client, remote)
        gateway_walkthrough(client, url, remote)
    finally:
        server.terminate()
        server.wait(timeout=10)


def org_walkthrough(tmp: Path, client: Client, env: dict[str, str]) -> None:
    step("The CLI, against the server: a model and an organisation")
    model = tmp / "org.fga"
    model.write_text(ORG_MODEL)
    _cli(env, "model", "write", str(model))
    _cli(
        env,
        "tuple",
        "write",
        "group:engineering#member@user:anne",
        "group:engineering#member@group:platform#member",
        "group:platform#member@user:bob",
        "folder:designs#viewer@group:engineering#member",
        "folder:designs#editor@user:carol",
        "document:api-spec#parent@folder:designs",
    )
    _cli(env, "check", "user:bob", "viewer", "document:api-spec")
    _cli(env, "explain", "user:bob", "viewer", "document:api-spec")

    step("The Python SDK, against the same server")
    rev = client.write_tuples(["document:roadmap#viewer@user:dave"]).revision
    d = client.check("user:dave", "viewer", "document:roadmap", at_least_as_fresh=rev)
    show("Client.check(user:dave viewer document:roadmap)", d.allowed)
    show(
        "Client.list_objects(user:anne viewer document)",
        sorted(client.list_objects("user:anne", "viewer", "document")),
    )
    show(
        "Client.list_users(document:api-spec viewer, user)",
        sorted(client.list_users("document:api-spec", "viewer", ["user"])),
    )

    step("Least privilege: a reader key may ask, not change")
    _rec, reader = client.create_key(owner="user:anne", roles=["reader:default"])
    reader_client = Client(client.url, reader)
    show(
        "reader: check user:anne viewer document:api-spec",
        reader_client.check("user:anne", "viewer", "document:api-spec").allowed,
    )
    try:
        reader_client.write_tuples(["document:roadmap#viewer@user:mallory"])
    except KeyplaneError as exc:
        show("reader: write a tuple", f"refused — {exc.code}: {exc.message}")


def gateway_walkthrough(client: Client, url: str, env: dict[str, str]) -> None:
    step("The MCP gateway: a tracker MCP server behind Keyplane, an agent calling it")
    # the tracker's token: the gateway seals it and injects it; the agent never has it
    env = {**env, "DEMO_TRACKER_TOKEN": "tracker-secret-" + os.urandom(6).hex()}
    command = f"{sys.executable} -m keyplane.gateway.example_server"
    _cli(
        env, "gateway", "server", "add", "tracker", "--transport", "stdio",
        "--command", command, "--credential", "env", "--env-var", "TRACKER_TOKEN",
        "--secret-env", "DEMO_TRACKER_TOKEN", "--description", "ticket tracker",
    )  # fmt: skip
    _cli(env, "gateway", "tool", "list", "--server", "tracker")
    for tool in ("list_tickets", "create_ticket"):  # delete_project stays pending
        digest = client.get_tool("tracker", tool).digest
        _cli(env, "gateway", "tool", "approve", f"tracker/{tool}", "--digest", digest)
    _cli(env, "gateway", "toolset", "put", "triage", "tracker/list_tickets",
         "tracker/create_ticket")  # fmt: skip
    client.create_identity("human", "alice")
    client.create_identity("agent", "triage", owners=["human:alice"])
    _cli(env, "tuple", "write", "toolset:triage#member@agent:triage")
    _cred, secret = client.create_credential("agent:triage")
    assert secret is not None
    resource = f"{url}/gateway/default/mcp"
    with TokenClient(url, "agent:triage", secret) as oauth:
        token = oauth.client_credentials(resource=[resource])["access_token"]
    show("agent:triage's access token (client credentials, audience the gateway)",
         f"{token[:16]}…")  # fmt: skip

    async def agent(calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        from mcp import ClientSession

        out: list[tuple[str, str]] = []
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with (
            http,
            streamable_http_client(resource, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            out.append(("tools/list", ", ".join(t.name for t in listed.tools)))
            for name, args in calls:
                r = await session.call_tool(name, args)
                text = " ".join(c.text for c in r.content if hasattr(c, "text"))
                out.append((f"tools/call {name}", ("error — " if r.is_error else "") + text))
        return out

    calls: list[tuple[str, dict[str, Any]]] = [
        ("tracker__list_tickets", {}),
        ("tracker__create_ticket", {"title": "Agent-filed: flaky test"}),
        ("tracker__delete_project", {"project": "web"}),
    ]
    for label, text in anyio.run(agent, calls):
        show(label, text.replace("\n", " | "))
    step("A kill switch on one tool: the very next call is refused")
    _cli(env, "gateway", "kill", "--tool", "tracker/create_ticket", "--reason", "incident 42")
    for label, text in anyio.run(agent, [("tracker__create_ticket", {"title": "again"})]):
        show(label, text.replace("\n", " | "))
    step("Every call is a ledger event: who, for whom, which tool, the argument digest")
    for e in client.query_events(types=["gateway.tool_call"]).events:
        d = e.details or {}
        show(
            f"{e.outcome} {e.resource}",
            f"subject {e.subject}, {', '.join(e.reasons)}, arguments "
            f"{str(d.get('arguments_digest', ''))[:19]}…, {d.get('latency_ms')} ms",
        )


def tour(kp: Keyplane, clock: FixedClock) -> None:
    step("Part 2. The engine in-process: a model with humans, agents and a condition")
    rec = kp.write_model(MODEL)
    show("model version", rec.id)

    step("The graph: who is in which group, which folder holds what")
    res = kp.write_tuples(
        [
            "group:eng#member@human:anne",
            "group:platform#member@human:bob",
            "group:eng#member@group:platform#member",
            "folder:roadmaps#viewer@group:eng#member",
            "folder:roadmaps#editor@human:carol",
            "document:q3-plan#parent@folder:roadmaps",
            "document:q3-plan#owner@human:dana",
            "agent:triage-bot#owner@human:bob",
            "document:handbook#viewer@human:*",
        ]
    )
    show("tuples written, revision", res.revision)

    step("Checks")
    for user, rel, obj in [
        ("human:anne", "viewer", "document:q3-plan"),
        ("human:bob", "viewer", "document:q3-plan"),
        ("human:carol", "editor", "document:q3-plan"),
        ("human:erin", "viewer", "document:q3-plan"),
        ("human:erin", "viewer", "document:handbook"),
    ]:
        d = kp.check(user, rel, obj, at_least_as_fresh=res.revision)
        show(f"{user} {rel} {obj}", "allowed" if d else "denied")

    step("Explain: the path that grants, or why not")
    console.print(kp.explain("human:bob", "viewer", "document:q3-plan").render())
    console.print(kp.explain("human:erin", "viewer", "document:q3-plan").render())

    step("List objects and list users")
    show("documents bob can view", sorted(kp.list_objects("human:bob", "viewer", "document")))
    show(
        "humans who can view q3-plan",
        sorted(kp.list_users("document:q3-plan", "viewer", ["human"])),
    )

    step("Exclusion: blocking beats every grant")
    kp.write_tuples(["document:q3-plan#blocked@human:bob"])
    show(
        "bob viewer q3-plan after block", bool(kp.check("human:bob", "viewer", "document:q3-plan"))
    )

    step("A contextual tuple: access for this request only")
    d = kp.check(
        "human:erin",
        "viewer",
        "document:q3-plan",
        contextual_tuples=["group:eng#member@human:erin"],
    )
    show("erin, if she were in eng (not stored)", "allowed" if d else "denied")
    show("erin, stored graph", bool(kp.check("human:erin", "viewer", "document:q3-plan")))

    step("A condition: the agent may read only during office hours")
    kp.write_tuples(
        [
            {
                "object": "document:q3-plan",
                "relation": "viewer",
                "user": "agent:triage-bot",
                "condition": {"name": "office_hours"},
            }
        ]
    )
    for hour in (10, 22):
        d = kp.check("agent:triage-bot", "viewer", "document:q3-plan", context={"hour": hour})
        show(f"triage-bot at {hour}:00", "allowed" if d else "denied")
    try:
        kp.check("agent:triage-bot", "viewer", "document:q3-plan")
    except KeyplaneError as exc:
        show("triage-bot with no hour in the context", f"error {exc.code}")

    step("An expiring grant: stops granting at its instant, no clean-up job")
    kp.write_tuples(
        [
            {
                "object": "document:handbook",
                "relation": "owner",
                "user": "human:erin",
                "expires_at": clock.now() + 3600,
            }
        ]
    )
    show("erin editor handbook now", bool(kp.check("human:erin", "editor", "document:handbook")))
    clock.advance(3601)
    show(
        "erin editor handbook one hour later",
        bool(kp.check("human:erin", "editor", "document:handbook")),
    )

    step("Bad input gets a clear error with a stable code")
    for bad in ["document:q3-plan#viewer@robot:x", "document:q3-plan#approver@human:anne"]:
        try:
            kp.write_tuples([bad])
        except KeyplaneError as exc:
            show(bad, f"{exc.code} ({exc.fga_code}): {exc.message}")
    agents(kp, clock)
    console.print("Next: `keyplane --help`, the README quickstart, docs/.")


def _decided(label: str, d: PolicyDecision) -> None:
    show(label, "allowed" if d.allowed else f"denied — {d.code}")
    if not d.allowed:
        console.print(f"    {d.reason_user}", highlight=False, markup=False)


def agents(kp: Keyplane, clock: FixedClock) -> None:
    step("Part 3. An agent acting for a person: identities, a delegation chain, the decision")
    kp.create_identity("human", "anne", display_name="Anne")
    kp.create_identity("agent", "planner", owners=["human:anne"])
    kp.create_identity("agent", "summarizer", owners=["human:anne"])
    root = kp.create_delegation(
        delegator="human:anne",
        delegate="agent:planner",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        purposes=["quarterly-review"],
        expires_at=clock.now() + 3600,
        max_depth=1,
    )
    sub = kp.create_delegation(
        delegator="agent:planner",
        delegate="agent:summarizer",
        scope=[{"actions": ["viewer"], "resource": "document:q3-plan"}],
        purposes=["quarterly-review"],
        expires_at=clock.now() + 1800,
        parent_id=root.id,
    )
    show("anne → planner (viewer on document:*, 1 h, 1 more hop)", root.id)
    show("planner → summarizer (viewer on q3-plan, 30 min)", sub.id)
    try:
        kp.create_delegation(
            delegator="agent:planner",
            delegate="agent:summarizer",
            scope=[{"actions": ["viewer", "editor"], "resource": "document:q3-plan"}],
            expires_at=clock.now() + 1800,
            parent_id=root.id,
        )
    except KeyplaneError as exc:
        show("a sub-delegation wider than its parent", f"{exc.code}: {exc.message}")
    rev = kp.write_tuples(
        ["document:q3-plan#viewer@agent:planner", "document:q3-plan#viewer@agent:summarizer"]
    ).revision
    chain = ["agent:planner", "agent:summarizer"]
    d = kp.decide(
        "human:anne",
        "viewer",
        "document:q3-plan",
        actors=chain,
        purpose="quarterly-review",
        at_least_as_fresh=rev,
    )
    _decided("anne → planner → summarizer: view q3-plan", d)
    _decided(
        "… for another purpose",
        kp.decide("human:anne", "viewer", "document:q3-plan", actors=chain, purpose="marketing"),
    )
    _decided(
        "… for a document the sub-delegation does not cover",
        kp.decide(
            "human:anne", "viewer", "document:handbook", actors=chain, purpose="quarterly-review"
        ),
    )

    step("A guardrail: no delegation chain longer than one hop")
    kp.put_guardrails(
        [{"id": "one-hop", "effect": "forbid", "expression": "chain_length > 1",
          "description": "agents may not pass work on to sub-agents"}]
    )  # fmt: skip
    _decided(
        "anne → planner → summarizer: view q3-plan",
        kp.decide(
            "human:anne", "viewer", "document:q3-plan", actors=chain, purpose="quarterly-review"
        ),
    )
    kp.put_guardrails([])

    step("The kill switch: suspend the planner")
    kp.suspend_identity("agent:planner", reason="demo: compromised")
    last = kp.decide(
        "human:anne", "viewer", "document:q3-plan", actors=chain, purpose="quarterly-review"
    )
    _decided("anne → planner → summarizer: view q3-plan", last)
    revoked = [dl.id for dl in kp.list_delegations(status="revoked").items]
    show("delegations revoked with it", len(revoked))

    tokens_and_requests(kp, clock)
    analytics(kp)

    step("Provenance: the ledger holds every decision, verifiable offline")
    prov = kp.get_decision(d.decision_id)
    show("first decision's event", f"{prov.event.type} {prov.event.outcome}")
    report = kp.verify_ledger()
    show("ledger verify", f"ok={report.ok}, {report.checked} events checked")


def _claims(c: Mapping[str, Any]) -> str:
    act, chain = c.get("act"), []
    while isinstance(act, Mapping):
        chain.append(str(act["sub"]))
        act = act.get("act")
    exp = int(c["exp"]) - int(c["iat"])
    return f"sub={c['sub']} act={' → '.join(chain) or '-'} exp=+{exp}s jti={str(c['jti'])[:8]}…"


def tokens_and_requests(kp: Keyplane, clock: FixedClock) -> None:
    step("Part 4. Tokens and access on request: the planner, back at work, gets a token")
    svc = kp.services
    store = svc.settings.default_store
    show("agent:planner reactivated", kp.reactivate_identity("agent:planner").status)
    issuer = token_issuer(svc, store)
    endpoint = f"{issuer}/oauth2/token"

    cred, secret = kp.create_credential("agent:planner")
    show("client secret credential for agent:planner", f"{cred.id} (secret shown once)")
    planner = authenticate_client(
        svc, store, "agent:planner", secret=secret, token_endpoint_url=endpoint
    )
    issued = issue_client_credentials(svc, store, planner, issuer=issuer)
    token = issued.access_token
    show("client_credentials → access token", f"{token[:16]}… ({len(token)} chars)")
    show("its claims", _claims(issued.claims))

    step("RFC 8693 exchange: the summarizer acts for the planner, under a delegation")
    kp.create_delegation(
        delegator="agent:planner",
        delegate="agent:summarizer",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        expires_at=clock.now() + 900,
    )
    summarizer = authenticate_client(
        svc, store, "agent:summarizer",
        secret=kp.create_credential("agent:summarizer")[1], token_endpoint_url=endpoint,
    )  # fmt: skip
    access = "urn:ietf:params:oauth:token-type:access_token"
    exchanged = exchange_token(
        svc, store, summarizer, issuer=issuer,
        subject_token=token, subject_token_type=access,
        actor_token=issue_client_credentials(svc, store, summarizer, issuer=issuer).access_token,
        actor_token_type=access,
    )  # fmt: skip
    show("planner's token exchanged by agent:summarizer", _claims(exchanged.claims))
    _decided(
        "summarizer for planner (token): view q3-plan",
        kp.decide(None, "viewer", "document:q3-plan", token=exchanged.access_token),
    )

    step("Denied with the token → the access request the denial names → policy approves")
    entitlements.create_entitlement(
        svc, kp.caller, store, "budget-viewer", object="document:budget", relation="viewer",
        owners=["human:anne"], risk="low", max_duration_seconds=900, agents_may_request=True,
        approval=[{"id": "low-short", "outcome": "approve",
                   "when": 'entitlement.risk == "low" && request.duration_seconds <= 900'}],
        description="read the budget",
    )  # fmt: skip
    denied = kp.decide(None, "viewer", "document:budget", token=token)
    _decided("planner (token): view document:budget", denied)
    ask = denied.reason["request"]
    show("reason.request", f"{ask['entitlement']} for {ask['beneficiary']}")
    req = access_requests.create_access_request(
        svc, kp.caller, store, ask["entitlement"], object=ask["object"], token=token,
        duration_seconds=ask["max_duration_seconds"], purpose="quarterly-review",
        justification="the Q3 review cites the budget",
    )  # fmt: skip
    minutes = int((req.grant_expires_at or 0) - (req.grant_starts_at or 0)) // 60
    how = "auto-approved" if req.state == "active" else "decided"
    show("access request filed", f"{req.state} — {how} by rule {req.rule_id}, {minutes} min")
    _decided(
        "planner (token): view document:budget, retried",
        kp.decide(None, "viewer", "document:budget", token=token),
    )

    step("Revoke the token: every decision with it denies at once")
    kp.revoke_token(token)
    _decided(
        "planner (revoked token): view document:budget",
        kp.decide(None, "viewer", "document:budget", token=token),
    )
    _decided(
        "summarizer (token exchanged from it): view q3-plan",
        kp.decide(None, "viewer", "document:q3-plan", token=exchanged.access_token),
    )


def analytics(kp: Keyplane) -> None:
    step("Part 5. Governance analytics: reachable, used, and the posture of the agents")
    kp.write_tuples(["document:handbook#viewer@agent:planner"])  # a grant nobody uses
    entries = list(kp.iter_effective_access("agent:summarizer"))
    for e in entries:
        how = f"for {e.on_behalf_of}" if e.via == "delegation" else "itself"
        show(f"agent:summarizer reaches {e.object} ({e.relation})", f"{e.via}, {how}")
    own = [e for e in entries if e.via == "graph"]
    if own:
        console.print(access_mermaid(own[:1], title="agent:summarizer"), markup=False)
    op = kp.over_privilege("agent:planner", window_days=30)
    show("agent:planner: grants / used / unused grants", (
        f"{len(op.grants)} / {len(op.used)} / {len(op.unused_grants)}"
    ))  # fmt: skip
    show("least privilege: keep", ", ".join(op.keep) or "-")
    show("least privilege: revoke", ", ".join(op.revoke) or "-")
    for x in kp.agents_exceeding_owners().items:
        lacks = ", ".join(f"{e.object}#{e.relation}" for e in x.excess)
        show(f"{x.agent} exceeds its {x.relationship} {x.principal}", lacks)
    report = kp.posture_report(window_days=30)
    show("visibility score", f"{report.visibility.score:.0%} of {report.visibility.total} NHIs")
    for f in report.findings[:4]:
        show(f"{f.owasp} {f.code}", f"{f.identity}: {f.title}")
    path = Path(tempfile.gettempdir()) / "keyplane-demo-posture.html"
    path.write_text(render_html(report), encoding="utf-8")
    show("HTML report (open it in a browser)", f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

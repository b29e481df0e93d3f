"""The ledger's read and admin operations on every surface: REST (a real uvicorn server)
through the SDK's Client and AsyncClient — which return what the embedded API returns —,
the CLI (local database: events, show, export → verify --file, keys, retention, prune,
webhook) and the MCP tools ``query_ledger`` and ``get_decision``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from reading_helpers import MASTER_KEY, MODEL, decide, settings
from typer.testing import CliRunner

from keyplane import AsyncClient, Client, Keyplane
from keyplane.cli.main import app
from keyplane.errors import NotFoundError, PermissionDeniedError, ValidationError
from keyplane.ledger.chain import read_export, verify_export
from keyplane.mcp import build_tools
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, bootstrap_admin, create_key
from live_server import serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Keyplane, str, str]]:
    """An embedded Keyplane and a server on the same database: (kp, url, admin key)."""
    kp = Keyplane.open(settings=settings(f"sqlite:///{tmp_path / 'kp.db'}", tmp_path))
    try:
        kp.write_model(MODEL)
        kp.write_tuples(["document:plan#viewer@user:anne"])
        _, key = bootstrap_admin(kp.services)
        with serve(kp.services) as url:
            yield kp, url, key
    finally:
        kp.close()


def test_client_returns_what_the_embedded_api_returns(
    served: tuple[Keyplane, str, str],
) -> None:
    kp, url, key = served
    allowed = decide(kp, "user:anne", "viewer", "document:plan")
    decide(kp, "user:bob", "viewer", "document:plan")
    kp.services.ledger.flush()
    with Client(url, key) as c:
        local = kp.query_events(types=["decision.*"])
        remote = c.query_events(types=["decision.*"])
        assert remote == local and len(remote.events) == 2
        page = c.query_events(limit=1)
        assert len(page.events) == 1 and page.next_cursor == str(page.events[0].seq)
        assert c.query_events(cursor=page.next_cursor, limit=1).events[0].seq == 2
        assert c.query_events(outcome="deny").events[0].subject == "user:bob"

        p = c.get_decision(allowed)
        assert p == kp.get_decision(allowed)
        assert p.explanation is not None and p.explanation["allowed"] is True

        assert c.verify_ledger() == kp.verify_ledger()
        assert c.ledger_public_keys() == kp.ledger_public_keys()
        lines = list(c.export_events())
        assert lines == list(kp.export_events())
        assert verify_export(read_export(lines))["default"].ok
        ocsf = [json.loads(x) for x in c.export_events(format="ocsf")]
        assert ocsf and all("class_uid" in r for r in ocsf)

        with pytest.raises(NotFoundError):
            c.get_decision("01J0000000000000000000000X")
        with pytest.raises(ValidationError):
            c.export_events(format="xml")
        with pytest.raises(ValidationError):
            c.query_events(cursor="x")

    async def run() -> None:
        async with AsyncClient(url, key) as ac:
            assert await ac.query_events(types=["decision.*"]) == kp.query_events(
                types=["decision.*"]
            )
            assert await ac.get_decision(allowed) == kp.get_decision(allowed)
            assert (await ac.verify_ledger()).ok
            got = [line async for line in await ac.export_events()]
            assert verify_export(read_export(got))["default"].ok
            assert await ac.ledger_public_keys() == kp.ledger_public_keys()
            assert await ac.list_webhooks() == []

    asyncio.run(run())

    with Client(url, key) as c:
        # administration, over HTTP
        r = c.set_ledger_retention(max_events=2)
        assert r.max_events == 2 and r.store == "default"
        pruned = c.prune_ledger()
        assert pruned.deleted > 0 and pruned.anchor_seq is not None
        assert c.verify_ledger().ok
        hook, secret = c.create_webhook("https://siem.example/in")
        assert secret.startswith("whsec_")
        assert [h.id for h in c.list_webhooks()] == [hook.id]
        c.delete_webhook(hook.id)
        assert c.list_webhooks() == []
        with pytest.raises(NotFoundError):
            c.delete_webhook(hook.id)


def test_rest_refuses_readers_and_speaks_the_envelope(
    served: tuple[Keyplane, str, str],
) -> None:
    kp, url, key = served
    _, reader = create_key(kp.services, kp.caller, owner="r", roles=["reader"])
    _, auditor = create_key(kp.services, kp.caller, owner="a", roles=["auditor"])
    with Client(url, reader) as c, pytest.raises(PermissionDeniedError):
        c.query_events()
    with Client(url, auditor) as c:
        c.query_events()
        with pytest.raises(PermissionDeniedError):
            c.prune_ledger()
    r = httpx.get(
        f"{url}/v1/stores/default/ledger/events",
        params={"outcome": "maybe"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
    r = httpx.get(
        f"{url}/v1/stores/default/ledger/export",
        params={"format": "ocsf"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")


# ------------------------------------------------------------------------------ CLI


def test_cli_events_show_export_verify_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    kp = Keyplane.open(settings=settings(db, tmp_path))
    try:
        kp.write_model(MODEL)
        kp.write_tuples(["document:plan#viewer@user:anne"])
        did = decide(kp, "user:anne", "viewer", "document:plan")
    finally:
        kp.close()  # the CLI opens the database itself
    monkeypatch.setenv("KEYPLANE_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("KEYPLANE_LEDGER_WEBHOOK_INTERVAL", "0")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, (args, res.output)
        return res.output

    events = json.loads(
        run("ledger", "events", "--db", db, "--type", "decision.check", "-o", "json")
    )
    assert [e["id"] for e in events["events"]] == [did] and events["next_cursor"] is None
    table = run("ledger", "events", "--db", db, "--subject", "user:anne")
    assert "seq" in table.splitlines()[1]
    shown = run("ledger", "show", did, "--db", db)
    assert "ALLOWED: user:anne viewer document:plan" in shown
    assert "replayed at revision" in shown and "caller     system" in shown
    as_json = json.loads(run("ledger", "show", did, "--db", db, "-o", "json"))
    assert as_json["path_source"] == "replayed_at_revision"
    out = tmp_path / "ledger.jsonl"
    run("ledger", "export", "--db", db, "--to", str(out))
    verified = run("ledger", "verify", "--file", str(out))
    assert "OK" in verified
    # a tampered export is caught by the offline verifier
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, ln in enumerate(lines) if did in ln)
    lines[i] = lines[i].replace("user:anne", "user:mallory")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines))
    assert "modified" in run("ledger", "verify", "--file", str(bad), code=1)
    ocsf = run("ledger", "export", "--db", db, "--format", "ocsf")
    assert all(
        json.loads(x)["metadata"]["product"]["name"] == "Keyplane" for x in ocsf.splitlines()
    )
    keys = json.loads(run("ledger", "keys", "--db", db, "-o", "json"))
    assert keys and keys[0]["algorithm"] == "Ed25519"
    run("ledger", "show", "01J0000000000000000000000X", "--db", db, code=1)

    run("ledger", "retention", "--db", db, "--max-events", "1")
    pruned = json.loads(run("ledger", "prune", "--db", db, "-o", "json"))
    assert pruned["deleted"] >= 1
    assert "OK" in run("ledger", "verify", "--db", db)
    created = json.loads(
        run("ledger", "webhook", "create", "https://siem.example/in", "--db", db, "-o", "json")
    )
    hook_id = created["webhook"]["id"]
    assert created["secret"].startswith("whsec_")
    listed = json.loads(run("ledger", "webhook", "list", "--db", db, "-o", "json"))
    assert [h["id"] for h in listed] == [hook_id] and "secret" not in listed[0]
    run("ledger", "webhook", "delete", hook_id, "--db", db)
    run("ledger", "webhook", "delete", hook_id, "--db", db, code=1)


# ------------------------------------------------------------------------------ MCP


def test_mcp_query_ledger_and_get_decision(tmp_path: Path) -> None:
    kp = Keyplane.open(settings=settings(f"sqlite:///{tmp_path / 'mcp.db'}", tmp_path))
    try:
        kp.write_model(MODEL)
        kp.write_tuples(["document:plan#viewer@user:anne"])
        did = decide(kp, "user:anne", "viewer", "document:plan")
        svc: Services = kp.services
        _, secret = create_key(svc, Caller.system_caller(), owner="agent", roles=["auditor"])
        auditor = authenticate(svc, secret)
        tools = build_tools("default")

        q = tools["query_ledger"]
        args = q.input.model_validate({"types": ["decision.*"], "subject": "user:anne"})
        out, text = q.run(svc, auditor, "default", args)
        data = q.output.model_validate(out.model_dump()).model_dump()
        assert [e["id"] for e in data["events"]] == [did]
        assert "decision.check allow" in text and did in text

        g = tools["get_decision"]
        out, text = g.run(svc, auditor, "default", g.input.model_validate({"decision_id": did}))
        prov = out.model_dump()
        assert prov["event"]["id"] == did and prov["explanation"]["allowed"] is True
        assert text.startswith("ALLOWED: user:anne viewer document:plan")

        _, rsecret = create_key(svc, Caller.system_caller(), owner="agent", roles=["reader"])
        with pytest.raises(PermissionDeniedError):
            q.run(svc, authenticate(svc, rsecret), "default", q.input.model_validate({}))
        for spec in (q, g):
            tool = spec.to_mcp()
            assert tool.annotations is not None and tool.annotations.read_only_hint is True
    finally:
        kp.close()

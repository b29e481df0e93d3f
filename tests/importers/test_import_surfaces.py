"""Identity source imports on every surface, with the test-only importer ``demo``: REST
over real HTTP (uvicorn on loopback), the SDK (Client, AsyncClient, the embedded
Keyplane — one signature everywhere), the CLI (local with its progress phases, and against
the server) and the MCP tool ``list_imports`` through the official client on ``/mcp``."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from importers.demo_importer import export, register_demo
from keyplane import Keyplane
from keyplane.cli.main import app as cli_app
from keyplane.config import Settings
from keyplane.errors import PermissionDeniedError, ValidationError
from keyplane.importers.records import ImportRecord, ImportResult
from keyplane.mcp import NOT_EXPOSED, READ_TOOLS, WRITE_TOOLS
from keyplane.sdk import AsyncClient, AsyncKeyplaneAPI, Client, KeyplaneAPI
from keyplane.sdk.imports_api import AsyncImportsAPI, ImportsAPI
from keyplane.service import stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, bootstrap_admin, create_key
from live_server import serve
from mcp import ClientSession

S = "default"

register_demo()


class Live:
    def __init__(self, url: str, keys: dict[str, str], svc: Services) -> None:
        self.url, self.keys, self.svc = url, keys, svc


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    svc = Services.open(Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", poll_interval=0))
    try:
        stores.create_store(svc, Caller.system_caller(), S, store_id=S)
        _, admin = bootstrap_admin(svc)
        me = authenticate(svc, admin)
        _, writer = create_key(svc, me, owner="w", roles=[f"writer:{S}"])
        _, reader = create_key(svc, me, owner="r", roles=[f"reader:{S}"])
        with serve(svc) as base:
            yield Live(base, {"admin": admin, "writer": writer, "reader": reader}, svc)
    finally:
        svc.close()


# ---------------------------------------------------------------------------- REST


def test_rest(live: Live) -> None:
    h = {"authorization": f"Bearer {live.keys['writer']}"}
    base = f"{live.url}/v1/stores/{S}/imports"
    with httpx.Client(timeout=30) as http:
        dry = http.post(f"{base}/demo", params={"dry_run": "true"}, json=export(), headers=h)
        assert dry.status_code == 200, dry.text
        body = dry.json()
        assert body["dry_run"] is True and body["identities"]["added"] == 5
        assert http.get(base, headers=h).json() == {"imports": []}

        r = http.post(f"{base}/demo", json=export(), headers=h)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["dry_run"] is False and done["scope"] == "acme"
        assert done["identities"] == {"added": 5, "changed": 0, "removed": 0}
        assert done["tuples"]["added"] == 10 and done["model_changed"] is True
        assert "human:demo-alice" in done["identities_added"]

        again = http.post(f"{base}/demo", json=export(), headers=h).json()
        assert again["identities"] == {"added": 0, "changed": 0, "removed": 0}
        assert again["tuples"] == {"added": 0, "changed": 0, "removed": 0}

        listed = http.get(base, headers={"authorization": f"Bearer {live.keys['reader']}"})
        assert listed.status_code == 200
        [rec] = listed.json()["imports"]
        assert (rec["source"], rec["scope"], rec["identity_count"], rec["tuple_count"]) == (
            "demo", "acme", 5, 10
        )  # fmt: skip
        assert rec["digest"] == done["digest"] and rec["imported_by"].startswith("key:")

        bad = http.post(f"{base}/demo", json=export(users=[{"login": 3}]), headers=h)
        assert bad.status_code == 400
        err = bad.json()["error"]
        assert err["code"] == "validation_error" and err["details"]["path"] == "users[0].login"

        unknown = http.post(f"{base}/nosuch", json={}, headers=h)
        assert unknown.status_code == 400 and "unknown import source" in unknown.text

        refused = http.post(
            f"{base}/demo", json=export(),
            headers={"authorization": f"Bearer {live.keys['reader']}"},
        )  # fmt: skip
        assert refused.status_code == 403
        assert http.post(f"{base}/demo", json=export()).status_code == 401

        spec = http.get(f"{live.url}/openapi.json").json()
        assert spec["paths"]["/v1/stores/{store}/imports/{source}"]["post"]["operationId"] == (
            "import_source"
        )
        assert spec["paths"]["/v1/stores/{store}/imports"]["get"]["operationId"] == "list_imports"


# ---------------------------------------------------------------------------- SDK


IMPORT_METHODS = sorted(
    n for n, v in vars(ImportsAPI).items() if callable(v) and not n.startswith("_")
)


@pytest.mark.parametrize("name", IMPORT_METHODS)
def test_sdk_same_signature_everywhere(name: str) -> None:
    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    want = shape(getattr(Keyplane, name))
    for impl in (Client, AsyncClient, KeyplaneAPI, AsyncKeyplaneAPI, ImportsAPI, AsyncImportsAPI):
        assert shape(getattr(impl, name)) == want, impl
    assert inspect.iscoroutinefunction(getattr(AsyncClient, name))


def _flow(kp: Any) -> list[tuple[str, int, int]]:
    seen: list[tuple[str, int, int]] = []
    dry = kp.import_source("demo", export(), dry_run=True)
    assert isinstance(dry, ImportResult) and dry.dry_run and dry.identities.added == 5
    r = kp.import_source("demo", export(), progress=lambda *a: seen.append(a))
    assert r.identities.added == 5 and r.tuples.added == 10 and not r.dry_run
    smaller = export(bots=[], repos=[{"name": "api", "writers": ["alice"]}])
    r2 = kp.import_source("demo", smaller)
    assert r2.tuples.removed == 5 and r2.identities.removed == 2  # the two bots
    [rec] = kp.list_imports()
    assert isinstance(rec, ImportRecord)
    assert (rec.source, rec.scope, rec.identity_count, rec.tuple_count) == ("demo", "acme", 3, 5)
    assert rec.identities.removed == 2 and rec.revision == r2.revision
    with pytest.raises(ValidationError) as exc:
        kp.import_source("demo", export(bots=[{"name": ""}]))
    assert exc.value.details["path"] == "bots[0].name"
    return seen


def test_sdk_remote(live: Live) -> None:
    with Client(live.url, live.keys["writer"], default_store=S) as kp:
        seen = _flow(kp)
    assert seen == [("upload", 0, 1), ("upload", 1, 1)]
    with Client(live.url, live.keys["reader"], default_store=S) as kp:
        assert len(kp.list_imports()) == 1
        with pytest.raises(PermissionDeniedError):
            kp.import_source("demo", export())


def test_sdk_embedded(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'e.db'}", poll_interval=0.0)
    with Keyplane.open(settings=settings) as kp:
        seen = _flow(kp)
    phases = [p for p, _, _ in seen]
    assert phases[0] == "plan" and {"model", "identities", "tuples", "deprovision"} <= set(phases)


def test_sdk_async(live: Live) -> None:
    async def main() -> None:
        async with AsyncClient(live.url, live.keys["writer"], default_store=S) as kp:
            r = await kp.import_source("demo", export(), dry_run=True)
            assert r.dry_run and r.identities.added == 5
            r = await kp.import_source("demo", export())
            assert r.tuples.added == 10
            [rec] = await kp.list_imports()
            assert rec.tuple_count == 10

    asyncio.run(main())


# ---------------------------------------------------------------------------- CLI


def _cli(env: dict[str, str]) -> Any:
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0) -> Any:
        res = runner.invoke(cli_app, ["import", *args], env=env, input=input)
        assert res.exit_code == code, (args, res.exit_code, res.stdout, res.stderr)
        return res

    return run


def test_cli_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KEYPLANE_URL", "KEYPLANE_API_KEY", "KEYPLANE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    with Keyplane.open(settings=Settings(database_url=db, poll_interval=0.0)):
        pass  # the default store
    run = _cli({"KEYPLANE_DATABASE_URL": db})
    f = tmp_path / "org.json"
    f.write_text(json.dumps(export()))

    dry = run("source", "demo", str(f), "--dry-run").stdout
    assert "dry run of demo acme" in dry and "nothing written" in dry
    assert "identities to create (5)" in dry and "human:demo-alice" in dry
    assert run("list", "--json").stdout.strip() == "[]"

    out = run("source", "demo", str(f)).stdout
    assert "imported demo acme" in out and "identities +5 ~0 -0, tuples +10 -0" in out
    assert "model extended" in out
    again = run("source", "demo", str(f)).stdout
    assert "nothing changed" in again

    f.write_text(json.dumps(export(bots=[], repos=[])))
    res = json.loads(run("source", "demo", str(f), "--json").stdout)
    assert res["identities"]["removed"] == 2 and res["tuples"]["removed"] == 7
    listed = json.loads(run("list", "--json").stdout)
    assert [(r["source"], r["scope"], r["identity_count"]) for r in listed] == [("demo", "acme", 3)]
    table = run("list").stdout
    assert "demo" in table and "acme" in table

    # stdin, and several JSON documents one after the other (read as a list)
    bad = run("source", "demo", "-", input=json.dumps(export()) + "\n" + json.dumps(export()),
              code=1)  # fmt: skip
    assert "error[validation_error]" in bad.stderr and "$: must be a JSON object" in bad.stderr
    notjson = run("source", "demo", "-", input="{nope", code=2)
    assert "is not JSON" in notjson.stderr
    missing = run("aws", str(tmp_path / "nope.json"), code=2)
    assert "cannot read" in missing.stderr
    unknown = run("source", "nosuch", str(f), code=1)
    assert "error[validation_error]: unknown import source 'nosuch'" in unknown.stderr


def test_cli_remote(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYPLANE_DATABASE_URL", raising=False)
    run = _cli({"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["writer"]})
    f = tmp_path / "org.json"
    f.write_text(json.dumps(export()))
    res = json.loads(run("source", "demo", str(f), "--json").stdout)
    assert res["identities"]["added"] == 5 and res["dry_run"] is False
    listed = json.loads(run("list", "--json").stdout)
    assert listed[0]["tuple_count"] == 10
    reader = _cli({"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.keys["reader"]})
    denied = reader("source", "demo", str(f), code=1)
    assert "error[permission_denied]" in denied.stderr


# ---------------------------------------------------------------------------- MCP


@asynccontextmanager
async def _session(url: str, key: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with (
        client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        yield s


def test_mcp_catalogue() -> None:
    assert "list_imports" in READ_TOOLS and "list_imports" not in WRITE_TOOLS
    assert "import_source" not in READ_TOOLS + WRITE_TOOLS
    assert "bulk input" in NOT_EXPOSED["imports.import_source"]


def test_mcp_list_imports(live: Live) -> None:
    with Client(live.url, live.keys["admin"], default_store=S) as kp:
        kp.import_source("demo", export())

    async def main() -> None:
        async with _session(live.url, live.keys["reader"]) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert "list_imports" in names and "import_source" not in names
            r = await s.call_tool("list_imports", {})
            assert not r.is_error
            [rec] = r.structured_content["imports"]  # type: ignore[index]
            assert (rec["source"], rec["scope"], rec["identity_count"]) == ("demo", "acme", 5)
            text: str = r.content[0].text  # type: ignore[union-attr]
            assert "1 import(s):" in text and "demo acme: 5 identities, 10 tuples" in text

    asyncio.run(main())

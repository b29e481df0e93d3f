"""The MCP gateway's storage contract (GatewayStore, migration 0012) on SQLite and
PostgreSQL: every field of servers, tools and settings round-trips (the sealed secret's
bytes too); upserts replace whole rows stamped with the write's revision; deleting a
server removes its tools; settings default; an empty plan or a failing plan / ledger
callback changes nothing; tuples go through the changelog; ledger events commit with the
write; concurrent read-modify-write plans are serialized; delete_store clears it all."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from keyplane.errors import InvalidTupleError, StorageError, StoreNotFoundError, ValidationError
from keyplane.gateway.records import (
    DownstreamCredential,
    GatewaySettings,
    GatewayState,
    GatewayWrite,
    McpServer,
    McpTool,
    definition_digest,
)
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import canonical_json
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.storage import Storage
from keyplane.storage.base import GatewayTxReader, GatewayWriteResult
from keyplane.storage.gateway_sql import SERVER_COLS, SETTINGS_COLS, TOOL_COLS

S = "gw"
#: not valid UTF-8, a NUL inside: a BLOB / bytea must keep it byte for byte
SECRET = bytes(range(256)) + b"\x00\xff\xfe"


def _server(name: str = "github", **kw: object) -> McpServer:
    base = McpServer(
        store_id=S, name=name, transport="http", url="https://mcp.example.com/mcp",
        command=(), env={}, description="GitHub tools",
        credential=DownstreamCredential(
            kind="oauth_client_credentials", token_url="https://idp.example.com/token",
            client_id="gw-client", scope="repo read:org", audience="https://mcp.example.com",
            secret_set_at=1000.5,
        ),
        encrypted_secret=SECRET, status="enabled", status_reason=None,
        discovery_interval_seconds=900, last_discovered_at=1001.25,
        last_discovery_error=None, created_at=1000.5, created_by="human:admin",
        updated_at=1001.25, revision=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _stdio(name: str = "files", **kw: object) -> McpServer:
    base = McpServer(
        store_id=S, name=name, transport="stdio", url=None,
        command=("python", "-m", "files_server", "--root", "/srv/ünïcode"),
        env={"LOG_LEVEL": "debug", "B_SECOND": "2", "A_THIRD": "3"},
        description=None,
        credential=DownstreamCredential(kind="env", env_var="FILES_TOKEN", secret_set_at=7.0),
        encrypted_secret=b"sealed", status="disabled", status_reason="incident 42",
        discovery_interval_seconds=0, last_discovered_at=None,
        last_discovery_error="connection refused", created_at=5.0, created_by=None,
        updated_at=6.0, revision=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _tool(server: str, name: str, **kw: object) -> McpTool:
    schema = {
        "type": "object",
        # a client shows the parameters in this order: it must survive storage
        "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer", "minimum": 0}},
        "required": ["zeta"],
    }
    annotations = {"readOnlyHint": False, "destructiveHint": True, "title": "Délete"}
    base = McpTool(
        store_id=S, server=server, name=name, title="Delete a repository",
        description="Deletes a repository — for good.", input_schema=schema,
        annotations=annotations,
        digest=definition_digest("Deletes a repository — for good.", schema, annotations,
                                 "Delete a repository"),
        status="enabled", status_reason="approved in review",
        kind="delete", risk="dangerous", approved_digest="sha256:approved",
        approved_by="human:admin", approved_at=1002.75, first_seen_at=1001.25,
        last_seen_at=1003.0, removed_at=None, updated_at=1003.0, revision=0,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _write(st: Storage, change: GatewayWrite, **kw: object) -> int:
    result = st.write_gateway(S, lambda r: change, **kw)  # type: ignore[arg-type]
    assert isinstance(result, GatewayWriteResult) and result.changed
    return result.revision


def _event(revision: int, type: str = "gateway.server_registered") -> list[tuple[LedgerEvent, str]]:
    ev = LedgerEvent(
        id=new_event_id(), time=1.0, store=S, type=type, caller="human:admin",
        resource="mcp_server:github", revision=revision,
    )  # fmt: skip
    return [(ev, canonical_json(ev).decode("utf-8"))]


def _stamped(record: object, revision: int) -> object:
    return dataclasses.replace(record, revision=revision)  # type: ignore[type-var]


@pytest.fixture
def st(storage: Storage) -> Storage:
    storage.create_store("gateway", store_id=S)
    return storage


def test_a_new_store_has_the_default_state(st: Storage) -> None:
    state = st.read_gateway(S)
    assert state == GatewayState(S, 0, GatewaySettings(S))
    assert state.servers == {} and state.tools == {}


def test_every_field_round_trips(st: Storage) -> None:
    gh, files = _server(), _stdio()
    # the other shape: nothing optional set, a removed tool
    bare = McpTool(
        store_id=S, server="files", name="read.file_v2", digest="sha256:x", status="removed",
        kind="read", risk="normal", first_seen_at=1.0, last_seen_at=2.0, removed_at=3.0,
        updated_at=3.0,
    )  # fmt: skip
    tools = (_tool("github", "delete_repo"), bare)
    settings = GatewaySettings(
        S, enabled=False, disabled_reason="breach drill", record_arguments=True,
        blocked_agents={"agent:rogue": "exfiltration", "service:ci": "paused"},
        updated_at=1004.5, updated_by="human:sec",
    )  # fmt: skip
    rev = _write(st, GatewayWrite(servers=(gh, files), tools=tools, settings=settings))
    assert rev == 1 == st.current_revision(S)
    state = st.read_gateway(S)
    assert state.revision == 1
    assert state.servers == {"github": _stamped(gh, 1), "files": _stamped(files, 1)}
    assert state.tools == {(t.server, t.name): _stamped(t, 1) for t in tools}
    assert state.settings == _stamped(settings, 1)
    # the details a dataclass == would not show
    got = state.servers["github"]
    assert got.encrypted_secret == SECRET and isinstance(got.encrypted_secret, bytes)
    assert state.servers["files"].command == files.command
    assert list(state.servers["files"].env) == ["LOG_LEVEL", "B_SECOND", "A_THIRD"]
    tool = state.tool("github", "delete_repo")
    assert tool is not None and list(tool.input_schema["properties"]) == ["zeta", "alpha"]
    assert tool.digest == tools[0].digest
    # the plan's reader sees the same rows
    seen: dict[str, object] = {}

    def plan(r: GatewayTxReader) -> GatewayWrite:
        seen.update(
            store=r.store_id, gh=r.server("github"), nope=r.server("nope"), all=r.tools(),
            files=r.tools("files"), none=r.tools("nope"), settings=r.settings(),
        )  # fmt: skip
        return GatewayWrite()

    assert st.write_gateway(S, plan) == GatewayWriteResult(1, False)
    assert seen["store"] == S and seen["gh"] == state.servers["github"] and seen["nope"] is None
    assert seen["all"] == [state.tools[("files", "read.file_v2")], state.tools[("github", "delete_repo")]]  # fmt: skip
    assert seen["files"] == [state.tools[("files", "read.file_v2")]] and seen["none"] == []
    assert seen["settings"] == state.settings


def test_rows_take_the_write_store_and_revision(st: Storage) -> None:
    # whatever store id / revision the records carry, the write's are stored
    _write(st, GatewayWrite(servers=(_server(store_id="elsewhere", revision=99),)))
    got = st.read_gateway(S).servers["github"]
    assert (got.store_id, got.revision) == (S, 1)


def test_upserts_replace_whole_rows(st: Storage) -> None:
    _write(
        st,
        GatewayWrite(
            servers=(_server(), _stdio()),
            tools=(_tool("github", "a"), _tool("github", "b"), _tool("files", "c")),
        ),
    )
    # the secret cleared, the credential changed, an approved tool back to pending: every
    # column of the new record wins (a None replaces a value)
    changed = _server(
        url="https://mcp2.example.com/mcp", credential=DownstreamCredential(), encrypted_secret=None,
        description=None, last_discovered_at=None, last_discovery_error="timeout",
        discovery_interval_seconds=60, updated_at=2000.0,
    )  # fmt: skip
    pending = _tool(
        "github", "a", status="pending", status_reason="definition changed",
        approved_digest="sha256:approved", approved_at=None, approved_by=None, digest="sha256:new",
        kind="write", risk="sensitive", title=None, description=None, input_schema={},
        annotations={},
    )  # fmt: skip
    rev = _write(st, GatewayWrite(servers=(changed,), tools=(pending,)))
    assert rev == 2
    state = st.read_gateway(S)
    assert state.revision == 2
    assert state.servers["github"] == _stamped(changed, 2)
    assert state.servers["github"].encrypted_secret is None
    assert state.servers["github"].credential.to_dict()["has_secret"] is False
    assert state.tools[("github", "a")] == _stamped(pending, 2)
    # rows the write did not name keep their values and revision
    assert state.servers["files"].revision == 1
    assert state.tools[("github", "b")] == _stamped(_tool("github", "b"), 1)
    assert len(state.tools) == 3


def test_deleting_a_server_removes_its_tools(st: Storage) -> None:
    _write(
        st,
        GatewayWrite(
            servers=(_server(), _stdio()),
            tools=(_tool("github", "a"), _tool("github", "b"), _tool("files", "c")),
        ),
    )
    rev = _write(st, GatewayWrite(deleted_servers=("github", "never-existed")))
    state = st.read_gateway(S)
    assert rev == 2 == state.revision
    assert list(state.servers) == ["files"] and list(state.tools) == [("files", "c")]
    # deleted first, then upserted: re-registering in the same write starts it fresh
    _write(st, GatewayWrite(deleted_servers=("files",), servers=(_stdio(description="new"),)))
    state = st.read_gateway(S)
    assert state.servers["files"].description == "new" and state.tools == {}


def test_settings_default_then_replaced(st: Storage) -> None:
    assert st.read_gateway(S).settings == GatewaySettings(S)
    blocked = GatewaySettings(S, blocked_agents={"agent:a": "r"}, updated_at=1.0)
    _write(st, GatewayWrite(settings=blocked))
    _write(st, GatewayWrite(settings=GatewaySettings(S, enabled=False, updated_at=2.0)))
    got = st.read_gateway(S).settings
    assert got == GatewaySettings(S, enabled=False, updated_at=2.0, revision=2)
    assert got.blocked_agents == {}  # replaced, not merged


def test_an_empty_write_changes_nothing(st: Storage) -> None:
    _write(st, GatewayWrite(servers=(_server(),)))
    called: list[int] = []

    def events(rev: int) -> list[tuple[LedgerEvent, str]]:
        called.append(rev)
        return _event(rev)

    result = st.write_gateway(S, lambda r: GatewayWrite(), ledger_events=events)
    assert result == GatewayWriteResult(1, False)
    assert st.current_revision(S) == 1 == st.read_gateway(S).revision
    assert called == [] and st.read_events(S) == []


def test_a_failing_plan_or_event_or_row_writes_nothing(st: Storage) -> None:
    def failing_plan(r: GatewayTxReader) -> GatewayWrite:
        raise ValueError("refused")

    with pytest.raises(ValueError):
        st.write_gateway(S, failing_plan, ledger_events=_event)

    def broken(revision: int) -> list[tuple[LedgerEvent, str]]:
        raise RuntimeError("the ledger cannot take this event")

    full = GatewayWrite(
        servers=(_server(),),
        tools=(_tool("github", "a"),),
        settings=GatewaySettings(S, enabled=False),
        tuple_writes=(Tuple("mcp_tool:github/a", "server", "mcp_server:github"),),
    )
    with pytest.raises(RuntimeError):
        st.write_gateway(S, lambda r: full, ledger_events=broken)
    # a tool of a server that does not exist; a key twice in one write
    with pytest.raises(ValidationError):
        st.write_gateway(S, lambda r: GatewayWrite(servers=(_server(),), tools=(_tool("x", "a"),)))
    with pytest.raises(ValidationError):
        st.write_gateway(S, lambda r: GatewayWrite(servers=(_server(), _server())))
    with pytest.raises(ValidationError):
        st.write_gateway(
            S,
            lambda r: GatewayWrite(
                servers=(_server(),), tools=(_tool("github", "a"), _tool("github", "a"))
            ),
        )
    # a row the database refuses (its CHECK) midway rolls back the rows before it
    with pytest.raises(StorageError):
        st.write_gateway(
            S,
            lambda r: GatewayWrite(
                servers=(_server(),),
                tools=(_tool("github", "ok"), _tool("github", "bad", status="bogus")),
                tuple_writes=(Tuple("mcp_tool:github/ok", "server", "mcp_server:github"),),
            ),
            ledger_events=_event,
        )
    with pytest.raises(InvalidTupleError):
        st.write_gateway(
            S, lambda r: GatewayWrite(servers=(_server(),), tuple_writes=(Tuple("bad", "r", "u"),))
        )
    assert st.current_revision(S) == 0
    assert st.read_gateway(S) == GatewayState(S, 0, GatewaySettings(S))
    assert st.read_tuples(S).items == [] and st.read_changes(S).changes == []
    assert st.read_events(S) == []


def test_tuples_go_through_the_changelog_and_the_reader(st: Storage) -> None:
    server_t = Tuple("mcp_tool:github/a", "server", "mcp_server:github")
    in_set = Tuple("mcp_tool:github/a", "toolset", "toolset:triage")
    b_in_set = Tuple("mcp_tool:github/b", "toolset", "toolset:triage")
    member = Tuple("toolset:triage", "member", "group:eng#member")
    bot = Tuple("toolset:triage", "member", "agent:bot")
    rev = _write(
        st,
        GatewayWrite(
            servers=(_server(),),
            tools=(_tool("github", "a"), _tool("github", "b")),
            tuple_writes=(server_t, in_set, b_in_set, member, bot),
        ),
    )
    changes = st.read_changes(S).changes
    assert [(c.tuple.key, c.operation, c.revision) for c in changes] == [
        (t.key, "write", rev) for t in (server_t, in_set, b_in_set, member, bot)
    ]
    seen: dict[str, list[Tuple]] = {}

    def plan(r: GatewayTxReader) -> GatewayWrite:
        seen["tools"] = r.tuples("mcp_tool")
        seen["in_triage"] = r.tuples("mcp_tool", "toolset", "toolset:triage")
        seen["in_any_set"] = r.tuples("mcp_tool", "toolset", "toolset:")
        seen["members"] = r.tuples("toolset", "member")
        seen["groups"] = r.tuples("toolset", "member", "group:eng#member")
        seen["none"] = r.tuples("document")
        return GatewayWrite()

    st.write_gateway(S, plan)
    assert seen["tools"] == [server_t, in_set, b_in_set]
    assert seen["in_triage"] == seen["in_any_set"] == [in_set, b_in_set]
    assert seen["members"] == [bot, member] and seen["groups"] == [member]
    assert seen["none"] == []
    with pytest.raises(InvalidTupleError):
        st.write_gateway(S, lambda r: (r.tuples("mcp_tool", None, "nouser"), GatewayWrite())[1])

    # idempotent like a policy write: a present tuple is not written twice, a missing one
    # not deleted; only actual changes are logged
    rev2 = _write(
        st,
        GatewayWrite(
            tuple_writes=(server_t,),
            tuple_deletes=(in_set, b_in_set, Tuple("mcp_tool:github/zz", "toolset", "toolset:t")),
        ),
    )
    later = st.read_changes(S, after_revision=rev).changes
    assert [(c.tuple.key, c.operation, c.revision) for c in later] == [
        (in_set.key, "delete", rev2),
        (b_in_set.key, "delete", rev2),
    ]
    assert {t.key for t in st.read_tuples(S).items} == {server_t.key, member.key, bot.key}


def test_ledger_events_commit_with_the_write(st: Storage) -> None:
    rev = _write(st, GatewayWrite(servers=(_server(),)), ledger_events=_event)
    [ev] = st.read_events(S)
    assert (ev.type, ev.revision, ev.resource) == (
        "gateway.server_registered",
        rev,
        "mcp_server:github",
    )
    # a callback returning nothing: the write stands, no event
    _write(st, GatewayWrite(settings=GatewaySettings(S)), ledger_events=lambda rev: [])
    assert len(st.read_events(S)) == 1 and st.current_revision(S) == 2


def test_the_revision_moves_with_any_write_of_the_store(st: Storage) -> None:
    _write(st, GatewayWrite(servers=(_server(),)))
    assert st.read_gateway(S).revision == 1
    st.write(S, writes=[Tuple("document:x", "viewer", "user:a")])
    assert st.read_gateway(S).revision == 2  # what the gateway's cached snapshot watches
    assert st.read_gateway(S).servers["github"].revision == 1


def _race(*jobs: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(jobs))
    out: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = jobs[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_read_modify_write_plans_are_serialized(st: Storage) -> None:
    # each blocks one agent on top of what it reads: with the revision bumped before the
    # plan runs, no block is lost
    def block(agent: str) -> Callable[[], GatewayWriteResult]:
        def plan(r: GatewayTxReader) -> GatewayWrite:
            s = r.settings()
            agents = {**s.blocked_agents, agent: "kill switch"}
            return GatewayWrite(settings=dataclasses.replace(s, blocked_agents=agents))

        return lambda: st.write_gateway(S, plan)

    agents = [f"agent:a{i}" for i in range(4)]
    out = _race(*(block(a) for a in agents))
    results = [o for o in out if isinstance(o, GatewayWriteResult) and o.changed]
    assert len(results) == len(agents), out
    assert sorted(o.revision for o in results) == [1, 2, 3, 4]
    settings = st.read_gateway(S).settings
    assert sorted(settings.blocked_agents) == agents and settings.revision == 4


def test_delete_store_clears_the_gateway(st: Storage) -> None:
    _write(
        st,
        GatewayWrite(
            servers=(_server(), _stdio()),
            tools=(_tool("github", "a"),),
            settings=GatewaySettings(S, enabled=False),
            tuple_writes=(Tuple("mcp_tool:github/a", "server", "mcp_server:github"),),
        ),
    )
    st.create_store("other", store_id="other")
    _write_other = st.write_gateway(
        "other", lambda r: GatewayWrite(servers=(_server(store_id="other"),))
    )
    assert _write_other.changed
    st.delete_store(S)
    with pytest.raises(StoreNotFoundError):
        st.read_gateway(S)
    st.create_store("again", store_id=S)
    assert st.read_gateway(S) == GatewayState(S, 0, GatewaySettings(S))
    # the other store keeps its own
    assert list(st.read_gateway("other").servers) == ["github"]


def test_stores_are_isolated(st: Storage) -> None:
    st.create_store("other", store_id="other")
    _write(st, GatewayWrite(servers=(_server(),), tools=(_tool("github", "a"),)))
    assert st.read_gateway("other") == GatewayState("other", 0, GatewaySettings("other"))
    seen: list[object] = []

    def plan(r: GatewayTxReader) -> GatewayWrite:
        seen.extend([r.server("github"), r.tools(), r.settings()])
        return GatewayWrite()

    st.write_gateway("other", plan)
    assert seen == [None, [], GatewaySettings("other")]


def test_unknown_store(storage: Storage) -> None:
    with pytest.raises(StoreNotFoundError):
        storage.read_gateway("nope")
    with pytest.raises(StoreNotFoundError):
        storage.write_gateway("nope", lambda r: GatewayWrite(servers=(_server(),)))
    with pytest.raises(StoreNotFoundError):
        storage.write_gateway("nope", lambda r: GatewayWrite())


def test_migration_0012_has_the_same_columns_on_both_backends(storage: Storage) -> None:
    wanted = {
        "gateway_servers": SERVER_COLS,
        "gateway_tools": TOOL_COLS,
        "gateway_settings": SETTINGS_COLS,
    }
    sqlite = type(storage).__name__ == "SQLiteStorage"

    def columns(cur: object, table: str) -> list[tuple[str, str, str | None]]:
        if sqlite:
            rows = cur.execute(f"PRAGMA table_info({table})").fetchall()  # type: ignore[attr-defined]
            return [(r[1], r[2].lower(), None) for r in rows]
        cur.execute(  # type: ignore[attr-defined]
            "SELECT column_name, data_type, collation_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]  # type: ignore[attr-defined]

    found = storage._read_tx(lambda cur: {t: columns(cur, t) for t in wanted})  # type: ignore[attr-defined]
    for table, cols in wanted.items():
        assert [c[0] for c in found[table]] == [c.strip() for c in cols.split(",")], table
        for name, kind, collation in found[table]:
            if name.endswith("_at"):  # float8 in PostgreSQL (a float4 would lose seconds)
                assert kind == ("real" if sqlite else "double precision"), (table, name, kind)
            if name == "encrypted_secret":
                assert kind == ("blob" if sqlite else "bytea")
            if name in ("store_id", "name", "server"):
                assert collation in (None, "C"), (table, name, collation)

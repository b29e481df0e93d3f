"""The MCP gateway's tables (migration ``0012_gateway.sql``) in SQL both backends
understand: downstream servers, their tools and a store's gateway settings.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q``,
``_write_tx``, ``_read_tx``, ``_bump``, ``_revision``, ``_append_encoded_tx`` and the
policy mixin's ``_policy_tuples``), implementing :class:`keyplane.storage.base.GatewayStore`.

Every change goes through :meth:`GatewaySQLMixin.write_gateway`: the store's revision is
bumped FIRST (in PostgreSQL that locks the store row until commit, so the plan's reads and
the writes that follow are serialized with every other writer of the store; SQLite's single
writer gives the same), then the plan runs against a reader bound to the transaction, then
its rows are stored stamped with the new revision, its tuples written and logged in the
changelog (as a policy write's), and its ledger events chained — one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.errors import InvalidTupleError, ValidationError
from keyplane.gateway.records import (
    DownstreamCredential,
    GatewaySettings,
    GatewayState,
    GatewayWrite,
    McpServer,
    McpTool,
)
from keyplane.graph.tuples import Tuple
from keyplane.storage.base import GatewayWriteResult
from keyplane.storage.governance_sql import _row_tuple
from keyplane.storage.policy_sql import _TUPLE_COLS
from keyplane.storage.sql_host import SQLHost

if TYPE_CHECKING:
    from keyplane.ledger.events import LedgerEvent
    from keyplane.storage.base import GatewayTxReader

__all__ = ["GATEWAY_TABLES", "GatewaySQLMixin"]

R = TypeVar("R")
Cursor = Any

#: the tables :meth:`~keyplane.storage.base.StoreAdmin.delete_store` empties with the store
GATEWAY_TABLES = ("gateway_servers", "gateway_tools", "gateway_settings")

SERVER_COLS = (
    "store_id, name, transport, url, command, env, description, credential,"
    " encrypted_secret, status, status_reason, discovery_interval_seconds,"
    " last_discovered_at, last_discovery_error, created_at, created_by, updated_at, revision"
)
TOOL_COLS = (
    "store_id, server, name, title, description, input_schema, annotations, digest, status,"
    " status_reason, kind, risk, approved_digest, approved_by, approved_at, first_seen_at,"
    " last_seen_at, removed_at, updated_at, revision"
)
SETTINGS_COLS = (
    "store_id, enabled, disabled_reason, record_arguments, blocked_agents, updated_at,"
    " updated_by, revision"
)

# JSON as given: an input schema's property order is how a client shows the parameters,
# so keys are NOT sorted (the definition digest sorts them itself)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _marks(cols: str) -> str:
    return ", ".join("?" for _ in cols.split(","))


def _upsert(table: str, cols: str, key: tuple[str, ...]) -> str:
    names = [c.strip() for c in cols.split(",")]
    sets = ", ".join(f"{c} = excluded.{c}" for c in names if c not in key)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({_marks(cols)})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
    )


_SERVER_UPSERT = _upsert("gateway_servers", SERVER_COLS, ("store_id", "name"))
_TOOL_UPSERT = _upsert("gateway_tools", TOOL_COLS, ("store_id", "server", "name"))
_SETTINGS_UPSERT = _upsert("gateway_settings", SETTINGS_COLS, ("store_id",))


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str | bytes) else v


# ------------------------------------------------------------------------------ rows


def server_from_row(r: Sequence[Any]) -> McpServer:
    secret = r[8]
    return McpServer(
        store_id=str(r[0]),
        name=str(r[1]),
        transport=str(r[2]),
        url=r[3],
        command=tuple(str(p) for p in _json(r[4])),
        env={str(k): str(v) for k, v in dict(_json(r[5])).items()},
        description=r[6],
        credential=DownstreamCredential.from_json(_json(r[7])),
        encrypted_secret=None if secret is None else bytes(secret),
        status=str(r[9]),
        status_reason=r[10],
        discovery_interval_seconds=int(r[11]),
        last_discovered_at=_opt_float(r[12]),
        last_discovery_error=r[13],
        created_at=float(r[14]),
        created_by=r[15],
        updated_at=float(r[16]),
        revision=int(r[17]),
    )


def _server_params(s: McpServer, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        s.name,
        s.transport,
        s.url,
        _dumps(list(s.command)),
        _dumps(dict(s.env)),
        s.description,
        _dumps(s.credential.to_json()),
        None if s.encrypted_secret is None else bytes(s.encrypted_secret),
        s.status,
        s.status_reason,
        int(s.discovery_interval_seconds),
        _opt_float(s.last_discovered_at),
        s.last_discovery_error,
        float(s.created_at),
        s.created_by,
        float(s.updated_at),
        revision,
    )


def tool_from_row(r: Sequence[Any]) -> McpTool:
    return McpTool(
        store_id=str(r[0]),
        server=str(r[1]),
        name=str(r[2]),
        title=r[3],
        description=r[4],
        input_schema=dict(_json(r[5])),
        annotations=dict(_json(r[6])),
        digest=str(r[7]),
        status=str(r[8]),
        status_reason=r[9],
        kind=str(r[10]),
        risk=str(r[11]),
        approved_digest=r[12],
        approved_by=r[13],
        approved_at=_opt_float(r[14]),
        first_seen_at=float(r[15]),
        last_seen_at=float(r[16]),
        removed_at=_opt_float(r[17]),
        updated_at=float(r[18]),
        revision=int(r[19]),
    )


def _tool_params(t: McpTool, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        t.server,
        t.name,
        t.title,
        t.description,
        _dumps(dict(t.input_schema)),
        _dumps(dict(t.annotations)),
        t.digest,
        t.status,
        t.status_reason,
        t.kind,
        t.risk,
        t.approved_digest,
        t.approved_by,
        _opt_float(t.approved_at),
        float(t.first_seen_at),
        float(t.last_seen_at),
        _opt_float(t.removed_at),
        float(t.updated_at),
        revision,
    )


def settings_from_row(r: Sequence[Any]) -> GatewaySettings:
    return GatewaySettings(
        store_id=str(r[0]),
        enabled=bool(r[1]),
        disabled_reason=r[2],
        record_arguments=bool(r[3]),
        blocked_agents={str(k): str(v) for k, v in dict(_json(r[4])).items()},
        updated_at=float(r[5]),
        updated_by=r[6],
        revision=int(r[7]),
    )


def _settings_params(g: GatewaySettings, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        bool(g.enabled),
        g.disabled_reason,
        bool(g.record_arguments),
        _dumps(dict(g.blocked_agents)),
        float(g.updated_at),
        g.updated_by,
        revision,
    )


# ------------------------------------------------------------------------------ reads in a tx


class _GatewayTxReader:
    """:class:`~keyplane.storage.base.GatewayTxReader` over one open cursor."""

    def __init__(self, owner: GatewaySQLMixin, cur: Cursor, store_id: str) -> None:
        self._s = owner
        self._cur = cur
        self.store_id = store_id

    def server(self, name: str) -> McpServer | None:
        return self._s._select_server(self._cur, self.store_id, name)

    def tools(self, server: str | None = None) -> list[McpTool]:
        return self._s._select_tools(self._cur, self.store_id, server)

    def settings(self) -> GatewaySettings:
        return self._s._select_gateway_settings(self._cur, self.store_id)

    def tuples(
        self, object_type: str, relation: str | None = None, user: str | None = None
    ) -> list[Tuple]:
        return self._s._select_tuples_of_type(self._cur, self.store_id, object_type, relation, user)


# ------------------------------------------------------------------------------ the mixin


class _Unchanged(Exception):
    """Raised inside write_gateway's transaction to roll back a plan that changed nothing."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


class GatewaySQLMixin(SQLHost):
    """Implementation of :class:`keyplane.storage.base.GatewayStore` for SQLStorage."""

    if TYPE_CHECKING:  # provided by PolicySQLMixin (a stub here would shadow it)

        def _policy_tuples(
            self,
            cur: Cursor,
            store_id: str,
            rev: int,
            writes: Sequence[Tuple],
            deletes: Sequence[Tuple],
        ) -> None: ...

    # -- writes -----------------------------------------------------------------------

    def write_gateway(
        self,
        store_id: str,
        plan: Callable[[GatewayTxReader], GatewayWrite],
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> GatewayWriteResult:
        def tx(cur: Cursor) -> GatewayWriteResult:
            rev = self._bump(cur, store_id)
            change = plan(_GatewayTxReader(self, cur, store_id))
            if change.empty:
                raise _Unchanged(rev - 1)
            self._apply_gateway_write(cur, store_id, rev, change)
            if ledger_events is not None:
                items = ledger_events(rev)
                if items:
                    self._append_encoded_tx(cur, items)
            return GatewayWriteResult(rev, True)

        try:
            return self._write_tx(tx)
        except _Unchanged as nothing:
            return GatewayWriteResult(nothing.revision, False)

    def _apply_gateway_write(self, cur: Cursor, store_id: str, rev: int, w: GatewayWrite) -> None:
        q = self._q
        for name in dict.fromkeys(w.deleted_servers):
            cur.execute(
                q("DELETE FROM gateway_tools WHERE store_id = ? AND server = ?"), (store_id, name)
            )
            cur.execute(
                q("DELETE FROM gateway_servers WHERE store_id = ? AND name = ?"), (store_id, name)
            )
        if w.servers:
            _unique([s.name for s in w.servers], "server")
            cur.executemany(
                q(_SERVER_UPSERT), [_server_params(s, store_id, rev) for s in w.servers]
            )
        if w.tools:
            _unique([(t.server, t.name) for t in w.tools], "tool")
            for server in dict.fromkeys(t.server for t in w.tools):
                cur.execute(
                    q("SELECT 1 FROM gateway_servers WHERE store_id = ? AND name = ?"),
                    (store_id, server),
                )
                if cur.fetchone() is None:
                    raise ValidationError(
                        f"tools of an unknown server {server!r}",
                        details={"store_id": store_id, "server": server},
                    )
            cur.executemany(q(_TOOL_UPSERT), [_tool_params(t, store_id, rev) for t in w.tools])
        if w.settings is not None:
            cur.execute(q(_SETTINGS_UPSERT), _settings_params(w.settings, store_id, rev))
        if w.tuple_writes or w.tuple_deletes:
            self._policy_tuples(cur, store_id, rev, w.tuple_writes, w.tuple_deletes)

    def _delete_gateway_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in GATEWAY_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))

    # -- reads ------------------------------------------------------------------------

    def _select_server(self, cur: Cursor, store_id: str, name: str) -> McpServer | None:
        cur.execute(
            self._q(f"SELECT {SERVER_COLS} FROM gateway_servers WHERE store_id = ? AND name = ?"),
            (store_id, name),
        )
        r = cur.fetchone()
        return None if r is None else server_from_row(r)

    def _select_servers(self, cur: Cursor, store_id: str) -> list[McpServer]:
        cur.execute(
            self._q(f"SELECT {SERVER_COLS} FROM gateway_servers WHERE store_id = ? ORDER BY name"),
            (store_id,),
        )
        return [server_from_row(r) for r in cur.fetchall()]

    def _select_tools(self, cur: Cursor, store_id: str, server: str | None) -> list[McpTool]:
        if server is None:
            cur.execute(
                self._q(
                    f"SELECT {TOOL_COLS} FROM gateway_tools WHERE store_id = ?"
                    " ORDER BY server, name"
                ),
                (store_id,),
            )
        else:
            cur.execute(
                self._q(
                    f"SELECT {TOOL_COLS} FROM gateway_tools WHERE store_id = ? AND server = ?"
                    " ORDER BY name"
                ),
                (store_id, server),
            )
        return [tool_from_row(r) for r in cur.fetchall()]

    def _select_gateway_settings(self, cur: Cursor, store_id: str) -> GatewaySettings:
        cur.execute(
            self._q(f"SELECT {SETTINGS_COLS} FROM gateway_settings WHERE store_id = ?"),
            (store_id,),
        )
        r = cur.fetchone()
        return GatewaySettings(store_id) if r is None else settings_from_row(r)

    def _select_tuples_of_type(
        self,
        cur: Cursor,
        store_id: str,
        object_type: str,
        relation: str | None,
        user: str | None,
    ) -> list[Tuple]:
        if not object_type or ":" in object_type:
            raise InvalidTupleError(f"invalid object type {object_type!r}")
        where = ["store_id = ?", "object_type = ?"]
        params: list[Any] = [store_id, object_type]
        if relation:
            where.append("relation = ?")
            params.append(relation)
        if user:
            head, _, urel = user.partition("#")
            utype, sep, uid = head.partition(":")
            if not sep or not utype or (urel and not uid):
                raise InvalidTupleError(f"invalid user filter {user!r}: 'type:id[#rel]' or 'type:'")
            where.append("user_type = ?")
            params.append(utype)
            if uid:
                where.append("user_id = ? AND user_relation = ?")
                params += [uid, urel]
        cur.execute(
            self._q(
                f"SELECT {_TUPLE_COLS} FROM tuples WHERE {' AND '.join(where)}"
                " ORDER BY object_type, object_id, relation, user_type, user_id, user_relation"
            ),
            tuple(params),
        )
        return [_row_tuple(r) for r in cur.fetchall()]

    def read_gateway(self, store_id: str) -> GatewayState:
        def tx(cur: Cursor) -> GatewayState:
            rev = self._revision(cur, store_id)  # StoreNotFoundError for an unknown store
            settings = self._select_gateway_settings(cur, store_id)
            servers = {s.name: s for s in self._select_servers(cur, store_id)}
            tools = {(t.server, t.name): t for t in self._select_tools(cur, store_id, None)}
            return GatewayState(store_id, rev, settings, servers, tools)

        return self._read_tx(tx)


def _unique(keys: Sequence[Any], what: str) -> None:
    seen: set[Any] = set()
    for k in keys:
        if k in seen:
            raise ValidationError(f"duplicate {what} {k!r} in one gateway write")
        seen.add(k)

"""The storage contract implemented once, in SQL both SQLite and PostgreSQL understand.

:class:`SQLStorage` holds every query and all the logic (atomic writes, revisions,
changelog, pagination); a backend subclass supplies only what differs: how to run a write
transaction (SQLite: ``BEGIN IMMEDIATE`` on the single writer connection; PostgreSQL: a
pooled connection whose writers serialize on the store row), a read transaction at one
consistent snapshot, a streaming cursor for snapshots, and the fastest bulk insert.

Queries are written with ``?`` placeholders; a backend rewrites them (``%s``) in
:meth:`SQLStorage._q`. Both databases support everything used here: ``RETURNING``,
``ON CONFLICT DO NOTHING``, row-value comparison and ``row_number()``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from hashlib import sha256 as _sha256
from typing import Any, TypeVar

from keyplane.clock import Clock, SystemClock
from keyplane.errors import (
    ConflictError,
    InvalidTupleError,
    ModelNotFoundError,
    NotFoundError,
    StoreExistsError,
    StoreNotFoundError,
    TupleExistsError,
    TupleMissingError,
    ValidationError,
)
from keyplane.graph.tuples import Tuple, TupleChange, split_object, split_user, validate_syntax
from keyplane.ledger.chain import (
    GENESIS_HASH,
    canonical_text,
    chain_body,
    event_from_body,
)
from keyplane.ledger.checkpoints import Checkpoint, LedgerKeyRecord
from keyplane.ledger.events import EventFilter, LedgerEvent
from keyplane.storage.base import (
    ChainRow,
    ChangesPage,
    KeyRecord,
    ModelRecord,
    Page,
    SnapshotRow,
    StoreHead,
    StoreInfo,
    UsageRow,
)
from keyplane.storage.credentials_sql import CredentialSQLMixin
from keyplane.storage.gateway_sql import GatewaySQLMixin
from keyplane.storage.governance_sql import GovernanceSQLMixin
from keyplane.storage.ids import UlidGenerator
from keyplane.storage.imports_sql import ImportsSQLMixin
from keyplane.storage.ledger_activity import LedgerActivitySQL
from keyplane.storage.ledger_admin import LedgerAdminSQL
from keyplane.storage.paging import check_page_size, decode_token, encode_token
from keyplane.storage.policy_sql import PolicySQLMixin
from keyplane.storage.scim_sql import ScimSQLMixin
from keyplane.storage.signing_keys_sql import SigningKeysSQLMixin
from keyplane.storage.tokens_sql import TokensSQLMixin

__all__ = ["LEDGER_COLUMNS", "STORE_ID_RE", "Cursor", "SQLStorage", "tuple_columns"]

R = TypeVar("R")
T = TypeVar("T")

#: A DB-API cursor (sqlite3.Cursor or psycopg.Cursor); typed loosely on purpose, the two
#: drivers' signatures differ in details that do not matter here.
Cursor = Any

#: what a store id given to create_store must look like (reserved ids such as ``_system``
#: start with ``_`` and so can never be created through it)
STORE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

_KEY = "object_type, object_id, relation, user_type, user_id, user_relation"
_COLS = f"{_KEY}, condition_name, condition_context, expires_at"
_KEY_MATCH = (
    "store_id = ? AND object_type = ? AND object_id = ? AND relation = ?"
    " AND user_type = ? AND user_id = ? AND user_relation = ?"
)
_CHANGELOG_INSERT = (
    f"INSERT INTO changelog (store_id, revision, seq, operation, {_COLS}, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Snapshots build the "type:id" strings in SQL (in C) to keep per-row Python work minimal.
SNAPSHOT_TUPLES_SQL = (
    "SELECT object_type || ':' || object_id, relation,"
    " CASE WHEN user_relation = '' THEN user_type || ':' || user_id"
    " ELSE user_type || ':' || user_id || '#' || user_relation END,"
    " condition_name, condition_context, expires_at FROM tuples WHERE store_id = ?"
)
SNAPSHOT_ROWS_SQL = f"SELECT {_COLS} FROM tuples WHERE store_id = ?"

TupleColumns = tuple[str, str, str, str, str, str, str | None, str | None, float | None]


def _dump_context(context: Mapping[str, Any] | None) -> str | None:
    return json.dumps(dict(context), separators=(",", ":"), sort_keys=True) if context else None


def tuple_columns(t: Tuple) -> TupleColumns:
    """Validate a tuple's syntax and split it into its stored columns."""
    validate_syntax(t)
    ot, oid = split_object(t.object)
    ut, uid, urel = split_user(t.user)
    exp = None if t.expires_at is None else float(t.expires_at)
    return (ot, oid, t.relation, ut, uid, urel, t.condition or None, _dump_context(t.context), exp)


def bulk_rows(store_id: str, revision: int, tuples: Iterable[Tuple]) -> Iterator[tuple[Any, ...]]:
    """Rows for the ``tuples`` table, with the cheapest checks that keep the table sane."""
    for t in tuples:
        ot, _, oid = t.object.partition(":")
        head, _, urel = t.user.partition("#")
        ut, _, uid = head.partition(":")
        if not (ot and oid and ut and uid and t.relation):
            raise InvalidTupleError(f"invalid tuple {t}", details={"tuple": t.to_dict()})
        ctx = t.context
        yield (
            store_id,
            ot,
            oid,
            t.relation,
            ut,
            uid,
            urel,
            t.condition or None,
            _dump_context(ctx) if ctx else None,
            t.expires_at,
            revision,
        )


def _row_tuple(r: Sequence[Any]) -> Tuple:
    """A ``tuples``/``changelog`` row's 9 tuple columns (from index 0) back to a Tuple."""
    ot, oid, rel, ut, uid, urel, cname, ctx, exp = r[:9]
    user = f"{ut}:{uid}#{urel}" if urel else f"{ut}:{uid}"
    return Tuple(f"{ot}:{oid}", rel, user, cname, None if ctx is None else json.loads(ctx), exp)


def tuples_from_batches(batches: Iterable[list[Any]]) -> Iterator[Tuple]:
    """Snapshot rows (from :data:`SNAPSHOT_TUPLES_SQL`) to Tuples; parses JSON only when present."""
    loads = json.loads
    for rows in batches:
        for o, r, u, cn, cc, e in rows:
            yield Tuple(o, r, u, cn, None if cc is None else loads(cc), e)


_KEY_COLS = (
    "id, secret_hash, owner, roles, description, created_at, expires_at, last_used_at,"
    " rotated_at, revoked_at, previous_secret_hash, previous_expires_at"
)


def _key_record(r: Sequence[Any]) -> KeyRecord:
    roles = json.loads(r[3])
    return KeyRecord(
        r[0], r[1], r[2], tuple(roles), r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]
    )


def _key_missing(key_id: str) -> NotFoundError:
    return NotFoundError(f"API key {key_id!r} not found", details={"key_id": key_id})


LEDGER_COLUMNS = (
    "store_id, seq, id, time, type, caller, actors, subject, action, resource, outcome,"
    " purpose, request_id, decision_id, body, prev_hash, hash"
)
_LEDGER_INSERT = (
    f"INSERT INTO ledger_events ({LEDGER_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_json_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chain_rows(
    store: str,
    idxs: list[int],
    items: Sequence[tuple[LedgerEvent, str]],
    seq: int,
    head: str,
    rows: list[tuple[Any, ...]],
    out: list[tuple[int, str, str]],
) -> tuple[int, str]:
    """Chain ``items[i] for i in idxs`` after ``(seq, head)``: their ``ledger_events`` rows
    appended to ``rows``, ``(seq, prev_hash, hash)`` to ``out``; the new head."""
    append = rows.append
    for i in idxs:
        e, template = items[i]
        seq += 1
        text = chain_body(template, seq, head)
        h = _sha256(head.encode("ascii"))
        h.update(b"\n")
        h.update(text.encode("utf-8"))
        digest = h.hexdigest()
        chain = e.actor_chain
        append(
            (
                store, seq, e.id, e.time, e.type, e.caller,
                _json_dumps(list(chain)) if chain else "[]",
                e.subject, e.action, e.resource, e.outcome, e.purpose, e.request_id,
                e.decision_id, text, head, digest,
            )
        )  # fmt: skip
        out[i] = (seq, head, digest)
        head = digest
    return seq, head


class _NoChange(Exception):
    """Raised inside a write transaction to roll it back when there is nothing to record."""


class SQLStorage(
    PolicySQLMixin,
    SigningKeysSQLMixin,
    CredentialSQLMixin,
    TokensSQLMixin,
    GovernanceSQLMixin,
    GatewaySQLMixin,
    ScimSQLMixin,
    ImportsSQLMixin,
    LedgerAdminSQL,
    LedgerActivitySQL,
):
    """Backend-independent implementation of :class:`keyplane.storage.base.Storage`."""

    #: appended to the store lookup in write transactions that must keep the store alive
    _FOR_SHARE = ""
    #: appended to the ledger head lookup: locks the head until commit (PostgreSQL)
    _FOR_UPDATE = ""
    #: appended to ``ledger_events`` in a usage query narrowed to a few subjects: makes
    #: SQLite (which has no statistics) read them through the subject index
    _BY_SUBJECT = ""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._ids = UlidGenerator(self._clock)
        # per store, the ledger head this process last wrote: a hint (see _append_encoded_tx)
        self._ledger_heads: dict[str, tuple[int, str]] = {}

    # -- what a backend provides -------------------------------------------------------

    def _q(self, sql: str) -> str:
        return sql

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        """Run ``fn`` in one write transaction; commit if it returns, roll back if it raises.

        With ``retry`` the backend MAY run ``fn`` again after a transient conflict, so ``fn``
        must then be repeatable (it is, unless it consumes a one-shot iterator).
        """
        raise NotImplementedError

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        raise NotImplementedError

    def _stream(self, store_id: str, sql: str) -> tuple[int, Iterator[list[Any]]]:
        """Open a snapshot: the revision, and batches of rows of ``sql`` (one ``?``: store id)."""
        raise NotImplementedError

    def _bulk_insert(self, cur: Cursor, rows: Iterator[tuple[Any, ...]]) -> None:
        """Insert ``tuples`` rows; a key clash MUST raise TupleExistsError."""
        raise NotImplementedError

    def _insert_ledger_rows(self, cur: Cursor, rows: list[tuple[Any, ...]], sql: str) -> None:
        """Insert ``ledger_events`` rows (columns in :data:`LEDGER_COLUMNS` order)."""
        cur.executemany(sql, rows)

    def _dump_model(self, model: Mapping[str, Any]) -> Any:
        return json.dumps(dict(model), separators=(",", ":"))

    def _load_model(self, value: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(value) if isinstance(value, str | bytes) else value
        return loaded

    def close(self) -> None:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------

    def _revision(self, cur: Cursor, store_id: str, suffix: str = "") -> int:
        cur.execute(self._q("SELECT revision FROM stores WHERE id = ?" + suffix), (store_id,))
        row = cur.fetchone()
        if row is None:
            raise StoreNotFoundError(
                f"store {store_id!r} not found", details={"store_id": store_id}
            )
        return int(row[0])

    def _bump(self, cur: Cursor, store_id: str) -> int:
        # In PostgreSQL this UPDATE takes the store row's lock until commit, so writers of a
        # store are serialized and revision order equals commit order.
        cur.execute(
            self._q("UPDATE stores SET revision = revision + 1 WHERE id = ? RETURNING revision"),
            (store_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise StoreNotFoundError(
                f"store {store_id!r} not found", details={"store_id": store_id}
            )
        return int(row[0])

    def _ledger_in_tx(
        self,
        cur: Cursor,
        ledger_events: Callable[[T], Sequence[tuple[LedgerEvent, str]]] | None,
        made: T,
    ) -> None:
        """Chain a change's ledger events inside the change's own transaction: the change
        and its events commit together or not at all (an error here rolls both back)."""
        if ledger_events is not None:
            items = ledger_events(made)
            if items:
                self._append_encoded_tx(cur, items)

    # -- stores -----------------------------------------------------------------------

    def create_store(
        self,
        name: str,
        *,
        store_id: str | None = None,
        ledger_events: Callable[[StoreInfo], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> StoreInfo:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("a store needs a non-empty name")
        if store_id is None:
            store_id = self._ids.new()
        elif not isinstance(store_id, str) or not STORE_ID_RE.match(store_id):
            raise ValidationError(
                f"invalid store id {store_id!r}: 1-64 letters, digits, '_', '-' or '.'",
                details={"store_id": store_id},
            )
        now = self._clock.now()
        sid = store_id
        info = StoreInfo(sid, name, now, now)

        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q(
                    "INSERT INTO stores (id, name, created_at, updated_at, revision, generation)"
                    " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING"
                ),
                (sid, name, now, now, self._ids.new()),
            )
            if cur.rowcount != 1:
                raise StoreExistsError(f"store {sid!r} already exists", details={"store_id": sid})
            self._ledger_in_tx(cur, ledger_events, info)

        self._write_tx(tx)
        return info

    def get_store(self, store_id: str) -> StoreInfo:
        def tx(cur: Cursor) -> StoreInfo:
            cur.execute(
                self._q("SELECT id, name, created_at, updated_at FROM stores WHERE id = ?"),
                (store_id,),
            )
            row = cur.fetchone()
            if row is None:
                raise StoreNotFoundError(
                    f"store {store_id!r} not found", details={"store_id": store_id}
                )
            return StoreInfo(row[0], row[1], row[2], row[3])

        return self._read_tx(tx)

    def store_head(self, store_id: str) -> StoreHead:
        def tx(cur: Cursor) -> StoreHead:
            cur.execute(
                self._q(
                    "SELECT s.revision, s.generation, (SELECT m.id FROM authorization_models m"
                    " WHERE m.store_id = s.id ORDER BY m.id DESC LIMIT 1)"
                    " FROM stores s WHERE s.id = ?"
                ),
                (store_id,),
            )
            row = cur.fetchone()
            if row is None:
                raise StoreNotFoundError(
                    f"store {store_id!r} not found", details={"store_id": store_id}
                )
            return StoreHead(int(row[0]), str(row[1]), row[2])

        return self._read_tx(tx)

    def list_stores(
        self, *, page_size: int = 50, continuation_token: str | None = None
    ) -> Page[StoreInfo]:
        check_page_size(page_size)
        query = ("stores",)
        after = decode_token(continuation_token, query, 1)[0] if continuation_token else None

        def tx(cur: Cursor) -> list[Any]:
            sql = "SELECT id, name, created_at, updated_at FROM stores"
            params: list[Any] = []
            if after is not None:
                sql += " WHERE id > ?"
                params.append(after)
            cur.execute(self._q(sql + " ORDER BY id LIMIT ?"), (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        items = [StoreInfo(r[0], r[1], r[2], r[3]) for r in rows[:page_size]]
        token = encode_token(query, [items[-1].id]) if len(rows) > page_size else None
        return Page(items, token)

    def delete_store(
        self,
        store_id: str,
        *,
        ledger_events: Callable[[str], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> None:
        def tx(cur: Cursor) -> None:
            cur.execute(self._q("DELETE FROM stores WHERE id = ?"), (store_id,))
            if cur.rowcount != 1:
                raise StoreNotFoundError(
                    f"store {store_id!r} not found", details={"store_id": store_id}
                )
            for table in ("tuples", "changelog", "authorization_models"):
                cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))
            self._delete_policy_rows(cur, store_id)
            self._delete_signing_key_rows(cur, store_id)
            self._delete_credential_rows(cur, store_id)
            self._delete_token_rows(cur, store_id)
            self._delete_governance_rows(cur, store_id)
            self._delete_gateway_rows(cur, store_id)
            self._delete_scim_rows(cur, store_id)
            self._delete_import_rows(cur, store_id)
            self._ledger_in_tx(cur, ledger_events, store_id)

        self._write_tx(tx)

    # -- models -----------------------------------------------------------------------

    def write_model(
        self,
        store_id: str,
        model: Mapping[str, Any],
        *,
        ledger_events: Callable[[ModelRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> ModelRecord:
        if not isinstance(model, Mapping):
            raise ValidationError("a model must be a JSON object")
        model_id = self._ids.new()
        now = self._clock.now()
        doc = dict(model)
        stored = json.loads(json.dumps(doc))

        def tx(cur: Cursor) -> int:
            # a model write is a revision of the store (with no tuple changes), so a replica
            # asked for at_least_as_fresh that revision also switches to this model
            revision = self._bump(cur, store_id)
            cur.execute(
                self._q(
                    "INSERT INTO authorization_models (store_id, id, model, created_at)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (store_id, model_id, self._dump_model(doc), now),
            )
            self._ledger_in_tx(
                cur, ledger_events, ModelRecord(model_id, store_id, stored, now, revision)
            )
            return revision

        revision = self._write_tx(tx)
        return ModelRecord(model_id, store_id, stored, now, revision)

    def _model_rows(self, store_id: str, where: str, params: Sequence[Any]) -> list[Any]:
        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(
                self._q(
                    "SELECT id, model, created_at FROM authorization_models"
                    f" WHERE store_id = ?{where}"
                ),
                (store_id, *params),
            )
            return list(cur.fetchall())

        return self._read_tx(tx)

    def read_model(self, store_id: str, model_id: str) -> ModelRecord:
        rows = self._model_rows(store_id, " AND id = ?", (model_id,))
        if not rows:
            raise ModelNotFoundError(
                f"model {model_id!r} not found in store {store_id!r}",
                details={"store_id": store_id, "model_id": model_id},
            )
        r = rows[0]
        return ModelRecord(r[0], store_id, self._load_model(r[1]), r[2])

    def latest_model(self, store_id: str) -> ModelRecord | None:
        rows = self._model_rows(store_id, " ORDER BY id DESC LIMIT 1", ())
        if not rows:
            return None
        r = rows[0]
        return ModelRecord(r[0], store_id, self._load_model(r[1]), r[2])

    def list_models(
        self, store_id: str, *, page_size: int = 50, continuation_token: str | None = None
    ) -> Page[ModelRecord]:
        check_page_size(page_size)
        query = ("models", store_id)
        where, params = "", []
        if continuation_token:
            where, params = " AND id < ?", decode_token(continuation_token, query, 1)
        rows = self._model_rows(
            store_id, f"{where} ORDER BY id DESC LIMIT ?", (*params, page_size + 1)
        )
        items = [ModelRecord(r[0], store_id, self._load_model(r[1]), r[2]) for r in rows]
        token = None
        if len(items) > page_size:
            items = items[:page_size]
            token = encode_token(query, [items[-1].id])
        return Page(items, token)

    # -- tuples: writes ---------------------------------------------------------------

    def write(
        self,
        store_id: str,
        *,
        writes: Sequence[Tuple] = (),
        deletes: Sequence[Tuple] = (),
        idempotent: bool = False,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> int:
        if not writes and not deletes:
            raise InvalidTupleError("a write needs at least one tuple to write or delete")
        seen: set[tuple[str, str, str]] = set()
        for t in itertools.chain(deletes, writes):
            if t.key in seen:
                raise InvalidTupleError(
                    f"duplicate tuple in one write request: {t}", details={"tuple": t.to_dict()}
                )
            seen.add(t.key)
        del_cols = [(t, tuple_columns(t)) for t in deletes]
        write_cols = [(t, tuple_columns(t)) for t in writes]
        now = self._clock.now()
        q_delete = self._q(
            f"DELETE FROM tuples WHERE {_KEY_MATCH}"
            " RETURNING condition_name, condition_context, expires_at"
        )
        q_insert = self._q(
            f"INSERT INTO tuples (store_id, {_COLS}, revision)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        q_attrs = self._q(
            f"SELECT condition_name, condition_context, expires_at FROM tuples WHERE {_KEY_MATCH}"
        )
        q_log = self._q(_CHANGELOG_INSERT)

        def tx(cur: Cursor) -> int:
            rev = self._bump(cur, store_id)
            log: list[tuple[Any, ...]] = []
            for t, cols in del_cols:
                cur.execute(q_delete, (store_id, *cols[:6]))
                row = cur.fetchone()
                if row is None:
                    if idempotent:
                        continue
                    raise TupleMissingError(
                        f"cannot delete {t}: it does not exist", details={"tuple": t.to_dict()}
                    )
                log.append((store_id, rev, len(log), "delete", *cols[:6], *row, now))
            for t, cols in write_cols:
                cur.execute(q_insert, (store_id, *cols, rev))
                if cur.rowcount != 1:
                    if idempotent:
                        # as OpenFGA's on_duplicate=ignore: only an identical tuple is a no-op
                        cur.execute(q_attrs, (store_id, *cols[:6]))
                        if tuple(cur.fetchone()) == cols[6:]:
                            continue
                        raise TupleExistsError(
                            f"cannot write {t}: it exists with another condition or expiry",
                            details={"tuple": t.to_dict()},
                        )
                    raise TupleExistsError(
                        f"cannot write {t}: it already exists", details={"tuple": t.to_dict()}
                    )
                log.append((store_id, rev, len(log), "write", *cols, now))
            if log:
                cur.executemany(q_log, log)
            self._ledger_in_tx(cur, ledger_events, rev)
            return rev

        return self._write_tx(tx)

    def bulk_load(self, store_id: str, tuples: Iterable[Tuple]) -> int:
        now = self._clock.now()
        # The changelog is filled from the rows just inserted, in SQL: every tuple is still
        # logged (tailers stay correct) without a second pass in Python.
        q_log = self._q(
            f"INSERT INTO changelog (store_id, revision, seq, operation, {_COLS}, created_at)"
            f" SELECT store_id, revision, row_number() OVER (), 'write', {_COLS}, ?"
            " FROM tuples WHERE store_id = ? AND revision = ?"
        )

        def tx(cur: Cursor) -> int:
            rev = self._bump(cur, store_id)
            self._bulk_insert(cur, bulk_rows(store_id, rev, tuples))
            cur.execute(q_log, (now, store_id, rev))
            return rev

        # `tuples` may be a one-shot iterator: never run the body twice
        return self._write_tx(tx, retry=False)

    def gc_expired(
        self,
        store_id: str,
        *,
        now: float,
        ledger_events: Callable[[tuple[int, int]], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> int:
        stamp = self._clock.now()
        q_delete = self._q(
            "DELETE FROM tuples WHERE store_id = ? AND expires_at IS NOT NULL"
            f" AND expires_at <= ? RETURNING {_COLS}"
        )
        q_log = self._q(_CHANGELOG_INSERT)

        def tx(cur: Cursor) -> int:
            rev = self._bump(cur, store_id)
            cur.execute(q_delete, (store_id, float(now)))
            rows = cur.fetchall()
            if not rows:
                raise _NoChange
            log = [(store_id, rev, i, "delete", *r, stamp) for i, r in enumerate(rows)]
            cur.executemany(q_log, log)
            self._ledger_in_tx(cur, ledger_events, (rev, len(rows)))
            return len(rows)

        try:
            return self._write_tx(tx)
        except _NoChange:
            return 0

    # -- tuples: reads ----------------------------------------------------------------

    def current_revision(self, store_id: str) -> int:
        return self._read_tx(lambda cur: self._revision(cur, store_id))

    def read_tuples(
        self,
        store_id: str,
        *,
        object: str | None = None,
        relation: str | None = None,
        user: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> Page[Tuple]:
        check_page_size(page_size)
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        if object:
            otype, sep, oid = object.partition(":")
            if not sep or not otype:
                raise InvalidTupleError(f"invalid object filter {object!r}: 'type:id' or 'type:'")
            where.append("object_type = ?")
            params.append(otype)
            if oid:
                where.append("object_id = ?")
                params.append(oid)
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
        query = ("tuples", store_id, object, relation, user)
        if continuation_token:
            key = decode_token(continuation_token, query, 6)
            where.append(f"({_KEY}) > (?, ?, ?, ?, ?, ?)")
            params += key
        sql = self._q(
            f"SELECT {_COLS} FROM tuples WHERE {' AND '.join(where)} ORDER BY {_KEY} LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        token = None
        if len(rows) > page_size:
            rows = rows[:page_size]
            token = encode_token(query, list(rows[-1][:6]))
        return Page([_row_tuple(r) for r in rows], token)

    def read_changes(
        self,
        store_id: str,
        *,
        after_revision: int = 0,
        page_size: int = 100,
        object_type: str | None = None,
    ) -> ChangesPage:
        check_page_size(page_size)
        select = (
            f"SELECT {_COLS}, revision, operation, created_at FROM changelog WHERE store_id = ?"
        )
        params: list[Any] = [store_id]
        if object_type:
            select += " AND object_type = ?"
            params.append(object_type)
        q_page = self._q(f"{select} AND revision > ? ORDER BY revision, seq LIMIT ?")
        q_one = self._q(f"{select} AND revision = ? ORDER BY seq")

        def tx(cur: Cursor) -> tuple[list[Any], int, bool]:
            current = self._revision(cur, store_id)
            cur.execute(q_page, (*params, after_revision, page_size + 1))
            rows = list(cur.fetchall())
            if len(rows) <= page_size:
                # reached the end of the log as of this snapshot: we are at `current`
                return rows, max(current, after_revision), False
            last, extra = rows[page_size - 1][9], rows[page_size][9]
            rows = rows[:page_size]
            if extra != last:
                return rows, last, True
            # the page would split revision `last`: stop before it, or if it is the only
            # revision in the page, return that revision whole (page_size is soft)
            whole = [r for r in rows if r[9] != last]
            if whole:
                return whole, whole[-1][9], True
            cur.execute(q_one, (*params, last))
            return list(cur.fetchall()), last, last < current

        rows, last_revision, has_more = self._read_tx(tx)
        changes = [TupleChange(_row_tuple(r), r[10], r[9], r[11]) for r in rows]
        return ChangesPage(changes, last_revision, has_more)

    def snapshot(self, store_id: str) -> tuple[int, Iterator[Tuple]]:
        rev, batches = self._stream(store_id, self._q(SNAPSHOT_TUPLES_SQL))
        return rev, tuples_from_batches(batches)

    def snapshot_rows(self, store_id: str) -> tuple[int, Iterator[SnapshotRow]]:
        rev, batches = self._stream(store_id, self._q(SNAPSHOT_ROWS_SQL))
        return rev, itertools.chain.from_iterable(batches)

    # -- API keys ---------------------------------------------------------------------

    def create_key(
        self,
        record: KeyRecord,
        *,
        ledger_events: Callable[[KeyRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> None:
        r = record

        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q(
                    f"INSERT INTO api_keys ({_KEY_COLS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
                ),
                (
                    r.id,
                    r.secret_hash,
                    r.owner,
                    json.dumps(list(r.roles)),
                    r.description,
                    r.created_at,
                    r.expires_at,
                    r.last_used_at,
                    r.rotated_at,
                    r.revoked_at,
                    r.previous_secret_hash,
                    r.previous_expires_at,
                ),
            )
            if cur.rowcount != 1:
                raise ConflictError(f"API key {r.id!r} already exists", details={"key_id": r.id})
            self._ledger_in_tx(cur, ledger_events, r)

        self._write_tx(tx)

    def _select_key(self, cur: Cursor, key_id: str) -> KeyRecord | None:
        cur.execute(self._q(f"SELECT {_KEY_COLS} FROM api_keys WHERE id = ?"), (key_id,))
        row = cur.fetchone()
        return None if row is None else _key_record(row)

    def get_key(self, key_id: str) -> KeyRecord | None:
        return self._read_tx(lambda cur: self._select_key(cur, key_id))

    def list_keys(
        self, *, page_size: int = 100, continuation_token: str | None = None
    ) -> Page[KeyRecord]:
        check_page_size(page_size)
        query = ("api_keys",)
        after = decode_token(continuation_token, query, 1)[0] if continuation_token else None

        def tx(cur: Cursor) -> list[Any]:
            sql = f"SELECT {_KEY_COLS} FROM api_keys"
            params: list[Any] = []
            if after is not None:
                sql += " WHERE id > ?"
                params.append(after)
            cur.execute(self._q(sql + " ORDER BY id LIMIT ?"), (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        items = [_key_record(r) for r in rows[:page_size]]
        token = encode_token(query, [items[-1].id]) if len(rows) > page_size else None
        return Page(items, token)

    def rotate_key(
        self,
        key_id: str,
        *,
        secret_hash: str,
        previous_expires_at: float,
        now: float,
        ledger_events: Callable[[KeyRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> KeyRecord:
        def tx(cur: Cursor) -> KeyRecord:
            # one UPDATE reads the current hash and moves it: no lost rotation under a race
            cur.execute(
                self._q(
                    "UPDATE api_keys SET previous_secret_hash = secret_hash,"
                    " previous_expires_at = ?, secret_hash = ?, rotated_at = ?"
                    " WHERE id = ? AND revoked_at IS NULL"
                ),
                (previous_expires_at, secret_hash, now, key_id),
            )
            changed = cur.rowcount == 1
            rec = self._select_key(cur, key_id)
            if rec is None:
                raise _key_missing(key_id)
            if not changed:
                raise ConflictError(
                    f"API key {key_id!r} is revoked; create a new key instead",
                    details={"key_id": key_id},
                )
            self._ledger_in_tx(cur, ledger_events, rec)
            return rec

        return self._write_tx(tx)

    def revoke_key(
        self,
        key_id: str,
        *,
        now: float,
        ledger_events: Callable[[KeyRecord], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> KeyRecord:
        def tx(cur: Cursor) -> KeyRecord:
            cur.execute(
                self._q(
                    "UPDATE api_keys SET revoked_at = ?, previous_secret_hash = NULL,"
                    " previous_expires_at = NULL WHERE id = ? AND revoked_at IS NULL"
                ),
                (now, key_id),
            )
            rec = self._select_key(cur, key_id)
            if rec is None:
                raise _key_missing(key_id)
            self._ledger_in_tx(cur, ledger_events, rec)
            return rec

        return self._write_tx(tx)

    def touch_key(self, key_id: str, *, at: float) -> None:
        def tx(cur: Cursor) -> None:
            cur.execute(
                self._q(
                    "UPDATE api_keys SET last_used_at = ?"
                    " WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"
                ),
                (at, key_id, at),
            )

        self._write_tx(tx)

    def ensure_reserved_store(
        self,
        store_id: str,
        name: str,
        *,
        ledger_events: Callable[[StoreInfo], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> bool:
        now = self._clock.now()

        def tx(cur: Cursor) -> bool:
            cur.execute(
                self._q(
                    "INSERT INTO stores (id, name, created_at, updated_at, revision)"
                    " VALUES (?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING"
                ),
                (store_id, name, now, now),
            )
            created = bool(cur.rowcount == 1)
            if created:
                self._ledger_in_tx(cur, ledger_events, StoreInfo(store_id, name, now, now))
            return created

        return self._write_tx(tx)

    # -- the ledger -------------------------------------------------------------------

    def append_events(self, events: Sequence[LedgerEvent]) -> list[LedgerEvent]:
        if not events:
            return []
        for e in events:
            if e.seq is not None or e.prev_hash is not None or e.hash is not None:
                raise ValueError(f"ledger event {e.id} is already chained")
        # encoded once, outside the transaction (a retry does not encode again)
        heads = self.append_encoded([(e, canonical_text(e)) for e in events])
        return [
            e.chained(seq, prev, digest)
            for e, (seq, prev, digest) in zip(events, heads, strict=True)
        ]

    def append_encoded(
        self, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        if not items:
            return []
        return self._write_tx(lambda cur: self._append_encoded_tx(cur, items))

    def _append_encoded_tx(
        self, cur: Cursor, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        """Chain and insert ``items`` inside the caller's transaction (the heads are locked
        here, so appenders in other transactions interleave safely)."""
        groups: dict[str, list[int]] = {}
        for i, (e, _) in enumerate(items):
            groups.setdefault(e.store, []).append(i)
        q_head = self._q("SELECT seq, hash FROM ledger_heads WHERE store_id = ?" + self._FOR_UPDATE)
        q_new_head = self._q(
            "INSERT INTO ledger_heads (store_id, seq, hash) VALUES (?, 0, ?)"
            " ON CONFLICT (store_id) DO NOTHING"
        )
        q_set_head = self._q("UPDATE ledger_heads SET seq = ?, hash = ? WHERE store_id = ?")
        # moves the head only from where this process last left it (its row lock taken as
        # SELECT ... FOR UPDATE would): one statement instead of two in the common case
        q_move_head = self._q(
            "UPDATE ledger_heads SET seq = ?, hash = ? WHERE store_id = ? AND seq = ? AND hash = ?"
        )
        q_insert = self._q(_LEDGER_INSERT)
        out: list[tuple[int, str, str]] = [(0, "", "")] * len(items)
        rows: list[tuple[Any, ...]] = []
        known = self._ledger_heads
        for store in sorted(groups):  # one lock order for every appender: no deadlock
            hint = known.get(store)
            if hint is not None:
                mark = len(rows)
                seq, head = _chain_rows(store, groups[store], items, *hint, rows, out)
                cur.execute(q_move_head, (seq, head, store, *hint))
                if cur.rowcount == 1:
                    known[store] = (seq, head)  # a hint only: a rollback is caught next time
                    continue
                del rows[mark:]  # another appender moved the head: read it, chain again
            cur.execute(q_head, (store,))
            row = cur.fetchone()
            if row is None:
                cur.execute(q_new_head, (store, GENESIS_HASH))
                cur.execute(q_head, (store,))
                row = cur.fetchone()
            seq, head = _chain_rows(
                store, groups[store], items, int(row[0]), str(row[1]), rows, out
            )
            cur.execute(q_set_head, (seq, head, store))
            known[store] = (seq, head)
        self._insert_ledger_rows(cur, rows, q_insert)
        return out

    def read_events(
        self,
        store_id: str,
        *,
        after_seq: int = 0,
        limit: int = 100,
        filters: EventFilter | None = None,
        descending: bool = False,
    ) -> list[LedgerEvent]:
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        if descending:
            if after_seq > 0:
                where.append("seq < ?")
                params.append(after_seq)
        else:
            where.append("seq > ?")
            params.append(after_seq)
        f = filters
        if f is not None:
            if f.since is not None:
                where.append("time >= ?")
                params.append(float(f.since))
            if f.until is not None:
                where.append("time < ?")
                params.append(float(f.until))
            if f.types:
                where.append(f"type IN ({', '.join('?' for _ in f.types)})")
                params.extend(f.types)
            for column, value in (
                ("subject", f.subject),
                ("resource", f.resource),
                ("action", f.action),
                ("outcome", f.outcome),
                ("purpose", f.purpose),
                ("request_id", f.request_id),
                ("decision_id", f.decision_id),
            ):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            if f.actor is not None:
                where.append("(caller = ? OR actors LIKE ? ESCAPE '\\')")
                params += [f.actor, "%" + _like_escape(_json_dumps(f.actor)) + "%"]
        order = "DESC" if descending else "ASC"
        sql = self._q(
            f"SELECT body, hash FROM ledger_events WHERE {' AND '.join(where)}"
            f" ORDER BY seq {order} LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, (*params, int(limit)))
            return list(cur.fetchall())

        return [event_from_body(r[0], r[1]) for r in self._read_tx(tx)]

    def ledger_usage(
        self,
        store_id: str,
        *,
        since: float,
        until: float,
        types: Sequence[str],
        subject: str | None = None,
        actor: str | None = None,
        actor_subjects: Sequence[str] | None = None,
    ) -> list[UsageRow]:
        if not types:
            return []
        params: list[Any] = [store_id]
        table = "ledger_events"
        narrow = ""
        who: list[str] = []
        who_params: list[Any] = []
        if subject is not None or actor is not None:
            like = None if actor is None else "%" + _like_escape(_json_dumps(actor)) + "%"
            if actor is not None and actor_subjects is None:
                # any subject may have the actor in its chain: the window is scanned
                if subject is not None:
                    who.append("subject = ?")
                    who_params.append(subject)
                who.append("actors LIKE ? ESCAPE '\\'")
                who_params.append(like)
            else:
                # only these subjects' events can match: read them through the subject
                # index rather than the whole window
                subjects = dict.fromkeys(
                    [*([subject] if subject is not None else []), *(actor_subjects or ())]
                )
                if not subjects:
                    return []
                table += self._BY_SUBJECT
                narrow = f" AND subject IN ({', '.join('?' for _ in subjects)})"
                params.extend(subjects)
                if subject is not None:
                    who.append("subject = ?")
                    who_params.append(subject)
                if actor is not None:
                    who.append("actors LIKE ? ESCAPE '\\'")
                    who_params.append(like)
        params += [float(since), float(until), *types, *who_params]
        sql = self._q(
            "SELECT subject, actors, action, resource, type, COUNT(*), MAX(time)"
            f" FROM {table} WHERE store_id = ?{narrow} AND time >= ? AND time < ?"
            f" AND outcome = 'allow' AND type IN ({', '.join('?' for _ in types)})"
            + (f" AND ({' OR '.join(who)})" if who else "")
            + " GROUP BY subject, actors, action, resource, type"
        )

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, params)
            return list(cur.fetchall())

        chains: dict[str, tuple[str, ...]] = {"[]": ()}
        out: list[UsageRow] = []
        for subject, actors, action, resource, type_, count, last in self._read_tx(tx):
            chain = chains.get(actors)
            if chain is None:  # a JSON list of the chain's nodes (see _chain_rows)
                chain = chains[actors] = tuple(json.loads(actors)) if actors else ()
            out.append(UsageRow(subject, chain, action, resource, type_, int(count), float(last)))
        return out

    def read_chain_rows(
        self, store_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[ChainRow]:
        sql = self._q(
            "SELECT seq, body, prev_hash, hash FROM ledger_events"
            " WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, (store_id, after_seq, int(limit)))
            return list(cur.fetchall())

        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in self._read_tx(tx)]

    def get_event_by_decision(self, decision_id: str) -> LedgerEvent | None:
        sql = self._q(
            "SELECT body, hash FROM ledger_events WHERE decision_id = ?"
            " ORDER BY store_id, seq LIMIT 1"
        )

        def tx(cur: Cursor) -> Any:
            cur.execute(sql, (decision_id,))
            return cur.fetchone()

        row = self._read_tx(tx)
        return None if row is None else event_from_body(row[0], row[1])

    def ledger_head(self, store_id: str) -> tuple[int, str]:
        def tx(cur: Cursor) -> Any:
            cur.execute(
                self._q("SELECT seq, hash FROM ledger_heads WHERE store_id = ?"), (store_id,)
            )
            return cur.fetchone()

        row = self._read_tx(tx)
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def ledger_stores(self) -> list[str]:
        def tx(cur: Cursor) -> list[Any]:
            cur.execute("SELECT store_id FROM ledger_heads ORDER BY store_id")
            return list(cur.fetchall())

        return [str(r[0]) for r in self._read_tx(tx)]

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        cp = checkpoint
        sql = self._q(
            "INSERT INTO ledger_checkpoints (store_id, seq, hash, time, key_id, signature)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, seq) DO NOTHING"
        )
        self._write_tx(
            lambda cur: cur.execute(
                sql, (cp.store, cp.seq, cp.hash, cp.time, cp.key_id, bytes(cp.signature))
            )
        )

    def read_checkpoints(self, store_id: str) -> list[Checkpoint]:
        sql = self._q(
            "SELECT store_id, seq, hash, time, key_id, signature FROM ledger_checkpoints"
            " WHERE store_id = ? ORDER BY seq"
        )

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, (store_id,))
            return list(cur.fetchall())

        return [
            Checkpoint(r[0], int(r[1]), r[2], float(r[3]), r[4], bytes(r[5]))
            for r in self._read_tx(tx)
        ]

    def put_ledger_key(
        self,
        store_id: str,
        key_id: str,
        public_key: bytes,
        encrypted_private_key: bytes,
        created_at: float,
    ) -> None:
        sql = self._q(
            "INSERT INTO ledger_keys (store_id, key_id, public_key, encrypted_private_key,"
            " created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (store_id, key_id) DO NOTHING"
        )
        self._write_tx(
            lambda cur: cur.execute(
                sql,
                (store_id, key_id, bytes(public_key), bytes(encrypted_private_key), created_at),
            )
        )

    def ledger_keys(self, store_id: str) -> list[LedgerKeyRecord]:
        sql = self._q(
            "SELECT key_id, public_key, encrypted_private_key, created_at FROM ledger_keys"
            " WHERE store_id = ? ORDER BY created_at, key_id"
        )

        def tx(cur: Cursor) -> list[Any]:
            cur.execute(sql, (store_id,))
            return list(cur.fetchall())

        return [
            LedgerKeyRecord(r[0], bytes(r[1]), bytes(r[2]), float(r[3])) for r in self._read_tx(tx)
        ]

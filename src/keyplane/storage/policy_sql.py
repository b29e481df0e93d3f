"""The identity plane's tables (migration ``0007_identity_plane.sql``) in SQL both backends
understand: identities, delegations, guardrail sets and the store policy.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q``,
``_write_tx``, ``_read_tx``, ``_bump``, ``_revision`` and ``_append_encoded_tx``),
implementing :class:`keyplane.storage.base.PolicyStore`.

Every change goes through :meth:`PolicySQLMixin.write_policy`: the store's revision is
bumped FIRST (in PostgreSQL that locks the store row until commit, so the plan's reads
and the writes that follow are serialized with every other writer of the store; SQLite's
single writer gives the same), then the plan runs against a reader bound to the
transaction, then its rows are stored stamped with the new revision, its tuples written
and logged in the changelog, and its ledger events chained — one transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from keyplane.clock import Clock, SystemClock
from keyplane.errors import (
    ConflictError,
    DelegationNotFoundError,
    IdentityExistsError,
    IdentityNotFoundError,
    InvalidContinuationToken,
    InvalidTupleError,
)
from keyplane.graph.tuples import Tuple, split_object, split_user, validate_syntax
from keyplane.policy.records import (
    Delegation,
    Guardrail,
    GuardrailSet,
    Identity,
    ScopeGrant,
    StorePolicy,
    TrustedIssuer,
)
from keyplane.storage.base import (
    Page,
    PolicyChanges,
    PolicyWrite,
    PolicyWriteResult,
)
from keyplane.storage.paging import check_page_size, decode_token, encode_token

if TYPE_CHECKING:
    from keyplane.governance.records import AccessRequest, Entitlement
    from keyplane.ledger.events import LedgerEvent
    from keyplane.storage.base import PolicyTxReader

__all__ = [
    "GUARDRAIL_SET_COLS",
    "PolicySQLMixin",
    "delegation_from_row",
    "guardrail_set_from_row",
    "identity_from_row",
]

R = TypeVar("R")
Cursor = Any

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

IDENTITY_COLS = (
    "store_id, kind, id, display_name, attributes, status, owners, orphaned, source,"
    " created_at, updated_at, last_seen, revision"
)
DELEGATION_COLS = (
    "store_id, id, delegator, delegate, parent_id, scope, purposes, not_before, expires_at,"
    " max_depth, condition, status, revoked_at, revoked_reason, created_by, created_at,"
    " revision"
)
_POLICY_COLS = (
    "store_id, max_delegation_seconds, suspend_orphans, actions, revision, max_credential_seconds,"
    " access_token_seconds, allow_impersonation, token_audiences, trusted_issuers"
)

_TUPLE_KEY_MATCH = (
    "store_id = ? AND object_type = ? AND object_id = ? AND relation = ?"
    " AND user_type = ? AND user_id = ? AND user_relation = ?"
)
_TUPLE_COLS = (
    "object_type, object_id, relation, user_type, user_id, user_relation,"
    " condition_name, condition_context, expires_at"
)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ------------------------------------------------------------------------------ rows


def identity_from_row(r: Sequence[Any]) -> Identity:
    return Identity(
        store_id=r[0],
        kind=r[1],
        id=r[2],
        display_name=r[3],
        attributes=json.loads(r[4]),
        status=r[5],
        owners=tuple(json.loads(r[6])),
        orphaned=bool(r[7]),
        source=r[8],
        created_at=float(r[9]),
        updated_at=float(r[10]),
        last_seen=None if r[11] is None else float(r[11]),
        revision=int(r[12]),
    )


def _identity_params(i: Identity, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        i.kind,
        i.id,
        i.display_name,
        _dumps(i.attributes),
        i.status,
        _dumps(list(i.owners)),
        bool(i.orphaned),
        i.source,
        float(i.created_at),
        float(i.updated_at),
        i.last_seen,
        revision,
    )


def _scope_json(scope: Sequence[ScopeGrant]) -> str:
    return _dumps(
        [
            {"actions": list(g.actions), "resource": g.resource, "tools": list(g.tools)}
            for g in scope
        ]
    )


def delegation_from_row(r: Sequence[Any]) -> Delegation:
    scope = tuple(
        ScopeGrant(tuple(g["actions"]), g["resource"], tuple(g.get("tools", ())))
        for g in json.loads(r[5])
    )
    return Delegation(
        store_id=r[0],
        id=r[1],
        delegator=r[2],
        delegate=r[3],
        parent_id=r[4],
        scope=scope,
        purposes=tuple(json.loads(r[6])),
        not_before=float(r[7]),
        expires_at=float(r[8]),
        max_depth=int(r[9]),
        condition=r[10],
        status=r[11],
        revoked_at=None if r[12] is None else float(r[12]),
        revoked_reason=r[13],
        created_by=r[14],
        created_at=float(r[15]),
        revision=int(r[16]),
    )


def _delegation_params(d: Delegation, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        d.id,
        d.delegator,
        d.delegate,
        d.parent_id,
        _scope_json(d.scope),
        _dumps(list(d.purposes)),
        float(d.not_before),
        float(d.expires_at),
        int(d.max_depth),
        d.condition,
        d.status,
        d.revoked_at,
        d.revoked_reason,
        d.created_by,
        float(d.created_at),
        revision,
    )


GUARDRAIL_SET_COLS = "store_id, version, rules, created_by, created_at, revision"


def guardrail_set_from_row(r: Sequence[Any]) -> GuardrailSet:
    """A ``guardrail_sets`` row (:data:`GUARDRAIL_SET_COLS`); ``rules`` is a JSON array of
    ``{"id", "description", "effect", "expression", "enabled"}``."""
    rules = tuple(
        Guardrail(
            g["id"],
            g.get("description", ""),
            g["effect"],
            g["expression"],
            bool(g.get("enabled", True)),
        )
        for g in json.loads(r[2])
    )
    return GuardrailSet(r[0], int(r[1]), rules, r[3], float(r[4]), int(r[5]))


def _rule_json(g: Guardrail) -> dict[str, Any]:
    return {
        "id": g.id,
        "description": g.description,
        "effect": g.effect,
        "expression": g.expression,
        "enabled": g.enabled,
    }


def _policy_from_row(r: Sequence[Any]) -> StorePolicy:
    return StorePolicy(
        store_id=r[0],
        max_delegation_seconds=int(r[1]),
        suspend_orphans=bool(r[2]),
        actions=dict(json.loads(r[3])),
        revision=int(r[4]),
        max_credential_seconds=int(r[5]),
        access_token_seconds=int(r[6]),
        allow_impersonation=bool(r[7]),
        token_audiences=tuple(json.loads(r[8])),
        trusted_issuers=tuple(TrustedIssuer.from_json(t) for t in json.loads(r[9])),
    )


def _tuple_cols(t: Tuple) -> tuple[Any, ...]:
    validate_syntax(t)
    ot, oid = split_object(t.object)
    ut, uid, urel = split_user(t.user)
    ctx = json.dumps(dict(t.context), separators=(",", ":"), sort_keys=True) if t.context else None
    exp = None if t.expires_at is None else float(t.expires_at)
    return (ot, oid, t.relation, ut, uid, urel, t.condition or None, ctx, exp)


# ------------------------------------------------------------------------------ reads in a tx


class _TxReader:
    """:class:`~keyplane.storage.base.PolicyTxReader` over one open cursor."""

    def __init__(self, owner: PolicySQLMixin, cur: Cursor, store_id: str) -> None:
        self._s = owner
        self._cur = cur
        self.store_id = store_id

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self._cur.execute(self._s._q(sql), tuple(params))
        return list(self._cur.fetchall())

    def identity(self, kind: str, id: str) -> Identity | None:
        rows = self._all(
            f"SELECT {IDENTITY_COLS} FROM identities WHERE store_id = ? AND kind = ? AND id = ?",
            (self.store_id, kind, id),
        )
        return identity_from_row(rows[0]) if rows else None

    def identities_owned_by(self, owner: str) -> list[Identity]:
        pattern = "%" + _like_escape(_dumps(owner)) + "%"
        rows = self._all(
            f"SELECT {IDENTITY_COLS} FROM identities WHERE store_id = ?"
            " AND owners LIKE ? ESCAPE '\\' ORDER BY kind, id",
            (self.store_id, pattern),
        )
        found = [identity_from_row(r) for r in rows]
        return [i for i in found if owner in i.owners]

    def delegation(self, delegation_id: str) -> Delegation | None:
        rows = self._all(
            f"SELECT {DELEGATION_COLS} FROM delegations WHERE store_id = ? AND id = ?",
            (self.store_id, delegation_id),
        )
        return delegation_from_row(rows[0]) if rows else None

    def delegations_of(self, node: str) -> list[Delegation]:
        rows = self._all(
            f"SELECT {DELEGATION_COLS} FROM delegations WHERE store_id = ? AND status = 'active'"
            " AND (delegator = ? OR delegate = ?) ORDER BY id",
            (self.store_id, node, node),
        )
        return [delegation_from_row(r) for r in rows]

    def descendants(self, delegation_ids: Sequence[str]) -> list[Delegation]:
        found: dict[str, Delegation] = {}
        frontier = list(dict.fromkeys(delegation_ids))
        seen = set(frontier)
        # breadth-first, one query per level (chains are short: depth is bounded by max_depth)
        while frontier:
            marks = ", ".join("?" for _ in frontier)
            rows = self._all(
                f"SELECT {DELEGATION_COLS} FROM delegations WHERE store_id = ?"
                f" AND status = 'active' AND parent_id IN ({marks})",
                (self.store_id, *frontier),
            )
            frontier = []
            for r in rows:
                d = delegation_from_row(r)
                if d.id not in seen:
                    seen.add(d.id)
                    found[d.id] = d
                    frontier.append(d.id)
        return [found[k] for k in sorted(found)]

    def store_policy(self) -> StorePolicy:
        return self._s._select_policy(self._cur, self.store_id)

    def entitlement(self, entitlement_id: str) -> Entitlement | None:
        return self._s._select_entitlement(self._cur, self.store_id, entitlement_id)

    def access_request(self, request_id: str) -> AccessRequest | None:
        return self._s._select_access_request(self._cur, self.store_id, request_id)

    # last: the name shadows the builtin in the rest of the class body
    def tuple(self, object: str, relation: str, user: str) -> Tuple | None:
        return self._s._select_tuple(self._cur, self.store_id, object, relation, user)


# ------------------------------------------------------------------------------ the mixin


class PolicySQLMixin:
    """Implementation of :class:`keyplane.storage.base.PolicyStore` for SQLStorage."""

    # provided by SQLStorage
    def _q(self, sql: str) -> str:
        raise NotImplementedError

    def _write_tx(self, fn: Callable[[Cursor], R], *, retry: bool = True) -> R:
        raise NotImplementedError

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        raise NotImplementedError

    def _bump(self, cur: Cursor, store_id: str) -> int:
        raise NotImplementedError

    def _revision(self, cur: Cursor, store_id: str, suffix: str = "") -> int:
        raise NotImplementedError

    def _append_encoded_tx(
        self, cur: Cursor, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by TokensSQLMixin (a stub here would shadow it)

        def _token_changes(
            self, cur: Cursor, store_id: str, after_revision: int
        ) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]: ...

    if TYPE_CHECKING:  # provided by GovernanceSQLMixin

        def _entitlement_changes(
            self, cur: Cursor, store_id: str, after_revision: int
        ) -> tuple[Entitlement, ...]: ...

        def _apply_governance_write(
            self, cur: Cursor, store_id: str, rev: int, w: PolicyWrite
        ) -> tuple[tuple[Entitlement, ...], tuple[AccessRequest, ...]]: ...

        def _select_entitlement(
            self, cur: Cursor, store_id: str, entitlement_id: str
        ) -> Entitlement | None: ...

        def _select_access_request(
            self, cur: Cursor, store_id: str, request_id: str
        ) -> AccessRequest | None: ...

        def _select_tuple(
            self, cur: Cursor, store_id: str, object: str, relation: str, user: str
        ) -> Tuple | None: ...

    #: the tables :meth:`delete_store` empties with the store
    POLICY_TABLES = ("identities", "delegations", "guardrail_sets", "store_policies")

    # -- writes -----------------------------------------------------------------------

    def write_policy(
        self,
        store_id: str,
        plan: Callable[[PolicyTxReader], PolicyWrite],
        *,
        ledger_events: Callable[[int], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> PolicyWriteResult:
        def tx(cur: Cursor) -> PolicyWriteResult:
            rev = self._bump(cur, store_id)
            change = plan(_TxReader(self, cur, store_id))
            if change.empty:
                raise _Unchanged(rev - 1)
            result = self._apply_policy_write(cur, store_id, rev, change)
            if ledger_events is not None:
                items = ledger_events(rev)
                if items:
                    self._append_encoded_tx(cur, items)
            return result

        try:
            return self._write_tx(tx)
        except _Unchanged as nothing:
            return PolicyWriteResult(nothing.revision, False)

    def _apply_policy_write(
        self, cur: Cursor, store_id: str, rev: int, w: PolicyWrite
    ) -> PolicyWriteResult:
        q = self._q
        identities: list[Identity] = []
        for i in w.new_identities:
            cur.execute(
                q(
                    f"INSERT INTO identities ({IDENTITY_COLS}) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                _identity_params(i, store_id, rev),
            )
            if cur.rowcount != 1:
                raise IdentityExistsError(
                    f"identity {i.node!r} already exists", details={"identity": i.node}
                )
            identities.append(dataclasses.replace(i, store_id=store_id, revision=rev))
        for i in w.identities:
            p = _identity_params(i, store_id, rev)
            cur.execute(
                q(
                    "UPDATE identities SET display_name = ?, attributes = ?, status = ?,"
                    " owners = ?, orphaned = ?, source = ?, created_at = ?, updated_at = ?,"
                    " last_seen = ?, revision = ? WHERE store_id = ? AND kind = ? AND id = ?"
                ),
                (*p[3:], store_id, i.kind, i.id),
            )
            if cur.rowcount != 1:
                raise IdentityNotFoundError(
                    f"identity {i.node!r} not found", details={"identity": i.node}
                )
            identities.append(dataclasses.replace(i, store_id=store_id, revision=rev))
        delegations: list[Delegation] = []
        for d in w.new_delegations:
            cur.execute(
                q(
                    f"INSERT INTO delegations ({DELEGATION_COLS}) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                _delegation_params(d, store_id, rev),
            )
            if cur.rowcount != 1:
                raise ConflictError(
                    f"delegation {d.id!r} already exists", details={"delegation_id": d.id}
                )
            delegations.append(dataclasses.replace(d, store_id=store_id, revision=rev))
        for d in w.delegations:
            p = _delegation_params(d, store_id, rev)
            cur.execute(
                q(
                    "UPDATE delegations SET delegator = ?, delegate = ?, parent_id = ?,"
                    " scope = ?, purposes = ?, not_before = ?, expires_at = ?, max_depth = ?,"
                    " condition = ?, status = ?, revoked_at = ?, revoked_reason = ?,"
                    " created_by = ?, created_at = ?, revision = ? WHERE store_id = ? AND id = ?"
                ),
                (*p[2:], store_id, d.id),
            )
            if cur.rowcount != 1:
                raise DelegationNotFoundError(
                    f"delegation {d.id!r} not found", details={"delegation_id": d.id}
                )
            delegations.append(dataclasses.replace(d, store_id=store_id, revision=rev))
        policy = None
        if w.store_policy is not None:
            sp = w.store_policy
            cur.execute(
                q(
                    f"INSERT INTO store_policies ({_POLICY_COLS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (store_id) DO UPDATE SET"
                    " max_delegation_seconds = excluded.max_delegation_seconds,"
                    " suspend_orphans = excluded.suspend_orphans, actions = excluded.actions,"
                    " revision = excluded.revision,"
                    " max_credential_seconds = excluded.max_credential_seconds,"
                    " access_token_seconds = excluded.access_token_seconds,"
                    " allow_impersonation = excluded.allow_impersonation,"
                    " token_audiences = excluded.token_audiences,"
                    " trusted_issuers = excluded.trusted_issuers"
                ),
                (
                    store_id,
                    int(sp.max_delegation_seconds),
                    bool(sp.suspend_orphans),
                    _dumps(dict(sp.actions)),
                    rev,
                    int(sp.max_credential_seconds),
                    int(sp.access_token_seconds),
                    bool(sp.allow_impersonation),
                    _dumps(list(sp.token_audiences)),
                    _dumps([t.to_json() for t in sp.trusted_issuers]),
                ),
            )
            policy = dataclasses.replace(sp, store_id=store_id, revision=rev)
        entitlements, requests = self._apply_governance_write(cur, store_id, rev, w)
        if w.tuple_writes or w.tuple_deletes:
            self._policy_tuples(cur, store_id, rev, w.tuple_writes, w.tuple_deletes)
        return PolicyWriteResult(
            rev, True, tuple(identities), tuple(delegations), policy, entitlements, requests
        )

    def _policy_tuples(
        self,
        cur: Cursor,
        store_id: str,
        rev: int,
        writes: Sequence[Tuple],
        deletes: Sequence[Tuple],
    ) -> None:
        """Idempotent tuple writes/deletes at ``rev``, each actual change in the changelog
        (so every process's graph applies it like any other tuple write). Deletes run
        first: a key in both lists is replaced (a key twice in one list is an error)."""
        q = self._q
        now = self._policy_now()
        log: list[tuple[Any, ...]] = []
        seen: set[tuple[str, str, str]] = set()
        for t in deletes:
            if t.key in seen:
                raise InvalidTupleError(f"duplicate tuple in one write: {t}")
            seen.add(t.key)
            cols = _tuple_cols(t)
            cur.execute(
                q(
                    f"DELETE FROM tuples WHERE {_TUPLE_KEY_MATCH}"
                    " RETURNING condition_name, condition_context, expires_at"
                ),
                (store_id, *cols[:6]),
            )
            row = cur.fetchone()
            if row is not None:
                log.append((store_id, rev, len(log), "delete", *cols[:6], *row, now))
        seen = set()
        for t in writes:
            if t.key in seen:
                raise InvalidTupleError(f"duplicate tuple in one write: {t}")
            seen.add(t.key)
            cols = _tuple_cols(t)
            cur.execute(
                q(
                    f"INSERT INTO tuples (store_id, {_TUPLE_COLS}, revision)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (store_id, *cols, rev),
            )
            if cur.rowcount == 1:
                log.append((store_id, rev, len(log), "write", *cols, now))
        if log:
            cur.executemany(
                q(
                    f"INSERT INTO changelog (store_id, revision, seq, operation, {_TUPLE_COLS},"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                log,
            )

    def _policy_now(self) -> float:
        clock: Clock = getattr(self, "_clock", None) or SystemClock()
        return float(clock.now())

    def touch_identities(self, store_id: str, seen: Sequence[tuple[str, str, float]]) -> None:
        if not seen:
            return
        sql = self._q(
            "UPDATE identities SET last_seen = ? WHERE store_id = ? AND kind = ? AND id = ?"
            " AND (last_seen IS NULL OR last_seen < ?)"
        )

        def tx(cur: Cursor) -> None:
            cur.executemany(sql, [(at, store_id, k, i, at) for k, i, at in seen])

        self._write_tx(tx)

    def _delete_policy_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in self.POLICY_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))

    # -- reads ------------------------------------------------------------------------

    def _select_policy(self, cur: Cursor, store_id: str) -> StorePolicy:
        cur.execute(
            self._q(f"SELECT {_POLICY_COLS} FROM store_policies WHERE store_id = ?"), (store_id,)
        )
        row = cur.fetchone()
        return StorePolicy(store_id) if row is None else _policy_from_row(row)

    def get_identity(self, store_id: str, kind: str, id: str) -> Identity | None:
        def tx(cur: Cursor) -> Identity | None:
            self._revision(cur, store_id)
            return _TxReader(self, cur, store_id).identity(kind, id)

        return self._read_tx(tx)

    def list_identities(
        self,
        store_id: str,
        *,
        kind: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        orphaned: bool | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Identity]:
        check_page_size(page_size)
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if orphaned is not None:
            where.append("orphaned = ?")
            params.append(bool(orphaned))
        if owner is not None:
            where.append("owners LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escape(_dumps(owner)) + "%")
        query = ("identities", store_id, kind, status, owner, orphaned)
        if continuation_token:
            k, i = decode_token(continuation_token, query, 2)
            where.append("(kind > ? OR (kind = ? AND id > ?))")
            params += [k, k, i]
        sql = self._q(
            f"SELECT {IDENTITY_COLS} FROM identities WHERE {' AND '.join(where)}"
            " ORDER BY kind, id LIMIT ?"
        )

        # the owner filter is a LIKE on the JSON list: re-checked exactly below, so a page
        # may come back shorter than page_size (never with a wrong item)
        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        more = len(rows) > page_size
        rows = rows[:page_size]
        items = [identity_from_row(r) for r in rows]
        token = encode_token(query, [rows[-1][1], rows[-1][2]]) if more else None
        if owner is not None:
            items = [i for i in items if owner in i.owners]
        return Page(items, token)

    def get_delegation(self, store_id: str, delegation_id: str) -> Delegation | None:
        def tx(cur: Cursor) -> Delegation | None:
            self._revision(cur, store_id)
            return _TxReader(self, cur, store_id).delegation(delegation_id)

        return self._read_tx(tx)

    def list_delegations(
        self,
        store_id: str,
        *,
        delegator: str | None = None,
        delegate: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Delegation]:
        check_page_size(page_size)
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        for column, value in (
            ("delegator", delegator),
            ("delegate", delegate),
            ("status", status),
            ("parent_id", parent_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        query = ("delegations", store_id, delegator, delegate, status, parent_id)
        if continuation_token:
            where.append("id > ?")
            params.append(decode_token(continuation_token, query, 1)[0])
        sql = self._q(
            f"SELECT {DELEGATION_COLS} FROM delegations WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        items = [delegation_from_row(r) for r in rows[:page_size]]
        token = encode_token(query, [items[-1].id]) if len(rows) > page_size else None
        return Page(items, token)

    def get_store_policy(self, store_id: str) -> StorePolicy:
        def tx(cur: Cursor) -> StorePolicy:
            self._revision(cur, store_id)
            return self._select_policy(cur, store_id)

        return self._read_tx(tx)

    def read_policy_changes(self, store_id: str, after_revision: int) -> PolicyChanges:
        q = self._q

        def tx(cur: Cursor) -> PolicyChanges:
            current = self._revision(cur, store_id)
            cur.execute(
                q(
                    f"SELECT {IDENTITY_COLS} FROM identities WHERE store_id = ? AND revision > ?"
                    " ORDER BY revision, kind, id"
                ),
                (store_id, after_revision),
            )
            identities = tuple(identity_from_row(r) for r in cur.fetchall())
            cur.execute(
                q(
                    f"SELECT {DELEGATION_COLS} FROM delegations WHERE store_id = ?"
                    " AND revision > ? ORDER BY revision, id"
                ),
                (store_id, after_revision),
            )
            delegations = tuple(delegation_from_row(r) for r in cur.fetchall())
            latest = self._latest_guardrail_set(cur, store_id)
            guardrails = latest if latest is not None and latest.revision > after_revision else None
            policy = self._select_policy(cur, store_id)
            changed_policy = policy if policy.revision > after_revision else None
            revoked_tokens, revoked_credentials = self._token_changes(cur, store_id, after_revision)
            entitlements = self._entitlement_changes(cur, store_id, after_revision)
            return PolicyChanges(
                identities,
                delegations,
                guardrails,
                changed_policy,
                current,
                revoked_tokens,
                revoked_credentials,
                entitlements,
            )

        return self._read_tx(tx)

    def _latest_guardrail_set(self, cur: Cursor, store_id: str) -> GuardrailSet | None:
        """The store's latest guardrail set (engineer C's methods below read and write them)."""
        cur.execute(
            self._q(
                f"SELECT {GUARDRAIL_SET_COLS} FROM guardrail_sets WHERE store_id = ?"
                " ORDER BY version DESC LIMIT 1"
            ),
            (store_id,),
        )
        r = cur.fetchone()
        return None if r is None else guardrail_set_from_row(r)

    # -- guardrail sets (engineer C) --------------------------------------------------

    def put_guardrail_set(
        self,
        store_id: str,
        rules: Sequence[Guardrail],
        *,
        created_by: str,
        created_at: float | None = None,
        ledger_events: Callable[[GuardrailSet], Sequence[tuple[LedgerEvent, str]]] | None = None,
    ) -> GuardrailSet:
        q = self._q
        rules = tuple(rules)
        body = _dumps([_rule_json(r) for r in rules])

        def tx(cur: Cursor) -> GuardrailSet:
            # bump first: the store row's lock serializes writers, so versions never collide
            rev = self._bump(cur, store_id)
            cur.execute(
                q("SELECT MAX(version) FROM guardrail_sets WHERE store_id = ?"), (store_id,)
            )
            row = cur.fetchone()
            version = int(row[0] or 0) + 1 if row is not None else 1
            now = float(created_at) if created_at is not None else self._policy_now()
            cur.execute(
                q(f"INSERT INTO guardrail_sets ({GUARDRAIL_SET_COLS}) VALUES (?, ?, ?, ?, ?, ?)"),
                (store_id, version, body, created_by, now, rev),
            )
            gset = GuardrailSet(store_id, version, rules, created_by, now, rev)
            if ledger_events is not None:
                items = ledger_events(gset)
                if items:
                    self._append_encoded_tx(cur, items)
            return gset

        return self._write_tx(tx)

    def get_guardrail_set(self, store_id: str, version: int | None = None) -> GuardrailSet | None:
        q = self._q

        def tx(cur: Cursor) -> GuardrailSet | None:
            self._revision(cur, store_id)
            if version is None:
                return self._latest_guardrail_set(cur, store_id)
            cur.execute(
                q(
                    f"SELECT {GUARDRAIL_SET_COLS} FROM guardrail_sets"
                    " WHERE store_id = ? AND version = ?"
                ),
                (store_id, int(version)),
            )
            r = cur.fetchone()
            return None if r is None else guardrail_set_from_row(r)

        return self._read_tx(tx)

    def list_guardrail_sets(
        self, store_id: str, *, page_size: int = 50, continuation_token: str | None = None
    ) -> Page[GuardrailSet]:
        check_page_size(page_size)
        where = "store_id = ?"
        params: list[Any] = [store_id]
        query = ("guardrail_sets", store_id)
        if continuation_token:
            after = decode_token(continuation_token, query, 1)[0]
            if not isinstance(after, int):
                raise InvalidContinuationToken("invalid continuation token")
            where += " AND version < ?"
            params.append(after)
        sql = self._q(
            f"SELECT {GUARDRAIL_SET_COLS} FROM guardrail_sets WHERE {where}"
            " ORDER BY version DESC LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        items = [guardrail_set_from_row(r) for r in rows[:page_size]]
        token = encode_token(query, [items[-1].version]) if len(rows) > page_size else None
        return Page(items, token)


class _Unchanged(Exception):
    """Raised inside write_policy's transaction to roll back a plan that changed nothing."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision

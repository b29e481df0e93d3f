"""Entitlements and access requests (migration ``0011_access_requests.sql``) in SQL both
backends understand.

A mixin of :class:`keyplane.storage.sql.SQLStorage` (it uses the backend's ``_q``,
``_read_tx`` and ``_revision``) implementing the reads of
:class:`keyplane.storage.base.GovernanceStore`, and what the identity plane's machinery
(:mod:`keyplane.storage.policy_sql`) needs from these tables:

* the writes: :meth:`~keyplane.storage.policy_sql.PolicySQLMixin.write_policy` stores a
  plan's entitlements and access requests here (:meth:`GovernanceSQLMixin.
  _apply_governance_write`) after the store's revision bump (in PostgreSQL that locks the
  store row until commit, so the plan's reads and these writes are serialized with every
  other writer of the store; SQLite's single writer gives the same), in the transaction
  that also writes the grant tuples (logged in the changelog like any tuple write) and
  chains the ledger events: a grant tuple never exists without its request's change, and
  the other way round. A replaced request is compare-and-set on the revision it was read
  with;
* the reads inside that transaction (``PolicyTxReader.entitlement / access_request /
  tuple``);
* what :meth:`~keyplane.storage.policy_sql.PolicySQLMixin.read_policy_changes` adds to a
  :class:`~keyplane.storage.base.PolicyChanges`: the entitlements changed after a
  revision (a deleted one as its tombstone), so every process's
  :class:`~keyplane.policy.state.PolicyState` knows the requestable entitlements.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from keyplane.clock import Clock, SystemClock
from keyplane.errors import (
    AccessRequestNotFoundError,
    AccessRequestStateError,
    ConflictError,
    EntitlementExistsError,
    EntitlementNotFoundError,
    InvalidContinuationToken,
    InvalidTupleError,
)
from keyplane.governance.records import (
    ENTITLEMENT_DELETED,
    EXPIRED,
    PENDING,
    AccessRequest,
    Approval,
    ApprovalRule,
    Entitlement,
)
from keyplane.graph.tuples import Tuple
from keyplane.storage.base import Page, PolicyWrite
from keyplane.storage.paging import check_page_size, decode_token, encode_token
from keyplane.storage.policy_sql import _tuple_cols

__all__ = [
    "ACCESS_REQUEST_COLS",
    "ENTITLEMENT_COLS",
    "GovernanceSQLMixin",
    "access_request_from_row",
    "entitlement_from_row",
]

R = TypeVar("R")
Cursor = Any

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

ENTITLEMENT_COLS = (
    "store_id, id, object, relation, description, owners, risk, max_duration_seconds,"
    " agents_may_request, approval, status, created_by, created_at, updated_at, revision"
)
ACCESS_REQUEST_COLS = (
    "store_id, id, entitlement_id, object, relation, beneficiary, requester, caller,"
    " duration_seconds, purpose, justification, state, created_at, pending_until,"
    " route_approvers, required, rule_id, approvals, decided_at, grant_starts_at,"
    " grant_expires_at, ended_at, ended_by, end_reason, revision"
)
_N_REQUEST_COLS = 25

_TUPLE_KEY_MATCH = (
    "store_id = ? AND object_type = ? AND object_id = ? AND relation = ?"
    " AND user_type = ? AND user_id = ? AND user_relation = ?"
)
_TUPLE_COLS = (
    "object_type, object_id, relation, user_type, user_id, user_relation,"
    " condition_name, condition_context, expires_at"
)
_CHANGELOG_INSERT = (
    f"INSERT INTO changelog (store_id, revision, seq, operation, {_TUPLE_COLS}, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


# ------------------------------------------------------------------------------ rows


def entitlement_from_row(r: Sequence[Any]) -> Entitlement:
    return Entitlement(
        store_id=r[0],
        id=r[1],
        object=r[2],
        relation=r[3],
        description=r[4],
        owners=tuple(json.loads(r[5])),
        risk=r[6],
        max_duration_seconds=int(r[7]),
        agents_may_request=bool(r[8]),
        approval=tuple(ApprovalRule.from_json(x) for x in json.loads(r[9])),
        status=r[10],
        created_by=r[11],
        created_at=float(r[12]),
        updated_at=float(r[13]),
        revision=int(r[14]),
    )


def _entitlement_params(e: Entitlement, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        e.id,
        e.object,
        e.relation,
        e.description,
        _dumps(list(e.owners)),
        e.risk,
        int(e.max_duration_seconds),
        bool(e.agents_may_request),
        _dumps(e.approval_json()),
        e.status,
        e.created_by,
        float(e.created_at),
        float(e.updated_at),
        revision,
    )


def access_request_from_row(r: Sequence[Any]) -> AccessRequest:
    return AccessRequest(
        store_id=r[0],
        id=r[1],
        entitlement_id=r[2],
        object=r[3],
        relation=r[4],
        beneficiary=r[5],
        requester=r[6],
        caller=r[7],
        duration_seconds=int(r[8]),
        purpose=r[9],
        justification=r[10],
        state=r[11],
        created_at=float(r[12]),
        pending_until=float(r[13]),
        route_approvers=tuple(json.loads(r[14])),
        required=int(r[15]),
        rule_id=r[16],
        approvals=tuple(Approval.from_json(a) for a in json.loads(r[17])),
        decided_at=_opt_float(r[18]),
        grant_starts_at=_opt_float(r[19]),
        grant_expires_at=_opt_float(r[20]),
        ended_at=_opt_float(r[21]),
        ended_by=r[22],
        end_reason=r[23],
        revision=int(r[24]),
    )


def _request_params(a: AccessRequest, store_id: str, revision: int) -> tuple[Any, ...]:
    return (
        store_id,
        a.id,
        a.entitlement_id,
        a.object,
        a.relation,
        a.beneficiary,
        a.requester,
        a.caller,
        int(a.duration_seconds),
        a.purpose,
        a.justification,
        a.state,
        float(a.created_at),
        float(a.pending_until),
        _dumps(list(a.route_approvers)),
        int(a.required),
        a.rule_id,
        _dumps([x.to_json() for x in a.approvals]),
        _opt_float(a.decided_at),
        _opt_float(a.grant_starts_at),
        _opt_float(a.grant_expires_at),
        _opt_float(a.ended_at),
        a.ended_by,
        a.end_reason,
        revision,
    )


def _entitlement_missing(entitlement_id: str) -> EntitlementNotFoundError:
    return EntitlementNotFoundError(
        f"entitlement {entitlement_id!r} not found", details={"entitlement_id": entitlement_id}
    )


def _row_tuple(r: Sequence[Any]) -> Tuple:
    ot, oid, rel, ut, uid, urel, cname, ctx, exp = r[:9]
    user = f"{ut}:{uid}#{urel}" if urel else f"{ut}:{uid}"
    return Tuple(
        f"{ot}:{oid}", rel, user, cname, None if ctx is None else json.loads(ctx), _opt_float(exp)
    )


# ------------------------------------------------------------------------------ the mixin


class GovernanceSQLMixin:
    """Implementation of :class:`keyplane.storage.base.GovernanceStore` for SQLStorage."""

    # provided by SQLStorage
    def _q(self, sql: str) -> str:
        raise NotImplementedError

    def _read_tx(self, fn: Callable[[Cursor], R]) -> R:
        raise NotImplementedError

    def _revision(self, cur: Cursor, store_id: str, suffix: str = "") -> int:
        raise NotImplementedError

    #: the tables :meth:`delete_store` empties with the store (the review tables of the
    #: same migration included)
    GOVERNANCE_TABLES = ("entitlements", "access_requests", "review_campaigns", "review_items")

    def _governance_now(self) -> float:
        clock: Clock = getattr(self, "_clock", None) or SystemClock()
        return float(clock.now())

    def _delete_governance_rows(self, cur: Cursor, store_id: str) -> None:
        """Called by delete_store inside its transaction."""
        for table in self.GOVERNANCE_TABLES:
            cur.execute(self._q(f"DELETE FROM {table} WHERE store_id = ?"), (store_id,))

    def _entitlement_changes(
        self, cur: Cursor, store_id: str, after_revision: int
    ) -> tuple[Entitlement, ...]:
        """For read_policy_changes: entitlement rows (tombstones too) past the revision."""
        cur.execute(
            self._q(
                f"SELECT {ENTITLEMENT_COLS} FROM entitlements WHERE store_id = ?"
                " AND revision > ? ORDER BY revision, id"
            ),
            (store_id, after_revision),
        )
        return tuple(entitlement_from_row(r) for r in cur.fetchall())

    # -- entitlements -----------------------------------------------------------------

    def _select_entitlement(
        self, cur: Cursor, store_id: str, entitlement_id: str
    ) -> Entitlement | None:
        cur.execute(
            self._q(
                f"SELECT {ENTITLEMENT_COLS} FROM entitlements WHERE store_id = ? AND id = ?"
                " AND status <> ?"
            ),
            (store_id, entitlement_id, ENTITLEMENT_DELETED),
        )
        r = cur.fetchone()
        return None if r is None else entitlement_from_row(r)

    def get_entitlement(self, store_id: str, entitlement_id: str) -> Entitlement | None:
        def tx(cur: Cursor) -> Entitlement | None:
            self._revision(cur, store_id)
            return self._select_entitlement(cur, store_id, entitlement_id)

        return self._read_tx(tx)

    def list_entitlements(
        self,
        store_id: str,
        *,
        status: str | None = None,
        object: str | None = None,
        object_type: str | None = None,
        relation: str | None = None,
        owner: str | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[Entitlement]:
        check_page_size(page_size)
        where = ["store_id = ?", "status <> ?"]
        params: list[Any] = [store_id, ENTITLEMENT_DELETED]
        for column, value in (("status", status), ("object", object), ("relation", relation)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if object_type is not None:
            where.append("object LIKE ? ESCAPE '\\'")
            params.append(_like_escape(object_type + ":") + "%")
        if owner is not None:
            where.append("owners LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escape(_dumps(owner)) + "%")
        query = ("entitlements", store_id, status, object, object_type, relation, owner)
        if continuation_token:
            where.append("id > ?")
            params.append(decode_token(continuation_token, query, 1)[0])
        sql = self._q(
            f"SELECT {ENTITLEMENT_COLS} FROM entitlements WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        more = len(rows) > page_size
        rows = rows[:page_size]
        items = [entitlement_from_row(r) for r in rows]
        token = encode_token(query, [items[-1].id]) if more else None
        # LIKE on the JSON list: re-checked exactly (a page may come back shorter)
        if owner is not None:
            items = [e for e in items if owner in e.owners]
        return Page(items, token)

    # -- writes (inside write_policy's transaction) ----------------------------------

    def _apply_governance_write(
        self, cur: Cursor, store_id: str, rev: int, w: PolicyWrite
    ) -> tuple[tuple[Entitlement, ...], tuple[AccessRequest, ...]]:
        """Store the entitlement and access request rows of ``w`` at ``rev`` (called by
        write_policy after the bump, before the tuples)."""
        q = self._q
        ents: list[Entitlement] = []
        for e in w.new_entitlements:
            if e.status == ENTITLEMENT_DELETED:
                raise ValueError("cannot create a deleted entitlement")
            # a tombstone of the same id is replaced (the bump serializes this)
            cur.execute(
                q("DELETE FROM entitlements WHERE store_id = ? AND id = ? AND status = ?"),
                (store_id, e.id, ENTITLEMENT_DELETED),
            )
            cur.execute(
                q(
                    f"INSERT INTO entitlements ({ENTITLEMENT_COLS}) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                _entitlement_params(e, store_id, rev),
            )
            if cur.rowcount != 1:
                raise EntitlementExistsError(
                    f"entitlement {e.id!r} already exists", details={"entitlement_id": e.id}
                )
            ents.append(dataclasses.replace(e, store_id=store_id, revision=rev))
        update = q(
            "UPDATE entitlements SET object = ?, relation = ?, description = ?, owners = ?,"
            " risk = ?, max_duration_seconds = ?, agents_may_request = ?, approval = ?,"
            " status = ?, created_by = ?, created_at = ?, updated_at = ?, revision = ?"
            " WHERE store_id = ? AND id = ? AND status <> ?"
        )
        for e in w.entitlements:
            if e.status == ENTITLEMENT_DELETED:
                raise ValueError("use deleted_entitlements to delete an entitlement")
            p = _entitlement_params(e, store_id, rev)
            cur.execute(update, (*p[2:], store_id, e.id, ENTITLEMENT_DELETED))
            if cur.rowcount != 1:
                raise _entitlement_missing(e.id)
            ents.append(dataclasses.replace(e, store_id=store_id, revision=rev))
        now = self._governance_now()
        for eid in w.deleted_entitlements:
            cur.execute(
                q(
                    "UPDATE entitlements SET status = ?, updated_at = ?, revision = ?"
                    f" WHERE store_id = ? AND id = ? AND status <> ? RETURNING {ENTITLEMENT_COLS}"
                ),
                (ENTITLEMENT_DELETED, now, rev, store_id, eid, ENTITLEMENT_DELETED),
            )
            row = cur.fetchone()
            if row is None:
                raise _entitlement_missing(eid)
            ents.append(entitlement_from_row(row))
        reqs: list[AccessRequest] = []
        marks = ", ".join("?" for _ in range(_N_REQUEST_COLS))
        for a in w.new_access_requests:
            cur.execute(
                q(
                    f"INSERT INTO access_requests ({ACCESS_REQUEST_COLS}) VALUES ({marks})"
                    " ON CONFLICT DO NOTHING"
                ),
                _request_params(a, store_id, rev),
            )
            if cur.rowcount != 1:
                raise ConflictError(
                    f"access request {a.id!r} already exists", details={"request_id": a.id}
                )
            reqs.append(dataclasses.replace(a, store_id=store_id, revision=rev))
        cols = [c.strip() for c in ACCESS_REQUEST_COLS.split(",")][2:]
        update_request = q(
            f"UPDATE access_requests SET {', '.join(f'{c} = ?' for c in cols)}"
            " WHERE store_id = ? AND id = ? AND revision = ?"
        )
        for a in w.access_requests:
            p = _request_params(a, store_id, rev)
            # compare-and-set on the revision the record was read with
            cur.execute(update_request, (*p[2:], store_id, a.id, int(a.revision)))
            if cur.rowcount != 1:
                stored = self._select_access_request(cur, store_id, a.id)
                if stored is None:
                    raise AccessRequestNotFoundError(
                        f"access request {a.id!r} not found", details={"request_id": a.id}
                    )
                raise AccessRequestStateError(
                    f"access request {a.id!r} changed meanwhile (now {stored.state!r},"
                    f" revision {stored.revision}; written from revision {a.revision})",
                    details={
                        "request_id": a.id,
                        "state": stored.state,
                        "revision": stored.revision,
                    },
                )
            reqs.append(dataclasses.replace(a, store_id=store_id, revision=rev))
        return tuple(ents), tuple(reqs)

    # -- reads inside a transaction (PolicyTxReader) --------------------------------

    def _select_access_request(
        self, cur: Cursor, store_id: str, request_id: str
    ) -> AccessRequest | None:
        cur.execute(
            self._q(
                f"SELECT {ACCESS_REQUEST_COLS} FROM access_requests WHERE store_id = ? AND id = ?"
            ),
            (store_id, request_id),
        )
        r = cur.fetchone()
        return None if r is None else access_request_from_row(r)

    def _select_tuple(
        self, cur: Cursor, store_id: str, object: str, relation: str, user: str
    ) -> Tuple | None:
        try:
            cols = _tuple_cols(Tuple(object, relation, user))
        except InvalidTupleError:
            return None
        cur.execute(
            self._q(f"SELECT {_TUPLE_COLS} FROM tuples WHERE {_TUPLE_KEY_MATCH}"),
            (store_id, *cols[:6]),
        )
        r = cur.fetchone()
        return None if r is None else _row_tuple(r)

    # -- access requests: reads -------------------------------------------------------

    def get_access_request(self, store_id: str, request_id: str) -> AccessRequest | None:
        def tx(cur: Cursor) -> AccessRequest | None:
            self._revision(cur, store_id)
            return self._select_access_request(cur, store_id, request_id)

        return self._read_tx(tx)

    def list_access_requests(
        self,
        store_id: str,
        *,
        state: str | None = None,
        entitlement_id: str | None = None,
        beneficiary: str | None = None,
        requester: str | None = None,
        approver: str | None = None,
        object: str | None = None,
        relation: str | None = None,
        object_type: str | None = None,
        beneficiary_kind: str | None = None,
        now: float | None = None,
        page_size: int = 50,
        continuation_token: str | None = None,
    ) -> Page[AccessRequest]:
        check_page_size(page_size)
        where = ["store_id = ?"]
        params: list[Any] = [store_id]
        for column, value in (
            ("entitlement_id", entitlement_id),
            ("beneficiary", beneficiary),
            ("requester", requester),
            ("object", object),
            ("relation", relation),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        for column, prefix in (("object", object_type), ("beneficiary", beneficiary_kind)):
            if prefix is not None:
                where.append(f"{column} LIKE ? ESCAPE '\\'")
                params.append(_like_escape(prefix + ":") + "%")
        if approver is not None:
            where.append("route_approvers LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escape(_dumps(approver)) + "%")
        query = (
            "access_requests",
            store_id,
            state,
            entitlement_id,
            beneficiary,
            requester,
            approver,
            object,
            relation,
            object_type,
            beneficiary_kind,
            now,
        )
        after: str | None = None
        at = self._governance_now() if now is None else float(now)
        if continuation_token:
            key = decode_token(continuation_token, query, 2)
            if not isinstance(key[0], str) or not isinstance(key[1], str):
                raise InvalidContinuationToken("invalid continuation token")
            try:
                at = float(key[0])  # the instant of the first page: pages stay consistent
            except ValueError:
                raise InvalidContinuationToken("invalid continuation token") from None
            after = key[1]
        if state is not None:
            clause, extra = _state_clause(state, at)
            where.append(clause)
            params += extra
        if after is not None:
            where.append("id > ?")
            params.append(after)
        sql = self._q(
            f"SELECT {ACCESS_REQUEST_COLS} FROM access_requests WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (*params, page_size + 1))
            return list(cur.fetchall())

        rows = self._read_tx(tx)
        more = len(rows) > page_size
        items = [access_request_from_row(r) for r in rows[:page_size]]
        token = encode_token(query, [repr(at), items[-1].id]) if more else None
        if approver is not None:
            items = [a for a in items if approver in a.route_approvers]
        return Page(items, token)

    def access_requests_due(
        self, store_id: str, now: float, *, limit: int = 1000
    ) -> list[AccessRequest]:
        at = float(now)
        sql = self._q(
            f"SELECT {ACCESS_REQUEST_COLS} FROM access_requests WHERE store_id = ? AND ("
            "(state = 'pending' AND pending_until <= ?) OR (state IN ('approved', 'active')"
            " AND grant_expires_at IS NOT NULL AND grant_expires_at <= ?)) ORDER BY id LIMIT ?"
        )

        def tx(cur: Cursor) -> list[Any]:
            self._revision(cur, store_id)
            cur.execute(sql, (store_id, at, at, int(limit)))
            return list(cur.fetchall())

        return [access_request_from_row(r) for r in self._read_tx(tx)]


def _state_clause(state: str, at: float) -> tuple[str, list[Any]]:
    """SQL for "the state at ``at`` is ``state``" (AccessRequest.state_at in SQL)."""
    if state == PENDING:
        return "(state = 'pending' AND pending_until > ?)", [at]
    if state == EXPIRED:
        return (
            "(state = 'expired' OR (state = 'pending' AND pending_until <= ?)"
            " OR (state IN ('approved', 'active') AND grant_expires_at IS NOT NULL"
            " AND grant_expires_at <= ?))",
            [at, at],
        )
    if state in ("active", "approved"):
        return (
            "(state = ? AND (grant_expires_at IS NULL OR grant_expires_at > ?))",
            [state, at],
        )
    return "state = ?", [state]

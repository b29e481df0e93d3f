"""Keyplane results → OpenFGA JSON: stores, models, tuples, changes, users, times, tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keyplane.errors import InvalidContinuationToken
from keyplane.graph.tuples import Tuple, TupleChange, split_user
from keyplane.storage.base import ModelRecord, StoreInfo
from keyplane.storage.paging import decode_token, encode_token

__all__ = [
    "EPOCH",
    "change",
    "changes_token",
    "model",
    "read_changes_token",
    "rfc3339",
    "store",
    "tuple_key",
    "user",
]

#: read tuples carry a ``timestamp``; Keyplane does not keep a tuple's write time, so the
#: compatible API reports the Unix epoch (documented in docs/openfga-compat.md)
EPOCH = "1970-01-01T00:00:00Z"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def store(info: StoreInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "created_at": rfc3339(info.created_at),
        "updated_at": rfc3339(info.updated_at),
    }


def model(rec: ModelRecord) -> dict[str, Any]:
    m = rec.model
    return {
        "id": rec.id,
        "schema_version": m.get("schema_version", "1.1"),
        "type_definitions": list(m.get("type_definitions") or []),
        "conditions": dict(m.get("conditions") or {}),
    }


def tuple_key(t: Tuple) -> dict[str, Any]:
    """OpenFGA's TupleKey: Keyplane's ``expires_at`` extension is left out."""
    out: dict[str, Any] = {"user": t.user, "relation": t.relation, "object": t.object}
    if t.condition:
        out["condition"] = {"name": t.condition, "context": dict(t.context or {})}
    return out


def change(c: TupleChange) -> dict[str, Any]:
    op = "TUPLE_OPERATION_WRITE" if c.operation == "write" else "TUPLE_OPERATION_DELETE"
    return {"tuple_key": tuple_key(c.tuple), "operation": op, "timestamp": rfc3339(c.timestamp)}


def user(u: str) -> dict[str, Any]:
    """A list-users answer: ``{object}``, ``{userset}`` or ``{wildcard}``."""
    utype, uid, rel = split_user(u)
    if uid == "*":
        return {"wildcard": {"type": utype}}
    if rel:
        return {"userset": {"type": utype, "id": uid, "relation": rel}}
    return {"object": {"type": utype, "id": uid}}


# ReadChanges tokens hold the revision to resume after; they are bound to the store and to
# the ``type`` filter, like OpenFGA's (which refuses a token used with another type).


def _changes_query(store_id: str, object_type: str | None) -> list[object]:
    return ["fga-changes", store_id, object_type or ""]


def changes_token(store_id: str, object_type: str | None, revision: int) -> str:
    return encode_token(_changes_query(store_id, object_type), [revision])


def read_changes_token(store_id: str, object_type: str | None, token: str | None) -> int:
    """The revision a ReadChanges continuation token resumes after (0 without a token)."""
    if not token:
        return 0
    (rev,) = decode_token(token, _changes_query(store_id, object_type), 1)
    if not isinstance(rev, int) or rev < 0:
        raise InvalidContinuationToken("invalid continuation token")
    return rev

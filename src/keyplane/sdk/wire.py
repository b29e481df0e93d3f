"""The wire half of the HTTP SDK, shared by :class:`Client` and :class:`AsyncClient`.

Each operation is described once as a :class:`Call` — method, path, query, JSON body,
whether it may be retried, and how to decode the answer into the *same* typed result the
embedded :class:`keyplane.Keyplane` returns. The sync and async clients only differ in how
they send it. Error envelopes become the same :mod:`keyplane.errors` class the server
raised (one table, :data:`ERRORS_BY_CODE`, built from
:func:`keyplane.errors.all_error_classes`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from keyplane import errors as e
from keyplane.graph.explain import Explanation
from keyplane.graph.tuples import Tuple, TupleChange
from keyplane.service.access import BatchItem, BatchItemResult, Decision, ExpandTree, UserList
from keyplane.service.inputs import TupleLike, to_tuple
from keyplane.service.keys import ApiKey
from keyplane.service.tuples import WriteResult
from keyplane.storage.base import ChangesPage, ModelRecord, Page, StoreInfo

__all__ = [
    "ERRORS_BY_CODE",
    "Call",
    "error_from_response",
    "seconds",
]

R = TypeVar("R")

#: every Keyplane error class by its stable code: the server's envelope names one of these
ERRORS_BY_CODE: dict[str, type[e.KeyplaneError]] = {c.code: c for c in e.all_error_classes()}

# a code the table does not know (a newer server, a proxy) falls back to its HTTP status
_BY_STATUS: dict[int, type[e.KeyplaneError]] = {
    400: e.ValidationError,
    401: e.AuthenticationError,
    403: e.PermissionDeniedError,
    404: e.NotFoundError,
    409: e.ConflictError,
    413: e.LimitExceededError,
    422: e.ResolutionTooComplexError,
    503: e.StorageError,
    504: e.ConsistencyTimeoutError,
}


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """One HTTP request and the decoder of its successful answer."""

    method: str
    path: str
    decode: Callable[[Any], R]
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: safe to send again after a connection error (reads and queries, never writes)
    idempotent: bool = False
    #: extra request headers (e.g. ``accept: application/x-ndjson`` for a streamed listing)
    headers: dict[str, str] = field(default_factory=dict)
    #: wait at least this long (seconds) for this call's answer, whatever the client's
    #: timeout: analyses of a whole store (the posture report) take longer than a query
    min_timeout: float | None = None


def seg(value: str) -> str:
    """One path segment, percent-encoded."""
    return quote(value, safe="")


def seconds(value: Any) -> float:
    """RFC 3339 text (or a number) → seconds since the epoch."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _params(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _body(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def tuple_keys(values: Iterable[TupleLike] | None) -> list[dict[str, Any]]:
    """Tuples in any accepted form → TupleKey JSON (syntax checked here, as in-process)."""
    return [to_tuple(v).to_dict() for v in values or ()]


def _ctx_tuples(values: Iterable[TupleLike] | None) -> list[dict[str, Any]] | None:
    return None if values is None else tuple_keys(values)


def _ctx(context: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if context is None else dict(context)


# ---------------------------------------------------------------------------- decoders


def store_info(d: Mapping[str, Any]) -> StoreInfo:
    return StoreInfo(
        id=d["id"],
        name=d["name"],
        created_at=seconds(d["created_at"]),
        updated_at=seconds(d["updated_at"]),
    )


def _model_record(store_id: str) -> Callable[[Any], ModelRecord]:
    def decode(d: Mapping[str, Any]) -> ModelRecord:
        return ModelRecord(
            id=d["id"],
            store_id=store_id,
            model=dict(d.get("model") or {}),
            created_at=seconds(d["created_at"]),
        )

    return decode


def tuple_from(d: Mapping[str, Any]) -> Tuple:
    return Tuple.from_dict(d)


def _page(key: str, item: Callable[[Any], R]) -> Callable[[Any], Page[R]]:
    def decode(d: Mapping[str, Any]) -> Page[R]:
        return Page([item(x) for x in d.get(key) or []], d.get("continuation_token") or None)

    return decode


def _changes(d: Mapping[str, Any]) -> ChangesPage:
    return ChangesPage(
        changes=[
            TupleChange(
                tuple=Tuple.from_dict(c["tuple"]),
                operation=c["operation"],
                revision=int(c["revision"]),
                timestamp=seconds(c["timestamp"]),
            )
            for c in d.get("changes") or []
        ],
        last_revision=int(d.get("last_revision", 0)),
        has_more=bool(d.get("has_more", False)),
    )


def _write_result(d: Mapping[str, Any]) -> WriteResult:
    return WriteResult(int(d["revision"]), int(d["written"]), int(d["deleted"]))


def _decision(d: Mapping[str, Any]) -> Decision:
    return Decision(
        bool(d["allowed"]),
        str(d.get("model_id") or ""),
        int(d["revision"]),
        str(d.get("decision_id") or ""),
    )


def _batch_results(d: Mapping[str, Any]) -> list[BatchItemResult]:
    out: list[BatchItemResult] = []
    for r in d.get("results") or []:
        err = r.get("error")
        exc = (
            make_error(err.get("code", ""), err.get("message", ""), err.get("details"))
            if err
            else None
        )
        out.append(
            BatchItemResult(
                r.get("correlation_id"),
                bool(r.get("allowed")),
                exc,
                str(r.get("decision_id") or ""),
            )
        )
    return out


def _none(_: Any) -> None:
    return None


# ---------------------------------------------------------------------------- errors


def _model_issues(details: Mapping[str, Any]) -> list[e.ModelIssue]:
    issues: list[e.ModelIssue] = []
    for raw in details.get("errors") or []:
        if not isinstance(raw, Mapping) or "message" not in raw:
            continue
        line, col = raw.get("line"), raw.get("column")
        issues.append(
            e.ModelIssue(
                message=str(raw["message"]),
                error_type=raw.get("error_type"),
                line=(int(line["start"]), int(line["end"])) if isinstance(line, Mapping) else None,
                column=(int(col["start"]), int(col["end"])) if isinstance(col, Mapping) else None,
                metadata=dict(raw.get("metadata") or {}),
            )
        )
    return issues


def make_error(
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    status: int | None = None,
    request_id: str | None = None,
) -> e.KeyplaneError:
    """The :mod:`keyplane.errors` instance a server error envelope describes."""
    cls = ERRORS_BY_CODE.get(code) or _BY_STATUS.get(status or 0) or e.KeyplaneError
    det = dict(details or {})
    # the envelope repeats the class's own fga_code in details; the class already carries it
    if "fga_code" in det and det["fga_code"] == cls.fga_code:
        det.pop("fga_code")
    if code and code != cls.code:
        det.setdefault("server_code", code)
    exc: e.KeyplaneError
    if issubclass(cls, e.InvalidModelError):
        exc = cls(message, errors=_model_issues(det), details=det)
    else:
        exc = cls(message, details=det)
    exc.request_id = request_id
    return exc


def error_from_response(status: int, content: bytes, headers: Mapping[str, str]) -> e.KeyplaneError:
    """Decode an error response; anything that is not Keyplane's envelope says so."""
    rid = headers.get("x-request-id")
    try:
        data = json.loads(content)
        body = data["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        snippet = content[:200].decode("utf-8", "replace").strip()
        cls = _BY_STATUS.get(status)
        if cls is None:
            return e.TransportError(
                f"HTTP {status} that is not a Keyplane response: {snippet!r}",
                details={"status": status},
            )
        exc = cls(f"HTTP {status}: {snippet}", details={"status": status})
        exc.request_id = rid
        return exc
    return make_error(
        code,
        message,
        body.get("details"),
        status=status,
        request_id=body.get("request_id") or rid,
    )


# ---------------------------------------------------------------------------- the calls


def _store_path(store: str, rest: str = "") -> str:
    return f"/v1/stores/{seg(store)}{rest}"


def create_store(name: str, store_id: str | None) -> Call[StoreInfo]:
    return Call("POST", "/v1/stores", store_info, body=_body(name=name, id=store_id))


def get_store(store_id: str) -> Call[StoreInfo]:
    return Call("GET", _store_path(store_id), store_info, idempotent=True)


def list_stores(page_size: int, token: str | None) -> Call[Page[StoreInfo]]:
    return Call(
        "GET",
        "/v1/stores",
        _page("stores", store_info),
        params=_params(page_size=page_size, continuation_token=token),
        idempotent=True,
    )


def delete_store(store_id: str) -> Call[None]:
    return Call("DELETE", _store_path(store_id), _none)


def write_model(store: str, source: str | Mapping[str, Any]) -> Call[ModelRecord]:
    body = {"dsl": source} if isinstance(source, str) else {"model": dict(source)}
    return Call("POST", _store_path(store, "/models"), _model_record(store), body=body)


def read_model(store: str, model_id: str | None) -> Call[ModelRecord]:
    which = "latest" if model_id is None else seg(model_id)
    return Call(
        "GET", _store_path(store, f"/models/{which}"), _model_record(store), idempotent=True
    )


def list_models(store: str, page_size: int, token: str | None) -> Call[Page[ModelRecord]]:
    return Call(
        "GET",
        _store_path(store, "/models"),
        _page("models", _model_record(store)),
        params=_params(page_size=page_size, continuation_token=token),
        idempotent=True,
    )


def write_tuples(
    store: str,
    writes: Iterable[TupleLike] | None,
    deletes: Iterable[TupleLike] | None,
    model_id: str | None,
    idempotent: bool,
) -> Call[WriteResult]:
    body = _body(
        writes=tuple_keys(writes),
        deletes=tuple_keys(deletes),
        idempotent=idempotent,
        model_id=model_id,
    )
    return Call("POST", _store_path(store, "/tuples/write"), _write_result, body=body)


def read_tuples(
    store: str,
    object: str | None,
    relation: str | None,
    user: str | None,
    page_size: int,
    token: str | None,
) -> Call[Page[Tuple]]:
    return Call(
        "GET",
        _store_path(store, "/tuples"),
        _page("tuples", tuple_from),
        params=_params(
            object=object,
            relation=relation,
            user=user,
            page_size=page_size,
            continuation_token=token,
        ),
        idempotent=True,
    )


def read_changes(
    store: str, after_revision: int, page_size: int, object_type: str | None
) -> Call[ChangesPage]:
    return Call(
        "GET",
        _store_path(store, "/changes"),
        _changes,
        params=_params(after_revision=after_revision, page_size=page_size, object_type=object_type),
        idempotent=True,
    )


def gc_expired(store: str) -> Call[int]:
    return Call("POST", _store_path(store, "/tuples/gc"), lambda d: int(d["removed"]))


def _query(
    store: str,
    op: str,
    decode: Callable[[Any], R],
    *,
    context: Mapping[str, Any] | None,
    contextual_tuples: Iterable[TupleLike] | None,
    model_id: str | None,
    at_least_as_fresh: int | None,
    **fields: Any,
) -> Call[R]:
    body = _body(
        **fields,
        context=_ctx(context),
        contextual_tuples=_ctx_tuples(contextual_tuples),
        model_id=model_id,
        at_least_as_fresh=at_least_as_fresh,
    )
    return Call("POST", _store_path(store, f"/{op}"), decode, body=body, idempotent=True)


def check(store: str, user: str, relation: str, object: str, **q: Any) -> Call[Decision]:
    return _query(store, "check", _decision, user=user, relation=relation, object=object, **q)


def batch_check(
    store: str,
    items: Sequence[BatchItem],
    model_id: str | None,
    at_least_as_fresh: int | None,
) -> Call[list[BatchItemResult]]:
    checks = [
        _body(
            user=it.user,
            relation=it.relation,
            object=it.object,
            context=_ctx(it.context),
            contextual_tuples=tuple_keys(it.contextual_tuples) or None,
            correlation_id=it.correlation_id,
        )
        for it in items
    ]
    body = _body(checks=checks, model_id=model_id, at_least_as_fresh=at_least_as_fresh)
    return Call(
        "POST", _store_path(store, "/batch-check"), _batch_results, body=body, idempotent=True
    )


def expand(store: str, object: str, relation: str, **q: Any) -> Call[ExpandTree]:
    return _query(store, "expand", _tree, object=object, relation=relation, **q)


def _tree(d: Mapping[str, Any]) -> ExpandTree:
    """OpenFGA's expand answer, ``{"tree": {"root": …}}``, exactly as the engine returns it."""
    tree = {k: v for k, v in d.items() if k != "decision_id"}
    return ExpandTree(tree, str(d.get("decision_id") or ""))


def _users(d: Mapping[str, Any]) -> UserList:
    return UserList((str(u) for u in d["users"]), str(d.get("decision_id") or ""))


def list_objects(store: str, user: str, relation: str, object_type: str, **q: Any) -> Call[None]:
    """The streamed endpoint: its body is NDJSON, read by the client line by line."""
    return _query(
        store,
        "streamed-list-objects",
        _none,
        user=user,
        relation=relation,
        type=object_type,
        **q,
    )


def list_users(
    store: str, object: str, relation: str, filters: Sequence[str], **q: Any
) -> Call[UserList]:
    return _query(
        store,
        "list-users",
        _users,
        object=object,
        relation=relation,
        filters=list(filters),
        **q,
    )


def explain(store: str, user: str, relation: str, object: str, **q: Any) -> Call[Explanation]:
    return _query(
        store, "explain", Explanation.from_dict, user=user, relation=relation, object=object, **q
    )


def _key(d: Mapping[str, Any]) -> ApiKey:
    return ApiKey.from_dict(d)


def _key_secret(d: Mapping[str, Any]) -> tuple[ApiKey, str]:
    return ApiKey.from_dict(d["key"]), str(d["secret"])


def create_key(
    owner: str, roles: Sequence[str], expires_in: float | None, description: str
) -> Call[tuple[ApiKey, str]]:
    body = _body(owner=owner, roles=list(roles), expires_in=expires_in, description=description)
    return Call("POST", "/v1/keys", _key_secret, body=body)


def list_keys(page_size: int, token: str | None) -> Call[Page[ApiKey]]:
    return Call(
        "GET",
        "/v1/keys",
        _page("keys", _key),
        params=_params(page_size=page_size, continuation_token=token),
        idempotent=True,
    )


def get_key(key_id: str) -> Call[ApiKey]:
    return Call("GET", f"/v1/keys/{seg(key_id)}", _key, idempotent=True)


def rotate_key(key_id: str, overlap_seconds: float) -> Call[tuple[ApiKey, str]]:
    return Call(
        "POST",
        f"/v1/keys/{seg(key_id)}/rotate",
        _key_secret,
        body={"overlap_seconds": overlap_seconds},
    )


def revoke_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/keys/{seg(key_id)}", _none)


#: the header of a streamed list-objects answer naming its ledger event
DECISION_ID_HEADER = "X-Decision-Id"


class AsyncObjectStream(AsyncIterator[str]):
    """:class:`~keyplane.service.access.ObjectStream`'s async twin (AsyncClient.list_objects)."""

    __slots__ = ("_items", "decision_id")

    def __init__(self, items: AsyncIterator[str], decision_id: str = "") -> None:
        self._items = items
        self.decision_id = decision_id

    def __aiter__(self) -> AsyncObjectStream:
        return self

    async def __anext__(self) -> str:
        return await self._items.__anext__()


def ndjson_object(line: str) -> str | None:
    """One line of the streamed list-objects body → the object (None for a blank line)."""
    if not line.strip():
        return None
    data = json.loads(line)
    if "error" in data and "object" not in data:
        err = data["error"]
        raise make_error(
            str(err.get("code", "")),
            str(err.get("message", "")),
            err.get("details"),
            request_id=err.get("request_id"),
        )
    # OpenFGA's streamed shape nests it: {"result": {"object": …}}
    if "result" in data and isinstance(data["result"], Mapping):
        data = data["result"]
    return str(data["object"])

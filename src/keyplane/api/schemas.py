"""Request and response bodies of Keyplane's REST API (``/v1``), as pydantic v2 models.

These models are the wire contract: FastAPI turns them into the OpenAPI 3.1 document
(``docs/openapi.json``), and the MCP server reuses the request models as its tools' input
schemas — so every field description is written for the person or agent *calling* the API.

Shapes follow OpenFGA where OpenFGA has one (``TupleKey``, ``condition: {name, context}``,
the expand tree), with Keyplane's additions (``expires_at``, ``at_least_as_fresh``,
revisions in results). Times on the wire are RFC 3339 in UTC.

The models validate *shape* only (types, required fields, lengths). Tuple syntax, fit to
the model and the configured limits (``KEYPLANE_MAX_*``) are checked by the service layer,
so every surface enforces them the same way; descriptions state the default limits.
The ``from_*`` helpers encode service results; handlers do nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    model_serializer,
    model_validator,
)

from keyplane.graph.tuples import Tuple, TupleChange
from keyplane.service.inputs import MAX_REVISION
from keyplane.storage.base import ModelRecord, StoreInfo

__all__ = [
    "ApiKeyOut",
    "BatchCheckItem",
    "BatchCheckItemResult",
    "BatchCheckRequest",
    "BatchCheckResponse",
    "BatchItemError",
    "Change",
    "ChangesResponse",
    "CheckRequest",
    "CheckResponse",
    "Condition",
    "CreateKeyRequest",
    "CreateStoreRequest",
    "ErrorBody",
    "ErrorEnvelope",
    "ExpandRequest",
    "ExpandResponse",
    "ExplainRequest",
    "ExplainResponse",
    "GcResponse",
    "HealthResponse",
    "KeyList",
    "KeyWithSecret",
    "ListObjectsRequest",
    "ListObjectsResponse",
    "ListUsersRequest",
    "ListUsersResponse",
    "Model",
    "ModelList",
    "ModelSummary",
    "ReadinessResponse",
    "RotateKeyRequest",
    "Store",
    "StoreList",
    "StreamedObject",
    "TupleKey",
    "TupleList",
    "WriteModelRequest",
    "WriteRequest",
    "WriteResponse",
    "rfc3339",
]

# OpenFGA's own bounds on identifiers; longer values could never be valid tuples.
MAX_OBJECT = 256
MAX_USER = 512
MAX_RELATION = 50
MAX_TYPE = 254
MAX_ID = 128

_DEFAULT_MAX_CONTEXTUAL = 100  # KEYPLANE_MAX_CONTEXTUAL_TUPLES' default, for descriptions


def rfc3339(ts: float | None) -> datetime | None:
    """Seconds since the epoch → an aware UTC datetime (serialised as RFC 3339 ``…Z``)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class _Request(BaseModel):
    # unknown fields are refused: a misspelt option must not be silently ignored
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Sparse(_Request):
    """Omits unset optional fields on output, as OpenFGA's JSON does (no ``"condition": null``)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        return {k: v for k, v in out.items() if v is not None} if isinstance(out, dict) else out


# ------------------------------------------------------------------------ building blocks


def _user_field() -> Any:
    return Field(
        min_length=1,
        max_length=MAX_USER,
        description=(
            "The subject: `type:id` (e.g. `user:anne`), `type:*` (every object of the type) "
            "or a userset `type:id#relation` (e.g. `group:eng#member`)."
        ),
        examples=["user:anne"],
    )


def _object_field() -> Any:
    return Field(
        min_length=1,
        max_length=MAX_OBJECT,
        description="The resource, as `type:id` (e.g. `document:roadmap`).",
        examples=["document:roadmap"],
    )


def _relation_field() -> Any:
    return Field(
        min_length=1,
        max_length=MAX_RELATION,
        description="A relation defined on the object's type in the model (e.g. `viewer`).",
        examples=["viewer"],
    )


class Condition(_Sparse):
    """A condition attached to a tuple: the tuple grants only when the condition holds."""

    name: str = Field(
        min_length=1,
        max_length=MAX_TYPE,
        description="The name of a condition defined in the model.",
    )
    context: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Parameter values stored with the tuple; merged with the request's `context` "
            "when the condition is evaluated (the tuple's values win)."
        ),
    )


class TupleKey(_Sparse):
    """One relationship `object#relation@user`, in OpenFGA's TupleKey shape."""

    object: str = _object_field()
    relation: str = _relation_field()
    user: str = _user_field()
    condition: Condition | None = Field(
        default=None, description="Make the tuple conditional on a model condition."
    )
    expires_at: datetime | None = Field(
        default=None,
        description=(
            "RFC 3339 time after which the tuple stops granting (no clean-up job needed). "
            "A time without an offset is read as UTC."
        ),
    )

    def to_dict(self) -> dict[str, Any]:
        """The service layer's input form (OpenFGA TupleKey JSON)."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def from_tuple(cls, t: Tuple) -> TupleKey:
        cond = Condition(name=t.condition, context=dict(t.context or {})) if t.condition else None
        return cls(
            object=t.object,
            relation=t.relation,
            user=t.user,
            condition=cond,
            expires_at=rfc3339(t.expires_at),
        )


def _contextual_field() -> Any:
    return Field(
        default=None,
        description=(
            "Tuples that hold for this request only, as if written; never stored. At most "
            f"KEYPLANE_MAX_CONTEXTUAL_TUPLES (default {_DEFAULT_MAX_CONTEXTUAL}); more is a 413 "
            "`limit_exceeded` error."
        ),
    )


def _context_field() -> Any:
    return Field(
        default=None,
        description=(
            "Values for the parameters of conditions met while resolving (e.g. "
            '`{"current_ip": "10.0.0.7"}`).'
        ),
    )


def _model_id_field() -> Any:
    return Field(
        default=None,
        max_length=MAX_ID,
        description="Evaluate against this model version instead of the store's latest.",
    )


def _fresh_field() -> Any:
    return Field(
        default=None,
        ge=0,
        le=MAX_REVISION,
        description=(
            "A revision this answer must reflect: pass the `revision` a write returned to "
            "read your own writes on any replica. The server waits (up to "
            "KEYPLANE_CONSISTENCY_TIMEOUT) until it has applied that revision, else 504 "
            "`consistency_timeout`."
        ),
    )


class _Query(_Request):
    context: dict[str, Any] | None = _context_field()
    contextual_tuples: list[TupleKey] | None = _contextual_field()
    model_id: str | None = _model_id_field()
    at_least_as_fresh: int | None = _fresh_field()

    def contextual(self) -> list[dict[str, Any]] | None:
        if self.contextual_tuples is None:
            return None
        return [t.to_dict() for t in self.contextual_tuples]


# ------------------------------------------------------------------------ errors


class ErrorBody(_Response):
    code: str = Field(
        description=(
            "Stable machine-readable error code (e.g. `store_not_found`, `tuple_exists`, "
            "`validation_error`); see docs/errors.md. Match on this, not on the message."
        )
    )
    message: str = Field(description="What went wrong, for people.")
    details: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Structured specifics when there are any: the offending field, the limit, the "
            "model issues with positions, and `fga_code` (OpenFGA's numeric code)."
        ),
    )
    request_id: str = Field(
        description="This request's id (also in the `x-request-id` response header)."
    )


class ErrorEnvelope(_Response):
    """Every error response of the REST API has this one shape."""

    error: ErrorBody


# ------------------------------------------------------------------------ stores


class CreateStoreRequest(_Request):
    name: str = Field(
        min_length=1, max_length=256, description="A human-readable name for the store."
    )
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID,
        description=(
            "Choose the store's id (letters, digits, `_` and `-`) instead of a generated "
            "ULID; 409 `store_exists` if taken."
        ),
    )


class Store(_Response):
    """A store: one tenant's models, tuples and changelog, isolated from every other."""

    id: str = Field(description="The store id, used in every `/v1/stores/{store}/…` path.")
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_info(cls, s: StoreInfo) -> Store:
        return cls(
            id=s.id,
            name=s.name,
            created_at=datetime.fromtimestamp(s.created_at, UTC),
            updated_at=datetime.fromtimestamp(s.updated_at, UTC),
        )


class StoreList(_Response):
    stores: list[Store]
    continuation_token: str | None = Field(
        default=None,
        description="Pass back as `continuation_token` for the next page; null on the last.",
    )


# ------------------------------------------------------------------------ models


class WriteModelRequest(_Request):
    """A new authorization model version: give exactly one of `dsl` or `model`."""

    dsl: str | None = Field(
        default=None,
        max_length=1_000_000,
        description="The model in OpenFGA's DSL (`model\\n  schema 1.1\\ntype user\\n…`).",
    )
    model: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The model as OpenFGA JSON (`{schema_version, type_definitions, conditions}`)."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> WriteModelRequest:
        if (self.dsl is None) == (self.model is None):
            raise ValueError("give exactly one of 'dsl' or 'model'")
        return self

    def source(self) -> str | dict[str, Any]:
        return self.dsl if self.dsl is not None else dict(self.model or {})


class ModelSummary(_Response):
    id: str = Field(description="The model version id (a ULID; ids sort by creation).")
    created_at: datetime

    @classmethod
    def from_record(cls, rec: ModelRecord) -> ModelSummary:
        return cls(id=rec.id, created_at=datetime.fromtimestamp(rec.created_at, UTC))


class Model(_Response):
    """One immutable version of a store's authorization model, in both notations."""

    id: str = Field(description="The model version id (a ULID; ids sort by creation).")
    created_at: datetime
    dsl: str = Field(description="The model as canonical OpenFGA DSL.")
    model: dict[str, Any] = Field(description="The model as OpenFGA JSON.")

    @classmethod
    def from_record(cls, rec: ModelRecord, dsl: str) -> Model:
        return cls(
            id=rec.id,
            created_at=datetime.fromtimestamp(rec.created_at, UTC),
            dsl=dsl,
            model=dict(rec.model),
        )


class ModelList(_Response):
    models: list[ModelSummary] = Field(description="Model versions, newest first.")
    continuation_token: str | None = Field(
        default=None,
        description="Pass back as `continuation_token` for the next page; null on the last.",
    )


# ------------------------------------------------------------------------ tuples


class WriteRequest(_Request):
    """Write and delete tuples in one atomic transaction: all of it happens, or none."""

    writes: list[TupleKey] = Field(
        default_factory=list,
        description=(
            "Tuples to add. Each is validated against the model (types, relations, allowed "
            "user types and conditions)."
        ),
    )
    deletes: list[TupleKey] = Field(
        default_factory=list,
        description=(
            "Tuples to remove (matched on object, relation and user). Writes and deletes "
            "together: at most KEYPLANE_MAX_WRITE_TUPLES (default 1000)."
        ),
    )
    idempotent: StrictBool = Field(
        default=False,
        description=(
            "Skip writes of identical existing tuples and deletes of missing ones instead "
            "of failing with 409 `tuple_exists` / `tuple_missing`."
        ),
    )
    model_id: str | None = Field(
        default=None,
        max_length=MAX_ID,
        description="Validate the writes against this model version instead of the latest.",
    )


class WriteResponse(_Response):
    revision: int = Field(
        description=(
            "The store revision holding this change. Pass it as `at_least_as_fresh` to "
            "queries that must see it."
        )
    )
    written: int = Field(description="How many tuples were written.")
    deleted: int = Field(description="How many tuples were deleted.")


class TupleList(_Response):
    tuples: list[TupleKey]
    continuation_token: str | None = Field(
        default=None,
        description="Pass back as `continuation_token` for the next page; null on the last.",
    )


class Change(_Response):
    revision: int = Field(description="The store revision the change belongs to.")
    operation: Literal["write", "delete"]
    tuple: TupleKey
    timestamp: datetime = Field(description="When the change was committed.")

    @classmethod
    def from_change(cls, c: TupleChange) -> Change:
        op: Literal["write", "delete"] = "write" if c.operation == "write" else "delete"
        return cls(
            revision=c.revision,
            operation=op,
            tuple=TupleKey.from_tuple(c.tuple),
            timestamp=datetime.fromtimestamp(c.timestamp, UTC),
        )


class ChangesResponse(_Response):
    changes: list[Change] = Field(description="Changes in commit order.")
    last_revision: int = Field(
        description="Pass as `after_revision` to continue from here (a tailer's cursor)."
    )
    has_more: bool = Field(
        description=(
            "True when more changes exist after `last_revision`: call again. A page never "
            "splits a revision, so it may be shorter than `page_size` and still have more."
        )
    )


class GcResponse(_Response):
    removed: int = Field(description="How many expired tuples were deleted.")


# ------------------------------------------------------------------------ queries


class CheckRequest(_Query):
    """Does `user` hold `relation` on `object`?"""

    user: str = _user_field()
    relation: str = _relation_field()
    object: str = _object_field()


def _decision_id_field() -> Any:
    return Field(
        description=(
            "The id of the ledger event recording this decision: "
            "`GET /v1/ledger/decisions/{decision_id}` (`keyplane ledger show`) reconstructs it."
        ),
        examples=["01JDQ8X4ZK7V3C5M2N9P0R6T8W"],
    )


class CheckResponse(_Response):
    allowed: bool = Field(description="True when the user holds the relation on the object.")
    model_id: str = Field(description="The model version the decision was made with.")
    revision: int = Field(description="The store revision the decision reflects.")
    decision_id: str = _decision_id_field()


class BatchCheckItem(_Request):
    user: str = _user_field()
    relation: str = _relation_field()
    object: str = _object_field()
    context: dict[str, Any] | None = _context_field()
    contextual_tuples: list[TupleKey] | None = _contextual_field()
    correlation_id: str | None = Field(
        default=None,
        max_length=MAX_ID,
        description="Your label for this check, echoed on its result.",
    )


class BatchCheckRequest(_Request):
    """Many checks in one request; one check's error does not fail the others."""

    checks: list[BatchCheckItem] = Field(
        description="The checks; at most KEYPLANE_MAX_BATCH_CHECK (default 1000).",
    )
    model_id: str | None = _model_id_field()
    at_least_as_fresh: int | None = _fresh_field()


class BatchItemError(_Response):
    code: str = Field(description="The error code, as in the error envelope.")
    message: str


class BatchCheckItemResult(_Response):
    correlation_id: str | None = Field(description="The check's `correlation_id`, if it had one.")
    allowed: bool = Field(description="The decision; false when `error` is set.")
    error: BatchItemError | None = Field(
        default=None, description="Why this check could not be decided."
    )
    decision_id: str = _decision_id_field()


class BatchCheckResponse(_Response):
    results: list[BatchCheckItemResult] = Field(description="One result per check, in order.")


class ExpandRequest(_Query):
    """Who holds `relation` on `object`, as a tree one level of usersets deep."""

    object: str = _object_field()
    relation: str = _relation_field()


class ExpandResponse(_Response):
    tree: dict[str, Any] = Field(
        description=(
            "OpenFGA's UsersetTree JSON: `{root: {name, leaf | union | intersection | "
            "difference}}`; leaves list users, computed usersets or tuple-to-usersets."
        )
    )
    decision_id: str = _decision_id_field()


class ListObjectsRequest(_Query):
    """Every object of `type` on which `user` holds `relation`."""

    user: str = _user_field()
    relation: str = _relation_field()
    type: str = Field(
        min_length=1,
        max_length=MAX_TYPE,
        description="The object type to list (e.g. `document`).",
        examples=["document"],
    )


class ListObjectsResponse(_Response):
    objects: list[str] = Field(description="Objects as `type:id`, complete (not paginated).")
    decision_id: str = _decision_id_field()


class StreamedObject(_Response):
    object: str = Field(description="One object, `type:id`.")


class ListUsersRequest(_Query):
    """Every user of the given kinds holding `relation` on `object`."""

    object: str = _object_field()
    relation: str = _relation_field()
    filters: list[str] = Field(
        min_length=1,
        max_length=100,
        description=("User kinds to return: a type (`user`) or a userset type (`group#member`)."),
        examples=[["user"]],
    )


class ListUsersResponse(_Response):
    users: list[str] = Field(
        description="Users as `type:id`, `type:*` (everyone of the type) or `type:id#relation`."
    )
    decision_id: str = _decision_id_field()


class ExplainRequest(_Query):
    """Why `user` does — or does not — hold `relation` on `object`."""

    user: str = _user_field()
    relation: str = _relation_field()
    object: str = _object_field()


class ExplainResponse(_Response):
    allowed: bool = Field(description="The decision, exactly as check would answer.")
    user: str
    relation: str
    object: str
    paths: list[list[dict[str, Any]]] = Field(
        description=(
            "When allowed: up to 5 granting paths, each the steps from the object down to "
            "the user (`computed`, `tuple_to_userset`, `userset`, `intersection`, "
            "`but_not`, then `direct` or `wildcard`)."
        )
    )
    reasons: list[dict[str, Any]] = Field(
        description=(
            "When denied: why each branch failed (`no_tuple`, `condition_false`, "
            "`condition_error`, `expired`, `excluded`, `intersection_missing`, `cycle`, "
            "`depth_exceeded`)."
        )
    )
    error: dict[str, Any] | None = Field(
        default=None, description="The error that prevented a decision, if any."
    )
    decision_id: str = _decision_id_field()


# ------------------------------------------------------------------------ API keys


class CreateKeyRequest(_Request):
    owner: str = Field(
        min_length=1, max_length=256, description="Who the key belongs to (a person or service)."
    )
    roles: list[str] = Field(
        min_length=1,
        max_length=64,
        description=(
            "`admin`, `auditor`, `writer`, `reader` (every store), or `writer:<store>` / "
            "`reader:<store>` (one store)."
        ),
        examples=[["reader:default"]],
    )
    expires_in: float | None = Field(
        default=None, gt=0, description="Seconds until the key expires; never when omitted."
    )
    description: str = Field(default="", max_length=1024, description="What the key is for.")


class ApiKeyOut(_Response):
    """An API key's record. The secret is never shown again after creation or rotation."""

    id: str
    owner: str
    roles: list[str]
    description: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyWithSecret(_Response):
    key: ApiKeyOut
    secret: str = Field(description="The bearer secret (`kp_…`). Shown once: store it now.")


class KeyList(_Response):
    keys: list[ApiKeyOut]
    continuation_token: str | None = None


class RotateKeyRequest(_Request):
    overlap_seconds: float = Field(
        default=3600,
        ge=0,
        description="How long the old secret keeps working, so clients can switch over.",
    )


# ------------------------------------------------------------------------ health


class HealthResponse(_Response):
    status: Literal["ok"]


class ReadinessResponse(_Response):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(
        description="Each readiness check and its outcome (`ok` or the failure)."
    )

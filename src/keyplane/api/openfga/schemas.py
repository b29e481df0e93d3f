"""Request and response bodies of the OpenFGA-compatible API, field for field as OpenFGA's.

Names and nesting follow openfga/api ``openfga/v1/openfga_service.proto`` as served over
HTTP by grpc-gateway (snake_case JSON, ``contextual_tuples: {tuple_keys: […]}`` everywhere
except list users, which takes a plain list). Unknown fields are ignored, as protojson does
for forward compatibility; page sizes are bounded 1..100 like OpenFGA's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "AuthorizationModel",
    "BatchCheckItem",
    "BatchCheckRequest",
    "BatchCheckResponse",
    "BatchCheckSingleResult",
    "CheckError",
    "CheckRequest",
    "CheckResponse",
    "Consistency",
    "ContextualTupleKeys",
    "CreateStoreRequest",
    "ExpandRequest",
    "ExpandResponse",
    "FgaErrorBody",
    "FgaObject",
    "ListObjectsRequest",
    "ListObjectsResponse",
    "ListStoresResponse",
    "ListUsersRequest",
    "ListUsersResponse",
    "ReadAuthorizationModelResponse",
    "ReadAuthorizationModelsResponse",
    "ReadChangesResponse",
    "ReadRequest",
    "ReadResponse",
    "Store",
    "TupleKey",
    "WriteAuthorizationModelRequest",
    "WriteAuthorizationModelResponse",
    "WriteRequest",
]


class Message(BaseModel):
    """A protobuf message read as protojson does: a ``null`` field means "not set"."""

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_unset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


Consistency = Literal["UNSPECIFIED", "MINIMIZE_LATENCY", "HIGHER_CONSISTENCY"]
ModelId = Field(default=None, max_length=26, description="An authorization model id (a ULID).")


class FgaErrorBody(BaseModel):
    """OpenFGA's error body: ``code`` is the error's name (``validation_error``, …)."""

    code: str
    message: str


# --- tuples ---------------------------------------------------------------------------------


class RelationshipCondition(Message):
    name: str = Field(min_length=1, max_length=256)
    context: dict[str, Any] | None = None


class TupleKey(Message):
    user: str = Field(min_length=1, max_length=512)
    relation: str = Field(min_length=1, max_length=50)
    object: str = Field(min_length=1, max_length=256)
    condition: RelationshipCondition | None = None


class TupleKeyWithoutCondition(Message):
    user: str = Field(min_length=1, max_length=512)
    relation: str = Field(min_length=1, max_length=50)
    object: str = Field(min_length=1, max_length=256)


class ContextualTupleKeys(Message):
    tuple_keys: list[TupleKey] = Field(default_factory=list)


class ConditionOut(BaseModel):
    name: str
    context: dict[str, Any] = Field(default_factory=dict)


class TupleKeyOut(BaseModel):
    user: str
    relation: str
    object: str
    condition: ConditionOut | None = None


# --- stores ---------------------------------------------------------------------------------


class CreateStoreRequest(Message):
    name: str = Field(min_length=1, max_length=64)


class Store(BaseModel):
    id: str
    name: str
    created_at: str
    updated_at: str


class ListStoresResponse(BaseModel):
    stores: list[Store]
    continuation_token: str


# --- models ---------------------------------------------------------------------------------


class WriteAuthorizationModelRequest(Message):
    type_definitions: list[dict[str, Any]] = Field(min_length=1)
    schema_version: str = Field(min_length=1)
    conditions: dict[str, Any] | None = None


class WriteAuthorizationModelResponse(BaseModel):
    authorization_model_id: str


class AuthorizationModel(BaseModel):
    id: str
    schema_version: str
    type_definitions: list[dict[str, Any]]
    conditions: dict[str, Any] = Field(default_factory=dict)


class ReadAuthorizationModelResponse(BaseModel):
    authorization_model: AuthorizationModel


class ReadAuthorizationModelsResponse(BaseModel):
    authorization_models: list[AuthorizationModel]
    continuation_token: str


# --- write / read / changes -----------------------------------------------------------------


class WriteRequestWrites(Message):
    tuple_keys: list[TupleKey] = Field(min_length=1)
    on_duplicate: Literal["error", "ignore"] = "error"


class WriteRequestDeletes(Message):
    tuple_keys: list[TupleKeyWithoutCondition] = Field(min_length=1)
    on_missing: Literal["error", "ignore"] = "error"


class WriteRequest(Message):
    writes: WriteRequestWrites | None = None
    deletes: WriteRequestDeletes | None = None
    authorization_model_id: str | None = ModelId


class ReadRequestTupleKey(Message):
    user: str | None = Field(default=None, max_length=512)
    relation: str | None = Field(default=None, max_length=50)
    object: str | None = Field(default=None, max_length=256)


class ReadRequest(Message):
    tuple_key: ReadRequestTupleKey | None = None
    page_size: int | None = Field(default=None, ge=1, le=100)
    continuation_token: str | None = None
    consistency: Consistency = "UNSPECIFIED"


class TupleOut(BaseModel):
    key: TupleKeyOut
    timestamp: str


class ReadResponse(BaseModel):
    tuples: list[TupleOut]
    continuation_token: str


class TupleChangeOut(BaseModel):
    tuple_key: TupleKeyOut
    operation: Literal["TUPLE_OPERATION_WRITE", "TUPLE_OPERATION_DELETE"]
    timestamp: str


class ReadChangesResponse(BaseModel):
    changes: list[TupleChangeOut]
    continuation_token: str


# --- queries --------------------------------------------------------------------------------


class CheckRequestTupleKey(Message):
    user: str = Field(min_length=1, max_length=512)
    relation: str = Field(min_length=1, max_length=50)
    object: str = Field(min_length=1, max_length=256)


class CheckRequest(Message):
    tuple_key: CheckRequestTupleKey
    contextual_tuples: ContextualTupleKeys | None = None
    authorization_model_id: str | None = ModelId
    trace: bool = False
    context: dict[str, Any] | None = None
    consistency: Consistency = "UNSPECIFIED"


class CheckResponse(BaseModel):
    allowed: bool
    resolution: str = ""


class BatchCheckItem(Message):
    tuple_key: CheckRequestTupleKey
    contextual_tuples: ContextualTupleKeys | None = None
    context: dict[str, Any] | None = None
    correlation_id: str = Field(pattern=r"^[\w\d-]{1,36}$")


class BatchCheckRequest(Message):
    checks: list[BatchCheckItem] = Field(min_length=1)
    authorization_model_id: str | None = ModelId
    consistency: Consistency = "UNSPECIFIED"


class CheckError(BaseModel):
    input_error: str | None = None
    internal_error: str | None = None
    message: str = ""


class BatchCheckSingleResult(BaseModel):
    allowed: bool
    error: CheckError | None = None


class BatchCheckResponse(BaseModel):
    result: dict[str, BatchCheckSingleResult]


class ExpandRequestTupleKey(Message):
    relation: str = Field(min_length=1, max_length=50)
    object: str = Field(min_length=1, max_length=256)


class ExpandRequest(Message):
    tuple_key: ExpandRequestTupleKey
    authorization_model_id: str | None = ModelId
    consistency: Consistency = "UNSPECIFIED"
    contextual_tuples: ContextualTupleKeys | None = None


class ExpandResponse(BaseModel):
    tree: dict[str, Any]


class ListObjectsRequest(Message):
    authorization_model_id: str | None = ModelId
    type: str = Field(min_length=1, max_length=254)
    relation: str = Field(min_length=1, max_length=50)
    user: str = Field(min_length=1, max_length=512)
    contextual_tuples: ContextualTupleKeys | None = None
    context: dict[str, Any] | None = None
    consistency: Consistency = "UNSPECIFIED"


class ListObjectsResponse(BaseModel):
    objects: list[str]


class FgaObject(Message):
    type: str = Field(min_length=1, max_length=254)
    id: str = Field(min_length=1, max_length=256)


class UserTypeFilter(Message):
    type: str = Field(min_length=1, max_length=254)
    relation: str | None = Field(default=None, max_length=50)


class ListUsersRequest(Message):
    authorization_model_id: str | None = ModelId
    object: FgaObject
    relation: str = Field(min_length=1, max_length=50)
    user_filters: list[UserTypeFilter] = Field(min_length=1)
    contextual_tuples: list[TupleKey] = Field(default_factory=list)
    context: dict[str, Any] | None = None
    consistency: Consistency = "UNSPECIFIED"


class ListUsersResponse(BaseModel):
    users: list[dict[str, Any]] = Field(
        description="Each user is one of {object: {type, id}}, "
        "{userset: {type, id, relation}} or {wildcard: {type}}."
    )

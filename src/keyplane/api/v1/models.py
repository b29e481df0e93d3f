"""``/v1/stores/{store}/models`` — write, list and read authorization model versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.schemas import Model, ModelList, ModelSummary, WriteModelRequest
from keyplane.api.v1.common import PageSize, StoreId, Token, error_responses
from keyplane.service import models
from keyplane.storage.base import ModelRecord

router = APIRouter(prefix="/stores/{store}/models", tags=["models"])

ModelId = Annotated[
    str, Path(min_length=1, max_length=128, description="A model version id (a ULID).")
]


def _encode(rec: ModelRecord) -> Model:
    return Model.from_record(rec, models.render_model(rec, "dsl"))


@router.post(
    "",
    operation_id="write_model",
    status_code=201,
    responses=error_responses(),
    summary="Write a new model version",
)
def write_model(
    store: StoreId, body: WriteModelRequest, svc: ServicesDep, caller: CallerDep
) -> Model:
    """Validate a model (DSL or JSON) and store it as the store's new latest version.

    An invalid model is a 400 `invalid_model` whose `details.errors` lists every issue,
    with line and column (0-based) for DSL input.
    """
    return _encode(models.write_model(svc, caller, store, body.source()))


@router.get(
    "", operation_id="list_models", responses=error_responses(), summary="List model versions"
)
def list_models(
    store: StoreId,
    svc: ServicesDep,
    caller: CallerDep,
    page_size: PageSize = 50,
    continuation_token: Token = None,
) -> ModelList:
    """Model versions of the store, newest first."""
    page = models.list_models(
        svc, caller, store, page_size=page_size, continuation_token=continuation_token
    )
    return ModelList(
        models=[ModelSummary.from_record(m) for m in page.items],
        continuation_token=page.continuation_token,
    )


@router.get(
    "/latest",
    operation_id="read_latest_model",
    responses=error_responses(),
    summary="Read the latest model",
)
def read_latest_model(store: StoreId, svc: ServicesDep, caller: CallerDep) -> Model:
    """The store's current model, as DSL and JSON (404 `model_not_found` if it has none)."""
    return _encode(models.read_model(svc, caller, store, None))


@router.get(
    "/{model_id}",
    operation_id="read_model",
    responses=error_responses(),
    summary="Read a model version",
)
def read_model(store: StoreId, model_id: ModelId, svc: ServicesDep, caller: CallerDep) -> Model:
    return _encode(models.read_model(svc, caller, store, model_id))

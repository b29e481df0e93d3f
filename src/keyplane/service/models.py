"""Authorization models: write (DSL or JSON), read, list, render.

Models are immutable and versioned: writing one adds a version and makes it the store's
latest; decisions may still name any earlier version by id.

Every model written through the native API (REST ``/v1``, SDK, CLI, embedded) declares the
identity types: the built-in base model's types and relations it lacks are added before
validation and storage, and a user relation that conflicts with them is ``invalid_model``
(:func:`keyplane.policy.base_model.load_extended`). The OpenFGA-compatible API stores
models exactly as written (``extend_base=False``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keyplane.errors import ValidationError
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.language import load_model, write_dsl
from keyplane.ledger.events import LedgerEvent
from keyplane.policy.base_model import load_extended
from keyplane.service import audit
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import check_page_size
from keyplane.storage.base import ModelRecord, Page

__all__ = ["list_models", "read_model", "render_model", "write_model"]


@audited("model.written")
def write_model(
    svc: Services,
    caller: Caller,
    store_id: str,
    source: str | Mapping[str, Any],
    *,
    extend_base: bool = True,
) -> ModelRecord:
    """Validate ``source`` (DSL text, JSON text or a JSON dict) and store it as a new version.

    With ``extend_base`` (the native API) the built-in base model's identity types and
    relations the model lacks are added first, and a relation conflicting with them is
    ``invalid_model``; the OpenFGA-compatible API passes ``False`` to store the model
    exactly as written."""
    authorize(svc, caller, Permission.WRITE_MODEL, store_id)
    svc.storage.get_store(store_id)
    if extend_base:
        model = load_extended(source)  # merged, validated, compiled, identity types checked
    else:
        model = load_model(source)
        CompiledModel.compile(model)  # the engine's own checks, before anything is stored

    def event_of(made: ModelRecord) -> list[tuple[LedgerEvent, str]]:
        # the model version and its event commit in one transaction
        return audit.change_events(
            svc, caller, "model.written", store_id, model_id=made.id, revision=made.revision
        )

    rec = svc.storage.write_model(store_id, model, ledger_events=event_of)
    svc.graphs.catch_up(store_id)  # this process switches to the new model at once
    return rec


@audited(None)
def read_model(
    svc: Services, caller: Caller, store_id: str, model_id: str | None = None
) -> ModelRecord:
    authorize(svc, caller, Permission.READ_STORE, store_id)
    if model_id is None:
        rec = svc.storage.latest_model(store_id)
        if rec is None:
            svc.graphs.refresh_latest(store_id)  # raises ModelNotFoundError with a clear message
            raise AssertionError("unreachable")
        return rec
    return svc.storage.read_model(store_id, model_id)


@audited(None)
def list_models(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[ModelRecord]:
    authorize(svc, caller, Permission.READ_STORE, store_id)
    size = check_page_size(page_size, svc.settings.max_page_size)
    return svc.storage.list_models(store_id, page_size=size, continuation_token=continuation_token)


def render_model(rec: ModelRecord, fmt: str = "dsl") -> str:
    """The model as canonical DSL (``dsl``) or OpenFGA JSON (``json``)."""
    if fmt == "dsl":
        return write_dsl(rec.model)
    if fmt == "json":
        return json.dumps({"id": rec.id, **dict(rec.model)}, indent=2, sort_keys=False)
    raise ValidationError(f"unknown model format {fmt!r}; use 'dsl' or 'json'")

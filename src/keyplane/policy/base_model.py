"""The built-in base model: the graph types identities live in.

Every identity is a node of the store's graph whose type is its kind (``human:alice``,
``agent:planner``); non-human identities (NHIs) have an ``owner`` relation to humans or to
a group's members, and groups have members. :data:`BASE_MODEL_DSL` declares exactly that:

.. code-block:: text

    type human
    type group        relations: member: [human, group#member]
    type agent        relations: owner: [human, group#member]
    type workload     relations: owner: [human, group#member]
    type service_account  relations: owner: [human, group#member]

How user models extend it — :func:`merge_base_model`: every base type the user's model
lacks is added whole, and every base relation a type of the same name lacks is added to
it; whatever the user's model defines is kept exactly (a user's own ``group#member`` or
``agent#owner`` wins, and the base never removes or rewrites anything). So a user model
may add relations to ``agent`` (``define can_deploy: owner or ...``) or give ``human``
relations of its own, and owner tuples (``agent:x#owner@human:alice``, written by
``create_identity``) always have a relation to land on.

Where it applies — :func:`load_extended`, run by :func:`keyplane.service.models.write_model`
on every model written through the native API (REST ``/v1``, SDK, CLI, embedded): the
model is merged with the base before its semantic validation (so it may use ``human`` or
``agent#owner`` without declaring them), then checked to accept exactly the tuples the identity
plane writes (``<kind>:x#owner@human:y``, ``<kind>:x#owner@group:g#member``). A user's
own ``owner`` may narrow the base's (``[human]``: group owners are then refused, as any
tuple the model does not allow); one that can hold neither — ``agent`` with ``define owner:
[user]``, a computed ``owner``, only conditional restrictions — is *not* silently kept: the
write fails with ``invalid_model`` naming each conflict and how to fix it (allow ``human``
and/or ``group#member`` in it, or rename the relation). The OpenFGA-compatible API
(``/stores/...``) stores models exactly as written — OpenFGA clients compare what they read
back with what they wrote — so a store whose model came that way may lack the identity
types; the identity operations then fail with ``type_not_found`` / ``relation_not_found``
naming what is missing (:func:`missing_hint`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from keyplane.policy.records import NON_HUMAN_KINDS

__all__ = [
    "BASE_MODEL_DSL",
    "base_model",
    "extend_model",
    "load_extended",
    "merge_base_model",
    "missing_hint",
    "validate_extended",
]

BASE_MODEL_DSL = """\
model
  schema 1.1

type human

type group
  relations
    define member: [human, group#member]

type agent
  relations
    define owner: [human, group#member]

type workload
  relations
    define owner: [human, group#member]

type service_account
  relations
    define owner: [human, group#member]

type mcp_server
  relations
    define caller: [human, agent, workload, service_account, group#member]

type toolset
  relations
    define member: [human, agent, workload, service_account, group#member]

type mcp_tool
  relations
    define server: [mcp_server]
    define toolset: [toolset]
    define caller: [human, agent, workload, service_account, group#member]
    define can_call: caller or member from toolset or caller from server
"""

# every NHI kind has the owner relation (kept in step with records.NON_HUMAN_KINDS)
assert all(f"type {k}\n" in BASE_MODEL_DSL for k in NON_HUMAN_KINDS)


@cache
def _base() -> dict[str, Any]:
    from keyplane.graph.language import load_model

    return load_model(BASE_MODEL_DSL)


def base_model() -> dict[str, Any]:
    """The base model as OpenFGA JSON (a fresh copy)."""
    return copy.deepcopy(_base())


def merge_base_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """``model`` (OpenFGA JSON) with the base types and relations it lacks added; nothing
    of ``model`` is changed or removed. Merging twice gives the same model."""
    out = copy.deepcopy(dict(model))
    types: list[dict[str, Any]] = out.setdefault("type_definitions", [])
    by_name = {t.get("type"): t for t in types}
    for base in _base()["type_definitions"]:
        name = base["type"]
        mine = by_name.get(name)
        if mine is None:
            types.append(copy.deepcopy(base))
            continue
        base_rels: dict[str, Any] = base.get("relations") or {}
        rels = mine.setdefault("relations", {})
        for rel, rewrite in base_rels.items():
            if rel in rels:
                continue
            rels[rel] = copy.deepcopy(rewrite)
            meta = mine.setdefault("metadata", {}) or {}
            mine["metadata"] = meta
            meta_rels = meta.setdefault("relations", {}) or {}
            meta["relations"] = meta_rels
            meta_rels[rel] = copy.deepcopy(base["metadata"]["relations"][rel])
    return out


def _owner_samples(kind: str) -> list[Any]:
    from keyplane.graph.tuples import Tuple

    return [Tuple(f"{kind}:x", "owner", "human:y"), Tuple(f"{kind}:x", "owner", "group:g#member")]


def load_extended(source: str | Mapping[str, Any]) -> dict[str, Any]:
    """Like :func:`keyplane.graph.language.load_model` (DSL text, JSON text or a dict), but
    the model is merged with the base model *before* its semantic validation, so a user
    model may use the base's types and relations without declaring them (``define viewer:
    [human]``, ``define can_deploy: owner or deployer`` on ``agent``). Syntax and shape
    errors are the user's text's, with positions; then :func:`extend_model`'s checks."""
    from keyplane.errors import InvalidModelError
    from keyplane.graph.language.json_model import (
        depth_issue,
        normalize_model,
        read_json,
        shape_issues,
    )
    from keyplane.graph.language.parser import parse
    from keyplane.graph.language.validation import validate as semantic_issues

    def fail(issues: list[Any]) -> None:
        if issues:
            summary = (
                issues[0].message if len(issues) == 1 else f"{len(issues)} errors in the model"
            )
            raise InvalidModelError(summary, errors=issues)

    lines: list[str] | None = None
    if isinstance(source, Mapping):
        raw: Mapping[str, Any] = source
    elif source.lstrip().startswith("{"):
        parsed, issues = read_json(source)
        fail(issues)
        assert parsed is not None
        raw = parsed
    else:
        result = parse(source)
        fail(result.errors)
        raw, lines = result.model, source.split("\n")
    issue = depth_issue(raw)
    fail([issue] if issue is not None else [])
    model = normalize_model(raw)
    if lines is None:
        fail(shape_issues(model))
    merged = merge_base_model(model)
    fail(semantic_issues(merged, lines))
    return extend_model(normalize_model(merged))


def validate_extended(text: str) -> list[Any]:
    """Every issue :func:`load_extended` finds in DSL text (empty when the native API would
    store it): what ``keyplane model validate`` reports."""
    from keyplane.errors import InvalidModelError, ModelIssue

    try:
        load_extended(text)
    except InvalidModelError as exc:
        return exc.errors or [ModelIssue(exc.message)]
    return []


def extend_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """``model`` merged with the base model (:func:`merge_base_model`), checked so that
    every non-human kind can have owners. A user's own ``owner`` relation may narrow the
    base's (``[human]`` only: group owners are then refused when identities are given
    them, as any tuple the model does not allow); one that accepts neither ``human`` nor
    ``group#member`` without a condition (``[user]``, a computed relation) conflicts with
    the base and is an :class:`~keyplane.errors.InvalidModelError` naming every conflict."""
    from keyplane.errors import InvalidModelError, KeyplaneError, ModelIssue
    from keyplane.graph.compiled import CompiledModel

    merged = merge_base_model(model)
    compiled = CompiledModel.compile(merged)  # structural errors first, as for any model
    issues: list[ModelIssue] = []
    for kind in NON_HUMAN_KINDS:
        why: list[str] = []
        for t in _owner_samples(kind):
            try:
                compiled.validate_tuple(t)
            except KeyplaneError as exc:
                why.append(exc.message)
        if len(why) == len(_owner_samples(kind)):
            issues.append(
                ModelIssue(
                    f"relation '{kind}#owner' conflicts with the built-in base model: it must "
                    f"allow 'human' or 'group#member' (without a condition) so that '{kind}' "
                    f"identities can have owners — write 'define owner: [human, "
                    f"group#member]' (more types may follow) or rename your relation "
                    f"({'; '.join(why)})",
                    error_type="base_model_conflict",
                    metadata={"type": kind, "relation": "owner"},
                )
            )
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise InvalidModelError(
            issues[0].message + more,
            errors=issues,
            details={"base_model": BASE_MODEL_DSL},
        )
    return merged


def missing_hint(kind: str) -> str:
    """What to tell a caller whose store's model lacks what a ``kind`` identity needs."""
    need = (
        "type human"
        if kind == "human"
        else f"type {kind} with 'define owner: [human, group#member]', type human, "
        "type group with 'define member: [human, group#member]'"
    )
    return (
        f"identities need the types of the built-in base model ({need}); a model written "
        "through the native API (/v1, SDK, CLI) gets them added, a model written through "
        "the OpenFGA-compatible API is kept exactly as written — add them to it"
    )

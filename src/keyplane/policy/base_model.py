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

The merge is meant for models written through the native API (``write_model`` on
REST/SDK/CLI/MCP). The OpenFGA-compatible API must keep returning models exactly as
written, so it does not merge (see the report for issue 5: wiring the merge into the
native write path is the remaining step).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from keyplane.policy.records import NON_HUMAN_KINDS

__all__ = ["BASE_MODEL_DSL", "base_model", "merge_base_model"]

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

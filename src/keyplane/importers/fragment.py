"""Merging an importer's model fragment into a store's model.

An importer declares the types its tuples use as a DSL fragment (``type aws_role`` with
its relations; the ``model / schema 1.1`` header optional; it may use the base model's
types — ``human``, ``group#member``, ``agent`` — without declaring them). Merging works
like :func:`keyplane.policy.base_model.merge_base_model`: every type of the fragment the
store's model lacks is added whole, every relation a type of the same name lacks is added
to it, and whatever the store's model defines is kept exactly (the user's own definitions
win). The result is then validated and extended with the base model like any model the
native API writes (:func:`keyplane.policy.base_model.load_extended`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from keyplane.errors import InvalidModelError
from keyplane.graph.language.json_model import normalize_model
from keyplane.graph.language.parser import parse
from keyplane.policy.base_model import load_extended

__all__ = ["merge_fragment", "parse_fragment"]

_HEADER = "model\n  schema 1.1\n"


def parse_fragment(text: str) -> dict[str, Any]:
    """The fragment as model JSON (syntax checked only: its references to base types are
    resolved once merged)."""
    body = text if text.lstrip().startswith("model") else f"{_HEADER}\n{text.strip()}\n"
    result = parse(body)
    if result.errors:
        first = result.errors[0].message
        raise InvalidModelError(f"the importer's model fragment: {first}", errors=result.errors)
    return normalize_model(result.model)


def merge_fragment(
    model: Mapping[str, Any] | None, fragment: str
) -> tuple[dict[str, Any], list[str]]:
    """``model`` (the store's latest, OpenFGA JSON; None for a store without one) with what
    ``fragment`` declares and it lacks, validated and extended with the base model — and
    the names added (``aws_role``, ``github_repo#admin``); an empty list means the model
    need not change (when ``model`` is not None). Raises InvalidModelError when the merged
    model is not valid (e.g. a user's own relation of the same name does not fit)."""
    out: dict[str, Any] = (
        copy.deepcopy(dict(model))
        if model is not None
        else {
            "schema_version": "1.1",
            "type_definitions": [],
        }
    )
    out.setdefault("schema_version", "1.1")
    added: list[str] = []
    if fragment.strip():
        frag = parse_fragment(fragment)
        types: list[dict[str, Any]] = out.setdefault("type_definitions", [])
        by_name = {t.get("type"): t for t in types}
        for t in frag.get("type_definitions") or []:
            name = t["type"]
            mine = by_name.get(name)
            if mine is None:
                types.append(copy.deepcopy(t))
                by_name[name] = types[-1]
                added.append(name)
                continue
            rels = mine.setdefault("relations", {})
            frag_meta = ((t.get("metadata") or {}).get("relations")) or {}
            for rel, rewrite in (t.get("relations") or {}).items():
                if rel in rels:
                    continue
                rels[rel] = copy.deepcopy(rewrite)
                meta = mine.get("metadata") or {}
                mine["metadata"] = meta
                meta_rels = meta.get("relations") or {}
                meta["relations"] = meta_rels
                if rel in frag_meta:
                    meta_rels[rel] = copy.deepcopy(frag_meta[rel])
                added.append(f"{name}#{rel}")
        have = {c for c in out.get("conditions") or {}}
        for cname, cond in (frag.get("conditions") or {}).items():
            if cname not in have:
                out.setdefault("conditions", {})[cname] = copy.deepcopy(cond)
                added.append(f"condition {cname}")
    try:
        extended = load_extended(out)
    except InvalidModelError as exc:
        raise InvalidModelError(
            f"the importer's model types do not fit the store's model: {exc.message}",
            errors=exc.errors,
            details=exc.details,
        ) from None
    return extended, added

"""The OpenFGA modeling language (schema 1.1): DSL ⇄ model JSON, and model validation.

The model representation is OpenFGA's protojson dict exactly as in openfga/language's test
data: ``schema_version``, ``type_definitions`` (``type``, ``relations`` of rewrites —
``this`` / ``computedUserset`` / ``tupleToUserset`` / ``union`` / ``intersection`` /
``difference`` — and ``metadata.relations.*.directly_related_user_types``) and
``conditions`` (``name``, ``expression``, ``parameters``).

* :func:`parse_dsl` — DSL text → model dict (syntax and semantic checks);
* :func:`write_dsl` — model dict → canonical DSL text (what ``fga model transform`` prints);
* :func:`validate_dsl` / :func:`validate_model` — every issue, as
  :class:`~keyplane.errors.ModelIssue` (0-based positions for DSL input);
* :func:`load_model` — DSL text, JSON text or a dict → validated, canonical model dict;
* :func:`normalize_model` — rename protojson's alternative spellings to the canonical ones;
* :func:`validate_object_id` — whether a string may be an object id;
* modular models (schema 1.2): :func:`transform_modules` (module files → one model),
  :func:`validate_modules`, :func:`model_modules`; ``write_dsl(..., source_info=True)``;
  the ``fga.mod`` manifest: :func:`parse_fga_mod`, :func:`validate_fga_mod`.

Errors are raised as :class:`~keyplane.errors.InvalidModelError` with ``errors`` listing
every issue, messages and error types as the reference implementation reports them.

Modules: ``lexer`` (tokens), ``recognizer`` (ANTLR-compatible error recovery), ``parser``
and ``expressions`` (grammar rules), ``writer`` (JSON → DSL), ``json_model`` (JSON input),
``validation``, ``entrypoints``, ``usersets`` and ``positions`` (semantic checks), ``modules``
and ``fga_mod`` (modular models), ``api``.
"""

from __future__ import annotations

from keyplane.graph.language.api import (
    load_model,
    parse_dsl,
    validate_dsl,
    validate_model,
    validate_object_id,
)
from keyplane.graph.language.fga_mod import parse_fga_mod, validate_fga_mod
from keyplane.graph.language.json_model import normalize_model
from keyplane.graph.language.modules import model_modules, transform_modules, validate_modules
from keyplane.graph.language.writer import write_dsl

__all__ = [
    "load_model",
    "model_modules",
    "normalize_model",
    "parse_dsl",
    "parse_fga_mod",
    "transform_modules",
    "validate_dsl",
    "validate_fga_mod",
    "validate_model",
    "validate_modules",
    "validate_object_id",
    "write_dsl",
]

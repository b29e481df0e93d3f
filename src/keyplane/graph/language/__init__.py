"""The OpenFGA modeling language (schema 1.1): DSL ⇄ model JSON, and model validation.

The model representation is OpenFGA's protojson dict (``schema_version``,
``type_definitions``, ``conditions``), exactly as in openfga/language's test data.
"""

from __future__ import annotations

from keyplane.graph.language.api import (
    load_model,
    parse_dsl,
    validate_dsl,
    validate_model,
    validate_object_id,
)
from keyplane.graph.language.writer import write_dsl

__all__ = [
    "load_model",
    "parse_dsl",
    "validate_dsl",
    "validate_model",
    "validate_object_id",
    "write_dsl",
]

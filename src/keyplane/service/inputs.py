"""Input normalisation shared by the service functions: tuples in any accepted form, limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyplane.errors import InvalidTupleError, LimitExceededError, ValidationError
from keyplane.graph.tuples import Tuple, parse_tuple, validate_syntax

__all__ = [
    "MAX_REVISION",
    "TupleLike",
    "check_limit",
    "check_page_size",
    "check_revision",
    "to_tuple",
    "to_tuples",
]

TupleLike = Tuple | str | Mapping[str, Any]


def to_tuple(value: TupleLike) -> Tuple:
    """Accept a :class:`Tuple`, ``"object#relation@user"`` text or OpenFGA TupleKey JSON."""
    if isinstance(value, Tuple):
        validate_syntax(value)  # built by the caller: nothing has checked its fields yet
        return value
    if isinstance(value, str):
        return parse_tuple(value)
    if isinstance(value, Mapping):
        return Tuple.from_dict(value)
    raise InvalidTupleError(f"cannot read a tuple from {type(value).__name__}")


def to_tuples(values: Iterable[TupleLike] | None) -> list[Tuple]:
    return [to_tuple(v) for v in values or ()]


def check_limit(name: str, items: Sequence[Any], limit: int) -> None:
    if len(items) > limit:
        raise LimitExceededError(
            f"{name}: {len(items)} items exceed the limit of {limit}",
            details={"limit": limit, "received": len(items), "field": name},
        )


def check_page_size(page_size: int, limit: int) -> int:
    """A page size within ``1..limit`` (``KEYPLANE_MAX_PAGE_SIZE``), or a clear error."""
    if page_size < 1:
        raise ValidationError(
            f"page_size must be at least 1 (got {page_size})",
            details={"field": "page_size", "received": page_size},
        )
    if page_size > limit:
        raise LimitExceededError(
            f"page_size {page_size} exceeds the limit of {limit}",
            details={"limit": limit, "received": page_size, "field": "page_size"},
        )
    return page_size


#: revisions are stored as 64-bit integers; anything larger can name no revision
MAX_REVISION = 2**63 - 1


def check_revision(name: str, value: int) -> int:
    """A revision argument within ``0..2**63-1``, or a validation error naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REVISION:
        raise ValidationError(
            f"{name} must be an integer between 0 and {MAX_REVISION} (got {value!r})",
            details={"field": name, "received": repr(value)},
        )
    return value

"""Input normalisation shared by the service functions: tuples in any accepted form, limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyplane.errors import InvalidTupleError, LimitExceededError
from keyplane.graph.tuples import Tuple, parse_tuple

__all__ = ["TupleLike", "check_limit", "to_tuple", "to_tuples"]

TupleLike = Tuple | str | Mapping[str, Any]


def to_tuple(value: TupleLike) -> Tuple:
    """Accept a :class:`Tuple`, ``"object#relation@user"`` text or OpenFGA TupleKey JSON."""
    if isinstance(value, Tuple):
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

"""Relationship tuples: ``object#relation@user`` — the edges of the identity graph.

A tuple's identity is ``(object, relation, user)``; its condition (name and context) and
its ``expires_at`` are attributes of the edge, not part of its key — writing the same key
twice is a conflict whatever the condition, as in OpenFGA.

* ``object`` is ``type:id``;
* ``user`` is ``type:id``, ``type:*`` (every object of the type) or ``type:id#relation``
  (a userset);
* ``expires_at`` (seconds since the epoch, UTC) makes the edge stop granting at that
  instant, without any clean-up job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyplane.errors import InvalidTupleError

__all__ = [
    "Tuple",
    "TupleChange",
    "expires_at_error",
    "format_tuple",
    "object_error",
    "parse_tuple",
    "split_object",
    "split_user",
    "user_error",
]

# OpenFGA's syntax rules, from its API (openfga/api ``openfga/v1/openfga.proto``: TupleKey and
# Object) and its tuple package (openfga/openfga ``pkg/tuple/tuple.go``): a type is
# ``[^:#@\s]{1,254}``, a relation ``[^:#@\s]{1,50}``, an object ``type:id`` of at most 256
# characters whose id has no ``#``, ``:`` or white space, a user at most 512 bytes. Beyond the
# reference, ids also refuse ASCII control characters (NUL cannot even be stored in PostgreSQL
# text): every "white space" below is ``[\x00-\x20\x7f]``.
_NAME = r"[^:#@\x00-\x20\x7f]"
_ID = r"[^#:\x00-\x20\x7f]"
_REL_RE = re.compile(rf"{_NAME}{{1,50}}")
_OBJECT_RE = re.compile(rf"({_NAME}{{1,254}}):({_ID}+)")
_USER_RE = re.compile(rf"({_NAME}{{1,254}}):({_ID}+)(?:#({_NAME}{{1,50}}))?")
MAX_OBJECT_LENGTH = 256  # characters, as the reference's ``^[^\s]{2,256}$``
MAX_USER_BYTES = 512  # UTF-8 bytes, as the reference's ``max_bytes: 512``


def object_error(obj: object) -> str | None:
    """Why ``obj`` is not a valid object ``type:id`` — ``None`` when it is.

    The one syntax rule for objects: writes (:func:`split_object`) and every query (check,
    expand, list users) use it, so anything that can be written can be queried."""
    if not isinstance(obj, str):
        return "expected a string"
    if len(obj) > MAX_OBJECT_LENGTH:
        return f"longer than {MAX_OBJECT_LENGTH} characters"
    m = _OBJECT_RE.fullmatch(obj)
    if m is None:
        return (
            "expected 'type:id' (the id may not contain '#', ':', white space or control "
            "characters)"
        )
    if m[2] == "*":
        return "the object cannot be a typed wildcard"
    return None


def user_error(user: object) -> str | None:
    """Why ``user`` is not a valid user (``type:id``, ``type:*``, ``type:id#relation``) —
    ``None`` when it is. The one syntax rule for users, at write and at query time."""
    if not isinstance(user, str):
        return "expected a string"
    if len(user) > MAX_USER_BYTES // 4 and len(user.encode()) > MAX_USER_BYTES:
        return f"longer than {MAX_USER_BYTES} bytes"
    m = _USER_RE.fullmatch(user)
    if m is None:
        if user.endswith("#"):
            return "empty relation after '#'"
        return (
            "expected 'type:id', 'type:*' or 'type:id#relation' (the id may not contain "
            "'#', ':', white space or control characters)"
        )
    if m[3] and m[2] == "*":
        return "a wildcard cannot carry a relation"
    return None


@dataclass(frozen=True, slots=True)
class Tuple:
    """One relationship. Equality and hashing use the key ``(object, relation, user)`` only."""

    object: str
    relation: str
    user: str
    condition: str | None = field(default=None, compare=False)
    context: Mapping[str, Any] | None = field(default=None, compare=False)
    expires_at: float | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.object, self.relation, self.user)

    def __str__(self) -> str:
        return format_tuple(self)

    def to_dict(self) -> dict[str, Any]:
        """OpenFGA's TupleKey JSON shape, plus ``expires_at`` (RFC 3339) when set."""
        out: dict[str, Any] = {"object": self.object, "relation": self.relation, "user": self.user}
        if self.condition:
            out["condition"] = {"name": self.condition, "context": dict(self.context or {})}
        if self.expires_at is not None:
            out["expires_at"] = (
                datetime.fromtimestamp(self.expires_at, UTC).isoformat().replace("+00:00", "Z")
            )
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tuple:
        """Build from OpenFGA's TupleKey JSON (``condition: {name, context}``), validating syntax."""
        try:
            obj, rel, user = data["object"], data["relation"], data["user"]
        except KeyError as exc:
            raise InvalidTupleError(f"tuple is missing the field {exc.args[0]!r}") from None
        cond = data.get("condition")
        name: str | None = None
        ctx: Mapping[str, Any] | None = None
        if cond:
            if not isinstance(cond, Mapping) or not cond.get("name"):
                raise InvalidTupleError("a tuple's condition needs a name")
            name = str(cond["name"])
            ctx = cond.get("context") or None
            if ctx is not None and not isinstance(ctx, Mapping):
                raise InvalidTupleError(
                    f"a tuple's condition context must be an object, not {type(ctx).__name__}"
                )
        exp = data.get("expires_at")
        t = cls(str(obj), str(rel), str(user), name, ctx, _parse_time(exp))
        validate_syntax(t)
        return t


@dataclass(frozen=True, slots=True)
class TupleChange:
    """One entry of a store's changelog."""

    tuple: Tuple
    operation: str  # "write" | "delete"
    revision: int
    timestamp: float


# the instants an ``expires_at`` may name: those RFC 3339 can write (years 0001 to 9999)
_MIN_TIME = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp()  # no rounding up


def expires_at_error(value: object) -> str | None:
    """Why ``value`` is not a usable ``expires_at`` (seconds since the epoch) — ``None`` when
    it is. NaN would be stored as NULL (a grant that never expires), infinities and instants
    past the year 9999 cannot be written as RFC 3339, and a bool is not a time."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected seconds since the epoch, got {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite time"
    if not _MIN_TIME <= value <= _MAX_TIME:  # exact for ints of any size
        return "the instant is outside the years 0001 to 9999"
    return None


def _parse_time(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidTupleError(f"invalid expires_at: {value!r} is not a time")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            seconds = math.inf
    else:
        if isinstance(value, datetime):
            dt = value
        else:
            try:
                dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise InvalidTupleError(f"expires_at {value!r} is not an RFC 3339 time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        try:
            seconds = dt.timestamp()
        except (OverflowError, ValueError):
            seconds = math.inf
    why = expires_at_error(seconds)
    if why is not None:
        raise InvalidTupleError(f"invalid expires_at: {why}")
    return seconds


def split_object(obj: str) -> tuple[str, str]:
    """``"document:1"`` → ``("document", "1")``; raises InvalidTupleError if malformed."""
    why = object_error(obj)
    if why is not None:
        raise InvalidTupleError(f"invalid object {obj!r}: {why}", details={"object": obj})
    t, _, i = obj.partition(":")
    return t, i


def split_user(user: str) -> tuple[str, str, str]:
    """``"group:eng#member"`` → ``("group", "eng", "member")``; relation is ``""`` if absent."""
    why = user_error(user)
    if why is not None:
        raise InvalidTupleError(f"invalid user {user!r}: {why}", details={"user": user})
    head, _, rel = user.partition("#")
    t, _, i = head.partition(":")
    return t, i, rel


def validate_syntax(t: Tuple) -> None:
    """Check the shape of a tuple (not its fit to a model)."""
    split_object(t.object)
    why = expires_at_error(t.expires_at)
    if why is not None:
        raise InvalidTupleError(f"invalid expires_at in {t.key!r}: {why}")
    if not isinstance(t.relation, str) or not _REL_RE.fullmatch(t.relation):
        raise InvalidTupleError(f"invalid relation {t.relation!r}")
    split_user(t.user)
    if t.condition is not None and not isinstance(t.condition, str):
        raise InvalidTupleError(f"invalid condition name {t.condition!r}")
    ctx = t.context
    if ctx is not None and (
        not isinstance(ctx, Mapping) or not all(isinstance(k, str) for k in ctx)
    ):
        raise InvalidTupleError(
            f"invalid condition context on '{t}': expected an object with string keys"
        )


_TEXT_RE = re.compile(r"^(?P<object>[^#@\s]+)#(?P<relation>[^@\s]+)@(?P<user>\S+)$")


def parse_tuple(text: str) -> Tuple:
    """Parse ``document:roadmap#viewer@group:eng#member``."""
    m = _TEXT_RE.match(text.strip())
    if not m:
        raise InvalidTupleError(f"invalid tuple {text!r}: expected 'type:id#relation@user'")
    t = Tuple(m["object"], m["relation"], m["user"])
    validate_syntax(t)
    return t


def format_tuple(t: Tuple) -> str:
    return f"{t.object}#{t.relation}@{t.user}"

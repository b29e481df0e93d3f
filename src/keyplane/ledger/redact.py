"""HMAC of sensitive ledger fields, so they are searchable by value but not readable.

``KEYPLANE_LEDGER_HMAC_FIELDS`` names fields to hash before an event is stored: top-level
event fields (``subject``, ``resource``, ``purpose``, ``caller``, ``action``) or paths into
``details`` (``details.context``, ``details.tuples``). Each value becomes
``"hmac-sha256:<hex>"`` — HMAC-SHA256 (RFC 2104) under a key derived from the master key —
as Vault's audit devices do. An auditor searching for a value hashes it the same way
(:meth:`Redactor.hash_value`) and searches for the result.

Strings are hashed as their UTF-8 bytes; any other JSON value as its canonical JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from keyplane.ledger.events import LedgerEvent

__all__ = ["HMAC_LABEL", "HMAC_PREFIX", "REDACTABLE_FIELDS", "Redactor", "parse_fields"]

HMAC_PREFIX = "hmac-sha256:"
#: the HKDF label of the HMAC key (keyplane.secrets.MasterKey.derive)
HMAC_LABEL = "keyplane ledger hmac v1"
#: top-level fields that may be hashed (``details.<path>`` is allowed too)
REDACTABLE_FIELDS = ("subject", "resource", "purpose", "caller", "action")


def parse_fields(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``"subject, details.context"`` → ``("subject", "details.context")``; refuses unknown
    fields (ValueError), so a typo does not silently leave a value in the clear."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        if name not in REDACTABLE_FIELDS and not (
            name.startswith("details.") and len(name) > len("details.")
        ):
            raise ValueError(
                f"cannot HMAC ledger field {name!r}: use one of {', '.join(REDACTABLE_FIELDS)}"
                " or details.<key>"
            )
        out.append(name)
    return tuple(out)


class Redactor:
    """Replaces the configured fields of events by their HMAC. ``key`` is a callable so the
    master key is only read when a configured field is first hashed."""

    def __init__(self, fields: Iterable[str], key: Callable[[], bytes]) -> None:
        self.fields = parse_fields(fields)
        self._key_source = key
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _hmac_key(self) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._key_source()
        return self._key

    def hash_value(self, value: Any) -> str:
        """The stored form of ``value``: ``hmac-sha256:<hex>``."""
        if isinstance(value, str):
            if value.startswith(HMAC_PREFIX):
                return value  # already hashed: never hash twice
            data = value.encode("utf-8")
        else:
            data = json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        return HMAC_PREFIX + hmac.new(self._hmac_key(), data, hashlib.sha256).hexdigest()

    def __call__(self, event: LedgerEvent) -> LedgerEvent:
        if not self.fields:
            return event
        changes: dict[str, Any] = {}
        details: dict[str, Any] | None = None
        for name in self.fields:
            if name.startswith("details."):
                path = name[len("details.") :].split(".")
                if details is None:
                    details = _deep_copy(event.details)
                _hash_path(details, path, self.hash_value)
            else:
                value = getattr(event, name)
                if value is not None:
                    changes[name] = self.hash_value(value)
        if details is not None:
            changes["details"] = details
        return replace(event, **changes) if changes else event


def _deep_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_deep_copy(v) if isinstance(v, Mapping) else v) for k, v in value.items()}


def _hash_path(node: Any, path: list[str], hash_value: Callable[[Any], str]) -> None:
    """Hash ``node[path]``; a list on the way applies the rest of the path to each item."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            if len(path) == 0:
                node[i] = hash_value(item)
            else:
                _hash_path(item, path, hash_value)
        return
    if not isinstance(node, dict) or not path:
        return
    head, rest = path[0], path[1:]
    if head not in node or node[head] is None:
        return
    if rest:
        child = node[head]
        if isinstance(child, Mapping):
            child = node[head] = _deep_copy(child)
        elif isinstance(child, list):
            child = node[head] = [_deep_copy(c) if isinstance(c, Mapping) else c for c in child]
        _hash_path(child, rest, hash_value)
    else:
        node[head] = hash_value(node[head])

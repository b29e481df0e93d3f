"""Which attributes a SCIM answer carries (RFC 7644 §3.4.2.5, §3.9; RFC 7643 §2.2
``returned``) and the order of a list (RFC 7644 §3.4.2.3).

:func:`project` returns a NEW dict:

* without ``attributes``: every attribute whose ``returned`` is ``always`` or ``default``;
* with ``attributes`` (a list of paths, or the query parameter's comma-separated text):
  only those, plus the ``always`` ones (``id``, ``schemas``) — ``request`` attributes are
  returned only when named here;
* with ``excluded``: the default set minus those (``always`` attributes cannot be
  excluded);
* ``never`` attributes (``password``) are never returned;
* paths may name sub-attributes (``name.givenName``, ``emails.value``,
  ``meta.lastModified``), extension attributes (``urn:…:enterprise:2.0:User:department``)
  or a whole extension (``urn:…:enterprise:2.0:User``).

:func:`sort_key` orders resources by ``sortBy``: strings case-insensitively unless
``caseExact``, dateTimes as instants, a multi-valued attribute by its primary value (else
its first); resources without a value sort last ascending (pass ``reverse=True`` to
``sorted`` for descending: they come first, as RFC 7644 §3.4.2.3 has it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.scim.errors import ScimError
from keyplane.scim.schemas import ResourceType

__all__ = ["parse_attribute_list", "project", "sort_key"]


def parse_attribute_list(value: str | Sequence[str] | None) -> list[str]:
    """``"userName,name.givenName"`` (or a list of such) → ``["userName", "name.givenName"]``."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [p.strip() for item in items for p in item.split(",") if p.strip()]


def project(
    resource: Mapping[str, Any],
    schemas: ResourceType,
    *,
    attributes: str | Sequence[str] | None = None,
    excluded: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """The resource as an answer carries it (see the module docstring). Unknown attribute
    names are ignored (they select nothing)."""
    raise NotImplementedError  # pragma: no cover — skeleton


def sort_key(
    resource: Mapping[str, Any],
    sort_by: str,
    *,
    schemas: ResourceType | None = None,
) -> tuple[Any, ...]:
    """A key for ``sorted(resources, key=…)``: ``(0, rank, value)`` for a value, ``(1,)``
    when the resource has none. ``sort_by`` naming no attribute of the type →
    ``ScimError(400, invalidValue)`` (when ``schemas`` is given)."""
    raise NotImplementedError  # pragma: no cover — skeleton


_ = ScimError

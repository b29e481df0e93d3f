"""SCIM PATCH (RFC 7644 §3.5.2): ``add``, ``remove`` and ``replace`` operations applied to a
resource, returning a NEW dict (the input is never mutated).

* ``op`` is case-insensitive (Entra ID sends ``"Replace"``);
* ``path`` may be absent (add/replace: ``value`` is an object of attributes — its keys
  may themselves be paths, ``urn:…:enterprise:2.0:User:department``, as Entra ID sends),
  an attribute, ``attr.sub``, an extension attribute ``urn:…:User:manager.value``, a value
  filter ``members[value eq "2819c223"]`` or ``emails[type eq "work"].value``;
* add on a multi-valued attribute appends the values not already there; on a complex
  attribute merges the sub-attributes given; replace on a multi-valued attribute replaces
  the whole list, on a complex one merges (RFC 7644 §3.5.2.3); a ``primary: true`` value
  makes the others ``primary: false``;
* values are checked against the attribute's type: booleans sent as strings
  (``"False"``) are accepted (Entra ID), anything else ill-typed is ``400 invalidValue``;
* readOnly attributes → ``400 mutability``; immutable ones → ``400 mutability`` once they
  have a value that would change; ``id``, ``schemas`` or ``meta`` in a path-less value are
  ignored when unchanged (Okta sends the ``id``);
* remove without a path → ``400 noTarget`` (RFC 7644 §3.5.2.2); a filtered replace or
  remove that matches no value → ``400 noTarget``; an add with a filter that matches no
  value and is a plain ``sub eq "x"`` creates that value (Entra ID's
  ``emails[type eq "work"].value``); remove on a required attribute → ``400 mutability``;
* a remove of ``members`` with a ``value`` list removes those members (Entra ID).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.scim.errors import ScimError
from keyplane.scim.schemas import PATCH_OP, ResourceType

__all__ = ["apply_patch", "patch_operations"]


def patch_operations(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``Operations`` of a PatchOp request body, checked: ``schemas`` must name
    ``urn:ietf:params:scim:api:messages:2.0:PatchOp`` and ``Operations`` be a non-empty
    list of objects with an ``op`` — else ``400 invalidSyntax``."""
    raise NotImplementedError  # pragma: no cover — skeleton


def apply_patch(
    resource: Mapping[str, Any],
    operations: Sequence[Mapping[str, Any]],
    schemas: ResourceType,
) -> dict[str, Any]:
    """Apply ``operations`` in order to a copy of ``resource`` (all or nothing: the first
    failing operation raises :class:`~keyplane.scim.errors.ScimError` and nothing is
    returned). ``schemas`` is the resource's type (core schema + extensions)."""
    raise NotImplementedError  # pragma: no cover — skeleton


_ = (PATCH_OP, ScimError)

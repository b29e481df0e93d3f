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

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from keyplane.scim.errors import ScimError
from keyplane.scim.schemas import AttrDef, ResourceType, parse_datetime, resource_type_of

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
    rt = schemas
    named = _Selection.of(parse_attribute_list(attributes), rt)
    # without ``attributes`` the default set applies, minus ``excluded``
    wanted: _Selection | None = None if named.empty else named
    unwanted = _Selection.of(parse_attribute_list(excluded), rt)
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if not isinstance(key, str):
            continue
        if key.lower() == "schemas":
            out[key] = copy.deepcopy(value)
            continue
        urn = rt.locate_schema(key) if key.lower().startswith("urn:") else None
        if urn is not None and urn != rt.schema:
            if not isinstance(value, Mapping):
                continue
            part: dict[str, Any] = {}
            for k2, v2 in value.items():
                ref = rt.locate(f"{urn}:{k2}", strict=False)
                picked = _top(urn, ref.attr, str(k2), v2, wanted, unwanted)
                if picked is not _SKIP:
                    part[ref.name if ref.attr else str(k2)] = picked
            if part:
                out[key] = part
            continue
        ref = rt.locate(key, strict=False)
        if ref.sub is not None:
            continue
        picked = _top(ref.schema, ref.attr, key, value, wanted, unwanted)
        if picked is not _SKIP:
            out[key] = picked
    return out


_SKIP: Final = object()


class _Selection:
    """Attribute paths resolved: ``whole`` schemas named by their URN, and per
    ``(schema, attribute)`` either ``None`` (the whole attribute) or sub-attribute names."""

    __slots__ = ("attrs", "schemas")

    def __init__(self) -> None:
        self.schemas: set[str] = set()
        self.attrs: dict[tuple[str, str], set[str] | None] = {}

    @property
    def empty(self) -> bool:
        return not self.schemas and not self.attrs

    @classmethod
    def of(cls, paths: list[str], rt: ResourceType) -> _Selection:
        sel = cls()
        for path in paths:
            urn = rt.locate_schema(path) if path.lower().startswith("urn:") else None
            if urn is not None:
                sel.schemas.add(urn)
                continue
            try:
                ref = rt.locate(path, strict=False)
            except ScimError:
                continue
            k = (ref.schema, ref.name.lower())
            if ref.sub is None:
                sel.attrs[k] = None
            elif k not in sel.attrs or sel.attrs[k] is not None:
                subs = sel.attrs.setdefault(k, set())
                assert subs is not None
                subs.add(ref.sub.lower())
        return sel

    def lookup(self, schema: str, name: str) -> tuple[bool, set[str] | None]:
        """``(named, subs)``: whether the attribute is selected, and which sub-attributes
        (``None``: all of it)."""
        if schema in self.schemas:
            return True, None
        k = (schema, name.lower())
        if k in self.attrs:
            return True, self.attrs[k]
        return False, None


def _top(
    schema: str,
    d: AttrDef | None,
    name: str,
    value: Any,
    wanted: _Selection | None,
    unwanted: _Selection,
) -> Any:
    if d is None:  # stored but not in the schema: shown by default, selectable by name
        if wanted is not None:
            named, _ = wanted.lookup(schema, name)
            return copy.deepcopy(value) if named else _SKIP
        named, subs = unwanted.lookup(schema, name)
        return _SKIP if named and subs is None else copy.deepcopy(value)
    if d.returned == "never":
        return _SKIP
    if d.returned == "always":
        return copy.deepcopy(value)
    if wanted is not None:
        named, subs = wanted.lookup(schema, d.name)
        if not named:
            return _SKIP
        return _subs(d, value, keep=subs, drop=None)
    if d.returned == "request":
        return _SKIP
    named, subs = unwanted.lookup(schema, d.name)
    if named and subs is None:
        return _SKIP
    return _subs(d, value, keep=None, drop=subs if named else None)


def _subs(d: AttrDef, value: Any, *, keep: set[str] | None, drop: set[str] | None) -> Any:
    """The sub-attributes of a complex value to show: ``keep`` only (plus the ``always``
    ones), or all but ``drop``; ``never`` ones and unnamed ``request`` ones are left out."""
    if d.type != "complex":
        return copy.deepcopy(value)

    def one(item: Any) -> Any:
        if not isinstance(item, Mapping):
            return copy.deepcopy(item)
        out: dict[str, Any] = {}
        for k, v in item.items():
            sd = d.sub(k) if isinstance(k, str) else None
            low = str(k).lower()
            if sd is not None and sd.returned == "never":
                continue
            always = sd is not None and sd.returned == "always"
            if keep is not None and low not in keep and not always:
                continue
            if keep is None and sd is not None and sd.returned == "request":
                continue
            if drop is not None and low in drop and not always:
                continue
            out[k] = copy.deepcopy(v)
        return out

    if isinstance(value, list):
        items = [one(v) for v in value]
        items = [v for v in items if v != {}]
        return items if items else _SKIP
    picked = one(value)
    return _SKIP if picked == {} else picked


def sort_key(
    resource: Mapping[str, Any],
    sort_by: str,
    *,
    schemas: ResourceType | None = None,
) -> tuple[Any, ...]:
    """A key for ``sorted(resources, key=…)``: ``(0, rank, value)`` for a value, ``(1,)``
    when the resource has none. ``sort_by`` naming no attribute of the type →
    ``ScimError(400, invalidValue)`` (when ``schemas`` is given)."""
    rt = schemas or resource_type_of(resource)
    value: Any
    definition: AttrDef | None
    if rt is None:
        name, _, sub = sort_by.partition(".")
        value, definition = _get_ci(resource, name), None
        value = _pick(value)
        if sub:
            value = _get_ci(value, sub)
    else:
        try:
            ref = rt.locate(sort_by, strict=schemas is not None)
        except ScimError:
            raise ScimError(
                f"sortBy {sort_by!r} is not an attribute of {rt.name}", scim_type="invalidValue"
            ) from None
        container = _get_ci(resource, ref.schema) if ref.extension else resource
        value = _pick(_get_ci(container, ref.name))
        definition = ref.attr
        if ref.sub is not None:
            value, definition = _get_ci(value, ref.sub), ref.sub_attr
        elif definition is not None and definition.type == "complex":
            value, definition = _get_ci(value, "value"), definition.sub("value")
    return _key_of(value, definition)


def _pick(value: Any) -> Any:
    """A multi-valued attribute sorts by its primary value, else its first."""
    if not isinstance(value, list):
        return value
    for item in value:
        if isinstance(item, Mapping) and _get_ci(item, "primary") is True:
            return item
    return value[0] if value else None


def _key_of(value: Any, definition: AttrDef | None) -> tuple[Any, ...]:
    if value is None or value == "" or isinstance(value, list | Mapping):
        return (1,)
    if isinstance(value, bool):
        return (0, 0, int(value))
    if isinstance(value, int | float):
        return (0, 1, float(value))
    if definition is not None and definition.type == "dateTime":
        when = parse_datetime(value)
        if when is not None:
            return (0, 1, when.timestamp())
    text = str(value)
    return (0, 2, text if definition is not None and definition.case_exact else text.lower())


def _get_ci(container: Any, name: str) -> Any:
    if not isinstance(container, Mapping):
        return None
    if name in container:
        return container[name]
    low = name.lower()
    for k, v in container.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None

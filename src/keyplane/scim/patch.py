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
  have a value that would change; readOnly attributes in a path-less value (``id``,
  ``meta``, ``schemas``, ``groups``) are ignored as a PUT's are (Okta sends the ``id``);
* remove without a path → ``400 noTarget`` (RFC 7644 §3.5.2.2); a filtered replace or
  remove that matches no value → ``400 noTarget``; an add with a filter that matches no
  value and is a plain ``sub eq "x"`` creates that value (Entra ID's
  ``emails[type eq "work"].value``); remove on a required attribute → ``400 invalidValue``;
* a remove of ``members`` with a ``value`` list removes those members (Entra ID).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from keyplane.scim.errors import ScimError
from keyplane.scim.filter import And, Compare, Node, PatchPath, matches_value, parse_path
from keyplane.scim.schemas import PATCH_OP, AttrDef, ResourceType, check_value, is_present

__all__ = ["apply_patch", "patch_operations"]


def patch_operations(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``Operations`` of a PatchOp request body, checked: ``schemas`` must name
    ``urn:ietf:params:scim:api:messages:2.0:PatchOp`` and ``Operations`` be a non-empty
    list of objects with an ``op`` — else ``400 invalidSyntax``."""
    if not isinstance(body, Mapping):
        raise ScimError("the request body must be a JSON object", scim_type="invalidSyntax")
    urns = _get_ci(body, "schemas")
    if not isinstance(urns, list) or PATCH_OP.lower() not in {
        u.lower() for u in urns if isinstance(u, str)
    }:
        raise ScimError(f"schemas must be [{PATCH_OP!r}]", scim_type="invalidSyntax")
    ops = _get_ci(body, "Operations")
    if not isinstance(ops, list) or not ops:
        raise ScimError("Operations must be a non-empty list", scim_type="invalidSyntax")
    out: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping) or not isinstance(_get_ci(op, "op"), str):
            raise ScimError(
                f"Operations[{i}] must be an object with an op", scim_type="invalidSyntax"
            )
        out.append({str(k): v for k, v in op.items()})
    return out


def apply_patch(
    resource: Mapping[str, Any],
    operations: Sequence[Mapping[str, Any]],
    schemas: ResourceType,
) -> dict[str, Any]:
    """Apply ``operations`` in order to a copy of ``resource`` (all or nothing: the first
    failing operation raises :class:`~keyplane.scim.errors.ScimError` and nothing is
    returned). ``schemas`` is the resource's type (core schema + extensions)."""
    doc: dict[str, Any] = copy.deepcopy(dict(resource))
    for i, operation in enumerate(operations):
        try:
            _operation(doc, operation, schemas)
        except ScimError as exc:
            details = {**exc.details, "operation": i}
            raise ScimError(
                f"Operations[{i}]: {exc.message}",
                status=exc.status,
                scim_type=exc.scim_type,
                details=details,
            ) from None
    for urn, extension, d in schemas.attributes():
        if d.required and d.mutability != "readOnly":
            container = doc.get(urn) if extension else doc
            if (extension and container is None) or is_present(_get_ci(container, d.name)):
                continue
            raise ScimError(f"{d.name} is required", scim_type="invalidValue")
    present = [u for u, _ in schemas.extensions if u in doc]
    for u in list(present):
        if not is_present(doc[u]):
            del doc[u]
            present.remove(u)
    if "schemas" in doc or present:
        doc["schemas"] = [schemas.schema, *present]
    return doc


# ---------------------------------------------------------------------------- operations


def _operation(doc: dict[str, Any], operation: Mapping[str, Any], rt: ResourceType) -> None:
    if not isinstance(operation, Mapping):
        raise ScimError("an operation must be a JSON object", scim_type="invalidSyntax")
    raw_op = _get_ci(operation, "op")
    op = raw_op.lower() if isinstance(raw_op, str) else None
    if op not in ("add", "remove", "replace"):
        raise ScimError(
            f"op must be add, remove or replace, not {raw_op!r}", scim_type="invalidSyntax"
        )
    path = _get_ci(operation, "path")
    if path is not None and not isinstance(path, str):
        raise ScimError("path must be a string", scim_type="invalidPath")
    has_value = any(isinstance(k, str) and k.lower() == "value" for k in operation)
    value = _get_ci(operation, "value")
    if op != "remove" and not has_value:
        raise ScimError(f"{op} needs a value", scim_type="invalidValue")
    if path is None or not path.strip():
        if op == "remove":
            # RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails with HTTP
            # status code 400 and a "scimType" error code of "noTarget"."
            raise ScimError("remove needs a path", scim_type="noTarget")
        _pathless(doc, op, value, rt, schema_urn=None)
        return
    target = parse_path(path, resource_type=rt)
    if target.attr.attr == "":  # a bare schema URN
        urn = target.attr.urn or rt.schema
        if op == "remove":
            if urn == rt.schema:
                raise ScimError("the core schema cannot be removed", scim_type="mutability")
            doc.pop(urn, None)
            return
        _pathless(doc, op, value, rt, schema_urn=urn)
        return
    _apply(doc, op, target, value, rt, pathless=False)


def _pathless(
    doc: dict[str, Any], op: str, value: Any, rt: ResourceType, *, schema_urn: str | None
) -> None:
    """add/replace without a path (RFC 7644 §3.5.2.1, §3.5.2.3): ``value`` holds the
    attributes — keys may be attribute paths or an extension URN (Entra ID)."""
    if not isinstance(value, Mapping):
        raise ScimError(f"{op} without a path needs an object value", scim_type="invalidValue")
    for key, item in value.items():
        if not isinstance(key, str) or key.lower() == "schemas":
            continue
        urn = rt.locate_schema(key) if key.lower().startswith("urn:") else None
        if urn is not None and schema_urn is None:
            if urn == rt.schema:
                _pathless(doc, op, item, rt, schema_urn=None)
            else:
                _pathless(doc, op, item, rt, schema_urn=urn)
            continue
        text = f"{schema_urn}:{key}" if schema_urn and schema_urn != rt.schema else key
        try:
            target = parse_path(text, resource_type=rt)
            ref = rt.locate(_text(target), strict=True)
        except ScimError:
            continue  # an attribute this service does not define: ignored
        del ref
        _apply(doc, op, target, item, rt, pathless=True)


def _text(target: PatchPath) -> str:
    a = target.attr
    text = f"{a.urn}:{a.attr}" if a.urn else a.attr
    return f"{text}.{a.sub}" if a.sub else text


def _apply(
    doc: dict[str, Any],
    op: str,
    target: PatchPath,
    value: Any,
    rt: ResourceType,
    *,
    pathless: bool,
) -> None:
    ref = rt.locate(_text(target), strict=True)
    d = ref.attr
    assert d is not None  # strict locate
    if d.name == "schemas":
        if pathless:
            return
        raise ScimError("schemas is readOnly", scim_type="mutability")
    container: dict[str, Any]
    if ref.extension:
        found = _get_ci(doc, ref.schema)
        if not isinstance(found, dict):
            if op == "remove":
                return
            found = {}
            doc[ref.schema] = found
        container = found
    else:
        container = doc
    key = _key(container, d.name)

    if d.mutability == "writeOnly":
        return  # password: Keyplane never stores one (see keyplane.scim.schemas.clean_input)
    definition = ref.sub_attr if ref.sub is not None else d
    if target.sub is not None:
        definition = d.sub(target.sub)
        if definition is None:
            raise ScimError(f"{d.name} has no sub-attribute {target.sub}", scim_type="invalidPath")
    if d.mutability == "readOnly" or (definition and definition.mutability == "readOnly"):
        if pathless:
            # a path-less value is a partial resource: its readOnly attributes are ignored
            # as a PUT's are (RFC 7644 §3.5.1); Okta sends the id along
            return
        raise ScimError(f"{_text(target)} is readOnly", scim_type="mutability")

    if target.filter is not None:
        _apply_filtered(container, key, op, target, value, d)
    elif ref.sub is not None:
        _apply_sub(container, key, op, ref.sub, value, d)
    else:
        _apply_whole(container, key, op, value, d)
    if not is_present(container.get(key)):
        container.pop(key, None)


def _apply_whole(container: dict[str, Any], key: str, op: str, value: Any, d: AttrDef) -> None:
    current = container.get(key)
    if op == "remove":
        if d.mutability == "immutable" and is_present(current):
            raise ScimError(f"{d.name} is immutable", scim_type="mutability")
        if value is not None and d.multi_valued and isinstance(current, list):
            # Entra ID: {"op": "Remove", "path": "members", "value": [{"value": "id"}]}
            gone = check_value(value, d)
            container[key] = [v for v in current if not any(_same(v, g, d) for g in gone)]
            return
        container.pop(key, None)
        return
    if value is None:  # replace with null: unassigned (RFC 7643 §2.5)
        if d.mutability == "immutable" and is_present(current):
            raise ScimError(f"{d.name} is immutable", scim_type="mutability")
        container.pop(key, None)
        return
    new = check_value(value, d)
    if d.mutability == "immutable" and is_present(current) and not _equal(current, new):
        raise ScimError(f"{d.name} is immutable", scim_type="mutability")
    if d.multi_valued:
        if op == "replace" or not isinstance(current, list):
            items: list[Any] = []
        else:
            items = copy.deepcopy(current)
        for v in new:
            _add_value(items, v, d)
        container[key] = items
    elif d.type == "complex":
        merged = dict(current) if isinstance(current, Mapping) else {}
        merged.update(new)
        container[key] = merged
    else:
        container[key] = new


def _apply_sub(
    container: dict[str, Any], key: str, op: str, sub: str, value: Any, d: AttrDef
) -> None:
    sd = d.sub(sub)
    assert sd is not None
    current = container.get(key)
    if d.multi_valued:
        items = (
            [dict(v) for v in current if isinstance(v, Mapping)]
            if isinstance(current, list)
            else []
        )
        if op == "remove":
            for item in items:
                _check_immutable(item, sd)
                item.pop(sd.name, None)
            container[key] = [i for i in items if is_present(i)]
            return
        new = check_value(value, sd, where=f"{d.name}.{sd.name}")
        if not items:
            items = [{sd.name: new}]
        for item in items:
            _guard(sd, item.get(sd.name), new, d.name)
            item[sd.name] = new
        container[key] = items
        return
    obj = dict(current) if isinstance(current, Mapping) else {}
    if op == "remove":
        _check_immutable(obj, sd)
        obj.pop(sd.name, None)
    else:
        new = check_value(value, sd, where=f"{d.name}.{sd.name}")
        _guard(sd, obj.get(sd.name), new, d.name)
        obj[sd.name] = new
    container[key] = obj


def _apply_filtered(
    container: dict[str, Any],
    key: str,
    op: str,
    target: PatchPath,
    value: Any,
    d: AttrDef,
) -> None:
    if not d.multi_valued or d.type != "complex":
        raise ScimError(
            f"{d.name} is not a multi-valued complex attribute: no value filter applies",
            scim_type="invalidPath",
        )
    node = target.filter
    assert node is not None
    current = container.get(key)
    items = (
        [dict(v) for v in current if isinstance(v, Mapping)] if isinstance(current, list) else []
    )
    hits = [i for i, item in enumerate(items) if matches_value(node, item, d)]
    sd = d.sub(target.sub) if target.sub else None
    if not hits:
        seed = _seed(node, d) if op == "add" else None
        if seed is None:
            # RFC 7644 §3.5.2.3 (replace) and the brief's reading of §3.5.2.2 (remove)
            raise ScimError(f"{_text(target)}[…] matches no value", scim_type="noTarget")
        # Entra ID: add emails[type eq "work"].value when there is no work email yet
        items.append(seed)
        hits = [len(items) - 1]
    if op == "remove":
        if sd is None:
            # removing a whole value (a group member) is allowed even when its
            # sub-attributes are immutable: immutability is about changing one in place
            container[key] = [item for i, item in enumerate(items) if i not in hits]
            return
        for i in hits:
            _check_immutable(items[i], sd)
            items[i].pop(sd.name, None)
        container[key] = [item for item in items if is_present(item)]
        return
    if sd is not None:
        new = check_value(value, sd, where=f"{d.name}.{sd.name}")
        for i in hits:
            _guard(sd, items[i].get(sd.name), new, d.name)
            items[i][sd.name] = new
    else:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        new_obj = check_value(value, _single(d), where=d.name)
        for i in hits:
            for name, v in new_obj.items():
                sub_def = d.sub(name)
                if sub_def is not None:
                    _guard(sub_def, items[i].get(name), v, d.name)
                items[i][name] = v
    if any(items[i].get("primary") is True for i in hits):
        first = hits[0]
        for j, item in enumerate(items):
            if j != first and item.get("primary") is True:
                item["primary"] = False
    container[key] = items


def _seed(node: Node, d: AttrDef) -> dict[str, Any] | None:
    """The value a filter of ``sub eq "x"`` terms (joined by ``and``) describes."""
    if isinstance(node, And):
        left, right = _seed(node.left, d), _seed(node.right, d)
        return {**left, **right} if left is not None and right is not None else None
    if isinstance(node, Compare) and node.op == "eq" and node.path.sub is None:
        sd = d.sub(node.path.attr)
        if sd is not None and node.value is not None:
            return {sd.name: check_value(node.value, sd, where=f"{d.name}.{sd.name}")}
    return None


# ---------------------------------------------------------------------------- helpers


def _single(d: AttrDef) -> AttrDef:
    return dataclasses.replace(d, multi_valued=False)


def _add_value(items: list[Any], value: Any, d: AttrDef) -> None:
    """Append ``value`` unless an equal one is there (RFC 7644 §3.5.2.1: "no changes");
    a new ``primary`` value takes the flag from the others."""
    for i, existing in enumerate(items):
        if _same(existing, value, d):
            if isinstance(existing, dict) and isinstance(value, Mapping):
                items[i] = {**existing, **value}
                value = items[i]
            break
    else:
        items.append(value)
    if isinstance(value, Mapping) and value.get("primary") is True:
        for other in items:
            if other is not value and isinstance(other, dict) and other.get("primary") is True:
                other["primary"] = False


def _same(a: Any, b: Any, d: AttrDef) -> bool:
    """Two values of ``d`` name the same thing: equal, or (complex) the same ``value``
    (and ``type`` when both have one)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        va, vb = _get_ci(a, "value"), _get_ci(b, "value")
        if va is None or vb is None:
            return _equal(a, b)
        sd = d.sub("value")
        if isinstance(va, str) and isinstance(vb, str) and not (sd and sd.case_exact):
            va, vb = va.lower(), vb.lower()
        ta, tb = _get_ci(a, "type"), _get_ci(b, "type")
        return bool(va == vb) and (ta is None or tb is None or ta == tb)
    if isinstance(a, str) and isinstance(b, str) and not d.case_exact:
        return a.lower() == b.lower()
    return _equal(a, b)


def _equal(a: Any, b: Any) -> bool:
    return bool(a == b)


def _check_immutable(item: Mapping[str, Any], sd: AttrDef) -> None:
    if sd.mutability == "immutable" and is_present(item.get(sd.name)):
        raise ScimError(f"{sd.name} is immutable", scim_type="mutability")


def _guard(sd: AttrDef, old: Any, new: Any, parent: str) -> None:
    """An immutable sub-attribute may be set once, never changed (RFC 7643 §2.2)."""
    if sd.mutability == "immutable" and is_present(old) and not _equal(old, new):
        raise ScimError(f"{parent}.{sd.name} is immutable", scim_type="mutability")


def _key(container: Mapping[str, Any], name: str) -> str:
    """The key ``container`` stores ``name`` under (case-insensitive), else ``name``."""
    if name in container:
        return name
    low = name.lower()
    for k in container:
        if k.lower() == low:
            return k
    return name


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

"""SCIM schemas at work: resource types, discovery documents, attribute look-up and input
checks (RFC 7643). The definitions themselves — the common attributes, User, Group,
EnterpriseUser and the draft Agent schema — are in :mod:`keyplane.scim.definitions`; every
public name there is re-exported here.

* :func:`resource_types` (User ``/Users`` with the EnterpriseUser extension, Group
  ``/Groups``, Agent ``/Agents``, §6), :func:`all_schemas` / :func:`get_schema` (§7) and
  :func:`service_provider_config` (§5);
* the attribute look-up every other module uses: :func:`attribute` and
  :meth:`ResourceType.locate` — attribute names are case-insensitive (RFC 7643 §2.1), the
  definition says whether values are (``caseExact``);
* :func:`clean_input` — a POST/PUT body made ready to store: canonical attribute names,
  readOnly attributes dropped, booleans sent as strings accepted (Entra ID does),
  required/immutable/type checks as :class:`~keyplane.scim.errors.ScimError`;
  :func:`check_value` the same for one value (PATCH uses it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from keyplane.scim.definitions import (
    AGENT,
    COMMON_ATTRIBUTES,
    ENTERPRISE_USER,
    GROUP,
    LIST_RESPONSE,
    MAX_RESULTS,
    PATCH_OP,
    RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
    SCHEMAS_ATTRIBUTE,
    SEARCH_REQUEST,
    SERVICE_PROVIDER_CONFIG,
    USER,
    AttrDef,
    AttrRef,
    AttrType,
    Mutability,
    Returned,
    SchemaDef,
    Uniqueness,
)
from keyplane.scim.definitions import SCHEMAS as _SCHEMAS
from keyplane.scim.errors import ScimError

__all__ = [
    "AGENT",
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER",
    "GROUP",
    "LIST_RESPONSE",
    "MAX_RESULTS",
    "PATCH_OP",
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMAS_ATTRIBUTE",
    "SCHEMA_SCHEMA",
    "SEARCH_REQUEST",
    "SERVICE_PROVIDER_CONFIG",
    "USER",
    "AttrDef",
    "AttrRef",
    "AttrType",
    "Mutability",
    "ResourceType",
    "Returned",
    "SchemaDef",
    "Uniqueness",
    "all_schemas",
    "attribute",
    "check_value",
    "clean_input",
    "get_schema",
    "is_present",
    "list_response",
    "parse_datetime",
    "resource_type",
    "resource_type_of",
    "resource_types",
    "service_provider_config",
]


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 §6): a core schema plus extensions, at an endpoint."""

    name: str
    endpoint: str
    description: str
    schema: str
    #: ``(extension schema URN, required)`` pairs
    extensions: tuple[tuple[str, bool], ...] = ()

    @property
    def schema_urns(self) -> tuple[str, ...]:
        """The core schema's URN, then the extensions'."""
        return (self.schema, *(urn for urn, _ in self.extensions))

    def core(self) -> SchemaDef:
        return _SCHEMAS[self.schema]

    def extension_schemas(self) -> tuple[SchemaDef, ...]:
        return tuple(_SCHEMAS[urn] for urn, _ in self.extensions)

    def to_scim(self, base: str = "") -> dict[str, Any]:
        """The ResourceType resource served at ``<base>/ResourceTypes/<name>``."""
        out: dict[str, Any] = {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema,
        }
        if self.extensions:
            out["schemaExtensions"] = [
                {"schema": urn, "required": req} for urn, req in self.extensions
            ]
        out["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{base}/ResourceTypes/{self.name}",
        }
        return out

    def locate(self, path: str, *, strict: bool = True) -> AttrRef:
        """Resolve an attribute path — ``userName``, ``name.givenName``, ``emails.value``,
        ``meta.lastModified``, ``urn:…:enterprise:2.0:User:manager.value``,
        ``urn:…:core:2.0:User:userName`` — to an :class:`AttrRef`.

        Attribute names are case-insensitive and come back canonical. Unknown attributes
        raise ``ScimError(400, invalidPath)`` when ``strict``; otherwise they resolve with
        ``attr=None`` (a filter on an undefined attribute then matches nothing).
        """
        # filters and sorts resolve the same few paths for every resource of a list
        return _locate(self, path, strict)

    def _locate(self, path: str, strict: bool) -> AttrRef:
        text = path.strip()
        urn: str | None = None
        rest = text
        if text.lower().startswith("urn:"):
            low = text.lower()
            for u in sorted(self.schema_urns, key=len, reverse=True):
                if low.startswith(u.lower() + ":"):
                    urn, rest = u, text[len(u) + 1 :]
                    break
            else:
                if strict:
                    raise ScimError(
                        f"{text!r} names no attribute of a schema of {self.name}",
                        scim_type="invalidPath",
                    )
                head, _, rest = text.rpartition(":")
                name, _, sub_text = rest.partition(".")
                return AttrRef(head, True, name, sub_text or None, None, None)
        name, dot, sub_name = rest.partition(".")
        if not _NAME.match(name) or (dot and not _NAME.match(sub_name)):
            if strict:
                raise ScimError(f"{text!r} is not an attribute path", scim_type="invalidPath")
            return AttrRef(urn or self.schema, False, name, sub_name or None, None, None)
        schema, extension, attr = self._find(urn, name)
        if attr is None:
            if strict:
                raise ScimError(
                    f"{text!r} is not an attribute of {self.name}", scim_type="invalidPath"
                )
            return AttrRef(schema, extension, name, sub_name or None, None, None)
        if not dot:
            return AttrRef(schema, extension, attr.name, None, attr, None)
        sub_def = attr.sub(sub_name)
        if sub_def is None:
            if strict:
                raise ScimError(
                    f"{text!r} is not an attribute of {self.name}", scim_type="invalidPath"
                )
            return AttrRef(schema, extension, attr.name, sub_name, attr, None)
        return AttrRef(schema, extension, attr.name, sub_def.name, attr, sub_def)

    def _find(self, urn: str | None, name: str) -> tuple[str, bool, AttrDef | None]:
        low = name.lower()
        if urn is None or urn == self.schema:
            if low == "schemas":
                return self.schema, False, SCHEMAS_ATTRIBUTE
            for a in COMMON_ATTRIBUTES:
                if a.name.lower() == low:
                    return self.schema, False, a
            found = self.core().get(name)
            if found is not None or urn is not None:
                return self.schema, False, found
            # RFC 7644 §3.10 qualifies extension attributes; accept an unqualified name
            # when exactly one extension defines it (and the core does not)
            hits: list[tuple[str, AttrDef]] = []
            for ext in self.extension_schemas():
                if (hit := ext.get(name)) is not None:
                    hits.append((ext.id, hit))
            if len(hits) == 1:
                return hits[0][0], True, hits[0][1]
            return self.schema, False, None
        return urn, True, _SCHEMAS[urn].get(name)

    def locate_schema(self, urn: str) -> str | None:
        """The canonical URN of this type's schema or extension ``urn`` (case-insensitive)."""
        low = urn.lower()
        for u in self.schema_urns:
            if u.lower() == low:
                return u
        return None

    def attributes(self) -> Iterable[tuple[str, bool, AttrDef]]:
        """Every top-level attribute: ``(schema URN, in an extension, definition)``,
        the common ones (id, externalId, meta) first."""
        for a in COMMON_ATTRIBUTES:
            yield self.schema, False, a
        for a in self.core().attributes:
            yield self.schema, False, a
        for ext in self.extension_schemas():
            for a in ext.attributes:
                yield ext.id, True, a


@functools.lru_cache(maxsize=1024)
def _locate(rt: ResourceType, path: str, strict: bool) -> AttrRef:
    return rt._locate(path, strict)


#: ATTRNAME (RFC 7644 §3.4.2.2 ABNF), and ``$ref``
_NAME: Final = re.compile(r"^\$?[A-Za-z][A-Za-z0-9_-]*$")


_RESOURCE_TYPES: Final[tuple[ResourceType, ...]] = (
    ResourceType("User", "/Users", "User Account", USER, ((ENTERPRISE_USER, False),)),
    ResourceType("Group", "/Groups", "Group", GROUP),
    ResourceType("Agent", "/Agents", "AI agent (draft SCIM agent schema)", AGENT),
)


def all_schemas() -> list[SchemaDef]:
    """User, Group, EnterpriseUser and Agent, in that order."""
    return list(_SCHEMAS.values())


def get_schema(urn: str) -> SchemaDef | None:
    """The schema whose URN is ``urn`` (case-insensitive), or ``None``."""
    low = urn.lower()
    for s in _SCHEMAS.values():
        if s.id.lower() == low:
            return s
    return None


def resource_types() -> list[ResourceType]:
    """User (``/Users``, with the EnterpriseUser extension), Group (``/Groups``), Agent
    (``/Agents``)."""
    return list(_RESOURCE_TYPES)


def resource_type(name: str) -> ResourceType:
    """The resource type called ``name`` — ``User``, ``Group``, ``Agent`` — or whose
    endpoint is ``name`` (``Users``, ``/Users``); case-insensitive. ``KeyError`` if none."""
    low = name.lower().lstrip("/")
    for rt in _RESOURCE_TYPES:
        if low in (rt.name.lower(), rt.endpoint.lower().lstrip("/")):
            return rt
    raise KeyError(name)


def resource_type_of(resource: Mapping[str, Any]) -> ResourceType | None:
    """The resource type whose core schema a resource's ``schemas`` (or
    ``meta.resourceType``) names, or ``None``."""
    urns = resource.get("schemas")
    if isinstance(urns, list):
        lows = {u.lower() for u in urns if isinstance(u, str)}
        for rt in _RESOURCE_TYPES:
            if rt.schema.lower() in lows:
                return rt
    meta = resource.get("meta")
    if isinstance(meta, Mapping) and isinstance(meta.get("resourceType"), str):
        try:
            return resource_type(meta["resourceType"])
        except KeyError:
            return None
    return None


def attribute(schema_urn: str, path: str) -> AttrDef | None:
    """The definition of ``path`` (``userName``, ``name.givenName``, ``id``, ``meta.version``)
    in the schema ``schema_urn`` — common attributes included, names case-insensitive — or
    ``None`` when the schema does not define it."""
    schema = get_schema(schema_urn)
    if schema is None:
        return None
    name, dot, sub = path.strip().partition(".")
    found: AttrDef | None = None
    if schema.id != ENTERPRISE_USER:
        for a in COMMON_ATTRIBUTES:
            if a.name.lower() == name.lower():
                found = a
    if found is None:
        found = schema.get(name)
    if found is None or not dot:
        return found
    return found.sub(sub)


def service_provider_config(base: str = "") -> dict[str, Any]:
    """The ServiceProviderConfig resource (RFC 7643 §5): PATCH, filter (maxResults 200),
    sort and ETag supported; bulk and changePassword not; OAuth bearer tokens."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": (
                    "A Keyplane API key as a bearer token (Authorization: Bearer kp_…), "
                    "created with the role provisioner:<store>"
                ),
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def list_response(
    resources: Sequence[Mapping[str, Any]],
    *,
    total_results: int,
    start_index: int = 1,
) -> dict[str, Any]:
    """A ListResponse message (RFC 7644 §3.4.2): ``totalResults``, ``itemsPerPage`` (the
    page's length), ``startIndex`` and ``Resources``."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total_results,
        "itemsPerPage": len(resources),
        "startIndex": start_index,
        "Resources": [dict(r) for r in resources],
    }


def clean_input(
    body: Mapping[str, Any],
    resource_type: ResourceType,
    *,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A POST (``existing=None``) or PUT body made ready to store, as a NEW dict.

    * attribute and sub-attribute names made canonical (``USERNAME`` → ``userName``),
      extension attributes kept under their URN key; unknown attributes dropped;
    * readOnly attributes (``id``, ``meta``, ``groups``, ``manager.displayName``) dropped
      (RFC 7644 §3.3: "SHALL be ignored");
    * values checked against their type — booleans sent as the strings ``"True"`` /
      ``"False"`` become booleans, anything else ill-typed is ``400 invalidValue``;
    * required attributes missing → ``400 invalidValue``;
    * on a replace, an immutable attribute whose value differs from ``existing``'s →
      ``400 mutability`` (RFC 7644 §3.5.1);
    * ``schemas`` set to the core schema plus the extensions present.
    """
    if not isinstance(body, Mapping):
        raise ScimError("the request body must be a JSON object", scim_type="invalidSyntax")
    rt = resource_type
    out: dict[str, Any] = {}

    def put(ref: AttrRef, value: Any) -> None:
        d = ref.attr
        # readOnly: ignored on input (RFC 7644 §3.3); writeOnly (password): Keyplane
        # authenticates no one with SCIM passwords, so it never stores one
        if d is None or d.mutability in ("readOnly", "writeOnly") or value is None:
            return
        v = check_value(value, d, where=ref.name)
        if not is_present(v):  # "" / [] / {}: unassigned (RFC 7643 §2.5)
            return
        if ref.extension:
            out.setdefault(ref.schema, {})[d.name] = v
        else:
            out[d.name] = v

    for key, value in body.items():
        if not isinstance(key, str):
            continue
        if key.lower() == "schemas":
            _check_schemas(value, rt)
            continue
        urn = rt.locate_schema(key) if key.lower().startswith("urn:") else None
        if urn is not None:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ScimError(f"{urn} must be a JSON object", scim_type="invalidSyntax")
            for k2, v2 in value.items():
                ref = rt.locate(f"{urn}:{k2}", strict=False)
                if ref.sub is None:
                    put(ref, v2)
            continue
        ref = rt.locate(key, strict=False)
        if ref.sub is None:
            put(ref, value)

    for urn, extension, d in rt.attributes():
        if not d.required or d.mutability in ("readOnly", "writeOnly"):
            continue
        container = out.get(urn) if extension else out
        if extension and container is None and not dict(rt.extensions).get(urn, False):
            continue
        if not isinstance(container, Mapping) or not is_present(container.get(d.name)):
            raise ScimError(f"{d.name} is required", scim_type="invalidValue")
    if existing is not None:
        for urn, extension, d in rt.attributes():
            if d.mutability != "immutable":
                continue
            old = _get_ci(existing.get(urn) if extension else existing, d.name)
            new = _get_ci(out.get(urn) if extension else out, d.name)
            if is_present(old) and new != old:
                raise ScimError(f"{d.name} is immutable", scim_type="mutability")
    for urn, required in rt.extensions:
        if urn in out and not out[urn]:
            del out[urn]
        if required and urn not in out:
            raise ScimError(f"the extension {urn} is required", scim_type="invalidValue")
    out["schemas"] = [rt.schema, *(u for u, _ in rt.extensions if u in out)]
    return out


def _check_schemas(value: Any, rt: ResourceType) -> None:
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise ScimError("schemas must be a list of URNs", scim_type="invalidSyntax")
    if rt.schema.lower() not in {u.lower() for u in value}:
        raise ScimError(f"schemas must include {rt.schema}", scim_type="invalidValue")


def _get_ci(container: Any, name: str) -> Any:
    """``container[name]`` with a case-insensitive key (RFC 7643 §2.1), or ``None``."""
    if not isinstance(container, Mapping):
        return None
    if name in container:
        return container[name]
    low = name.lower()
    for k, v in container.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def is_present(value: Any) -> bool:
    """RFC 7643 §2.5: null, ``""``, ``[]`` and ``{}`` (or a complex value whose
    sub-attributes are all unassigned) are unassigned."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple):
        return len(value) > 0 and (
            not isinstance(value, list | tuple) or any(map(is_present, value))
        )
    if isinstance(value, Mapping):
        return any(is_present(v) for v in value.values())
    return True


def parse_datetime(text: Any) -> datetime | None:
    """An RFC 3339 / xsd:dateTime value as an aware datetime (naive ones are UTC), or
    ``None`` when ``text`` is not one."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_value(value: Any, definition: AttrDef, *, where: str = "") -> Any:
    """``value`` checked against ``definition`` and normalised (a NEW value): canonical
    sub-attribute names, unknown and readOnly sub-attributes dropped, booleans sent as
    ``"True"``/``"False"`` made booleans, a single value for a multi-valued attribute made
    a list, a bare string for a complex attribute with a ``value`` its ``{"value": …}``
    (Entra ID's manager); ``400 invalidValue`` when it does not fit (or more than one value is
    ``primary``)."""
    where = where or definition.name
    if definition.multi_valued:
        items = value if isinstance(value, list) else [value]
        out = [_check_single(v, definition, where) for v in items if v is not None]
        if sum(1 for v in out if isinstance(v, Mapping) and v.get("primary") is True) > 1:
            raise ScimError(
                f"at most one value of {where} may be primary", scim_type="invalidValue"
            )
        return out
    if isinstance(value, list):
        raise ScimError(f"{where} is single-valued", scim_type="invalidValue")
    return _check_single(value, definition, where)


def _check_single(value: Any, d: AttrDef, where: str) -> Any:
    if d.type != "complex":
        return _check_scalar(value, d, where)
    if isinstance(value, str) and d.sub("value") is not None:
        # Entra ID sets the enterprise manager as a bare id: {"value": id}
        value = {"value": value}
    if not isinstance(value, Mapping):
        raise ScimError(f"{where} must be a JSON object", scim_type="invalidValue")
    out: dict[str, Any] = {}
    for k, v in value.items():
        sd = d.sub(k) if isinstance(k, str) else None
        if sd is None or sd.mutability == "readOnly" or v is None:
            continue
        out[sd.name] = _check_scalar(v, sd, f"{where}.{sd.name}")
    if d.sub("$ref") is not None and d.sub("value") is not None:
        # a reference given by its URI alone names its id too (the URI's last segment)
        ref = out.get("$ref")
        if "value" not in out and isinstance(ref, str) and ref.rstrip("/"):
            out["value"] = ref.rstrip("/").rsplit("/", 1)[-1]
    for sd in d.sub_attributes:
        if not sd.required or is_present(out.get(sd.name)):
            continue
        if sd.name == "$ref" and is_present(out.get("value")):
            continue  # the service provider computes $ref from the value on output
        raise ScimError(f"{where}.{sd.name} is required", scim_type="invalidValue")
    return out


def _check_scalar(value: Any, d: AttrDef, where: str) -> Any:
    if d.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"  # Entra ID sends "True" / "False"
    elif d.type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif d.type == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif d.type == "dateTime":
        if parse_datetime(value) is not None:
            return value
    elif isinstance(value, str):  # string, reference, binary
        return value
    raise ScimError(f"{where} must be a {d.type}", scim_type="invalidValue")

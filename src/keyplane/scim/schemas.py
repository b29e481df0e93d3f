"""SCIM schemas, resource types and the service provider configuration (RFC 7643).

* the common attributes ``id``, ``externalId`` and ``meta`` (RFC 7643 §3.1), part of every
  resource but not of any schema document;
* the User (§4.1) and Group (§4.2) core schemas and the EnterpriseUser extension (§4.3), as
  RFC 7643 §8.7.1 represents them;
* the draft Agent schema (``urn:ietf:params:scim:schemas:core:2.0:Agent``, after
  draft-abbey-scim-agent-extension and draft-wahl-scim-agent-schema): an AI agent with a
  required ``displayName`` and its ``owners`` (SCIM User ids) — Keyplane maps it onto an
  ``agent`` identity;
* :func:`resource_types` (User ``/Users``, Group ``/Groups``, Agent ``/Agents``, §6) and
  :func:`service_provider_config` (§5);
* the attribute look-up every other module uses: :func:`attribute` and
  :meth:`ResourceType.locate` — attribute names are case-insensitive (RFC 7643 §2.1), the
  definition says whether values are (``caseExact``);
* :func:`clean_input` — a POST/PUT body made ready to store: canonical attribute names,
  readOnly attributes dropped, booleans sent as strings accepted (Entra ID does),
  required/immutable/type checks as :class:`~keyplane.scim.errors.ScimError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from keyplane.scim.errors import ScimError

__all__ = [
    "AGENT",
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER",
    "GROUP",
    "LIST_RESPONSE",
    "PATCH_OP",
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMAS_ATTRIBUTE",
    "SCHEMA_SCHEMA",
    "SEARCH_REQUEST",
    "SERVICE_PROVIDER_CONFIG",
    "USER",
    "AttrDef",
    "AttrRef",
    "ResourceType",
    "SchemaDef",
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

USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
AGENT: Final = "urn:ietf:params:scim:schemas:core:2.0:Agent"
ENTERPRISE_USER: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SCHEMA_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SERVICE_PROVIDER_CONFIG: Final = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
LIST_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

#: the page size cap announced in ServiceProviderConfig (``filter.maxResults``)
MAX_RESULTS: Final = 200

AttrType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"
]
Mutability = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
Returned = Literal["always", "never", "default", "request"]
Uniqueness = Literal["none", "server", "global"]


@dataclass(frozen=True, slots=True)
class AttrDef:
    """One attribute definition (RFC 7643 §7 "attributes" characteristics)."""

    name: str
    type: AttrType = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = "readWrite"
    returned: Returned = "default"
    uniqueness: Uniqueness = "none"
    description: str = ""
    sub_attributes: tuple[AttrDef, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()

    def sub(self, name: str) -> AttrDef | None:
        """The sub-attribute called ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for s in self.sub_attributes:
            if s.name.lower() == low:
                return s
        return None

    def to_scim(self) -> dict[str, Any]:
        """The attribute as RFC 7643 §7 represents it in a Schema resource."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
        }
        if self.type == "complex":
            out["subAttributes"] = [s.to_scim() for s in self.sub_attributes]
        else:
            out["caseExact"] = self.case_exact
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.type == "reference":
            out["referenceTypes"] = list(self.reference_types)
        out["mutability"] = self.mutability
        out["returned"] = self.returned
        out["uniqueness"] = self.uniqueness
        return out


@dataclass(frozen=True, slots=True)
class SchemaDef:
    """A schema (RFC 7643 §7): its URN ``id``, ``name``, ``description`` and attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[AttrDef, ...]

    def get(self, name: str) -> AttrDef | None:
        """The top-level attribute called ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for a in self.attributes:
            if a.name.lower() == low:
                return a
        return None

    def to_scim(self, base: str = "") -> dict[str, Any]:
        """The Schema resource served at ``<base>/Schemas/<id>`` (RFC 7643 §7, §8.7.1)."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{self.id}"},
        }


@dataclass(frozen=True, slots=True)
class AttrRef:
    """Where an attribute path points in a resource (from :meth:`ResourceType.locate`).

    ``schema`` is the URN of the schema that defines it; ``extension`` is ``True`` when its
    values live under that URN's key in the resource (``resource[schema][name]``) rather
    than at the top level; ``name`` and ``sub`` are the canonical attribute and optional
    sub-attribute names; ``attr`` / ``sub_attr`` their definitions (``None`` when the
    schema does not define them — :meth:`ResourceType.locate` with ``strict=False``).
    """

    schema: str
    extension: bool
    name: str
    sub: str | None
    attr: AttrDef | None
    sub_attr: AttrDef | None

    @property
    def definition(self) -> AttrDef | None:
        """The definition of what the path names: the sub-attribute's, else the attribute's."""
        return self.sub_attr if self.sub is not None else self.attr

    @property
    def case_exact(self) -> bool:
        d = self.definition
        return d.case_exact if d is not None else False


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


# ---------------------------------------------------------------------------- helpers


def _s(
    name: str,
    description: str = "",
    *,
    type: AttrType = "string",
    required: bool = False,
    case_exact: bool | None = None,
    mutability: Mutability = "readWrite",
    returned: Returned = "default",
    uniqueness: Uniqueness = "none",
    canonical: Sequence[str] = (),
    refs: Sequence[str] = (),
    multi: bool = False,
) -> AttrDef:
    if case_exact is None:  # URIs and binary values are case-exact (RFC 7643 §2.3.6, §2.3.7)
        case_exact = type in ("reference", "binary")
    return AttrDef(
        name=name,
        type=type,
        multi_valued=multi,
        required=required,
        case_exact=case_exact,
        mutability=mutability,
        returned=returned,
        uniqueness=uniqueness,
        description=description,
        canonical_values=tuple(canonical),
        reference_types=tuple(refs),
    )


def _c(
    name: str,
    description: str,
    subs: Sequence[AttrDef],
    *,
    multi: bool = False,
    required: bool = False,
    mutability: Mutability = "readWrite",
    returned: Returned = "default",
) -> AttrDef:
    return AttrDef(
        name=name,
        type="complex",
        multi_valued=multi,
        required=required,
        mutability=mutability,
        returned=returned,
        description=description,
        sub_attributes=tuple(subs),
    )


def _multi(
    name: str,
    description: str,
    *,
    value_type: AttrType = "string",
    types: Sequence[str] = (),
    refs: Sequence[str] = (),
) -> AttrDef:
    """The usual multi-valued complex shape: value, display, type, primary (RFC 7643 §2.4)."""
    return _c(
        name,
        description,
        [
            _s("value", f"The value of the {name} attribute.", type=value_type, refs=refs),
            _s("display", "A human-readable name, primarily used for display purposes."),
            _s("type", "A label indicating the attribute's function.", canonical=types),
            _s("primary", "The primary or preferred value.", type="boolean"),
        ],
        multi=True,
    )


#: ATTRNAME (RFC 7644 §3.4.2.2 ABNF), and ``$ref``
_NAME: Final = re.compile(r"^\$?[A-Za-z][A-Za-z0-9_-]*$")

#: ``schemas`` (RFC 7643 §3): the URNs a resource carries; filterable, always returned
SCHEMAS_ATTRIBUTE: Final = AttrDef(
    name="schemas",
    type="reference",
    multi_valued=True,
    required=True,
    mutability="readOnly",
    returned="always",
    description="The schemas of the resource.",
    reference_types=("uri",),
)

#: RFC 7643 §3.1: in every resource, in no schema document
COMMON_ATTRIBUTES: Final[tuple[AttrDef, ...]] = (
    _s(
        "id",
        "A unique identifier for the resource, assigned by the service provider.",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
    ),
    _s(
        "externalId",
        "An identifier for the resource as defined by the provisioning client.",
        case_exact=True,
    ),
    _c(
        "meta",
        "Resource metadata.",
        [
            _s(
                "resourceType",
                "The name of the resource type.",
                case_exact=True,
                mutability="readOnly",
            ),
            _s("created", "When the resource was added.", type="dateTime", mutability="readOnly"),
            _s(
                "lastModified",
                "When the resource was last changed.",
                type="dateTime",
                mutability="readOnly",
            ),
            _s(
                "location",
                "The URI of the resource.",
                type="reference",
                refs=("uri",),
                case_exact=True,
                mutability="readOnly",
            ),
            _s(
                "version",
                "The version (ETag) of the resource.",
                case_exact=True,
                mutability="readOnly",
            ),
        ],
        mutability="readOnly",
    ),
)

_USER_SCHEMA = SchemaDef(
    id=USER,
    name="User",
    description="User Account",
    attributes=(
        _s(
            "userName",
            "Unique identifier for the User, typically used by the user to directly "
            "authenticate to the service provider.",
            required=True,
            uniqueness="server",
        ),
        _c(
            "name",
            "The components of the user's real name.",
            [
                _s("formatted", "The full name, formatted for display."),
                _s("familyName", "The family name of the User."),
                _s("givenName", "The given name of the User."),
                _s("middleName", "The middle name(s) of the User."),
                _s("honorificPrefix", "The honorific prefix(es) of the User."),
                _s("honorificSuffix", "The honorific suffix(es) of the User."),
            ],
        ),
        _s("displayName", "The name of the User, suitable for display to end-users."),
        _s("nickName", "The casual way to address the user in real life."),
        _s(
            "profileUrl",
            "A fully qualified URL pointing to a page representing the User's online profile.",
            type="reference",
            refs=("external",),
        ),
        _s("title", 'The user\'s title, such as "Vice President".'),
        _s("userType", "Used to identify the relationship between the organization and the user."),
        _s("preferredLanguage", "The User's preferred written or spoken language."),
        _s("locale", "The User's default location for localizing output."),
        _s("timezone", "The User's time zone in the 'Olson' time zone database format."),
        _s("active", "The User's administrative status.", type="boolean"),
        _s(
            "password",
            "The User's cleartext password.",
            case_exact=True,
            mutability="writeOnly",
            returned="never",
        ),
        _multi("emails", "Email addresses for the user.", types=("work", "home", "other")),
        _multi(
            "phoneNumbers",
            "Phone numbers for the User.",
            types=("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _multi(
            "ims",
            "Instant messaging addresses for the User.",
            types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi(
            "photos",
            "URLs of photos of the User.",
            value_type="reference",
            types=("photo", "thumbnail"),
            refs=("external",),
        ),
        _c(
            "addresses",
            "A physical mailing address for this User.",
            [
                _s("formatted", "The full mailing address, formatted for display."),
                _s("streetAddress", "The full street address component."),
                _s("locality", "The city or locality component."),
                _s("region", "The state or region component."),
                _s("postalCode", "The zip code or postal code component."),
                _s("country", "The country name component."),
                _s(
                    "type",
                    "A label indicating the attribute's function.",
                    canonical=("work", "home", "other"),
                ),
                _s("primary", "The primary mailing address.", type="boolean"),
            ],
            multi=True,
        ),
        _c(
            "groups",
            "A list of groups to which the user belongs.",
            [
                _s(
                    "value",
                    "The identifier of the User's group.",
                    case_exact=True,
                    mutability="readOnly",
                ),
                _s(
                    "$ref",
                    "The URI of the corresponding Group resource.",
                    type="reference",
                    refs=("User", "Group"),
                    mutability="readOnly",
                ),
                _s("display", "A human-readable name.", mutability="readOnly"),
                _s(
                    "type",
                    "Direct or indirect membership.",
                    canonical=("direct", "indirect"),
                    mutability="readOnly",
                ),
            ],
            multi=True,
            mutability="readOnly",
        ),
        _multi("entitlements", "A list of entitlements for the User."),
        _multi("roles", "A list of roles for the User."),
        _multi(
            "x509Certificates", "A list of certificates issued to the User.", value_type="binary"
        ),
    ),
)

_GROUP_SCHEMA = SchemaDef(
    id=GROUP,
    name="Group",
    description="Group",
    attributes=(
        _s("displayName", "A human-readable name for the Group.", required=True),
        _c(
            "members",
            "A list of members of the Group.",
            [
                _s(
                    "value",
                    "Identifier of the member of this Group.",
                    case_exact=True,
                    mutability="immutable",
                ),
                _s(
                    "$ref",
                    "The URI of the member resource.",
                    type="reference",
                    refs=("User", "Group"),
                    mutability="immutable",
                ),
                _s(
                    "type",
                    "The type of the member.",
                    canonical=("User", "Group"),
                    mutability="immutable",
                ),
                _s("display", "A human-readable name of the member."),
            ],
            multi=True,
        ),
    ),
)

_ENTERPRISE_SCHEMA = SchemaDef(
    id=ENTERPRISE_USER,
    name="EnterpriseUser",
    description="Enterprise User",
    attributes=(
        _s("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
        _s("costCenter", "Identifies the name of a cost center."),
        _s("organization", "Identifies the name of an organization."),
        _s("division", "Identifies the name of a division."),
        _s("department", "Identifies the name of a department."),
        _c(
            "manager",
            "The User's manager.",
            [
                _s(
                    "value",
                    "The id of the SCIM resource representing the User's manager.",
                    case_exact=True,
                ),
                _s(
                    "$ref",
                    "The URI of the SCIM resource representing the User's manager.",
                    type="reference",
                    refs=("User",),
                ),
                _s("displayName", "The displayName of the User's manager.", mutability="readOnly"),
            ],
        ),
    ),
)

_AGENT_SCHEMA = SchemaDef(
    id=AGENT,
    name="Agent",
    description="AI agent (draft SCIM agent schema): a non-human identity with owners",
    attributes=(
        _s("displayName", "The name of the agent, suitable for display.", required=True),
        _s("agentType", "The kind of agent (e.g. assistant, autonomous, workflow)."),
        _s("description", "What the agent is for."),
        _s("active", "The agent's administrative status.", type="boolean"),
        _c(
            "owners",
            "The users accountable for the agent (at least one).",
            [
                _s("value", "The id of the owning User.", required=True, case_exact=True),
                _s(
                    "$ref",
                    "The URI of the owning User (the service provider fills it from value "
                    "when a client sends only the value).",
                    type="reference",
                    refs=("User",),
                    required=True,
                ),
                _s("display", "A human-readable name of the owner."),
                _s("type", "The type of the owner.", canonical=("User",)),
            ],
            multi=True,
            # Keyplane: a non-human identity always has an owner
            required=True,
        ),
    ),
)

_SCHEMAS: Final[dict[str, SchemaDef]] = {
    s.id: s for s in (_USER_SCHEMA, _GROUP_SCHEMA, _ENTERPRISE_SCHEMA, _AGENT_SCHEMA)
}

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

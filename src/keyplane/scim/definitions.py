"""The SCIM schema definitions (RFC 7643): attribute characteristics (§2, §7) and the
schemas Keyplane serves — the common attributes (§3.1), User (§4.1), Group (§4.2), the
EnterpriseUser extension (§4.3), as §8.7.1 represents them, and the draft Agent schema
(``urn:ietf:params:scim:schemas:core:2.0:Agent``, after draft-abbey-scim-agent-extension
and draft-wahl-scim-agent-schema).

Data only: :mod:`keyplane.scim.schemas` (which re-exports every public name here) resolves
paths against it, serves it and checks resources with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "AGENT",
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER",
    "GROUP",
    "LIST_RESPONSE",
    "MAX_RESULTS",
    "PATCH_OP",
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMAS",
    "SCHEMAS_ATTRIBUTE",
    "SCHEMA_SCHEMA",
    "SEARCH_REQUEST",
    "SERVICE_PROVIDER_CONFIG",
    "USER",
    "AttrDef",
    "AttrRef",
    "AttrType",
    "Mutability",
    "Returned",
    "SchemaDef",
    "Uniqueness",
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

#: the schemas served, by URN
SCHEMAS: Final[dict[str, SchemaDef]] = {
    s.id: s for s in (_USER_SCHEMA, _GROUP_SCHEMA, _ENTERPRISE_SCHEMA, _AGENT_SCHEMA)
}

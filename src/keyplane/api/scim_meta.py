"""The schemas of SCIM's own discovery resources (RFC 7643 §8.7.2), served by ``/Schemas``.

ServiceProviderConfig (§5), ResourceType (§6) and Schema (§7) describe themselves like any
resource. The ``name`` of each is the resource's name (``ServiceProviderConfig``,
``ResourceType``, ``Schema``), which is how clients recognise them.
"""

from __future__ import annotations

from typing import Any, Final

from keyplane.scim.schemas import (
    RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
    SERVICE_PROVIDER_CONFIG,
    AttrDef,
    AttrType,
)

__all__ = ["META_SCHEMAS"]


def _a(
    name: str,
    type: AttrType = "string",
    *,
    required: bool = False,
    multi: bool = False,
    case_exact: bool = False,
    refs: tuple[str, ...] = (),
    canonical: tuple[str, ...] = (),
    subs: tuple[AttrDef, ...] = (),
    description: str = "",
) -> AttrDef:
    return AttrDef(
        name=name,
        type=type,
        multi_valued=multi,
        required=required,
        case_exact=case_exact,
        mutability="readOnly",
        returned="default",
        description=description or name,
        sub_attributes=subs,
        reference_types=refs,
        canonical_values=canonical,
    )


def _supported(name: str, *extra: AttrDef) -> AttrDef:
    return _a(
        name,
        "complex",
        required=True,
        subs=(_a("supported", "boolean", required=True), *extra),
        description=f"The {name} configuration options.",
    )


_SPC = (
    _a("documentationUri", "reference", refs=("external",), description="Help on this service."),
    _supported("patch"),
    _supported("bulk", _a("maxOperations", "integer"), _a("maxPayloadSize", "integer")),
    _supported("filter", _a("maxResults", "integer")),
    _supported("changePassword"),
    _supported("sort"),
    _supported("etag"),
    _a(
        "authenticationSchemes",
        "complex",
        required=True,
        multi=True,
        description="The authentication schemes the service provider supports.",
        subs=(
            _a(
                "type", canonical=("oauth", "oauth2", "oauthbearertoken", "httpbasic", "httpdigest")
            ),
            _a("name", required=True),
            _a("description", required=True),
            _a("specUri", "reference", refs=("external",)),
            _a("documentationUri", "reference", refs=("external",)),
            _a("primary", "boolean"),
        ),
    ),
)

_RESOURCE_TYPE = (
    _a("id", case_exact=True, description="The resource type's server-unique id."),
    _a("name", required=True, description="The resource type name."),
    _a("description", description="The resource type's human-readable description."),
    _a("endpoint", "reference", required=True, refs=("uri",), description="Its endpoint."),
    _a(
        "schema",
        "reference",
        required=True,
        case_exact=True,
        refs=("uri",),
        description="The resource type's primary schema URI.",
    ),
    _a(
        "schemaExtensions",
        "complex",
        multi=True,
        description="The URIs of the resource type's schema extensions.",
        subs=(
            _a("schema", "reference", required=True, case_exact=True, refs=("uri",)),
            _a("required", "boolean", required=True),
        ),
    ),
)

_ATTRIBUTE_CHARACTERISTICS = (
    _a("name", required=True, case_exact=True),
    _a(
        "type",
        required=True,
        canonical=(
            "string",
            "complex",
            "boolean",
            "decimal",
            "integer",
            "dateTime",
            "reference",
            "binary",
        ),
    ),
    _a("multiValued", "boolean", required=True),
    _a("description"),
    _a("required", "boolean"),
    _a("canonicalValues", multi=True, case_exact=True),
    _a("caseExact", "boolean"),
    _a("mutability", canonical=("readOnly", "readWrite", "immutable", "writeOnly")),
    _a("returned", canonical=("always", "never", "default", "request")),
    _a("uniqueness", canonical=("none", "server", "global")),
    _a("referenceTypes", multi=True, case_exact=True),
)

_SCHEMA = (
    _a("id", required=True, case_exact=True, description="The unique URI of the schema."),
    _a("name", description="The schema's human-readable name."),
    _a("description", description="The schema's human-readable description."),
    _a(
        "attributes",
        "complex",
        required=True,
        multi=True,
        description="The attributes of the schema.",
        subs=(
            *_ATTRIBUTE_CHARACTERISTICS,
            _a(
                "subAttributes",
                "complex",
                multi=True,
                description="The sub-attributes of a complex attribute.",
                subs=_ATTRIBUTE_CHARACTERISTICS,
            ),
        ),
    ),
)


def _schema(urn: str, name: str, description: str, attrs: tuple[AttrDef, ...]) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": [a.to_scim() for a in attrs],
    }


#: the Schema resources of the discovery resources (``meta`` is added per store)
META_SCHEMAS: Final[tuple[dict[str, Any], ...]] = (
    _schema(
        SERVICE_PROVIDER_CONFIG,
        "ServiceProviderConfig",
        "Schema for representing the service provider's configuration",
        _SPC,
    ),
    _schema(
        RESOURCE_TYPE_SCHEMA,
        "ResourceType",
        "Specifies the schema that describes a SCIM resource type",
        _RESOURCE_TYPE,
    ),
    _schema(SCHEMA_SCHEMA, "Schema", "Specifies the schema attributes", _SCHEMA),
)

"""The schema documents, resource types and service provider configuration (RFC 7643
§§5–8), attribute look-up, and :func:`clean_input` (what a POST/PUT body becomes)."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.scim import schemas
from keyplane.scim.errors import ERROR_SCHEMA, ScimError
from scim.rfc_examples import ENTERPRISE, bjensen, tour_guides

USERS = schemas.resource_type("User")
GROUPS = schemas.resource_type("Group")
AGENTS = schemas.resource_type("Agent")
BASE = "https://kp.example.com/scim/v2/acme"


def test_error_message_shape() -> None:
    err = ScimError("bad filter", scim_type="invalidFilter")
    assert err.to_scim() == {
        "schemas": [ERROR_SCHEMA],
        "status": "400",
        "scimType": "invalidFilter",
        "detail": "bad filter",
    }
    assert ScimError("gone", status=404).to_scim() == {
        "schemas": [ERROR_SCHEMA],
        "status": "404",
        "detail": "gone",
    }
    assert err.code == "scim_error" and err.details == {"status": 400, "scimType": "invalidFilter"}
    # constructible like every Keyplane error (the SDK rebuilds errors from their code)
    assert ScimError("m").status == 400
    with pytest.raises(ValueError):
        ScimError("x", scim_type="notAType")


def test_resource_types() -> None:
    assert [(rt.name, rt.endpoint, rt.schema) for rt in schemas.resource_types()] == [
        ("User", "/Users", schemas.USER),
        ("Group", "/Groups", schemas.GROUP),
        ("Agent", "/Agents", schemas.AGENT),
    ]
    assert schemas.resource_type("users") is USERS
    assert schemas.resource_type("/Agents") is AGENTS
    with pytest.raises(KeyError):
        schemas.resource_type("Robots")
    doc = USERS.to_scim(BASE)
    assert doc["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert doc["meta"] == {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"}
    assert "schemaExtensions" not in GROUPS.to_scim(BASE)


def test_service_provider_config() -> None:
    spc = schemas.service_provider_config(BASE)
    assert spc["schemas"] == [schemas.SERVICE_PROVIDER_CONFIG]
    assert spc["patch"] == {"supported": True}
    assert spc["filter"] == {"supported": True, "maxResults": 200}
    assert spc["sort"] == {"supported": True} and spc["etag"] == {"supported": True}
    assert spc["bulk"]["supported"] is False and spc["changePassword"] == {"supported": False}
    assert [a["type"] for a in spc["authenticationSchemes"]] == ["oauthbearertoken"]
    assert spc["meta"]["location"] == f"{BASE}/ServiceProviderConfig"


def test_schema_documents() -> None:
    assert [s.id for s in schemas.all_schemas()] == [
        schemas.USER,
        schemas.GROUP,
        ENTERPRISE,
        schemas.AGENT,
    ]
    user = schemas.get_schema(schemas.USER)
    assert user is not None and schemas.get_schema(schemas.USER.upper()) is user
    doc = user.to_scim(BASE)
    assert doc["meta"]["location"] == f"{BASE}/Schemas/{schemas.USER}"
    by_name = {a["name"]: a for a in doc["attributes"]}
    assert by_name["userName"] == {
        "name": "userName",
        "type": "string",
        "multiValued": False,
        "description": by_name["userName"]["description"],
        "required": True,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "server",
    }
    assert by_name["password"]["returned"] == "never"
    assert by_name["groups"]["mutability"] == "readOnly"
    assert [s["name"] for s in by_name["emails"]["subAttributes"]] == [
        "value",
        "display",
        "type",
        "primary",
    ]
    agent = {a["name"]: a for a in AGENTS.core().to_scim()["attributes"]}
    assert agent["displayName"]["required"] is True
    assert agent["owners"]["multiValued"] is True and agent["owners"]["required"] is True
    assert {s["name"] for s in agent["owners"]["subAttributes"]} >= {"value", "$ref", "display"}


def test_documents_load_in_an_independent_implementation() -> None:
    """scim2-models (what scim2-tester builds its clients from) reads every document and
    validates RFC 7643's own examples against the models it builds from them."""
    sm = pytest.importorskip("scim2_models")
    models: dict[str, Any] = {}
    for s in schemas.all_schemas():
        parsed = sm.Schema.model_validate(s.to_scim(BASE))
        base = sm.Extension if s.id == ENTERPRISE else sm.Resource
        models[s.id] = base.from_schema(parsed)
    for rt in schemas.resource_types():
        assert sm.ResourceType.model_validate(rt.to_scim(BASE)).endpoint == rt.endpoint
    spc = sm.ServiceProviderConfig.model_validate(schemas.service_provider_config(BASE))
    assert spc.patch.supported and spc.filter.max_results == 200
    user_model = models[schemas.USER][models[ENTERPRISE]]
    user = user_model.model_validate(bjensen()).model_dump()
    assert user["userName"] == "bjensen" and user[ENTERPRISE]["employeeNumber"] == "701984"
    group = models[schemas.GROUP].model_validate(tour_guides()).model_dump()
    assert len(group["members"]) == 2


def test_attribute_lookup() -> None:
    user_name = schemas.attribute(schemas.USER, "USERNAME")
    assert user_name is not None and user_name.name == "userName" and not user_name.case_exact
    id_attr = schemas.attribute(schemas.USER, "id")
    assert id_attr is not None and id_attr.case_exact and id_attr.returned == "always"
    given = schemas.attribute(schemas.USER, "name.givenname")
    assert given is not None and given.name == "givenName"
    version = schemas.attribute(schemas.GROUP, "meta.version")
    assert version is not None and version.mutability == "readOnly"
    assert schemas.attribute(ENTERPRISE, "manager.displayName") is not None
    assert schemas.attribute(ENTERPRISE, "id") is None  # common attributes are the resource's
    assert schemas.attribute(schemas.USER, "shoeSize") is None
    assert schemas.attribute("urn:nope", "id") is None


def test_locate() -> None:
    ref = USERS.locate(f"{ENTERPRISE}:Manager.Value")
    assert (ref.schema, ref.extension, ref.name, ref.sub) == (ENTERPRISE, True, "manager", "value")
    ref = USERS.locate("urn:ietf:params:scim:schemas:core:2.0:User:NAME.familyname")
    assert (ref.schema, ref.extension, ref.name, ref.sub) == (
        schemas.USER,
        False,
        "name",
        "familyName",
    )
    ref = USERS.locate("department")  # only the extension defines it
    assert (ref.schema, ref.extension, ref.name) == (ENTERPRISE, True, "department")
    assert USERS.locate("schemas").attr is schemas.SCHEMAS_ATTRIBUTE
    assert USERS.locate("emails.primary").case_exact is False
    for bad in ("shoeSize", "name.shoeSize", "urn:x:y:1.0:User:a", "1abc", "title.sub"):
        with pytest.raises(ScimError) as info:
            USERS.locate(bad)
        assert info.value.scim_type == "invalidPath", bad
        assert USERS.locate(bad, strict=False).definition is None
    assert USERS.locate_schema(ENTERPRISE.lower()) == ENTERPRISE
    assert GROUPS.locate_schema(ENTERPRISE) is None


def test_resource_type_of() -> None:
    assert schemas.resource_type_of(bjensen()) is USERS
    assert schemas.resource_type_of({"meta": {"resourceType": "Group"}}) is GROUPS
    assert schemas.resource_type_of({"schemas": ["urn:x"]}) is None
    assert schemas.resource_type_of({}) is None


def test_list_response() -> None:
    page = schemas.list_response([{"id": "a"}], total_results=3, start_index=2)
    assert page == {
        "schemas": [schemas.LIST_RESPONSE],
        "totalResults": 3,
        "itemsPerPage": 1,
        "startIndex": 2,
        "Resources": [{"id": "a"}],
    }


# ---------------------------------------------------------------------------- clean_input


def test_clean_input_for_a_create() -> None:
    body = bjensen()
    out = schemas.clean_input(body, USERS)
    # readOnly (id, meta, groups, manager.displayName) ignored, the password never kept
    for gone in ("id", "meta", "groups", "password"):
        assert gone not in out, gone
    assert "displayName" not in out[ENTERPRISE]["manager"]
    assert out["schemas"] == [schemas.USER, ENTERPRISE]
    assert out["userName"] == "bjensen" and out["emails"] == body["emails"]
    assert out["externalId"] == "701984"
    assert body["id"] == "2819c223-7f76-453a-919d-413861904646"  # not mutated


def test_clean_input_canonical_names_and_entra_booleans() -> None:
    out = schemas.clean_input(
        {
            "schemas": [schemas.USER],
            "USERNAME": "alice",
            "Active": "False",
            "NAME": {"GivenName": "Alice", "shoeSize": 42},
            "emails": {"value": "alice@example.com", "Primary": "true"},
            "shoeSize": 42,
            ENTERPRISE.upper(): {"Department": "R&D"},
            f"{ENTERPRISE}:employeeNumber": "7",
        },
        USERS,
    )
    assert out == {
        "userName": "alice",
        "active": False,
        "name": {"givenName": "Alice"},
        "emails": [{"value": "alice@example.com", "primary": True}],
        ENTERPRISE: {"department": "R&D", "employeeNumber": "7"},
        "schemas": [schemas.USER, ENTERPRISE],
    }


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": [schemas.USER]}, "invalidValue"),  # userName is required
        ({"schemas": [schemas.USER], "userName": ""}, "invalidValue"),
        ({"schemas": [schemas.GROUP], "userName": "a"}, "invalidValue"),
        ({"schemas": schemas.USER, "userName": "a"}, "invalidSyntax"),
        ({"schemas": [schemas.USER], "userName": 5}, "invalidValue"),
        ({"schemas": [schemas.USER], "userName": "a", "active": "yes"}, "invalidValue"),
        ({"schemas": [schemas.USER], "userName": "a", "name": "Alice"}, "invalidValue"),
        ({"schemas": [schemas.USER], "userName": "a", "title": ["a"]}, "invalidValue"),
        ({"schemas": [schemas.USER], "userName": "a", ENTERPRISE: "x"}, "invalidSyntax"),
        (
            {
                "schemas": [schemas.USER],
                "userName": "a",
                "emails": [{"value": "x", "primary": True}, {"value": "y", "primary": True}],
            },
            "invalidValue",
        ),
    ],
)
def test_clean_input_refusals(body: dict[str, Any], scim_type: str) -> None:
    with pytest.raises(ScimError) as info:
        schemas.clean_input(body, USERS)
    assert (info.value.status, info.value.scim_type) == (400, scim_type)


def test_clean_input_not_an_object() -> None:
    with pytest.raises(ScimError) as info:
        schemas.clean_input([], USERS)  # type: ignore[arg-type]
    assert info.value.scim_type == "invalidSyntax"


def test_clean_input_groups_and_agents() -> None:
    out = schemas.clean_input(
        {"displayName": "Eng", "members": [{"value": "alice", "type": "User", "display": "Alice"}]},
        GROUPS,
    )
    assert out == {
        "displayName": "Eng",
        "members": [{"value": "alice", "type": "User", "display": "Alice"}],
        "schemas": [schemas.GROUP],
    }
    with pytest.raises(ScimError) as info:
        schemas.clean_input({"members": []}, GROUPS)
    assert info.value.scim_type == "invalidValue"
    agent = schemas.clean_input(
        {
            "schemas": [schemas.AGENT],
            "displayName": "Release bot",
            "agentType": "autonomous",
            "active": True,
            "owners": [{"value": "alice"}],
        },
        AGENTS,
    )
    assert agent["owners"] == [{"value": "alice"}]
    # an owner given by its URI alone: its id is the URI's last segment
    agent = schemas.clean_input(
        {"displayName": "x", "owners": [{"$ref": "https://kp/scim/v2/acme/Users/alice"}]}, AGENTS
    )
    assert agent["owners"] == [{"$ref": "https://kp/scim/v2/acme/Users/alice", "value": "alice"}]
    for no_owner in ({"displayName": "x", "owners": [{"display": "Alice"}]}, {"displayName": "x"}):
        with pytest.raises(ScimError) as info:
            schemas.clean_input(no_owner, AGENTS)
        assert info.value.scim_type == "invalidValue"


def test_clean_input_for_a_replace() -> None:
    # members.value is immutable, but a PUT replacing the members list adds and removes
    # values rather than changing one in place: allowed
    old = schemas.clean_input(tour_guides(), GROUPS)
    new = schemas.clean_input({**tour_guides(), "members": []}, GROUPS, existing=old)
    assert new == {"displayName": "Tour Guides", "schemas": [schemas.GROUP]}  # [] is unassigned
    new = schemas.clean_input({**tour_guides(), "displayName": "Guides"}, GROUPS, existing=old)
    assert new["displayName"] == "Guides" and new["members"] == old["members"]

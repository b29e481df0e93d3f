"""SCIM PATCH (RFC 7644 §3.5.2): the RFC's examples, what Okta and Entra ID send, and the
errors the RFC names (mutability, invalidPath, noTarget, invalidValue, invalidSyntax)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from keyplane.scim import schemas
from keyplane.scim.errors import ScimError
from keyplane.scim.patch import apply_patch, patch_operations
from scim.rfc_examples import PATCH_OP, bjensen, tour_guides

USERS = schemas.resource_type("User")
GROUPS = schemas.resource_type("Group")
AGENTS = schemas.resource_type("Agent")
ENT = schemas.ENTERPRISE_USER
BABS = "2819c223-7f76-453a-919d-413861904646"
MANDY = "902c246b-6245-4190-8e05-00816be7344a"


def patch(
    resource: dict[str, Any], rt: schemas.ResourceType, *ops: dict[str, Any]
) -> dict[str, Any]:
    before = copy.deepcopy(resource)
    out = apply_patch(resource, list(ops), rt)
    assert resource == before, "apply_patch must not mutate its input"
    return out


def refused(resource: dict[str, Any], rt: schemas.ResourceType, *ops: dict[str, Any]) -> ScimError:
    before = copy.deepcopy(resource)
    with pytest.raises(ScimError) as info:
        apply_patch(resource, list(ops), rt)
    assert resource == before
    assert info.value.status == 400
    return info.value


def member_ids(group: dict[str, Any]) -> list[str]:
    return [m["value"] for m in group.get("members", [])]


# ---------------------------------------------------------------------------- §3.5.2.1 add


def test_rfc_add_a_member() -> None:
    group = tour_guides()
    group["members"] = group["members"][1:]
    out = patch(
        group,
        GROUPS,
        {
            "op": "add",
            "path": "members",
            "value": [
                {
                    "display": "Babs Jensen",
                    "$ref": f"https://example.com/v2/Users/{BABS}",
                    "value": BABS,
                }
            ],
        },
    )
    assert member_ids(out) == [MANDY, BABS]
    assert out["members"][1] == {
        "display": "Babs Jensen",
        "$ref": f"https://example.com/v2/Users/{BABS}",
        "value": BABS,
    }


def test_rfc_add_without_path() -> None:
    out = patch(
        bjensen(),
        USERS,
        {
            "op": "add",
            "value": {
                "emails": [{"value": "babs@jensen.org", "type": "home"}],
                "nickname": "Babs",  # the RFC's own spelling: names are case-insensitive
            },
        },
    )
    # already there: "no changes SHOULD be made" (§3.5.2.1)
    assert out["emails"] == bjensen()["emails"]
    assert out["nickName"] == "Babs"
    assert "nickname" not in out


def test_add_appends_new_values_and_moves_primary() -> None:
    out = patch(
        bjensen(),
        USERS,
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "b@new.org", "type": "other", "primary": True}],
        },
    )
    assert [e["value"] for e in out["emails"]] == [
        "bjensen@example.com",
        "babs@jensen.org",
        "b@new.org",
    ]
    assert [e.get("primary") for e in out["emails"]] == [False, None, True]


def test_add_merges_a_complex_attribute_and_sets_simple_ones() -> None:
    out = patch(bjensen(), USERS, {"op": "add", "path": "name", "value": {"givenName": "Babs"}})
    assert out["name"]["givenName"] == "Babs" and out["name"]["familyName"] == "Jensen"
    out = patch(bjensen(), USERS, {"op": "add", "path": "title", "value": "Head Guide"})
    assert out["title"] == "Head Guide"
    out = patch(bjensen(), USERS, {"op": "add", "path": "name.middleName", "value": "J."})
    assert out["name"]["middleName"] == "J."


def test_add_of_an_existing_member_changes_nothing() -> None:
    group = tour_guides()
    out = patch(group, GROUPS, {"op": "add", "path": "members", "value": [{"value": MANDY}]})
    assert out == group


# ---------------------------------------------------------------------------- §3.5.2.2 remove


def test_rfc_remove_one_member() -> None:
    out = patch(tour_guides(), GROUPS, {"op": "remove", "path": f'members[value eq "{BABS}"]'})
    assert member_ids(out) == [MANDY]


def test_rfc_remove_all_members() -> None:
    out = patch(tour_guides(), GROUPS, {"op": "remove", "path": "members"})
    assert "members" not in out
    assert out["displayName"] == "Tour Guides"


def test_rfc_remove_a_work_email() -> None:
    out = patch(
        bjensen(),
        USERS,
        {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'},
    )
    assert out["emails"] == [{"value": "babs@jensen.org", "type": "home"}]


def test_rfc_remove_all_members_then_add_new_ones() -> None:
    out = patch(
        tour_guides(),
        GROUPS,
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": "x1"}, {"value": "x2"}]},
    )
    assert member_ids(out) == ["x1", "x2"]


def test_remove_the_last_value_unassigns_the_attribute() -> None:
    user = bjensen()
    out = patch(user, USERS, {"op": "remove", "path": 'ims[type eq "aim"]'})
    assert "ims" not in out


def test_remove_a_sub_attribute() -> None:
    out = patch(bjensen(), USERS, {"op": "remove", "path": "name.middleName"})
    assert "middleName" not in out["name"] and out["name"]["givenName"] == "Barbara"
    out = patch(bjensen(), USERS, {"op": "remove", "path": 'addresses[type eq "work"].formatted'})
    assert "formatted" not in out["addresses"][0] and "formatted" in out["addresses"][1]


def test_remove_an_extension_attribute_and_the_whole_extension() -> None:
    out = patch(bjensen(), USERS, {"op": "remove", "path": f"{ENT}:manager"})
    assert "manager" not in out[ENT] and out[ENT]["department"] == "Tour Operations"
    out = patch(bjensen(), USERS, {"op": "remove", "path": ENT})
    assert ENT not in out
    assert out["schemas"] == [schemas.USER]


def test_remove_of_what_is_not_there_is_harmless() -> None:
    user = bjensen()
    del user["title"]
    assert patch(user, USERS, {"op": "remove", "path": "title"}) == user


def test_remove_without_path_is_no_target() -> None:
    # RFC 7644 §3.5.2.2: 'If "path" is unspecified, the operation fails with HTTP status
    # code 400 and a "scimType" error code of "noTarget".'
    assert refused(bjensen(), USERS, {"op": "remove"}).scim_type == "noTarget"


def test_filtered_remove_matching_nothing_is_no_target() -> None:
    err = refused(tour_guides(), GROUPS, {"op": "remove", "path": 'members[value eq "nobody"]'})
    assert err.scim_type == "noTarget"


# ---------------------------------------------------------------------------- §3.5.2.3 replace


def test_rfc_replace_all_members() -> None:
    out = patch(
        tour_guides(),
        GROUPS,
        {
            "op": "replace",
            "path": "members",
            "value": [
                {
                    "display": "Babs Jensen",
                    "$ref": f"https://example.com/v2/Users/{BABS}",
                    "value": BABS,
                },
                {
                    "display": "James Smith",
                    "$ref": "https://example.com/v2/Users/08e1d05d",
                    "value": "08e1d05d",
                },
            ],
        },
    )
    assert member_ids(out) == [BABS, "08e1d05d"]


def test_rfc_replace_a_work_address() -> None:
    new_address = {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    out = patch(
        bjensen(),
        USERS,
        {"op": "replace", "path": 'addresses[type eq "work"]', "value": new_address},
    )
    assert out["addresses"][0] == new_address
    assert out["addresses"][1] == bjensen()["addresses"][1]


def test_rfc_replace_a_street_address() -> None:
    out = patch(
        bjensen(),
        USERS,
        {
            "op": "replace",
            "path": 'addresses[type eq "work"].streetAddress',
            "value": "1010 Broadway Ave",
        },
    )
    assert out["addresses"][0]["streetAddress"] == "1010 Broadway Ave"
    assert out["addresses"][0]["locality"] == "Hollywood"


def test_rfc_replace_without_path() -> None:
    out = patch(
        bjensen(),
        USERS,
        {
            "op": "replace",
            "value": {
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
                "nickname": "Babs",
            },
        },
    )
    assert out["emails"] == [{"value": "bjensen@example.com", "type": "work", "primary": True}]
    assert out["nickName"] == "Babs"


def test_replace_merges_a_complex_attribute() -> None:
    out = patch(
        bjensen(), USERS, {"op": "replace", "path": "name", "value": {"familyName": "Jensen-Smith"}}
    )
    assert out["name"]["familyName"] == "Jensen-Smith" and out["name"]["givenName"] == "Barbara"


def test_replace_of_an_absent_attribute_adds_it() -> None:
    user = bjensen()
    del user["title"]
    assert (
        patch(user, USERS, {"op": "replace", "path": "title", "value": "Guide"})["title"] == "Guide"
    )


def test_filtered_replace_matching_nothing_is_no_target() -> None:
    err = refused(
        bjensen(), USERS, {"op": "replace", "path": 'emails[type eq "other"].value', "value": "x@y"}
    )
    assert err.scim_type == "noTarget"


def test_replace_with_null_unassigns() -> None:
    out = patch(bjensen(), USERS, {"op": "replace", "path": "title", "value": None})
    assert "title" not in out


# ---------------------------------------------------------------------------- identity providers


def test_okta_deactivates_and_renames_without_path() -> None:
    user = bjensen()
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"id": user["id"], "active": False}}],
    }
    out = apply_patch(user, patch_operations(body), USERS)
    assert out["active"] is False and out["id"] == user["id"]
    group = tour_guides()
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"id": group["id"], "displayName": "Guides"}}],
    }
    assert apply_patch(group, patch_operations(body), GROUPS)["displayName"] == "Guides"


def test_okta_group_membership() -> None:
    out = patch(
        tour_guides(),
        GROUPS,
        {"op": "add", "path": "members", "value": [{"value": "08e1d05d", "display": "James"}]},
        {"op": "remove", "path": f'members[value eq "{MANDY}"]'},
    )
    assert member_ids(out) == [BABS, "08e1d05d"]


def test_entra_shapes() -> None:
    user = bjensen()
    del user["emails"]
    out = patch(
        user,
        USERS,
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "babs@contoso.com"},
        {"op": "Replace", "path": f"{ENT}:department", "value": "Guides"},
        {"op": "Add", "path": f"{ENT}:manager", "value": "26118999"},
        {"op": "Add", "value": {f"{ENT}:employeeNumber": "42", "displayName": "Barbara Jensen"}},
    )
    assert out["active"] is False
    assert out["emails"] == [{"type": "work", "value": "babs@contoso.com"}]
    assert out[ENT]["department"] == "Guides"
    assert out[ENT]["manager"]["value"] == "26118999"
    assert out[ENT]["employeeNumber"] == "42"
    assert out["displayName"] == "Barbara Jensen"


def test_entra_removes_members_by_value() -> None:
    out = patch(
        tour_guides(), GROUPS, {"op": "Remove", "path": "members", "value": [{"value": BABS}]}
    )
    assert member_ids(out) == [MANDY]


def test_entra_pathless_value_with_extension_object() -> None:
    out = patch(
        bjensen(), USERS, {"op": "replace", "value": {ENT: {"costCenter": "9"}, "active": "true"}}
    )
    assert out[ENT]["costCenter"] == "9" and out[ENT]["division"] == "Theme Park"
    assert out["active"] is True


def test_adding_the_extension_lists_its_schema() -> None:
    user = bjensen()
    del user[ENT]
    user["schemas"] = [schemas.USER]
    out = patch(user, USERS, {"op": "add", "path": f"{ENT}:department", "value": "Ops"})
    assert out["schemas"] == [schemas.USER, ENT]
    out = patch(user, USERS, {"op": "add", "path": ENT, "value": {"division": "Parks"}})
    assert out[ENT] == {"division": "Parks"}


def test_agent_owners() -> None:
    agent = {
        "schemas": [schemas.AGENT],
        "id": "release-bot",
        "displayName": "Release bot",
        "owners": [{"value": "bjensen"}],
    }
    out = patch(agent, AGENTS, {"op": "add", "path": "owners", "value": [{"value": "jsmith"}]})
    assert [o["value"] for o in out["owners"]] == ["bjensen", "jsmith"]
    err = refused(agent, AGENTS, {"op": "add", "path": "owners", "value": [{"display": "nobody"}]})
    assert err.scim_type == "invalidValue"
    # owners is required: an agent always keeps one
    err = refused(agent, AGENTS, {"op": "remove", "path": 'owners[value eq "bjensen"]'})
    assert err.scim_type == "invalidValue"


# ---------------------------------------------------------------------------- refusals


def test_read_only_attributes_are_refused() -> None:
    for op in (
        {"op": "replace", "path": "id", "value": "other"},
        {"op": "add", "path": "groups", "value": [{"value": "g"}]},
        {"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"},
        {"op": "remove", "path": "groups"},
        {"op": "replace", "path": "schemas", "value": [schemas.USER]},
        {"op": "replace", "path": f"{ENT}:manager.displayName", "value": "Jo"},
    ):
        assert refused(bjensen(), USERS, op).scim_type == "mutability", op


def test_immutable_sub_attributes() -> None:
    err = refused(
        tour_guides(),
        GROUPS,
        {"op": "replace", "path": f'members[value eq "{BABS}"].value', "value": "x"},
    )
    assert err.scim_type == "mutability"
    # setting it to what it is, or changing a mutable sub-attribute, is fine
    out = patch(
        tour_guides(),
        GROUPS,
        {"op": "replace", "path": f'members[value eq "{BABS}"].display', "value": "Babs"},
    )
    assert out["members"][0]["display"] == "Babs"


def test_required_attributes_cannot_be_removed() -> None:
    assert (
        refused(bjensen(), USERS, {"op": "remove", "path": "userName"}).scim_type == "invalidValue"
    )
    assert (
        refused(
            tour_guides(), GROUPS, {"op": "replace", "path": "displayName", "value": None}
        ).scim_type
        == "invalidValue"
    )


@pytest.mark.parametrize(
    ("op", "scim_type"),
    [
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "add", "path": "title"}, "invalidValue"),
        ({"op": "replace"}, "invalidValue"),
        ({"op": "replace", "value": "not an object"}, "invalidValue"),
        ({"op": "add", "path": "shoeSize", "value": "42"}, "invalidPath"),
        ({"op": "add", "path": "name.shoeSize", "value": "42"}, "invalidPath"),
        ({"op": "add", "path": 'title[value eq "x"]', "value": "42"}, "invalidPath"),
        ({"op": "add", "path": 'emails[type eq "work"].shoeSize', "value": "42"}, "invalidPath"),
        ({"op": "add", "path": 123, "value": "42"}, "invalidPath"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
        ({"op": "replace", "path": "title", "value": ["a", "b"]}, "invalidValue"),
        ({"op": "replace", "path": "name", "value": "Babs"}, "invalidValue"),
        (
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "a", "primary": True}, {"value": "b", "primary": True}],
            },
            "invalidValue",
        ),
        ({"op": "add", "path": 'emails[type zz "work"]', "value": {}}, "invalidFilter"),
    ],
)
def test_malformed_operations(op: dict[str, Any], scim_type: str) -> None:
    assert refused(bjensen(), USERS, op).scim_type == scim_type


def test_all_or_nothing_and_the_failing_operation_is_named() -> None:
    user = bjensen()
    err = refused(
        user,
        USERS,
        {"op": "replace", "path": "title", "value": "A"},
        {"op": "replace", "path": "id", "value": "B"},
    )
    assert err.details["operation"] == 1
    assert err.message.startswith("Operations[1]: ")


def test_read_only_attributes_in_a_pathless_value_are_ignored() -> None:
    user = bjensen()
    stored = {k: v for k, v in user.items() if k not in ("id", "meta")}
    out = patch(
        stored,
        USERS,
        {"op": "replace", "value": {"id": "someone-else", "meta": {}, "active": False}},
        {"op": "add", "value": {"groups": [{"value": "g"}], "schemas": [schemas.USER]}},
    )
    assert out == {**stored, "active": False}


def test_unknown_attributes_in_a_pathless_value_are_ignored() -> None:
    out = patch(bjensen(), USERS, {"op": "replace", "value": {"shoeSize": "42", "title": "Guide"}})
    assert out["title"] == "Guide" and "shoeSize" not in out


def test_passwords_are_never_stored() -> None:
    user = bjensen()
    del user["password"]
    out = patch(
        user,
        USERS,
        {"op": "replace", "path": "password", "value": "s3cret"},
        {"op": "replace", "value": {"password": "s3cret"}},
    )
    assert "password" not in out


def test_patch_operations_checks_the_message() -> None:
    ops = [{"op": "add", "path": "title", "value": "x"}]
    assert patch_operations({"schemas": [PATCH_OP], "Operations": ops}) == ops
    assert patch_operations({"schemas": [PATCH_OP.upper()], "operations": ops}) == ops
    for body in (
        [],
        {"Operations": ops},
        {"schemas": [schemas.USER], "Operations": ops},
        {"schemas": [PATCH_OP], "Operations": []},
        {"schemas": [PATCH_OP], "Operations": [{"path": "x"}]},
        {"schemas": [PATCH_OP], "Operations": "add"},
    ):
        with pytest.raises(ScimError) as info:
            patch_operations(body)  # type: ignore[arg-type]
        assert info.value.scim_type == "invalidSyntax", body


def test_entra_validator_shapes() -> None:
    """Shapes from Microsoft's SCIM validator requests: members with a null ``$ref``, a new
    work address built from filtered paths, roles with string booleans."""
    group = tour_guides()
    out = patch(
        group,
        GROUPS,
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "f648f8d5"}]},
    )
    assert out["members"][-1] == {"value": "f648f8d5"}
    user = bjensen()
    del user["addresses"]
    out = patch(
        user,
        USERS,
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Springfield"},
        {
            "op": "Add",
            "path": "roles",
            "value": [{"primary": "False", "type": "Role", "value": "Admin"}],
        },
        {"op": "Replace", "path": "externalId", "value": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"},
    )
    assert out["addresses"] == [
        {"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}
    ]
    assert out["roles"] == [{"primary": False, "type": "Role", "value": "Admin"}]
    assert out["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"

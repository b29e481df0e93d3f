"""``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5, §3.9; RFC 7643 §2.2
``returned``) and ``sortBy`` / ``sortOrder`` (RFC 7644 §3.4.2.3)."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.scim import schemas
from keyplane.scim.errors import ScimError
from keyplane.scim.projection import parse_attribute_list, project, sort_key
from scim.rfc_examples import ENTERPRISE, bjensen, jomalley, tour_guides

USERS = schemas.resource_type("User")
GROUPS = schemas.resource_type("Group")


def test_default_set_leaves_out_never_returned_attributes() -> None:
    out = project(bjensen(), USERS)
    assert "password" not in out  # returned "never"
    expected = {k: v for k, v in bjensen().items() if k != "password"}
    assert out == expected


def test_rfc_attributes_example() -> None:
    # RFC 7644 §3.9: GET /Users/2819c223...?attributes=userName answers schemas, id, userName
    user = bjensen()
    assert project(user, USERS, attributes="userName") == {
        "schemas": user["schemas"],
        "id": user["id"],
        "userName": "bjensen",
    }


def test_attributes_with_sub_attributes_and_extensions() -> None:
    user = bjensen()
    out = project(
        user,
        USERS,
        attributes=[
            "name.givenName",
            "emails.value",
            "meta.lastModified",
            f"{ENTERPRISE}:manager.value",
        ],
    )
    assert out == {
        "schemas": user["schemas"],
        "id": user["id"],
        "name": {"givenName": "Barbara"},
        "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}],
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
        ENTERPRISE: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
    }


def test_attributes_are_case_insensitive_and_comma_separated() -> None:
    out = project(bjensen(), USERS, attributes="USERNAME, Name.FamilyName ,displayname")
    assert set(out) == {"schemas", "id", "userName", "name", "displayName"}
    assert out["name"] == {"familyName": "Jensen"}


def test_a_whole_extension_by_its_urn() -> None:
    user = bjensen()
    out = project(user, USERS, attributes=ENTERPRISE)
    assert out == {"schemas": user["schemas"], "id": user["id"], ENTERPRISE: user[ENTERPRISE]}
    out = project(user, USERS, excluded=ENTERPRISE)
    assert ENTERPRISE not in out and out["userName"] == "bjensen"


def test_excluded_attributes() -> None:
    user = bjensen()
    out = project(user, USERS, excluded="emails,name.familyName,id,schemas,meta")
    assert "emails" not in out and "meta" not in out
    assert "familyName" not in out["name"] and out["name"]["givenName"] == "Barbara"
    # "always" attributes cannot be excluded (RFC 7643 §2.2)
    assert out["id"] == user["id"] and out["schemas"] == user["schemas"]
    out = project(user, USERS, excluded=f"{ENTERPRISE}:manager")
    assert "manager" not in out[ENTERPRISE] and out[ENTERPRISE]["department"] == "Tour Operations"


def test_never_returned_even_when_asked() -> None:
    out = project(bjensen(), USERS, attributes="password,userName")
    assert "password" not in out and out["userName"] == "bjensen"


def test_unknown_names_select_nothing() -> None:
    user = bjensen()
    assert project(user, USERS, attributes="shoeSize") == {
        "schemas": user["schemas"],
        "id": user["id"],
    }
    assert project(user, USERS, excluded="shoeSize,urn:x:y:z") == project(user, USERS)


def test_group_members_projection() -> None:
    group = tour_guides()
    out = project(group, GROUPS, attributes="members.value")
    assert out["members"] == [
        {"value": "2819c223-7f76-453a-919d-413861904646"},
        {"value": "902c246b-6245-4190-8e05-00816be7344a"},
    ]
    assert "members" not in project(group, GROUPS, excluded="members")


def test_projection_never_mutates() -> None:
    user = bjensen()
    out = project(user, USERS, attributes="name.givenName")
    out["name"]["givenName"] = "changed"
    assert user["name"]["givenName"] == "Barbara"


def test_parse_attribute_list() -> None:
    assert parse_attribute_list(None) == []
    assert parse_attribute_list(" a, b.c ,,") == ["a", "b.c"]
    assert parse_attribute_list(["a,b", "c"]) == ["a", "b", "c"]


# ---------------------------------------------------------------------------- sorting


def _people() -> list[dict[str, Any]]:
    mandy = {
        "schemas": [schemas.USER],
        "id": "3",
        "userName": "mandy",
        "emails": [{"value": "z@example.com"}, {"value": "a@example.com", "primary": True}],
        "meta": {"created": "2009-06-01T00:00:00+05:00"},
    }
    ghost = {"schemas": [schemas.USER], "id": "4", "userName": "ghost"}
    return [bjensen(), jomalley(), mandy, ghost]


def order(resources: list[dict[str, Any]], sort_by: str, descending: bool = False) -> list[str]:
    ranked = sorted(
        resources, key=lambda r: sort_key(r, sort_by, schemas=USERS), reverse=descending
    )
    return [r["userName"] for r in ranked]


def test_strings_sort_case_insensitively() -> None:
    assert order(_people(), "userName") == ["bjensen", "ghost", "JOMalley", "mandy"]
    assert order(_people(), "userName", descending=True) == [
        "mandy",
        "JOMalley",
        "ghost",
        "bjensen",
    ]


def test_missing_values_sort_last_ascending_and_first_descending() -> None:
    # only bjensen has a title; the others keep their order (a stable sort)
    assert order(_people(), "title") == ["bjensen", "JOMalley", "mandy", "ghost"]
    assert order(_people(), "title", descending=True) == ["JOMalley", "mandy", "ghost", "bjensen"]


def test_multi_valued_sort_by_primary_else_first() -> None:
    # mandy's primary e-mail is a@…, bjensen's bjensen@…, jomalley's (first) jo@…
    assert order(_people(), "emails")[:3] == ["mandy", "bjensen", "JOMalley"]
    assert order(_people(), "emails.value")[:3] == ["mandy", "bjensen", "JOMalley"]


def test_dates_sort_as_instants() -> None:
    # mandy 2009-05-31T19:00Z < bjensen 2010 < jomalley 2012; ghost has none
    assert order(_people(), "meta.created") == ["mandy", "bjensen", "JOMalley", "ghost"]


def test_extension_and_complex_sort() -> None:
    assert order(_people(), f"{ENTERPRISE}:employeeNumber")[0] == "bjensen"
    assert order(_people(), "name.familyName")[:2] == ["bjensen", "JOMalley"]


def test_case_exact_attributes_sort_case_sensitively() -> None:
    rs = [
        {"schemas": [schemas.USER], "id": "b", "userName": "1"},
        {"schemas": [schemas.USER], "id": "B", "userName": "2"},
        {"schemas": [schemas.USER], "id": "a", "userName": "3"},
    ]
    assert order(rs, "id") == ["2", "3", "1"]  # "B" < "a" < "b"


def test_unknown_sort_attribute() -> None:
    with pytest.raises(ScimError) as info:
        sort_key(bjensen(), "shoeSize", schemas=USERS)
    assert (info.value.status, info.value.scim_type) == (400, "invalidValue")
    # without a resource type given, an unknown attribute just has no value
    assert sort_key(bjensen(), "shoeSize") == (1,)
    assert sort_key({"n": 2}, "n") == (0, 1, 2.0)

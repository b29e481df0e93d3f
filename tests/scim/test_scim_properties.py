"""Properties of the pure SCIM modules (hypothesis): a filter tree printed and parsed back
is the same tree; PATCH never mutates its input, fails only with a SCIM error, and what it
returns is still a valid resource."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyplane.scim import schemas
from keyplane.scim.errors import ScimError
from keyplane.scim.filter import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    Node,
    Not,
    Or,
    Present,
    ValuePath,
    format_filter,
    matches,
    parse_filter,
)
from keyplane.scim.patch import apply_patch
from scim.rfc_examples import ENTERPRISE, bjensen, tour_guides

NAMES = st.sampled_from(
    ["userName", "name", "emails", "title", "x509Certificates", "$ref", "a-b_c"]
)
SUBS = st.none() | st.sampled_from(["givenName", "value", "type", "primary"])
URNS = st.none() | st.sampled_from([schemas.USER, ENTERPRISE, "urn:example:ext:1.0:Thing"])
LITERALS = (
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)


def simple_paths(with_urn: bool) -> st.SearchStrategy[AttrPath]:
    return st.builds(AttrPath, NAMES, SUBS, URNS if with_urn else st.none())


def leaves(with_urn: bool) -> st.SearchStrategy[Node]:
    path = simple_paths(with_urn)
    return st.builds(Present, path) | st.builds(
        Compare, path, st.sampled_from(sorted(COMPARE_OPS)), LITERALS
    )


def trees(base: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.recursive(
        base,
        lambda inner: (
            st.builds(And, inner, inner) | st.builds(Or, inner, inner) | st.builds(Not, inner)
        ),
        max_leaves=8,
    )


value_paths = st.builds(
    ValuePath, st.builds(AttrPath, NAMES, st.none(), URNS), trees(leaves(with_urn=False))
)
filters = trees(leaves(with_urn=True) | value_paths)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(filters)
def test_format_then_parse_is_the_identity(node: Node) -> None:
    text = format_filter(node)
    assert parse_filter(text) == node, text


@settings(max_examples=200)
@given(filters)
def test_evaluation_fails_only_with_invalid_filter(node: Node) -> None:
    for resource in (bjensen(), tour_guides(), {"a-b_c": 1, "title": [True, None]}):
        try:
            matches(node, resource)
        except ScimError as exc:
            assert (exc.status, exc.scim_type) == (400, "invalidFilter")


PATHS = st.sampled_from(
    [
        None,
        "title",
        "active",
        "name",
        "name.givenName",
        "emails",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        'emails[value co "@"].primary',
        "addresses",
        'addresses[type eq "home"].locality',
        f"{ENTERPRISE}:department",
        f"{ENTERPRISE}:manager",
        f"{ENTERPRISE}:manager.value",
        ENTERPRISE,
        "userName",
        "id",
        "groups",
        "password",
        "shoeSize",
        "emails[",
    ]
)
VALUES = st.sampled_from(
    [
        "x",
        "True",
        True,
        False,
        None,
        42,
        {"givenName": "Babs"},
        {"value": "a@b.c", "type": "work", "primary": True},
        [{"value": "c@d.e", "type": "home"}],
        [{"value": "a@b.c", "primary": True}, {"value": "z@b.c", "primary": True}],
        {"title": "Guide", f"{ENTERPRISE}:department": "Ops", "id": "nope"},
        {"locality": "Paris"},
        [],
    ]
)
OPS = st.builds(
    lambda op, path, value, has_value: {
        k: v
        for k, v in {"op": op, "path": path, "value": value}.items()
        if (k != "path" or path is not None) and (k != "value" or has_value)
    },
    st.sampled_from(["add", "replace", "remove", "Replace", "Add"]),
    PATHS,
    VALUES,
    st.booleans(),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=4))
def test_patch_is_pure_total_and_keeps_resources_valid(ops: list[dict[str, Any]]) -> None:
    users = schemas.resource_type("User")
    user = bjensen()
    before = copy.deepcopy(user)
    try:
        out = apply_patch(user, ops, users)
    except ScimError as exc:
        assert exc.status == 400 and exc.scim_type in schemas_types()
        assert user == before
        return
    assert user == before
    cleaned = schemas.clean_input(out, users)  # still a valid User: no ScimError
    assert isinstance(cleaned["userName"], str) and cleaned["userName"]
    assert sum(1 for e in out.get("emails", []) if e.get("primary") is True) <= 1


def schemas_types() -> set[str]:
    return {
        "invalidSyntax",
        "invalidPath",
        "invalidFilter",
        "invalidValue",
        "mutability",
        "noTarget",
    }

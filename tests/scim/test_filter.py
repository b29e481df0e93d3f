"""The SCIM filter language (RFC 7644 §3.4.2.2): the RFC's own examples, parsed and
evaluated against RFC 7643's bjensen and a user unlike her, then the edges."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.scim import schemas
from keyplane.scim.errors import ScimError
from keyplane.scim.filter import (
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    matches,
    matches_value,
    parse_filter,
    parse_path,
)
from scim.rfc_examples import bjensen, jomalley, tour_guides

USERS = schemas.resource_type("User")
ENT = schemas.ENTERPRISE_USER

# RFC 7644 §3.4.2.2, every example in its order: (filter, bjensen matches, jomalley matches)
RFC_EXAMPLES: list[tuple[str, bool, bool]] = [
    ('userName eq "bjensen"', True, False),
    ('name.familyName co "O\'Malley"', False, True),
    ('userName sw "J"', False, True),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', False, True),
    ("title pr", True, False),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False, True),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True, True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False, False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True, False),
    ('title pr and userType eq "Employee"', True, False),
    ('title pr or userType eq "Intern"', True, True),
    (
        'schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"',
        True,
        False,
    ),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        True,
        False,
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
        True,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True, False),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True, False),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        True,
        True,
    ),
]


@pytest.mark.parametrize(("text", "for_bjensen", "for_jomalley"), RFC_EXAMPLES)
def test_rfc_examples(text: str, for_bjensen: bool, for_jomalley: bool) -> None:
    node = parse_filter(text)
    assert matches(node, bjensen()) is for_bjensen
    assert matches(node, jomalley(), resource_type=USERS) is for_jomalley


def test_rfc_example_trees() -> None:
    assert parse_filter('userName eq "bjensen"') == Compare(AttrPath("userName"), "eq", "bjensen")
    assert parse_filter('urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw "J"') == (
        Compare(AttrPath("name", "familyName", schemas.USER), "sw", "J")
    )
    assert parse_filter("title pr") == Present(AttrPath("title"))
    assert parse_filter(
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]'
    ) == And(
        Compare(AttrPath("userType"), "eq", "Employee"),
        ValuePath(
            AttrPath("emails"),
            And(
                Compare(AttrPath("type"), "eq", "work"),
                Compare(AttrPath("value"), "co", "@example.com"),
            ),
        ),
    )


def test_precedence_not_then_and_then_or() -> None:
    a, b, c = (Compare(AttrPath(x), "eq", 1) for x in "abc")
    assert parse_filter("a eq 1 or b eq 1 and c eq 1") == Or(a, And(b, c))
    assert parse_filter("a eq 1 and b eq 1 or c eq 1") == Or(And(a, b), c)
    assert parse_filter("(a eq 1 or b eq 1) and c eq 1") == And(Or(a, b), c)
    assert parse_filter("not (a eq 1) and b eq 1") == And(Not(a), b)
    assert parse_filter("a eq 1 or b eq 1 or c eq 1") == Or(Or(a, b), c)


def test_keywords_and_operators_are_case_insensitive() -> None:
    node = parse_filter('USERNAME EQ "BJENSEN" AnD Title PR oR NOT (active Eq False)')
    assert matches(node, bjensen())
    assert parse_filter("a Eq TRUE") == Compare(AttrPath("a"), "eq", True)


def test_literals() -> None:
    assert parse_filter("a eq 42") == Compare(AttrPath("a"), "eq", 42)
    assert parse_filter("a eq -1.5e3") == Compare(AttrPath("a"), "eq", -1500.0)
    assert parse_filter("a eq false") == Compare(AttrPath("a"), "eq", False)
    assert parse_filter("a eq null") == Compare(AttrPath("a"), "eq", None)
    # JSON string escapes (RFC 7644 §3.4.2.2: string values are JSON strings)
    assert parse_filter(r'a eq "say \"hi\" \\ \u00e9\n"') == Compare(
        AttrPath("a"), "eq", 'say "hi" \\ é\n'
    )
    assert parse_filter('a eq "with ] and ) inside"').value == "with ] and ) inside"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("userName eq", 11),
        ('userName xx "a"', 9),
        ('(userName eq "a"', 16),
        ('userName eq "unterminated', 12),
        ('emails[type eq "work"', 21),
        ('userName eq "a" title pr', 16),
        ('userName eq "a" and', 19),
        ("title", 5),
        ('emails[type eq "work" and ims[type eq "x"]]', 29),
        ('userName eq "\\x"', 12),
        ("userName eq bjensen", 12),
        ("1abc eq 1", 0),
        ('userName eq "a" # "b"', 16),
    ],
)
def test_syntax_errors_name_the_position(text: str, position: int) -> None:
    with pytest.raises(ScimError) as info:
        parse_filter(text)
    err = info.value
    assert (err.status, err.scim_type) == (400, "invalidFilter")
    assert f"position {position}" in err.message, err.message
    assert err.details["position"] == position
    assert err.to_scim()["scimType"] == "invalidFilter"


@pytest.mark.parametrize("text", ["", "   ", "not title pr"])
def test_more_syntax_errors(text: str) -> None:
    with pytest.raises(ScimError) as info:
        parse_filter(text)
    assert info.value.scim_type == "invalidFilter"


def test_case_exact_is_respected() -> None:
    babs = bjensen()
    # userName is caseExact false, id and externalId are caseExact (RFC 7643 §3.1, §4.1.1)
    assert matches(parse_filter('userName eq "BJensen"'), babs)
    assert matches(parse_filter('id eq "2819C223-7F76-453A-919D-413861904646"'), babs) is False
    assert matches(parse_filter('id eq "2819c223-7f76-453a-919d-413861904646"'), babs)
    assert matches(parse_filter('externalId sw "7019"'), babs)
    assert matches(parse_filter('meta.version eq "w/\\"3694e05e9dff591\\""'), babs) is False


def test_multi_valued_any_value_matches() -> None:
    babs = bjensen()
    assert matches(parse_filter('emails eq "babs@jensen.org"'), babs)
    assert matches(parse_filter('emails.value ew ".ORG"'), babs)
    assert matches(parse_filter('emails.type eq "home"'), babs)
    assert matches(parse_filter('emails[type eq "home" and value co "example"]'), babs) is False
    assert matches(parse_filter('phoneNumbers[type eq "mobile"]'), babs)
    # ne: no value equals
    assert matches(parse_filter('emails.type ne "other"'), babs)
    assert matches(parse_filter('emails.type ne "home"'), babs) is False


def test_dates_compare_as_instants() -> None:
    babs = bjensen()  # lastModified 2011-05-13T04:42:34Z
    assert matches(parse_filter('meta.lastModified eq "2011-05-13T06:42:34+02:00"'), babs)
    assert matches(parse_filter('meta.lastModified gt "2011-05-13T06:42:33+02:00"'), babs)
    assert matches(parse_filter('meta.created lt "2010-01-23T04:56:22.5Z"'), babs)
    with pytest.raises(ScimError) as info:
        matches(parse_filter('meta.created gt "yesterday"'), babs)
    assert info.value.scim_type == "invalidFilter"


def test_booleans_and_numbers() -> None:
    babs, jo = bjensen(), jomalley()
    assert matches(parse_filter("active eq true"), babs)
    assert matches(parse_filter("active eq false"), jo, resource_type=USERS)
    assert matches(parse_filter('active eq "true"'), babs) is False  # a string is not a boolean
    for bad in ("active gt true", 'active co "t"'):
        with pytest.raises(ScimError) as info:
            matches(parse_filter(bad), babs)
        assert info.value.scim_type == "invalidFilter"
    # an untyped (unknown resource type) numeric attribute
    thing = {"count": 3, "name": "x"}
    assert matches(parse_filter("count ge 3"), thing)
    assert matches(parse_filter("count lt 3"), thing) is False


def test_present_means_present_and_not_empty() -> None:
    babs = bjensen()
    assert matches(parse_filter("emails pr"), babs)
    assert matches(parse_filter("name.middleName pr"), babs)
    assert matches(parse_filter("nickName pr"), {**babs, "nickName": ""}) is False
    assert matches(parse_filter("emails pr"), {**babs, "emails": []}) is False
    assert matches(parse_filter("name pr"), {**babs, "name": {"givenName": None}}) is False
    assert matches(parse_filter("title pr"), {**babs, "title": None}) is False


def test_null_literal() -> None:
    babs = bjensen()
    assert matches(parse_filter("title eq null"), babs) is False
    assert matches(parse_filter("title ne null"), babs)
    assert matches(parse_filter("nickName eq null"), jomalley(), resource_type=USERS)


def test_extension_attributes() -> None:
    babs = bjensen()
    assert matches(parse_filter(f'{ENT}:employeeNumber eq "701984"'), babs)
    assert matches(
        parse_filter(f'{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"'), babs
    )
    assert matches(parse_filter(f'{ENT.upper()}:Department sw "tour"'), babs)
    # unqualified: only the extension defines it
    assert matches(parse_filter('costCenter eq "4130"'), babs)
    assert (
        matches(parse_filter(f"{ENT}:employeeNumber pr"), jomalley(), resource_type=USERS) is False
    )


def test_undefined_attributes_match_nothing() -> None:
    babs = {**bjensen(), "shoeSize": "42"}
    assert matches(parse_filter('shoeSize eq "42"'), babs) is False
    assert matches(parse_filter("shoeSize pr"), babs) is False
    assert matches(parse_filter('name.shoeSize eq "42"'), babs) is False
    assert matches(parse_filter('urn:example:ext:1.0:User:x eq "1"'), babs) is False
    assert matches(parse_filter('not (shoeSize eq "42")'), babs)


def test_groups_and_agents() -> None:
    group = tour_guides()
    assert matches(parse_filter('displayName eq "tour guides"'), group)
    assert matches(parse_filter('members[value eq "902c246b-6245-4190-8e05-00816be7344a"]'), group)
    assert matches(parse_filter('members eq "2819c223-7f76-453a-919d-413861904646"'), group)
    assert matches(parse_filter('members.display co "pepperidge"'), group)
    assert matches(parse_filter('members[value eq "nobody"]'), group) is False
    agent = {
        "schemas": [schemas.AGENT],
        "id": "release-bot",
        "displayName": "Release bot",
        "agentType": "autonomous",
        "active": True,
        "owners": [{"value": "bjensen", "display": "Babs Jensen"}],
    }
    assert matches(parse_filter('owners[value eq "bjensen"] and active eq true'), agent)
    assert matches(parse_filter('agentType eq "AUTONOMOUS"'), agent)
    assert matches(parse_filter('displayName sw "release"'), agent)


def test_matches_value() -> None:
    emails = schemas.attribute(schemas.USER, "emails")
    assert emails is not None
    node = parse_filter('type eq "work" and value ew "example.com"')
    assert matches_value(node, {"type": "Work", "value": "a@EXAMPLE.com"}, emails)
    assert not matches_value(node, {"type": "home", "value": "a@example.com"}, emails)
    assert not matches_value(parse_filter('nope eq "x"'), {"nope": "x"}, emails)


def test_untyped_resources_compare_generically() -> None:
    thing: dict[str, Any] = {"kind": "Widget", "tags": ["a", "B"], "parts": [{"value": "p1"}]}
    assert matches(parse_filter('kind eq "widget"'), thing)
    assert matches(parse_filter('tags eq "b"'), thing)
    assert matches(parse_filter('parts eq "P1"'), thing)


# ---------------------------------------------------------------------------- PATCH paths


def test_patch_paths() -> None:
    assert parse_path("members") == PatchPath(AttrPath("members"))
    assert parse_path("name.familyName") == PatchPath(AttrPath("name", "familyName"))
    assert parse_path('members[value eq "2819c223"]') == PatchPath(
        AttrPath("members"), Compare(AttrPath("value"), "eq", "2819c223")
    )
    assert parse_path('addresses[type eq "work"].streetAddress') == PatchPath(
        AttrPath("addresses"), Compare(AttrPath("type"), "eq", "work"), "streetAddress"
    )
    assert parse_path(f"{ENT}:manager.value") == PatchPath(AttrPath("manager", "value", ENT))
    assert parse_path('emails[type eq "work" and value ew "]x"].display').sub == "display"
    # a bare schema URN: the extension as a whole
    assert parse_path(ENT, resource_type=USERS) == PatchPath(AttrPath("", None, ENT))
    assert parse_path(ENT.upper(), resource_type=USERS) == PatchPath(AttrPath("", None, ENT))
    assert parse_path(ENT) == PatchPath(AttrPath("", None, ENT))


@pytest.mark.parametrize(
    ("text", "scim_type"),
    [
        ("", "invalidPath"),
        ("name..x", "invalidPath"),
        ("na me", "invalidPath"),
        ('emails[type eq "work"', "invalidPath"),
        ('emails[type eq "work"]value', "invalidPath"),
        ('emails[type eq "work"].', "invalidPath"),
        ('name.givenName[type eq "x"]', "invalidPath"),
        ('emails[type xx "work"]', "invalidFilter"),
        ("emails[]", "invalidFilter"),
    ],
)
def test_bad_patch_paths(text: str, scim_type: str) -> None:
    with pytest.raises(ScimError) as info:
        parse_path(text)
    assert (info.value.status, info.value.scim_type) == (400, scim_type)


def test_value_filter_error_position_is_in_the_whole_path() -> None:
    with pytest.raises(ScimError) as info:
        parse_path('emails[type xx "work"]')
    assert info.value.details["position"] == 12

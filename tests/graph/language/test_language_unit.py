"""Focused tests of the language API: round trips, positions, JSON input, normalization."""

from __future__ import annotations

import json

import pytest

from keyplane.errors import InvalidModelError
from keyplane.graph.language import (
    load_model,
    parse_dsl,
    validate_dsl,
    validate_model,
    validate_object_id,
    write_dsl,
)

MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user, user:*, group#member]

type folder
  relations
    define owner: [user]
    define parent: [folder]
    define viewer: [user with in_office_hours, group#member] or owner or viewer from parent
    define blocked: [user]
    define can_view: (viewer and owner) but not blocked

condition in_office_hours(current_time: timestamp, hours: list<int>) {
  current_time.getHours() in hours
}
"""


def test_round_trip_is_byte_exact() -> None:
    model = parse_dsl(MODEL)
    assert write_dsl(model) == MODEL
    assert parse_dsl(write_dsl(model)) == model


def test_parsed_shape() -> None:
    model = parse_dsl(MODEL)
    folder = model["type_definitions"][2]
    assert folder["relations"]["can_view"] == {
        "difference": {
            "base": {
                "intersection": {
                    "child": [
                        {"computedUserset": {"relation": "viewer"}},
                        {"computedUserset": {"relation": "owner"}},
                    ]
                }
            },
            "subtract": {"computedUserset": {"relation": "blocked"}},
        }
    }
    viewer_types = folder["metadata"]["relations"]["viewer"]["directly_related_user_types"]
    assert viewer_types == [
        {"type": "user", "condition": "in_office_hours"},
        {"type": "group", "relation": "member"},
    ]
    params = model["conditions"]["in_office_hours"]["parameters"]
    assert params["hours"] == {
        "type_name": "TYPE_NAME_LIST",
        "generic_types": [{"type_name": "TYPE_NAME_INT"}],
    }
    assert model["conditions"]["in_office_hours"]["expression"] == (
        "current_time.getHours() in hours"
    )


def test_comments_and_trailing_blanks_are_ignored() -> None:
    noisy = MODEL.replace("type user\n", "# people\ntype user   # the humans\n")
    assert parse_dsl(noisy) == parse_dsl(MODEL)


def test_syntax_error_has_zero_based_position() -> None:
    dsl = "model\n  schema 1.1\ntype doc\n  relations\n    define viewer [user]\n"
    with pytest.raises(InvalidModelError) as info:
        parse_dsl(dsl)
    (issue,) = info.value.errors
    assert issue.message == "missing ':' at '['"
    assert (issue.line, issue.column) == ((4, 4), (18, 19))
    assert info.value.to_dict()["details"]["errors"][0]["line"] == {"start": 4, "end": 4}


def test_semantic_error_position_and_type() -> None:
    dsl = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: editor\n"
    (issue,) = validate_dsl(dsl)
    assert issue.message == "the relation `editor` does not exist."
    assert issue.error_type == "missing-definition"
    assert (issue.line, issue.column) == ((5, 5), (19, 25))


def test_parse_without_validation_transforms_invalid_models() -> None:
    dsl = "model\n  schema 1.1\ntype doc\n  relations\n    define viewer: editor\n"
    assert parse_dsl(dsl, validate=False)["type_definitions"][0]["type"] == "doc"
    with pytest.raises(InvalidModelError):
        parse_dsl(dsl)


def test_load_model_accepts_dsl_json_text_and_dict() -> None:
    from_dsl = load_model(MODEL)
    assert load_model(json.dumps(from_dsl)) == from_dsl
    assert load_model(from_dsl) == from_dsl


def test_load_model_normalizes_protojson_spellings() -> None:
    camel = {
        "schemaVersion": "1.1",
        "typeDefinitions": [
            {"type": "user"},
            {
                "type": "doc",
                "relations": {
                    "owner": {"this": {}},
                    "viewer": {"computed_userset": {"relation": "owner"}},
                },
                "metadata": {
                    "relations": {"owner": {"directlyRelatedUserTypes": [{"type": "user"}]}}
                },
            },
        ],
    }
    model = load_model(camel)
    assert model["schema_version"] == "1.1"
    doc = model["type_definitions"][1]
    assert doc["relations"]["viewer"] == {"computedUserset": {"relation": "owner"}}
    assert write_dsl(camel).endswith("define viewer: owner\n")


def test_load_model_rejects_bad_json() -> None:
    with pytest.raises(InvalidModelError) as info:
        load_model('{"schema_version": "1.1",')
    assert info.value.errors[0].error_type == "invalid-model-json"
    issues = validate_model({"schema_version": "1.1", "type_definitions": {"type": "user"}})
    assert [i.message for i in issues] == ["`type_definitions` must be a list"]


def test_json_model_is_validated_like_dsl() -> None:
    model = parse_dsl(MODEL)
    model["type_definitions"][2]["relations"]["viewer"] = {"computedUserset": {"relation": "nope"}}
    (issue,) = validate_model(model)
    assert issue.message == "the relation `nope` does not exist."
    assert issue.line is None


def test_cyclic_models_are_checked_quickly() -> None:
    names = [f"r{i}" for i in range(20)]
    lines = ["model", "  schema 1.1", "type user", "type doc", "  relations"]
    for name in names:
        others = " or ".join(n for n in names if n != name)
        lines.append(f"    define {name}: {others}")
    issues = validate_dsl("\n".join(lines) + "\n")
    assert len(issues) == 20
    assert all(i.message.endswith("(potential loop).") for i in issues)


@pytest.mark.parametrize(
    ("object_id", "valid"),
    [("doc-1", True), ("a/b@c.d+e|f_g", True), ("*doc", False), ("a:b", False), ("", False)],
)
def test_object_ids(object_id: str, valid: bool) -> None:
    assert validate_object_id(object_id) is valid


def test_deep_nesting_is_an_issue_not_a_crash() -> None:
    deep_dsl = (
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: [user]\n"
        "    define b: " + "(" * 3000 + "a" + ")" * 3000 + "\n"
    )
    assert [i.message for i in validate_dsl(deep_dsl)] == ["the model is nested too deeply"]
    userset: dict[str, object] = {"computedUserset": {"relation": "a"}}
    for _ in range(200):
        userset = {"union": {"child": [userset, {"computedUserset": {"relation": "a"}}]}}
    model = {
        "schema_version": "1.1",
        "type_definitions": [{"type": "doc", "relations": {"a": userset}}],
    }
    assert [i.message for i in validate_model(model)] == ["the model is nested too deeply"]
    with pytest.raises(InvalidModelError):
        write_dsl(model)
    with pytest.raises(InvalidModelError):
        load_model(json.dumps(model))

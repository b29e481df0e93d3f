"""Conditions: OpenFGA's parameter types, missing and ill-typed parameters, precedence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyplane.errors import ConditionError, InvalidModelError
from keyplane.graph.conditions import (
    CompiledCondition,
    ParamType,
    compile_conditions,
    parse_duration,
    parse_timestamp,
)


def ptype(name: str, generic: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type_name": f"TYPE_NAME_{name.upper()}"}
    if generic is not None:
        out["generic_types"] = [generic]
    return out


def one(expression: str, **params: dict[str, Any]) -> CompiledCondition:
    conds = compile_conditions({"c": {"name": "c", "expression": expression, "parameters": params}})
    return conds["c"]


def ok(cond: CompiledCondition, **ctx: Any) -> bool:
    return cond.evaluate(None, ctx)


# --- every parameter type ---------------------------------------------------------------------


def test_int() -> None:
    c = one("x < 100", x=ptype("int"))
    assert ok(c, x=10) is True
    assert ok(c, x=100) is False
    assert ok(c, x=10.0) is True  # JSON numbers arrive as floats; integral is fine
    assert ok(c, x="42") is True  # numeric strings, as OpenFGA
    assert c.name == "c"
    assert str(c.parameters["x"]) == "int"


@pytest.mark.parametrize("bad", [10.5, "ten", True, None, [1], "1.5"])
def test_int_rejects(bad: Any) -> None:
    c = one("x < 100", x=ptype("int"))
    with pytest.raises(ConditionError) as ei:
        ok(c, x=bad)
    assert ei.value.fga_code == 2000
    assert "failed to convert context parameter 'x'" in ei.value.message


def test_uint_is_a_real_cel_uint() -> None:
    c = one("x + 1u == 4u", x=ptype("uint"))
    assert ok(c, x=3) is True
    assert ok(c, x=3.0) is True
    with pytest.raises(ConditionError):
        ok(c, x=-1)
    with pytest.raises(ConditionError):
        ok(c, x=1.5)


def test_list_of_uint() -> None:
    c = one("l.exists(e, e == 4u)", l=ptype("list", ptype("uint")))
    assert ok(c, l=[1, 4]) is True
    assert ok(c, l=[1]) is False
    with pytest.raises(ConditionError):
        ok(c, l=[-4])


def test_double() -> None:
    c = one("x > 0.0", x=ptype("double"))
    assert ok(c, x=0.5) is True
    assert ok(c, x=1) is True  # ints convert
    assert ok(c, x="-2.5") is False
    with pytest.raises(ConditionError):
        ok(c, x="abc")


def test_bool() -> None:
    c = one("b", b=ptype("bool"))
    assert ok(c, b=True) is True
    assert ok(c, b=False) is False
    with pytest.raises(ConditionError):
        ok(c, b=1)
    with pytest.raises(ConditionError):
        ok(c, b="true")


def test_string() -> None:
    c = one('s == "hello"', s=ptype("string"))
    assert ok(c, s="hello") is True
    assert ok(c, s="bye") is False
    with pytest.raises(ConditionError):
        ok(c, s=5)


def test_bytes() -> None:
    c = one('b == b"abc" && size(b) == 3', b=ptype("bytes"))
    assert ok(c, b="abc") is True
    assert ok(c, b=b"abc") is True
    assert ok(c, b="abd") is False
    with pytest.raises(ConditionError):
        ok(c, b=3)


def test_duration() -> None:
    c = one('d >= duration("1h") && d < duration("2h")', d=ptype("duration"))
    assert ok(c, d="1h30m") is True
    assert ok(c, d="90m") is True
    assert ok(c, d="59m59.999s") is False
    assert ok(c, d=timedelta(hours=1)) is True
    for bad in ("1 hour", "", "1d", 5, "h"):
        with pytest.raises(ConditionError):
            ok(c, d=bad)


def test_parse_duration_go_syntax() -> None:
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("-1.5s") == timedelta(seconds=-1.5)
    assert parse_duration("300ms") == timedelta(milliseconds=300)
    assert parse_duration("2us") == parse_duration("2µs") == timedelta(microseconds=2)
    assert parse_duration("0") == timedelta(0)
    assert parse_duration(".5h") == timedelta(minutes=30)
    with pytest.raises(ValueError):
        parse_duration("1")


def test_timestamp_and_duration_arithmetic() -> None:
    c = one(
        "current_time < grant_time + grant_duration",
        current_time=ptype("timestamp"),
        grant_time=ptype("timestamp"),
        grant_duration=ptype("duration"),
    )
    base = {"grant_time": "2023-01-01T00:00:00Z", "grant_duration": "1h"}
    assert ok(c, current_time="2023-01-01T00:59:59Z", **base) is True
    assert ok(c, current_time="2023-01-01T01:00:00Z", **base) is False
    assert ok(c, current_time="2023-01-01T02:00:00+02:00", **base) is True  # offsets honoured
    assert ok(c, current_time=datetime(2023, 1, 1, 0, 30, tzinfo=UTC), **base) is True


def test_timestamp_literal_comparison() -> None:
    c = one('ts < timestamp("2023-10-11T10:00:00.000Z")', ts=ptype("timestamp"))
    assert ok(c, ts="2023-10-11T09:59:59.999999999Z") is True
    assert ok(c, ts="2023-10-11T10:00:00Z") is False
    for bad in ("2023-10-11", "2023-10-11T10:00:00", "yesterday", 1697018400):
        with pytest.raises(ConditionError):
            ok(c, ts=bad)


def test_parse_timestamp() -> None:
    assert parse_timestamp("2023-10-11T10:00:00.5+01:00") == datetime(
        2023, 10, 11, 9, 0, 0, 500000, tzinfo=UTC
    )


def test_ipaddress_in_cidr() -> None:
    c = one("user_ip.in_cidr(cidr)", user_ip=ptype("ipaddress"), cidr=ptype("string"))
    assert ok(c, user_ip="10.1.2.3", cidr="10.0.0.0/8") is True
    assert ok(c, user_ip="11.1.2.3", cidr="10.0.0.0/8") is False
    assert ok(c, user_ip="2001:db8::1", cidr="2001:db8::/32") is True
    assert ok(c, user_ip="2001:db8::1", cidr="10.0.0.0/8") is False
    with pytest.raises(ConditionError):
        ok(c, user_ip="10.1.2.300", cidr="10.0.0.0/8")
    with pytest.raises(ConditionError):
        ok(c, user_ip="10.1.2.3", cidr="not-a-cidr")


def test_ipaddress_literal_function() -> None:
    c = one('ip == ipaddress("192.168.0.1")', ip=ptype("ipaddress"))
    assert ok(c, ip="192.168.0.1") is True
    assert ok(c, ip="192.168.0.2") is False


def test_list() -> None:
    c = one('"admin" in roles', roles=ptype("list", ptype("string")))
    assert ok(c, roles=["user", "admin"]) is True
    assert ok(c, roles=[]) is False
    with pytest.raises(ConditionError):
        ok(c, roles="admin")
    with pytest.raises(ConditionError):
        ok(c, roles=["admin", 3])


def test_map() -> None:
    c = one('m["tier"] == 2 && has(m.tier)', m=ptype("map", ptype("int")))
    assert ok(c, m={"tier": 2}) is True
    assert ok(c, m={"tier": 2.0}) is True
    assert ok(c, m={"tier": 3}) is False
    with pytest.raises(ConditionError):
        ok(c, m={"tier": "gold"})
    with pytest.raises(ConditionError):
        ok(c, m=[1])


def test_nested_generics() -> None:
    c = one(
        'm["a"].exists(t, t < timestamp("2024-01-01T00:00:00Z"))',
        m=ptype("map", ptype("list", ptype("timestamp"))),
    )
    assert ok(c, m={"a": ["2023-06-01T00:00:00Z"]}) is True
    assert str(c.parameters["m"]) == "map<list<timestamp>>"


def test_any() -> None:
    c = one("user.favoriteColor == color", user=ptype("map", ptype("any")), color=ptype("any"))
    assert ok(c, user={"favoriteColor": "blue", "n": 3}, color="blue") is True
    assert ok(c, user={"favoriteColor": "red"}, color="blue") is False


# --- missing parameters, precedence, undeclared keys --------------------------------------------


def test_missing_parameter_is_an_error_listing_them() -> None:
    c = one("x < 100 || y < 50", x=ptype("int"), y=ptype("int"))
    with pytest.raises(ConditionError) as ei:
        c.evaluate(None, None)
    assert ei.value.details["missing_parameters"] == ["x", "y"]
    assert "missing" in ei.value.message and "'[x y]'" in ei.value.message
    assert ei.value.message.startswith("failed to evaluate relationship condition 'c'")
    # Even when CEL could short-circuit without y, OpenFGA's Check errors (2000).
    with pytest.raises(ConditionError) as ei:
        c.evaluate(None, {"x": 10})
    assert ei.value.details["missing_parameters"] == ["y"]


def test_missing_message_names_the_tuple() -> None:
    c = one("x < 100", x=ptype("int"))
    with pytest.raises(ConditionError, match=r"tuple 'document:1#viewer@user:jon' is missing"):
        c.evaluate({}, {}, tuple_key="document:1#viewer@user:jon")


def test_parameters_can_come_from_either_context() -> None:
    c = one("x < 100 && y < 50", x=ptype("int"), y=ptype("int"))
    assert c.evaluate({"x": 1}, {"y": 2}) is True
    assert c.evaluate({"y": 2}, {"x": 1}) is True


def test_tuple_context_wins_over_request_context() -> None:
    # openfga eval.EvaluateTupleCondition merges [request, tuple] and the last map wins.
    c = one("x < 100", x=ptype("int"))
    assert c.evaluate({"x": 1}, {"x": 1000}) is True
    assert c.evaluate({"x": 1000}, {"x": 1}) is False


def test_only_declared_parameters_reach_cel() -> None:
    c = one("x < 100", x=ptype("int"))
    # An undeclared key of a type CEL would reject is ignored, not converted or passed.
    assert c.evaluate({"junk": object()}, {"x": 5, "other": [1, 2]}) is True


def test_runtime_cel_error_is_a_condition_error() -> None:
    c = one('m["missing"] == 1', m=ptype("map", ptype("int")))
    with pytest.raises(ConditionError, match="failed to evaluate condition expression"):
        ok(c, m={})


def test_bad_value_error_is_code_2000() -> None:
    c = one("x < 100", x=ptype("int"))
    with pytest.raises(ConditionError) as ei:
        ok(c, x="abc")
    assert ei.value.fga_code == 2000
    assert ei.value.code == "condition_error"


# --- compilation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("x <", "Syntax"),
        ("x + 1", "bool"),
        ('"s"', "bool"),
        ("y < 3", "undeclared"),
        ("undefined_fn(x)", "undeclared"),
    ],
)
def test_invalid_expressions_make_the_model_invalid(expression: str, why: str) -> None:
    with pytest.raises(InvalidModelError) as ei:
        one(expression, x=ptype("int"))
    assert why in ei.value.message
    assert ei.value.errors and ei.value.errors[0].metadata["condition"] == "c"
    assert ei.value.fga_code == 2036


def test_bad_parameter_types_make_the_model_invalid() -> None:
    with pytest.raises(InvalidModelError):
        one("size(l) > 0", l=ptype("list"))  # list needs its generic type
    with pytest.raises(InvalidModelError):
        one("x", x={"type_name": "TYPE_NAME_NOPE"})
    with pytest.raises(InvalidModelError):
        compile_conditions({"a": {"name": "b", "expression": "true", "parameters": {}}})


def test_every_invalid_condition_is_reported() -> None:
    with pytest.raises(InvalidModelError) as ei:
        compile_conditions(
            {
                "a": {"name": "a", "expression": "x +", "parameters": {"x": ptype("int")}},
                "b": {"name": "b", "expression": "x", "parameters": {"x": ptype("int")}},
                "c": {"name": "c", "expression": "x < 1", "parameters": {"x": ptype("int")}},
            }
        )
    assert [e.metadata["condition"] for e in ei.value.errors] == ["a", "b"]


def test_empty_and_none() -> None:
    assert compile_conditions(None) == {}
    assert compile_conditions({}) == {}


def test_param_type_from_json() -> None:
    t = ParamType.from_json(ptype("list", ptype("map", ptype("string"))))
    assert str(t) == "list<map<string>>"
    assert t.convert([{"a": "b"}]) == [{"a": "b"}]


@pytest.mark.parametrize(
    "bad", [float("inf"), float("-inf"), float("nan"), "1.8e+309", "-1.8e+309", "nan"]
)
def test_double_rejects_non_finite_and_out_of_range(bad: Any) -> None:
    c = one("x > 0.0", x=ptype("double"))
    with pytest.raises(ConditionError):
        ok(c, x=bad)
    assert ok(c, x=1.7976931348623157e308) is True

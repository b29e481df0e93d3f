"""Expand (OpenFGA UsersetTree shape) and explain (paths and denial reasons)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_helpers import DOCS, engine

from keyplane.clock import FixedClock
from keyplane.errors import ValidationError
from keyplane.graph import expand as expand_mod
from keyplane.graph.tuples import Tuple

TUPLES = [
    "group:eng#member@user:anne",
    "folder:root#viewer@group:eng#member",
    "folder:pub#viewer@user:*",
    "document:1#parent@folder:root",
    "document:2#owner@user:bob",
    "document:2#blocked@user:bob",
    "document:3#parent@folder:pub",
    "document:4#editor@user:carl",
    "document:4#auditor@user:carl",
    "document:4#auditor@user:dan",
]


@pytest.fixture
def eng():  # type: ignore[no-untyped-def]
    return engine(DOCS, TUPLES, clock=FixedClock(1000.0))


def test_expand_direct_leaf(eng) -> None:  # type: ignore[no-untyped-def]
    tree = eng.expand("group:eng", "member")
    assert tree == {
        "tree": {"root": {"name": "group:eng#member", "leaf": {"users": {"users": ["user:anne"]}}}}
    }


def test_expand_rewrites(eng) -> None:  # type: ignore[no-untyped-def]
    root = eng.expand("document:1", "viewer")["tree"]["root"]
    assert root["name"] == "document:1#viewer"
    base, subtract = root["difference"]["base"], root["difference"]["subtract"]
    direct, computed, ttu = base["union"]["nodes"]
    assert direct["leaf"]["users"]["users"] == []
    assert computed["leaf"]["computed"]["userset"] == "document:1#editor"
    assert ttu["leaf"]["tupleToUserset"] == {
        "tupleset": "document:1#parent",
        "computed": [{"userset": "folder:root#viewer"}],
    }
    assert subtract["leaf"]["computed"]["userset"] == "document:1#blocked"
    json.dumps(root)  # plain JSON


def test_expand_intersection_and_errors(eng) -> None:  # type: ignore[no-untyped-def]
    root = eng.expand("document:4", "auditor")["tree"]["root"]
    leaf, comp = root["intersection"]["nodes"]
    assert leaf["leaf"]["users"]["users"] == ["user:carl", "user:dan"]
    assert comp["leaf"]["computed"]["userset"] == "document:4#editor"
    # as check (and OpenFGA's expand: ValidateObject / ValidateRelation): 2000, not 2021/2022
    for obj, rel in [("nope:1", "viewer"), ("document:1", "nope"), ("document:*", "viewer")]:
        with pytest.raises(ValidationError) as ei:
            eng.expand(obj, rel)
        assert type(ei.value) is ValidationError and ei.value.fga_code == 2000
        with pytest.raises(ValidationError) as ci:
            eng.check("user:anne", rel, obj)
        assert ci.value.to_dict() == ei.value.to_dict()


def test_expand_uses_the_engine_depth_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    eng = engine(DOCS, ["document:9#viewer@user:carl"], max_depth=3)
    captured: list[object] = []
    real = expand_mod.Req

    def spy(*args: Any) -> Any:
        captured.append(args[8])  # the Req's max_depth
        return real(*args)

    monkeypatch.setattr(expand_mod, "Req", spy)
    eng.expand("document:9", "viewer")
    assert captured == [3]


def test_explain_allowed_path(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:anne", "viewer", "document:1")
    assert ex.allowed
    [path] = ex.paths
    kinds = [s["kind"] for s in path]
    assert kinds == ["but_not", "tuple_to_userset", "userset", "direct"]
    assert path[1]["tuple"] == "document:1#parent@folder:root"
    assert path[2]["tuple"] == "folder:root#viewer@group:eng#member"
    assert path[3]["tuple"] == "group:eng#member@user:anne"
    text = ex.render()
    assert text.startswith("ALLOWED: user:anne viewer document:1")
    assert "group:eng#member@user:anne" in text
    assert json.loads(json.dumps(ex.to_dict()))["allowed"] is True


def test_explain_wildcard(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:zoe", "viewer", "document:3")
    assert ex.allowed and ex.paths[0][-1] == {
        "kind": "wildcard",
        "tuple": "folder:pub#viewer@user:*",
    }


def test_explain_no_tuple(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:zed", "viewer", "document:1")
    assert not ex.allowed and not ex.paths
    assert {"kind": "no_tuple", "at": "document:1#viewer", "user": "user:zed"} in ex.reasons
    assert "DENIED" in ex.render()


def test_explain_excluded(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:bob", "viewer", "document:2")
    assert not ex.allowed
    [r] = [r for r in ex.reasons if r["kind"] == "excluded"]
    assert r["by"] == "document:2#blocked"
    assert r["paths"][0][-1]["tuple"] == "document:2#blocked@user:bob"


def test_explain_intersection_missing(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:dan", "auditor", "document:4")
    assert not ex.allowed
    [r] = ex.reasons
    assert r["kind"] == "intersection_missing" and r["missing"] == ["document:4#editor"]
    ok = eng.explain("user:carl", "auditor", "document:4")
    assert ok.allowed and ok.paths[0][0]["kind"] == "intersection"


def test_explain_condition_false_and_error() -> None:
    t = Tuple("document:5", "viewer", "user:ann", "in_hours", None)
    e = engine(DOCS, [t])
    ex = e.explain("user:ann", "viewer", "document:5", context={"hour": 20})
    assert not ex.allowed
    assert {
        "kind": "condition_false",
        "tuple": "document:5#viewer@user:ann",
        "condition": "in_hours",
        "params": {"hour": 20},
    } in ex.reasons
    err = e.explain("user:ann", "viewer", "document:5")
    assert not err.allowed and err.error is not None and err.error["fga_code"] == 2000
    assert any(r["kind"] == "condition_error" for r in err.reasons)
    ok = e.explain("user:ann", "viewer", "document:5", context={"hour": 10})
    assert ok.allowed and ok.paths[0][-1]["condition"] == "in_hours"


def test_explain_expired() -> None:
    clock = FixedClock(2000.0)
    t = Tuple("document:6", "viewer", "user:tim", expires_at=1500.0)
    e = engine(DOCS, [t], clock=clock)
    ex = e.explain("user:tim", "viewer", "document:6")
    assert not ex.allowed
    assert {
        "kind": "expired",
        "tuple": "document:6#viewer@user:tim",
        "expired_at": "1970-01-01T00:25:00Z",
    } in ex.reasons


def test_expand_lists_conditional_tuples_without_evaluating_them() -> None:
    clock = FixedClock(1000.0)
    e = engine(
        DOCS,
        [
            Tuple("document:7", "viewer", "user:ann", "in_hours", None),
            Tuple("document:7", "viewer", "user:old", expires_at=900.0),
            "document:7#viewer@user:bob",
        ],
        clock=clock,
    )
    root = e.expand("document:7", "viewer")["tree"]["root"]
    direct = root["difference"]["base"]["union"]["nodes"][0]
    assert direct["leaf"]["users"]["users"] == ["user:ann", "user:bob"]  # no context needed

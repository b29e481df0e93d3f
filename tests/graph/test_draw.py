"""Drawing access paths (keyplane.graph.draw): the DOT is parsed by an independent
implementation (pydot, a pyparsing grammar of the Graphviz language) and its nodes and
edges compared with the explanation; the Mermaid is checked structurally by a strict
line grammar (node ids, quoted labels, arrows). Hostile identities cannot break out of a
label in either."""

from __future__ import annotations

import html
import re
from typing import Any

import pydot
import pytest
from engine_helpers import DOCS, engine

from keyplane.clock import FixedClock
from keyplane.governance.posture import AccessEntry
from keyplane.graph import draw
from keyplane.graph.explain import Explanation

# pydot's grammar uses pyparsing names newer pyparsing releases deprecate
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")

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
]


@pytest.fixture
def eng():  # type: ignore[no-untyped-def]
    return engine(DOCS, TUPLES, clock=FixedClock(1000.0))


# ------------------------------------------------------------------------------ DOT reading

Edge = tuple[str, str, str, bool]  # (from label, to label, edge label, dashed)


def _unquote(v: str | None) -> str:
    """A DOT double-quoted string's value (pydot keeps the quotes and escapes)."""
    assert v is not None and v.startswith('"') and v.endswith('"'), v
    return re.sub(r'\\(["\\n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), v[1:-1])


def read_dot(text: str) -> tuple[dict[str, str], set[Edge], dict[str, dict[str, Any]]]:
    """(node id → label, edges by labels, node id → attributes), from pydot's parse."""
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1, "not exactly one valid DOT graph"
    g = graphs[0]
    assert g.get_type() == "digraph"
    nodes: dict[str, str] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for n in g.get_nodes():
        if n.get_name() in ("node", "edge", "graph"):
            continue  # default attribute statements
        assert re.fullmatch(r"n\d+", n.get_name()), n.get_name()
        nodes[n.get_name()] = _unquote(n.get("label"))
        attrs[n.get_name()] = n.get_attributes()
    edges: set[Edge] = set()
    for e in g.get_edges():
        src, dst = e.get_source(), e.get_destination()
        assert src in nodes and dst in nodes, "an edge to an undeclared node"
        edges.add((nodes[src], nodes[dst], _unquote(e.get("label")), e.get("style") == "dashed"))
    return nodes, edges, attrs


# ------------------------------------------------------------------------------ Mermaid reading

_ENTITY = re.compile(r"#(amp|quot|lt|gt|\d+);")
_NAMED = {"amp": "&", "quot": '"', "lt": "<", "gt": ">"}
_NODE = re.compile(r'  (n\d+)(\["|\(\["|\{\{"|>")([^"]*)("\]\)|"\]|"\}\})')
_EDGE = re.compile(r'  (n\d+) (-->|-\.->)\|"([^"]*)"\| (n\d+)')
_CLOSE = {'["': '"]', '(["': '"])', '{{"': '"}}', '>"': '"]'}


def _mermaid_unescape(text: str) -> str:
    assert "<" not in text.replace("<br/>", "") and ">" not in text.replace("<br/>", "")
    text = text.replace("<br/>", "\n")
    return _ENTITY.sub(lambda m: _NAMED.get(m.group(1)) or chr(int(m.group(1))), text)


def read_mermaid(text: str) -> tuple[str | None, dict[str, str], set[Edge]]:
    """(title, node id → label, edges by labels) of a ``flowchart LR``, every line checked
    against the grammar the drawing promises."""
    lines = text.rstrip("\n").split("\n")
    title = None
    if lines[0] == "---":
        assert lines[2] == "---" and lines[1].startswith("title: ")
        import json

        title = json.loads(lines[1][len("title: ") :])
        lines = lines[3:]
    assert lines[0] == "flowchart LR"
    nodes: dict[str, str] = {}
    edges: set[Edge] = set()
    for line in lines[1:]:
        m = _NODE.fullmatch(line)
        if m:
            assert _CLOSE[m.group(2)] == m.group(4), f"mismatched shape in {line!r}"
            assert m.group(1) not in nodes
            nodes[m.group(1)] = _mermaid_unescape(m.group(3))
            continue
        m = _EDGE.fullmatch(line)
        assert m, f"not a node or an edge: {line!r}"
        src, dst = m.group(1), m.group(4)
        assert src in nodes and dst in nodes, "an edge before its nodes"
        edges.add((nodes[src], nodes[dst], _mermaid_unescape(m.group(3)), m.group(2) == "-.->"))
    return title, nodes, edges


# ------------------------------------------------------------------------------ tests


def test_an_allowed_explanation_is_its_paths(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:anne", "viewer", "document:1")
    assert ex.allowed
    want = {
        ("document:1#viewer\nbut not document:1#blocked", "folder:root#viewer",
         "from parent", False),
        ("folder:root#viewer", "group:eng#member", "member", False),
        ("group:eng#member", "user:anne", "direct", False),
    }  # fmt: skip
    nodes, edges, attrs = read_dot(draw.explanation_dot(ex))
    assert edges == want
    assert sorted(nodes.values())[-1] == "user:anne"
    shapes = {nodes[n]: a["shape"] for n, a in attrs.items()}
    assert shapes["user:anne"] == "ellipse" and shapes["group:eng#member"] == "box"
    title, mnodes, medges = read_mermaid(draw.explanation_mermaid(ex))
    assert title == "ALLOWED: user:anne viewer document:1"
    assert medges == want and set(mnodes.values()) == set(nodes.values())


def test_computed_wildcard_and_intersection_steps(eng) -> None:  # type: ignore[no-untyped-def]
    _, edges, attrs = read_dot(
        draw.explanation_dot(eng.explain("user:zed", "viewer", "document:3"))
    )
    assert ("folder:pub#viewer", "user:*", "wildcard", False) in edges
    assert ("user:*", "user:zed", "matches", False) in edges
    assert "diamond" in {a["shape"] for a in attrs.values()}
    _, _, edges = read_mermaid(draw.explanation_mermaid(eng.explain("user:carl", "auditor",
                                                                   "document:4")))  # fmt: skip
    assert ("document:4#auditor\nall of:", "user:carl", "direct", False) in edges
    assert ("document:4#auditor\nall of:", "document:4#editor", "computed", False) in edges
    assert ("document:4#editor", "user:carl", "direct", False) in edges


def test_a_denied_explanation_shows_its_reasons(eng) -> None:  # type: ignore[no-untyped-def]
    ex = eng.explain("user:bob", "viewer", "document:2")
    assert not ex.allowed
    nodes, edges, attrs = read_dot(draw.explanation_dot(ex))
    reasons = {e for e in edges if e[2] == "denied"}
    assert reasons and all(e[3] for e in reasons)  # dashed
    assert any(e[1].startswith("excluded: document:2#viewer") for e in reasons)
    red = [nodes[n] for n, a in attrs.items() if a.get("color") == "red"]
    assert len(red) == len(reasons)
    _, _, medges = read_mermaid(draw.explanation_mermaid(ex))
    assert {e for e in medges if e[2] == "denied"} == reasons


def test_access_entries_with_a_delegation_dashed() -> None:
    entries = [
        AccessEntry("agent:x", "viewer", "document:1",
                    paths=([{"kind": "direct", "tuple": "document:1#viewer@agent:x"}],)),
        AccessEntry("agent:x", "viewer", "document:1", via="delegation",
                    on_behalf_of="human:alice", delegation_id="01DEL",
                    paths=([{"kind": "direct", "tuple": "document:1#viewer@human:alice"}],)),
        AccessEntry("agent:x", "editor", "document:2"),  # no paths: a summary edge
    ]  # fmt: skip
    want = {
        ("document:1#viewer", "agent:x", "direct", False),
        ("document:1#viewer", "human:alice", "direct", False),
        ("human:alice", "agent:x", "delegates (01DEL)", True),
        ("document:2#editor", "agent:x", "editor", False),
    }
    _, edges, _ = read_dot(draw.access_dot(entries, title="agent:x"))
    assert edges == want
    title, _, medges = read_mermaid(draw.access_mermaid(entries, title="agent:x"))
    assert medges == want and title == "agent:x"
    # the same input draws the same text (stable node ids)
    assert draw.access_dot(entries) == draw.access_dot(list(entries))
    assert read_mermaid(draw.access_mermaid([]))[1] == {}


HOSTILE = [
    'user:"];evil[label="x',
    'user:a\\"b',
    "user:<script>alert(1)</script>",
    "user:x|y`z&amp;#35;",
    'user:new\nline"}}',
]


@pytest.mark.parametrize("who", HOSTILE)
def test_hostile_identities_stay_inside_their_labels(who: str) -> None:
    entries = [
        AccessEntry(who, "viewer", "document:1"),
        AccessEntry(who, "viewer", "document:1", via="delegation",
                    on_behalf_of=who + "-boss", delegation_id='d"1'),
    ]  # fmt: skip
    nodes, edges, _ = read_dot(draw.access_dot(entries, title=who))
    assert who in nodes.values() and who + "-boss" in nodes.values()
    assert (who + "-boss", who, 'delegates (d"1)', True) in edges
    assert len(nodes) == 3  # nothing injected
    title, mnodes, medges = read_mermaid(draw.access_mermaid(entries, title=who))
    assert title == who and set(mnodes.values()) == set(nodes.values())
    assert medges == edges
    assert "<script>" not in draw.access_mermaid(entries)
    ex = Explanation(False, who, "viewer", "document:1", reasons=[{"kind": "no_tuple", "at": who}])
    read_dot(draw.explanation_dot(ex))
    read_mermaid(draw.explanation_mermaid(ex))
    assert html.escape("<script>") not in draw.explanation_mermaid(ex)

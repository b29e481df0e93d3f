"""Access paths drawn as Graphviz DOT and Mermaid flowcharts (issue 8 §1), so a person can
look at why someone has access instead of reading it.

Pure functions over an :class:`~keyplane.graph.explain.Explanation` or a sequence of
:class:`~keyplane.governance.posture.AccessEntry` (with their explain paths). The graph:

* **nodes** are the usersets a path walks through (``document:d1#viewer``, drawn as boxes —
  an object and a relation on it), the users at its end (ellipses / stadiums) and typed
  wildcards (``agent:*``, diamonds / hexagons); an entry drawn without paths is a box for
  its ``object#relation`` and its user;
* **edges** go from the object side to the user, labelled with the step: ``computed``
  (a relation implied by another), ``from parent`` (tuple-to-userset, naming the tupleset
  relation), ``member`` (a userset tuple followed), ``direct`` / ``wildcard`` (the final
  tuple; ``if <condition>`` when the tuple is conditional), ``and`` (a side of an
  intersection); a ``but not`` that did not apply is noted on its node;
* a **delegation** is a dashed edge from the delegator to the agent acting for it, labelled
  ``delegates`` and the delegation id (the delegator's own paths lead to the delegator).

Node ids are generated (``n0``, ``n1``, … in first-seen order, so a drawing is stable), never
taken from the input: identities and objects are user input, and every label is quoted and
escaped — DOT ``"…"`` with ``\\`` and ``"`` escaped; Mermaid ``"…"`` with its entity codes
(``#quot;``, ``#lt;``, …) — so no value can break out of its label or inject markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyplane.governance.posture import AccessEntry
from keyplane.graph.explain import Explanation

__all__ = ["access_dot", "access_mermaid", "explanation_dot", "explanation_mermaid"]


# ------------------------------------------------------------------------------ the graph


@dataclass(slots=True)
class _Graph:
    """Nodes (by name, in first-seen order) and de-duplicated edges."""

    title: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    edges: dict[tuple[str, str, str, bool], None] = field(default_factory=dict)

    def node(self, name: str) -> str:
        nid = self.ids.get(name)
        if nid is None:
            nid = self.ids[name] = f"n{len(self.ids)}"
        return nid

    def edge(self, src: str, dst: str, label: str, *, dashed: bool = False) -> None:
        self.node(src)
        self.node(dst)
        self.edges[(src, dst, label, dashed)] = None

    def note(self, name: str, text: str) -> None:
        self.node(name)
        got = self.notes.setdefault(name, [])
        if text not in got:
            got.append(text)

    def label(self, name: str) -> str:
        return "\n".join([name, *self.notes.get(name, ())])


def _shape(name: str) -> str:
    """``userset`` (object#relation), ``wildcard`` (type:*), ``reason`` or ``user``."""
    if name.startswith("\x00"):
        return "reason"
    if "#" in name:
        return "userset"
    if name.endswith(":*"):
        return "wildcard"
    return "user"


def _split(tuple_key: str) -> tuple[str, str]:
    """``object#relation@user`` → (``object#relation``, ``user``). Objects hold no ``#`` and
    relations no ``@``, so the first ``@`` after the first ``#`` is the separator (a user
    id may itself contain ``@``)."""
    at = tuple_key.index("@", tuple_key.index("#"))
    return tuple_key[:at], tuple_key[at + 1 :]


def _walk(g: _Graph, path: Sequence[Any], start: str, user: str) -> None:
    """Add one explain path (object side first) ending at ``user``."""
    cur = start
    for step in path:
        if not isinstance(step, dict):
            continue
        kind = step.get("kind")
        at = str(step.get("at") or cur)
        cond = step.get("condition")
        suffix = f" if {cond}" if cond else ""
        if kind == "computed":
            to = str(step["to"])
            g.edge(at, to, "computed")
            cur = to
        elif kind == "tuple_to_userset":
            to = str(step["to"])
            tupleset = _split(str(step["tuple"]))[0].rpartition("#")[2]
            g.edge(at, to, f"from {tupleset}{suffix}")
            cur = to
        elif kind == "userset":
            to = _split(str(step["tuple"]))[1]
            g.edge(at, to, f"member{suffix}")
            cur = to
        elif kind == "but_not":
            g.note(at, f"but not {step.get('excluded_by')}")
            cur = at
        elif kind == "intersection":
            g.note(at, "all of:")
            for sub in step.get("all_of") or ():
                _walk(g, sub, at, user)
            return
        elif kind == "self":
            return
        elif kind in ("direct", "wildcard"):
            src, to = _split(str(step["tuple"]))
            if kind == "wildcard" and to != user:
                g.edge(src, to, f"wildcard{suffix}")
                g.edge(to, user, "matches")
            else:
                g.edge(src, to, f"{kind}{suffix}")
            return


def _from_explanation(expl: Explanation) -> _Graph:
    verdict = "ALLOWED" if expl.allowed else "DENIED"
    g = _Graph(title=f"{verdict}: {expl.user} {expl.relation} {expl.object}")
    root = f"{expl.object}#{expl.relation}"
    g.node(root)
    if expl.allowed:
        for path in expl.paths:
            _walk(g, path, root, expl.user)
        return g
    g.node(expl.user)
    for i, r in enumerate(expl.reasons):
        text = f"{r.get('kind')}: {r.get('at') or r.get('tuple') or ''}"
        if r.get("by"):
            text += f" by {r['by']}"
        if r.get("condition"):
            text += f" ({r['condition']})"
        name = f"\x00{i}"  # a reason node: never a user or userset name
        g.note(name, text)
        g.edge(root, name, "denied", dashed=True)
        g.denied.add(name)
    return g


def _from_entries(entries: Iterable[AccessEntry], title: str | None) -> _Graph:
    g = _Graph(title=title)
    for e in entries:
        root = f"{e.object}#{e.relation}"
        holder = e.on_behalf_of if e.via == "delegation" and e.on_behalf_of else e.user
        if e.paths:
            for path in e.paths:
                _walk(g, path, root, holder)
        else:
            g.edge(root, holder, e.relation)
        if holder != e.user:
            label = f"delegates ({e.delegation_id})" if e.delegation_id else "delegates"
            g.edge(holder, e.user, label, dashed=True)
    return g


# ------------------------------------------------------------------------------ DOT


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslash and quote escaped, newlines as ``\\n``, no
    other control character."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return '"' + "".join(c if c >= " " else " " for c in out) + '"'


_DOT_SHAPES = {"userset": "box", "user": "ellipse", "wildcard": "diamond", "reason": "note"}


def _dot(g: _Graph) -> str:
    lines = ["digraph access {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    lines.append('  edge [fontname="Helvetica", fontsize=10];')
    if g.title:
        lines.append(f"  label={_dot_quote(g.title)};")
        lines.append("  labelloc=t;")
    for name, nid in g.ids.items():
        shape = _DOT_SHAPES[_shape(name)]
        label = g.label(name) if not name.startswith("\x00") else "\n".join(g.notes[name])
        extra = ", color=red" if name in g.denied else ""
        lines.append(f"  {nid} [label={_dot_quote(label)}, shape={shape}{extra}];")
    for src, dst, label, dashed in g.edges:
        style = ", style=dashed" if dashed else ""
        lines.append(f"  {g.ids[src]} -> {g.ids[dst]} [label={_dot_quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def explanation_dot(expl: Explanation) -> str:
    """The explanation as a Graphviz digraph: the granting paths, or the denial reasons."""
    return _dot(_from_explanation(expl))


def access_dot(entries: Iterable[AccessEntry], *, title: str | None = None) -> str:
    """Access entries (with their paths) as one Graphviz digraph; delegations dashed."""
    return _dot(_from_entries(entries, title))


# ------------------------------------------------------------------------------ Mermaid

_MERMAID_ENTITIES = {
    "&": "#amp;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "#": "#35;",
    "|": "#124;",
    "`": "#96;",
    "\\": "#92;",
}


def _mermaid_text(text: str) -> str:
    """Text for inside a Mermaid ``"…"`` label: every character that could end the label,
    open markup or start an entity becomes an entity code; a line break is ``<br/>``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out = []
    for line in lines:
        esc = "".join(_MERMAID_ENTITIES.get(c, c if c >= " " else " ") for c in line)
        out.append(esc)
    return "<br/>".join(out)


_MERMAID_SHAPES = {
    "userset": ('["', '"]'),
    "user": ('(["', '"])'),
    "wildcard": ('{{"', '"}}'),
    "reason": ('>"', '"]'),
}


def _mermaid(g: _Graph) -> str:
    lines: list[str] = []
    if g.title:
        # front matter; a JSON string is a valid YAML double-quoted scalar
        lines += ["---", f"title: {json.dumps(g.title, ensure_ascii=True)}", "---"]
    lines.append("flowchart LR")
    for name, nid in g.ids.items():
        label = g.label(name) if not name.startswith("\x00") else "\n".join(g.notes[name])
        left, right = _MERMAID_SHAPES[_shape(name)]
        lines.append(f"  {nid}{left}{_mermaid_text(label)}{right}")
    for src, dst, label, dashed in g.edges:
        arrow = "-.->" if dashed else "-->"
        lines.append(f'  {g.ids[src]} {arrow}|"{_mermaid_text(label)}"| {g.ids[dst]}')
    return "\n".join(lines) + "\n"


def explanation_mermaid(expl: Explanation) -> str:
    """The explanation as a Mermaid ``flowchart LR``."""
    return _mermaid(_from_explanation(expl))


def access_mermaid(entries: Iterable[AccessEntry], *, title: str | None = None) -> str:
    """Access entries (with their paths) as one Mermaid ``flowchart LR``; delegations
    dashed (``-.->``)."""
    return _mermaid(_from_entries(entries, title))

"""A synthetic organisation for the benchmarks, deterministic for a given seed and scale.

Shape (the OpenFGA model is :data:`MODEL_DSL`):

* **groups** form trees 2-4 levels deep (``group:b#member@group:a#member`` puts every
  member of ``a`` in ``b``); users belong to 1-4 leaf groups, so a user's membership chain
  is 2-4 groups long;
* **folders** grant 1-4 random groups ``viewer`` or ``editor`` (sometimes a user directly);
* **documents** have one ``parent`` folder (10-50 documents per folder) and 0-3 direct
  ``viewer``/``editor`` grants to users.

Two benchmark users get dedicated group chains whose folder grants are sized so that
:data:`NARROW_USER` can see about 1,000 documents and :data:`WIDE_USER` about 50,000 (or
40% of all documents when the scale is too small for 50,000). The exact counts are
computed by the floor evaluator and printed by ``run.py``.

The organisation is yielded as ``(object, relation, user)`` string triples, streamed, so a
memory probe can build a graph without also holding the generator's output.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "MODEL_DSL",
    "NARROW_USER",
    "WIDE_USER",
    "Org",
    "Scale",
    "generate",
]

MODEL_DSL = """\
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, group#member]
    define editor: [user, group#member]
type document
  relations
    define parent: [folder]
    define editor: [user, group#member] or editor from parent
    define viewer: [user, group#member] or editor or viewer from parent
"""

NARROW_USER = "user:bench-narrow"
WIDE_USER = "user:bench-wide"

Triple = tuple[str, str, str]


@dataclass(frozen=True)
class Scale:
    """Knobs of the organisation. :meth:`for_tuples` derives them from a tuple budget."""

    users: int
    group_trees: int
    folders: int
    narrow_docs: int = 1_000
    wide_docs: int = 50_000
    seed: int = 42

    @classmethod
    def for_tuples(cls, tuples: int, *, seed: int = 42) -> Scale:
        # Per 1M tuples: ~300k documents x ~2.5 tuples, ~60k users x ~2.5 memberships,
        # ~10k folders x ~2.5 grants, ~3k groups. See the module docstring.
        folders = max(50, round(tuples * 0.0109))
        users = max(200, round(tuples * 0.064))
        group_trees = max(5, round(tuples * 0.000266))
        return cls(users=users, group_trees=group_trees, folders=folders, seed=seed)


@dataclass
class Org:
    """What the generator decided, for building check samples (not needed to load a graph)."""

    users: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    tuples: int = 0


def generate(scale: Scale, org: Org | None = None) -> Iterator[Triple]:
    """Yield the organisation's tuples; fill ``org`` (if given) as a side effect."""
    rng = random.Random(scale.seed)
    org = org if org is not None else Org()
    n = 0

    # --- groups: trees of depth 2-4. Level 0 is the root; users join the deepest level.
    leaves: list[str] = []
    all_groups: list[str] = []
    tree_parent: dict[str, str] = {}
    gid = 0
    for _ in range(scale.group_trees):
        depth = rng.randint(2, 4)
        level = [f"group:g{gid}"]
        gid += 1
        all_groups.extend(level)
        for _lvl in range(1, depth):
            nxt: list[str] = []
            for parent in level:
                for _c in range(rng.randint(2, 4) if depth <= 3 else rng.randint(1, 3)):
                    child = f"group:g{gid}"
                    gid += 1
                    nxt.append(child)
                    tree_parent[child] = parent
                    n += 1
                    yield (parent, "member", f"{child}#member")
            all_groups.extend(nxt)
            level = nxt
        leaves.extend(level)
    # A few cross-links (a group nested in a second tree) make the graph a DAG, not a forest.
    linked: set[tuple[str, str]] = set()
    for _ in range(len(all_groups) // 20):
        child, parent = rng.choice(leaves), rng.choice(all_groups)
        # leaves have no sub-groups, so this never closes a cycle; skip existing edges
        if child != parent and (parent, child) not in linked and tree_parent.get(child) != parent:
            linked.add((parent, child))
            n += 1
            yield (parent, "member", f"{child}#member")
    org.groups = all_groups

    # --- users in 1-4 leaf groups.
    users = [f"user:u{i}" for i in range(scale.users)]
    for u in users:
        for g in rng.sample(leaves, min(len(leaves), rng.randint(1, 4))):
            n += 1
            yield (g, "member", u)
    org.users = users

    # --- folders with their documents, and group grants on folders.
    folders = [f"folder:f{i}" for i in range(scale.folders)]
    folder_docs: list[int] = []
    doc_i = 0
    documents: list[str] = []
    for f in folders:
        for g in rng.sample(all_groups, rng.randint(1, 4)):
            n += 1
            yield (f, rng.choice(("viewer", "viewer", "editor")), f"{g}#member")
        if rng.random() < 0.1:
            n += 1
            yield (f, "viewer", rng.choice(users))
        count = rng.randint(10, 50)
        folder_docs.append(count)
        for _ in range(count):
            d = f"document:d{doc_i}"
            doc_i += 1
            documents.append(d)
            n += 1
            yield (d, "parent", f)
            for u in rng.sample(users, rng.randint(0, 3)):
                n += 1
                yield (d, rng.choice(("viewer", "viewer", "editor")), u)
    org.folders = folders
    org.documents = documents

    # --- the two benchmark users, on dedicated group chains (isolated from the org trees,
    # so their visible sets are exactly what the grants below give).
    order = list(range(len(folders)))
    rng.shuffle(order)
    wide_target = min(scale.wide_docs, int(len(documents) * 0.4))
    narrow_target = min(scale.narrow_docs, int(len(documents) * 0.05))

    def take(target: int) -> list[str]:
        got, total = [], 0
        while order and total < target:
            i = order.pop()
            got.append(folders[i])
            total += folder_docs[i]
        return got

    # narrow: user -> narrow-1 -> narrow-0; narrow-0 views folders holding ~95% of the target,
    # plus ~5% direct document grants.
    chain = ["group:bench-narrow-0", "group:bench-narrow-1"]
    for t in _chain(chain, NARROW_USER):
        n += 1
        yield t
    for f in take(narrow_target * 95 // 100):
        n += 1
        yield (f, "viewer", f"{chain[0]}#member")
    for d in rng.sample(documents, narrow_target // 20):
        n += 1
        yield (d, "viewer", NARROW_USER)

    # wide: a 4-level chain; the root views ~60% of the folders, level 2 edits ~40%.
    chain = [f"group:bench-wide-{i}" for i in range(4)]
    for t in _chain(chain, WIDE_USER):
        n += 1
        yield t
    for f in take(wide_target * 60 // 100):
        n += 1
        yield (f, "viewer", f"{chain[0]}#member")
    for f in take(wide_target * 40 // 100):
        n += 1
        yield (f, "editor", f"{chain[2]}#member")
    org.groups = [*all_groups, "group:bench-narrow-0", "group:bench-narrow-1", *chain]
    org.users = [*users, NARROW_USER, WIDE_USER]
    org.tuples = n


def _chain(groups: list[str], user: str) -> Iterator[Triple]:
    """``groups[i+1]`` is nested in ``groups[i]``; ``user`` is a member of the last."""
    for parent, child in itertools.pairwise(groups):
        yield (parent, "member", f"{child}#member")
    yield (groups[-1], "member", user)


if __name__ == "__main__":  # quick look: python bench/gen.py 100000
    import sys
    from collections import Counter

    o = Org()
    c = Counter(
        f"{ob.split(':')[0]}#{r}" for ob, r, _u in generate(Scale.for_tuples(int(sys.argv[1])), o)
    )
    print(
        f"{o.tuples} tuples, {len(o.users)} users, {len(o.groups)} groups, "
        f"{len(o.folders)} folders, {len(o.documents)} documents"
    )
    for k, v in c.most_common():
        print(f"  {k:20} {v}")

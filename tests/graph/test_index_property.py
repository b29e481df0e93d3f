"""TupleIndex bookkeeping under random writes and deletes (hypothesis).

Every forward and reverse map must describe exactly the tuples a plain dict says are
there, whatever the order of adds, replacements and removals — the engine trusts the
reverse maps (list objects, the group walk) as much as the forward ones.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from keyplane.graph.index import Overlay, TupleIndex, values_of
from keyplane.graph.tuples import Tuple

OBJECTS = ["document:1", "document:2", "group:a", "group:b"]
RELATIONS = ["viewer", "member"]
USERS = ["user:x", "user:y", "user:*", "group:a#member", "group:b#member"]


@st.composite
def tuples(draw: st.DrawFn) -> Tuple:
    obj = draw(st.sampled_from(OBJECTS))
    rel = draw(st.sampled_from(RELATIONS))
    user = draw(st.sampled_from(USERS))
    cond = draw(st.sampled_from([None, None, "c"]))
    exp = draw(st.sampled_from([None, None, 100.0]))
    return Tuple(obj, rel, user, cond, {"p": 1} if cond else None, exp)


ops = st.lists(st.tuples(st.booleans(), tuples()), max_size=40)


def _expected_reverse(model: dict[tuple[str, str, str], Tuple]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for t in model.values():
        if t.condition or t.expires_at is not None or "#" in t.user:
            continue
        rk = f"{t.object.partition(':')[0]}#{t.relation}"
        out.setdefault(f"{rk}|{t.user}", set()).add(t.object)
    return out


@settings(max_examples=300, deadline=None)
@given(ops)
def test_index_matches_a_dict(seq: list[tuple[bool, Tuple]]) -> None:
    idx = TupleIndex()
    model: dict[tuple[str, str, str], Tuple] = {}
    for is_add, t in seq:
        if is_add:
            idx.add(t)
            model[t.key] = t
        else:
            idx.remove(t)
            model.pop(t.key, None)
    assert len(idx) == len(model)
    got = {t.key: t for t in idx.iter_tuples()}
    assert set(got) == set(model)
    for k, t in model.items():
        g = got[k]
        assert (g.condition, g.expires_at) == (t.condition, t.expires_at)
    # reverse maps of plain edges
    rev = {
        f"{rk}|{u}": set(values_of(v))
        for rk, per in idx.rev.items()
        for u, v in per.items()
        if v is not None
    }
    assert rev == _expected_reverse(model)
    # reverse maps of userset edges (objects and usersets)
    up: set[tuple[str, str, str]] = set()
    for (otype, rel, urel), per in idx.up.items():
        for uobj, v in per.items():
            up.update((f"{otype}#{rel}", f"{uobj}#{urel}", o) for o in values_of(v))
    up_us: set[tuple[str, str, str]] = set()
    for rk, per in idx.up_us.items():
        for u, v in per.items():
            up_us.update((rk, u, ous.partition("#")[0]) for ous in values_of(v))
    expected_us = {
        (f"{t.object.partition(':')[0]}#{t.relation}", t.user, t.object)
        for t in model.values()
        if "#" in t.user and not t.condition and t.expires_at is None
    }
    assert up == expected_us
    assert up_us == expected_us


@settings(max_examples=100, deadline=None)
@given(st.lists(tuples(), max_size=12), st.lists(tuples(), max_size=6))
def test_overlay_reads_both_and_touches_nothing(base: list[Tuple], extra: list[Tuple]) -> None:
    idx = TupleIndex()
    for t in base:
        idx.add(t)
    before = sorted(map(str, idx.iter_tuples()))
    view = Overlay(idx, extra).view()
    keys = {t.key for t in base} | {t.key for t in extra}
    for obj in OBJECTS:
        for rel in RELATIONS:
            users = set(values_of(view.plain((obj, rel))))
            users |= set(view.usersets((obj, rel)) or ())
            users |= set(view.special((obj, rel)) or ())
            expected = {u for (o, r, u) in keys if (o, r) == (obj, rel)}
            assert users == expected
    assert sorted(map(str, idx.iter_tuples())) == before

"""Scope strings (RFC 6749 §3.3), resource vs opaque scopes, coverage and narrowing
(keyplane.tokens.scopes): examples, then hypothesis properties against a naive reference
that spells coverage out as set inclusion over a small universe of objects."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyplane.policy.records import ScopeGrant
from keyplane.tokens.errors import OAuthError
from keyplane.tokens.scopes import (
    MAX_SCOPE_CHARS,
    MAX_TOKEN_CHARS,
    MAX_TOKENS,
    ResourceScope,
    covers,
    delegation_covers,
    format_scope,
    grants_cover,
    is_scope_token,
    narrow_scope,
    parse_scope,
    resource_scope,
    scope_allows,
    uncovered,
)

# ----------------------------------------------------------------------------- syntax


def test_parse_absent_is_unrestricted() -> None:
    assert parse_scope(None) is None


def test_parse_splits_dedups_and_format_sorts() -> None:
    s = parse_scope("read document:roadmap#viewer read openid")
    assert s == frozenset({"read", "document:roadmap#viewer", "openid"})
    assert format_scope(s) == "document:roadmap#viewer openid read"
    assert format_scope(None) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",  # no token at all
        " read",  # leading space
        "read ",  # trailing space
        "read  write",  # two spaces
        "read\twrite",  # tab is no separator and no token character
        "read\nwrite",
        'say"hi"',  # %x22 is excluded
        "back\\slash",  # %x5C is excluded
        "caf\u00e9",  # non-ASCII
        "nul\x00",
        "del\x7f",
        "x" * (MAX_TOKEN_CHARS + 1),
        " ".join(f"s{i}" for i in range(MAX_TOKENS + 1)),
        " ".join(["y" * 99] * 42),  # 42 tokens but 4199 characters
    ],
)
def test_parse_refuses_malformed_scopes(bad: str) -> None:
    with pytest.raises(OAuthError) as exc:
        parse_scope(bad)
    assert exc.value.error == "invalid_scope"
    assert exc.value.reason == "scope_syntax"
    assert exc.value.status == 400


def test_parse_accepts_the_limits() -> None:
    assert parse_scope("x" * MAX_TOKEN_CHARS) == frozenset({"x" * MAX_TOKEN_CHARS})
    many = " ".join(f"s{i}" for i in range(MAX_TOKENS))
    assert len(parse_scope(many) or ()) == MAX_TOKENS
    # every allowed character, in one token
    alphabet = "".join(chr(c) for c in [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)])
    assert parse_scope(alphabet[:MAX_TOKEN_CHARS]) == frozenset({alphabet[:MAX_TOKEN_CHARS]})
    long = " ".join(["z" * 80] * 50)  # 4049 characters, 50 tokens
    assert len(long) <= MAX_SCOPE_CHARS
    assert parse_scope(long) == frozenset({"z" * 80})


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(OAuthError):
        parse_scope(["read"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("document:roadmap#viewer", ResourceScope("document", "roadmap", "viewer")),
        ("document:*#read", ResourceScope("document", "*", "read")),
        ("repo:acme/site.v2#write", ResourceScope("repo", "acme/site.v2", "write")),
        ("openid", None),
        ("read:all", None),  # no action
        ("document:1#", None),  # empty action
        ("document:#read", None),  # empty id
        (":1#read", None),  # empty type
        ("a:b:c#read", None),  # an id may not hold ':'
        ("document:1#read#again", None),
        ("document:a*b#read", None),  # '*' is a wildcard only alone
        ("doc@x:1#read", None),  # a type may not hold '@'
        ("document:1#re@d", None),  # a relation may not hold '@'
        ("document:1#" + "r" * 51, None),  # a relation is at most 50 characters
        ("t" * 100 + ":" + "i" * 160 + "#r", None),  # an object is at most 256 characters
        ('document:1#"read"', None),  # not a scope-token at all
    ],
)
def test_resource_or_opaque(token: str, expected: ResourceScope | None) -> None:
    assert resource_scope(token) == expected
    if expected is not None:
        assert str(expected) == token
        assert expected.resource == token.partition("#")[0]
        assert expected.wildcard == (expected.id == "*")


# --------------------------------------------------------------------------- coverage


def test_unrestricted_covers_everything_and_nothing_covers_unrestricted() -> None:
    assert covers(None, "anything")
    assert covers(None, ["document:1#read", "openid"])
    assert covers(None, None)
    assert not covers(frozenset({"document:*#read", "openid"}), None)


def test_resource_scope_covered_by_itself_or_its_types_wildcard() -> None:
    g = frozenset({"document:*#read", "folder:f1#viewer", "openid"})
    assert covers(g, "document:roadmap#read")
    assert covers(g, "document:*#read")
    assert covers(g, "folder:f1#viewer")
    assert not covers(g, "folder:f2#viewer")
    assert not covers(g, "folder:*#viewer")  # one object never covers the whole type
    assert not covers(g, "document:roadmap#write")  # another action
    assert not covers(g, "doc:roadmap#read")  # another type
    assert covers(g, ["document:x#read", "openid"])
    assert not covers(g, ["document:x#read", "profile"])
    assert covers(g, [])
    assert uncovered(g, ["profile", "document:x#read", "folder:f2#viewer"]) == (
        "folder:f2#viewer",
        "profile",
    )
    assert uncovered(None, ["x"]) == ()


def test_opaque_scope_covered_only_by_itself() -> None:
    g = frozenset({"api:*", "read:*#x"})
    assert not covers(g, "api:users")  # "api:*" is opaque (no action): no wildcard meaning
    assert covers(g, "api:*")
    assert covers(g, "read:anything#x")


def test_grants_cover_resource_scopes() -> None:
    grants = (
        ScopeGrant(("viewer", "read"), "document:roadmap"),
        ScopeGrant(("write",), "folder:*"),
    )
    assert grants_cover(grants, "document:roadmap#read")
    assert grants_cover(grants, "document:roadmap#viewer")
    assert not grants_cover(grants, "document:roadmap#write")
    assert not grants_cover(grants, "document:other#read")
    assert not grants_cover(grants, "document:*#read")  # a one-object grant is not the type
    assert grants_cover(grants, "folder:any#write")
    assert grants_cover(grants, "folder:*#write")
    assert not grants_cover(grants, "folder:*#read")
    assert grants_cover(grants, "openid")  # opaque: the delegation does not judge it
    assert grants_cover((), "openid")
    assert not grants_cover((), "document:roadmap#read")
    assert delegation_covers(grants, ["openid", "folder:x#write"])
    assert not delegation_covers(grants, ["openid", "folder:x#delete"])


# -------------------------------------------------------------------------- narrowing


def test_narrow_inherits_when_nothing_requested() -> None:
    subject = frozenset({"document:*#read"})
    assert narrow_scope(subject, None) == subject
    assert narrow_scope(None, None) is None
    assert narrow_scope(None, None, (ScopeGrant(("read",), "document:1"),)) is None


def test_narrow_to_a_covered_scope() -> None:
    subject = frozenset({"document:*#read", "openid"})
    grants = (ScopeGrant(("read",), "document:*"),)
    assert narrow_scope(subject, "document:1#read openid", grants) == frozenset(
        {"document:1#read", "openid"}
    )
    assert narrow_scope(None, "document:1#read", grants) == frozenset({"document:1#read"})
    assert narrow_scope(subject, frozenset({"openid"})) == frozenset({"openid"})


def test_narrow_refuses_widening_the_subject_token() -> None:
    subject = frozenset({"document:1#read"})
    for wider in ("document:*#read", "document:2#read", "document:1#write", "openid"):
        with pytest.raises(OAuthError) as exc:
            narrow_scope(subject, wider)
        assert exc.value.error == "invalid_scope"
        assert exc.value.reason == "scope_widening"
        assert wider in exc.value.description


def test_narrow_refuses_what_the_delegation_does_not_grant() -> None:
    grants = (ScopeGrant(("read",), "document:1"),)
    for outside in ("document:2#read", "document:*#read", "document:1#write"):
        with pytest.raises(OAuthError) as exc:
            narrow_scope(None, outside, grants)
        assert exc.value.reason == "scope_not_delegated"
        assert exc.value.error == "invalid_scope"
    assert narrow_scope(None, "openid document:1#read", grants) == frozenset(
        {"openid", "document:1#read"}
    )


def test_narrow_refuses_malformed_requests() -> None:
    with pytest.raises(OAuthError) as exc:
        narrow_scope(None, "a  b")
    assert exc.value.reason == "scope_syntax"


def test_scope_allows_for_decisions() -> None:
    s = frozenset({"document:*#read", "folder:f1#viewer", "openid", "folder:f1#"})
    assert scope_allows(None, "anything", "document:1")
    assert scope_allows(s, "read", "document:roadmap")
    assert scope_allows(s, "viewer", "folder:f1")
    assert not scope_allows(s, "viewer", "folder:f2")
    assert not scope_allows(s, "write", "document:1")
    assert not scope_allows(frozenset({"openid"}), "read", "document:1")
    assert not scope_allows(s, "read", "document")  # not an object
    assert not scope_allows(frozenset(), "read", "document:1")


# ------------------------------------------------------------------ property tests

TYPES = ("doc", "folder")
IDS = ("1", "2", "a/b")
ACTIONS = ("read", "write")
OPAQUE = ("openid", "profile", "api:*", "doc:1")
OTHER = "\x00other"  # an id no scope names: what only a wildcard reaches

resource_tokens = st.builds(
    lambda t, i, a: f"{t}:{i}#{a}",
    st.sampled_from(TYPES),
    st.sampled_from((*IDS, "*")),
    st.sampled_from(ACTIONS),
)
scope_tokens = st.one_of(resource_tokens, st.sampled_from(OPAQUE))
scopes = st.frozensets(scope_tokens, max_size=6)
opt_scopes = st.none() | scopes


def denote(token: str) -> frozenset[tuple[str, ...]]:
    """What a token lets one do, as a set over the small universe (the reference)."""
    rs = resource_scope(token)
    if rs is None:
        return frozenset({("opaque", token)})
    ids = (*IDS, OTHER) if rs.wildcard else (rs.id,)
    return frozenset((rs.type, i, rs.action) for i in ids)


def ref_covers(granted: frozenset[str] | None, requested: frozenset[str] | None) -> bool:
    if granted is None:
        return True
    if requested is None:
        return False
    everything: set[tuple[str, ...]] = set()
    for g in granted:
        everything |= denote(g)
    return all(denote(t) <= everything for t in requested)


def ref_grant_covers(grants: tuple[ScopeGrant, ...], token: str) -> bool:
    rs = resource_scope(token)
    if rs is None:
        return True
    allowed: set[tuple[str, ...]] = set()
    for g in grants:
        t, _, i = g.resource.partition(":")
        ids = (*IDS, OTHER) if i == "*" else (i,)
        allowed |= {(t, x, a) for x in ids for a in g.actions}
    return denote(token) <= allowed


grants_st = st.lists(
    st.builds(
        ScopeGrant,
        st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True).map(tuple),
        st.builds(lambda t, i: f"{t}:{i}", st.sampled_from(TYPES), st.sampled_from((*IDS, "*"))),
    ),
    max_size=4,
).map(tuple)

# any string of scope-token characters and spaces, for the parser
raw_scopes = st.text(
    alphabet=st.sampled_from([chr(c) for c in range(0x20, 0x7F)] + ["\t", "\u00e9"]),
    max_size=60,
)


@given(raw_scopes)
@settings(max_examples=400)
def test_parse_accepts_exactly_the_abnf(text: str) -> None:
    valid = text != "" and all(
        tok and all(c == "!" or "#" <= c <= "[" or "]" <= c <= "~" for c in tok)
        for tok in text.split(" ")
    )
    try:
        parsed = parse_scope(text)
    except OAuthError as exc:
        assert exc.error == "invalid_scope"
        assert not valid
    else:
        assert valid
        assert parsed == frozenset(text.split(" "))
        assert all(is_scope_token(t) for t in parsed)


@given(st.frozensets(scope_tokens, min_size=1, max_size=10))
def test_format_parse_round_trip(s: frozenset[str]) -> None:
    text = format_scope(s)
    assert text is not None
    assert parse_scope(text) == s
    assert format_scope(parse_scope(text)) == text


@given(opt_scopes, opt_scopes)
@settings(max_examples=500)
def test_covers_matches_the_reference(
    granted: frozenset[str] | None, req: frozenset[str] | None
) -> None:
    assert covers(granted, req) == ref_covers(granted, req)
    if req is not None:
        assert covers(granted, req) == (not uncovered(granted, req))
        assert covers(granted, req) == all(covers(granted, t) for t in req)


@given(opt_scopes, opt_scopes, opt_scopes)
def test_covers_is_a_preorder(
    a: frozenset[str] | None, b: frozenset[str] | None, c: frozenset[str] | None
) -> None:
    assert covers(a, a)
    if covers(a, b) and covers(b, c):
        assert covers(a, c)


@given(grants_st, scope_tokens)
@settings(max_examples=500)
def test_grants_cover_matches_the_reference(grants: tuple[ScopeGrant, ...], token: str) -> None:
    assert grants_cover(grants, token) == ref_grant_covers(grants, token)


@given(opt_scopes, st.none() | scopes, st.none() | grants_st)
@settings(max_examples=500)
def test_narrowing_never_widens(
    subject: frozenset[str] | None,
    requested: frozenset[str] | None,
    grants: tuple[ScopeGrant, ...] | None,
) -> None:
    text = format_scope(requested) if requested else None
    try:
        out = narrow_scope(subject, text, grants)
    except OAuthError as exc:
        assert exc.error == "invalid_scope"
        assert requested
        assert not covers(subject, requested) or (
            grants is not None and not delegation_covers(grants, requested)
        )
        return
    # the result is covered by the subject token's scope, and by the delegation
    assert covers(subject, out)
    if requested:
        assert out == requested
        if grants is not None:
            assert delegation_covers(grants, out)
    else:
        assert out == subject
    # ... so exchanging again from the result can only narrow further
    for t in itertools.islice(sorted(out or ()), 3):
        assert narrow_scope(out, t) == frozenset({t})


@given(opt_scopes, st.sampled_from(TYPES), st.sampled_from(IDS), st.sampled_from(ACTIONS))
def test_scope_allows_is_coverage_of_one_resource_scope(
    s: frozenset[str] | None, t: str, i: str, a: str
) -> None:
    assert scope_allows(s, a, f"{t}:{i}") == covers(s, f"{t}:{i}#{a}")

"""Access token scopes (RFC 6749 §3.3) and how Keyplane narrows them (RFC 8693 §2.1).

**Syntax.** A scope is a space-delimited list of scope-tokens, each ``1*( %x21 / %x23-5B
/ %x5D-7E )`` (printable ASCII without space, ``"`` and ``\\``), separated by single spaces
(RFC 6749 §3.3: ``scope-token *( SP scope-token )``). Keyplane bounds it: at most
:data:`MAX_TOKEN_CHARS` characters a token, :data:`MAX_TOKENS` tokens,
:data:`MAX_SCOPE_CHARS` characters in all. The order and repetition of tokens carry no
meaning: a parsed scope is a ``frozenset``; :func:`format_scope` writes it sorted.

**Resource scopes.** A token ``<type>:<id>#<action>`` or ``<type>:*#<action>`` whose type
and id follow the graph's object syntax (:mod:`keyplane.graph.tuples`) and whose action
is a relation name is a RESOURCE scope: Keyplane enforces it in decisions (a token may be
used for that action on that object, or on any object of the type). Every other token is
OPAQUE: carried in the token for resource servers, which alone enforce it.

**Coverage** (:func:`covers`): an unrestricted grant (``None``: a token without a
``scope`` claim) covers everything; a resource scope is covered by itself or by its
type's wildcard ``<type>:*#<action>``; an opaque scope only by itself.

**Narrowing** (:func:`narrow_scope`): a token exchange's requested scope must be covered
by the subject token's scope, and its resource scopes by the delegation's
:class:`~keyplane.policy.records.ScopeGrant` tuple (the action among the grant's actions;
the grant's resource the same object or ``<type>:*``); otherwise ``invalid_scope``. No
scope requested: the new token inherits the subject token's scope.

Errors are :class:`~keyplane.tokens.errors.OAuthError` ``invalid_scope`` with a
``reason`` for the ledger: ``scope_syntax``, ``scope_widening`` (not covered by the
subject token), ``scope_not_delegated`` (not covered by the delegation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from keyplane.graph.tuples import MAX_OBJECT_LENGTH
from keyplane.policy.records import ScopeGrant
from keyplane.tokens.errors import OAuthError

__all__ = [
    "MAX_SCOPE_CHARS",
    "MAX_TOKENS",
    "MAX_TOKEN_CHARS",
    "ResourceScope",
    "covers",
    "delegation_covers",
    "format_scope",
    "grants_cover",
    "is_scope_token",
    "narrow_scope",
    "parse_scope",
    "resource_scope",
    "scope_allows",
    "uncovered",
]

#: the longest scope-token Keyplane accepts
MAX_TOKEN_CHARS: Final = 200
#: the most scope-tokens one scope may hold
MAX_TOKENS: Final = 50
#: the longest scope string
MAX_SCOPE_CHARS: Final = 4096

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# The graph's names (keyplane.graph.tuples: a type [^:#@\s]{1,254}, an id [^#:\s]+, a
# relation [^:#@\s]{1,50}), within the scope-token alphabet (which has no space or control
# characters).
_RESOURCE_RE = re.compile(r"([^:#@]{1,254}):([^#:]+)#([^:#@]{1,50})")


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """A parsed resource scope: ``action`` on ``type:id`` (``id`` ``*``: every object)."""

    type: str
    id: str
    action: str

    @property
    def resource(self) -> str:
        """The object (``document:roadmap``) or the type's wildcard (``document:*``)."""
        return f"{self.type}:{self.id}"

    @property
    def wildcard(self) -> bool:
        return self.id == "*"

    def __str__(self) -> str:
        return f"{self.type}:{self.id}#{self.action}"


def _syntax(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description, reason="scope_syntax")


def is_scope_token(value: object) -> bool:
    """Whether ``value`` is one RFC 6749 scope-token Keyplane accepts."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_TOKEN_CHARS
        and _TOKEN_RE.fullmatch(value) is not None
    )


def resource_scope(token: str) -> ResourceScope | None:
    """The resource scope ``token`` is, or ``None`` for an opaque one (or a non-token)."""
    if not is_scope_token(token):
        return None
    m = _RESOURCE_RE.fullmatch(token)
    if m is None:
        return None
    t, i, action = m.groups()
    if "*" in i and i != "*":  # "doc:a*b" is not an object; only "*" alone is the wildcard
        return None
    if len(t) + 1 + len(i) > MAX_OBJECT_LENGTH:
        return None
    return ResourceScope(t, i, action)


def parse_scope(value: str | None) -> frozenset[str] | None:
    """Parse an RFC 6749 ``scope`` parameter or claim: ``None`` (absent: unrestricted) stays
    ``None``; anything else must be a well-formed, bounded scope string. Raises
    :class:`OAuthError` ``invalid_scope`` (reason ``scope_syntax``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _syntax("scope must be a string")
    if len(value) > MAX_SCOPE_CHARS:
        raise _syntax(f"scope is longer than {MAX_SCOPE_CHARS} characters")
    tokens = value.split(" ")
    if len(tokens) > MAX_TOKENS:
        raise _syntax(f"scope holds more than {MAX_TOKENS} tokens")
    for tok in tokens:
        if not tok:
            raise _syntax("scope tokens are separated by single spaces, and none is empty")
        if len(tok) > MAX_TOKEN_CHARS:
            raise _syntax(f"a scope token is longer than {MAX_TOKEN_CHARS} characters")
        if _TOKEN_RE.fullmatch(tok) is None:
            raise _syntax('a scope token holds printable ASCII only, without \'"\' or "\\"')
    return frozenset(tokens)


def format_scope(scope: Iterable[str] | None) -> str | None:
    """The ``scope`` string of a parsed scope (sorted, so equal scopes read the same);
    ``None`` for ``None`` (unrestricted)."""
    if scope is None:
        return None
    return " ".join(sorted(set(scope)))


def _covers_one(granted: frozenset[str], token: str) -> bool:
    if token in granted:
        return True
    rs = resource_scope(token)
    return rs is not None and f"{rs.type}:*#{rs.action}" in granted


def covers(granted: frozenset[str] | None, requested: str | Iterable[str] | None) -> bool:
    """Whether ``granted`` covers ``requested`` — one scope-token (a ``str``) or every token
    of a scope (an iterable). ``granted`` ``None`` (unrestricted) covers everything;
    ``requested`` ``None`` (unrestricted) is covered only by ``None``."""
    if granted is None:
        return True
    if requested is None:
        return False
    if isinstance(requested, str):
        return _covers_one(granted, requested)
    return all(_covers_one(granted, t) for t in requested)


def uncovered(granted: frozenset[str] | None, requested: Iterable[str]) -> tuple[str, ...]:
    """The tokens of ``requested`` that ``granted`` does not cover, sorted."""
    if granted is None:
        return ()
    return tuple(sorted(t for t in set(requested) if not _covers_one(granted, t)))


def grants_cover(grants: Sequence[ScopeGrant], token: str) -> bool:
    """Whether a delegation's grants cover one resource scope ``token``: a grant holding its
    action, on the same resource or the grant's ``<type>:*``. A wildcard resource scope
    needs a wildcard grant. Opaque tokens are not the delegation's to judge: ``True``."""
    rs = resource_scope(token)
    if rs is None:
        return True
    resource = rs.resource
    wildcard = f"{rs.type}:*"
    return any(
        rs.action in g.actions and (g.resource == resource or g.resource == wildcard)
        for g in grants
    )


def delegation_covers(grants: Sequence[ScopeGrant], requested: Iterable[str]) -> bool:
    """Whether every resource scope of ``requested`` is covered by ``grants``."""
    return all(grants_cover(grants, t) for t in requested)


def narrow_scope(
    subject_scope: frozenset[str] | None,
    requested: str | frozenset[str] | None,
    grants: Sequence[ScopeGrant] | None = None,
) -> frozenset[str] | None:
    """The scope of a token exchanged for one whose scope is ``subject_scope``.

    ``requested`` (a scope string or a parsed one) ``None``: the subject token's scope,
    inherited. Otherwise it must be covered by ``subject_scope`` (``scope_widening``) and,
    when ``grants`` (the delegation's scope) are given, its resource scopes by them
    (``scope_not_delegated``); both raise :class:`OAuthError` ``invalid_scope``. Returns the
    requested scope."""
    if requested is None:
        return subject_scope
    wanted = parse_scope(requested) if isinstance(requested, str) else requested
    assert wanted is not None
    wider = uncovered(subject_scope, wanted)
    if wider:
        raise OAuthError(
            "invalid_scope",
            f"the requested scope is wider than the subject token's: {' '.join(wider)}"[:400],
            reason="scope_widening",
        )
    if grants is not None:
        outside = sorted(t for t in wanted if not grants_cover(grants, t))
        if outside:
            raise OAuthError(
                "invalid_scope",
                f"the delegation does not grant the requested scope: {' '.join(outside)}"[:400],
                reason="scope_not_delegated",
            )
    return wanted


def scope_allows(scope: frozenset[str] | None, action: str, resource: str) -> bool:
    """Whether a token whose scope is ``scope`` may be used for ``action`` on ``resource``
    (an object ``type:id``): unrestricted (``None``) allows it; otherwise a resource scope
    ``<resource>#<action>`` or ``<type>:*#<action>`` must be in it. Opaque tokens allow
    nothing here (fail closed: a token restricted to opaque scopes is for resource servers,
    not for Keyplane decisions)."""
    if scope is None:
        return True
    if f"{resource}#{action}" in scope:
        return resource_scope(f"{resource}#{action}") is not None
    t, sep, _ = resource.partition(":")
    if not sep:
        return False
    return f"{t}:*#{action}" in scope and resource_scope(f"{t}:*#{action}") is not None

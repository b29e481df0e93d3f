"""What every importer returns, and the rules all of them share.

An importer is a pure function ``plan(data, state) -> ImportPlan``: it reads one export
of a source system (``aws iam get-account-authorization-details``, ``kubectl get … -o
json``, a GitHub bundle — already parsed JSON, never a file or the network) and the
store's identity plane as it is now (:class:`~keyplane.policy.state.PolicyState`), and
says what the graph should hold for that source and scope: the model types it needs (a
DSL fragment), the identities it owns, and every tuple. It writes nothing;
:func:`keyplane.service.imports.import_source` validates the plan, merges the fragment
into the store's model, diffs against the previous import of the same (source, scope)
and writes the difference.

Identity resolution across systems (:func:`resolve`): an external principal is the
identity already linked to it (``attributes.links[source] == external id``), else the
human provisioned by the identity provider whose ``attributes.emails`` holds one of its
e-mail addresses, else the importer creates its own identity, id
``<source>-<sanitised external id>`` (:func:`sanitize_id`), source ``import:<source>``,
with ``attributes.links[source]`` set to the external id by the import service.
Identities the importer itself created (source ``import:<source>``) are never *resolved*
to: the importer plans them again on every run, so the diff sees what disappeared.

Bad input: importers raise :func:`bad_field` (a :class:`~keyplane.errors.ValidationError`
naming the JSON path of the field, e.g. ``RoleDetailList[3].RoleName``) — nothing is
written when a plan cannot be made.

Registry: ``register("aws", plan_aws)`` at the import of the importer's module;
:func:`get_importer` imports the built-in modules (:data:`BUILTIN`) on first use, and
finds other installed importers by their entry points (group ``keyplane.importers``).
"""

from __future__ import annotations

import hashlib
import importlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from keyplane.errors import ValidationError
from keyplane.graph.tuples import Tuple
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "IMPORTERS",
    "ImportPlan",
    "Importer",
    "PlannedIdentity",
    "Progress",
    "bad_field",
    "get_importer",
    "import_source_name",
    "register",
    "resolve",
    "sanitize_id",
]

#: ``progress(phase, done, total)`` — phases: ``"plan"``, ``"model"``, ``"identities"``,
#: ``"tuples"``, ``"deprovision"``; ``total`` may be 0 for a phase with nothing to do.
Progress = Callable[[str, int, int], None]

#: ``plan(data, state) -> ImportPlan``: ``data`` is the parsed JSON export.
Importer = Callable[[Any, PolicyState], "ImportPlan"]

#: the importers shipped with Keyplane, imported (and so registered) on first use
BUILTIN: tuple[str, ...] = ("aws", "kubernetes", "github")

#: installed packages may provide importers as entry points of this group (name → plan)
ENTRY_POINT_GROUP = "keyplane.importers"

IMPORTERS: dict[str, Importer] = {}

_SOURCE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_ID = 200  # leaves room under the identity id limit (256) for prefixes and suffixes


@dataclass(frozen=True, slots=True)
class PlannedIdentity:
    """An identity the importer owns (created with source ``import:<source>``).

    ``kind`` is an identity kind (human, agent, workload, service_account); ``id`` the bare
    id (usually ``<source>-<sanitize_id(external_id)>``); ``owners`` — required for a
    non-human kind — graph users ``human:x`` or ``group:g#member``; ``external_id`` the
    source system's id (an ARN, a login, ``namespace/name``), stored as
    ``attributes.links[source]`` by the import service."""

    kind: str
    id: str
    display_name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    owners: tuple[str, ...] = ()
    external_id: str = ""

    @property
    def node(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(slots=True)
class ImportPlan:
    """What the graph should hold for ``source`` in ``scope`` (an AWS account id, a
    cluster name, a GitHub organisation), as planned from one export.

    ``model`` is a model DSL fragment (``type aws_role`` … with its relations; a leading
    ``model / schema 1.1`` header is optional) declaring the types the tuples use; types
    (and relations) the store's model lacks are added, the store's own definitions win.
    ``tuples`` may reference identities of the plan, identities resolved with
    :func:`resolve`, and any object of the fragment's types. ``warnings`` are shown to the
    user and recorded in the import (e.g. ``deny statements are not modelled``)."""

    source: str
    scope: str
    model: str = ""
    identities: list[PlannedIdentity] = field(default_factory=list)
    tuples: list[Tuple] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # an index of :attr:`identities` for :meth:`identity` (a scan per call made a plan of
    # n identities O(n²)); rebuilt when the list was replaced or shrank, extended when
    # identities were appended directly
    _index: dict[tuple[str, str], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _nodes: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _indexed: tuple[int, int] = field(default=(0, 0), init=False, repr=False, compare=False)

    def _sync(self) -> None:
        list_id, done = self._indexed
        if list_id != id(self.identities) or done > len(self.identities):
            self._index, self._nodes, done = {}, set(), 0
        for p in self.identities[done:]:
            self._index.setdefault((p.external_id, p.kind), p.node)
            self._nodes.add(p.node)
        self._indexed = (id(self.identities), len(self.identities))

    def identity(
        self,
        state: PolicyState,
        kind: str,
        external_id: str,
        *,
        display_name: str = "",
        emails: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        owners: Iterable[str] = (),
    ) -> str:
        """The node of the external principal ``external_id``: an existing identity
        (:func:`resolve`) or one this plan creates (kind ``kind``, id
        ``<source>-<sanitize_id(external_id)>``, added to :attr:`identities` once). Call it
        for every principal a tuple names; repeated calls answer the same node."""
        found = resolve(state, self.source, external_id, emails)
        if found is not None:
            return found
        self._sync()
        known = self._index.get((external_id, kind))
        if known is not None:
            return known
        base_id = f"{self.source}-{sanitize_id(external_id)}"
        id_ = base_id
        if f"{kind}:{id_}" in self._nodes:  # two external ids sanitised alike: keep both apart
            id_ = f"{base_id}-{_digest(external_id)}"
        attrs = dict(attributes or {})
        mails = sorted({e.strip().lower() for e in emails if isinstance(e, str) and e.strip()})
        if mails and "emails" not in attrs:
            attrs["emails"] = mails
        planned = PlannedIdentity(
            kind=kind,
            id=id_,
            display_name=display_name or external_id,
            attributes=attrs,
            owners=tuple(dict.fromkeys(owners)),
            external_id=external_id,
        )
        self.identities.append(planned)
        self._sync()
        return planned.node


def import_source_name(source: str) -> str:
    """The ``source`` recorded on identities an importer creates: ``import:<source>``."""
    return f"import:{source}"


def sanitize_id(text: str) -> str:
    """A readable, deterministic identity id part for an external id: every character
    outside ``A-Z a-z 0-9 . _ + = , -`` becomes ``-`` (so ``/`` and ``:`` of ARNs and
    ``namespace/name`` do too, and ``@``: an identity's node is the object of its owner
    tuples, whose text form ``object#relation@user`` cannot hold one), runs of ``-``
    collapse, leading/trailing ``-`` go; case is kept. Longer than :data:`MAX_ID` → cut and
    suffixed with a digest of the whole text; an empty result is ``x-<digest>``."""
    out = re.sub(r"[^A-Za-z0-9._+=,-]", "-", text)
    out = re.sub(r"-{2,}", "-", out).strip("-")
    if not out:
        return f"x-{_digest(text)}"
    if len(out) > MAX_ID:
        out = f"{out[: MAX_ID - 9]}-{_digest(text)}"
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# ------------------------------------------------------------------------------ resolution


@dataclass(frozen=True, slots=True)
class _Index:
    links: Mapping[tuple[str, str], tuple[Identity, ...]]
    emails: Mapping[str, tuple[Identity, ...]]


_cache_lock = threading.Lock()
_cache: tuple[PolicyState, _Index] | None = None


def _index(state: PolicyState) -> _Index:
    global _cache
    with _cache_lock:
        if _cache is not None and _cache[0] is state:
            return _cache[1]
    links: dict[tuple[str, str], list[Identity]] = {}
    emails: dict[str, list[Identity]] = {}
    for ident in state.identities():
        attrs = ident.attributes if isinstance(ident.attributes, Mapping) else {}
        ls = attrs.get("links")
        if isinstance(ls, Mapping):
            for src, ext in ls.items():
                if isinstance(src, str) and isinstance(ext, str):
                    links.setdefault((src, ext), []).append(ident)
        ms = attrs.get("emails")
        if ident.kind == "human" and isinstance(ms, list):
            for m in ms:
                if isinstance(m, str):
                    emails.setdefault(m.strip().lower(), []).append(ident)
    index = _Index(
        links={k: tuple(v) for k, v in links.items()},
        emails={k: tuple(v) for k, v in emails.items()},
    )
    with _cache_lock:
        _cache = (state, index)
    return index


def _best(candidates: Iterable[Identity], source: str) -> Identity | None:
    own = import_source_name(source)
    usable = [i for i in candidates if i.source != own]
    if not usable:
        return None
    # prefer the identity provider's, then a live identity, then the node's order
    usable.sort(key=lambda i: (i.source != "scim", i.status == "deprovisioned", i.node))
    return usable[0]


def resolve(
    state: PolicyState, source: str, external_id: str, emails: Iterable[str] = ()
) -> str | None:
    """The node of the existing identity the external principal is, or None.

    1. an identity whose ``attributes.links[source]`` equals ``external_id``;
    2. else a human whose ``attributes.emails`` (the identity provider's, lower-cased)
       contains one of ``emails`` (compared lower-cased).

    Identities created by this same importer (source ``import:<source>``) are skipped —
    the importer plans them itself on every run. Among several matches the one
    provisioned by SCIM wins, then one not deprovisioned, then the smallest node. A
    deprovisioned identity is still answered: access an export still shows for someone
    who left is exactly what must be seen."""
    index = _index(state)
    found = _best(index.links.get((source, external_id), ()), source)
    if found is not None:
        return found.node
    for mail in emails:
        if not isinstance(mail, str):
            continue
        found = _best(index.emails.get(mail.strip().lower(), ()), source)
        if found is not None:
            return found.node
    return None


# ------------------------------------------------------------------------------ errors


def bad_field(path: str, message: str) -> ValidationError:
    """The error for a bad field of an export: ``"<path>: <message>"`` with
    ``details.path`` — raise it (``raise bad_field("RoleDetailList[3].RoleName", "must be
    a string")``)."""
    return ValidationError(f"{path}: {message}", details={"path": path})


# ------------------------------------------------------------------------------ registry


def register(name: str, importer: Importer) -> Importer:
    """Register ``importer`` under ``name`` (a short lower-case source name); returns it
    (usable as ``register("aws", plan_aws)`` after the function)."""
    if not _SOURCE_RE.match(name):
        raise ValueError(f"invalid importer name {name!r}")
    IMPORTERS[name] = importer
    return importer


def get_importer(name: str) -> Importer:
    """The importer registered as ``name``: a built-in one's module is imported first; any
    other name is looked up among the installed packages' entry points of the group
    :data:`ENTRY_POINT_GROUP` (``[project.entry-points."keyplane.importers"] okta_apps =
    "mypkg.okta:plan_apps"``). Unknown → ValidationError listing the known sources."""
    if name not in IMPORTERS and name in BUILTIN:
        try:
            importlib.import_module(f"keyplane.importers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"keyplane.importers.{name}":
                raise
    if name not in IMPORTERS and isinstance(name, str) and _SOURCE_RE.match(name):
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
            register(name, ep.load())
            break
    found = IMPORTERS.get(name)
    if found is None:
        known = sorted(set(IMPORTERS) | set(BUILTIN))
        raise ValidationError(
            f"unknown import source {name!r}: one of {', '.join(known)}",
            details={"source": str(name)[:100], "sources": known},
        )
    return found

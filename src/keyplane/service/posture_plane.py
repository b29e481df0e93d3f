"""What the posture report reads, loaded in bulk (see :mod:`keyplane.service.posture`):
a store's non-human identities, their active secrets (client credentials and bound API
keys), the identity plane from memory, group memberships from the in-memory graph, and the
ledger of the window — one paged pass over ``token.issued`` (which credential
authenticated is in the event's details, not in an indexed column) and the decisions
aggregate the NHI5 analysis shares (:func:`keyplane.service.privilege.usage`). Nothing here
decides what is a finding.

Ledger fields hashed by ``KEYPLANE_LEDGER_HMAC_FIELDS`` are matched by hashing our side's
values (identity nodes) the same way, never by un-hashing (:class:`Unhash`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keyplane.errors import KeyplaneError, ValidationError
from keyplane.governance.posture import NhiCredential
from keyplane.ledger.events import EventFilter
from keyplane.ledger.redact import HMAC_PREFIX
from keyplane.policy.records import NON_HUMAN_KINDS, Delegation, Identity
from keyplane.policy.state import PolicyState
from keyplane.service import privilege, system
from keyplane.service.context import Services
from keyplane.storage.base import KeyRecord, Page

__all__ = [
    "LedgerFacts",
    "Plane",
    "Secret",
    "Unhash",
    "Use",
    "all_pages",
    "environment",
    "list_nhis",
    "read_decisions",
    "read_tokens",
]

#: rows asked of storage per page when loading in bulk
BULK = 1000

T = TypeVar("T")


def all_pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.continuation_token
        if token is None:
            return


# -- what is loaded -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secret:
    """An active credential of an NHI: a client credential or an API key bound to it."""

    id: str
    type: str  # "client_secret" | "private_key_jwt" | "api_key"
    created_at: float
    issued_at: float  # creation or last rotation: when the current secret was made
    expires_at: float | None
    last_used_at: float | None

    def public(self) -> NhiCredential:
        return NhiCredential(
            self.id, self.type, "active", self.created_at, self.expires_at, self.last_used_at
        )

    def unused_since(self) -> float:
        """Since when it has not been used (its creation when never used)."""
        return self.created_at if self.last_used_at is None else self.last_used_at


@dataclass(slots=True)
class Use:
    """One authenticator's use in the window (from ``token.issued``)."""

    first: float
    last: float
    count: int = 0


@dataclass(slots=True)
class LedgerFacts:
    """What the window's ledger says, aggregated per NHI node."""

    #: node -> credential id (as stored: maybe hashed) -> its use
    auth: dict[str, dict[str, Use]] = field(default_factory=dict)
    #: node -> the newest allowed decision or token naming it
    last: dict[str, float] = field(default_factory=dict)
    #: node -> evidence of humans acting as it (event ids or aggregates)
    human: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def seen(self, node: str, at: float) -> None:
        if self.last.get(node, -math.inf) < at:
            self.last[node] = at


class Plane:
    """The identity plane of one store as the report reads it, loaded in bulk."""

    def __init__(self, svc: Services, store_id: str, now: float, nhis: Sequence[Identity]) -> None:
        self.svc, self.store_id, self.now = svc, store_id, now
        self.state: PolicyState = svc.graphs.policy(store_id)
        self.nhis = list(nhis)
        self.by_node = {i.node: i for i in self.nhis}
        #: NHIs whose effective access the engine refused to compute (resolution limits)
        self.unanalyzable: dict[str, KeyplaneError] = {}
        #: each NHI's effective access, computed once for both NHI5 analyses
        self.effective: dict[str, list[tuple[str, str]]] = {}
        self.secrets: dict[str, list[Secret]] = {}
        self.delegations: list[Delegation] = [
            d
            for d in self.state.delegations()
            if d.status == "active" and d.not_before <= now < d.expires_at
        ]
        self.delegations.sort(key=lambda d: d.id)
        self.held: Counter[str] = Counter(d.delegate for d in self.delegations)

    def load_secrets(self, nodes: Iterable[str] | None = None) -> None:
        """Active client credentials (all in pages, or those of ``nodes``) and API keys."""
        st = self.svc.storage
        if nodes is None:
            recs = all_pages(
                lambda t: st.list_credentials(
                    self.store_id, status="active", page_size=BULK, continuation_token=t
                )
            )
        else:
            recs = (r for n in nodes for r in st.credentials_of(self.store_id, n))
        for rec in recs:
            c = rec.credential
            if c.client_id not in self.by_node or not c.usable(self.now):
                continue
            self.secrets.setdefault(c.client_id, []).append(
                Secret(c.id, c.type, c.created_at, c.rotated_at or c.created_at,
                        c.expires_at, c.last_used_at)
            )  # fmt: skip
        for key in all_pages(lambda t: st.list_keys(page_size=BULK, continuation_token=t)):
            if key.owner in self.by_node and self._key_live(key):
                self.secrets.setdefault(key.owner, []).append(
                    Secret(key.id, "api_key", key.created_at, key.rotated_at or key.created_at,
                            key.expires_at, key.last_used_at)
                )  # fmt: skip
        for lst in self.secrets.values():
            lst.sort(key=lambda s: (s.created_at, s.id))

    def _key_live(self, key: KeyRecord) -> bool:
        """Not revoked, not expired, and a role of it reaches this store (a key bound to
        ``agent:x`` with roles on another store belongs to that store's ``agent:x``; a key
        with no role is denied everything)."""
        if key.revoked_at is not None or (
            key.expires_at is not None and self.now >= key.expires_at
        ):
            return False
        for role in key.roles:
            try:
                _, store = system.parse_role(role)
            except ValidationError:
                continue
            if store is None or store == self.store_id:
                return True
        return False

    def environment(self, node: str) -> str | None:
        ident = self.by_node.get(node) or self.state.identity(node)
        return None if ident is None else environment(ident)

    def human(self, node: str) -> bool:
        ident = self.state.identity(node)
        return node.startswith("human:") or (ident is not None and ident.kind == "human")

    def owner_alive(self, owner: str) -> bool:
        """As :func:`keyplane.service.identities.owner_alive`: a group, or a human that is
        active (or not registered: a plain graph node)."""
        if not owner.startswith("human:"):
            return True
        ident = self.state.identity(owner)
        return ident is None or ident.status == "active"

    def groups_of(self, nodes: Iterable[str]) -> dict[str, list[str]]:
        """The ``group`` objects each of ``nodes`` is a direct ``member`` of (unexpired
        edges), from the in-memory graph's reverse index."""
        graph = self.svc.graphs.graph(self.store_id)
        out: dict[str, list[str]] = {}
        with graph.lock:
            view = graph.index.view()
            for node in nodes:
                found = set(_values(view.rev((node, "group", "member"))))
                for obj in _values(view.rev_special((node, "group", "member"))):
                    edge = (view.special((obj, "member")) or {}).get(node)
                    if edge is not None and (edge[5] is None or edge[5] > self.now):
                        found.add(obj)
                if found:
                    out[node] = sorted(found)
        return out


def _values(v: str | set[str] | None) -> Iterable[str]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else v


def environment(ident: Identity) -> str | None:
    for name in ("environment", "env"):
        v = ident.attributes.get(name)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def list_nhis(svc: Services, store_id: str, kind: str | None, status: str | None) -> list[Identity]:
    """Every NHI of the store (of ``kind``, with ``status``), by (kind, id) in code point
    order, fresh from storage (``last_seen`` is written beside the revision-tracked
    state). Sorted here, not by the database, whose collation may order ids otherwise:
    the inventory's keyset pages compare ``(kind, id)`` in Python."""
    out: list[Identity] = []
    for k in NON_HUMAN_KINDS if kind is None else (kind,):
        out += all_pages(
            lambda t, k=k: svc.storage.list_identities(  # type: ignore[misc]
                store_id, kind=k, status=status, page_size=BULK, continuation_token=t
            )
        )
    out.sort(key=lambda i: (i.kind, i.id))
    return out


# -- the ledger, aggregated -----------------------------------------------------------------


class Unhash:
    """Maps a stored ledger value back to one of ``known`` (hashing ours when it is an
    HMAC): the ledger may hold ``hmac-sha256:…`` instead of a node."""

    def __init__(self, svc: Services, known: Iterable[str]) -> None:
        self.svc = svc
        self.known = set(known)
        self._hashed: dict[str, str] | None = None

    def __call__(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if value.startswith(HMAC_PREFIX):
            if self._hashed is None:
                h = self.svc.redactor.hash_value
                self._hashed = {str(h(k)): k for k in self.known}
            return self._hashed.get(value)
        return value if value in self.known else None


def read_tokens(plane: Plane, since: float, until: float, led: LedgerFacts) -> None:
    """One paged pass over the window's ``token.issued`` events: per NHI client, each
    credential's first and last use; tokens naming an NHI subject with a human actor."""
    st, store = plane.svc.storage, plane.store_id
    unhash = Unhash(plane.svc, plane.by_node)
    # the window includes its end (an event at the report's instant counts)
    flt = EventFilter(since=since, until=math.nextafter(until, math.inf), types=("token.issued",))
    after = 0
    while True:
        events = st.read_events(store, after_seq=after, limit=BULK, filters=flt)
        for e in events:
            d = e.details
            client = unhash(d.get("client_id")) or unhash(e.caller)
            cred = d.get("credential_id")
            if client is not None:
                led.seen(client, e.time)
                if isinstance(cred, str):
                    use = led.auth.setdefault(client, {}).get(cred)
                    if use is None:
                        use = led.auth[client][cred] = Use(e.time, e.time)
                    use.first, use.last = min(use.first, e.time), max(use.last, e.time)
                    use.count += 1
            subject = unhash(e.subject)
            if subject is not None:
                led.seen(subject, e.time)
                humans = [a for a in e.actor_chain if plane.human(a)]
                if humans:
                    led.human.setdefault(subject, []).append(
                        {"event_id": e.id, "type": e.type, "time": e.time, "actors": humans}
                    )
        if len(events) < BULK:
            break
        after = events[-1].seq or after
    _resolve_credentials(plane, led)


def _resolve_credentials(plane: Plane, led: LedgerFacts) -> None:
    """Name each authenticator of the token pass by its credential id when it is one of
    the identity's active credentials (hashed ids are matched by hashing ours; a revoked
    credential's stays as stored), and count its last token as a use: a credential's
    ``last_used_at`` is advisory (written at most once a minute, best effort)."""
    for node, uses in led.auth.items():
        secrets = {
            s.id: i for i, s in enumerate(plane.secrets.get(node, ())) if s.type != "api_key"
        }
        if not secrets:
            continue
        unhash = Unhash(plane.svc, secrets)
        named: dict[str, Use] = {}
        for stored, use in uses.items():
            cid = unhash(stored) or stored
            had = named.get(cid)
            if had is not None:  # the same credential stored both ways (a config change)
                use = Use(min(had.first, use.first), max(had.last, use.last), had.count + use.count)
            named[cid] = use
            i = secrets.get(cid)
            if i is not None:
                lst = plane.secrets[node]
                s = lst[i]
                if s.last_used_at is None or s.last_used_at < use.last:
                    lst[i] = dataclasses.replace(s, last_used_at=use.last)
        led.auth[node] = named


def read_decisions(plane: Plane, use: privilege.Usage, led: LedgerFacts) -> None:
    """From the window's decisions aggregate (:func:`keyplane.service.privilege.usage`,
    the one the NHI5 analysis reads): every NHI's newest use, and from its rows the
    decisions where a human in the actor chain acted as an NHI (its subject)."""
    unhash = Unhash(plane.svc, plane.by_node)
    for r in use.rows:
        if not r.actors:
            continue
        humans = [a for a in r.actors if plane.human(a)]
        subject = unhash(r.subject) if humans else None
        if subject is not None:
            led.human.setdefault(subject, []).append({
                "type": r.type, "time": r.last_at, "actors": humans, "action": r.action,
                "resource": r.resource, "uses": r.uses,
            })  # fmt: skip
    for node in plane.by_node:
        last = use.last_used(node)
        if last is not None:
            led.seen(node, last)

"""Governance analytics at scale (issue 8 §4) — printed, never asserted.

    make bench-posture                          # ~1M tuples, ~2,000 NHIs, ~1M ledger events
    python bench/posture.py --small             # 50k tuples, 300 NHIs, 100k events
    python bench/posture.py --tuples 200000 --events 300000 --nhis 800
    python bench/posture.py --profile           # + a cProfile of every timed call
    python bench/posture.py --fresh             # rebuild the cached database

One process, in-process service calls (as the embedded API makes them), SQLite.

**The organisation** is ``bench/gen.py``'s (~1M tuples: users in group trees, folders,
documents), its model extended with the identity types wherever ``user`` is allowed, plus
an **identity plane** built through the real service operations (so every change is on
the ledger, in time order, by a fixed clock that walks forward from 120 days ago):

* ~``nhis/5`` humans, each in 1-2 of the org's leaf groups; a few are later
  deprovisioned (their NHIs become orphaned) or suspended (owner inactive);
* ``--nhis`` non-human identities — agents (50%), workloads (30%), service accounts
  (20%) — with 1-2 human owners (5% a group's members), an ``environment`` (or ``env``)
  attribute, membership of their first owner's leaf group plus sometimes a second group,
  0-4 direct document grants and sometimes a folder grant; three ``agent:wide-N`` are also
  members of ``user:bench-wide``'s group chain (~50,000 documents: the widest NHIs);
  some are suspended or deprovisioned after a while;
* client credentials on ~75% of them (60% ``client_secret``, 40% ``private_key_jwt``;
  15% created 120 days ago for two years — long-lived —, 10% expired, the rest 90-day
  ones of various ages; 20% of identities hold two, a few rotated or revoked), API keys
  bound to ~8% of them, delegations human → own agent (``read``/``viewer`` on
  ``document:*``) and a few agent → agent sub-delegations (some across environments);
* **a month of ledger data**: ``--events`` decision events over the last 30 days —
  ``decision.evaluate`` (actions ``read``/``write`` through the store's action map),
  ``decision.check`` and ``decision.batch_check``, ~88% allowed — from NHIs with
  Zipf-distributed activity (a quarter idle), 15% of them by a human through a delegated
  agent, a few by an NHI with a human in the actor chain (human use); allowed ones target
  what the identity's *used* grants reach (about a third of its grants), so most grants
  go unused; plus ``token.issued`` events (~5%) naming the credential used (some
  identities use two). They are built like the services build them, redacted and encoded
  by ``svc.ledger.prepare`` and appended through ``storage.append_encoded`` in batches
  with their past times; credentials' ``last_used_at`` and identities' ``last_seen`` are
  set to match.

The database is cached under ``/tmp/kp-bench-posture/`` per (tuples, events, NHIs, seed)
— ``--fresh`` rebuilds it, ``--no-cache`` uses a temporary one; data is never committed.

**Timed** (seconds, each next to the issue's 60 s budget): the usage aggregate the reports
share (``privilege.usage`` over the window), ``posture_report`` (full, with inventory),
its HTML rendering, ``over_privilege`` for the 10 busiest NHIs, ``agents_exceeding_owners``
(every page), ``effective_access`` paging through the widest NHI, ``who_can_access`` on the
most used document. An operation whose module is not there yet prints ``n/a``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import cProfile
import io
import itertools
import json
import os
import pstats
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import gen
from keyplane.clock import FixedClock
from keyplane.config import Settings
from keyplane.graph.tuples import Tuple
from keyplane.ledger.chain import chain_hash
from keyplane.ledger.events import LedgerEvent
from keyplane.service import credentials, delegations, identities, keys, models, policies, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.storage.ids import encode as ulid_encode

STORE = "bench-posture"
DAY = 86400.0
BUDGET_S = 60.0
GEN_VERSION = 1  # bump when the generated data changes shape (invalidates the cache)
CACHE_ROOT = Path(tempfile.gettempdir()) / "kp-bench-posture"

_IDENT = "[user, human, agent, workload, service_account, group#member]"
MODEL = gen.MODEL_DSL.replace(
    "type user\n", "type user\ntype human\ntype agent\ntype workload\ntype service_account\n", 1
).replace("[user, group#member]", _IDENT)

KINDS = (("agent", "ag", 0.5), ("workload", "wl", 0.3), ("service_account", "sa", 0.2))
ENVS = ("production", "production", "production", "staging", "staging", "development")
WIDE_GROUP = "group:bench-wide-3"  # the leaf of user:bench-wide's chain (gen.py)
ACTIONS = {"read": "viewer", "write": "editor"}


def say(msg: str = "") -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------- the plan


@dataclass
class Nhi:
    node: str
    kind: str
    env: str | None
    owners: list[str]
    groups: list[str]  # leaf groups it is a member of (the first: its first owner's)
    direct: list[tuple[str, str]]  # (object, relation) granted to it directly
    status: str = "active"  # what it will be at "now"
    weight: float = 0.0  # share of the month's activity
    creds: list[dict[str, Any]] = field(default_factory=list)
    used_view: list[str] = field(default_factory=list)  # documents its used grants reach
    used_edit: list[str] = field(default_factory=list)
    delegated: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (human, id, docs)


@dataclass
class Meta:
    """What the run needs after the data exists (saved beside a cached database)."""

    now: float
    tuples: int
    events: int
    nhis: int
    humans: int
    credentials: int
    api_keys: int
    delegations: int
    busiest: list[str]
    widest: str
    popular: str
    phases: dict[str, float]


class Org:
    """The generated organisation's tuples plus the indexes the identity plane needs."""

    def __init__(self, scale: gen.Scale) -> None:
        self.triples = list(gen.generate(scale))
        self.leaves: list[str] = []
        parents: dict[str, list[str]] = defaultdict(list)
        self.folder_grants: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.folder_docs: dict[str, list[str]] = defaultdict(list)
        leaves: set[str] = set()
        for obj, rel, user in self.triples:
            if obj.startswith("group:"):
                if user.startswith("user:"):
                    leaves.add(obj)
                else:
                    parents[user.removesuffix("#member")].append(obj)
            elif obj.startswith("folder:"):
                if user.startswith("group:"):
                    self.folder_grants[user.removesuffix("#member")].append((obj, rel))
            elif rel == "parent":
                self.folder_docs[user].append(obj)
        self.leaves = sorted(g for g in leaves if not g.startswith("group:bench-"))
        self.parents = parents
        self._reach: dict[str, tuple[list[str], list[str]]] = {}

    def reach(self, group: str) -> tuple[list[str], list[str]]:
        """Folders a member of ``group`` views / edits (through the group and its ancestors)."""
        hit = self._reach.get(group)
        if hit is None:
            seen, todo = {group}, [group]
            while todo:
                for p in self.parents.get(todo.pop(), ()):
                    if p not in seen:
                        seen.add(p)
                        todo.append(p)
            view: list[str] = []
            edit: list[str] = []
            for g in sorted(seen):
                for f, rel in self.folder_grants.get(g, ()):
                    view.append(f)
                    if rel == "editor":
                        edit.append(f)
            hit = self._reach[group] = (view, edit)
        return hit

    def docs_of(self, rng: random.Random, folders: list[str], n: int) -> list[str]:
        if not folders:
            return []
        out: set[str] = set()
        for _ in range(n):
            docs = self.folder_docs.get(rng.choice(folders))
            if docs:
                out.add(rng.choice(docs))
        return sorted(out)


def plan_identities(
    org: Org, n_nhis: int, rng: random.Random
) -> tuple[dict[str, list[str]], list[Nhi]]:
    """Humans (with their leaf groups) and NHIs with their owners, groups and direct grants
    (no service call yet). An NHI's first group is its first owner's, so the owner's
    delegation to it can be exercised (both hold what that group reaches)."""
    docs = [d for ds in org.folder_docs.values() for d in ds]
    folders = sorted(org.folder_docs)
    humans = [f"human:h{i:04d}" for i in range(max(20, n_nhis // 5))]
    human_groups = {h: rng.sample(org.leaves, rng.randint(1, 2)) for h in humans}
    nhis: list[Nhi] = []
    cum = [w for _, _, w in KINDS]
    for i in range(n_nhis):
        r = rng.random()
        k = 0 if r < cum[0] else 1 if r < cum[0] + cum[1] else 2
        kind, prefix, _ = KINDS[k]
        node = f"{kind}:{prefix}-{i:05d}"
        if i < 3:
            node, kind = f"agent:wide-{i}", "agent"
        owners = [rng.choice(humans)]
        if rng.random() < 0.15:
            owners.append(rng.choice([h for h in humans if h != owners[0]]))
        groups = [human_groups[owners[0]][0]]
        if rng.random() < 0.5:
            groups.append(rng.choice(org.leaves))
        if i < 3:
            groups.append(WIDE_GROUP)
        if rng.random() < 0.05:  # a group's members own it (the first human's leaf group)
            owners.append(f"{groups[0]}#member")
        direct = [
            (d, rng.choice(("viewer", "viewer", "editor")))
            for d in rng.sample(docs, rng.randint(0, 4))
        ]
        if rng.random() < 0.3:
            direct.append((rng.choice(folders), "viewer"))
        r = rng.random()
        env = None if r < 0.1 else rng.choice(ENVS)
        nhis.append(Nhi(node, kind, env, owners, list(dict.fromkeys(groups)), direct))
    return human_groups, nhis


def plan_usage(org: Org, nhis: list[Nhi], rng: random.Random) -> None:
    """Which grants each NHI exercises (about a third), what they reach, and its activity."""
    order = list(range(len(nhis)))
    rng.shuffle(order)
    for rank, i in enumerate(order):
        n = nhis[i]
        n.weight = 0.0 if rng.random() < 0.25 else 1.0 / (rank + 1) ** 0.9
        if n.node.startswith("agent:wide-"):
            n.weight = max(n.weight, 0.004)
        view, edit = set(), set()
        for j, g in enumerate(n.groups):
            if rng.random() < (0.7 if j == 0 else 0.25):
                fv, fe = org.reach(g)
                view.update(org.docs_of(rng, fv, 30))
                edit.update(org.docs_of(rng, fe, 8))
        for obj, rel in n.direct:
            if rng.random() < 0.3:
                if obj.startswith("folder:"):
                    view.update(rng.sample(org.folder_docs[obj], min(5, len(org.folder_docs[obj]))))
                else:
                    (edit if rel == "editor" else view).add(obj)
        n.used_edit = sorted(edit)
        n.used_view = sorted(view | edit)


def nhi_tuples(human_groups: dict[str, list[str]], nhis: list[Nhi]) -> Iterator[Tuple]:
    """The identity plane's grants (owner tuples are written by create_identity)."""
    for h, groups in human_groups.items():
        for g in groups:
            yield Tuple(g, "member", h)
    for n in nhis:
        for g in n.groups:
            yield Tuple(g, "member", n.node)
        for obj, rel in n.direct:
            yield Tuple(obj, rel, n.node)


# ---------------------------------------------------------------------------- building


def okp_jwk() -> dict[str, str]:
    pub = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(pub).rstrip(b"=").decode(),
    }


def build(svc: Services, clock: FixedClock, args: argparse.Namespace, now: float) -> Meta:
    caller = Caller.system_caller()
    rng = random.Random(args.seed * 7919 + 1)
    phases: dict[str, float] = {}
    t0 = now - 120 * DAY
    clock.set(t0)

    # --- tuples: the org + the identity plane's grants, one bulk load
    t = time.perf_counter()
    org = Org(gen.Scale.for_tuples(args.tuples, seed=args.seed))
    human_groups, nhis = plan_identities(org, args.nhis, rng)
    humans = sorted(human_groups)
    plan_usage(org, nhis, rng)
    stores.create_store(svc, caller, "posture bench", store_id=STORE)
    models.write_model(svc, caller, STORE, MODEL)
    policies.update_store_policy(
        svc, caller, STORE, actions=ACTIONS, max_credential_seconds=730 * 86400,
        max_delegation_seconds=366 * 86400,
    )  # fmt: skip
    extra = list(nhi_tuples(human_groups, nhis))
    n_tuples = len(org.triples) + len(extra)
    svc.storage.bulk_load(
        STORE,
        (t_ for part in ((Tuple(o, r, u) for o, r, u in org.triples), extra) for t_ in part),
    )
    phases["tuples (generate + bulk_load)"] = time.perf_counter() - t
    say(
        f"  {n_tuples:,} tuples ({len(extra):,} of the identity plane) in {phases['tuples (generate + bulk_load)']:.1f}s"
    )
    t = time.perf_counter()
    svc.graphs.catch_up(STORE)
    svc.graphs.engine(STORE)
    phases["graph in memory"] = time.perf_counter() - t
    say(f"  graph in memory in {phases['graph in memory']:.1f}s")

    # --- the identity plane through the services, in time order
    t = time.perf_counter()
    for h in humans:
        identities.create_identity(svc, caller, STORE, "human", h.split(":", 1)[1],
                                   attributes={"department": f"d{rng.randint(0, 20)}"})  # fmt: skip
    for n in nhis:
        attrs: dict[str, Any] = {"team": f"team-{rng.randint(0, 40)}"}
        if n.env is not None:
            attrs["env" if rng.random() < 0.1 else "environment"] = n.env
        identities.create_identity(
            svc, caller, STORE, n.kind, n.node.split(":", 1)[1], owners=n.owners,
            attributes=attrs, source=rng.choice(("api", "api", "scim", "import:aws")),
        )  # fmt: skip
    actions: list[tuple[float, int, Callable[[], Any]]] = []
    seq = 0

    def at(when: float, fn: Callable[[], Any]) -> None:
        nonlocal seq
        seq += 1
        actions.append((when, seq, fn))

    # credentials
    n_creds = 0
    for n in nhis:
        if rng.random() > (0.6 if n.kind == "agent" else 0.9):
            continue
        for _ in range(2 if rng.random() < 0.2 else 1):
            ctype = "client_secret" if rng.random() < 0.6 else "private_key_jwt"
            r = rng.random()
            if r < 0.15:  # long-lived: two years, created 120 days ago
                created, expires = t0 + rng.uniform(0, DAY), t0 + 700 * DAY
            elif r < 0.25:  # expired 30 days ago
                created, expires = t0 + rng.uniform(0, DAY), t0 + 90 * DAY
            else:
                created = now - rng.uniform(31, 85) * DAY
                expires = created + 90 * DAY
            cred: dict[str, Any] = {"type": ctype, "created": created, "expires": expires}
            n.creds.append(cred)
            n_creds += 1
            at(created, _make_cred(svc, caller, n.node, cred))
            if rng.random() < 0.05:
                at(now - 32 * DAY, _rotate(svc, caller, cred))
            elif rng.random() < 0.03:
                at(now - 31.5 * DAY, _revoke(svc, caller, cred))
    # API keys bound to NHIs
    n_keys = 0
    for n in nhis:
        if rng.random() < 0.08:
            exp = None if rng.random() < 0.6 else 400 * DAY
            at(t0 + rng.uniform(1, 30) * DAY, _make_key(svc, caller, n.node, exp))
            n_keys += 1
    # owners leaving: deprovisioned (their NHIs orphaned) and suspended humans
    owners_used = sorted({o for n in nhis for o in n.owners if o.startswith("human:")})
    gone = rng.sample(owners_used, max(1, len(owners_used) // 25))
    suspended = rng.sample(
        [h for h in owners_used if h not in gone], max(1, len(owners_used) // 40)
    )
    for h in gone:
        at(now - 40 * DAY, _status(svc, caller, h, "deprovision"))
    for h in suspended:
        at(now - 40 * DAY, _status(svc, caller, h, "suspend"))
    inactive = set(gone) | set(suspended)
    # delegations: a human to its own agent; some agent -> agent sub-delegations
    n_dels = 0
    scope = [{"actions": ["read", "viewer"], "resource": "document:*"}]
    agents = [n for n in nhis if n.kind == "agent"]
    delegated: list[tuple[Nhi, str, dict[str, Any]]] = []
    for n in agents:
        if n.owners[0] in inactive or rng.random() > 0.3:
            continue
        rec: dict[str, Any] = {}
        delegated.append((n, n.owners[0], rec))
        at(
            now - 35 * DAY,
            _delegate(svc, caller, n.owners[0], n.node, scope, now + 60 * DAY, rec, 1),
        )
        n_dels += 1
    for n, _human, rec in rng.sample(delegated, len(delegated) // 5):
        sub = rng.choice(agents)
        if sub is n:
            continue
        at(
            now - 34 * DAY,
            _delegate(svc, caller, n.node, sub.node, scope, now + 50 * DAY, {}, 0, rec),
        )
        n_dels += 1
    # NHIs that stop: suspended (credentials left active) and deprovisioned
    for n in rng.sample(nhis[3:], max(2, len(nhis) // 50)):
        n.status = "suspended" if rng.random() < 0.65 else "deprovisioned"
        n.weight = 0.0
        at(
            now - 31 * DAY,
            _status(
                svc, caller, n.node, n.status[:-2] if n.status == "suspended" else "deprovision"
            ),
        )
    actions.sort(key=lambda a: (a[0], a[1]))
    for when, _, fn in actions:
        clock.set(when)
        fn()
    for n, human, rec in delegated:
        if "id" in rec and n.status == "active":
            fv, _ = org.reach(n.groups[0])
            n.delegated.append((human, rec["id"], org.docs_of(rng, fv, 20)))
    phases["identity plane (services)"] = time.perf_counter() - t
    say(
        f"  {len(humans):,} humans, {len(nhis):,} NHIs, {n_creds:,} credentials, {n_keys:,} API "
        f"keys, {n_dels:,} delegations through the services in {phases['identity plane (services)']:.1f}s"
    )

    # --- the month of ledger data
    t = time.perf_counter()
    month = write_month(svc, nhis, humans, args.events, now, rng)
    counts = month.counts
    phases["ledger month (build + append)"] = time.perf_counter() - t
    say(
        f"  {counts['total']:,} ledger events over 30 days in "
        f"{phases['ledger month (build + append)']:.1f}s "
        f"({counts['total'] / phases['ledger month (build + append)']:,.0f}/s): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()) if k != "total")
    )
    clock.set(now)
    busiest = [node for node, _ in month.by_nhi.most_common(10)]
    popular = month.by_doc.most_common(1)[0][0]
    return Meta(
        now=now, tuples=n_tuples, events=counts["total"], nhis=len(nhis), humans=len(humans),
        credentials=n_creds, api_keys=n_keys, delegations=n_dels, busiest=busiest,
        widest="agent:wide-0", popular=popular, phases=phases,
    )  # fmt: skip


def _make_cred(
    svc: Services, caller: Caller, node: str, cred: dict[str, Any]
) -> Callable[[], None]:
    def run() -> None:
        jwk = okp_jwk() if cred["type"] == "private_key_jwt" else None
        c, _ = credentials.create_credential(
            svc, caller, STORE, node, type=cred["type"], public_jwk=jwk, expires_at=cred["expires"]
        )
        cred["id"] = c.id

    return run


def _rotate(svc: Services, caller: Caller, cred: dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        if cred["type"] == "client_secret" and svc.clock.now() < cred["expires"]:
            credentials.rotate_credential(svc, caller, STORE, cred["id"])

    return run


def _revoke(svc: Services, caller: Caller, cred: dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        credentials.revoke_credential(svc, caller, STORE, cred["id"])
        cred["revoked"] = True

    return run


def _make_key(svc: Services, caller: Caller, node: str, exp: float | None) -> Callable[[], None]:
    def run() -> None:
        keys.create_key(svc, caller, owner=node, roles=[f"reader:{STORE}"], expires_in=exp,
                        description=f"bound to {node}")  # fmt: skip

    return run


def _status(svc: Services, caller: Caller, node: str, what: str) -> Callable[[], None]:
    def run() -> None:
        if what == "suspend":
            identities.suspend_identity(svc, caller, STORE, node, reason="bench")
        else:
            identities.deprovision_identity(svc, caller, STORE, node, reason="bench")

    return run


def _delegate(
    svc: Services, caller: Caller, delegator: str, delegate: str, scope: list[dict[str, Any]],
    expires: float, rec: dict[str, Any], depth: int, parent: dict[str, Any] | None = None,
) -> Callable[[], None]:  # fmt: skip
    def run() -> None:
        if parent is not None and "id" not in parent:
            return
        d = delegations.create_delegation(
            svc, caller, STORE, delegator=delegator, delegate=delegate, scope=scope,
            expires_at=expires, max_depth=depth, parent_id=parent["id"] if parent else None,
        )  # fmt: skip
        rec["id"] = d.id

    return run


# ---------------------------------------------------------------------------- the month


@dataclass
class Month:
    """What :func:`write_month` wrote: events by type, allowed decisions by NHI, uses by
    document (the busiest NHIs and the most used document are picked from these)."""

    counts: Counter[str] = field(default_factory=Counter)
    by_nhi: Counter[str] = field(default_factory=Counter)
    by_doc: Counter[str] = field(default_factory=Counter)


def write_month(
    svc: Services, nhis: list[Nhi], humans: list[str], n_events: int, now: float,
    rng: random.Random,
) -> Month:  # fmt: skip
    """``n_events`` events over [now - 30 days, now), in time order, appended in batches."""
    engine, _ = svc.graphs.engine(STORE)
    model_id = engine.model.model_id or None
    revision = svc.graphs.engine(STORE)[1].revision
    caller = "key:01BENCHPOSTUREAPPKEY00000"
    active = [n for n in nhis if n.weight > 0 and (n.used_view or n.delegated)]
    cum: list[float] = []
    acc = 0.0
    for n in active:
        acc += n.weight
        cum.append(acc)
    all_docs = sorted(
        {d for n in nhis for d in n.used_view} | {d for n in nhis for d, _ in n.direct}
    )
    with_creds = [n for n in active if any("id" in c and not c.get("revoked") for c in n.creds)]
    idents = {
        n.node: {
            "kind": n.kind,
            "attributes": {"environment": n.env} if n.env else {},
            "status": "active",
        }
        for n in nhis
    }
    start = now - 30 * DAY
    times = sorted(rng.uniform(start, now - 1.0) for _ in range(n_events))
    month = Month()
    counts = month.counts
    batch: list[tuple[LedgerEvent, str]] = []
    prepare = svc.ledger.prepare
    last_seen: dict[str, float] = {}
    last_used: dict[str, float] = {}

    def flush() -> None:
        if batch:
            svc.storage.append_encoded(batch)
            batch.clear()

    for tm in times:
        ms = int(tm * 1000)
        eid = ulid_encode((ms << 80) | rng.getrandbits(79))
        r = rng.random()
        n = active[bisect.bisect_left(cum, rng.random() * acc)]
        if r < 0.05 and with_creds:  # token.issued by an NHI's credential
            n = with_creds[rng.randrange(len(with_creds))]
            live = [c for c in n.creds if "id" in c and not c.get("revoked") and c["expires"] > tm]
            if not live:
                continue
            c = live[0] if len(live) == 1 or rng.random() < 0.7 else live[1]
            last_used[c["id"]] = tm
            last_seen[n.node] = tm
            ev = LedgerEvent(
                eid, tm, STORE, "token.issued", n.node, n.node, (), None, "client_credentials",
                None, "allow", (), None, None, revision, None, None,
                {"jti": eid, "aud": ["https://api.example"], "scope": None, "exp": tm + 300,
                 "delegation_id": None, "kp_delegations": [], "client_id": n.node,
                 "credential_id": c["id"], "parents": []},
            )  # fmt: skip
            counts["token.issued"] += 1
        else:
            allowed = rng.random() < 0.88
            actors: tuple[str, ...] = ()
            subject = n.node
            dlg: str | None = None
            human_use = False
            pool = n.used_view
            if n.delegated and (not pool or rng.random() < 0.4):
                human, dlg, pool = n.delegated[rng.randrange(len(n.delegated))]
                subject, actors = human, (n.node,)
            elif rng.random() < 0.002:  # a human acting through the NHI (human use)
                actors = (humans[rng.randrange(len(humans))],)
                human_use = True
            edit = not dlg and n.used_edit and rng.random() < 0.15
            if allowed and pool:
                res = (n.used_edit if edit else pool)[
                    rng.randrange(len(n.used_edit if edit else pool))
                ]
            else:
                allowed = False
                res = all_docs[rng.randrange(len(all_docs))]
            rel = "editor" if edit else "viewer"
            if human_use and allowed:  # the human must hold it too, as decide requires
                allowed = engine.check(actors[0], rel, res)
            kind = rng.random()
            out = "allow" if allowed else "deny"
            if kind < 0.7 or actors:
                action = "write" if edit else "read"
                details: dict[str, Any] = {
                    "input": {
                        "subject": subject,
                        "actors": list(actors),
                        "action": action,
                        "resource": res,
                    },
                    "relation": rel,
                    "before_guardrails": out,
                }
                ids = {k: idents[k] for k in (subject, *actors) if k in idents}
                if ids:
                    details["identities"] = ids
                if dlg:
                    details["delegation_ids"] = [dlg]
                if not allowed:
                    details["reason"] = {"relation": rel}
                    details["reason_user"] = "not allowed"
                    details["requestable"] = False
                reason = "allowed" if allowed else "subject_lacks_permission"
                ev = LedgerEvent(
                    eid, tm, STORE, "decision.evaluate", caller, subject, actors, None, action,
                    res, out, (reason,), model_id, "guardrails:0", revision, None, eid, details,
                )  # fmt: skip
                counts["decision.evaluate"] += 1
            else:
                typ = "decision.check" if kind < 0.95 else "decision.batch_check"
                ev = LedgerEvent(
                    eid, tm, STORE, typ, caller, subject, (), None, rel, res, out, (), model_id,
                    None, revision, None, eid, {"correlation_id": str(rng.randrange(1000))} if typ == "decision.batch_check" else {},
                )  # fmt: skip
                counts[typ] += 1
            if allowed:
                month.by_nhi[n.node] += 1
                month.by_doc[res] += 1
                for node in (subject, *actors):
                    last_seen[node] = tm
        batch.append(prepare(ev))
        if len(batch) >= 20_000:
            flush()
    flush()
    counts["total"] = sum(counts.values())
    seen = [(k.split(":", 1)[0], k.split(":", 1)[1], v) for k, v in sorted(last_seen.items())]
    svc.storage.touch_identities(STORE, seen)
    svc.storage.touch_credentials(STORE, sorted(last_used.items()))
    return month


# ---------------------------------------------------------------------------- checks


def sanity(svc: Services, meta: Meta, full_verify: bool) -> None:
    """The chain is intact (its head and the last rows recomputed, or the whole of it with
    ``--verify``) and allowed decisions in the sample are allowed by the graph."""
    t = time.perf_counter()
    if full_verify:
        from keyplane.ledger import chain

        rep = chain.verify_stored(svc.storage, STORE)
        say(
            f"  ledger verify (whole chain): {'ok' if rep.ok else '!!! ' + str(rep.first_problem)}"
            f", {rep.checked:,} events checked, last signed checkpoint at seq "
            f"{rep.last_checkpoint_seq:,} ({rep.unsigned_tail:,} unsigned after it), "
            f"in {time.perf_counter() - t:.1f}s"
        )
    else:
        rows = svc.storage.read_chain_rows(STORE, after_seq=0, limit=1)
        head = svc.storage.read_events(STORE, after_seq=0, limit=1, descending=True)
        last = head[0].seq if head else 0
        tail = svc.storage.read_chain_rows(
            STORE, after_seq=max(0, (last or 0) - 20_000), limit=20_000
        )
        ok = all(b[2] == a[3] for a, b in itertools.pairwise(tail)) and all(
            chain_hash(r[2], r[1].encode()) == r[3] for r in tail
        )
        say(
            f"  ledger: {last:,} events in the store's chain (first seq {rows[0][0] if rows else '-'});"
            f" last {len(tail):,} rows re-hashed and linked: {'ok' if ok else '!!! BROKEN'}"
            f" ({time.perf_counter() - t:.1f}s; --verify for the whole chain)"
        )
    engine, _ = svc.graphs.engine(STORE)
    from keyplane.ledger.events import EventFilter

    sample = svc.storage.read_events(
        STORE, after_seq=max(0, (meta.events // 2)), limit=2000,
        filters=EventFilter(outcome="allow", types=("decision.evaluate", "decision.check")),
    )  # fmt: skip
    bad = 0
    for e in sample:
        rel = ACTIONS.get(e.action or "", e.action or "")
        for who in (e.subject, *e.actor_chain):
            if who and not engine.check(who, rel, e.resource or ""):
                bad += 1
    say(
        f"  {len(sample):,} allowed decisions re-checked on the graph: "
        + ("all allowed" if not bad else f"!!! WARNING {bad} not allowed")
    )


# ---------------------------------------------------------------------------- timed calls


def mod(name: str) -> Any:
    """``keyplane.service.<name>`` (or the dotted path), or None while it is not there."""
    import importlib

    try:
        return importlib.import_module(name if "." in name else f"keyplane.service.{name}")
    except ImportError:
        return None


class Runner:
    def __init__(self, profile: bool) -> None:
        self.profile = profile
        self.rows: list[tuple[str, float | None, str]] = []

    def run(self, label: str, fn: Callable[[], str]) -> None:
        prof = cProfile.Profile() if self.profile else None
        t, c = time.perf_counter(), time.process_time()
        cpu: float | None = None
        try:
            if prof:
                prof.enable()
            note = fn()
            dt: float | None = time.perf_counter() - t
            cpu = time.process_time() - c
        except _NotYet as exc:
            note, dt = f"n/a ({exc})", None
        except Exception as exc:  # a service that fails is a row, not the end of the run
            note, dt = f"!!! {type(exc).__name__}: {str(exc)[:160]}", None
        finally:
            if prof:
                prof.disable()
        self.rows.append((label, dt, note))
        say(fmt_row(label, dt, cpu, note))
        if prof and dt is not None:
            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            st.sort_stats("cumulative").print_stats(22)
            st.sort_stats("tottime").print_stats(14)
            say(f"\n--- profile: {label} ---\n{_trim(out.getvalue())}")


class _NotYet(Exception):
    pass


def _trim(text: str) -> str:
    return "\n".join(
        line for line in text.splitlines() if line.strip() and "Ordered by" not in line
    )


def fmt_row(label: str, dt: float | None, cpu: float | None, note: str) -> str:
    """One row: wall seconds against the budget, and this process's CPU seconds (every
    thread) — the figure that moves less with the machine's load."""
    if dt is None:
        return f"  {label:<54} {'—':>9} {'':>8} {'':>6}  {note}"
    ok = "ok" if dt <= BUDGET_S else "MISS"
    return f"  {label:<54} {dt:>8.2f}s {cpu or 0:>7.2f}s {ok:>6}  {note}"


def need(name: str, attr: str) -> Any:
    m = mod(name)
    if m is None or not hasattr(m, attr):
        raise _NotYet(f"{name}.{attr} not yet available")
    return getattr(m, attr)


def pages(call: Callable[[str | None], Any]) -> tuple[int, int]:
    """(items, pages) of a paged operation, every page fetched."""
    token: str | None = None
    items = n = 0
    while True:
        page = call(token)
        n += 1
        items += len(page.items)
        token = page.continuation_token
        if not token:
            return items, n


def timed_calls(svc: Services, meta: Meta, runner: Runner, ops: set[str]) -> None:
    caller = Caller.system_caller()
    now = svc.clock.now()
    report: list[Any] = []
    size = svc.settings.max_page_size  # the fewest pages the operations allow

    if "usage" in ops:

        def raw() -> str:
            rows = svc.storage.ledger_usage(
                STORE, since=now - 90 * DAY, until=now,
                types=("decision.evaluate", "decision.check", "decision.batch_check"),
            )  # fmt: skip
            return f"{len(rows):,} rows, {sum(r.uses for r in rows):,} allowed decisions"

        runner.run("storage.ledger_usage (the GROUP BY alone, 90 days)", raw)

        def usage() -> str:
            fn = need("privilege", "usage")
            u = fn(svc, STORE, now - 90 * DAY, now)
            return f"{type(u).__name__} over 90 days"

        runner.run("privilege.usage (the ledger aggregate, 90 days)", usage)

    if "report" in ops:

        def posture() -> str:
            fn = need("posture", "posture_report")
            rep = fn(svc, caller, STORE)
            report.append(rep)
            by = Counter(f.code for f in rep.findings)
            return (
                f"{len(rep.inventory):,} NHIs, {len(rep.findings):,} findings "
                f"({', '.join(f'{k} {v}' for k, v in by.most_common(6))}…), "
                f"visibility {rep.visibility.score:.0%}"
            )

        runner.run("posture_report (full, inventory, 90 days)", posture)

        def html() -> str:
            if not report:
                raise _NotYet("no report")
            fn = need("keyplane.governance.report", "render_html")
            text = fn(report[0])
            return f"{len(text) / 1e6:.1f} MB of HTML"

        runner.run("render_html (the report above)", html)

    if "inventory" in ops:

        def inventory() -> str:
            fn = need("posture", "nhi_inventory")
            n, p = pages(lambda tok: fn(svc, caller, STORE, page_size=50, continuation_token=tok))
            return f"{n:,} NHIs in {p} pages of 50 (the default page)"

        runner.run("nhi_inventory (every page)", inventory)

    if "over" in ops:

        def over() -> str:
            fn = need("privilege", "over_privilege")
            worst, revoke, grants = 0.0, 0, 0
            for node in meta.busiest:
                t = time.perf_counter()
                op = fn(svc, caller, STORE, node)
                worst = max(worst, time.perf_counter() - t)
                revoke += len(op.revoke)
                grants += len(op.grants)
            return (
                f"{len(meta.busiest)} NHIs, {grants} grants, {revoke} to revoke; "
                f"slowest one {worst:.2f}s"
            )

        runner.run("over_privilege × the 10 busiest NHIs", over)

    if "exceeding" in ops:

        def exceeding() -> str:
            fn = need("privilege", "agents_exceeding_owners")
            n, p = pages(lambda tok: fn(svc, caller, STORE, page_size=50, continuation_token=tok))
            return f"{n:,} agent/principal pairs in {p} pages"

        runner.run("agents_exceeding_owners (every page)", exceeding)

    if "effective" in ops:

        def effective() -> str:
            fn = need("effective", "effective_access")
            n, p = pages(
                lambda tok: fn(
                    svc, caller, STORE, meta.widest, page_size=size, continuation_token=tok
                )
            )
            return f"{meta.widest}: {n:,} entries in {p:,} pages of {size}"

        runner.run("effective_access, the widest NHI (every page)", effective)

    if "who" in ops:

        def who() -> str:
            fn = need("effective", "who_can_access")
            n, p = pages(
                lambda tok: fn(
                    svc, caller, STORE, meta.popular, page_size=size, continuation_token=tok
                )
            )
            return f"{meta.popular}: {n:,} entries in {p:,} pages of {size}"

        runner.run("who_can_access, the most used document (every page)", who)


# ---------------------------------------------------------------------------- main


def cache_dir(args: argparse.Namespace) -> Path:
    return CACHE_ROOT / f"t{args.tuples}-e{args.events}-n{args.nhis}-s{args.seed}-v{GEN_VERSION}"


def open_services(d: Path, clock: FixedClock) -> Services:
    settings = Settings(
        database_url=f"sqlite:///{d / 'posture.db'}",
        poll_interval=0.0,
        ledger_mode="sync",
        master_key_file=str(d / "master.key"),
    )
    return Services.open(settings, clock=clock)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tuples", type=int, default=None, help="org size (default 1,000,000)")
    ap.add_argument("--events", type=int, default=None, help="ledger events (default 1,000,000)")
    ap.add_argument("--nhis", type=int, default=None, help="non-human identities (default 2,000)")
    ap.add_argument("--small", action="store_true", help="50k tuples, 100k events, 300 NHIs")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    ap.add_argument("--no-cache", action="store_true", help="a temporary database, deleted")
    ap.add_argument("--verify", action="store_true", help="verify the whole ledger chain")
    ap.add_argument("--profile", action="store_true", help="cProfile each timed call")
    ap.add_argument(
        "--ops", default="usage,report,inventory,over,exceeding,effective,who",
        help="which timed calls (comma-separated; default all)",
    )  # fmt: skip
    args = ap.parse_args()
    small = args.small
    args.tuples = args.tuples or (50_000 if small else 1_000_000)
    args.events = args.events or (100_000 if small else 1_000_000)
    args.nhis = args.nhis or (300 if small else 2_000)

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.no_cache:
        tmp = tempfile.TemporaryDirectory(prefix="kp-bench-posture-")
        d = Path(tmp.name)
    else:
        d = cache_dir(args)
        if args.fresh and d.exists():
            shutil.rmtree(d)
    meta_file = d / "meta.json"
    try:
        say(f"load average {os.getloadavg()[0]:.1f} / {os.cpu_count()} CPUs")
        if meta_file.exists():
            meta = Meta(**json.loads(meta_file.read_text()))
            say(f"reusing {d} (built earlier; --fresh rebuilds it)")
            clock = FixedClock(meta.now)
            svc = open_services(d, clock)
            t = time.perf_counter()
            svc.graphs.engine(STORE)
            say(f"  graph in memory in {time.perf_counter() - t:.1f}s")
        else:
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            say(
                f"building ~{args.tuples:,} tuples, {args.nhis:,} NHIs, {args.events:,} "
                f"ledger events into {d} …"
            )
            now = float(int(time.time()))
            clock = FixedClock(now)
            svc = open_services(d, clock)
            t = time.perf_counter()
            meta = build(svc, clock, args, now)
            say(f"  built in {time.perf_counter() - t:.1f}s")
            meta_file.write_text(json.dumps(asdict(meta), indent=1))
        try:
            say(
                f"\n{meta.tuples:,} tuples, {meta.humans:,} humans, {meta.nhis:,} NHIs, "
                f"{meta.credentials:,} credentials, {meta.api_keys:,} API keys, "
                f"{meta.delegations:,} delegations, {meta.events:,} ledger events"
            )
            say(f"busiest NHIs: {', '.join(meta.busiest)}")
            sanity(svc, meta, args.verify)
            say(f"\nload average {os.getloadavg()[0]:.1f}\n")
            say(f"  {'operation':<54} {'wall':>9} {'CPU':>8} {'< 60 s':>6}  result")
            runner = Runner(args.profile)
            timed_calls(svc, meta, runner, set(args.ops.split(",")))
            say(f"\nload average {os.getloadavg()[0]:.1f}")
        finally:
            with contextlib.suppress(Exception):
                svc.close()
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()

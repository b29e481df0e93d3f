"""The in-memory graphs a process serves, kept current from the database's changelog.

Decisions never wait on the database: each store's tuples live in a
:class:`~keyplane.graph.index.TupleIndex`, built once from a storage snapshot and then
advanced by applying the store's changelog (``revision > applied``). Three things advance
it:

* a background tailer thread that polls every ``poll_interval`` seconds, so a write made
  by another process is seen within about that long;
* this process's own writes, which catch up right after they commit (read-your-writes in
  one process without waiting for the tailer);
* a request that carries ``at_least_as_fresh=N``: if the index is behind ``N`` it pulls
  the changelog itself, polling until it reaches ``N`` or ``consistency_timeout`` passes
  (then :class:`~keyplane.errors.ConsistencyTimeoutError`). This is what makes a write on
  one replica visible to a read on another — no new-enemy problem.

Compiled models are cached by id; a store's index is shared by all its model versions, so
writing a new model never disturbs decisions that name an old one.

Beside the index each store has a :class:`~keyplane.policy.state.PolicyState` (identities,
delegations, guardrails, store policy), advanced by the same catch-up from the same
revision counter (``read_policy_changes``) and replaced whole — never mutated — so
:meth:`GraphRegistry.policy` hands a decision one consistent snapshot. A suspension or a
revocation is therefore seen by the writing process at once (its write catches up), by
another process within ``poll_interval``, and by any request carrying
``at_least_as_fresh`` the change's revision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from keyplane.clock import Clock, SystemClock
from keyplane.errors import ConsistencyTimeoutError, ModelNotFoundError, StoreNotFoundError
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState
from keyplane.storage.base import REVOKED_TOKEN_GRACE, Storage

__all__ = ["GraphRegistry", "StoreGraph"]

_CHANGES_PAGE = 5000
# seconds between sweeps that drop expired edges from memory (the database's copy is
# removed by gc_expired; expired edges never grant, sweep or not)
_PURGE_EVERY = 60.0
# an identity's last_seen is written at most this often (seconds), by the tailer thread
SEEN_EVERY = 60.0


@dataclass
class StoreGraph:
    """One store's in-memory graph and the revision it reflects."""

    store_id: str
    index: TupleIndex
    revision: int
    # the store's generation when loaded: a recreated store (same id, revisions restarting
    # at 0) has another one, and the graph is then reloaded rather than advanced
    generation: str = ""
    # ``lock`` guards the index: held by queries while they read it and by catch-up while it
    # mutates it (a query iterating a set must never see it change size). ``catch_up_lock``
    # serialises catch-ups, which read the database while holding it — queries never wait
    # on the database, only on the in-memory apply.
    lock: threading.RLock = field(default_factory=threading.RLock)
    catch_up_lock: threading.Lock = field(default_factory=threading.Lock)
    # the identity plane at (at least) ``revision``; replaced whole on every change
    policy: PolicyState | None = None

    @property
    def applied(self) -> int:
        """The revision both the index and the policy state reflect."""
        p = self.policy
        return self.revision if p is None else min(self.revision, p.revision)


class GraphRegistry:
    """Loads, caches and advances the graphs and compiled models of the stores served."""

    def __init__(
        self,
        storage: Storage,
        *,
        poll_interval: float = 0.2,
        clock: Clock | None = None,
        max_depth: int = 25,
    ) -> None:
        self._storage = storage
        self._clock: Clock = clock or SystemClock()
        self._max_depth = max_depth
        self._engines: dict[tuple[str, str], Engine] = {}
        self._graphs: dict[str, StoreGraph] = {}
        self._models: dict[tuple[str, str], CompiledModel] = {}
        self._latest: dict[str, str] = {}
        self._lock = threading.Lock()
        #: per-store housekeeping the tailer runs at each purge (``hook(store_id)``, e.g.
        #: the access-request sweep Services registers): see :meth:`run_maintenance`
        self.maintenance: list[Callable[[str], object]] = []
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._tailer: threading.Thread | None = None
        # last_seen bookkeeping: pending times (written by the tailer, off the decision
        # path) and when each identity's time was last written (the 60 s throttle)
        self._seen_pending: dict[tuple[str, str], float] = {}
        self._seen_written: dict[tuple[str, str], float] = {}

    # ---------------------------------------------------------------- graphs

    def graph(self, store_id: str) -> StoreGraph:
        """The store's graph, loading it from a snapshot on first use."""
        g = self._graphs.get(store_id)
        if g is not None:
            return g
        with self._lock:
            g = self._graphs.get(store_id)
            if g is None:
                g = self._load(store_id)
                self._graphs[store_id] = g
                self._ensure_tailer()
        return g

    def _load(self, store_id: str) -> StoreGraph:
        head = self._storage.store_head(store_id)
        index = TupleIndex()
        revision, rows = self._storage.snapshot_rows(store_id)
        index.load_rows(rows)
        index.revision = revision
        g = StoreGraph(store_id, index, revision, head.generation)
        # read after the snapshot: the policy state is at least as new as the index
        g.policy = PolicyState.empty(store_id).advanced(
            self._storage.read_policy_changes(store_id, 0), now=self._clock.now()
        )
        return g

    def _reload(self, store_id: str) -> StoreGraph:
        """Replace the store's graph by a fresh snapshot (the store was recreated)."""
        fresh = self._load(store_id)
        with self._lock:
            self._graphs[store_id] = fresh
            self._latest.pop(store_id, None)
            for key in [k for k in self._engines if k[0] == store_id]:
                del self._engines[key]
            for key in [k for k in self._models if k[0] == store_id]:
                del self._models[key]
        return fresh

    def catch_up(self, store_id: str) -> int:
        """Apply every change committed after the graph's revision; return the new revision.

        After the changelog, the store's head is read: a store deleted meanwhile is dropped
        from memory (StoreNotFoundError), a recreated one is reloaded from a snapshot, and a
        newer latest model becomes the one decisions use — all by the revision returned.
        """
        try:
            return self._catch_up(store_id)
        except StoreNotFoundError:
            self.forget(store_id)
            raise

    def _catch_up(self, store_id: str) -> int:
        g = self.graph(store_id)
        with g.catch_up_lock:
            while True:
                page = self._storage.read_changes(
                    store_id, after_revision=g.revision, page_size=_CHANGES_PAGE
                )
                if not page.changes and page.last_revision <= g.revision:
                    break
                with g.lock:
                    # apply in changelog order, so a delete then a re-write of one key (or the
                    # reverse) within a page ends in the right state
                    run_op, run = "", list[Tuple]()
                    for c in page.changes:
                        if c.operation != run_op and run:
                            self._apply(g, run_op, run)
                            run = []
                        run_op = c.operation
                        run.append(c.tuple)
                    if run:
                        self._apply(g, run_op, run)
                    g.revision = max(g.revision, page.last_revision)
                    g.index.revision = g.revision
                if not page.has_more:
                    break
            # every identity-plane change bumps the revision: nothing to read unless the
            # changelog moved past the policy state (read after it, so at least as new)
            policy = g.policy
            if policy is None or g.revision > policy.revision:
                base = policy or PolicyState.empty(store_id)
                g.policy = base.advanced(
                    self._storage.read_policy_changes(store_id, base.revision),
                    now=self._clock.now(),
                )
            # read after the changelog, so the head is at least as new as what was applied
            head = self._storage.store_head(store_id)
        if head.generation != g.generation:
            return self._reload(store_id).revision
        if head.latest_model_id is not None and head.latest_model_id != self._latest.get(store_id):
            self._set_latest(store_id, head.latest_model_id)
        return g.revision

    @staticmethod
    def _apply(g: StoreGraph, op: str, run: list[Tuple]) -> None:
        if op == "write":
            g.index.apply(run, ())
        else:
            g.index.apply((), run)

    def wait_for(self, store_id: str, revision: int, *, timeout: float) -> int:
        """Block until the graph reflects ``revision`` (pulling the changelog), or time out."""
        g = self.graph(store_id)
        if g.applied >= revision:
            return g.applied
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            self.catch_up(store_id)
            applied = self.graph(store_id).applied
            if applied >= revision:
                return applied
            if time.monotonic() >= deadline:
                raise ConsistencyTimeoutError(
                    f"store {store_id!r} did not reach revision {revision} within {timeout:g}s "
                    f"(this process is at revision {applied})",
                    details={"requested": revision, "applied": applied},
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def forget(self, store_id: str) -> None:
        with self._lock:
            self._graphs.pop(store_id, None)
            self._latest.pop(store_id, None)
            for key in [k for k in self._models if k[0] == store_id]:
                del self._models[key]
            for key in [k for k in self._engines if k[0] == store_id]:
                del self._engines[key]

    def policy(self, store_id: str) -> PolicyState:
        """The store's identity plane (identities, delegations, guardrails, store policy):
        an immutable snapshot, cheap to take, safe to read without locks."""
        g = self.graph(store_id)
        p = g.policy
        if p is None:  # only while a first catch-up races a load; read it now
            self.catch_up(store_id)
            p = self.graph(store_id).policy
            assert p is not None
        return p

    def identity(self, store_id: str, node: str) -> Identity | None:
        """The registered identity at graph node ``node`` ("agent:bot"), or None."""
        return self.policy(store_id).identity(node)

    def note_seen(self, store_id: str, node: str, at: float) -> None:
        """Note that identity ``node`` took part in a decision at ``at``. Costs a dict
        look-up; the time is written to storage later (:meth:`flush_seen`, run by the
        tailer), at most once per identity every :data:`SEEN_EVERY` seconds."""
        key = (store_id, node)
        written = self._seen_written.get(key)
        if written is not None and at - written < SEEN_EVERY:
            return
        if self._seen_pending.get(key, 0.0) < at:
            self._seen_pending[key] = at

    def flush_seen(self) -> int:
        """Write the pending last_seen times (one write per store); returns how many."""
        if not self._seen_pending:
            return 0
        with self._lock:
            pending, self._seen_pending = self._seen_pending, {}
        by_store: dict[str, list[tuple[str, str, float]]] = {}
        for (store, node), at in pending.items():
            kind, _, id_ = node.partition(":")
            by_store.setdefault(store, []).append((kind, id_, at))
            self._seen_written[(store, node)] = at
        for store, seen in by_store.items():
            try:
                self._storage.touch_identities(store, seen)
            except Exception:  # a deleted store, a database hiccup: last_seen is advisory
                continue
        return len(pending)

    def warm(self, store_id: str) -> bool:
        """Whether a decision on ``store_id`` with its latest model needs no database read
        (graph, policy state and latest model in memory) — code on an event loop decides
        inline only then."""
        g = self._graphs.get(store_id)
        return g is not None and g.policy is not None and store_id in self._latest

    def loaded(self) -> Iterator[StoreGraph]:
        return iter(list(self._graphs.values()))

    # ---------------------------------------------------------------- models

    def model(self, store_id: str, model_id: str | None = None) -> CompiledModel:
        """The compiled model ``model_id``, or the store's latest when ``None``.

        The latest model's id is cached per store (refreshed by the tailer and by this
        process's own model writes), so a decision naming no model does not touch the
        database.
        """
        if model_id is None:
            model_id = self._latest.get(store_id) or self.refresh_latest(store_id)
        key = (store_id, model_id)
        cached = self._models.get(key)
        if cached is None:
            rec = self._storage.read_model(store_id, model_id)
            cached = CompiledModel.compile(rec.model, model_id=rec.id)
            self._models[key] = cached
        return cached

    def refresh_latest(self, store_id: str) -> str:
        """Re-read the store's latest model id from the database."""
        head = self._storage.store_head(store_id)
        if head.latest_model_id is None:
            raise ModelNotFoundError(
                f"store {store_id!r} has no authorization model yet; write one first",
                details={"store": store_id},
            )
        self._set_latest(store_id, head.latest_model_id)
        return head.latest_model_id

    def _set_latest(self, store_id: str, model_id: str) -> None:
        key = (store_id, model_id)
        if key not in self._models:
            rec = self._storage.read_model(store_id, model_id)
            self._models[key] = CompiledModel.compile(rec.model, model_id=rec.id)
        self._latest[store_id] = model_id

    def engine(self, store_id: str, model_id: str | None = None) -> tuple[Engine, StoreGraph]:
        """The engine for (store, model) over the store's shared in-memory graph."""
        model = self.model(store_id, model_id)
        key = (store_id, model.model_id or "")
        eng = self._engines.get(key)
        g = self.graph(store_id)
        if eng is None:
            eng = Engine(model, g.index, clock=self._clock, max_depth=self._max_depth)
            self._engines[key] = eng
        return eng, g

    # ---------------------------------------------------------------- tailer

    def _ensure_tailer(self) -> None:
        if self._poll_interval <= 0 or self._tailer is not None:
            return
        self._tailer = threading.Thread(target=self._tail, name="keyplane-tailer", daemon=True)
        self._tailer.start()

    def _tail(self) -> None:
        last_purge = time.monotonic()
        while not self._stop.wait(self._poll_interval):
            purge = time.monotonic() - last_purge >= _PURGE_EVERY
            if purge:
                last_purge = time.monotonic()
            for g in self.loaded():
                try:
                    self.catch_up(g.store_id)
                    if purge:
                        self.purge_expired(g.store_id)
                        self.run_maintenance(g.store_id)
                except Exception:  # keep tailing; the next poll retries
                    continue
            if purge:
                self.prune_revoked_tokens()
            self.flush_seen()

    def purge_expired(self, store_id: str) -> int:
        """Free the memory of expired edges (they already stopped granting at their instant)."""
        g = self.graph(store_id)
        with g.catch_up_lock, g.lock:
            return g.index.purge_expired(self._clock.now())

    def run_maintenance(self, store_id: str) -> None:
        """Run the :attr:`maintenance` hooks for a store. Never raises: housekeeping is
        retried at the next purge."""
        for hook in list(self.maintenance):
            try:
                hook(store_id)
            except Exception:  # housekeeping: the next purge retries
                continue

    def prune_revoked_tokens(self) -> int:
        """Delete the stored revocations of tokens expired for longer than the grace (all
        stores; their tokens are refused by ``exp`` anyway). Never raises: it is
        housekeeping, retried at the next purge."""
        try:
            return self._storage.prune_revoked_tokens(self._clock.now() - REVOKED_TOKEN_GRACE)
        except Exception:
            return 0

    def close(self) -> None:
        self._stop.set()
        if self._tailer is not None:
            self._tailer.join(timeout=2)
            self._tailer = None
        self.flush_seen()  # (it never raises: last_seen is advisory)

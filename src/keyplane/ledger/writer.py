"""The ledger writer: group commit on a background thread, so durability is cheap.

Every :meth:`LedgerWriter.record` call hands events to one writer thread, which appends
everything queued at that moment in ONE storage transaction (``append_events``): while a
transaction is in flight the next group gathers, so under load many events share each
commit (the same idea as PostgreSQL's group commit and OPA's batched decision logs — but
nothing is ever dropped).

Modes (``KEYPLANE_LEDGER_MODE``):

* ``sync`` (default): ``record`` returns only once the transaction holding the event has
  COMMITTED. If it failed, ``record`` raises :class:`~keyplane.errors.StorageError`; the
  caller fails closed (a decision whose event is not durable is never returned).
* ``async``: ``record`` enqueues and returns at once. The queue is bounded
  (``KEYPLANE_LEDGER_ASYNC_CAPACITY`` events); when it is full ``record`` BLOCKS until the
  writer catches up (back-pressure) — events are never dropped. A failed transaction is
  retried with backoff until it commits or the writer is closed.

After commits the writer signs the chain head of each store that has had
``checkpoint_every_events`` new events, or any new event for
``checkpoint_every_seconds`` (see :mod:`keyplane.ledger.checkpoints`); ``close`` drains the
queue and checkpoints every store it appended to.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from keyplane.clock import Clock, SystemClock
from keyplane.errors import StorageError
from keyplane.ledger.chain import canonical_text
from keyplane.ledger.checkpoints import Checkpoint, CheckpointSigner
from keyplane.ledger.events import LedgerEvent

__all__ = ["LedgerAppender", "LedgerWriter", "WriterStats"]

log = logging.getLogger("keyplane.ledger")

Mode = Literal["sync", "async"]


class LedgerAppender(Protocol):
    """What the writer needs from storage (part of :class:`keyplane.storage.base.LedgerStore`)."""

    def append_encoded(
        self, items: Sequence[tuple[LedgerEvent, str]]
    ) -> list[tuple[int, str, str]]: ...

    def write_checkpoint(self, checkpoint: Checkpoint) -> None: ...


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters for metrics: every event recorded is eventually ``committed`` (never dropped)."""

    mode: str
    recorded: int  # events handed to record()
    committed: int  # events durably appended
    pending: int  # recorded, not yet committed (nor failed back to a sync caller)
    transactions: int  # append transactions committed
    failed_transactions: int
    checkpoints: int
    checkpoint_failures: int
    blocked: int  # record() calls that waited for queue space (async back-pressure)
    lost: int  # async only: events that still failed after close() (close raised)


class _Ticket:
    """A group of events from one record() call, and (sync) whoever waits for its commit.

    The waiter blocks on a lock the writer releases: cheaper than a threading.Event, which
    matters at tens of thousands of events per second."""

    __slots__ = ("error", "events", "lock")

    def __init__(self, events: list[tuple[LedgerEvent, str]], wait: bool) -> None:
        self.events = events
        self.error: BaseException | None = None
        self.lock: _thread.LockType | None = None
        if wait:
            self.lock = _thread.allocate_lock()
            self.lock.acquire()

    def release(self) -> None:
        if self.lock is not None and self.lock.locked():
            self.lock.release()


class LedgerWriter:
    def __init__(
        self,
        storage: LedgerAppender,
        *,
        mode: Mode = "sync",
        max_batch: int = 2000,
        async_capacity: int = 100_000,
        checkpoint_every_events: int = 1000,
        checkpoint_every_seconds: float = 10.0,
        signer: CheckpointSigner | None = None,
        redact: Callable[[LedgerEvent], LedgerEvent] | None = None,
        clock: Clock | None = None,
        retry_delay: float = 0.05,
        group_wait: float = 0.001,
    ) -> None:
        if mode not in ("sync", "async"):
            raise ValueError(f"ledger mode must be 'sync' or 'async', not {mode!r}")
        self._storage = storage
        self.mode: Mode = mode
        self._max_batch = max(1, max_batch)
        self._capacity = max(1, async_capacity)
        self._cp_events = max(1, checkpoint_every_events)
        self._cp_seconds = checkpoint_every_seconds
        self._signer = signer
        self._redact = redact
        self._clock = clock or SystemClock()
        self._retry_delay = retry_delay
        self._group_wait = group_wait
        self._last_group = 1  # tickets in the previous group: how many callers to wait for
        self._lock = threading.Lock()
        # the writer waits on _work; async producers (queue full) and flush() on _space
        self._work = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        # how many queued tickets make the waiting writer worth waking (see _next_group)
        self._want = 1
        self._queue: deque[_Ticket] = deque()
        self._queued_events = 0
        self._closed = False
        # counters (under _lock)
        self._recorded = 0
        self._committed = 0
        self._settled = 0  # committed, or failed and reported to the caller / counted lost
        self._lost = 0  # async only: events given up on after close (logged, close() raises)
        self._transactions = 0
        self._failed = 0
        self._checkpoints = 0
        self._cp_failures = 0
        self._blocked = 0
        # per store: head (seq, hash) after our last commit, last checkpoint (seq, monotonic time)
        self._heads: dict[str, tuple[int, str]] = {}
        self._signed: dict[str, tuple[int, float]] = {}
        self._thread = threading.Thread(target=self._run, name="keyplane-ledger", daemon=True)
        self._thread.start()

    # -- the callers' side --------------------------------------------------------------

    def record(self, event: LedgerEvent) -> None:
        """Record one event (see the module docstring for what returning means per mode)."""
        self.record_many((event,))

    def record_many(self, events: Sequence[LedgerEvent]) -> None:
        """Record several events as one group (e.g. a batch check): in sync mode, one wait."""
        if not events:
            return
        batch = [self._prepare(e) for e in events]
        ticket = _Ticket(batch, wait=self.mode == "sync")
        with self._lock:
            if self._closed:
                raise StorageError("the ledger writer is closed")
            if self.mode == "async" and self._full(len(batch)):
                self._blocked += 1
                while self._full(len(batch)) and not self._closed:
                    self._space.wait()
                if self._closed:
                    raise StorageError("the ledger writer is closed")
            self._queue.append(ticket)
            self._queued_events += len(batch)
            self._recorded += len(batch)
            if len(self._queue) >= self._want:
                # wake the writer only when it waits for this many callers, not on every
                # record (dozens of needless wake-ups per group under load)
                self._work.notify()
        if ticket.lock is not None:
            ticket.lock.acquire()  # released by the writer once the group is settled
            if ticket.error is not None:
                raise StorageError(
                    f"the ledger could not record the event durably: {ticket.error}"
                ) from ticket.error

    def prepare(self, event: LedgerEvent) -> tuple[LedgerEvent, str]:
        """``event`` redacted and encoded, ready for :meth:`LedgerStore.append_encoded` —
        for a change whose event must commit inside the change's own transaction."""
        return self._prepare(event)

    def _full(self, adding: int) -> bool:
        # a group larger than the whole capacity still goes in, alone, when the queue is empty
        return self._queued_events > 0 and self._queued_events + adding > self._capacity

    def _prepare(self, event: LedgerEvent) -> tuple[LedgerEvent, str]:
        if self._redact is not None:
            event = self._redact(event)
        if event.seq is not None or event.prev_hash is not None or event.hash is not None:
            raise ValueError(f"ledger event {event.id} is already chained")
        # encoded here, in the caller's thread: an event JSON cannot hold fails its own
        # caller only, and the encoding runs while the writer thread waits on the database
        # instead of inside the serialized commit path
        return event, canonical_text(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event recorded before this call is committed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._recorded
            while self._settled < target:
                if not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._space.wait(left if left is not None else 1.0)
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting events, commit everything queued, checkpoint, stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._work.notify_all()
            self._space.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise StorageError("the ledger writer did not drain its queue in time")
        if self._lost:
            raise StorageError(f"{self._lost} ledger events could not be written (see the log)")

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                mode=self.mode,
                recorded=self._recorded,
                committed=self._committed,
                pending=self._recorded - self._settled,
                transactions=self._transactions,
                failed_transactions=self._failed,
                checkpoints=self._checkpoints,
                checkpoint_failures=self._cp_failures,
                blocked=self._blocked,
                lost=self._lost,
            )

    # -- the writer thread --------------------------------------------------------------

    def _next_group(self) -> list[_Ticket] | None:
        """Block until there is work; take up to max_batch events. None: closed and empty."""
        with self._lock:
            while not self._queue:
                if self._closed:
                    return None
                self._want = 1
                self._work.wait(self._wait_time())
                if not self._queue:
                    return []  # a timeout: time-based checkpoints may be due
            if self._group_wait > 0 and not self._closed:
                # group commit's "commit delay": the callers of the last group are coming
                # back one by one; wait a moment for them so they share one transaction
                # instead of trickling into many (at most group_wait; never when idle)
                target = min(self._last_group, self._max_batch)
                deadline = time.monotonic() + self._group_wait
                self._want = target
                while len(self._queue) < target and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._work.wait(left)
            group: list[_Ticket] = []
            n = 0
            while self._queue and (not group or n + len(self._queue[0].events) <= self._max_batch):
                t = self._queue.popleft()
                group.append(t)
                n += len(t.events)
            self._last_group = len(group)
            self._want = 1 << 62  # busy committing: it looks at the queue when done
            return group

    def _wait_time(self) -> float | None:
        """Seconds until the next time-based checkpoint is due (None: none pending)."""
        if self._signer is None or self._cp_seconds <= 0:
            return None
        due = [
            self._signed[store][1] + self._cp_seconds
            for store, (seq, _) in self._heads.items()
            if store in self._signed and seq > self._signed[store][0]
        ]
        return max(0.01, min(due) - time.monotonic()) if due else None

    def _run(self) -> None:
        group: list[_Ticket] | None = []
        try:
            while True:
                group = self._next_group()
                if group is None:
                    break
                if group:
                    self._commit(group)
                group = []
                self._checkpoint(force=False)
            self._checkpoint(force=True)
        except BaseException as exc:  # a bug: never leave a caller waiting forever
            log.exception("the ledger writer stopped")
            with self._lock:
                self._closed = True
                rest = list(self._queue)
                self._queue.clear()
            self._settle_failed([*(group or []), *rest], exc, lost=self.mode == "async")

    def _settle_failed(self, tickets: list[_Ticket], exc: BaseException, *, lost: bool) -> None:
        n = sum(len(t.events) for t in tickets)
        with self._lock:
            self._queued_events -= n
            self._settled += n
            if lost:
                self._lost += n
            self._space.notify_all()
        for t in tickets:
            t.error = exc
            t.release()

    def _commit(self, group: list[_Ticket]) -> None:
        items = [item for t in group for item in t.events]
        attempts_after_close = 0
        while True:
            try:
                heads = self._storage.append_encoded(items)
                break
            except Exception as exc:
                with self._lock:
                    self._failed += 1
                    closed = self._closed
                attempts_after_close += closed
                if self.mode == "sync" or attempts_after_close > 3:
                    # sync: the callers get the error and fail closed; async after close:
                    # nobody is left to retry for — count the events lost, loudly
                    log.error("ledger append failed (%d events): %s", len(items), exc)
                    self._settle_failed(group, exc, lost=self.mode == "async")
                    return
                log.warning("ledger append failed, retrying (%d events): %s", len(items), exc)
                time.sleep(self._retry_delay)
        if len(heads) != len(items):
            raise RuntimeError("storage returned a different number of chained events")
        now = time.monotonic()
        with self._lock:
            for (e, _), (seq, _prev, digest) in zip(items, heads, strict=True):
                head = self._heads.get(e.store)
                if head is None or seq > head[0]:
                    self._heads[e.store] = (seq, digest)
                self._signed.setdefault(e.store, (seq - 1, now))
            self._queued_events -= len(items)
            self._committed += len(items)
            self._settled += len(items)
            self._transactions += 1
            self._space.notify_all()
        for t in group:
            t.release()

    def _checkpoint(self, *, force: bool) -> None:
        if self._signer is None:
            return
        now = time.monotonic()
        with self._lock:
            due = []
            for store, (seq, h) in self._heads.items():
                signed_seq, signed_at = self._signed.get(store, (0, now))
                if seq <= signed_seq:
                    continue
                if (
                    force
                    or seq - signed_seq >= self._cp_events
                    or (self._cp_seconds > 0 and now - signed_at >= self._cp_seconds)
                ):
                    due.append((store, seq, h))
        for store, seq, h in due:
            try:
                cp = self._signer.sign(store, seq, h, self._clock.now())
                self._storage.write_checkpoint(cp)
            except Exception:
                # events are durable already; a missing checkpoint only leaves an unsigned
                # tail, which the next checkpoint covers
                log.exception("ledger checkpoint failed for store %s at seq %d", store, seq)
                with self._lock:
                    self._cp_failures += 1
                continue
            with self._lock:
                self._signed[store] = (seq, now)
                self._checkpoints += 1

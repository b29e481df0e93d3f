"""Per-process authentication state: recently authenticated keys and last-used throttling.

Kept on :class:`~keyplane.service.context.Services` (one per process and database), so
nothing here is global. Times come from the services' clock, so tests drive expiry and
cache ageing with a :class:`~keyplane.clock.FixedClock`.

* **Authenticated keys** are remembered for ``ttl`` seconds (``KEYPLANE_KEY_CACHE_TTL``)
  by ``(key id, secret hash)``, so a busy client costs no database read per request.
  Revoking or rotating a key through this process drops its entries at once; another
  process's cached entry lives at most ``ttl`` longer. The key's own expiry (and a rotated
  secret's overlap deadline) is re-checked on every hit, so caching never extends a key.
* **last_used_at** is written at most once per ``touch_interval`` per key and process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from keyplane.service.auth import Caller
from keyplane.storage.ids import UlidGenerator

__all__ = ["AuthCache", "CachedKey"]

_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CachedKey:
    caller: Caller
    valid_until: float | None  # key expiry, or the overlap deadline of a rotated secret
    cached_at: float


class AuthCache:
    """Thread-safe; every method is O(1) except :meth:`invalidate` (O(entries))."""

    def __init__(self, *, touch_interval: float = 60.0) -> None:
        self.touch_interval = touch_interval
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], CachedKey] = {}
        self._touched: dict[str, float] = {}
        #: the id of the system model version this process decides with (see system.py)
        self.system_model_id: str | None = None
        #: key ids made by this process, strictly increasing (see keys.py)
        self.key_ids: UlidGenerator | None = None

    def get(self, key_id: str, secret_hash: str, *, now: float, ttl: float) -> Caller | None:
        entry = self._entries.get((key_id, secret_hash))
        if entry is None:
            return None
        if now - entry.cached_at >= ttl or (
            entry.valid_until is not None and now >= entry.valid_until
        ):
            with self._lock:
                self._entries.pop((key_id, secret_hash), None)
            return None
        return entry.caller

    def put(self, key_id: str, secret_hash: str, entry: CachedKey, *, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()  # crude but bounded; entries are cheap to rebuild
            self._entries[(key_id, secret_hash)] = entry

    def invalidate(self, key_id: str) -> None:
        """Forget every cached secret of ``key_id`` (after a revoke or a rotation)."""
        with self._lock:
            for k in [k for k in self._entries if k[0] == key_id]:
                del self._entries[k]

    def touch_due(self, key_id: str, now: float) -> bool:
        """Whether :meth:`should_touch` would say True now (this changes nothing)."""
        last = self._touched.get(key_id)
        return last is None or now - last >= self.touch_interval

    def should_touch(self, key_id: str, now: float) -> bool:
        """True at most once per ``touch_interval`` per key: time to write last_used_at."""
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < self.touch_interval:
                return False
            if len(self._touched) >= _MAX_ENTRIES:
                self._touched.clear()
            self._touched[key_id] = now
            return True

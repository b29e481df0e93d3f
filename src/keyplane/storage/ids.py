"""Identifiers for stores and model versions: ULIDs, as OpenFGA uses.

A ULID is 128 bits — a 48-bit millisecond timestamp then 80 random bits — written as 26
characters of Crockford base32, so ids sort by creation time as plain strings. Within one
millisecond the generator increments the random part (the spec's "monotonic" mode), so ids
made by one process are strictly increasing even when the clock stands still.
"""

from __future__ import annotations

import re
import secrets
import threading

from keyplane.clock import Clock, SystemClock

__all__ = ["ULID_RE", "UlidGenerator"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


class UlidGenerator:
    """Thread-safe monotonic ULID source driven by an injectable clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def new(self) -> str:
        ms = int(self._clock.now() * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                rand = self._last_rand + 1
                if rand >> _RANDOM_BITS:  # random part overflowed: borrow the next millisecond
                    ms += 1
                    rand = secrets.randbits(_RANDOM_BITS - 1)
            else:
                # one bit of headroom keeps increments within the millisecond from overflowing
                rand = secrets.randbits(_RANDOM_BITS - 1)
            self._last_ms, self._last_rand = ms, rand
        n = (ms << _RANDOM_BITS) | rand
        return "".join(_ALPHABET[(n >> shift) & 31] for shift in range(125, -1, -5))

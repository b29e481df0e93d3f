"""Failed authentications in the ledger: ``auth.failed`` events in the ``_system`` chain.

Every surface that takes an API key (REST ``/v1``, the OpenFGA-compatible API, AuthZEN, MCP)
reports a refused key here through :func:`keyplane.service.keys.authenticate` (or
:func:`keyplane.service.keys.missing_key`). An event names the reason
(:data:`REASONS`), the key id when the presented token carries one (``kp_<id>_…`` — the
id is public; the secret is never recorded, not even in part), the surface, the operation
(``METHOD /path`` or the MCP tool), the request id and the remote address.

**Flood guard.** Failed authentication is the one thing anybody can make Keyplane do
without a key, so recording it must not let an attacker grow the ledger as fast as they can
send requests. Failures are coalesced per *(reason, key id, surface, remote address)*: the
first one opens a window of :data:`WINDOW_SECONDS` (1 s) and is recorded at once with
``count`` 1; repeats inside the window are only counted, and when the window ends ONE
summary event records them (``count`` = how many were suppressed, with the first and last
times, the last request id and operation). At most :data:`MAX_OPEN_WINDOWS` windows are
open at once; failures beyond that (an attacker varying key ids or addresses) share one
overflow window per reason (``details.overflow``). So one process records at most
``2 × (MAX_OPEN_WINDOWS + len(REASONS))`` ``auth.failed`` events per second, whatever the
request rate — nothing is dropped: every failure is counted in some event.

Summaries are written when a window ends: by a small flusher thread (started on the first
repeat, gone when no window is open), by the next failure, and on
:meth:`AuthFailureLog.close` (``Services.close``), so counts survive an orderly shutdown.
Window times come from the services' clock (tests drive them without sleeping).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from keyplane.ledger.events import SYSTEM_STORE, LedgerEvent, new_event_id

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = [
    "ANONYMOUS",
    "MAX_OPEN_WINDOWS",
    "REASONS",
    "WINDOW_SECONDS",
    "AuthFailure",
    "AuthFailureLog",
]

log = logging.getLogger("keyplane.auth")

#: why a key was refused (an event's single reason code)
REASONS: Final = (
    "missing_key",  # no bearer token at all
    "malformed_key",  # not kp_<id>_<secret>
    "unknown_key",  # well-formed, but no key has that id
    "invalid_secret",  # the id exists, the secret does not match
    "rotated_secret",  # a rotated-out secret whose overlap has ended
    "revoked_key",  # the secret matched; the key is revoked
    "expired_key",  # the secret matched; the key has expired
)
WINDOW_SECONDS: Final = 1.0
MAX_OPEN_WINDOWS: Final = 64
#: the caller of an auth.failed event: nobody was authenticated
ANONYMOUS: Final = "anonymous"
_MAX_FIELD = 256


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """One refused call: what the surface knows about it (never the secret)."""

    reason: str
    key_id: str | None
    surface: str
    operation: str | None
    remote: str | None
    request_id: str | None


@dataclass(slots=True)
class _Window:
    first: AuthFailure
    opened: float  # services' clock
    overflow: bool
    suppressed: int = 0
    last: AuthFailure | None = None
    last_time: float = 0.0


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:_MAX_FIELD]


class AuthFailureLog:
    """Thread-safe coalescer of ``auth.failed`` events; one per :class:`Services`."""

    def __init__(self, *, window: float = WINDOW_SECONDS, max_open: int = MAX_OPEN_WINDOWS) -> None:
        self.window = window
        self.max_open = max_open
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._windows: dict[tuple[str, str | None, str, str | None], _Window] = {}
        self._services: Services | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        #: failures seen, and events written, by this process (for tests and metrics)
        self.failures = 0
        self.events = 0

    def record(self, services: Services, failure: AuthFailure) -> None:
        """Count one failure; write its event now if it opens a window. Never raises: the
        caller is refused either way, and a ledger problem must not turn a 401 into a 500."""
        now = services.clock.now()
        emit: list[LedgerEvent] = self._expired(services, now, force=False)
        with self._lock:
            self._services = services
            self.failures += 1
            key = (failure.reason, failure.key_id, failure.surface, failure.remote)
            w = self._windows.get(key)
            if w is None and len(self._windows) >= self.max_open:
                key = (failure.reason, None, "*", None)
                w = self._windows.get(key)
                overflow = True
            else:
                overflow = False
            if w is None:
                self._windows[key] = _Window(failure, now, overflow)
                emit.append(self._event(services, failure, now, count=1, overflow=overflow))
            else:
                w.suppressed += 1
                w.last, w.last_time = failure, now
                self._start_flusher()
        self._write(services, emit)

    def flush(self, services: Services, *, force: bool = False) -> int:
        """Write the summaries of the windows that have ended (every window if ``force``);
        returns how many events were written."""
        emit = self._expired(services, services.clock.now(), force=force)
        self._write(services, emit)
        return len(emit)

    def close(self) -> None:
        """Write every pending summary and stop the flusher (before the ledger closes)."""
        with self._lock:
            self._closed = True
            services = self._services
            thread = self._thread
            self._wake.notify_all()
        if thread is not None:
            thread.join(5.0)
        if services is not None:
            self.flush(services, force=True)

    # -- internals -----------------------------------------------------------------------

    def _expired(self, services: Services, now: float, *, force: bool) -> list[LedgerEvent]:
        out: list[LedgerEvent] = []
        with self._lock:
            done = [k for k, w in self._windows.items() if force or now - w.opened >= self.window]
            for k in done:
                w = self._windows.pop(k)
                if w.suppressed and w.last is not None:
                    out.append(self._summary(services, w))
        return out

    def _event(
        self, services: Services, f: AuthFailure, now: float, *, count: int, overflow: bool
    ) -> LedgerEvent:
        details: dict[str, object] = {
            "surface": f.surface,
            "remote": f.remote,
            "count": count,
            "window_seconds": self.window,
        }
        if overflow:
            details["overflow"] = True
        return LedgerEvent(
            id=new_event_id(),
            time=now,
            store=SYSTEM_STORE,
            type="auth.failed",
            caller=ANONYMOUS,
            subject=None if f.key_id is None else f"key:{f.key_id}",
            action="authenticate",
            resource=_clip(f.operation),
            outcome="deny",
            reasons=(f.reason,),
            request_id=_clip(f.request_id),
            details=details,
        )

    def _summary(self, services: Services, w: _Window) -> LedgerEvent:
        last = w.last
        assert last is not None
        ev = self._event(services, last, w.last_time, count=w.suppressed, overflow=w.overflow)
        details = dict(ev.details)
        details.update(
            coalesced=True,
            first_time=w.opened,
            last_time=w.last_time,
            first_request_id=_clip(w.first.request_id),
        )
        if w.overflow:  # the repeats had various keys and addresses: name none of them
            details["remote"] = None
            return replace(ev, subject=None, details=details)
        return replace(ev, details=details)

    def _write(self, services: Services, events: list[LedgerEvent]) -> None:
        if not events:
            return
        try:
            services.ledger.record_many(events)
        except Exception as exc:  # the ledger is down or closed: the refusal stands anyway
            log.warning("could not record %d auth.failed events: %s", len(events), exc)
            return
        with self._lock:
            self.events += len(events)

    def _start_flusher(self) -> None:
        """(under the lock) make sure a thread will write the summaries when windows end."""
        if self._thread is not None or self._closed:
            return
        self._thread = threading.Thread(
            target=self._run, name="keyplane-auth-failures", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._windows:
                    self._thread = None
                    return
                self._wake.wait(self.window)
                services = self._services
            if services is not None:
                try:
                    self.flush(services)
                except Exception:  # never let the thread die silently with counts pending
                    log.exception("auth.failed flush failed")

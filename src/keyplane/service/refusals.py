"""Coalesced refusals in the ledger: ``credential.auth_failed`` and ``token.refused``.

Anybody who can reach the token endpoint can make it refuse them, so recording refusals
must not let them grow a store's ledger as fast as they can send requests. Refusals are
coalesced per (event type, store, subject, reason) in :data:`WINDOW` (1 s) windows: the
first is recorded at once (``details.count`` 1); repeats inside the window are counted and
summarized by ONE event when the window ends (``count`` = the repeats, ``coalesced``,
``first_time``, ``last_time``), written by the next refusal or by :func:`flush_refusals`.
Beyond :data:`MAX_WINDOWS` open windows (an attacker varying clients or stores), and for a
store that does not exist, refusals share one window per (type, reason) in the ``_system``
chain. Nothing is dropped: every refusal is counted in some event.

Each event type supplies the builder of its events (:data:`EventBuilder`); window times
come from the services' clock (tests drive them without sleeping).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from keyplane.errors import NotFoundError
from keyplane.ledger.events import SYSTEM_STORE, LedgerEvent

if TYPE_CHECKING:
    from keyplane.service.context import Services

__all__ = ["MAX_WINDOWS", "WINDOW", "EventBuilder", "flush_refusals", "record_refusal"]

log = logging.getLogger("keyplane.refusals")

WINDOW: Final = 1.0
MAX_WINDOWS: Final = 64

#: builds one event: (store, subject, reason, time, count, extra details) -> the event
EventBuilder = Callable[[str, str | None, str, float, int, dict[str, Any]], LedgerEvent]

_Key = tuple[str, str, str | None, str]  # (event type, store, subject, reason)


class _Windows:
    """The open windows of one :class:`Services`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # key -> [opened, suppressed, last time, builder]
        self.open: dict[_Key, list[Any]] = {}


# by id(Services) (a dataclass, unhashable); an entry goes when its Services is collected
_all: dict[int, _Windows] = {}
_all_lock = threading.Lock()


def _forget(key: int) -> None:
    with _all_lock:
        _all.pop(key, None)


def _windows(svc: Services) -> _Windows:
    key = id(svc)
    w = _all.get(key)
    if w is not None:
        return w
    with _all_lock:
        w = _all.get(key)
        if w is None:
            w = _all[key] = _Windows()
            weakref.finalize(svc, _forget, key)
        return w


def flush_refusals(svc: Services, *, force: bool = False) -> int:
    """Write the summaries of the windows that have ended (every window with ``force``);
    returns how many events were written."""
    ws = _windows(svc)
    now = svc.clock.now()
    out: list[LedgerEvent] = []
    with ws.lock:
        for key in [k for k, w in ws.open.items() if force or now - w[0] >= WINDOW]:
            opened, suppressed, last, build = ws.open.pop(key)
            if suppressed:
                extra = {"coalesced": True, "first_time": opened, "last_time": last}
                out.append(build(key[1], key[2], key[3], last, suppressed, extra))
    _write(svc, out)
    return len(out)


def record_refusal(
    svc: Services,
    event_type: str,
    store_id: str,
    subject: str | None,
    reason: str,
    build: EventBuilder,
) -> None:
    """Count one refusal; write its event now if it opens a window. Never raises: the
    refusal stands either way, and a ledger problem must not change the answer."""
    try:
        flush_refusals(svc)
        ws = _windows(svc)
        now = svc.clock.now()
        key: _Key = (event_type, store_id, subject, reason)
        if key not in ws.open and not _store_exists(svc, store_id):
            # no such store (so no ledger of its own): one window per (type, reason) in the
            # _system chain, like the overflow below; looked up only when a window opens
            key = (event_type, SYSTEM_STORE, None, reason)
        emit: list[LedgerEvent] = []
        with ws.lock:
            w = ws.open.get(key)
            if w is None and len(ws.open) >= MAX_WINDOWS:
                # overflow: one window per (type, reason) in the _system chain, so no
                # input grows any store's ledger without bound
                key = (event_type, SYSTEM_STORE, None, reason)
                w = ws.open.get(key)
            if w is None:
                ws.open[key] = [now, 0, now, build]
                emit.append(build(key[1], key[2], reason, now, 1, {}))
            else:
                w[1] += 1
                w[2] = now
        _write(svc, emit)
    except Exception:  # never turn a refusal into a 500
        log.exception("could not count a %s refusal", event_type)


def _store_exists(svc: Services, store_id: str) -> bool:
    """Whether ``store_id`` names a store with a ledger. Only a definite "not found" says
    no: on any other storage error the refusal goes to the store's chain as before (and
    :func:`_write` logs it if the ledger cannot take it)."""
    if store_id == SYSTEM_STORE:
        return True
    try:
        svc.storage.get_store(store_id)
    except NotFoundError:
        return False
    except Exception:  # a storage problem is not a missing store
        return True
    return True


def _write(svc: Services, events: list[LedgerEvent]) -> None:
    if not events:
        return
    try:
        svc.ledger.record_many(events)
    except Exception as exc:  # an unknown store, a closed ledger: the refusal stands anyway
        log.warning("could not record %d refusal events: %s", len(events), exc)

"""Keyplane: a headless identity control plane for humans, workloads and AI agents.

The public embedding API. Names are imported lazily, so ``import keyplane.errors`` (or any
submodule) does not load the whole engine and storage stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyplane.clock import Clock, FixedClock, SystemClock
    from keyplane.config import Settings
    from keyplane.embedded import Keyplane
    from keyplane.errors import KeyplaneError
    from keyplane.graph.tuples import Tuple
    from keyplane.sdk import AsyncClient, Client, KeyplaneAPI, connect, open
    from keyplane.service.access import BatchItem, BatchItemResult, Decision

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "AsyncClient": "keyplane.sdk",
    "BatchItem": "keyplane.service.access",
    "BatchItemResult": "keyplane.service.access",
    "Client": "keyplane.sdk",
    "Clock": "keyplane.clock",
    "Decision": "keyplane.service.access",
    "FixedClock": "keyplane.clock",
    "Keyplane": "keyplane.embedded",
    "KeyplaneAPI": "keyplane.sdk",
    "KeyplaneError": "keyplane.errors",
    "Settings": "keyplane.config",
    "SystemClock": "keyplane.clock",
    "Tuple": "keyplane.graph.tuples",
    "connect": "keyplane.sdk",
    "open": "keyplane.sdk",
}

__all__ = [
    "AsyncClient",
    "BatchItem",
    "BatchItemResult",
    "Client",
    "Clock",
    "Decision",
    "FixedClock",
    "Keyplane",
    "KeyplaneAPI",
    "KeyplaneError",
    "Settings",
    "SystemClock",
    "Tuple",
    "__version__",
    "connect",
    "open",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keyplane' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

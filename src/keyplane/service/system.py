"""The control plane's own authorization: the system model and its checks.

PLACEHOLDER until API keys and roles land: every non-system caller is denied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyplane.service.auth import Caller
    from keyplane.service.context import Services

__all__ = ["allowed"]


def allowed(svc: Services, caller: Caller, permission: str, store_id: str | None) -> bool:
    return False

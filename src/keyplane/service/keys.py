"""API keys. PLACEHOLDER until keys land: every key is refused."""

from __future__ import annotations

from keyplane.errors import AuthenticationError
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["authenticate"]


def authenticate(svc: Services, token: str) -> Caller:
    raise AuthenticationError("unknown API key")

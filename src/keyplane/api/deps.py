"""Request dependencies: the services bundle, the authenticated caller, the request id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["CallerDep", "ServicesDep", "get_caller", "get_services", "surface_of"]

_bearer = HTTPBearer(
    auto_error=False, description="A Keyplane API key: `Authorization: Bearer kp_…`"
)


def get_services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def get_caller(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the bearer API key; every endpoint but health and discovery needs one.

    A refused key is recorded (``auth.failed``, coalesced) with the surface, the method and
    path, and the client address."""
    from keyplane.service.keys import authenticate, missing_key

    svc = get_services(request)
    surface = surface_of(request.url.path)
    operation = f"{request.method} {request.url.path}"
    remote = request.client.host if request.client else None
    if creds is None or not creds.credentials:
        raise missing_key(
            svc,
            "missing API key: send 'Authorization: Bearer <key>'",
            surface=surface,
            operation=operation,
            remote=remote,
        )
    caller = authenticate(
        svc, creds.credentials, surface=surface, operation=operation, remote=remote
    )
    request.state.caller = caller
    return caller


def surface_of(path: str) -> str:
    """Which API a path belongs to, as ``auth.failed`` events name it."""
    if path.startswith("/v1/"):
        return "rest"
    if path.startswith("/mcp"):
        return "mcp"
    if path.startswith("/access/") or "/access/v1" in path:
        return "authzen"
    return "openfga"


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]

"""Request dependencies: the services bundle, the authenticated caller, the request id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keyplane.errors import AuthenticationError
from keyplane.service.auth import Caller
from keyplane.service.context import Services

__all__ = ["CallerDep", "ServicesDep", "get_caller", "get_services"]

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
    """Authenticate the bearer API key; every endpoint but health and discovery needs one."""
    if creds is None or not creds.credentials:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
    from keyplane.service.keys import authenticate

    caller = authenticate(get_services(request), creds.credentials)
    request.state.caller = caller
    return caller


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]

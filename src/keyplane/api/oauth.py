"""The OAuth 2.0 endpoints of a store's authorization server (issue 6 §3–§5).

* ``POST /oauth2/token`` — RFC 6749 §3.2: the ``client_credentials`` grant (§4.4) and
  token exchange (RFC 8693 §2.1, ``urn:ietf:params:oauth:grant-type:token-exchange``);
* ``POST /oauth2/introspect`` — RFC 7662;
* ``POST /oauth2/revoke`` — RFC 7009;

for the default store (``KEYPLANE_DEFAULT_STORE``) at the root, and for any store under
``/stores/{store_id}/oauth2/…`` (the store's issuer ``<base>/stores/<id>`` + ``/oauth2/…``,
as its RFC 8414 metadata says).

The request (RFC 6749 §3.2): ``application/x-www-form-urlencoded`` (anything else is
``invalid_request``), UTF-8, at most :data:`MAX_FORM_BYTES` (64 KiB; past it 413 with
``invalid_request``); an empty parameter counts as absent, unknown parameters are ignored,
and a parameter may appear once — except ``resource`` and ``audience`` (RFC 8693 §2.1
allows several).

Client authentication (RFC 6749 §2.3, RFC 7523 §2.2), exactly one method:
``client_secret_basic`` (``Authorization: Basic``, id and secret form-urldecoded, §2.3.1),
``client_secret_post`` (``client_id`` + ``client_secret``) or ``private_key_jwt``
(``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` +
``client_assertion``, whose ``aud`` is the URL of the endpoint called — at introspection and
revocation the token endpoint's URL is accepted too). A refused client is 401
``invalid_client`` (with ``WWW-Authenticate: Basic realm="keyplane"`` when Basic was
tried); :func:`~keyplane.service.credentials.authenticate_client` records it. Introspection
also accepts a Keyplane API key (``Authorization: Bearer kp_…``, ``can_read_identities`` on
the store) and revocation one with ``can_manage_credentials`` (an administrator's revocation
of any token of the store).

Every answer carries ``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 §5.1);
errors are RFC 6749 §5.2 JSON (``error``, ``error_description``), never the internal reason
(that goes to the ledger: ``token.refused``, ``credential.auth_failed``). The grants' rules
are :mod:`keyplane.service.tokens`'; this module only reads the request and maps answers.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from keyplane.api.deps import ServicesDep
from keyplane.errors import (
    AuthenticationError,
    KeyplaneError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ValidationError,
)
from keyplane.service import tokens as token_service
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.credentials import AuthenticatedClient, authenticate_client
from keyplane.tokens.clients import ClientAuthError, parse_assertion
from keyplane.tokens.errors import OAuthError
from keyplane.tokens.jwks import issuer_for

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "MAX_FORM_BYTES",
    "router",
    "serve",
]

log = logging.getLogger("keyplane.oauth")

router = APIRouter(tags=["oauth"])

FORM: Final = "application/x-www-form-urlencoded"
#: the largest form body an OAuth endpoint reads (a token exchange with two tokens of at
#: most 8 KiB each and its parameters fits many times over)
MAX_FORM_BYTES: Final = 64 * 1024
#: at most this many parameters in one form
MAX_FORM_FIELDS: Final = 100
#: the parameters that may be repeated (RFC 8693 §2.1)
MULTI: Final = frozenset({"resource", "audience"})
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MAX_STORE_ID = 128
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_BASIC_CHALLENGE: Final = 'Basic realm="keyplane"'
_BEARER_CHALLENGE: Final = 'Bearer realm="keyplane"'


# ------------------------------------------------------------------------------ request


class _Refusal(Exception):
    """An answer decided before the grant's rules ran: the OAuth error, its ledger reason
    and extra response headers."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        reason: str,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.oauth = OAuthError(error, description, status=status, reason=reason)
        self.headers = dict(headers or {})
        #: the authenticated client, when the refusal came after authentication
        self.client_id: str | None = None


@dataclass
class _Form:
    single: dict[str, str] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.single.get(name)

    def require(self, name: str) -> str:
        value = self.single.get(name)
        if value is None:
            raise _Refusal(
                "invalid_request", f"the '{name}' parameter is required", reason="missing_parameter"
            )
        return value

    def many(self, name: str) -> list[str]:
        return self.multi.get(name, [])


async def _read_form(request: Request) -> _Form:
    """The form body, within the limits; raises :class:`_Refusal` otherwise."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise _Refusal(
            "invalid_request",
            f"the request body must be {FORM}",
            reason="wrong_content_type",
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise _too_large()
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise _too_large()
    except ClientDisconnect:  # nobody to answer; counted like any malformed request
        raise _Refusal(
            "invalid_request", "the request body ended early", reason="malformed_request"
        ) from None
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=False,  # RFC 6749 §3.2: a parameter without a value is omitted
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise _Refusal(
            "invalid_request",
            f"the request body is not a valid UTF-8 {FORM} form (at most {MAX_FORM_FIELDS} "
            "parameters)",
            reason="malformed_request",
        ) from None
    form = _Form()
    for name, value in pairs:
        if name in MULTI:
            form.multi.setdefault(name, []).append(value)
        elif name in form.single:
            raise _Refusal(
                "invalid_request",
                f"the '{name[:64]}' parameter is repeated",
                reason="repeated_parameter",
            )
        else:
            form.single[name] = value
    return form


def _too_large() -> _Refusal:
    return _Refusal(
        "invalid_request",
        f"the request body exceeds {MAX_FORM_BYTES} bytes",
        reason="body_too_large",
        status=413,
    )


# ------------------------------------------------------------------------------ client auth


@dataclass(frozen=True)
class _Credentials:
    """How the request tries to authenticate: a client (``method`` client_secret_basic,
    client_secret_post, private_key_jwt) or an API key (``method`` api_key)."""

    method: str
    client_id: str | None = None
    secret: str | None = None
    assertion: str | None = None
    api_key: str | None = None


def _credentials(request: Request, form: _Form) -> _Credentials:
    """The one authentication method of the request (RFC 6749 §2.3: never several)."""
    found: list[_Credentials] = []
    basic = False
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            basic = True
            found.append(_basic(value))
        elif scheme.lower() == "bearer" and value:
            found.append(_Credentials("api_key", api_key=value))
        else:
            raise _Refusal(
                "invalid_client",
                "unsupported Authorization scheme",
                reason="unsupported_auth_scheme",
            )
    client_id = form.get("client_id")
    if form.get("client_secret") is not None:
        if client_id is None:
            raise _refused_client("client_secret_post needs client_id", "missing_client_id", basic)
        found.append(
            _Credentials(
                "client_secret_post", client_id=client_id, secret=form.get("client_secret")
            )
        )
    assertion = form.get("client_assertion")
    assertion_type = form.get("client_assertion_type")
    if assertion is not None or assertion_type is not None:
        if assertion_type != CLIENT_ASSERTION_TYPE or assertion is None:
            raise _refused_client(
                f"client_assertion_type must be {CLIENT_ASSERTION_TYPE} with a client_assertion",
                "unsupported_assertion_type",
                basic,
            )
        found.append(
            _Credentials(
                "private_key_jwt",
                client_id=client_id or _assertion_subject(assertion),
                assertion=assertion,
            )
        )
    if len(found) > 1:
        raise _Refusal(
            "invalid_request",
            "use exactly one client authentication method",
            reason="several_auth_methods",
        )
    if not found:
        raise _refused_client("client authentication is required", "no_client_auth", basic)
    creds = found[0]
    if creds.method == "client_secret_basic" and client_id not in (None, creds.client_id):
        raise _refused_client(
            "client_id does not match the Authorization header", "client_id_mismatch", True
        )
    return creds


def _basic(value: str) -> _Credentials:
    """RFC 6749 §2.3.1: base64(urlencode(id) ":" urlencode(secret)); a raw id works too."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        raise _refused_client("malformed Basic credentials", "malformed_basic", True) from None
    # split at the LAST colon: RFC 6749 §2.3.1 clients send the id form-urlencoded
    # (agent%3Aplanner), but many (curl -u, httpx/requests auth=) send it raw, and a
    # Keyplane client id holds a colon; a Keyplane client secret never does
    cid, sep, secret = raw.rpartition(":")
    if not sep or not cid:
        raise _refused_client("malformed Basic credentials", "malformed_basic", True)
    return _Credentials(
        "client_secret_basic", client_id=unquote_plus(cid), secret=unquote_plus(secret)
    )


def _refused_client(description: str, reason: str, basic: bool) -> _Refusal:
    headers = {"WWW-Authenticate": _BASIC_CHALLENGE} if basic else None
    return _Refusal("invalid_client", description, reason=reason, headers=headers)


def _assertion_subject(assertion: str) -> str:
    """The client id an assertion claims (``sub``; verification checks it)."""
    try:
        sub = parse_assertion(assertion).claims.get("sub")
    except ClientAuthError:
        return ""
    return sub if isinstance(sub, str) else ""


def _assertion_audience(assertion: str, accepted: tuple[str, ...]) -> str:
    """Which of the ``accepted`` endpoint URLs the assertion is addressed to (the first
    when none: verification then refuses it as ``wrong_audience``)."""
    try:
        aud = parse_assertion(assertion).claims.get("aud")
    except ClientAuthError:
        return accepted[0]
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    for url in accepted:
        if url in auds:
            return url
    return accepted[0]


# ------------------------------------------------------------------------------ plumbing


@dataclass(frozen=True)
class _Call:
    """One OAuth request: which store, its issuer, the endpoint URLs it may be addressed as."""

    svc: Services
    store_id: str
    base: str
    path_store: str | None  # the store in the path (None: the root form)
    endpoint: str  # "token" | "introspect" | "revoke"
    remote: str | None = None  # the client's address (for auth.failed)

    def url(self, endpoint: str) -> str:
        return f"{issuer_for(self.base, self.path_store)}/oauth2/{endpoint}"

    @property
    def audiences(self) -> tuple[str, ...]:
        """The URLs a client assertion may name: this endpoint's, then the token
        endpoint's (RFC 7523 §3: the token endpoint URL identifies the server)."""
        own = self.url(self.endpoint)
        token = self.url("token")
        return (own,) if own == token else (own, token)

    def issuer(self) -> str:
        """The issuer of the endpoint called, which its tokens name in ``iss``:
        ``<base>/stores/<id>`` at ``/stores/{id}/oauth2/…`` — the default store's too, as
        its metadata there says — and ``<base>`` at ``/oauth2/…``. (Verification takes
        either name for the default store: ``token_service.accepted_issuers``.)"""
        return issuer_for(self.base, self.path_store)


def _call(svc: Services, request: Request, store_id: str | None, endpoint: str) -> _Call:
    base = (svc.settings.issuer or str(request.base_url)).rstrip("/")
    store = svc.settings.default_store if store_id is None else store_id
    remote = request.client.host if request.client else None
    return _Call(svc, store, base, store_id, endpoint, remote)


def _json(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(dict(body), status_code=status, headers={**_NO_STORE, **(headers or {})})


def _oauth_error(exc: OAuthError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return _json(exc.response(), exc.status, headers)


def _record(call: _Call, refusal: _Refusal, *, grant_type: str | None) -> None:
    """Put a refusal decided here (not by the service) in the store's ledger
    (``token.refused``, coalesced by the service, which puts the refusals of a store that
    does not exist in the ``_system`` chain; never raises)."""
    token_service.record_token_refused(
        call.svc, call.store_id, refusal.client_id, refusal.oauth, grant_type
    )


def _keyplane_error(exc: KeyplaneError) -> OAuthError:
    """A Keyplane error met while answering, as an OAuth error (never its internals)."""
    if isinstance(exc, AuthenticationError):
        return OAuthError("invalid_client", "invalid API key", reason="api_key_refused")
    if isinstance(exc, PermissionDeniedError):
        return OAuthError(
            "unauthorized_client",
            "the API key may not do this on this store",
            status=403,
            reason="permission_denied",
        )
    if isinstance(exc, NotFoundError):
        return OAuthError("invalid_request", exc.message, status=404, reason=exc.code)
    if isinstance(exc, LimitExceededError):
        return OAuthError("invalid_request", exc.message, status=413, reason=exc.code)
    if isinstance(exc, ValidationError):
        return OAuthError("invalid_request", exc.message, reason=exc.code)
    if isinstance(exc, StorageError):
        return OAuthError("server_error", "the database failed; retry", status=503, reason=exc.code)
    return OAuthError("server_error", "internal error", reason=exc.code)


def _check_store_id(store_id: str) -> None:
    if not 0 < len(store_id) <= _MAX_STORE_ID:
        raise _Refusal("invalid_request", "no such store", reason="store_not_found", status=404)


def _answer(
    call: _Call, work: Callable[[], Response], *, grant_type: str | None = None
) -> Response:
    """Run ``work``; map every failure to its RFC 6749 §5.2 answer."""
    try:
        return work()
    except _Recorded as refusal:  # authenticate_client put it in the ledger
        return _oauth_error(refusal.oauth, refusal.headers)
    except _Refusal as refusal:
        _record(call, refusal, grant_type=grant_type)
        return _oauth_error(refusal.oauth, refusal.headers)
    except OAuthError as exc:  # the service refused (and recorded it)
        return _oauth_error(exc)
    except KeyplaneError as exc:
        mapped = _keyplane_error(exc)
        headers = {"WWW-Authenticate": _BEARER_CHALLENGE} if mapped.status == 401 else None
        return _oauth_error(mapped, headers)
    except Exception:
        log.exception("OAuth %s endpoint failed", call.endpoint)
        return _oauth_error(OAuthError("server_error", "internal error"))


def _authenticate(call: _Call, creds: _Credentials) -> AuthenticatedClient:
    """The client ``creds`` name, or :class:`_Refusal` (``invalid_client``; recorded as
    ``credential.auth_failed`` by :func:`authenticate_client`)."""
    assert creds.client_id is not None
    audience = call.audiences[0]
    if creds.assertion is not None:
        audience = _assertion_audience(creds.assertion, call.audiences)
    try:
        return authenticate_client(
            call.svc,
            call.store_id,
            creds.client_id,
            secret=creds.secret,
            assertion=creds.assertion,
            token_endpoint_url=audience,
        )
    except ClientAuthError as exc:
        headers = (
            {"WWW-Authenticate": _BASIC_CHALLENGE}
            if creds.method == "client_secret_basic"
            else None
        )
        raise _Recorded(
            OAuthError("invalid_client", exc.description, status=401, reason=exc.reason), headers
        ) from None


class _Recorded(_Refusal):
    """A refusal already in the ledger (by authenticate_client)."""

    def __init__(self, oauth: OAuthError, headers: Mapping[str, str] | None) -> None:
        Exception.__init__(self, oauth.description)
        self.oauth = oauth
        self.headers = dict(headers or {})
        self.client_id = None


def _api_key_caller(call: _Call, key: str, permission: str) -> Caller:
    from keyplane.service.keys import authenticate

    # a refused key is an auth.failed event (surface "oauth"), as on every surface
    caller = authenticate(
        call.svc,
        key,
        surface="oauth",
        operation=f"POST {call.url(call.endpoint).removeprefix(call.base)}",
        remote=call.remote,
    )
    try:
        authorize(call.svc, caller, permission, call.store_id)
    except PermissionDeniedError:
        # a key without the permission: refused and on the record (token.refused,
        # coalesced; the _system chain for a store that does not exist)
        refusal = _Refusal(
            "unauthorized_client",
            "the API key may not do this on this store",
            reason="permission_denied",
            status=403,
        )
        refusal.client_id = caller.principal
        raise refusal from None
    return caller


# ------------------------------------------------------------------------------ endpoints


def _token(call: _Call, request: Request, form: _Form) -> Response:
    creds = _credentials(request, form)
    if creds.method == "api_key":
        raise _Refusal(
            "invalid_client",
            "an API key does not authenticate an OAuth client: use the client's credentials",
            reason="api_key_at_token_endpoint",
            headers={"WWW-Authenticate": _BASIC_CHALLENGE},
        )
    client = _authenticate(call, creds)
    try:
        return _grant(call, form, client)
    except _Refusal as refusal:
        refusal.client_id = client.node
        raise


def _grant(call: _Call, form: _Form, client: AuthenticatedClient) -> Response:
    grant_type = form.require("grant_type")
    common: dict[str, Any] = {
        "issuer": call.issuer(),
        "scope": form.get("scope"),
        "audience": form.many("audience"),
        "resource": form.many("resource"),
        "purpose": form.get("purpose"),
    }
    if grant_type == token_service.GRANT_CLIENT_CREDENTIALS:
        issued = token_service.issue_client_credentials(call.svc, call.store_id, client, **common)
    elif grant_type == token_service.GRANT_TOKEN_EXCHANGE:
        actor_token = form.get("actor_token")
        actor_token_type = form.get("actor_token_type")
        if (actor_token is None) != (actor_token_type is None):
            raise _Refusal(
                "invalid_request",
                "actor_token and actor_token_type go together (RFC 8693 §2.1)",
                reason="missing_parameter",
            )
        issued = token_service.exchange_token(
            call.svc,
            call.store_id,
            client,
            subject_token=form.require("subject_token"),
            subject_token_type=form.require("subject_token_type"),
            actor_token=actor_token,
            actor_token_type=actor_token_type,
            requested_token_type=form.get("requested_token_type"),
            delegation_id=form.get("delegation_id"),
            **common,
        )
    else:
        raise _Refusal(
            "unsupported_grant_type",
            "grant_type must be client_credentials or "
            "urn:ietf:params:oauth:grant-type:token-exchange",
            reason="unsupported_grant_type",
        )
    return _json(issued.response())


def _introspect(call: _Call, request: Request, form: _Form) -> Response:
    creds = _credentials(request, form)
    if creds.method == "api_key":
        assert creds.api_key is not None
        _api_key_caller(call, creds.api_key, Permission.READ_IDENTITIES)
    else:
        _authenticate(call, creds)
    token = form.require("token")
    # token_type_hint is only a hint (RFC 7662 §2.1): every token here is an access token
    return _json(
        token_service.introspect_token(call.svc, call.store_id, token, issuer=call.issuer())
    )


def _revoke(call: _Call, request: Request, form: _Form) -> Response:
    creds = _credentials(request, form)
    if creds.method == "api_key":
        assert creds.api_key is not None
        caller = _api_key_caller(call, creds.api_key, Permission.MANAGE_CREDENTIALS)
        requester, admin = caller.principal, True
    else:
        requester, admin = _authenticate(call, creds).node, False
    token = form.require("token")
    # RFC 7009 §2.2: 200 whether or not the token was valid (or already revoked)
    try:
        token_service.revoke_token(
            call.svc, call.store_id, token, requester=requester, issuer=call.issuer(), admin=admin
        )
    except OAuthError as exc:  # another client's token: refused, and on the record
        token_service.record_token_refused(call.svc, call.store_id, requester, exc, None)
        raise
    return Response(status_code=200, headers=_NO_STORE)


_HANDLERS: Final[dict[str, Callable[[_Call, Request, _Form], Response]]] = {
    "token": _token,
    "introspect": _introspect,
    "revoke": _revoke,
}


async def serve(svc: Services, request: Request, store_id: str | None, endpoint: str) -> Response:
    """Answer one OAuth request (``endpoint`` token, introspect or revoke; ``store_id`` None
    for the root form): the routes below call it, and so does the fast lane
    (:mod:`keyplane.api.fastpath`), which skips the router and the dependency injection."""
    call = _call(svc, request, store_id, endpoint)
    handler = _HANDLERS[endpoint]
    try:
        if store_id is not None:
            _check_store_id(store_id)
        form = await _read_form(request)
    except _Refusal as refusal:
        await run_in_threadpool(_record, call, refusal, grant_type=None)
        return _oauth_error(refusal.oauth, refusal.headers)
    grant_type = form.get("grant_type") if endpoint == "token" else None

    def work() -> Response:
        return handler(call, request, form)

    return await run_in_threadpool(_answer, call, work, grant_type=grant_type)


# ------------------------------------------------------------------------------ OpenAPI


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 / RFC 8693 §2.2.1."""

    model_config = ConfigDict(extra="allow")
    access_token: str
    token_type: str
    expires_in: int
    scope: str | None = None
    issued_token_type: str | None = None


class IntrospectionResponse(BaseModel):
    """RFC 7662 §2.2: ``active`` and, for an active token, its claims."""

    model_config = ConfigDict(extra="allow")
    active: bool


class OAuthErrorResponse(BaseModel):
    """RFC 6749 §5.2."""

    model_config = ConfigDict(extra="allow")
    error: str
    error_description: str | None = None


def _form_body(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    auth = {
        "client_id": {"type": "string", "description": "client_secret_post / private_key_jwt"},
        "client_secret": {"type": "string", "description": "client_secret_post"},
        "client_assertion_type": {"type": "string", "enum": [CLIENT_ASSERTION_TYPE]},
        "client_assertion": {"type": "string", "description": "private_key_jwt (RFC 7523)"},
    }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**properties, **auth},
        "required": required,
    }
    content: dict[str, Any] = {"schema": schema}
    arrays = [name for name, p in properties.items() if p.get("type") == "array"]
    if arrays:
        content["encoding"] = {name: {"style": "form", "explode": True} for name in arrays}
    return {"requestBody": {"required": True, "content": {FORM: content}}}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "RFC 6749 §5.2 error: invalid_request, invalid_grant, invalid_scope, "
        "invalid_target, unauthorized_client, unsupported_grant_type, …",
        401: "invalid_client: the client (or API key) failed to authenticate.",
        403: "unauthorized_client: the API key's roles do not allow this on the store.",
        404: "invalid_request: no such store.",
        413: "invalid_request: the body exceeds 64 KiB. (A body past KEYPLANE_MAX_BODY_BYTES "
        "is refused before any endpoint, with Keyplane's error envelope, `limit_exceeded`.)",
        500: "server_error.",
        503: "server_error: the database failed; retry.",
    }
    out: dict[int | str, dict[str, Any]] = {
        s: {"model": OAuthErrorResponse, "description": text[s]} for s in statuses
    }
    if 413 in out:
        out[413] = {
            "description": text[413],
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/OAuthErrorResponse"},
                            {"$ref": "#/components/schemas/ErrorEnvelope"},
                        ]
                    }
                }
            },
        }
    return out


_STR = {"type": "string"}
_STRS = {"type": "array", "items": {"type": "string"}}
_TOKEN_BODY = _form_body(
    {
        "grant_type": {
            "type": "string",
            "enum": [token_service.GRANT_CLIENT_CREDENTIALS, token_service.GRANT_TOKEN_EXCHANGE],
        },
        "scope": _STR,
        "audience": _STRS,
        "resource": _STRS,
        "purpose": _STR,
        "subject_token": _STR,
        "subject_token_type": _STR,
        "actor_token": _STR,
        "actor_token_type": _STR,
        "requested_token_type": _STR,
        "delegation_id": _STR,
    },
    ["grant_type"],
)
_TOKEN_ARGS: dict[str, Any] = {
    "response_model": None,
    "openapi_extra": _TOKEN_BODY,  # each route gets its own copy (FastAPI consumes it)
    "responses": {
        200: {"model": TokenResponse, "description": "The issued token."},
        **_errors(400, 401, 404, 413, 500, 503),
    },
}
_INTROSPECT_ARGS: dict[str, Any] = {
    "response_model": None,
    "openapi_extra": _form_body({"token": _STR, "token_type_hint": _STR}, ["token"]),
    "responses": {
        200: {"model": IntrospectionResponse, "description": "RFC 7662 §2.2."},
        **_errors(400, 401, 403, 404, 413, 500, 503),
    },
}
_REVOKE_ARGS: dict[str, Any] = {
    "response_model": None,
    "openapi_extra": _form_body({"token": _STR, "token_type_hint": _STR}, ["token"]),
    "responses": {
        200: {"description": "Revoked, or nothing to revoke (RFC 7009 §2.2).", "content": None},
        **_errors(400, 401, 403, 404, 413, 500, 503),
    },
}


@router.post(
    "/oauth2/token",
    operation_id="oauth2_token",
    summary="OAuth 2.0 token endpoint (the default store)",
    **copy.deepcopy(_TOKEN_ARGS),
)
async def oauth2_token(request: Request, svc: ServicesDep) -> Response:
    """client_credentials (RFC 6749 §4.4) and token exchange (RFC 8693)."""
    return await serve(svc, request, None, "token")


@router.post(
    "/stores/{store_id}/oauth2/token",
    operation_id="oauth2_token_store",
    summary="OAuth 2.0 token endpoint (a store)",
    **copy.deepcopy(_TOKEN_ARGS),
)
async def oauth2_token_store(store_id: str, request: Request, svc: ServicesDep) -> Response:
    """client_credentials (RFC 6749 §4.4) and token exchange (RFC 8693)."""
    return await serve(svc, request, store_id, "token")


@router.post(
    "/oauth2/introspect",
    operation_id="oauth2_introspect",
    summary="OAuth 2.0 token introspection (the default store)",
    **copy.deepcopy(_INTROSPECT_ARGS),
)
async def oauth2_introspect(request: Request, svc: ServicesDep) -> Response:
    """RFC 7662: ``{"active": false}`` for any token that fails verification."""
    return await serve(svc, request, None, "introspect")


@router.post(
    "/stores/{store_id}/oauth2/introspect",
    operation_id="oauth2_introspect_store",
    summary="OAuth 2.0 token introspection (a store)",
    **copy.deepcopy(_INTROSPECT_ARGS),
)
async def oauth2_introspect_store(store_id: str, request: Request, svc: ServicesDep) -> Response:
    """RFC 7662: ``{"active": false}`` for any token that fails verification."""
    return await serve(svc, request, store_id, "introspect")


@router.post(
    "/oauth2/revoke",
    operation_id="oauth2_revoke",
    summary="OAuth 2.0 token revocation (the default store)",
    **copy.deepcopy(_REVOKE_ARGS),
)
async def oauth2_revoke(request: Request, svc: ServicesDep) -> Response:
    """RFC 7009: 200 whether or not the token was valid."""
    return await serve(svc, request, None, "revoke")


@router.post(
    "/stores/{store_id}/oauth2/revoke",
    operation_id="oauth2_revoke_store",
    summary="OAuth 2.0 token revocation (a store)",
    **copy.deepcopy(_REVOKE_ARGS),
)
async def oauth2_revoke_store(store_id: str, request: Request, svc: ServicesDep) -> Response:
    """RFC 7009: 200 whether or not the token was valid."""
    return await serve(svc, request, store_id, "revoke")

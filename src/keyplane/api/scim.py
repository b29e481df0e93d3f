"""SCIM 2.0 (RFC 7644) at ``/scim/v2/{store}/``: an identity provider provisions the store.

Okta, Microsoft Entra ID and every other SCIM client push users, groups and agents here;
:mod:`keyplane.service.scim` maps them onto the store's identities and tuples. This module
is the protocol's HTTP shape only:

* resources — ``/Users``, ``/Groups``, ``/Agents``: ``POST`` (201 + ``Location``), ``GET``
  (list: ``filter``, ``startIndex``, ``count``, ``sortBy``, ``sortOrder``), ``GET /{id}``,
  ``PUT /{id}``, ``PATCH /{id}``, ``DELETE /{id}`` (204) — RFC 7644 §3.3–§3.6;
* ``POST /.search`` on the root (every resource type) and on each endpoint (§3.4.3);
* ``attributes`` / ``excludedAttributes`` on every answer carrying resources (§3.4.2.5,
  §3.9);
* discovery — ``/ServiceProviderConfig``, ``/ResourceTypes[/{name}]``,
  ``/Schemas[/{urn}]`` (§4) — authenticated like the rest (the RFC allows either);
* versions — ``ETag`` on single-resource answers, ``If-Match`` → 412, ``If-None-Match`` on
  ``GET`` → 304 (§3.14);
* media type ``application/scim+json`` on every answer (``application/json`` accepted in
  requests, §8.1);
* errors as SCIM error messages (§3.12: ``status`` a string, ``scimType``), including 404
  for unknown paths and 405 for a method an endpoint does not take — never Keyplane's
  envelope under ``/scim/v2``;
* authentication: ``Authorization: Bearer kp_…`` — an API key with ``can_provision`` on the
  store (the ``provisioner:<store>`` role, or admin): 401 + ``WWW-Authenticate`` without a
  valid key, 403 for a key without the permission. Refusals are recorded as ``auth.failed``
  with surface ``scim``.

The body size limit (``KEYPLANE_MAX_BODY_BYTES``) applies as everywhere (413, SCIM error).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyplane import errors as e
from keyplane.api.deps import ServicesDep
from keyplane.api.errors import status_for
from keyplane.api.scim_meta import META_SCHEMAS
from keyplane.scim import schemas as sch
from keyplane.scim.errors import ERROR_SCHEMA, ScimError
from keyplane.scim.projection import project, sort_key
from keyplane.service import scim as ops
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services

__all__ = ["SCIM_MEDIA_TYPE", "router"]

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE: Final = "application/scim+json"
PREFIX: Final = "/scim/v2/{store}"
DISCOVERY: Final = frozenset({"ServiceProviderConfig", "ResourceTypes", "Schemas"})

# ------------------------------------------------------------------------------ errors


def _scim_type(exc: e.KeyplaneError, status: int) -> str | None:
    """The scimType of one of Keyplane's own errors (RFC 7644 §3.12): invalidValue for a
    400, uniqueness for a 409 about something that exists already, else none."""
    if status == 400 and isinstance(exc, e.ValidationError):
        return "invalidValue"
    if status == 409 and exc.code.endswith("_exists"):
        return "uniqueness"
    return None


def scim_error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    """An RFC 7644 §3.12 error message."""
    out: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status)}
    if scim_type is not None:
        out["scimType"] = scim_type
    out["detail"] = detail
    return out


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=SCIM_MEDIA_TYPE)


def error_response(exc: Exception) -> JSONResponse:
    """Any error raised while answering a SCIM request, as a SCIM error message."""
    headers: dict[str, str] = {}
    if isinstance(exc, ScimError):
        body, status = exc.to_scim(), exc.status
        if status == 405:
            headers["Allow"] = str(exc.details.get("allow", "GET"))
    elif isinstance(exc, e.KeyplaneError):
        status = status_for(exc)
        body = scim_error_body(status, exc.message, _scim_type(exc, status))
    elif isinstance(exc, RequestValidationError):
        status = 400
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        kind = str(first.get("type", ""))
        syntax = kind.startswith(("json", "dict", "model"))
        body = scim_error_body(
            400,
            f"{where}: {first.get('msg', 'invalid request')}",
            "invalidSyntax" if syntax else "invalidValue",
        )
    elif isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        body = scim_error_body(status, str(exc.detail), "invalidSyntax" if status == 400 else None)
        headers.update(getattr(exc, "headers", None) or {})
    else:
        log.exception("SCIM request failed")
        status = 500
        body = scim_error_body(500, "internal error")
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="keyplane-scim"'
    if status == 413:
        headers["connection"] = "close"
    return _json(body, status, headers)


class ScimRoute(APIRoute):
    """Every failure of a SCIM route — authentication, validation, the operation — is
    answered with a SCIM error message (RFC 7644 §3.12), not Keyplane's envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error becomes a SCIM error
                return error_response(exc)

        return run


# ------------------------------------------------------------------------------ auth

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ScimBearer",
    description="A Keyplane API key with the `provisioner:<store>` role (or admin): "
    "`Authorization: Bearer kp_…`",
)


def scim_caller(
    request: Request,
    store: Annotated[str, Path(min_length=1, max_length=128, description="The store id.")],
    svc: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the bearer key, and require ``can_provision`` on the store (403 else);
    an unknown store is a 404 once the key is known to be an admin's or the store's."""
    from keyplane.service.keys import authenticate, missing_key

    operation = f"{request.method} {request.url.path}"
    remote = request.client.host if request.client else None
    if creds is None or not creds.credentials:
        raise missing_key(
            svc,
            "missing API key: send 'Authorization: Bearer <key>' (a provisioner key)",
            surface="scim",
            operation=operation,
            remote=remote,
        )
    caller = authenticate(
        svc, creds.credentials, surface="scim", operation=operation, remote=remote
    )
    request.state.caller = caller
    authorize(svc, caller, Permission.PROVISION, store)
    svc.storage.get_store(store)  # StoreNotFoundError → 404
    return caller


ScimCaller = Annotated[Caller, Depends(scim_caller)]
StoreId = Annotated[str, Path(min_length=1, max_length=128, description="The store id.")]
Endpoint = Annotated[str, Path(max_length=64, description="`Users`, `Groups` or `Agents`.")]
ResourceId = Annotated[str, Path(min_length=1, max_length=512, description="The resource id.")]
IfMatch = Annotated[
    str | None,
    Header(max_length=256, description="Apply only if the resource's version is this ETag."),
]
IfNoneMatch = Annotated[
    str | None, Header(max_length=256, description="304 when the version is still this ETag.")
]
Attributes = Annotated[
    str | None,
    Query(
        max_length=4096,
        description="Comma-separated attribute paths to return (plus the `always` ones).",
    ),
]
Excluded = Annotated[
    str | None,
    Query(
        alias="excludedAttributes",
        max_length=4096,
        description="Comma-separated attribute paths to leave out.",
    ),
]
JsonBody = Annotated[
    dict[str, Any] | None, Body(description="A SCIM resource or message (a JSON object).")
]


def _body(body: dict[str, Any] | None) -> dict[str, Any]:
    if body is None:
        raise ScimError("the request needs a JSON object body", scim_type="invalidSyntax")
    return body


def _base(request: Request, svc: Services, store: str) -> str:
    """The store's SCIM base URL: ``KEYPLANE_ISSUER`` (the public URL) when set, else the
    request's own base."""
    root = svc.settings.issuer or str(request.base_url)
    return f"{root.rstrip('/')}/scim/v2/{store}"


def _type(endpoint: str, method: str) -> sch.ResourceType:
    """The resource type served at ``/<endpoint>``; 405 for a discovery endpoint or
    ``/.search`` reached with a method they do not take, 404 for anything else."""
    if endpoint in DISCOVERY or endpoint == ".search":
        allow = "POST" if endpoint == ".search" else "GET"
        raise _not_allowed(method, f"/{endpoint}", allow)
    for rt in sch.resource_types():
        if rt.endpoint.lstrip("/") == endpoint:
            return rt
    raise ScimError(f"no SCIM endpoint /{endpoint}", status=404)


def _check_id(endpoint: str, id: str, method: str) -> None:
    if id == ".search":
        raise _not_allowed(method, f"/{endpoint}/.search", "POST")


def _not_allowed(method: str, path: str, allow: str) -> ScimError:
    return ScimError(f"{method} is not allowed on {path}", status=405, details={"allow": allow})


# ------------------------------------------------------------------------------ router


_ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "title": "ScimError",
    "required": ["schemas", "status"],
    "properties": {
        "schemas": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string"},
        "scimType": {"type": "string"},
        "detail": {"type": "string"},
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "A SCIM error message (RFC 7644 §3.12): 400 (scimType invalidFilter, "
        "invalidSyntax, invalidValue, mutability, invalidPath, noTarget, tooMany), 401, 403, "
        "404, 405, 409 (uniqueness), 412 (If-Match), 413, 5xx.",
        "content": {
            SCIM_MEDIA_TYPE: {"schema": _ERROR_SCHEMA},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


def _ok(description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": description,
            "content": {SCIM_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **_RESPONSES,
    }


router = APIRouter(prefix=PREFIX, tags=["scim"], route_class=ScimRoute)


def _projected(
    resource: Mapping[str, Any],
    rt: sch.ResourceType,
    attributes: str | Sequence[str] | None,
    excluded: str | Sequence[str] | None,
) -> dict[str, Any]:
    if attributes and excluded:
        raise ScimError(
            "attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.4.2.5)",
            scim_type="invalidSyntax",
        )
    return project(resource, rt, attributes=attributes or None, excluded=excluded or None)


def _resource_response(
    resource: Mapping[str, Any],
    rt: sch.ResourceType,
    attributes: str | None,
    excluded: str | None,
    *,
    status: int = 200,
) -> JSONResponse:
    meta = resource.get("meta") or {}
    headers: dict[str, str] = {}
    if meta.get("version"):
        headers["ETag"] = str(meta["version"])
    if status == 201 and meta.get("location"):
        headers["Location"] = str(meta["location"])
    return _json(_projected(resource, rt, attributes, excluded), status, headers)


def _page_args(start_index: Any, count: Any) -> tuple[int, int | None]:
    """RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0."""
    try:
        start = 1 if start_index is None else max(1, int(start_index))
        n = None if count is None else max(0, int(count))
    except (TypeError, ValueError):
        raise ScimError("startIndex and count are integers", scim_type="invalidValue") from None
    return start, n


def _list(
    svc: Services,
    caller: Caller,
    store: str,
    rt: sch.ResourceType,
    base: str,
    *,
    filter: str | None,
    start_index: int,
    count: int | None,
    sort_by: str | None,
    sort_order: str | None,
    attributes: str | Sequence[str] | None,
    excluded: str | Sequence[str] | None,
) -> dict[str, Any]:
    order = _sort_order(sort_order)
    answer = ops.scim_list(
        svc,
        caller,
        store,
        rt.name,
        filter=filter or None,
        start_index=start_index,
        count=count,
        sort_by=sort_by or None,
        sort_order=order,
        base_url=base,
    )
    answer["Resources"] = [
        _projected(r, rt, attributes, excluded) for r in answer.get("Resources", [])
    ]
    return answer


# -- discovery (RFC 7644 §4) ----------------------------------------------------------


@router.get(
    "/ServiceProviderConfig",
    operation_id="scim_service_provider_config",
    summary="SCIM service provider configuration",
    responses=_ok("The ServiceProviderConfig resource (RFC 7643 §5)."),
)
def service_provider_config(
    request: Request, store: StoreId, svc: ServicesDep, caller: ScimCaller
) -> Response:
    """What this SCIM service supports: PATCH, filter (at most 200 results), sort and ETags;
    not bulk nor changePassword; OAuth bearer tokens (Keyplane API keys)."""
    return _json(sch.service_provider_config(_base(request, svc, store)))


@router.get(
    "/ResourceTypes",
    operation_id="scim_resource_types",
    summary="SCIM resource types",
    responses=_ok("A ListResponse of ResourceType resources (RFC 7643 §6)."),
)
def list_resource_types(
    request: Request, store: StoreId, svc: ServicesDep, caller: ScimCaller
) -> Response:
    """User (``/Users``, with the EnterpriseUser extension), Group (``/Groups``) and Agent
    (``/Agents``)."""
    base = _base(request, svc, store)
    items = [rt.to_scim(base) for rt in sch.resource_types()]
    return _json(sch.list_response(items, total_results=len(items)))


@router.get(
    "/ResourceTypes/{name}",
    operation_id="scim_resource_type",
    summary="A SCIM resource type",
    responses=_ok("A ResourceType resource."),
)
def get_resource_type(
    request: Request,
    store: StoreId,
    name: Annotated[str, Path(max_length=128)],
    svc: ServicesDep,
    caller: ScimCaller,
) -> Response:
    for rt in sch.resource_types():
        if rt.name == name:
            return _json(rt.to_scim(_base(request, svc, store)))
    raise ScimError(f"no resource type {name!r}", status=404)


def _all_schema_documents(base: str) -> list[dict[str, Any]]:
    docs = [s.to_scim(base) for s in sch.all_schemas()]
    for meta in META_SCHEMAS:
        doc = dict(meta)
        doc["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{meta['id']}"}
        docs.append(doc)
    return docs


@router.get(
    "/Schemas",
    operation_id="scim_schemas",
    summary="SCIM schemas",
    responses=_ok("A ListResponse of Schema resources (RFC 7643 §7)."),
)
def list_schemas(
    request: Request, store: StoreId, svc: ServicesDep, caller: ScimCaller
) -> Response:
    """User, Group, EnterpriseUser, the draft Agent schema, and the schemas of the discovery
    resources themselves (ServiceProviderConfig, ResourceType, Schema — RFC 7643 §8.7.2)."""
    docs = _all_schema_documents(_base(request, svc, store))
    return _json(sch.list_response(docs, total_results=len(docs)))


@router.get(
    "/Schemas/{urn}",
    operation_id="scim_schema",
    summary="A SCIM schema",
    responses=_ok("A Schema resource."),
)
def get_schema(
    request: Request,
    store: StoreId,
    urn: Annotated[str, Path(max_length=256)],
    svc: ServicesDep,
    caller: ScimCaller,
) -> Response:
    for doc in _all_schema_documents(_base(request, svc, store)):
        if str(doc["id"]).lower() == urn.lower():
            return _json(doc)
    raise ScimError(f"no schema {urn!r}", status=404)


# -- search across every resource type (RFC 7644 §3.4.3) -----------------------------


@router.post(
    "/.search",
    operation_id="scim_search",
    summary="Search every SCIM resource type",
    responses=_ok("A ListResponse."),
)
def search_all(
    request: Request, store: StoreId, svc: ServicesDep, caller: ScimCaller, body: JsonBody = None
) -> Response:
    """A SearchRequest over Users, Groups and Agents at once: ``filter`` applies to each
    type (an attribute a type does not define matches none of its resources), ``sortBy``
    orders them all, then the page is cut."""
    base = _base(request, svc, store)
    data = body or {}
    start, count = _page_args(data.get("startIndex"), data.get("count"))
    order = _sort_order(data.get("sortOrder"))
    attributes, excluded = data.get("attributes"), data.get("excludedAttributes")
    if attributes and excluded:
        _projected({}, sch.resource_types()[0], attributes, excluded)  # the 400
    found: list[tuple[sch.ResourceType, dict[str, Any]]] = []
    for rt in sch.resource_types():
        index = 1
        while True:
            page = ops.scim_list(
                svc,
                caller,
                store,
                rt.name,
                filter=data.get("filter") or None,
                start_index=index,
                count=sch.MAX_RESULTS,
                base_url=base,
            )
            items = page.get("Resources", [])
            found += [(rt, r) for r in items]
            index += len(items)
            if not items or index > int(page.get("totalResults", 0)):
                break
    if data.get("sortBy"):
        sort_by = str(data["sortBy"])
        # as on one type (keyplane.scim.projection.sort_key): no value last ascending,
        # first descending
        found.sort(key=lambda item: sort_key(item[1], sort_by), reverse=order == "descending")
    limit = sch.MAX_RESULTS if count is None else min(count, sch.MAX_RESULTS)
    window = found[start - 1 : start - 1 + limit]
    resources = [_projected(r, rt, attributes, excluded) for rt, r in window]
    return _json(sch.list_response(resources, total_results=len(found), start_index=start))


def _sort_order(value: Any) -> str:
    order = str(value or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise ScimError("sortOrder is ascending or descending", scim_type="invalidValue")
    return order


# -- resources (RFC 7644 §3.3–§3.6) ---------------------------------------------------


@router.post(
    "/{endpoint}/.search",
    operation_id="scim_search_type",
    summary="Search one SCIM resource type",
    responses=_ok("A ListResponse."),
)
def search_type(
    request: Request,
    store: StoreId,
    endpoint: Endpoint,
    svc: ServicesDep,
    caller: ScimCaller,
    body: JsonBody = None,
) -> Response:
    """A SearchRequest (``filter``, ``startIndex``, ``count``, ``sortBy``, ``sortOrder``,
    ``attributes``, ``excludedAttributes``) in the body instead of the query string."""
    rt = _type(endpoint, "POST")
    data = _body(body)
    start, count = _page_args(data.get("startIndex"), data.get("count"))
    return _json(
        _list(
            svc,
            caller,
            store,
            rt,
            _base(request, svc, store),
            filter=data.get("filter"),
            start_index=start,
            count=count,
            sort_by=data.get("sortBy"),
            sort_order=data.get("sortOrder"),
            attributes=data.get("attributes"),
            excluded=data.get("excludedAttributes"),
        )
    )


@router.post(
    "/{endpoint}",
    operation_id="scim_create",
    status_code=201,
    summary="Create a SCIM resource",
    responses=_ok("The created resource, with Location and ETag.", 201),
)
def create(
    request: Request,
    store: StoreId,
    endpoint: Endpoint,
    svc: ServicesDep,
    caller: ScimCaller,
    body: JsonBody = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    """Create a user, group or agent; a taken ``userName`` is 409 ``uniqueness``."""
    rt = _type(endpoint, "POST")
    data = _body(body)
    created = ops.scim_create(
        svc, caller, store, rt.name, data, base_url=_base(request, svc, store)
    )
    return _resource_response(created, rt, attributes, excluded, status=201)


@router.get(
    "/{endpoint}",
    operation_id="scim_list",
    summary="List or filter SCIM resources",
    responses=_ok("A ListResponse."),
)
def list_resources(
    request: Request,
    store: StoreId,
    endpoint: Endpoint,
    svc: ServicesDep,
    caller: ScimCaller,
    filter: Annotated[
        str | None, Query(max_length=4096, description="An RFC 7644 §3.4.2.2 filter.")
    ] = None,
    start_index: Annotated[
        str | None, Query(alias="startIndex", max_length=20, description="1-based.")
    ] = None,
    count: Annotated[
        str | None, Query(max_length=20, description="Page size (at most 200).")
    ] = None,
    sort_by: Annotated[str | None, Query(alias="sortBy", max_length=512)] = None,
    sort_order: Annotated[
        str | None, Query(alias="sortOrder", max_length=16, description="ascending|descending")
    ] = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    """The resources of one type matching ``filter``, one page at a time."""
    rt = _type(endpoint, "GET")
    start, n = _page_args(start_index, count)
    return _json(
        _list(
            svc,
            caller,
            store,
            rt,
            _base(request, svc, store),
            filter=filter,
            start_index=start,
            count=n,
            sort_by=sort_by,
            sort_order=sort_order,
            attributes=attributes,
            excluded=excluded,
        )
    )


@router.get(
    "/{endpoint}/{id}",
    operation_id="scim_get",
    summary="Get a SCIM resource",
    responses=_ok("The resource, with its ETag."),
)
def get(
    request: Request,
    store: StoreId,
    endpoint: Endpoint,
    id: ResourceId,
    svc: ServicesDep,
    caller: ScimCaller,
    attributes: Attributes = None,
    excluded: Excluded = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    rt = _type(endpoint, "GET")
    _check_id(endpoint, id, "GET")
    resource = ops.scim_get(svc, caller, store, rt.name, id, base_url=_base(request, svc, store))
    version = (resource.get("meta") or {}).get("version")
    if if_none_match and version and _etag_matches(if_none_match, str(version)):
        return Response(status_code=304, headers={"ETag": str(version)})
    return _resource_response(resource, rt, attributes, excluded)


def _etag_matches(header: str, version: str) -> bool:
    """RFC 7232 §3.2 If-None-Match: weak comparison (SCIM versions are weak), ``*`` any."""

    def bare(tag: str) -> str:
        tag = tag.strip()
        return (tag[2:] if tag[:2] in ("W/", "w/") else tag).strip('"')

    tags = [t for t in header.split(",") if t.strip()]
    return any(t.strip() == "*" or bare(t) == bare(version) for t in tags)


@router.put(
    "/{endpoint}/{id}",
    operation_id="scim_replace",
    summary="Replace a SCIM resource",
    responses=_ok("The replaced resource, with its new ETag."),
)
def replace(
    request: Request,
    store: StoreId,
    endpoint: Endpoint,
    id: ResourceId,
    svc: ServicesDep,
    caller: ScimCaller,
    body: JsonBody = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
    if_match: IfMatch = None,
) -> Response:
    """PUT replaces the resource's writable attributes; ``If-Match`` another version → 412."""
    rt = _type(endpoint, "PUT")
    _check_id(endpoint, id, "PUT")
    data = _body(body)
    replaced = ops.scim_replace(
        svc,
        caller,
        store,
        rt.name,
        id,
        data,
        if_match=if_match,
        base_url=_base(request, svc, store),
    )
    return _resource_response(replaced, rt, attributes, excluded)


@router.patch(
    "/{endpoint}/{id}",
    operation_id="scim_patch",
    summary="Patch a SCIM resource",
    responses=_ok("The patched resource, with its new ETag."),
)
def patch(
    request: Request,
    store: StoreId,
    endpoint: Endpoint,
    id: ResourceId,
    svc: ServicesDep,
    caller: ScimCaller,
    body: JsonBody = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
    if_match: IfMatch = None,
) -> Response:
    """A PatchOp message (add, replace, remove; RFC 7644 §3.5.2); ``active: false``
    deprovisions the identity (for good)."""
    rt = _type(endpoint, "PATCH")
    _check_id(endpoint, id, "PATCH")
    data = _body(body)
    patched = ops.scim_patch(
        svc,
        caller,
        store,
        rt.name,
        id,
        data,
        if_match=if_match,
        base_url=_base(request, svc, store),
    )
    return _resource_response(patched, rt, attributes, excluded)


@router.delete(
    "/{endpoint}/{id}",
    operation_id="scim_delete",
    status_code=204,
    summary="Delete a SCIM resource",
    responses={204: {"description": "Deleted (the identity deprovisioned)."}, **_RESPONSES},
)
def delete(
    store: StoreId,
    endpoint: Endpoint,
    id: ResourceId,
    svc: ServicesDep,
    caller: ScimCaller,
    if_match: IfMatch = None,
) -> Response:
    """Deprovision the user or agent (a group: its membership tuples go) and forget the
    resource: a GET afterwards is 404."""
    rt = _type(endpoint, "DELETE")
    _check_id(endpoint, id, "DELETE")
    ops.scim_delete(svc, caller, store, rt.name, id, if_match=if_match)
    return Response(status_code=204)


# -- everything else under /scim/v2/{store}: a SCIM 404 or 405 ------------------------


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def unknown(rest: str, request: Request, caller: ScimCaller) -> Response:
    parts = rest.split("/")
    known = {rt.endpoint.lstrip("/") for rt in sch.resource_types()}
    if parts[0] in DISCOVERY and len(parts) <= 2:
        raise _not_allowed(request.method, f"/{rest}", "GET")
    if parts[0] in known and len(parts) == 1:
        raise _not_allowed(request.method, f"/{rest}", "GET, POST")
    if parts[0] in known and len(parts) == 2:
        allow = "POST" if parts[1] == ".search" else "GET, PUT, PATCH, DELETE"
        raise _not_allowed(request.method, f"/{rest}", allow)
    raise ScimError(f"no SCIM endpoint /{rest}", status=404)

"""The OpenID AuthZEN Authorization API 1.0 over Keyplane's decision point.

A translation layer, adding no decision logic of its own (as OpenFGA's AuthZEN layer is):

* ``POST /access/v1/evaluation`` (AuthZEN 1.0 §6) → :func:`keyplane.service.decisions.decide`;
* ``POST /access/v1/evaluations`` (§7: top-level ``subject``/``action``/``resource``/
  ``context`` are defaults for each item; ``options.evaluations_semantic`` ``execute_all``,
  ``deny_on_first_deny``, ``permit_on_first_permit``) → ``decide_batch``;
* ``POST /access/v1/search/subject|resource|action`` (§8–§10, paged with ``page.token`` /
  ``page.limit`` → ``page.next_token``): candidates from the graph
  (:func:`~keyplane.service.access.list_users`, :func:`~keyplane.service.access.list_objects`,
  the relations of the resource's type), each kept only if ``decide`` allows it — so every
  result fed back into an evaluation is a permit, delegation and guardrails included;
* ``GET /.well-known/authzen-configuration`` (§11, PDP metadata; public).

All of it for the default store (``KEYPLANE_DEFAULT_STORE``) at the root paths, and for any
store under ``/stores/{store_id}/…`` (metadata also at
``/.well-known/authzen-configuration/stores/{store_id}``, the RFC 8615 insertion form).

Mapping (docs/authzen.md): ``subject``/``resource`` ``type`` + ``id`` → graph node
``type:id``; ``action.name`` → the store's action map, else a relation of that name;
``subject.properties`` / ``resource.properties`` → the decision's subject/resource
properties (guardrails and conditions see them); ``action.properties`` →
``context.action_properties``; ``context`` → the decision's context, where Keyplane reads
``context.actors`` (or RFC 8693-style ``context.act``), ``context.purpose``,
``context.delegation_id`` and ``context.tool``. A bearer access token of the store in
``subject.properties.token`` is the source of the subject, actor chain, purpose and pinned
delegation (:func:`keyplane.service.decisions.decide` verifies it; a token that fails is a
deny ``token_invalid``): the subject's ``type``/``id`` may then be left out, and given, must
be the token's ``sub``; ``subject.properties.token_audience`` names the audience it must
carry. Both are taken out of the properties (never recorded, never seen by guardrails).

Errors (§12.1.10): 400 for a malformed body (any Keyplane ``validation_error``), 401 without a
valid API key, 403 when the key may not query the store, 404 for an unknown store; bodies are
Keyplane's one error envelope. A deny is always a 200 with ``"decision": false``.
``X-Request-ID`` is echoed by the app's request middleware.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from keyplane.api.deps import CallerDep, ServicesDep
from keyplane.api.metrics import observe_decisions
from keyplane.api.responses import error_responses
from keyplane.errors import (
    KeyplaneError,
    RelationNotFoundError,
    TypeNotFoundError,
    ValidationError,
)
from keyplane.service import access, decisions
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services

__all__ = ["router"]

SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
#: context keys Keyplane reads (the rest of the context is passed through untouched)
CTX_ACTORS, CTX_ACT, CTX_PURPOSE = "actors", "act", "purpose"
CTX_DELEGATION, CTX_TOOL, CTX_ACTION_PROPS = "delegation_id", "tool", "action_properties"
#: subject properties Keyplane reads (and removes): the bearer token and its audience
PROP_TOKEN, PROP_TOKEN_AUDIENCE = "token", "token_audience"
_SEARCH_CHUNK = 256  # candidates decided per decide_batch call while filling a search page

# ------------------------------------------------------------------------------ schemas
# Unknown members are ignored (forward compatibility, AuthZEN 1.0 §5); wrong types are 400s.

_Str = Annotated[StrictStr, Field(min_length=1, max_length=512)]
_Props = dict[str, Any] | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AuthzenEntity(_Model):
    """A Subject or a Resource (§5.1, §5.2): ``type`` and ``id`` name the graph node."""

    type: _Str
    id: _Str
    properties: _Props = None


class AuthzenSubject(_Model):
    """The Subject of an evaluation (§5.1). With a bearer token in ``properties.token``
    (Keyplane), ``type`` and ``id`` may be left out: the token names the subject."""

    type: _Str | None = None
    id: _Str | None = None
    properties: _Props = None

    @model_validator(mode="after")
    def _named(self) -> AuthzenSubject:
        if (self.type is None or self.id is None) and not _has_token(self.properties):
            missing = "type" if self.type is None else "id"
            raise ValueError(
                f"subject '{missing}' is required (unless properties.token names the subject)"
            )
        return self


def _has_token(props: Mapping[str, Any] | None) -> bool:
    return props is not None and props.get(PROP_TOKEN) is not None


def carries_token(body: AuthzenEvaluationRequest | AuthzenEvaluationsRequest) -> bool:
    """Whether an evaluation(s) request presents a bearer token anywhere (the HTTP fast
    lane decides those on a worker thread: verifying a token may read the store's keys)."""
    subjects = [body.subject]
    if isinstance(body, AuthzenEvaluationsRequest):
        subjects.extend(it.subject for it in body.evaluations or ())
    return any(s is not None and _has_token(s.properties) for s in subjects)


class AuthzenAction(_Model):
    """An Action (§5.3); ``name`` is a store action (``policy.actions``) or a relation."""

    name: _Str
    properties: _Props = None


class AuthzenTypedEntity(_Model):
    """The searched-for entity of a search: ``type`` required, ``id`` ignored."""

    type: _Str
    id: StrictStr | None = None
    properties: _Props = None


class AuthzenPartialEntity(_Model):
    """A batch item's (or a batch default's) subject or resource; merged per field."""

    type: _Str | None = None
    id: _Str | None = None
    properties: _Props = None


class AuthzenPartialAction(_Model):
    name: _Str | None = None
    properties: _Props = None


class AuthzenEvaluationRequest(_Model):
    """The Access Evaluation request (§6.1)."""

    subject: AuthzenSubject
    action: AuthzenAction
    resource: AuthzenEntity
    context: _Props = None


class AuthzenEvaluationItem(_Model):
    subject: AuthzenPartialEntity | None = None
    action: AuthzenPartialAction | None = None
    resource: AuthzenPartialEntity | None = None
    context: _Props = None


class AuthzenEvaluationsOptions(_Model):
    evaluations_semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = (
        "execute_all"
    )
    #: Keyplane extension: every item carries the decision ``context`` (id, reasons)
    include_context: StrictBool = False


class AuthzenEvaluationsRequest(_Model):
    """The Access Evaluations request (§7.1): top-level values are each item's defaults."""

    subject: AuthzenPartialEntity | None = None
    action: AuthzenPartialAction | None = None
    resource: AuthzenPartialEntity | None = None
    context: _Props = None
    evaluations: list[AuthzenEvaluationItem] | None = None
    options: AuthzenEvaluationsOptions | None = None


class AuthzenPageRequest(_Model):
    """§8.1 paging: ``token`` from a previous ``next_token``; ``limit`` results at most."""

    token: StrictStr | None = Field(default=None, max_length=4096)
    limit: StrictInt | None = Field(default=None, ge=0)
    properties: _Props = None


class AuthzenSubjectSearchRequest(_Model):
    subject: AuthzenTypedEntity
    action: AuthzenAction
    resource: AuthzenEntity
    context: _Props = None
    page: AuthzenPageRequest | None = None


class AuthzenResourceSearchRequest(_Model):
    subject: AuthzenEntity
    action: AuthzenAction
    resource: AuthzenTypedEntity
    context: _Props = None
    page: AuthzenPageRequest | None = None


class AuthzenActionSearchRequest(_Model):
    subject: AuthzenEntity
    resource: AuthzenEntity
    context: _Props = None
    page: AuthzenPageRequest | None = None


class AuthzenReasonContext(_Model):
    """The response ``context`` (§6.2.2): ``id`` is the decision id (its ledger event);
    on a deny ``reason_admin`` holds the machine ``code`` and ``reason_user`` a sentence."""

    id: str
    reason_admin: dict[str, str] | None = None
    reason_user: dict[str, str] | None = None
    keyplane: dict[str, Any] | None = None


class AuthzenEvaluationResponse(_Model):
    decision: bool
    context: AuthzenReasonContext | dict[str, Any] | None = None


class AuthzenEvaluationsResponse(_Model):
    evaluations: list[AuthzenEvaluationResponse]


class AuthzenPageResponse(_Model):
    next_token: str
    count: int | None = None


class AuthzenSearchEntity(_Model):
    type: str
    id: str


class AuthzenSearchAction(_Model):
    name: str


class AuthzenEntitySearchResponse(_Model):
    results: list[AuthzenSearchEntity]
    page: AuthzenPageResponse | None = None


class AuthzenActionSearchResponse(_Model):
    results: list[AuthzenSearchAction]
    page: AuthzenPageResponse | None = None


class AuthzenMetadata(_Model):
    """PDP metadata (§11.1)."""

    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str
    search_subject_endpoint: str
    search_resource_endpoint: str
    search_action_endpoint: str


# ------------------------------------------------------------------------------ translation


@dataclass(slots=True)
class _Question:
    """One AuthZEN evaluation, translated into the decision's terms."""

    subject: str
    action: str
    resource: str
    context: dict[str, Any] | None
    actors: tuple[str, ...] = ()
    purpose: str | None = None
    delegation_id: str | None = None
    tool: str | None = None
    subject_properties: dict[str, Any] | None = None
    resource_properties: dict[str, Any] | None = None
    token: str | None = None
    token_audience: str | None = None


def _node(value: Any, where: str) -> str:
    """An actor given as ``{"type", "id"}`` (or as ``"type:id"``) → its graph node."""
    if isinstance(value, Mapping):
        t, i = value.get("type"), value.get("id")
        if isinstance(t, str) and isinstance(i, str) and t and i:
            return f"{t}:{i}"
    elif isinstance(value, str) and ":" in value.strip(":"):
        return value
    raise ValidationError(
        f"{where}: an actor is an object with string 'type' and 'id'", details={"field": where}
    )


def _actors(ctx: Mapping[str, Any]) -> tuple[str, ...]:
    """``context.actors`` (A1 acting directly for the subject … An, the caller) or RFC 8693
    ``context.act`` (the caller outermost, each ``act`` nesting the one it acts for)."""
    listed, nested = ctx.get(CTX_ACTORS), ctx.get(CTX_ACT)
    if listed is not None and nested is not None:
        raise ValidationError(
            "context: give the actor chain as 'actors' or as 'act', not both",
            details={"field": "context.act"},
        )
    if listed is not None:
        if not isinstance(listed, list):
            raise ValidationError(
                "context.actors: a list of {type, id}", details={"field": "context.actors"}
            )
        return tuple(_node(a, f"context.actors[{i}]") for i, a in enumerate(listed))
    if nested is None:
        return ()
    chain: list[str] = []
    cur: Any = nested
    while cur is not None:
        if len(chain) >= 32:
            raise ValidationError("context.act: nested too deep", details={"field": "context.act"})
        chain.append(_node(cur, "context.act"))
        cur = cur.get(CTX_ACT) if isinstance(cur, Mapping) else None
    chain.reverse()  # RFC 8693 §4.1: the current actor outermost, the earliest innermost
    return tuple(chain)


def _prop_str(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValidationError(
        f"subject.properties.{key}: a non-empty string",
        details={"field": f"subject.properties.{key}"},
    )


def _opt_str(ctx: Mapping[str, Any], key: str) -> str | None:
    v = ctx.get(key)
    if v is None or isinstance(v, str):
        return v
    raise ValidationError(f"context.{key}: a string", details={"field": f"context.{key}"})


def _question(
    subject: tuple[str | None, str | None, _Props],
    action: tuple[str, _Props],
    resource: tuple[str, str, _Props],
    context: _Props,
) -> _Question:
    ctx = context
    if action[1]:
        ctx = dict(ctx or {})
        ctx.setdefault(CTX_ACTION_PROPS, action[1])
    stype, sid, sprops = subject
    token = audience = None
    if sprops and (PROP_TOKEN in sprops or PROP_TOKEN_AUDIENCE in sprops):
        sprops = dict(sprops)  # the token is input to the decision, not an attribute
        token = _prop_str(sprops.pop(PROP_TOKEN, None), PROP_TOKEN)
        audience = _prop_str(sprops.pop(PROP_TOKEN_AUDIENCE, None), PROP_TOKEN_AUDIENCE)
    if stype is None or sid is None:
        if token is None:
            missing = "type" if stype is None else "id"
            raise ValidationError(
                f"subject '{missing}' missing (and no properties.token names the subject)",
                details={"field": f"subject.{missing}"},
            )
        name: str | None = None if stype is None and sid is None else f"{stype}:{sid}"
        if name is not None:
            raise ValidationError(
                "subject: give both 'type' and 'id', or neither with properties.token",
                details={"field": "subject"},
            )
    else:
        name = f"{stype}:{sid}"
    q = _Question(name or "", action[0], f"{resource[0]}:{resource[1]}", ctx)
    q.token, q.token_audience = token, audience
    q.subject_properties = sprops or None
    q.resource_properties = resource[2] or None
    if ctx:
        q.actors = _actors(ctx)
        q.purpose = _opt_str(ctx, CTX_PURPOSE)
        q.delegation_id = _opt_str(ctx, CTX_DELEGATION)
        q.tool = _opt_str(ctx, CTX_TOOL)
    return q


def _from_request(body: AuthzenEvaluationRequest) -> _Question:
    s, a, r = body.subject, body.action, body.resource
    return _question((s.type, s.id, s.properties), (a.name, a.properties),
                     (r.type, r.id, r.properties), body.context)  # fmt: skip


def _merge(
    item: AuthzenPartialEntity | None, default: AuthzenPartialEntity | None, what: str
) -> AuthzenEntity:
    """An item's entity over the default: the item's object replaces the default's, but a
    ``type`` or ``id`` it lacks falls back to the default's (cert scenario §3.2.7)."""
    if item is None:
        item = default
    elif default is not None and (item.type is None or item.id is None):
        item = AuthzenPartialEntity(
            type=item.type or default.type, id=item.id or default.id, properties=item.properties
        )
    if item is None or item.type is None or item.id is None:
        missing = "" if item is None else (" 'type'" if item.type is None else " 'id'")
        raise ValidationError(f"{what}{missing} missing", details={"field": what})
    return AuthzenEntity(type=item.type, id=item.id, properties=item.properties)


def _merge_subject(
    item: AuthzenPartialEntity | None, default: AuthzenPartialEntity | None
) -> tuple[str | None, str | None, _Props]:
    """The subject as :func:`_merge` merges it, but ``type``/``id`` may stay unset (a token
    in ``properties`` may name the subject; :func:`_question` checks)."""
    if item is None:
        item = default
    elif default is not None and (item.type is None or item.id is None):
        item = AuthzenPartialEntity(
            type=item.type or default.type, id=item.id or default.id, properties=item.properties
        )
    if item is None:
        raise ValidationError("subject missing", details={"field": "subject"})
    return item.type, item.id, item.properties


def _item_question(item: AuthzenEvaluationItem, top: AuthzenEvaluationsRequest) -> _Question:
    subj = _merge_subject(item.subject, top.subject)
    r = _merge(item.resource, top.resource, "resource")
    act = item.action if item.action is not None else top.action
    if act is None or act.name is None:
        raise ValidationError("action 'name' missing", details={"field": "action"})
    ctx = item.context if item.context is not None else top.context
    return _question(subj, (act.name, act.properties),
                     (r.type, r.id, r.properties), ctx)  # fmt: skip


def _decide_kwargs(q: _Question) -> dict[str, Any]:
    return {
        "actors": q.actors,
        "purpose": q.purpose,
        "context": q.context,
        "delegation_id": q.delegation_id,
        "tool": q.tool,
        "subject_properties": q.subject_properties,
        "resource_properties": q.resource_properties,
        "token": q.token,
        "token_audience": q.token_audience,
    }


def _batch_item(q: _Question, correlation_id: str | None = None) -> decisions.DecideItem:
    return decisions.DecideItem(q.subject or None, q.action, q.resource,
                                correlation_id=correlation_id, **_decide_kwargs(q))  # fmt: skip


# ------------------------------------------------------------------------------ answers

_UNKNOWN = frozenset({"type_not_found", "relation_not_found"})


def _unknown(exc: KeyplaneError) -> bool:
    """An unknown type or relation: nothing in this store's policy allows it — a deny (or
    an empty search), not a malformed request."""
    if isinstance(exc, TypeNotFoundError | RelationNotFoundError):
        return True
    return isinstance(exc, ValidationError) and exc.details.get("reason") in _UNKNOWN


def _answer(d: Any, *, with_context: bool = True) -> dict[str, Any]:
    """A decision → an AuthZEN evaluation response (§6.2, reasons §6.2.2)."""
    if d.error is not None:
        return _error_answer(d.error, d.decision_id)
    out: dict[str, Any] = {"decision": d.allowed}
    if not with_context:
        return out
    ctx: dict[str, Any] = {"id": d.decision_id}
    kp: dict[str, Any] = {"code": d.code, "revision": d.revision, "model_id": d.model_id}
    if d.guardrail_version:
        kp["guardrail_version"] = d.guardrail_version
    if d.delegation_ids:
        kp["delegation_ids"] = list(d.delegation_ids)
    if not d.allowed:
        ctx["reason_admin"] = {"en": d.code, "code": d.code}
        ctx["reason_user"] = {"en": d.reason_user}
        kp["requestable"] = d.requestable
        if d.reason:
            kp["reason"] = dict(d.reason)
    ctx["keyplane"] = kp
    out["context"] = ctx
    return out


def _error_answer(exc: BaseException, decision_id: str = "") -> dict[str, Any]:
    """An evaluation that could not be decided: closed (``false``), the error in ``context``
    (§7.2.1)."""
    code = getattr(exc, "code", "internal_error")
    if code == "validation_error" and isinstance(exc, KeyplaneError):
        code = exc.details.get("reason") or code  # type_not_found, relation_not_found
    message = getattr(exc, "message", "internal error")
    status = 400 if isinstance(exc, ValidationError) else 500
    ctx: dict[str, Any] = {
        "id": decision_id or "0",
        "reason_admin": {"en": message, "code": code},
        "error": {"status": status, "code": code, "message": message},
    }
    return {"decision": False, "context": ctx}


def _json(body: Any) -> JSONResponse:
    return JSONResponse(body)


# ------------------------------------------------------------------------------ operations


def evaluate(svc: Services, caller: Caller, store_id: str, q: _Question) -> dict[str, Any]:
    try:
        d = decisions.decide(
            svc, caller, store_id, q.subject or None, q.action, q.resource, **_decide_kwargs(q)
        )
    except ValidationError as exc:  # raised after the caller was authorized
        if not _unknown(exc):
            raise
        return _error_answer(exc)
    return _answer(d)


def evaluate_many(
    svc: Services, caller: Caller, store_id: str, body: AuthzenEvaluationsRequest
) -> tuple[list[dict[str, Any]], int, int]:
    """The evaluations of a batch in request order, short-circuited per the semantic;
    also the counts of permits and denies."""
    opts = body.options or AuthzenEvaluationsOptions()
    semantic, full = opts.evaluations_semantic, opts.include_context
    items = body.evaluations or []
    slots: list[dict[str, Any] | None] = []
    queued: list[decisions.DecideItem] = []
    for i, it in enumerate(items):
        try:
            q = _item_question(it, body)
        except ValidationError as exc:  # an evaluation-level error (§7.2.1): that item denies
            slots.append(_error_answer(exc))
            continue
        slots.append(None)
        queued.append(_batch_item(q, str(i)))
    if semantic == "deny_on_first_deny":
        # an item that failed validation is a deny: nothing after it is evaluated
        first_bad = next((k for k, s in enumerate(slots) if s is not None), len(slots))
        queued = queued[:first_bad]
    results = (
        decisions.decide_batch(svc, caller, store_id, queued, semantic=semantic) if queued else []
    )
    decided = {int(d.correlation_id or -1): d for d in results}
    out: list[dict[str, Any]] = []
    permits = denies = 0
    for i, slot in enumerate(slots):
        if slot is None:
            d = decided.get(i)
            if d is None:  # short-circuited by the semantic: nothing more to answer
                break
            ans = _answer(d, with_context=full or d.error is not None)
        else:
            ans = slot
        out.append(ans)
        if ans["decision"]:
            permits += 1
        else:
            denies += 1
        if semantic == "deny_on_first_deny" and not ans["decision"]:
            break
        if semantic == "permit_on_first_permit" and ans["decision"]:
            break
    return out, permits, denies


def _token_digest(store_id: str, kind: str, body: _Model) -> str:
    """What a page token is bound to: the store and the query, less its page."""
    q = body.model_dump(exclude={"page"}, exclude_none=True)
    raw = json.dumps([store_id, kind, q], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _page_token(offset: int, digest: str) -> str:
    raw = json.dumps({"o": offset, "q": digest}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(page: AuthzenPageRequest | None, digest: str) -> int:
    """Where a page starts. A token this PDP did not issue for this query is ignored (the
    search starts over), as the certification harness expects (cert §4.5.2)."""
    token = page.token if page is not None else None
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(data, dict) and data.get("q") == digest:
            o = data.get("o")
            if isinstance(o, int) and o >= 0:
                return o
    except (ValueError, TypeError):
        pass
    return 0


def _search_page(
    svc: Services,
    caller: Caller,
    store_id: str,
    candidates: Sequence[Any],
    question: Callable[[Any], _Question],
    page: AuthzenPageRequest | None,
    digest: str,
) -> tuple[list[Any], dict[str, Any]]:
    """Fill one page with the candidates ``decide`` allows, from the token's offset."""
    cap = svc.settings.max_page_size
    limit = min(page.limit, cap) if page is not None and page.limit else cap
    start = _offset(page, digest)
    found: list[Any] = []
    pos = start
    while pos < len(candidates) and len(found) < limit:
        chunk = candidates[pos : pos + max(_SEARCH_CHUNK, limit - len(found))]
        items = [_batch_item(question(c), str(k)) for k, c in enumerate(chunk)]
        results = decisions.decide_batch(svc, caller, store_id, items)
        taken = 0
        for c, d in zip(chunk, results, strict=True):
            taken += 1
            if d.allowed and d.error is None:
                found.append(c)
                if len(found) >= limit:
                    break
        pos += taken
    more = pos < len(candidates)
    return found, {"next_token": _page_token(pos, digest) if more else "", "count": len(found)}


def search_subjects(
    svc: Services, caller: Caller, store_id: str, body: AuthzenSubjectSearchRequest
) -> dict[str, Any]:
    stype, r, a = body.subject.type, body.resource, body.action
    relation = _relation(svc, caller, store_id, a.name)
    try:
        users: Sequence[str] = access.list_users(svc, caller, store_id, f"{r.type}:{r.id}", relation, [stype],
                                  context=_graph_context(body.context))  # fmt: skip
    except ValidationError as exc:
        if not _unknown(exc):
            raise
        users = []
    ids = sorted({u.partition(":")[2] for u in users if u.startswith(stype + ":")})

    def question(sid: str) -> _Question:
        return _question((stype, sid, body.subject.properties), (a.name, a.properties),
                         (r.type, r.id, r.properties), body.context)  # fmt: skip

    digest = _token_digest(store_id, "subject", body)
    found, page = _search_page(svc, caller, store_id, ids, question, body.page, digest)
    return {"results": [{"type": stype, "id": i} for i in found], "page": page}


def search_resources(
    svc: Services, caller: Caller, store_id: str, body: AuthzenResourceSearchRequest
) -> dict[str, Any]:
    s, rtype, a = body.subject, body.resource.type, body.action
    relation = _relation(svc, caller, store_id, a.name)
    try:
        objs = list(access.list_objects(svc, caller, store_id, f"{s.type}:{s.id}", relation,
                                        rtype, context=_graph_context(body.context)))  # fmt: skip
    except ValidationError as exc:
        if not _unknown(exc):
            raise
        objs = []
    ids = sorted({o.partition(":")[2] for o in objs})

    def question(rid: str) -> _Question:
        return _question((s.type, s.id, s.properties), (a.name, a.properties),
                         (rtype, rid, body.resource.properties), body.context)  # fmt: skip

    digest = _token_digest(store_id, "resource", body)
    found, page = _search_page(svc, caller, store_id, ids, question, body.page, digest)
    return {"results": [{"type": rtype, "id": i} for i in found], "page": page}


def search_actions(
    svc: Services, caller: Caller, store_id: str, body: AuthzenActionSearchRequest
) -> dict[str, Any]:
    """Every action the subject may take on the resource, each decided: the store's actions
    (``policy.actions``) that map to a relation of the resource's type when the store
    defines any; else the type's permissions — its relations no tuple assigns (``define
    can_edit: owner or editor``), or every relation when it has none."""
    authorize(svc, caller, Permission.QUERY, store_id)
    s, r = body.subject, body.resource
    relations = svc.graphs.model(store_id, None).types.get(r.type) or {}
    table = _action_map(svc, store_id)
    names = sorted(name for name, rel in table.items() if rel in relations)
    if not names and not table:
        computed = [n for n, info in relations.items() if not info.directly_assignable]
        names = sorted(computed or relations)

    def question(name: str) -> _Question:
        return _question((s.type, s.id, s.properties), (name, None),
                         (r.type, r.id, r.properties), body.context)  # fmt: skip

    digest = _token_digest(store_id, "action", body)
    found, page = _search_page(svc, caller, store_id, names, question, body.page, digest)
    return {"results": [{"name": n} for n in found], "page": page}


def _action_map(svc: Services, store_id: str) -> Mapping[str, str]:
    policy = getattr(svc.graphs, "policy", None)
    if policy is None:
        return {}
    return policy(store_id).policy.actions or {}


def _relation(svc: Services, caller: Caller, store_id: str, action: str) -> str:
    authorize(svc, caller, Permission.QUERY, store_id)
    return _action_map(svc, store_id).get(action, action)


def _graph_context(context: _Props) -> dict[str, Any] | None:
    return context or None


def metadata(base: str) -> dict[str, str]:
    return {
        "policy_decision_point": base,
        "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
        "search_subject_endpoint": f"{base}/access/v1/search/subject",
        "search_resource_endpoint": f"{base}/access/v1/search/resource",
        "search_action_endpoint": f"{base}/access/v1/search/action",
    }


# ------------------------------------------------------------------------------ routes

router = APIRouter(tags=["authzen"])

StoreId = Annotated[
    str, Path(min_length=1, max_length=128, description="The store whose policy decides.")
]
_ERRORS = error_responses(400, 404)
_STORE = "/stores/{store_id}"


def _base(request: Request, store_id: str | None) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}{_STORE.format(store_id=store_id)}" if store_id is not None else base


def _register(prefix: str, suffix: str) -> None:
    """The AuthZEN endpoints under ``prefix`` (``""``: the default store; else per store)."""
    per_store = bool(prefix)

    def store(svc: Services, sid: str | None) -> str:
        return sid if sid is not None else svc.settings.default_store

    def add(path: str, fn: Callable[..., Any], model: Any, summary: str, op: str) -> None:
        router.add_api_route(
            prefix + path,
            fn,
            methods=["POST"],
            response_model=model,
            responses=_ERRORS,
            summary=summary + (" (a store)" if per_store else " (the default store)"),
            operation_id=f"authzen_{op}{suffix}",
        )

    if per_store:

        def evaluation(
            store_id: StoreId,
            body: AuthzenEvaluationRequest,
            request: Request,
            svc: ServicesDep,
            caller: CallerDep,
        ) -> JSONResponse:
            """AuthZEN Access Evaluation (§6): may the subject do the action on the resource?"""
            return _evaluation(request, svc, caller, store(svc, store_id), body)

        def evaluations(
            store_id: StoreId,
            body: AuthzenEvaluationsRequest,
            request: Request,
            svc: ServicesDep,
            caller: CallerDep,
        ) -> JSONResponse:
            """AuthZEN Access Evaluations (§7): many evaluations, defaults and semantics."""
            return _evaluations(request, svc, caller, store(svc, store_id), body)

        def subject_search(
            store_id: StoreId,
            body: AuthzenSubjectSearchRequest,
            svc: ServicesDep,
            caller: CallerDep,
        ) -> JSONResponse:
            """AuthZEN Subject Search (§8): which subjects of a type may do this?"""
            return _json(search_subjects(svc, caller, store(svc, store_id), body))

        def resource_search(
            store_id: StoreId,
            body: AuthzenResourceSearchRequest,
            svc: ServicesDep,
            caller: CallerDep,
        ) -> JSONResponse:
            """AuthZEN Resource Search (§9): on which resources of a type may the subject?"""
            return _json(search_resources(svc, caller, store(svc, store_id), body))

        def action_search(
            store_id: StoreId, body: AuthzenActionSearchRequest, svc: ServicesDep, caller: CallerDep
        ) -> JSONResponse:
            """AuthZEN Action Search (§10): which actions may the subject take here?"""
            return _json(search_actions(svc, caller, store(svc, store_id), body))

    else:

        def evaluation(  # type: ignore[misc]
            body: AuthzenEvaluationRequest, request: Request, svc: ServicesDep, caller: CallerDep
        ) -> JSONResponse:
            """AuthZEN Access Evaluation (§6): may the subject do the action on the resource?"""
            return _evaluation(request, svc, caller, store(svc, None), body)

        def evaluations(  # type: ignore[misc]
            body: AuthzenEvaluationsRequest, request: Request, svc: ServicesDep, caller: CallerDep
        ) -> JSONResponse:
            """AuthZEN Access Evaluations (§7): many evaluations, defaults and semantics."""
            return _evaluations(request, svc, caller, store(svc, None), body)

        def subject_search(  # type: ignore[misc]
            body: AuthzenSubjectSearchRequest, svc: ServicesDep, caller: CallerDep
        ) -> JSONResponse:
            """AuthZEN Subject Search (§8): which subjects of a type may do this?"""
            return _json(search_subjects(svc, caller, store(svc, None), body))

        def resource_search(  # type: ignore[misc]
            body: AuthzenResourceSearchRequest, svc: ServicesDep, caller: CallerDep
        ) -> JSONResponse:
            """AuthZEN Resource Search (§9): on which resources of a type may the subject?"""
            return _json(search_resources(svc, caller, store(svc, None), body))

        def action_search(  # type: ignore[misc]
            body: AuthzenActionSearchRequest, svc: ServicesDep, caller: CallerDep
        ) -> JSONResponse:
            """AuthZEN Action Search (§10): which actions may the subject take here?"""
            return _json(search_actions(svc, caller, store(svc, None), body))

    add(
        "/access/v1/evaluation",
        evaluation,
        AuthzenEvaluationResponse,
        "AuthZEN evaluation",
        "evaluation",
    )
    add("/access/v1/evaluations", evaluations, AuthzenEvaluationsResponse | AuthzenEvaluationResponse,
        "AuthZEN evaluations", "evaluations")  # fmt: skip
    add("/access/v1/search/subject", subject_search, AuthzenEntitySearchResponse,
        "AuthZEN subject search", "search_subject")  # fmt: skip
    add("/access/v1/search/resource", resource_search, AuthzenEntitySearchResponse,
        "AuthZEN resource search", "search_resource")  # fmt: skip
    add("/access/v1/search/action", action_search, AuthzenActionSearchResponse,
        "AuthZEN action search", "search_action")  # fmt: skip


def _evaluation(
    request: Request, svc: Services, caller: Caller, store_id: str, body: AuthzenEvaluationRequest
) -> JSONResponse:
    ans, outcomes, op = evaluation_answer(svc, caller, store_id, body)
    observe_decisions(request, op, **outcomes)
    return _json(ans)


def _evaluations(
    request: Request, svc: Services, caller: Caller, store_id: str, body: AuthzenEvaluationsRequest
) -> JSONResponse:
    ans, outcomes, op = evaluations_answer(svc, caller, store_id, body)
    observe_decisions(request, op, **outcomes)
    return _json(ans)


def evaluation_answer(
    svc: Services, caller: Caller, store_id: str, body: AuthzenEvaluationRequest
) -> tuple[dict[str, Any], dict[str, int], str]:
    """The Access Evaluation answer, the decisions' outcomes for metrics and their
    operation name (shared by the route and :mod:`keyplane.api.fastpath`)."""
    ans = evaluate(svc, caller, store_id, _from_request(body))
    ok = bool(ans["decision"])
    return ans, {"allowed": int(ok), "denied": int(not ok)}, "authzen_evaluation"


def evaluations_answer(
    svc: Services, caller: Caller, store_id: str, body: AuthzenEvaluationsRequest
) -> tuple[dict[str, Any], dict[str, int], str]:
    """The Access Evaluations answer (see :func:`evaluation_answer`)."""
    if not body.evaluations:
        # §7.1: without (or with an empty) evaluations array, a single evaluation
        try:
            single = AuthzenEvaluationRequest.model_validate(
                body.model_dump(include={"subject", "action", "resource", "context"})
            )
        except PydanticValidationError as exc:  # a malformed body: 400, not a 500
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ())) or "body"
            raise ValidationError(
                f"{where}: {err.get('msg', 'invalid')} (an evaluations request without "
                "evaluations is a single evaluation)",
                details={"field": where},
            ) from None
        return evaluation_answer(svc, caller, store_id, single)
    max_items = svc.settings.max_batch_check
    if len(body.evaluations) > max_items:
        from keyplane.errors import LimitExceededError

        raise LimitExceededError(
            f"at most {max_items} evaluations in one request",
            details={"limit": max_items, "field": "evaluations"},
        )
    out, permits, denies = evaluate_many(svc, caller, store_id, body)
    return {"evaluations": out}, {"allowed": permits, "denied": denies}, "authzen_evaluations"


_register("", "")
_register(_STORE, "_store")


@router.get(
    "/.well-known/authzen-configuration",
    response_model=AuthzenMetadata,
    summary="AuthZEN PDP metadata (the default store)",
    operation_id="authzen_configuration",
)
def configuration(request: Request) -> JSONResponse:
    """The PDP's metadata (AuthZEN 1.0 §11): where each API is. Public: no key needed."""
    return _metadata_response(_base(request, None))


@router.get(
    _STORE + "/.well-known/authzen-configuration",
    response_model=AuthzenMetadata,
    summary="AuthZEN PDP metadata (a store)",
    operation_id="authzen_configuration_store",
    responses={400: _ERRORS[400], "4XX": _ERRORS["4XX"]},
)
def store_configuration(store_id: StoreId, request: Request) -> JSONResponse:
    """The metadata of the PDP at ``/stores/{store_id}`` (every store is its own PDP)."""
    return _metadata_response(_base(request, store_id))


@router.get(
    "/.well-known/authzen-configuration" + _STORE,
    response_model=AuthzenMetadata,
    summary="AuthZEN PDP metadata (a store, RFC 8615 form)",
    operation_id="authzen_configuration_store_inserted",
    responses={400: _ERRORS[400], "4XX": _ERRORS["4XX"]},
)
def store_configuration_inserted(store_id: StoreId, request: Request) -> JSONResponse:
    """The same metadata at the well-known URI formed by inserting
    ``/.well-known/authzen-configuration`` before the PDP's path (§11.2)."""
    return _metadata_response(_base(request, store_id))


def _metadata_response(base: str) -> JSONResponse:
    return JSONResponse(metadata(base), headers={"Cache-Control": "public, max-age=300"})

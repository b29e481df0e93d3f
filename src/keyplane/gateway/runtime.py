"""The gateway's decision and forwarding path, per store (issue 9 §2, §3).

One :class:`GatewayRuntime` per (store, audience) serves every agent of that store:

* :meth:`~GatewayRuntime.state` — the gateway state (settings, servers, tools) as of the
  store's CURRENT revision: ``svc.graphs.catch_up`` (which also brings the graph and the
  identity plane up to date) reads the store's revision; the cached snapshot is read again
  only when it moved. A kill switch engaged by any process therefore holds on the very
  next call.
* :meth:`~GatewayRuntime.authenticate` — the agent's Keyplane access token, verified
  (:func:`keyplane.service.tokens.verify_access_token`: signature, expiry, revocation, the
  live state of every identity and delegation it names). Its ``aud`` must name the
  gateway (its resource URL ``…/gateway/<store>/mcp``, RFC 8707) or the store's issuer (a
  token obtained for Keyplane itself).
* :meth:`~GatewayRuntime.list_tools` — the enabled tools of enabled servers that the
  decision point lets the token's chain call; one ``gateway.tools_listed`` event.
* :meth:`~GatewayRuntime.call` — one ``tools/call``: the kill switches (store, server,
  tool, agent), then the decision (``can_call`` on ``mcp_tool:<server>/<tool>`` with the
  token's chain, ``tool`` = ``<server>/<tool>``, the tool's classification as resource
  properties — from the tool record, never from the agent — and the arguments in
  ``context.arguments``), its ``decision.evaluate`` event recorded BEFORE the call is
  forwarded (arguments replaced by their digest unless the store opts in; if it cannot be
  recorded the call is refused), the call forwarded through the
  :class:`~keyplane.gateway.downstream.DownstreamPool` and its result returned as it
  came, and one ``gateway.tool_call`` event whatever happened.

The blocking part of a call (catching up, verifying, deciding) runs in ONE worker-thread
hop; everything it needs per tool (the resource properties, the tool object) is prepared
once per snapshot. The call's events are recorded from the event loop through the
:class:`~keyplane.api.fastpath.LedgerBridge` of its :class:`Gateways` (durable in sync
mode, one ledger-writer call for every request waiting, no thread hop per record).

:func:`rediscover_due` and :func:`run_rediscovery` are the scheduled re-discovery of the
servers of the stores the gateway has served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread
import mcp.types as types

from keyplane.api.fastpath import LedgerBridge
from keyplane.errors import AuthenticationError, KeyplaneError, StoreNotFoundError
from keyplane.gateway.records import (
    CALL_RELATION,
    GatewayState,
    McpServer,
    McpTool,
    server_object,
    split_exposed,
    tool_object,
    tool_ref,
)
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.service import audit
from keyplane.service.auth import Caller
from keyplane.service.context import Services, request_id_var
from keyplane.service.decisions import Decision, evaluate_unrecorded
from keyplane.service.tokens import VerifiedToken, verify_access_token
from keyplane.tokens.errors import TokenInvalid

__all__ = [
    "GATEWAY_CALLER",
    "PURPOSE_META_KEY",
    "Forwarder",
    "GatewayRuntime",
    "Gateways",
    "arguments_digest",
    "rediscover_due",
    "run_rediscovery",
]

log = logging.getLogger("keyplane.gateway")

#: the principal the gateway's own ledger events name as their caller
GATEWAY_CALLER: Final = Caller(principal="gateway", system=True)
#: the request ``_meta`` key an agent declares its purpose in (used when its token has none)
PURPOSE_META_KEY: Final = "keyplane/purpose"
#: how many tool refs a ``gateway.tools_listed`` event keeps
_LISTED_REFS: Final = 100
_TOOL_CALL: Final = "gateway.tool_call"
_TOOLS_LISTED: Final = "gateway.tools_listed"
#: identity kinds that may file an access request (a non-human one only when the
#: entitlement lets agents request)
_REQUESTERS: Final = frozenset({"human", "agent", "workload", "service_account"})
_EMPTY_ARGS: Final[Mapping[str, Any]] = MappingProxyType({"arguments": {}})

#: a TokenInvalid reason in words (the 401's message; never the token)
_TOKEN_WORDS: Final = {
    "expired": "it has expired",
    "not_yet_valid": "it is not valid yet",
    "wrong_audience": "it was not obtained for this gateway (its audience)",
    "token_revoked": "it has been revoked",
    "parent_token_revoked": "a token it was exchanged from has been revoked",
    "credential_revoked": "a client credential it was obtained with has been revoked",
    "identity_suspended": "an identity it names is suspended",
    "identity_deprovisioned": "an identity it names is deprovisioned",
    "delegation_revoked": "a delegation it was issued under has been revoked",
    "delegation_expired": "a delegation it was issued under has expired",
    "delegation_missing": "a delegation it was issued under does not exist",
    "unknown_store": "it is not a token of this store",
}


class Forwarder(Protocol):
    """What the runtime needs of :class:`keyplane.gateway.downstream.DownstreamPool`."""

    async def call_tool(
        self, server: McpServer, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult: ...


def arguments_digest(arguments: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of a call's arguments (sorted keys, no
    spaces, UTF-8): what the ledger keeps of them by default."""
    canon = json.dumps(
        arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def token_error(reason: str) -> AuthenticationError:
    """The :class:`AuthenticationError` of a token that failed verification (its reason
    in words; never the token)."""
    words = _TOKEN_WORDS.get(reason, "it failed verification")
    return AuthenticationError(
        f"the bearer token cannot be used: {words}", details={"reason": reason}
    )


# ------------------------------------------------------------------------------ snapshot


@dataclass(frozen=True, slots=True)
class _Tool:
    """A tool as the per-call path needs it, prepared once per snapshot."""

    record: McpTool
    object: str
    ref: str
    #: the resource properties every decision on it carries (from the tool record)
    props: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    state: GatewayState
    #: every tool by (server, tool name), prepared
    tools: dict[tuple[str, str], _Tool]
    #: enabled tools of enabled servers, sorted by (server, name)
    callable: tuple[_Tool, ...]


def _snapshot(state: GatewayState) -> _Snapshot:
    tools: dict[tuple[str, str], _Tool] = {}
    for key, t in state.tools.items():
        props = MappingProxyType(
            {"server": t.server, "tool": t.name, "kind": t.kind, "risk": t.risk, "title": t.title}
        )
        tools[key] = _Tool(t, tool_object(t.server, t.name), tool_ref(t.server, t.name), props)
    callable_ = tuple(
        tools[k]
        for k in sorted(tools)
        if tools[k].record.status == "enabled"
        and (s := state.servers.get(k[0])) is not None
        and s.status == "enabled"
    )
    return _Snapshot(state, tools, callable_)


# ------------------------------------------------------------------------------ a call


@dataclass(slots=True)
class _Call:
    """One tools/call on its way through the runtime (what the tool_call event needs)."""

    started: float
    name: str
    arguments: dict[str, Any]
    digest: str
    record_arguments: bool = False
    revision: int | None = None
    tool: _Tool | None = None
    server: McpServer | None = None
    server_name: str | None = None
    tool_name: str | None = None
    vt: VerifiedToken | None = None
    decision: Decision | None = None
    purpose: str | None = None
    #: the denial answered (code, message, level of the kill switch or None)
    denial: tuple[str, str, str | None] | None = None
    request_id: str | None = None
    events: list[LedgerEvent] = field(default_factory=list)


class GatewayRuntime:
    """The gateway of one store, for agents presenting tokens for ``audience`` (the
    gateway's resource URL; None: tokens obtained for the store's issuer only)."""

    def __init__(
        self,
        svc: Services,
        store_id: str,
        *,
        audience: str | None,
        pool: Forwarder,
        bridge: LedgerBridge | None = None,
    ) -> None:
        self.svc = svc
        self.store_id = store_id
        self.audience = audience
        self.pool = pool
        #: records a call's events from the event loop (None: a worker thread per record)
        self.bridge = bridge
        self._snap: _Snapshot | None = None
        self._lock = threading.Lock()

    # -- state -------------------------------------------------------------------------

    def state(self) -> GatewayState:
        """The gateway state at the store's current revision (blocking: reads the
        database; see the module docstring)."""
        return self._current().state

    def _current(self) -> _Snapshot:
        revision = self.svc.graphs.catch_up(self.store_id)
        snap = self._snap
        if snap is not None and snap.state.revision == revision:
            return snap
        with self._lock:
            snap = self._snap
            if snap is None or snap.state.revision != revision:
                snap = _snapshot(self.svc.storage.read_gateway(self.store_id))
                self._snap = snap
        return snap

    # -- authentication ----------------------------------------------------------------

    def authenticate(self, token: str) -> VerifiedToken:
        """Verify the agent's access token (raises :class:`AuthenticationError` with the
        reason; blocking). The store's state is caught up first, so a revocation or a
        suspension committed by any process is seen; a call given the token verified
        here (``verified=``) decides on that same fresh state."""
        try:
            self._current()
        except StoreNotFoundError:
            raise token_error("unknown_store") from None
        try:
            vt = verify_access_token(self.svc, self.store_id, token)
        except TokenInvalid as exc:
            raise token_error(exc.reason) from None
        if self._token_audience(vt) is None and not self._for_issuer(vt):
            raise token_error("wrong_audience")
        return vt

    def _token_audience(self, vt: VerifiedToken) -> str | None:
        """The audience a decision verifies the token against: the gateway's resource URL
        when the token names it (else None: the decision checks that it names its issuer)."""
        a = self.audience
        return a if a is not None and a in vt.audience else None

    @staticmethod
    def _for_issuer(vt: VerifiedToken) -> bool:
        iss = vt.claims.get("iss")
        return isinstance(iss, str) and iss in vt.audience

    def _verify_quietly(self, token: str) -> VerifiedToken | None:
        try:
            return self.authenticate(token)
        except AuthenticationError:
            return None

    # -- tools/list ---------------------------------------------------------------------

    def list_tools(self, token: str, *, verified: VerifiedToken | None = None) -> list[McpTool]:
        """The tools the token's chain may call (blocking). Listed: an enabled tool of an
        enabled server, no kill switch engaged, that the decision point allows — or that
        only a guardrail asking for approval holds back (the call then says how to get
        it). The decisions are made without the call's arguments (``context.arguments``
        empty) and are not recorded one by one: ONE ``gateway.tools_listed`` event is."""
        vt = verified if verified is not None else self.authenticate(token)
        snap = self._snap or self._current()
        settings = snap.state.settings
        listed: list[_Tool] = []
        considered = len(snap.callable)
        blocked = _blocked(settings.blocked_agents, vt)
        if settings.enabled and blocked is None:
            audience = self._token_audience(vt)
            for t in snap.callable:
                d, _ = evaluate_unrecorded(
                    self.svc, GATEWAY_CALLER, self.store_id, None, CALL_RELATION, t.object,
                    tool=t.ref, resource_properties=t.props, context=_EMPTY_ARGS,
                    token=token, token_audience=audience,
                )  # fmt: skip
                if d.allowed or d.code == "approval_required":
                    listed.append(t)
        details: dict[str, Any] = {
            "listed": len(listed),
            "considered": considered,
            "tools": [t.ref for t in listed[:_LISTED_REFS]],
            "token": vt.jti,
        }
        if not settings.enabled:
            details["kill_switch"] = "store"
        elif blocked is not None:
            details["kill_switch"] = "agent"
        event = LedgerEvent(
            id=new_event_id(),
            time=self.svc.clock.now(),
            store=self.store_id,
            type=_TOOLS_LISTED,
            caller=GATEWAY_CALLER.principal,
            subject=vt.subject,
            actor_chain=vt.actors,
            purpose=vt.purpose,
            outcome="ok",
            revision=snap.state.revision,
            request_id=request_id_var.get(),
            details=details,
        )
        audit.record(self.svc, (event,))
        return [t.record for t in listed]

    # -- tools/call ---------------------------------------------------------------------

    async def call(
        self,
        token: str,
        exposed_name: str,
        arguments: Mapping[str, Any] | None,
        *,
        meta: Mapping[str, Any] | None = None,
        verified: VerifiedToken | None = None,
        authenticate: bool = False,
    ) -> types.CallToolResult:
        """One ``tools/call`` (see the module docstring). Never raises for a refusal or a
        downstream failure: the agent gets a ``CallToolResult`` with ``isError`` set;
        raises only when the ledger cannot take the call's events (nothing forwarded).

        ``verified``: the token as :meth:`authenticate` verified it for this request
        (which caught the state up). ``authenticate``: verify it here, in the same worker
        thread hop as the decision, raising :class:`AuthenticationError` (nothing
        recorded) when it fails — for a transport that answers that with a 401."""
        args = dict(arguments or {})
        c = _Call(time.perf_counter(), exposed_name, args, arguments_digest(args))
        c.request_id = request_id_var.get()
        if authenticate and verified is None:
            result = await anyio.to_thread.run_sync(self._authenticate_and_decide, c, token, meta)
        else:
            result = await anyio.to_thread.run_sync(self._decide, c, token, meta, verified)
        # the decision event (and a refusal's tool_call event, in one group): durable
        # before anything is forwarded or answered; raises if the ledger cannot take it
        await self._record(c.events)
        if result is not None:
            return result
        assert c.server is not None and c.tool_name is not None
        t1 = time.perf_counter()
        outcome, reason = "allow", "forwarded"
        try:
            answer = await self.pool.call_tool(c.server, c.tool_name, args)
        except KeyplaneError as exc:  # DownstreamError: its message never holds the secret
            outcome, reason = "error", "downstream_error"
            answer = _downstream_failure(exc.code, exc.message, c)
        except Exception as exc:  # never the transport's internals to the agent
            log.warning("gateway call to %s failed: %r", c.server.name, exc)
            outcome, reason = "error", "downstream_error"
            answer = _downstream_failure(
                "downstream_unavailable", f"the server {c.server.name!r} failed to answer", c
            )
        else:
            if answer.is_error:
                outcome, reason = "error", "tool_error"
        downstream_ms = (time.perf_counter() - t1) * 1000
        await self._record((self._call_event(c, outcome, reason, downstream_ms),))
        return answer

    async def _record(self, events: Sequence[LedgerEvent]) -> None:
        """Record ``events`` durably (sync mode), from the event loop: through the
        :class:`~keyplane.api.fastpath.LedgerBridge` (one writer call for every request
        waiting), else in a worker thread."""
        if not events:
            return
        if self.bridge is not None:
            await self.bridge.record(events)
        else:
            await anyio.to_thread.run_sync(audit.record, self.svc, events)

    def _authenticate_and_decide(
        self, c: _Call, token: str, meta: Mapping[str, Any] | None
    ) -> types.CallToolResult | None:
        return self._decide(c, token, meta, self.authenticate(token))

    def _decide(
        self,
        c: _Call,
        token: str,
        meta: Mapping[str, Any] | None,
        verified: VerifiedToken | None,
    ) -> types.CallToolResult | None:
        """The blocking part of a call, in one worker thread: kill switches, decision.
        Returns the refusal, or None when the call may be forwarded (``c`` then names the
        server and tool); either way the events to record first are in ``c.events``."""
        if c.request_id is None:
            c.request_id = uuid.uuid4().hex
            request_id_var.set(c.request_id)
        try:
            # a token verified for this request (authenticate) caught the state up already
            snap = self._snap if verified is not None and self._snap is not None else None
            if snap is None:
                snap = self._current()
        except StoreNotFoundError as exc:
            return self._refuse(c, exc.code, exc.message, None)
        st = snap.state
        settings = st.settings
        c.revision = st.revision
        c.record_arguments = settings.record_arguments
        parts = split_exposed(c.name)
        if parts is not None:
            c.server_name, c.tool_name = parts
            c.tool = snap.tools.get(parts)
        # the token first, so every refusal names who asked (a token that does not
        # verify is refused by the decision below, which records why)
        c.vt = verified if verified is not None else self._verify_quietly(token)
        if not settings.enabled:
            why = settings.disabled_reason
            return self._refuse(
                c, "gateway_disabled",
                "the gateway of this store is switched off" + (f": {why}" if why else ""),
                "store",
            )  # fmt: skip
        if c.tool is None or parts is None:
            return self._refuse(
                c, "tool_not_found",
                f"no tool {c.name!r} on this gateway; tools/list shows the tools you may call",
                None,
            )  # fmt: skip
        server = st.servers.get(parts[0])
        if server is None:
            return self._refuse(c, "tool_not_found", f"no server {parts[0]!r}", None)
        c.server = server
        if server.status != "enabled":
            why = server.status_reason
            return self._refuse(
                c, "server_disabled",
                f"the server {server.name!r} is switched off" + (f": {why}" if why else ""),
                "server",
            )  # fmt: skip
        status = c.tool.record.status
        if status != "enabled":
            return self._refuse(c, *_tool_refusal(c.tool.record))
        blocked = _blocked(settings.blocked_agents, c.vt)
        if blocked is not None:
            node, why = blocked
            return self._refuse(
                c, "agent_blocked",
                f"{node} is blocked from the gateway" + (f": {why}" if why else ""),
                "agent",
            )  # fmt: skip
        # the decision, with the token's chain
        purpose = None
        if c.vt is not None and c.vt.purpose is None and meta:
            declared = meta.get(PURPOSE_META_KEY)
            purpose = declared if isinstance(declared, str) and declared else None
        t = c.tool
        try:
            d, event = evaluate_unrecorded(
                self.svc, GATEWAY_CALLER, self.store_id, None, CALL_RELATION, t.object,
                tool=t.ref, resource_properties=t.props, context={"arguments": c.arguments},
                token=token,
                token_audience=self._token_audience(c.vt) if c.vt is not None else None,
                default_purpose=purpose,
            )  # fmt: skip
        except KeyplaneError as exc:  # a store without a model, an argument CEL cannot take
            return self._refuse(c, exc.code, exc.message, None)
        c.decision = d
        c.purpose = event.purpose
        c.events.append(_redacted(event, c))
        if not d.allowed:
            return self._refuse(c, d.code, d.reason_user, None)
        return None  # the decision event is recorded (call) before the call is forwarded

    def _refuse(self, c: _Call, code: str, message: str, level: str | None) -> types.CallToolResult:
        """A refused call: its tool_call event added to ``c.events`` (recorded with the
        decision's, if any, in one group) and the agent's answer."""
        c.denial = (code, message, level)
        c.events.append(self._call_event(c, "deny", code, None))
        d = c.decision
        structured: dict[str, Any] = {
            "code": code,
            "reason": message,
            "requestable": bool(d is not None and d.requestable),
            "decision_id": d.decision_id if d is not None else None,
        }
        text = f"{code}: {message}"
        if level is not None:
            structured["kill_switch"] = level
        request = self._request_for(c, d) if d is not None and not d.allowed else None
        if d is not None and (d.requestable or request is not None):
            structured["requestable"] = True
            if isinstance(request, Mapping):
                structured["request"] = dict(request)
                text += " " + _request_hint(self.store_id, request)
            elif d.code == "approval_required":
                text += " (a guardrail asks for approval: ask an administrator)"
        return _error_result(code, text, structured)

    def _request_for(self, c: _Call, d: Decision) -> Mapping[str, Any] | None:
        """What to file for a graph denial: the decision's own hint (an entitlement on
        ``can_call`` itself), else the first active entitlement the identity that lacks
        the permission may request that would give it: ``caller`` on the tool, ``member``
        of a toolset holding it, ``caller`` on its server (read on the deny path only)."""
        reason = d.reason if isinstance(d.reason, Mapping) else {}
        own = reason.get("request")
        if isinstance(own, Mapping):
            return own
        identity = reason.get("identity")
        if reason.get("conjunct") != "graph" or not isinstance(identity, str) or c.tool is None:
            return None
        kind = identity.partition(":")[0]
        if kind not in _REQUESTERS:
            return None
        t = c.tool.record
        targets = [(c.tool.object, "caller")]
        try:
            page = self.svc.storage.read_tuples(
                self.store_id, object=c.tool.object, relation="toolset", page_size=100
            )
            targets += [(x.user, "member") for x in page.items if "#" not in x.user]
        except KeyplaneError:
            pass
        targets.append((server_object(t.server), "caller"))
        policy = self.svc.graphs.policy(self.store_id)
        for obj, relation in targets:
            for e in policy.entitlements_for(obj, relation):
                if kind != "human" and not e.agents_may_request:
                    continue
                return {
                    "entitlement": e.id,
                    "object": obj,
                    "relation": relation,
                    "beneficiary": identity,
                    "max_duration_seconds": e.max_duration_seconds,
                }
        return None

    def _call_event(
        self, c: _Call, outcome: str, reason: str, downstream_ms: float | None
    ) -> LedgerEvent:
        details: dict[str, Any] = {
            "server": c.server_name,
            "tool": c.tool_name,
            "arguments_digest": c.digest,
        }
        if c.record_arguments:
            details["arguments"] = audit.jsonable(c.arguments)
        if c.tool_name is None:
            details["name"] = audit.clip(c.name)
        if c.denial is not None and c.denial[2] is not None:
            details["kill_switch"] = c.denial[2]
        if c.vt is not None:
            details["token"] = c.vt.jti
        details["latency_ms"] = round((time.perf_counter() - c.started) * 1000, 3)
        if downstream_ms is not None:
            details["downstream_ms"] = round(downstream_ms, 3)
        d, vt = c.decision, c.vt
        return LedgerEvent(
            id=new_event_id(),
            time=self.svc.clock.now(),
            store=self.store_id,
            type=_TOOL_CALL,
            caller=GATEWAY_CALLER.principal,
            subject=vt.subject if vt is not None else None,
            actor_chain=vt.actors if vt is not None else (),
            purpose=c.purpose if d is not None else (vt.purpose if vt is not None else None),
            action=CALL_RELATION,
            resource=c.tool.object if c.tool is not None else None,
            outcome=outcome,
            reasons=(reason,),
            model_id=(d.model_id or None) if d is not None else None,
            revision=c.revision,
            request_id=c.request_id,
            decision_id=d.decision_id if d is not None else None,
            details=details,
        )


def _did(c: _Call) -> str | None:
    return c.decision.decision_id if c.decision is not None else None


def _blocked(blocked_agents: Mapping[str, str], vt: VerifiedToken | None) -> tuple[str, str] | None:
    """The first node of the token's chain (its actors, then its subject) that is blocked."""
    if not blocked_agents or vt is None:
        return None
    for node in (*vt.actors, vt.subject):
        if node in blocked_agents:
            return node, blocked_agents[node]
    return None


def _tool_refusal(t: McpTool) -> tuple[str, str, str | None]:
    ref = tool_ref(t.server, t.name)
    why = f": {t.status_reason}" if t.status_reason else ""
    if t.status == "disabled":
        return "tool_disabled", f"the tool {ref} is switched off{why}", "tool"
    if t.status == "removed":
        return "tool_removed", f"the tool {ref} is no longer offered by its server", None
    return (
        "tool_pending",
        f"the tool {ref} has not been approved by an administrator yet{why}",
        None,
    )


def _request_hint(store_id: str, request: Mapping[str, Any]) -> str:
    body = {k: request.get(k) for k in ("entitlement", "object", "relation", "beneficiary")}
    return (
        "To request access, call the `request_access` tool of Keyplane's MCP server, or "
        f"POST /v1/stores/{store_id}/access-requests with "
        + json.dumps(body, separators=(", ", ": "))
        + "."
    )


def _downstream_failure(code: str, message: str, c: _Call) -> types.CallToolResult:
    structured = {"code": code, "reason": message, "requestable": False, "decision_id": _did(c)}
    return _error_result(code, f"{code}: {message}", structured)


def _error_result(code: str, text: str, structured: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=True,
    )


def _redacted(event: LedgerEvent, c: _Call) -> LedgerEvent:
    """The decision event as recorded: the call's arguments replaced by their digest
    unless the store opts in to keeping them."""
    if c.record_arguments:
        return event
    details = dict(event.details)
    inp = details.get("input")
    if isinstance(inp, Mapping) and "context" in inp:
        inp = dict(inp)
        inp["context"] = {"arguments_digest": c.digest}
        details["input"] = inp
    return dataclasses.replace(event, details=details)


# ------------------------------------------------------------------------------ registry


#: runtimes a process keeps (each is a cache: one dropped is rebuilt on its next request)
MAX_RUNTIMES: Final = 256


class Gateways:
    """The runtimes of one gateway process, by (store, audience), sharing one pool.

    A runtime is kept only once a request authenticated on it (:meth:`keep`), and at most
    :data:`MAX_RUNTIMES` are: requests naming made-up stores, or made-up hosts (the
    audience follows the request's base URL when ``KEYPLANE_ISSUER`` is unset), cannot
    grow the process."""

    def __init__(self, svc: Services, pool: Forwarder, *, bridge: bool = True) -> None:
        self.svc = svc
        self.pool = pool
        #: one ledger bridge for every runtime of the process (their events share commits)
        self.bridge = LedgerBridge(svc) if bridge else None
        self._runtimes: dict[tuple[str, str | None], GatewayRuntime] = {}
        self._lock = threading.Lock()

    def runtime(self, store_id: str, audience: str | None) -> GatewayRuntime:
        """The kept runtime of (store, audience), else a new one (not kept yet)."""
        rt = self._runtimes.get((store_id, audience))
        if rt is None:
            rt = GatewayRuntime(
                self.svc, store_id, audience=audience, pool=self.pool, bridge=self.bridge
            )
        return rt

    def keep(self, rt: GatewayRuntime) -> None:
        """Keep ``rt`` (a request authenticated on it), dropping the oldest past the cap."""
        key = (rt.store_id, rt.audience)
        if self._runtimes.get(key) is rt:
            return
        with self._lock:
            if key not in self._runtimes:
                while len(self._runtimes) >= MAX_RUNTIMES:
                    del self._runtimes[next(iter(self._runtimes))]
                self._runtimes[key] = rt

    def stores(self) -> list[str]:
        """The stores served so far (the scheduler re-discovers their servers)."""
        return sorted({s for s, _ in list(self._runtimes)})


# ------------------------------------------------------------------------------ re-discovery

#: how often the scheduler looks for servers due for re-discovery
REDISCOVERY_TICK: Final = 30.0


def rediscover_due(svc: Services, stores: Iterable[str]) -> list[tuple[str, str]]:
    """Discover the tools of every server of ``stores`` whose schedule is due
    (``discovery_interval_seconds`` > 0 and that long since its last discovery, or never
    discovered), as the system; returns the (store, server) pairs discovered. A failure
    is the discovery's own business (kept on the server); nothing here raises."""
    from keyplane.service import gateway as gateway_service  # local: it imports downstream

    done: list[tuple[str, str]] = []
    now = svc.clock.now()
    for store in stores:
        try:
            state = svc.storage.read_gateway(store)
        except KeyplaneError:
            continue
        for s in state.servers.values():
            interval = s.discovery_interval_seconds
            if interval <= 0 or s.status != "enabled":
                continue
            if s.last_discovered_at is not None and now - s.last_discovered_at < interval:
                continue
            try:
                gateway_service.discover_tools(svc, Caller.system_caller(), store, s.name)
            except Exception:  # one server's trouble never stops the others
                log.exception("scheduled discovery of %s/%s failed", store, s.name)
                continue
            done.append((store, s.name))
    return done


async def run_rediscovery(
    svc: Services, gateways: Gateways, *, tick: float = REDISCOVERY_TICK
) -> None:
    """Forever: every ``tick`` seconds, :func:`rediscover_due` for the stores served,
    in a worker thread (cancel the task to stop it)."""
    while True:
        await anyio.sleep(tick)
        stores = gateways.stores()
        if stores:
            try:
                await anyio.to_thread.run_sync(rediscover_due, svc, stores)
            except Exception:
                log.exception("scheduled discovery failed")

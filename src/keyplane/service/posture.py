"""The posture of a store's non-human identities (NHIs, issue 8 §3): the inventory and the
report whose findings map to the OWASP Non-Human Identities Top 10 (2025).

Operations (``can_read_posture``; nothing is written, nothing recorded when allowed):

* :func:`nhi_inventory` — every NHI (``agent``, ``workload``, ``service_account``) with its
  owners, status, active credentials (client credentials, and API keys bound to it: a key
  whose ``owner`` is the identity's node and whose roles reach the store), their age,
  expiry and use, when it was last seen and the delegations it holds. Paged by (kind, id).
* :func:`posture_report` — the whole inventory, the findings, the visibility score and the
  counts, computed from bulk reads (:mod:`keyplane.service.posture_plane` loads them; this
  module holds the operations and the rules): identities, credentials and keys in pages of 1000, the
  identity plane from memory (:meth:`~keyplane.service.graphs.GraphRegistry.policy`),
  group memberships from the in-memory graph, and the ledger twice: the window's allowed
  decisions in ONE aggregate (:meth:`~keyplane.storage.base.LedgerStore.ledger_usage`,
  shared by the NHI5 analysis and human use) and one paged pass over the window's
  ``token.issued`` events (which credential authenticated: in the event's details, not
  in an indexed column). No query per identity; the NHI5 analysis
  (:func:`keyplane.service.privilege.analyze` per live NHI, ``exceeding`` over the live
  agents) runs on the in-memory graph. The Tools section (the MCP gateway's tools and their
  use, :func:`keyplane.service.gateway_usage.analyze`) adds one aggregate over the window's
  ``gateway.tool_call`` events and one read of the gateway registry.

Findings (``Finding.code`` is stable; one finding per identity and code, the evidence
listing every credential, delegation or event behind it):

======  ===========================================  ==========================================
OWASP   code                                         when
======  ===========================================  ==========================================
NHI1    ``orphaned_identity``                        flagged orphaned, or no owner is alive (an
                                                     active human, an unregistered human node
                                                     or a group) — as ``identities.is_orphaned``
NHI1    ``owner_deprovisioned``                      owners remain but every one is a
                                                     deprovisioned or suspended human
NHI1    ``active_credential_of_inactive_identity``   a suspended or deprovisioned NHI still has
                                                     active credentials or API keys (API keys
                                                     keep authenticating: critical)
NHI1    ``not_in_identity_provider``                 a human not provisioned by the identity
                                                     provider (source not ``scim``; imported
                                                     from AWS, Kubernetes, GitHub, or created by
                                                     hand) while the store has SCIM-provisioned
                                                     humans: the IdP's offboarding cannot reach
                                                     them (a person, not an NHI: NHI1 is the
                                                     nearest risk — offboarding)
NHI4    ``shared_secret_authentication``             active ``client_secret`` credentials or API
                                                     keys (bearer secrets) where a registered
                                                     key (``private_key_jwt``) would do
NHI5    ``unused_grants``                            grants covering no use in the window
                                                     (:func:`keyplane.service.privilege.analyze`)
NHI5    ``exceeds_owner``                            the agent reaches what an owner or a
                                                     delegator cannot (``privilege.exceeding``)
NHI5    ``access_not_analyzable``                    the engine refuses to compute its access
                                                     (``resolution_too_complex``); the others
                                                     are still analysed
NHI5    ``agent_with_dangerous_tools``               it may call enabled MCP gateway tools
                                                     classified ``dangerous`` (high when it did
                                                     not call some of them in the window)
NHI5    ``unused_tool``                              an enabled gateway tool, approved at least a
                                                     window ago, not called in it (identity:
                                                     the tool, ``mcp_tool:<server>/<tool>``)
NHI7    ``long_lived_secret``                        an active secret lives longer than
                                                     ``long_lived_days`` (from its creation or
                                                     last rotation), or never expires
NHI7    ``stale_credential``                         active and unused for 90 days, or never used
                                                     and older than 30 days
NHI8    ``environment_mixing``                       an active delegation between identities whose
                                                     ``environment`` (or ``env``) attributes
                                                     differ; a ``group`` whose direct NHI members
                                                     span environments (identity: the group)
NHI9    ``identity_reuse``                           in the window, two authenticators (client
                                                     credentials in ``token.issued``, bound API
                                                     keys by their last use) in use at once for
                                                     longer than a rotation overlap (a day); or
                                                     two active credentials of one type side by
                                                     side for longer than that
NHI10   ``human_use``                                an active delegation from the NHI to a human;
                                                     ``token.issued`` events or allowed decisions
                                                     in the window with the NHI as subject and a
                                                     human in the actor chain
======  ===========================================  ==========================================

The counts add ``identities_by_source``: every identity not deprovisioned (humans
included), by ``source`` (``api``, ``scim``, ``import:aws``, …).

Severities: ``critical`` > ``high`` > ``medium`` > ``low``; findings are sorted by
severity (critical first), then identity, then code. Deprovisioned NHIs are offboarded:
only ``active_credential_of_inactive_identity`` applies to them, and they are outside the
visibility score.

Time: ``now`` is the services' clock (injectable), the window ``[now - window_days, now)``.
Ledger fields hashed by ``KEYPLANE_LEDGER_HMAC_FIELDS`` are matched by hashing our side's
values (identity nodes), never by un-hashing; a hashed credential id is still a distinct
authenticator.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from keyplane.errors import InvalidContinuationToken, KeyplaneError, ValidationError
from keyplane.governance.posture import (
    FINDING_SEVERITIES,
    OWASP_NHI,
    ExcessAccess,
    Finding,
    NhiInventoryItem,
    OverPrivilege,
    PostureReport,
    VisibilityScore,
)
from keyplane.policy.records import IDENTITY_STATUSES, NON_HUMAN_KINDS, Identity
from keyplane.service import gateway_usage, privilege
from keyplane.service.audit import audited
from keyplane.service.auth import Caller, Permission, authorize
from keyplane.service.context import Services
from keyplane.service.inputs import check_page_size
from keyplane.service.posture_plane import (
    LedgerFacts,
    Plane,
    Secret,
    environment,
    list_nhis,
    read_decisions,
    read_tokens,
)
from keyplane.storage.base import Page
from keyplane.storage.paging import decode_token, encode_token

__all__ = [
    "FINDINGS",
    "NEVER_USED_DAYS",
    "ROTATION_OVERLAP",
    "STALE_DAYS",
    "nhi_inventory",
    "posture_report",
]

DAY = 86400.0
#: an active credential unused this long is stale
STALE_DAYS = 90
#: a never-used active credential older than this is stale
NEVER_USED_DAYS = 30
#: how long two authenticators of one identity may overlap before it is reuse (a rotation)
ROTATION_OVERLAP = DAY
_MAX_WINDOW_DAYS = 3650
_SEVERITY_RANK = {s: i for i, s in enumerate(reversed(FINDING_SEVERITIES))}  # critical: 0

#: every finding code -> (OWASP id, title). Codes are stable: surfaces and users key on them.
FINDINGS: dict[str, tuple[str, str]] = {
    "orphaned_identity": ("NHI1", "Non-human identity without an active owner"),
    "owner_deprovisioned": ("NHI1", "Every owner is deprovisioned or suspended"),
    "active_credential_of_inactive_identity": (
        "NHI1", "Active credentials on a suspended or deprovisioned identity",
    ),
    "not_in_identity_provider": ("NHI1", "A person who is not in the identity provider"),
    "shared_secret_authentication": ("NHI4", "Authenticates with a shared secret"),
    "unused_grants": ("NHI5", "Grants not used in the window"),
    "exceeds_owner": ("NHI5", "Reaches more than its owner or delegator"),
    "access_not_analyzable": ("NHI5", "Its access cannot be computed"),
    "long_lived_secret": ("NHI7", "Long-lived or non-expiring secret"),
    "stale_credential": ("NHI7", "Active credential not in use"),
    "environment_mixing": ("NHI8", "Identities of different environments linked"),
    "identity_reuse": ("NHI9", "One identity used by several clients"),
    "human_use": ("NHI10", "A human acts as this non-human identity"),
    **gateway_usage.TOOL_FINDINGS,
}  # fmt: skip

# -- inputs -------------------------------------------------------------------------------


def _days(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_WINDOW_DAYS:
        raise ValidationError(
            f"{name} must be a whole number of days between 1 and {_MAX_WINDOW_DAYS}",
            details={"field": name, "received": value if isinstance(value, int) else None},
        )
    return value


def _check_filters(kind: str | None, status: str | None) -> None:
    if kind is not None and kind not in NON_HUMAN_KINDS:
        raise ValidationError(
            f"kind must be a non-human kind: one of {', '.join(NON_HUMAN_KINDS)}",
            details={"field": "kind", "received": str(kind)[:100]},
        )
    if status is not None and status not in IDENTITY_STATUSES:
        raise ValidationError(
            f"unknown status {status!r}: one of {', '.join(IDENTITY_STATUSES)}",
            details={"field": "status", "received": str(status)[:100]},
        )


# -- the inventory ------------------------------------------------------------------------


def _item(plane: Plane, ident: Identity, led: LedgerFacts | None) -> NhiInventoryItem:
    now = plane.now
    secrets = plane.secrets.get(ident.node, [])
    expiries = [s.expires_at for s in secrets if s.expires_at is not None]
    seen = [t for t in (ident.last_seen, *(s.last_used_at for s in secrets)) if t is not None]
    if led is not None and ident.node in led.last:
        seen.append(led.last[ident.node])
    return NhiInventoryItem(
        identity=ident.node,
        kind=ident.kind,
        display_name=ident.display_name,
        status=ident.status,
        owners=ident.owners,
        orphaned=ident.orphaned,
        source=ident.source,
        created_at=ident.created_at,
        credentials=tuple(s.public() for s in secrets),
        credential_count=len(secrets),
        oldest_credential_age=(now - min(s.created_at for s in secrets)) if secrets else None,
        next_credential_expiry=min(expiries) if expiries else None,
        never_used=sum(1 for s in secrets if s.last_used_at is None),
        unused_30=sum(1 for s in secrets if now - s.unused_since() >= 30 * DAY),
        unused_90=sum(1 for s in secrets if now - s.unused_since() >= 90 * DAY),
        last_seen=max(seen) if seen else None,
        delegations_held=plane.held.get(ident.node, 0),
        environment=environment(ident),
    )


@audited(None)
def nhi_inventory(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    kind: str | None = None,
    status: str | None = None,
    window_days: int = 90,
    page_size: int = 50,
    continuation_token: str | None = None,
) -> Page[NhiInventoryItem]:
    """One page of the store's non-human identities, by (kind, id), each with its owners,
    status, active credentials (client credentials and bound API keys), their age, expiry
    and use, when last seen and the delegations it holds. ``kind`` (a non-human kind) and
    ``status`` filter; the token is bound to them.

    A page reads no ledger: ``last_seen`` is the identity's own (every decision-point
    decision notes each identity of its chain) and its credentials' last use. The report
    adds the window's ledger aggregates (plain checks naming it, tokens issued), so its
    ``last_seen`` may be newer. ``window_days`` (1..3650) is validated for symmetry with
    the report and keeps the token's query shape; a page does not depend on it."""
    authorize(svc, caller, Permission.READ_POSTURE, store_id)
    _check_filters(kind, status)
    _days("window_days", window_days)
    size = check_page_size(page_size, svc.settings.max_page_size)
    query = ("nhi_inventory", store_id, kind, status)
    after: tuple[str, str] | None = None
    if continuation_token is not None:
        k, i = decode_token(continuation_token, query, 2)
        if not isinstance(k, str) or not isinstance(i, str):
            raise InvalidContinuationToken("invalid continuation token")
        after = (k, i)
    svc.graphs.catch_up(store_id)
    svc.graphs.flush_seen()
    nhis = list_nhis(svc, store_id, kind, status)
    if after is not None:
        nhis = [i for i in nhis if (i.kind, i.id) > after]
    page, more = nhis[:size], len(nhis) > size
    now = svc.clock.now()
    plane = Plane(svc, store_id, now, page)
    plane.load_secrets([i.node for i in page] if len(page) < 200 else None)
    items = [_item(plane, i, None) for i in page]
    token = encode_token(query, [page[-1].kind, page[-1].id]) if more and page else None
    return Page(items, token)


# -- findings -----------------------------------------------------------------------------


def _finding(
    code: str, severity: str, identity: str, evidence: dict[str, Any], fix: str
) -> Finding:
    owasp, title = FINDINGS[code]
    assert owasp in OWASP_NHI and severity in FINDING_SEVERITIES
    return Finding(code, owasp, severity, identity, title, evidence, fix)


def _secret_json(s: Secret, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "last_used_at": s.last_used_at,
        "age_days": round((now - s.created_at) / DAY, 1),
    }


def _revoke_hint(secrets: Sequence[Secret]) -> str:
    creds = [s.id for s in secrets if s.type != "api_key"]
    keys = [s.id for s in secrets if s.type == "api_key"]
    parts = []
    if creds:
        parts.append("revoke credential " + ", ".join(creds) + " (`keyplane credential revoke`)")
    if keys:
        parts.append("revoke API key " + ", ".join(keys) + " (`keyplane key revoke`)")
    return " and ".join(parts)


def _offboarding(plane: Plane, ident: Identity) -> list[Finding]:
    node, now = ident.node, plane.now
    out: list[Finding] = []
    secrets = plane.secrets.get(node, [])
    if ident.status != "active" and secrets:
        keys = [s for s in secrets if s.type == "api_key"]
        sev = "critical" if keys else ("high" if ident.status == "deprovisioned" else "medium")
        out.append(_finding(
            "active_credential_of_inactive_identity", sev, node,
            {"status": ident.status, "credentials": [_secret_json(s, now) for s in secrets]},
            f"{node} is {ident.status}: {_revoke_hint(secrets)}"
            + (" — API keys still authenticate whatever the identity's status." if keys else "."),
        ))  # fmt: skip
    if ident.status == "deprovisioned":
        return out
    alive = [o for o in ident.owners if plane.owner_alive(o)]
    owners = {o: _owner_status(plane, o) for o in ident.owners}
    if ident.orphaned or not ident.owners:
        out.append(_finding(
            "orphaned_identity", "high" if ident.status == "active" else "medium", node,
            {"orphaned": ident.orphaned, "owners": owners, "status": ident.status},
            f"Assign an active owner to {node} (`keyplane identity owners {node} --add "
            "human:<id>`), or deprovision it if nothing uses it any more.",
        ))  # fmt: skip
    elif not alive:
        out.append(_finding(
            "owner_deprovisioned", "high", node, {"owners": owners, "status": ident.status},
            f"Every owner of {node} has left or is suspended: add an active owner (`keyplane "
            f"identity owners {node} --add human:<id> --remove <owner>`) or deprovision it.",
        ))  # fmt: skip
    return out


def _not_in_identity_provider(plane: Plane) -> list[Finding]:
    """``not_in_identity_provider``: once an identity provider provisions the store's people
    (SCIM humans exist), every other live human — imported from another system, or created
    by hand — exists somewhere the IdP's offboarding does not reach."""
    humans = [i for i in plane.state.identities() if i.kind == "human"]
    idp = sum(1 for i in humans if i.source == "scim" and i.status != "deprovisioned")
    if not idp:
        return []
    out: list[Finding] = []
    for ident in sorted(humans, key=lambda i: i.node):
        if ident.source == "scim" or ident.status == "deprovisioned":
            continue
        attrs = ident.attributes if isinstance(ident.attributes, dict) else {}
        links = attrs.get("links") if isinstance(attrs.get("links"), dict) else {}
        emails = attrs.get("emails") if isinstance(attrs.get("emails"), list) else []
        where = ident.source.removeprefix("import:")
        out.append(_finding(
            "not_in_identity_provider", "medium", ident.node,
            {"source": ident.source, "status": ident.status, "links": links, "emails": emails,
             "idp_humans": idp},
            f"{ident.node} ({ident.source}) is not in the identity provider: provision the "
            "person there — an e-mail of theirs on the SCIM user (or attributes.links."
            f"{where} on the IdP's identity) makes the next import resolve to it — or "
            f"remove the access in {where} if nobody should hold it.",
        ))  # fmt: skip
    return out


def _owner_status(plane: Plane, owner: str) -> str:
    if not owner.startswith("human:"):
        return "group"
    ident = plane.state.identity(owner)
    return "unregistered" if ident is None else ident.status


def _secrets_findings(plane: Plane, ident: Identity, long_lived_days: int) -> list[Finding]:
    node, now = ident.node, plane.now
    secrets = plane.secrets.get(node, [])
    if not secrets or ident.status == "deprovisioned":
        return []
    out: list[Finding] = []
    shared = [s for s in secrets if s.type in ("client_secret", "api_key")]
    if shared:
        out.append(_finding(
            "shared_secret_authentication", "medium", node,
            {"credentials": [_secret_json(s, now) for s in shared]},
            f"Register a key pair for {node} (`keyplane credential create {node} --public-jwk "
            "FILE`: private_key_jwt, RFC 7523), move its clients to signed assertions, then "
            f"{_revoke_hint(shared)}.",
        ))  # fmt: skip
    limit = long_lived_days * DAY
    long_lived = [s for s in secrets if s.expires_at is None or s.expires_at - s.issued_at > limit]
    if long_lived:
        forever = [s for s in long_lived if s.expires_at is None]
        out.append(_finding(
            "long_lived_secret", "high" if forever else "medium", node,
            {
                "long_lived_days": long_lived_days,
                "credentials": [
                    {**_secret_json(s, now), "lifetime_days": None if s.expires_at is None
                     else round((s.expires_at - s.issued_at) / DAY, 1)}
                    for s in long_lived
                ],
            },
            f"Replace {', '.join(s.id for s in long_lived)} of {node} with credentials that "
            f"expire within {long_lived_days} days and rotate them before they do "
            "(`keyplane credential create --expires-at`, `keyplane key rotate`).",
        ))  # fmt: skip
    stale = [
        s for s in secrets
        if (s.last_used_at is not None and now - s.last_used_at >= STALE_DAYS * DAY)
        or (s.last_used_at is None and now - s.created_at >= NEVER_USED_DAYS * DAY)
    ]  # fmt: skip
    if stale:
        unused = any(s.last_used_at is not None for s in stale)
        out.append(_finding(
            "stale_credential", "medium" if unused else "low", node,
            {
                "stale_days": STALE_DAYS, "never_used_days": NEVER_USED_DAYS,
                "credentials": [_secret_json(s, now) for s in stale],
            },
            f"Nothing uses these credentials of {node}: {_revoke_hint(stale)}.",
        ))  # fmt: skip
    return out


def _reuse(plane: Plane, ident: Identity, led: LedgerFacts, since: float) -> list[Finding]:
    node, now = ident.node, plane.now
    if ident.status == "deprovisioned":
        return []
    spans: list[tuple[float, float, str, str, int | None]] = [
        (u.first, u.last, cid, "credential", u.count) for cid, u in led.auth.get(node, {}).items()
    ]
    secrets = plane.secrets.get(node, [])
    for s in secrets:
        if s.type == "api_key" and s.last_used_at is not None and s.last_used_at >= since:
            spans.append((max(s.created_at, since), s.last_used_at, s.id, "api_key", None))
    spans.sort()
    concurrent: list[dict[str, Any]] = []
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            if min(a[1], b[1]) - b[0] > ROTATION_OVERLAP:
                concurrent.append({
                    "authenticators": [a[2], b[2]],
                    "overlap_days": round((min(a[1], b[1]) - b[0]) / DAY, 1),
                })  # fmt: skip
    side_by_side: list[dict[str, Any]] = []
    by_type: dict[str, list[Secret]] = {}
    for s in secrets:
        by_type.setdefault(s.type, []).append(s)
    for typ, group in sorted(by_type.items()):
        if len(group) >= 2 and now - group[1].created_at > ROTATION_OVERLAP:
            side_by_side.append({"type": typ, "credentials": [s.id for s in group]})
    if not concurrent and not side_by_side:
        return []
    used = [
        {"id": s[2], "kind": s[3], "first_used": s[0], "last_used": s[1], "uses": s[4]}
        for s in spans
    ]
    return [_finding(
        "identity_reuse", "medium", node,
        {"concurrent": concurrent, "active_side_by_side": side_by_side, "used_in_window": used},
        f"Give each client of {node} its own non-human identity (one per application and "
        "environment), then revoke the extra credentials so one remains.",
    )]  # fmt: skip


def _human_use(plane: Plane, led: LedgerFacts) -> list[Finding]:
    out: list[Finding] = []
    by_node: dict[str, dict[str, Any]] = {}
    for d in plane.delegations:
        if d.delegator in plane.by_node and plane.human(d.delegate):
            ev = by_node.setdefault(d.delegator, {"delegations": [], "events": []})
            ev["delegations"].append({"id": d.id, "delegate": d.delegate})
    for node, events in led.human.items():
        if node in plane.by_node:
            ev = by_node.setdefault(node, {"delegations": [], "events": []})
            ev["events"] = sorted(events, key=lambda e: e.get("time") or 0)[:100]
            ev["event_count"] = sum(int(e.get("uses", 1)) for e in events)
    for node, ev in by_node.items():
        humans = sorted(
            {d["delegate"] for d in ev["delegations"]}
            | {a for e in ev["events"] for a in e.get("actors", ())}
        )
        out.append(_finding(
            "human_use", "high", node, {**ev, "humans": humans},
            f"People ({', '.join(humans)}) act as {node}: give them their own identities and "
            f"a delegation from them to the agent instead; revoke delegations from {node} to "
            "humans and rotate its credentials.",
        ))  # fmt: skip
    return out


def _environment_mixing(plane: Plane) -> list[Finding]:
    out: list[Finding] = []
    mixed: dict[str, list[dict[str, Any]]] = {}
    for d in plane.delegations:
        a, b = plane.environment(d.delegator), plane.environment(d.delegate)
        if a is None or b is None or a == b:
            continue
        who = d.delegate if d.delegate in plane.by_node else d.delegator
        if who not in plane.by_node:
            continue
        mixed.setdefault(who, []).append({
            "delegation_id": d.id, "delegator": d.delegator, "delegator_environment": a,
            "delegate": d.delegate, "delegate_environment": b,
        })  # fmt: skip
    for node, ds in mixed.items():
        out.append(_finding(
            "environment_mixing", "high", node, {"delegations": ds},
            f"Revoke the cross-environment delegations of {node} "
            f"({', '.join(x['delegation_id'] for x in ds)}) and use an identity of the same "
            "environment on each side.",
        ))  # fmt: skip
    envs_of = {
        i.node: env
        for i in plane.nhis
        if i.status != "deprovisioned" and (env := environment(i)) is not None
    }
    groups: dict[str, dict[str, list[str]]] = {}
    for node, member_of in plane.groups_of(envs_of).items():
        for g in member_of:
            groups.setdefault(g, {}).setdefault(envs_of[node], []).append(node)
    for g, envs in sorted(groups.items()):
        if len(envs) > 1:
            out.append(_finding(
                "environment_mixing", "medium", g,
                {"group": g, "members_by_environment": {e: sorted(m) for e, m in envs.items()}},
                f"Split {g} into one group per environment ({', '.join(sorted(envs))}) so a "
                "grant to it never spans environments.",
            ))  # fmt: skip
    return out


#: how many unused grants / unused or excess permissions a finding and the analyses
#: behind it list (the totals count them all): the report of a large store stays readable
_EVIDENCE_LIMIT = 20


def _unused_grants(
    plane: Plane, use: privilege.Usage, since: float, until: float
) -> tuple[list[Finding], list[OverPrivilege]]:
    """``unused_grants`` from :func:`keyplane.service.privilege.analyze` for every live
    NHI over the one usage aggregate."""
    svc, store = plane.svc, plane.store_id
    window_days = round((until - since) / DAY)
    findings: list[Finding] = []
    over: list[OverPrivilege] = []
    for ident in plane.nhis:
        if ident.status == "deprovisioned":
            continue
        node = ident.node
        try:
            op = privilege.analyze(
                svc,
                store,
                node,
                use,
                since=since,
                until=until,
                limit=_EVIDENCE_LIMIT,
                effective_cache=plane.effective,
            )
        except KeyplaneError as exc:  # e.g. resolution_too_complex: one identity, not all
            plane.unanalyzable.setdefault(node, exc)
            continue
        unused = op.unused_grants
        if not unused:
            continue
        over.append(op)
        findings.append(_finding(
            "unused_grants", "medium", node,
            {
                "window_days": window_days, "since": since, "until": until,
                "grants": len(op.grants), "unused_grants": list(unused[:_EVIDENCE_LIMIT]),
                "unused_total": len(unused), "used_permissions": len(op.used),
                "recommendation": {"keep": list(op.keep), "revoke": list(op.revoke)},
            },
            f"{len(unused)} of {len(op.grants)} grants of {node} covered no use in "
            f"{window_days} days: apply the least-privilege recommendation (`keyplane "
            f"posture apply {node} --mode review`, or `--mode revoke`).",
        ))  # fmt: skip
    return findings, over


def _exceeding(plane: Plane) -> list[ExcessAccess]:
    """:func:`keyplane.service.privilege.exceeding` over the live agents (the graph only:
    it runs while the decisions aggregate is read)."""
    live = [i.node for i in plane.nhis if i.kind == "agent" and i.status != "deprovisioned"]
    if not live:
        return []
    return privilege.exceeding(
        plane.svc, plane.store_id, agents=live, limit=_EVIDENCE_LIMIT,
        errors=plane.unanalyzable, effective_cache=plane.effective,
    )  # fmt: skip


def _not_analyzable(plane: Plane) -> list[Finding]:
    """``access_not_analyzable``: NHIs whose effective access the engine refused to
    compute (the graph around them exceeds the resolution limits) — said, not skipped, so
    the report never looks cleaner than it is."""
    return [
        _finding(
            "access_not_analyzable", "medium", node,
            {"error": exc.code, "message": exc.message},
            f"The graph around {node} exceeds the resolution limits ({exc.code}): flatten "
            "its group nesting or break the cycle (`keyplane explain` shows where); until "
            "then its over-privilege and whether it exceeds its owners are unknown, and "
            "decisions about it fail.",
        )
        for node, exc in sorted(plane.unanalyzable.items())
    ]  # fmt: skip


def _exceeds_owner(exceeding: Sequence[ExcessAccess]) -> list[Finding]:
    """One ``exceeds_owner`` finding per agent, naming each owner or delegator it exceeds."""
    by_agent: dict[str, list[ExcessAccess]] = {}
    for e in exceeding:
        by_agent.setdefault(e.agent, []).append(e)
    return [
        _finding(
            "exceeds_owner", "high", agent,
            {"principals": [{
                "principal": e.principal, "relationship": e.relationship,
                "delegation_id": e.delegation_id, "excess_total": e.excess_total,
                "excess": [{"object": p.object, "relation": p.relation} for p in e.excess],
            } for e in found]},
            f"{agent} reaches what {', '.join(dict.fromkeys(e.principal for e in found))} "
            "cannot: remove "
            "those grants from the agent (see its over-privilege recommendation) so it "
            "never holds more than the people it acts for.",
        )
        for agent, found in by_agent.items()
    ]  # fmt: skip


# -- the report ---------------------------------------------------------------------------


def _visibility(plane: Plane, items: Sequence[NhiInventoryItem]) -> VisibilityScore:
    total = owned = expiring = observed = complete = 0
    for it in items:
        if it.status == "deprovisioned":
            continue
        total += 1
        o = not it.orphaned and any(plane.owner_alive(w) for w in it.owners)
        e = all(c.expires_at is not None for c in it.credentials)
        u = it.last_seen is not None
        owned, expiring, observed = owned + o, expiring + e, observed + u
        complete += o and e and u
    return VisibilityScore(total, owned, expiring, observed, complete)


def _counts(
    items: Sequence[NhiInventoryItem], findings: Sequence[Finding], plane: Plane
) -> dict[str, dict[str, int]]:
    def tally(values: Iterable[str], keys: Iterable[str] = ()) -> dict[str, int]:
        c: dict[str, int] = dict.fromkeys(keys, 0)
        for v in values:
            c[v] = c.get(v, 0) + 1
        return c

    return {
        "nhis_by_kind": tally((i.kind for i in items), NON_HUMAN_KINDS),
        "nhis_by_status": tally((i.status for i in items), IDENTITY_STATUSES),
        "nhis_by_source": tally(i.source for i in items),
        "identities_by_source": dict(
            sorted(
                tally(
                    i.source for i in plane.state.identities() if i.status != "deprovisioned"
                ).items()
            )
        ),
        "findings_by_owasp": tally((f.owasp for f in findings), OWASP_NHI),
        "findings_by_severity": tally((f.severity for f in findings), reversed(FINDING_SEVERITIES)),
        "findings_by_code": tally(f.code for f in findings),
    }


def _sort_key(f: Finding) -> tuple[int, str, str]:
    return (_SEVERITY_RANK[f.severity], f.identity, f.code)


@audited(None)
def posture_report(
    svc: Services,
    caller: Caller,
    store_id: str,
    *,
    window_days: int = 90,
    long_lived_days: int = 90,
    include_inventory: bool = True,
) -> PostureReport:
    """The NHI posture of the store now: the inventory (unless ``include_inventory`` is
    false), the findings (see the module docstring), the visibility score, counts, and the
    over-privilege and exceeding-owner analyses behind the NHI5 findings, over the last
    ``window_days`` of the ledger. ``long_lived_days``: the longest acceptable lifetime of
    a secret."""
    authorize(svc, caller, Permission.READ_POSTURE, store_id)
    window = _days("window_days", window_days)
    long_lived = _days("long_lived_days", long_lived_days)
    if not isinstance(include_inventory, bool):
        raise ValidationError("include_inventory must be true or false")
    started = time.perf_counter()
    svc.graphs.catch_up(store_id)
    svc.graphs.flush_seen()
    now = svc.clock.now()
    since = now - window * DAY
    plane = Plane(svc, store_id, now, list_nhis(svc, store_id, None, None))
    plane.load_secrets()
    led = LedgerFacts()
    # the decisions aggregate is mostly the database's work (the driver lets go of the GIL
    # meanwhile): read it beside the token pass and the exceeding analysis, which are
    # Python's. Storage is safe to call from many threads.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kp-posture") as pool:
        aggregate = pool.submit(privilege.usage, svc, store_id, since, now)
        read_tokens(plane, since, now, led)
        exceeding = _exceeding(plane)
        use = aggregate.result()
    read_decisions(plane, use, led)
    items = [_item(plane, i, led) for i in plane.nhis]
    findings: list[Finding] = []
    for ident in plane.nhis:
        findings += _offboarding(plane, ident)
        findings += _secrets_findings(plane, ident, long_lived)
        findings += _reuse(plane, ident, led, since)
    findings += _human_use(plane, led)
    findings += _not_in_identity_provider(plane)
    findings += _environment_mixing(plane)
    unused, over = _unused_grants(plane, use, since, now)
    findings += unused + _exceeds_owner(exceeding) + _not_analyzable(plane)
    tools = gateway_usage.analyze(svc, store_id, since, now)
    gone = [i.node for i in plane.nhis if i.status == "deprovisioned"]
    findings += gateway_usage.tool_findings(tools, deprovisioned=gone)
    findings.sort(key=_sort_key)
    return PostureReport(
        store_id=store_id,
        generated_at=now,
        since=since,
        until=now,
        inventory=tuple(items) if include_inventory else (),
        findings=tuple(findings),
        visibility=_visibility(plane, items),
        counts=_counts(items, findings, plane),
        over_privileged=tuple(over),
        exceeding=tuple(exceeding),
        elapsed_seconds=round(time.perf_counter() - started, 3),
        tools=tools,
    )

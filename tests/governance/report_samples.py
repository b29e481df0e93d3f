"""Posture reports built directly from the records, for the renderer tests
(``test_report.py``): a realistic one covering every finding code of issue 8 and every
OWASP id they use, an empty one, and a very large one (5,000 NHIs, 20,000 findings)."""

from __future__ import annotations

from collections import Counter

from keyplane.governance.posture import (
    ExcessAccess,
    Finding,
    GrantUse,
    NhiCredential,
    NhiInventoryItem,
    OverPrivilege,
    PermissionUse,
    PostureReport,
    VisibilityScore,
)

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY = 86400.0
WINDOW = 90 * DAY

HOSTILE_SCRIPT = "<script>document.title='pwned';window.__pwned=1</script>"
HOSTILE_IMG = '"><img src=x onerror="document.title=\'pwned\'">'
HOSTILE_IDENTITY = 'agent:"><svg onload=alert(1)>'


def cred(
    id: str,
    type: str,
    *,
    age_days: float,
    expires_in_days: float | None = 30,
    used_days_ago: float | None = 1,
    status: str = "active",
) -> NhiCredential:
    return NhiCredential(
        id=id,
        type=type,
        status=status,
        created_at=NOW - age_days * DAY,
        expires_at=None if expires_in_days is None else NOW + expires_in_days * DAY,
        last_used_at=None if used_days_ago is None else NOW - used_days_ago * DAY,
    )


def item(
    identity: str,
    *,
    display_name: str = "",
    status: str = "active",
    owners: tuple[str, ...] = ("human:alice",),
    credentials: tuple[NhiCredential, ...] = (),
    last_seen_days: float | None = 1,
    delegations: int = 0,
    environment: str | None = "prod",
    source: str = "api",
) -> NhiInventoryItem:
    active = [c for c in credentials if c.status == "active"]
    expiries = [c.expires_at for c in active if c.expires_at is not None]

    def unused(days: float) -> int:
        return sum(
            1
            for c in active
            if (c.last_used_at is None and NOW - c.created_at >= days * DAY)
            or (c.last_used_at is not None and NOW - c.last_used_at >= days * DAY)
        )

    return NhiInventoryItem(
        identity=identity,
        kind=identity.split(":", 1)[0],
        display_name=display_name,
        status=status,
        owners=owners,
        orphaned=not owners,
        source=source,
        created_at=NOW - 400 * DAY,
        credentials=credentials,
        credential_count=len(active),
        oldest_credential_age=max((NOW - c.created_at for c in active), default=None),
        next_credential_expiry=min(expiries, default=None),
        never_used=sum(1 for c in active if c.last_used_at is None),
        unused_30=unused(30),
        unused_90=unused(90),
        last_seen=None if last_seen_days is None else NOW - last_seen_days * DAY,
        delegations_held=delegations,
        environment=environment,
    )


def counts(inventory: tuple[NhiInventoryItem, ...], findings: tuple[Finding, ...]) -> dict:
    """As service/posture.py counts: every kind and status, zeros included."""
    return {
        "nhis_by_kind": {
            k: sum(1 for i in inventory if i.kind == k)
            for k in ("agent", "workload", "service_account")
        },
        "nhis_by_status": {
            s: sum(1 for i in inventory if i.status == s)
            for s in ("active", "suspended", "deprovisioned")
        },
        "nhis_by_source": dict(Counter(i.source for i in inventory)),
        "findings_by_owasp": dict(Counter(f.owasp for f in findings)),
        "findings_by_severity": dict(Counter(f.severity for f in findings)),
        "findings_by_code": dict(Counter(f.code for f in findings)),
    }


def realistic() -> PostureReport:
    """A small organisation: agents, workloads and service accounts, some orphaned or
    deprovisioned, long-lived and shared secrets, a prod/staging delegation, a human
    driving an agent's identity — one finding of every code, and a hostile display
    name."""
    inventory = (
        item(
            "agent:planner",
            display_name="Planning agent",
            credentials=(
                cred("cred_pl1", "private_key_jwt", age_days=20),
                cred("cred_pl2", "client_secret", age_days=200, expires_in_days=None),
            ),
            delegations=2,
        ),
        item(
            "agent:summarizer",
            display_name="Summarizer",
            credentials=(cred("cred_su1", "private_key_jwt", age_days=45),),
            delegations=1,
            environment="staging",
        ),
        item(
            "agent:scraper",
            display_name=HOSTILE_SCRIPT,
            owners=(),
            credentials=(cred("key_sc1", "api_key", age_days=500, expires_in_days=None),),
            last_seen_days=None,
        ),
        item(
            HOSTILE_IDENTITY,
            display_name=HOSTILE_IMG,
            owners=("human:mallory",),
            credentials=(cred("cred_x1", "client_secret", age_days=10, used_days_ago=None),),
            last_seen_days=None,
        ),
        item(
            "workload:billing-sync",
            display_name="Billing sync (cron)",
            owners=("group:platform#member",),
            credentials=(
                cred("cred_bs1", "client_secret", age_days=800, expires_in_days=None),
                cred("cred_bs2", "client_secret", age_days=100, used_days_ago=120),
            ),
            source="scim",
        ),
        item(
            "workload:etl",
            display_name="Nightly ETL",
            owners=("human:bob",),
            status="deprovisioned",
            credentials=(cred("cred_etl", "client_secret", age_days=150),),
            last_seen_days=95,
        ),
        item(
            "service_account:ci",
            display_name="CI deployer",
            owners=("human:carol",),
            status="suspended",
            credentials=(
                cred("key_ci1", "api_key", age_days=60, used_days_ago=40),
                cred("key_ci2", "api_key", age_days=5, used_days_ago=None),
            ),
            source="scim",
        ),
        item(
            "service_account:backup",
            display_name="Backups",
            owners=("human:dave",),
            credentials=(),
            last_seen_days=None,
            environment=None,
        ),
    )
    f = Finding
    findings = (
        f(
            "active_credential_of_inactive_identity", "NHI1", "critical", "workload:etl",
            "Active credential on a deprovisioned workload",
            {"status": "deprovisioned", "credentials": [
                {"id": "cred_etl", "type": "client_secret", "created_at": NOW - 150 * DAY,
                 "expires_at": None, "last_used_at": None, "age_days": 150.0},
                {"id": "key_etl", "type": "api_key", "created_at": NOW - 20 * DAY,
                 "expires_at": NOW + 10 * DAY, "last_used_at": NOW - DAY, "age_days": 20.0},
            ]},
            "Revoke credential cred_etl; a deprovisioned identity must hold no live secret.",
        ),
        f(
            "human_use", "NHI10", "critical", "agent:planner",
            "A human drives this agent's identity",
            {"actor": "human:alice", "events": ["evt_01", "evt_02", "evt_03"],
             "last_at": NOW - 2 * DAY},
            "Give human:alice her own identity and delegate to the agent instead.",
        ),
        f(
            "orphaned_identity", "NHI1", "high", "agent:scraper", "Agent without an owner",
            {"owners": [], "created_at": NOW - 400 * DAY},
            "Assign an owner or deprovision the agent.",
        ),
        f(
            "owner_deprovisioned", "NHI1", "high", HOSTILE_IDENTITY,
            "Every owner is deprovisioned",
            {"owners": ["human:mallory"], "owner_status": {"human:mallory": "deprovisioned"}},
            "Transfer ownership to an active person or team.",
        ),
        f(
            "long_lived_secret", "NHI7", "high", "workload:billing-sync",
            "Client secret that never expires",
            {"credential_id": "cred_bs1", "age_seconds": 800 * DAY, "expires_at": None},
            "Rotate to a credential with an expiry of at most 90 days.",
        ),
        f(
            "long_lived_secret", "NHI7", "high", "agent:scraper", "API key that never expires",
            {"credential_id": "key_sc1", "age_seconds": 500 * DAY, "expires_at": None},
            "Rotate to a credential with an expiry of at most 90 days.",
        ),
        f(
            "unused_grants", "NHI5", "high", "agent:planner",
            "2 grants covered no use in 90 days",
            {"grants": ["document:budget#editor@agent:planner",
                        "folder:finance#viewer@agent:planner"], "window_days": 90},
            "Apply the least-privilege recommendation (keyplane posture apply agent:planner).",
        ),
        f(
            "exceeds_owner", "NHI5", "medium", "agent:summarizer",
            "Reaches 3 permissions its delegator lacks",
            {"principals": [{
                "principal": "human:alice", "relationship": "delegator",
                "delegation_id": "dlg_7", "excess_total": 3,
                "excess": [{"object": "document:roadmap", "relation": "editor", "uses": 4,
                            "last_used_at": NOW - DAY},
                           {"object": "document:budget", "relation": "viewer", "uses": 0,
                            "last_used_at": None}],
            }]},
            "Narrow the agent's grants to what human:alice holds.",
        ),
        f(
            "shared_secret_authentication", "NHI4", "medium", "workload:billing-sync",
            "Client secret where private-key JWT would do",
            {"credential_id": "cred_bs2", "type": "client_secret"},
            "Register a public key and authenticate with private_key_jwt.",
        ),
        f(
            "shared_secret_authentication", "NHI4", "medium", "service_account:ci",
            "API key bound to a service account",
            {"credential_id": "key_ci1", "type": "api_key"},
            "Use client credentials with private_key_jwt instead of an API key.",
        ),
        f(
            "environment_mixing", "NHI8", "medium", "agent:summarizer",
            "Delegation across environments",
            {"delegation_id": "dlg_7", "from": "agent:planner", "from_env": "prod",
             "to_env": "staging"},
            "Keep delegations within one environment; use a staging delegator.",
        ),
        f(
            "identity_reuse", "NHI9", "medium", "service_account:ci",
            "Authenticated by 2 distinct credentials in the window",
            {"credentials": ["key_ci1", "key_ci2"], "clients": 2},
            "Give each client its own identity.",
        ),
        f(
            "stale_credential", "NHI7", "low", "workload:billing-sync",
            "Credential unused for 120 days",
            {"credential_id": "cred_bs2", "last_used_at": NOW - 120 * DAY},
            "Revoke the unused credential.",
        ),
        f(
            "stale_credential", "NHI7", "low", HOSTILE_IDENTITY, "Credential never used",
            {"credential_id": "cred_x1", "last_used_at": None},
            "Revoke the unused credential.",
        ),
    )  # fmt: skip
    planner = OverPrivilege(
        identity="agent:planner",
        since=NOW - WINDOW,
        until=NOW,
        grants=(
            GrantUse("document:roadmap#viewer@agent:planner", covers=14, reaches=20),
            GrantUse("document:budget#editor@agent:planner", covers=0, reaches=8),
            GrantUse("folder:finance#viewer@agent:planner", covers=0, reaches=30),
        ),
        used=tuple(PermissionUse(f"document:r{n}", "viewer", 3, NOW - DAY) for n in range(14)),
        unused=tuple(PermissionUse(f"document:f{n}", "viewer") for n in range(10)),
        unused_total=44,
        effective_total=58,
        keep=("document:roadmap#viewer@agent:planner",),
        revoke=("document:budget#editor@agent:planner", "folder:finance#viewer@agent:planner"),
    )
    ci = OverPrivilege(
        identity="service_account:ci",
        since=NOW - WINDOW,
        until=NOW,
        grants=(GrantUse("group:deployers#member@service_account:ci", covers=2, reaches=12),),
        used=(PermissionUse("repo:web", "deployer", 40, NOW - DAY),),
        unused=(PermissionUse("repo:api", "deployer"),),
        unused_total=11,
        effective_total=12,
        keep=("group:deployers#member@service_account:ci",),
        revoke=(),
    )
    exceeding = (
        ExcessAccess(
            agent="agent:summarizer",
            principal="human:alice",
            relationship="delegator",
            excess=(
                PermissionUse("document:roadmap", "editor"),
                PermissionUse("document:budget", "viewer"),
                PermissionUse("folder:hr", "viewer"),
            ),
            excess_total=3,
            delegation_id="dlg_7",
        ),
        ExcessAccess(
            agent="agent:planner",
            principal="human:alice",
            relationship="owner",
            excess=(PermissionUse("folder:finance", "viewer"),),
            excess_total=1,
        ),
    )
    return PostureReport(
        store_id="acme-prod",
        generated_at=NOW,
        since=NOW - WINDOW,
        until=NOW,
        inventory=inventory,
        findings=findings,
        visibility=VisibilityScore(total=8, owned=6, expiring=4, observed=5, complete=3),
        counts=counts(inventory, findings),
        over_privileged=(planner, ci),
        exceeding=exceeding,
        elapsed_seconds=0.42,
    )


def empty() -> PostureReport:
    return PostureReport(
        store_id="empty",
        generated_at=NOW,
        since=NOW - WINDOW,
        until=NOW,
        inventory=(),
        findings=(),
        visibility=VisibilityScore(0, 0, 0, 0, 0),
        counts={},
    )


_KINDS = ("agent", "workload", "service_account")
_STATUSES = ("active",) * 8 + ("suspended", "deprovisioned")
_CODES = (
    ("orphaned_identity", "NHI1", "high"),
    ("owner_deprovisioned", "NHI1", "high"),
    ("active_credential_of_inactive_identity", "NHI1", "critical"),
    ("shared_secret_authentication", "NHI4", "medium"),
    ("unused_grants", "NHI5", "high"),
    ("exceeds_owner", "NHI5", "medium"),
    ("long_lived_secret", "NHI7", "high"),
    ("stale_credential", "NHI7", "low"),
    ("environment_mixing", "NHI8", "medium"),
    ("identity_reuse", "NHI9", "medium"),
    ("human_use", "NHI10", "critical"),
)
_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def large(nhis: int = 5_000, findings: int = 20_000) -> PostureReport:
    """A big organisation, deterministic: ``nhis`` NHIs with 1–3 credentials each and
    ``findings`` findings spread over every code."""
    inv = []
    for n in range(nhis):
        kind = _KINDS[n % 3]
        creds = tuple(
            cred(
                f"cred_{n}_{c}",
                ("client_secret", "private_key_jwt", "api_key")[(n + c) % 3],
                age_days=(n * 7 + c * 31) % 900,
                expires_in_days=None if (n + c) % 5 == 0 else 30,
                used_days_ago=None if (n + c) % 7 == 0 else (n % 120),
            )
            for c in range(1 + n % 3)
        )
        inv.append(
            item(
                f"{kind}:nhi-{n:05d}",
                display_name=f"NHI number {n}",
                status=_STATUSES[n % len(_STATUSES)],
                owners=() if n % 11 == 0 else (f"human:owner{n % 97}",),
                credentials=creds,
                delegations=n % 4,
                environment=("prod", "staging", "dev")[n % 3],
                source=("api", "scim")[n % 2],
            )
        )
    out = []
    for n in range(findings):
        code, owasp, severity = _CODES[n % len(_CODES)]
        who = inv[(n * 13) % nhis].identity
        out.append(
            Finding(
                code, owasp, severity, who, f"{code.replace('_', ' ')} #{n}",
                {"credential_id": f"cred_{n}", "age_seconds": (n % 900) * DAY,
                 "grants": [f"document:{n}#viewer@{who}", f"folder:{n}#viewer@{who}"]},
                f"Fix {code} on {who}.",
            )
        )  # fmt: skip
    out.sort(key=lambda f: (_RANK[f.severity], f.identity))
    inventory = tuple(inv)
    found = tuple(out)
    worst = tuple(
        OverPrivilege(
            identity=inv[n].identity,
            since=NOW - WINDOW,
            until=NOW,
            grants=tuple(GrantUse(f"document:{g}#viewer@{inv[n].identity}") for g in range(5)),
            used=tuple(PermissionUse(f"document:{u}", "viewer", 1, NOW) for u in range(n % 9)),
            unused=(),
            unused_total=500 - n,
            effective_total=500 - n + n % 9,
            keep=(f"document:0#viewer@{inv[n].identity}",),
            revoke=tuple(f"document:{g}#viewer@{inv[n].identity}" for g in range(1, 5)),
        )
        for n in range(50)
    )
    owned = sum(1 for i in inventory if i.owners)
    return PostureReport(
        store_id="bench",
        generated_at=NOW,
        since=NOW - WINDOW,
        until=NOW,
        inventory=inventory,
        findings=found,
        visibility=VisibilityScore(nhis, owned, nhis // 2, nhis - 100, nhis // 3),
        counts=counts(inventory, found),
        over_privileged=worst,
        exceeding=tuple(
            ExcessAccess(
                f"agent:nhi-{n * 3:05d}",
                f"human:owner{n}",
                "owner",
                (PermissionUse(f"document:{n}", "editor"),),
                10 + n,
            )
            for n in range(30)
        ),
        elapsed_seconds=12.5,
    )

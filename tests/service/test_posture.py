"""NHI posture (issue 8 §3) through the service layer, on SQLite and PostgreSQL: the
inventory (paging, filters, credentials and bound API keys, last seen) and the report's
findings, one or more per OWASP NHI risk the store can show, each against a well-kept
identity that must produce none; the visibility score's numbers; time travel through the
injected clock for stale credentials; permissions; and a deterministic guard that the report
reads storage in bulk (the number of storage calls does not grow with the identities)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import InvalidContinuationToken, PermissionDeniedError, ValidationError
from keyplane.governance.posture import Finding, PostureReport
from keyplane.ledger.events import LedgerEvent, new_event_id
from keyplane.policy.records import Delegation, ScopeGrant
from keyplane.service import credentials as C
from keyplane.service import decisions, posture, stores
from keyplane.service import delegations as D
from keyplane.service import identities as I
from keyplane.service import policies as P
from keyplane.service import tokens as TK
from keyplane.service import tuples as T
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, create_key
from keyplane.storage.base import PolicyWrite

S = "posture"
NOW = 1_800_000_000.0
DAY = 86400.0
URL = "https://kp.example/oauth2/token"
MODEL = """\
model
  schema 1.1
type group
  relations
    define member: [human, agent, workload, service_account, group#member]
type document
  relations
    define viewer: [human, agent, workload, service_account, group#member]
"""
SYSTEM = Caller.system_caller()


class Env:
    """A store holding one identity per situation; ``clock`` moves through its history."""

    def __init__(self, kp: Keyplane, clock: FixedClock) -> None:
        self.kp = kp
        self.svc: Services = kp.services
        self.clock = clock
        self.keys: dict[str, Any] = {}

    def at(self, t: float) -> None:
        self.clock.set(t)

    def nhi(self, node: str, owner: str = "human:alice", **attrs: Any) -> None:
        kind, _, id_ = node.partition(":")
        I.create_identity(self.svc, SYSTEM, S, kind, id_, owners=[owner], attributes=attrs)

    def secret(self, node: str, expires_at: float) -> tuple[str, str]:
        cred, secret = C.create_credential(self.svc, SYSTEM, S, node, expires_at=expires_at)
        assert secret is not None
        return cred.id, secret

    def keypair(self, node: str, expires_at: float) -> str:
        key = ed25519.Ed25519PrivateKey.generate()
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        cred, _ = C.create_credential(
            self.svc, SYSTEM, S, node, type="private_key_jwt", public_jwk=jwk,
            expires_at=expires_at,
        )  # fmt: skip
        self.keys[node] = key
        return cred.id

    def token(self, node: str, secret: str | None = None) -> None:
        """A client_credentials token: with the secret, or an assertion signed by the
        identity's registered key (a ``token.issued`` event naming the credential)."""
        assertion = None
        if secret is None:
            now = int(self.clock.now())
            claims = {
                "iss": node, "sub": node, "aud": URL, "iat": now, "exp": now + 60,
                "jti": hashlib.sha256(str(time.perf_counter_ns()).encode()).hexdigest(),
            }  # fmt: skip
            assertion = jwt.encode(claims, self.keys[node], algorithm="EdDSA")
        client = C.authenticate_client(
            self.svc, S, node, secret=secret, assertion=assertion, token_endpoint_url=URL
        )
        TK.issue_client_credentials(self.svc, S, client, issuer=TK.token_issuer(self.svc, S))

    def report(self, **kw: Any) -> PostureReport:
        self.svc.ledger.flush()
        return posture.posture_report(self.svc, SYSTEM, S, **kw)

    def findings(self, **kw: Any) -> dict[tuple[str, str], Finding]:
        found = {(f.identity, f.code): f for f in self.report(**kw).findings}
        assert len(found) == len(self.report(**kw).findings)  # one per identity and code
        return found


def build(env: Env) -> dict[str, str]:
    """The scenario; returns the ids tests refer to."""
    ids: dict[str, str] = {}
    svc = env.svc
    env.at(NOW - 200 * DAY)
    for h, attrs in (("alice", {"environment": "prod"}), ("bob", {}), ("carol", {}),
                     ("dave", {"env": "dev"})):  # fmt: skip
        I.create_identity(svc, SYSTEM, S, "human", h, attributes=attrs)
    P.update_store_policy(svc, SYSTEM, S, max_credential_seconds=int(400 * DAY))
    env.nhi("agent:good", environment="prod")
    env.nhi("agent:orphan", owner="human:bob")
    env.nhi("service_account:sa-carol", owner="human:carol")
    env.nhi("workload:retired")
    env.nhi("workload:paused")
    env.nhi("agent:secret", environment="prod")
    env.nhi("service_account:legacy")
    env.nhi("agent:never")
    env.nhi("agent:long", environment="prod")
    env.nhi("agent:shared")
    env.nhi("agent:rotated")
    env.nhi("agent:devbot", owner="human:dave", environment="dev")
    env.nhi("agent:tool")
    env.nhi("service_account:ops")
    # NHI1/4/7: an API key that never expires, last used 150 days ago; and one for
    # agent:good whose roles are on ANOTHER store (not agent:good's of this store)
    other = f"other-{uuid.uuid4().hex[:8]}"
    stores.create_store(svc, SYSTEM, "other", store_id=other)
    ids["other_store"] = other
    legacy, _ = create_key(svc, SYSTEM, owner="service_account:legacy", roles=[f"reader:{S}"])
    ids["legacy_key"] = legacy.id
    elsewhere, _ = create_key(svc, SYSTEM, owner="agent:good", roles=[f"reader:{other}"])
    ids["elsewhere_key"] = elsewhere.id
    svc.storage.touch_key(legacy.id, at=NOW - 150 * DAY)
    env.at(NOW - 50 * DAY)
    I.deprovision_identity(svc, SYSTEM, S, "human:bob")  # agent:orphan is orphaned
    I.suspend_identity(svc, SYSTEM, S, "human:carol")  # sa-carol's only owner suspended
    env.at(NOW - 40 * DAY)
    ids["never"] = env.keypair("agent:never", NOW + 20 * DAY)  # never used: stale (low)
    env.at(NOW - 30 * DAY)
    ids["retired_cred"], _ = env.secret("workload:retired", NOW + 50 * DAY)
    key, _ = create_key(
        svc, SYSTEM, owner="workload:retired", roles=[f"reader:{S}"], expires_in=60 * DAY
    )
    ids["retired_key"] = key.id
    ids["paused"] = env.keypair("workload:paused", NOW + 50 * DAY)
    ids["rot1"], rot1 = env.secret("agent:rotated", NOW + 50 * DAY)
    env.at(NOW - 20 * DAY)
    ids["good"] = env.keypair("agent:good", NOW + 40 * DAY)
    ids["secret"], secret = env.secret("agent:secret", NOW + 40 * DAY)
    ids["shared_a"], shared_a = env.secret("agent:shared", NOW + 40 * DAY)
    ids["shared_b"], shared_b = env.secret("agent:shared", NOW + 40 * DAY)
    env.token("agent:rotated", rot1)
    env.at(NOW - 12 * DAY)
    env.token("agent:rotated", rot1)
    # a rotation: the new credential, used from the next day, the old one revoked
    env.at(NOW - 11.5 * DAY)
    ids["rot2"], rot2 = env.secret("agent:rotated", NOW + 50 * DAY)
    env.at(NOW - 11 * DAY)
    C.revoke_credential(svc, SYSTEM, S, ids["rot1"])
    env.token("agent:rotated", rot2)
    env.at(NOW - 10 * DAY)
    ids["long"] = env.keypair("agent:long", NOW + 300 * DAY)  # lives 310 days
    env.token("agent:shared", shared_a)
    env.at(NOW - 9 * DAY)
    env.token("agent:shared", shared_b)
    env.at(NOW - 5 * DAY)
    I.deprovision_identity(svc, SYSTEM, S, "workload:retired")
    env.at(NOW - 3 * DAY)
    # NHI10 in the ledger: a token for service_account:ops with a human actor
    svc.ledger.record(LedgerEvent(
        id=new_event_id(), time=NOW - 3 * DAY, store=S, type="token.issued",
        caller="service_account:ops", subject="service_account:ops",
        actor_chain=("human:dave",), action="token_exchange", outcome="allow",
        details={"client_id": "service_account:ops", "credential_id": "cred-outside"},
    ))  # fmt: skip
    # ... and an allowed decision for workload:paused (subject) with a human actor
    # (twice), and one denied: only allowed decisions are use
    for outcome in ("allow", "allow", "deny"):
        svc.ledger.record(LedgerEvent(
            id=new_event_id(), time=NOW - 3 * DAY, store=S, type="decision.evaluate",
            caller="system", subject="workload:paused", actor_chain=("human:carol",),
            action="viewer", resource="document:x", outcome=outcome,
        ))  # fmt: skip
    env.at(NOW - 2 * DAY)
    env.token("agent:shared", shared_a)
    env.token("agent:rotated", rot2)
    env.token("workload:paused")
    # NHI5 and NHI8: agent:good and agent:long use their group's document (alice, their
    # owner, is in the group too); the dev/prod group's agents use nothing through it and
    # alice is not in it; service_account:ops uses document:a, never document:b
    T.write_tuples(svc, SYSTEM, S, writes=[
        "group:prod-bots#member@agent:good", "group:prod-bots#member@agent:long",
        "group:prod-bots#member@human:alice", "document:plan#viewer@group:prod-bots#member",
        "group:mixed#member@agent:devbot", "group:mixed#member@agent:secret",
        "group:mixed#member@human:dave",
        "document:a#viewer@service_account:ops", "document:b#viewer@service_account:ops",
    ])  # fmt: skip
    svc.ledger.record(LedgerEvent(
        id=new_event_id(), time=NOW - 3 * DAY, store=S, type="decision.check",
        caller="system", subject="service_account:ops", action="viewer",
        resource="document:a", outcome="allow",
    ))  # fmt: skip
    env.at(NOW - 1 * DAY)
    for agent in ("agent:good", "agent:long"):
        assert decisions.decide(svc, SYSTEM, S, agent, "viewer", "document:plan").allowed
    env.token("agent:shared", shared_b)
    env.token("agent:good")
    env.token("agent:secret", secret)
    env.token("agent:long")
    I.suspend_identity(svc, SYSTEM, S, "workload:paused")
    env.at(NOW - 3600)
    # NHI8: a prod human delegates to a dev agent; a group mixes dev and prod agents
    scope = [{"actions": ["viewer"], "resource": "document:*"}]
    ids["prod_to_good"] = D.create_delegation(
        svc, SYSTEM, S, delegator="human:alice", delegate="agent:good", scope=scope,
        expires_at=NOW + 20 * 3600,
    ).id  # fmt: skip
    ids["prod_to_dev"] = D.create_delegation(
        svc, SYSTEM, S, delegator="human:alice", delegate="agent:devbot", scope=scope,
        expires_at=NOW + 20 * 3600,
    ).id  # fmt: skip
    # NHI10: a delegation from an agent to a human (the API refuses one; an import wrote it)
    d = Delegation(
        store_id=S, id="01JTOOLTOHUMAN0000000000000", delegator="agent:tool",
        delegate="human:dave", parent_id=None, scope=(ScopeGrant(("viewer",), "document:*"),),
        purposes=(), not_before=NOW - 3600, expires_at=NOW + 3600, max_depth=0,
        condition=None, status="active", revoked_at=None, revoked_reason=None,
        created_by="import", created_at=NOW - 3600, revision=0,
    )  # fmt: skip
    svc.storage.write_policy(S, lambda r: PolicyWrite(new_delegations=[d]))
    ids["tool_to_human"] = d.id
    env.at(NOW)
    return ids


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def _open(storage_url: str, clock: FixedClock, **settings: Any) -> Keyplane:
    s = Settings(database_url=storage_url, poll_interval=0.0, default_store=S, **settings)
    kp = Keyplane.open(settings=s, clock=clock)
    kp.write_model(MODEL)
    return kp


@pytest.fixture
def env(storage_url: str, clock: FixedClock) -> Iterator[Env]:
    kp = _open(storage_url, clock)
    try:
        yield Env(kp, clock)
    finally:
        kp.close()


@pytest.fixture
def built(env: Env) -> tuple[Env, dict[str, str]]:
    return env, build(env)


# -- the report -----------------------------------------------------------------------------


EXPECTED = {
    ("agent:orphan", "orphaned_identity"): ("NHI1", "high"),
    ("service_account:sa-carol", "owner_deprovisioned"): ("NHI1", "high"),
    ("workload:retired", "active_credential_of_inactive_identity"): ("NHI1", "critical"),
    ("workload:paused", "active_credential_of_inactive_identity"): ("NHI1", "medium"),
    ("agent:secret", "shared_secret_authentication"): ("NHI4", "medium"),
    ("agent:shared", "shared_secret_authentication"): ("NHI4", "medium"),
    ("agent:rotated", "shared_secret_authentication"): ("NHI4", "medium"),
    ("service_account:legacy", "shared_secret_authentication"): ("NHI4", "medium"),
    ("service_account:legacy", "long_lived_secret"): ("NHI7", "high"),
    ("service_account:legacy", "stale_credential"): ("NHI7", "medium"),
    ("agent:long", "long_lived_secret"): ("NHI7", "medium"),
    ("agent:never", "stale_credential"): ("NHI7", "low"),
    ("agent:devbot", "environment_mixing"): ("NHI8", "high"),
    ("group:mixed", "environment_mixing"): ("NHI8", "medium"),
    ("agent:shared", "identity_reuse"): ("NHI9", "medium"),
    ("agent:tool", "human_use"): ("NHI10", "high"),
    ("service_account:ops", "human_use"): ("NHI10", "high"),
    ("workload:paused", "human_use"): ("NHI10", "high"),
    ("agent:devbot", "unused_grants"): ("NHI5", "medium"),
    ("agent:secret", "unused_grants"): ("NHI5", "medium"),
    ("service_account:ops", "unused_grants"): ("NHI5", "medium"),
    ("agent:devbot", "exceeds_owner"): ("NHI5", "high"),
    ("agent:secret", "exceeds_owner"): ("NHI5", "high"),
}


def test_report_findings(built: tuple[Env, dict[str, str]]) -> None:
    env, _ = built
    report = env.report()
    got = {(f.identity, f.code): (f.owasp, f.severity) for f in report.findings}
    assert got == EXPECTED
    # well kept: agent:good (a registered key, used, expiring, owned, same environment as
    # its delegator and its group) and group:prod-bots have nothing
    assert not [f for f in report.findings if f.identity in ("agent:good", "group:prod-bots")]
    # the analyses behind the NHI5 findings are in the report
    assert [o.identity for o in report.over_privileged] == [
        "agent:devbot",
        "agent:secret",
        "service_account:ops",
    ]
    assert {(e.agent, e.principal) for e in report.exceeding} == {
        ("agent:devbot", "human:alice"),
        ("agent:secret", "human:alice"),
    }
    # sorted: most severe first, then identity
    ranks = [("critical", "high", "medium", "low").index(f.severity) for f in report.findings]
    assert ranks == sorted(ranks)
    assert report.findings[0].identity == "workload:retired"
    for f in report.findings:
        assert f.fix and f.title and f.evidence
        assert f.to_dict()["owasp_title"]
    # the report round-trips through its JSON
    assert PostureReport.from_dict(report.to_dict()) == report


def test_report_evidence(built: tuple[Env, dict[str, str]]) -> None:
    env, ids = built
    f = env.findings()
    retired = f[("workload:retired", "active_credential_of_inactive_identity")]
    assert retired.evidence["status"] == "deprovisioned"
    assert {c["id"] for c in retired.evidence["credentials"]} == {
        ids["retired_cred"],
        ids["retired_key"],
    }
    assert ids["retired_key"] in retired.fix and "keyplane key revoke" in retired.fix
    assert (
        f[("workload:paused", "active_credential_of_inactive_identity")].evidence["status"]
        == "suspended"
    )
    orphan = f[("agent:orphan", "orphaned_identity")]
    assert orphan.evidence == {
        "orphaned": True, "owners": {"human:bob": "deprovisioned"}, "status": "active",
    }  # fmt: skip
    assert "keyplane identity owners agent:orphan" in orphan.fix
    assert f[("service_account:sa-carol", "owner_deprovisioned")].evidence["owners"] == {
        "human:carol": "suspended"
    }
    legacy = f[("service_account:legacy", "long_lived_secret")].evidence
    assert legacy["credentials"][0]["id"] == ids["legacy_key"]
    assert legacy["credentials"][0]["lifetime_days"] is None
    assert (
        f[("agent:long", "long_lived_secret")].evidence["credentials"][0]["lifetime_days"] == 310.0
    )
    stale = f[("service_account:legacy", "stale_credential")].evidence["credentials"][0]
    assert stale["last_used_at"] == NOW - 150 * DAY
    assert f[("agent:never", "stale_credential")].evidence["credentials"][0]["id"] == ids["never"]
    shared = f[("agent:shared", "shared_secret_authentication")]
    assert {c["id"] for c in shared.evidence["credentials"]} == {ids["shared_a"], ids["shared_b"]}
    assert "private_key_jwt" in shared.fix
    reuse = f[("agent:shared", "identity_reuse")].evidence
    assert reuse["concurrent"] == [
        {"authenticators": [ids["shared_a"], ids["shared_b"]], "overlap_days": 7.0}
    ]
    assert reuse["active_side_by_side"] == [
        {"type": "client_secret", "credentials": [ids["shared_a"], ids["shared_b"]]}
    ]
    assert {u["id"]: u["uses"] for u in reuse["used_in_window"]} == {
        ids["shared_a"]: 2,
        ids["shared_b"]: 2,
    }
    dev = f[("agent:devbot", "environment_mixing")].evidence["delegations"]
    assert dev == [{
        "delegation_id": ids["prod_to_dev"], "delegator": "human:alice",
        "delegator_environment": "prod", "delegate": "agent:devbot",
        "delegate_environment": "dev",
    }]  # fmt: skip
    assert f[("group:mixed", "environment_mixing")].evidence["members_by_environment"] == {
        "dev": ["agent:devbot"],
        "prod": ["agent:secret"],
    }
    tool = f[("agent:tool", "human_use")].evidence
    assert tool["delegations"] == [{"id": ids["tool_to_human"], "delegate": "human:dave"}]
    assert tool["humans"] == ["human:dave"]
    ops = f[("service_account:ops", "human_use")].evidence
    assert ops["event_count"] == 1 and ops["events"][0]["actors"] == ["human:dave"]
    assert ops["events"][0]["type"] == "token.issued" and ops["delegations"] == []
    ops_grants = f[("service_account:ops", "unused_grants")]
    assert ops_grants.evidence["unused_grants"] == ["document:b#viewer@service_account:ops"]
    assert ops_grants.evidence["recommendation"] == {
        "keep": ["document:a#viewer@service_account:ops"],
        "revoke": ["document:b#viewer@service_account:ops"],
    }
    assert ops_grants.evidence["window_days"] == 90 and ops_grants.evidence["grants"] == 2
    assert "keyplane posture apply service_account:ops" in ops_grants.fix
    assert f[("agent:secret", "unused_grants")].evidence["unused_grants"] == [
        "group:mixed#member@agent:secret"
    ]
    assert f[("agent:devbot", "exceeds_owner")].evidence["principals"] == [{
        "principal": "human:alice", "relationship": "delegator",
        "delegation_id": ids["prod_to_dev"], "excess_total": 1,
        "excess": [{"object": "group:mixed", "relation": "member"}],
    }]  # fmt: skip
    assert [p["principal"] for p in f[("agent:secret", "exceeds_owner")].evidence[
        "principals"]] == ["human:alice"]  # fmt: skip
    paused = f[("workload:paused", "human_use")].evidence
    assert paused["event_count"] == 2 and paused["humans"] == ["human:carol"]
    assert paused["events"] == [{
        "type": "decision.evaluate", "time": NOW - 3 * DAY, "actors": ["human:carol"],
        "action": "viewer", "resource": "document:x", "uses": 2,
    }]  # fmt: skip


def test_report_inventory_score_and_counts(built: tuple[Env, dict[str, str]]) -> None:
    env, ids = built
    report = env.report()
    inv = {i.identity: i for i in report.inventory}
    assert len(inv) == 14 and "human:alice" not in inv
    assert [i.identity for i in report.inventory] == sorted(
        inv, key=lambda n: (n.partition(":")[0], n.partition(":")[2])
    )
    good = inv["agent:good"]
    assert good.credential_count == 1 and good.credentials[0].id == ids["good"]
    assert good.credentials[0].type == "private_key_jwt"
    assert good.credentials[0].expires_at == NOW + 40 * DAY
    assert good.oldest_credential_age == 20 * DAY
    assert good.next_credential_expiry == NOW + 40 * DAY
    assert (good.never_used, good.unused_30, good.unused_90) == (0, 0, 0)
    assert good.last_seen == NOW - DAY
    assert good.delegations_held == 1 and good.environment == "prod"
    assert ids["elsewhere_key"] not in {c.id for c in good.credentials}
    legacy = inv["service_account:legacy"]
    assert [(c.id, c.type, c.expires_at) for c in legacy.credentials] == [
        (ids["legacy_key"], "api_key", None)
    ]
    assert (legacy.unused_30, legacy.unused_90, legacy.last_seen) == (1, 1, NOW - 150 * DAY)
    assert (inv["agent:never"].never_used, inv["agent:never"].unused_30) == (1, 1)
    assert inv["agent:never"].unused_90 == 0 and inv["agent:never"].last_seen is None
    assert inv["service_account:ops"].last_seen == NOW - 3 * DAY  # from the ledger
    assert inv["agent:rotated"].credential_count == 1  # the revoked one is gone
    assert inv["agent:orphan"].orphaned and inv["agent:orphan"].credential_count == 0
    assert inv["workload:retired"].status == "deprovisioned"
    assert inv["agent:devbot"].environment == "dev"
    # 13 live NHIs (workload:retired is offboarded); owned: all but agent:orphan and
    # sa-carol; expiring: all but legacy (its key never expires); observed: good, secret,
    # long, shared, rotated, paused, legacy, ops; complete: those but legacy
    v = report.visibility
    assert (v.total, v.owned, v.expiring, v.observed, v.complete) == (13, 11, 12, 8, 7)
    assert v.score == round(7 / 13, 4)
    c = report.counts
    assert c["nhis_by_kind"] == {"agent": 9, "workload": 2, "service_account": 3}
    assert c["nhis_by_status"] == {"active": 12, "suspended": 1, "deprovisioned": 1}
    assert c["nhis_by_source"] == {"api": 14}
    assert c["findings_by_severity"] == {"critical": 1, "high": 9, "medium": 12, "low": 1}
    assert c["findings_by_owasp"] == {
        "NHI1": 4, "NHI2": 0, "NHI3": 0, "NHI4": 4, "NHI5": 5, "NHI6": 0, "NHI7": 4,
        "NHI8": 2, "NHI9": 1, "NHI10": 3,
    }  # fmt: skip
    assert sum(c["findings_by_code"].values()) == len(report.findings)
    assert report.until == NOW and report.since == NOW - 90 * DAY
    assert report.elapsed_seconds >= 0
    lean = env.report(include_inventory=False)
    assert lean.inventory == () and lean.visibility == v and lean.findings == report.findings


def test_window_and_lifetime_knobs(built: tuple[Env, dict[str, str]]) -> None:
    env, _ = built
    # a 5-day window: agent:shared's credentials overlapped earlier (only the last two
    # tokens are in it, one day apart); two active secrets side by side remain reuse
    reuse = env.findings(window_days=5)[("agent:shared", "identity_reuse")].evidence
    assert reuse["concurrent"] == [] and reuse["active_side_by_side"]
    # service_account:ops' human-actor token is 3 days old: outside a 2-day window
    assert ("service_account:ops", "human_use") not in env.findings(window_days=2)
    # a 400-day limit: only the key that never expires is long-lived
    long = {
        k for k, f in env.findings(long_lived_days=400).items() if f.code == "long_lived_secret"
    }
    assert long == {("service_account:legacy", "long_lived_secret")}
    for bad in (0, 3651, "90", True, 1.5):
        with pytest.raises(ValidationError):
            env.report(window_days=bad)
        with pytest.raises(ValidationError):
            env.report(long_lived_days=bad)


def test_stale_credentials_through_time(env: Env) -> None:
    """Time travel with the injected clock: a used credential becomes stale 90 days after
    its last use; a never-used one 30 days after its creation."""
    env.at(NOW)
    I.create_identity(env.svc, SYSTEM, S, "human", "alice")
    env.nhi("agent:a")
    env.nhi("agent:b")
    env.keypair("agent:a", NOW + 89.5 * DAY)
    env.token("agent:a")
    cred_b = env.keypair("agent:b", NOW + 89.5 * DAY)

    def stale() -> dict[str, str]:
        return {
            f.identity: f.severity
            for f in env.report(window_days=365).findings
            if f.code == "stale_credential"
        }

    env.at(NOW + 29 * DAY)
    assert stale() == {}
    env.at(NOW + 30 * DAY)
    assert stale() == {"agent:b": "low"}
    assert env.report().inventory[1].unused_30 == 1
    env.at(NOW + 89 * DAY)
    assert stale() == {"agent:b": "low"}
    env.at(NOW + 90 * DAY)
    # both keys expired at +89.5 days: expired credentials are no longer active
    assert stale() == {}
    inv = {i.identity: i for i in env.report().inventory}
    assert inv["agent:a"].credential_count == 0 and inv["agent:b"].credential_count == 0
    assert cred_b  # (its credential expired too)


def test_stale_after_last_use(env: Env) -> None:
    env.at(NOW)
    I.create_identity(env.svc, SYSTEM, S, "human", "alice")
    P.update_store_policy(env.svc, SYSTEM, S, max_credential_seconds=int(400 * DAY))
    env.nhi("agent:a")
    env.keypair("agent:a", NOW + 200 * DAY)
    env.token("agent:a")
    env.at(NOW + 89 * DAY)
    assert ("agent:a", "stale_credential") not in env.findings(long_lived_days=365)
    env.at(NOW + 90 * DAY)
    stale = env.findings(long_lived_days=365)[("agent:a", "stale_credential")]
    assert stale.severity == "medium"
    assert stale.evidence["credentials"][0]["last_used_at"] == NOW


def test_tokens_count_as_credential_use(env: Env) -> None:
    """A token issued with a credential is a use of it, whatever its advisory
    ``last_used_at`` says (written at most once a minute, best effort)."""
    env.at(NOW - 60 * DAY)
    I.create_identity(env.svc, SYSTEM, S, "human", "alice")
    env.nhi("agent:a")
    cred = env.keypair("agent:a", NOW + 20 * DAY)
    env.svc.ledger.record(LedgerEvent(
        id=new_event_id(), time=NOW - 2 * DAY, store=S, type="token.issued",
        caller="agent:a", subject="agent:a", action="client_credentials", outcome="allow",
        details={"client_id": "agent:a", "credential_id": cred},
    ))  # fmt: skip
    env.at(NOW)
    assert env.svc.storage.get_credential(S, cred).credential.last_used_at is None  # type: ignore[union-attr]
    report = env.report()
    assert [f.code for f in report.findings] == []  # not stale: used two days ago
    (item,) = report.inventory
    assert item.credentials[0].last_used_at == NOW - 2 * DAY and item.never_used == 0
    # the inventory page reads no ledger: there it is never used, and stale
    (page_item,) = posture.nhi_inventory(env.svc, SYSTEM, S).items
    assert page_item.never_used == 1


def test_a_well_kept_store_has_no_finding(env: Env) -> None:
    env.at(NOW - 10 * DAY)
    I.create_identity(env.svc, SYSTEM, S, "human", "alice", attributes={"env": "prod"})
    env.nhi("agent:a", environment="prod")
    env.nhi("workload:w", env="prod")
    env.keypair("agent:a", NOW + 50 * DAY)
    env.keypair("workload:w", NOW + 50 * DAY)
    T.write_tuples(env.svc, SYSTEM, S, writes=[
        "group:g#member@agent:a", "group:g#member@workload:w", "group:g#member@human:alice",
        "document:d#viewer@group:g#member",
    ])  # fmt: skip
    env.at(NOW - DAY)
    env.token("agent:a")
    env.token("workload:w")
    for node in ("agent:a", "workload:w"):  # their one grant is used
        assert decisions.decide(env.svc, SYSTEM, S, node, "viewer", "document:d").allowed
    env.at(NOW)
    report = env.report()
    assert report.findings == ()
    assert report.visibility.score == 1.0
    assert report.counts["findings_by_severity"] == {
        "critical": 0,
        "high": 0,
        "medium": 0,
        "low": 0,
    }


def test_empty_store(env: Env) -> None:
    report = env.report()
    assert report.inventory == () and report.findings == ()
    assert report.visibility.total == 0 and report.visibility.score == 1.0


def test_store_without_a_model(env: Env) -> None:
    """A store created without a model (the OpenFGA-compatible API allows it) has no NHI:
    an empty report and inventory, not an error."""
    bare = f"bare-{uuid.uuid4().hex[:8]}"
    stores.create_store(env.svc, SYSTEM, "bare", store_id=bare)
    report = posture.posture_report(env.svc, SYSTEM, bare)
    assert report.findings == () and report.visibility.total == 0
    assert posture.nhi_inventory(env.svc, SYSTEM, bare).items == []


def test_hmac_redacted_ledger(storage_url: str, clock: FixedClock) -> None:
    """With identity fields HMAC'd in the ledger, reuse and human use are still found
    (our side's values are hashed and compared; nothing is un-hashed)."""
    kp = _open(
        storage_url, clock,
        ledger_hmac_fields="subject,caller,details.client_id,details.credential_id",
    )  # fmt: skip
    try:
        env = Env(kp, clock)
        ids = build(env)
        stored = [e for e in kp.services.storage.read_events(S, limit=10_000)
                  if e.type == "token.issued"]  # fmt: skip
        assert stored and all(str(e.subject).startswith("hmac-sha256:") for e in stored)
        f = env.findings()
        reuse = f[("agent:shared", "identity_reuse")].evidence
        # the stored credential ids are HMACs: matched with the active credentials' own
        assert reuse["concurrent"] == [
            {"authenticators": [ids["shared_a"], ids["shared_b"]], "overlap_days": 7.0}
        ]
        assert ("service_account:ops", "human_use") in f
        assert ("agent:rotated", "identity_reuse") not in f
        assert {i.identity: i.last_seen for i in env.report().inventory}[
            "service_account:ops"
        ] == NOW - 3 * DAY
        assert ids
    finally:
        kp.close()


# -- the inventory ------------------------------------------------------------------------


def test_inventory_pages_and_filters(built: tuple[Env, dict[str, str]]) -> None:
    env, _ = built
    svc = env.svc
    full = [i.identity for i in env.report().inventory]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = posture.nhi_inventory(svc, SYSTEM, S, page_size=4, continuation_token=token)
        pages += 1
        assert len(page.items) <= 4
        seen += [i.identity for i in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert seen == full and pages == 4
    # the same items as the report's inventory, but for last_seen: the report also reads
    # the window's ledger (service_account:ops' token with a human actor)
    by_report = {i.identity: i for i in env.report().inventory}
    one = {i.identity: i for i in posture.nhi_inventory(svc, SYSTEM, S, page_size=1000).items}
    assert one.keys() == by_report.keys()
    for node, item in one.items():
        other = by_report[node]
        if node == "service_account:ops":
            assert (item.last_seen, other.last_seen) == (None, NOW - 3 * DAY)
        else:
            assert item == other, node
    workloads = posture.nhi_inventory(svc, SYSTEM, S, kind="workload").items
    assert [i.identity for i in workloads] == ["workload:paused", "workload:retired"]
    suspended = posture.nhi_inventory(svc, SYSTEM, S, status="suspended").items
    assert [i.identity for i in suspended] == ["workload:paused"]
    assert posture.nhi_inventory(svc, SYSTEM, S, kind="agent", status="deprovisioned").items == []
    first = posture.nhi_inventory(svc, SYSTEM, S, kind="agent", page_size=2)
    assert first.continuation_token is not None
    with pytest.raises(InvalidContinuationToken):  # bound to its filters
        posture.nhi_inventory(
            svc, SYSTEM, S, kind="workload", continuation_token=first.continuation_token
        )
    with pytest.raises(InvalidContinuationToken):
        posture.nhi_inventory(svc, SYSTEM, S, continuation_token="not-a-token")
    for bad in ({"kind": "human"}, {"status": "gone"}, {"page_size": 0}, {"window_days": 0}):
        with pytest.raises(ValidationError):
            posture.nhi_inventory(svc, SYSTEM, S, **bad)
    assert by_report["agent:shared"].last_seen == NOW - DAY


def test_inventory_pages_in_code_point_order(env: Env) -> None:
    """Ids whose order depends on the database's collation (case, punctuation) page in
    code point order on both backends: every identity once, none skipped."""
    I.create_identity(env.svc, SYSTEM, S, "human", "alice")
    ids = ["a_b", "a-b", "B", "a", "Z9", "a.b", "ab"]
    for i in ids:
        env.nhi(f"agent:{i}")
    env.nhi("workload:w")
    seen: list[str] = []
    token = None
    while True:
        page = posture.nhi_inventory(env.svc, SYSTEM, S, page_size=2, continuation_token=token)
        seen += [i.identity for i in page.items]
        token = page.continuation_token
        if token is None:
            break
    assert seen == [f"agent:{i}" for i in sorted(ids)] + ["workload:w"]


def test_inventory_last_seen(env: Env) -> None:
    """A page's ``last_seen``: the identity's own (a decision-point decision notes it) and
    its credentials' last use — no ledger read; the report adds the window's ledger (a
    plain check naming it as subject)."""
    I.create_identity(env.svc, SYSTEM, S, "human", "alice")
    env.nhi("agent:a")
    env.nhi("agent:b")
    T.write_tuples(env.svc, SYSTEM, S, writes=["document:x#viewer@agent:a"])
    env.at(NOW - 5 * DAY)
    assert decisions.decide(env.svc, SYSTEM, S, "agent:a", "viewer", "document:x").allowed
    env.svc.ledger.record(LedgerEvent(
        id=new_event_id(), time=NOW - 2 * DAY, store=S, type="decision.check",
        caller="system", subject="agent:b", action="viewer", resource="document:x",
        outcome="allow",
    ))  # fmt: skip
    env.at(NOW)
    env.svc.ledger.flush()
    a, b = posture.nhi_inventory(env.svc, SYSTEM, S).items
    assert (a.last_seen, b.last_seen) == (NOW - 5 * DAY, None)
    inv = {i.identity: i.last_seen for i in env.report().inventory}
    assert inv == {"agent:a": NOW - 5 * DAY, "agent:b": NOW - 2 * DAY}
    assert {i.identity: i.last_seen for i in env.report(window_days=1).inventory} == {
        "agent:a": NOW - 5 * DAY,
        "agent:b": None,
    }


def test_permissions(built: tuple[Env, dict[str, str]]) -> None:
    env, _ = built
    svc = env.svc
    _, reader_key = create_key(svc, SYSTEM, owner="human:alice", roles=[f"reader:{S}"])
    reader = authenticate(svc, reader_key)
    with pytest.raises(PermissionDeniedError):
        posture.posture_report(svc, reader, S)
    with pytest.raises(PermissionDeniedError):
        posture.nhi_inventory(svc, reader, S)
    _, auditor_key = create_key(svc, SYSTEM, owner="human:alice", roles=["auditor"])
    auditor = authenticate(svc, auditor_key)
    assert posture.posture_report(svc, auditor, S).findings
    assert posture.nhi_inventory(svc, auditor, S).items


# -- speed: bulk reads, not per identity ---------------------------------------------------


def _count_storage_calls(svc: Services, fn: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    st = svc.storage
    # reads only: the ledger's writer thread may append (and graphs touch last_seen) at
    # any moment, whoever runs
    names = [
        n for n in dir(type(st))
        if not n.startswith(("_", "append", "touch", "write", "put", "prune"))
        and callable(getattr(st, n))
    ]  # fmt: skip
    originals = {n: getattr(st, n) for n in names}

    def wrap(name: str, orig: Any) -> Any:
        def counted(*a: Any, **kw: Any) -> Any:
            counts[name] = counts.get(name, 0) + 1
            return orig(*a, **kw)

        return counted

    for n, orig in originals.items():
        setattr(st, n, wrap(n, orig))
    try:
        fn()
    finally:
        for n in originals:
            delattr(st, n)
    return counts


def test_report_reads_in_bulk(built: tuple[Env, dict[str, str]]) -> None:
    """The report's storage calls do not depend on the number of identities (no query per
    identity): 30 more NHIs with credentials and tokens cost no extra call."""
    env, _ = built
    svc = env.svc
    svc.graphs.catch_up(S)  # what the report does first, done beforehand: the same calls
    svc.graphs.flush_seen()
    before = _count_storage_calls(svc, env.report)
    env.at(NOW - DAY)
    for n in range(30):
        node = f"workload:bulk{n:02d}"
        env.nhi(node)
        env.keypair(node, NOW + 30 * DAY)
        env.token(node)
    env.at(NOW)
    svc.graphs.catch_up(S)
    svc.graphs.flush_seen()
    started = time.perf_counter()
    after = _count_storage_calls(svc, env.report)
    elapsed = time.perf_counter() - started
    assert after == before, (before, after)
    assert sum(after.values()) < 40, after
    assert after["ledger_usage"] == 1  # the decisions aggregate, shared with NHI5
    print(f"posture report, 44 NHIs: {elapsed * 1000:.0f} ms, storage calls {after}")


def test_unknown_store(env: Env) -> None:
    from keyplane.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError):
        posture.posture_report(env.svc, SYSTEM, "no-such-store")
    with pytest.raises(StoreNotFoundError):
        posture.nhi_inventory(env.svc, SYSTEM, "no-such-store")


def test_finding_codes_are_documented() -> None:
    doc = posture.__doc__ or ""
    for code, (owasp, _title) in posture.FINDINGS.items():
        assert f"``{code}``" in doc and owasp in doc
    assert dataclasses.is_dataclass(Finding)


def test_an_identity_the_engine_cannot_resolve_is_a_finding_not_a_failed_report(
    tmp_path: Any,
) -> None:
    """One agent behind 41 nested groups (past the depth limit of 25): its access cannot be
    computed. The report still covers everyone else and names it (access_not_analyzable)
    instead of failing for the whole store."""
    clock = FixedClock(1_800_000_000.0)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'kp.db'}", poll_interval=0.0)
    with Keyplane.open(settings=settings, clock=clock) as kp:
        kp.write_model(
            "model\n  schema 1.1\ntype human\ntype agent\n  relations\n"
            "    define owner: [human]\ntype group\n  relations\n"
            "    define member: [agent, group#member]\ntype document\n  relations\n"
            "    define viewer: [agent, group#member]\n"
        )
        kp.create_identity("human", "anne")
        kp.create_identity("agent", "deep", owners=["human:anne"])
        kp.create_identity("agent", "ok", owners=["human:anne"])
        chain = [f"group:g{i + 1}#member@group:g{i}#member" for i in range(40)]
        kp.write_tuples(
            ["group:g0#member@agent:deep", *chain, "document:d#viewer@group:g40#member",
             "document:e#viewer@agent:ok"]
        )  # fmt: skip
        report = kp.posture_report()
        found = {(f.code, f.identity): f for f in report.findings}
        bad = found[("access_not_analyzable", "agent:deep")]
        assert bad.owasp == "NHI5" and bad.evidence["error"] == "resolution_too_complex"
        # the other agent was still analysed: its unused grant and its excess over anne
        assert ("unused_grants", "agent:ok") in found
        assert ("exceeds_owner", "agent:ok") in found
        assert not any(i == "agent:deep" and c != "access_not_analyzable" for c, i in found)

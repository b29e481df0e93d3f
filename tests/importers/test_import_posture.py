"""The posture report and identity sources, on SQLite and PostgreSQL: identities counted per
source, and ``not_in_identity_provider`` for the people who exist in an imported system (or
were created by hand) but not in the identity provider — once the store has one. The
identity provider's people come in over SCIM (the real service), the imports through the
test-only importer ``demo``; an imported login that resolves to a SCIM user by e-mail is not
a finding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from importers.demo_importer import export, register_demo
from keyplane import FixedClock, Keyplane, Settings
from keyplane.governance.report import render_html, render_text
from keyplane.service import identities as I
from keyplane.service import imports as IM
from keyplane.service import posture
from keyplane.service import scim as SC
from keyplane.service.auth import Caller
from keyplane.service.context import Services

S = "posture-src"
NOW = 1_800_000_000.0
BASE = f"https://kp.example/scim/v2/{S}"

register_demo()


@pytest.fixture
def svc(storage_url: str) -> Iterator[Services]:
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=S)
    kp = Keyplane.open(settings=settings, clock=FixedClock(NOW))
    try:
        yield kp.services
    finally:
        try:
            kp.delete_store(S)
        finally:
            kp.close()


ME = Caller.system_caller()


def _report(svc: Services) -> Any:
    return posture.posture_report(svc, ME, S)


def _not_in_idp(report: Any) -> dict[str, Any]:
    return {f.identity: f for f in report.findings if f.code == "not_in_identity_provider"}


def test_without_an_identity_provider_nobody_is_flagged(svc: Services) -> None:
    IM.import_source(svc, ME, S, "demo", export())
    I.create_identity(svc, ME, S, "human", "zoe")  # by hand, source api
    rep = _report(svc)
    assert _not_in_idp(rep) == {}
    assert rep.counts["identities_by_source"] == {"api": 1, "import:demo": 5}


def test_people_outside_the_identity_provider_are_flagged(svc: Services) -> None:
    # the identity provider provisions alice (her e-mail) and dave (not in the export)
    SC.scim_create(svc, ME, S, "User", {
        "userName": "alice@acme.test", "emails": [{"value": "Alice@Acme.test", "primary": True}],
    }, base_url=BASE)  # fmt: skip
    SC.scim_create(svc, ME, S, "User", {"userName": "dave@acme.test"}, base_url=BASE)
    alice = next(i for i in svc.graphs.policy(S).identities() if i.source == "scim"
                 and "alice@acme.test" in i.attributes.get("emails", []))  # fmt: skip
    IM.import_source(svc, ME, S, "demo", export())
    I.create_identity(svc, ME, S, "human", "zoe")
    I.create_identity(svc, ME, S, "human", "gone")
    I.deprovision_identity(svc, ME, S, "human:gone")

    rep = _report(svc)
    flagged = _not_in_idp(rep)
    # alice resolved to the IdP's user by e-mail: no human:demo-alice, no finding for her
    assert svc.graphs.policy(S).identity("human:demo-alice") is None
    assert alice.node not in flagged
    assert set(flagged) == {"human:demo-bob", "human:demo-carol", "human:zoe"}
    bob = flagged["human:demo-bob"]
    assert (bob.owasp, bob.severity) == ("NHI1", "medium")
    assert bob.evidence["source"] == "import:demo"
    assert bob.evidence["links"] == {"demo": "bob"}
    assert bob.evidence["emails"] == ["bob@acme.test"] and bob.evidence["idp_humans"] == 2
    assert "provision the person there" in bob.fix and "demo" in bob.fix
    assert flagged["human:zoe"].evidence["source"] == "api"
    # NHIs are never this finding; deprovisioned people neither
    assert not any(n.startswith("service_account:") for n in flagged)
    assert "human:gone" not in flagged

    counts = rep.counts
    assert counts["identities_by_source"] == {"api": 1, "import:demo": 4, "scim": 2}
    assert counts["findings_by_code"]["not_in_identity_provider"] == 3
    d = rep.to_dict()
    assert d["counts"]["identities_by_source"]["scim"] == 2
    assert any(f["owasp_title"] == "Improper Offboarding" for f in d["findings"]
               if f["code"] == "not_in_identity_provider")  # fmt: skip

    text = render_text(rep)
    assert "Identities" in text and "import:demo" in text and "not_in_identity_provider" in text
    html = render_html(rep)
    assert "Identities by source" in html and "import:demo" in html

    # bob joins the identity provider: the next import resolves to him, his imported
    # identity is deprovisioned, and the finding goes
    SC.scim_create(svc, ME, S, "User", {
        "userName": "bob@acme.test", "emails": [{"value": "bob@acme.test"}],
    }, base_url=BASE)  # fmt: skip
    r = IM.import_source(svc, ME, S, "demo", export())
    assert r.identities_removed == ("human:demo-bob",)
    again = _not_in_idp(_report(svc))
    assert set(again) == {"human:demo-carol", "human:zoe"}

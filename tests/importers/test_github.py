"""The GitHub importer at plan level: the sample bundle of organisation acme
(tests/importers/data/github_acme.json — the REST answers the docs' ``gh api`` script
collects) planned against an identity plane, and the plan's graph asked who reaches
which repository, and how."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from keyplane.errors import ValidationError
from keyplane.importers.base import get_importer
from keyplane.importers.github import DEFAULT_OWNER, MODEL_DSL, plan_github
from keyplane.policy.state import PolicyState
from keyplane.service import identities as I

from .graph_helpers import Store, identity, plan_engine, state_with
from .graph_helpers import store as store  # the fixture

BUNDLE = Path(__file__).parent / "data" / "github_acme.json"


def bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BUNDLE.read_text())
    return data


def idp_state() -> PolicyState:
    return state_with(
        identity("human", "alice", attributes={"emails": ["alice@example.com"]}),
        identity("human", "carol", attributes={"emails": ["carol@example.com"]}),
        identity("human", "frank", attributes={"emails": ["frank@example.com"]}),
        # a machine user's login linked to the agent that uses it
        identity(
            "agent",
            "release-bot",
            source="api",
            attributes={"links": {"github": "acme-release-bot"}},
            owners=("human:carol",),
        ),
    )


def test_registered_under_github() -> None:
    assert get_importer("github") is plan_github


def test_people_resolve_to_the_identity_provider_or_are_created() -> None:
    plan = plan_github(bundle(), idp_state())
    assert plan.source == "github" and plan.scope == "acme"
    nodes = {p.node: p for p in plan.identities}
    # e-mails of the bundle (SAML identities, any case) → the IdP's humans; links → agent
    for mine in ("alice-acme", "carol-sre", "frank-cto", "acme-release-bot"):
        assert f"human:github-{mine}" not in nodes
    # no e-mail known to the IdP: an identity of the import's own
    dave = nodes["human:github-dave-frontend"]
    assert dave.external_id == "dave-frontend" and dave.kind == "human"
    assert nodes["human:github-bob-dev"].attributes["emails"] == ["bob@example.com"]
    assert "human:github-zed-contractor" in nodes  # an outside collaborator
    tuples = {str(t) for t in plan.tuples}
    assert "github_org:acme#owner@human:alice" in tuples
    assert "github_team:acme/release#member@agent:release-bot" in tuples


def test_agent_reaches_a_repository_through_a_team() -> None:
    engine = plan_engine(plan_github(bundle(), idp_state()))
    api = "github_repo:acme/api"
    # release has maintain on api: maintain ⊇ write ⊇ triage ⊇ read, not admin
    for role in ("maintain", "write", "triage", "read"):
        assert engine.check("agent:release-bot", role, api), role
    assert not engine.check("agent:release-bot", "admin", api)
    why = json.dumps(engine.explain("agent:release-bot", "write", api).paths)
    assert "github_team:acme/release#member" in why
    # which agents can write to the repository
    assert engine.list_users(api, "write", ["agent"]) == ["agent:release-bot"]
    # the team gives nothing on a repository it does not hold
    assert not engine.check("agent:release-bot", "write", "github_repo:acme/web")
    assert engine.check("agent:release-bot", "read", "github_repo:acme/web")  # base: read


def test_team_hierarchy_roles_owners_and_base_permission() -> None:
    plan = plan_github(bundle(), idp_state())
    engine = plan_engine(plan)
    # heidi is a maintainer of platform, a child of engineering: engineering's repos too
    heidi = "human:github-heidi-platform"
    assert engine.check(heidi, "member", "github_team:acme/platform")
    assert engine.check(heidi, "admin", "github_repo:acme/infra-terraform")
    assert engine.check(heidi, "write", "github_repo:acme/docs")  # from engineering
    # carol: platform (child of engineering) and release
    assert engine.check("human:carol", "maintain", "github_repo:acme/deploy-config")
    # the organisation's owners administer every repository
    for repo in ("api", "warehouse-dbt", "legacy-billing"):
        assert engine.check("human:frank", "admin", f"github_repo:acme/{repo}")
    # the base permission (read): every member reads every repository
    assert engine.check("human:github-grace-data", "read", "github_repo:acme/infra-terraform")
    assert not engine.check("human:github-grace-data", "triage", "github_repo:acme/api")
    assert engine.check("human:github-grace-data", "write", "github_repo:acme/warehouse-dbt")
    # an outside collaborator reaches only their repository
    zed = "human:github-zed-contractor"
    assert engine.check(zed, "write", "github_repo:acme/web")
    assert not engine.check(zed, "read", "github_repo:acme/api")
    # a custom role counts as the standard role its permissions give
    assert engine.check("human:github-erin-sec", "triage", "github_repo:acme/api")
    assert any("security-auditor" in w for w in plan.warnings)


def test_apps_and_deploy_keys_are_owned_non_human_identities() -> None:
    plan = plan_github(bundle(), idp_state())
    nodes = {p.node: p for p in plan.identities}
    engine = plan_engine(plan)
    renovate = nodes["workload:github-renovate-bot"]
    assert renovate.external_id == "renovate[bot]" and renovate.owners == (DEFAULT_OWNER,)
    # installed on all repositories with contents: write
    for repo in ("api", "docs", "warehouse-dbt"):
        assert engine.check(renovate.node, "write", f"github_repo:acme/{repo}")
    assert not engine.check(renovate.node, "maintain", "github_repo:acme/api")
    # selected repositories, contents: read
    ci = "workload:github-acme-ci-bot"
    assert engine.check(ci, "read", "github_repo:acme/web")
    assert not engine.check(ci, "read", "github_repo:acme/deploy-config")
    assert not engine.check(ci, "triage", "github_repo:acme/web")
    # metadata only, and suspended: identities without access, with warnings
    for app in ("slack", "snyk"):
        node = f"workload:github-{app}-bot"
        assert node in nodes
        assert not engine.check(node, "read", "github_repo:acme/api")
        assert any(app in w for w in plan.warnings)
    # deploy keys: read-only → read; write key → write, owned by the human who added it
    ro = nodes["service_account:github-acme-api-keys-91234501"]
    assert ro.owners == (DEFAULT_OWNER,) and ro.attributes["read_only"] is True
    assert engine.check(ro.node, "read", "github_repo:acme/api")
    assert not engine.check(ro.node, "write", "github_repo:acme/api")
    rw = nodes["service_account:github-acme-deploy-config-keys-91234777"]
    assert rw.owners == ("human:alice",)
    assert rw.display_name == "deploy key flux-prod-eu (write) (acme/deploy-config)"
    assert engine.check(rw.node, "write", "github_repo:acme/deploy-config")
    assert engine.list_users("github_repo:acme/deploy-config", "write", ["service_account"]) == [
        rw.node
    ]


def test_removal_on_reimport_is_a_smaller_plan() -> None:
    data = bundle()
    first = plan_github(data, idp_state())
    smaller = copy.deepcopy(data)
    release = next(t for t in smaller["teams"] if t["team"]["slug"] == "release")
    release["members"] = [m for m in release["members"] if m["login"] != "acme-release-bot"]
    smaller["repos"] = [r for r in smaller["repos"] if r["repo"]["name"] != "web"]
    smaller["installations"] = smaller["installations"][1:]
    second = plan_github(smaller, idp_state())
    removed = {str(t) for t in first.tuples} - {str(t) for t in second.tuples}
    assert "github_team:acme/release#member@agent:release-bot" in removed
    assert "github_repo:acme/web#write@human:github-zed-contractor" in removed
    gone = {p.node for p in first.identities} - {p.node for p in second.identities}
    assert gone == {"workload:github-renovate-bot", "human:github-zed-contractor"}
    engine = plan_engine(second)
    assert not engine.check("agent:release-bot", "write", "github_repo:acme/api")


def test_same_bundle_same_plan() -> None:
    a, b = plan_github(bundle(), idp_state()), plan_github(bundle(), idp_state())
    assert [str(t) for t in a.tuples] == [str(t) for t in b.tuples]
    assert a.identities == b.identities


def test_minimal_bundle_and_api_shapes() -> None:
    data = {
        "org": "tiny",
        "members": ["octocat"],
        "teams": [
            {
                "team": {"slug": "core", "parent": None},
                "members": [{"login": "octocat", "role": "maintainer"}],
                "repos": [{"full_name": "tiny/lib", "permission": "push"}],
            }
        ],
        "installations": {"total_count": 1, "installations": []},
    }
    plan = plan_github(data, PolicyState.empty("s"))
    engine = plan_engine(plan)
    assert engine.check("human:github-octocat", "maintainer", "github_team:tiny/core")
    assert engine.check("human:github-octocat", "write", "github_repo:tiny/lib")


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.pop("org"), "org"),
        (lambda d: d["members"][2].pop("login"), "members[2].login"),
        (lambda d: d["teams"][1]["team"].pop("slug"), "teams[1].team.slug"),
        (lambda d: d["teams"][0]["repos"][1].update(name=7, full_name=None), "repos[1].name"),
        (
            lambda d: d["repos"][0]["collaborators"][0].update(permissions="all"),
            "repos[0].collaborators[0].permissions",
        ),
        (lambda d: d["repos"][3]["deploy_keys"][0].pop("id"), "repos[3].deploy_keys[0].id"),
        (lambda d: d["installations"][1].update(repositories="api"), "repositories"),
        (lambda d: d["installations"][0].pop("app_slug"), "installations[0].app_slug"),
        (lambda d: d.update(emails=["a@b"]), "emails"),
        (lambda d: d["repos"][1]["repo"].update(owner={"login": "evil"}), "owner.login"),
    ],
)
def test_bad_bundle_names_the_field(mutate: Any, path: str) -> None:
    data = bundle()
    mutate(data)
    with pytest.raises(ValidationError) as err:
        plan_github(data, PolicyState.empty("s"))
    assert err.value.details["path"].endswith(path), err.value.details


# ------------------------------------------------------------------------------ end to end


def test_import_end_to_end(store: Store) -> None:
    """Through import_source, on SQLite and PostgreSQL: an agent linked to a machine user
    reaches a repository through a team, with the path; people resolve to the IdP; the
    same bundle again changes nothing; what left the bundle is removed on re-import."""
    store.human("alice", "alice@example.com")
    store.human("carol", "carol@example.com")
    I.create_identity(
        store.svc, store.me, store.store, "agent", "release-bot", owners=["human:carol"],
        attributes={"links": {"github": "acme-release-bot"}},
    )  # fmt: skip
    r = store.imp("github", bundle())
    assert (r.source, r.scope, r.model_changed) == ("github", "acme", True)
    api = "github_repo:acme/api"
    assert store.check("agent:release-bot", "write", api)
    assert not store.check("agent:release-bot", "admin", api)
    assert "github_team:acme/release#member" in store.explain("agent:release-bot", "write", api)
    assert list(store.list_users(api, "write", ["agent"])) == ["agent:release-bot"]
    # the IdP's alice is an org owner; a member unknown to the IdP is the import's own
    assert store.check("human:alice", "admin", "github_repo:acme/infra-terraform")
    dave = store.identity("human:github-dave-frontend")
    assert dave.source == "import:github" and dave.attributes["links"] == {
        "github": "dave-frontend"
    }
    key = store.identity("service_account:github-acme-deploy-config-keys-91234777")
    assert key.owners == ("human:alice",) and not key.orphaned
    assert store.identity("agent:release-bot").source == "api"  # resolved, not touched

    again = store.imp("github", bundle())
    assert again.identities.to_json() == {"added": 0, "changed": 0, "removed": 0}
    assert again.tuples.to_json() == {"added": 0, "changed": 0, "removed": 0}

    smaller = bundle()
    release = next(t for t in smaller["teams"] if t["team"]["slug"] == "release")
    release["members"] = [m for m in release["members"] if m["login"] != "acme-release-bot"]
    smaller["installations"] = smaller["installations"][1:]  # renovate uninstalled
    after = store.imp("github", smaller)
    assert after.identities.to_json()["removed"] == 1
    assert not store.check("agent:release-bot", "write", api)
    assert store.check("agent:release-bot", "read", api)  # still a member: base permission
    assert store.identity("workload:github-renovate-bot").status == "deprovisioned"
    assert store.identity("agent:release-bot").status == "active"


def test_docs_show_the_model_fragment() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "identity-sources.md").read_text()
    section = docs.split("### GitHub", 1)[1]
    shown = {re.sub(r"\s+# .*$", "", line).rstrip() for line in section.splitlines()}
    for line in MODEL_DSL.splitlines()[3:]:
        assert line.rstrip() in shown, line

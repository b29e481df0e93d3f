"""The Kubernetes RBAC importer at plan level: the sample export of cluster prod-eu
(tests/importers/data/k8s_prod_eu.json — ``kubectl get serviceaccounts,roles,rolebindings,
clusterroles,clusterrolebindings -A -o json`` with the cluster's name added — and its
Namespaces, k8s_prod_eu_namespaces.json) planned against an identity plane, and the
plan's graph asked the questions ``kubectl auth can-i`` answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from keyplane.errors import ValidationError
from keyplane.importers.base import get_importer
from keyplane.importers.kubernetes import (
    DEFAULT_OWNER,
    MODEL_DSL,
    VERBS,
    group_id,
    plan_kubernetes,
)
from keyplane.policy.state import PolicyState

from .graph_helpers import Store, identity, plan_engine, state_with
from .graph_helpers import store as store  # the fixture

DATA = Path(__file__).parent / "data"
RBAC = DATA / "k8s_prod_eu.json"
NAMESPACES = DATA / "k8s_prod_eu_namespaces.json"
SA = "service_account:kubernetes-prod-eu-"


def export() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RBAC.read_text())
    return data


def idp_state() -> PolicyState:
    return state_with(
        identity("human", "alice", attributes={"emails": ["alice@example.com"]}),
        identity("human", "bob", attributes={"emails": ["bob@example.com"]}),
        identity("human", "carol", attributes={"emails": ["carol@example.com"]}),
        identity(
            "agent",
            "release-bot",
            source="api",
            attributes={"links": {"kubernetes": "prod-eu/ci/runner"}},
            owners=("human:alice",),
        ),
    )


def test_registered_under_kubernetes() -> None:
    assert get_importer("kubernetes") is plan_kubernetes


def test_service_accounts_become_owned_identities() -> None:
    text = RBAC.read_text() + "\n" + NAMESPACES.read_text()  # two concatenated Lists
    plan = plan_kubernetes(text, idp_state())
    assert plan.source == "kubernetes" and plan.scope == "prod-eu"
    by_node = {p.node: p for p in plan.identities}
    api = by_node[SA + "payments-api"]
    assert api.kind == "service_account"
    assert api.external_id == "prod-eu/payments/api"
    assert api.owners == ("group:payments-team#member",)  # keyplane.dev/owner: group:…
    assert api.attributes["aws_role_arn"] == "arn:aws:iam::111122223333:role/payments-api"
    assert api.attributes["namespace"] == "payments" and api.attributes["cluster"] == "prod-eu"
    # the annotation's e-mail resolved to the identity provider's human
    assert by_node[SA + "ci-deployer"].owners == ("human:alice",)
    # no annotation on the account: its Namespace's (payments → bob)
    assert by_node[SA + "payments-worker"].owners == ("human:bob",)
    # neither: the default owner group
    assert by_node[SA + "billing-exporter"].owners == (DEFAULT_OWNER,)
    # an owner nobody knows is reported, and the default owner used
    assert by_node[SA + "argocd-argocd-application-controller"].owners == (DEFAULT_OWNER,)
    assert any("mallory@unknown.example" in w for w in plan.warnings)
    # ci/runner is linked to an existing agent: resolved, not created
    assert SA + "ci-runner" not in by_node
    # every account of the export, bound or not (default accounts included)
    assert SA + "kube-public-default" in by_node
    # a User subject with an e-mail name is the IdP's human; another one is created
    assert "human:carol" not in by_node
    dave = by_node["human:kubernetes-dave-example.com"]
    assert dave.external_id == "dave@example.com" and dave.attributes["emails"] == [
        "dave@example.com"
    ]


def test_clusterrole_bound_cluster_wide_reaches_every_namespace() -> None:
    plan = plan_kubernetes(export(), idp_state())
    engine = plan_engine(plan)
    deployer = SA + "ci-deployer"  # ClusterRoleBinding ci-deployer → ClusterRole deployer
    for ns in ("payments", "billing", "argocd"):
        assert engine.check(deployer, "update", f"k8s_resource:prod-eu/{ns}/deployments")
        assert engine.check(deployer, "get", f"k8s_resource:prod-eu/{ns}/pods/log")
    assert not engine.check(deployer, "delete", "k8s_resource:prod-eu/payments/deployments")
    assert not engine.check(deployer, "get", "k8s_resource:prod-eu/payments/secrets")
    assert not engine.check(deployer, "create", "k8s_resource:prod-eu/payments/pods/exec")
    # the path names the binding and the role
    why = json.dumps(
        engine.explain(deployer, "update", "k8s_resource:prod-eu/billing/deployments").paths
    )
    assert "k8s_binding:prod-eu/ci-deployer" in why
    assert "k8s_clusterrole:prod-eu/deployer" in why

    # cluster-admin (resources "*", verbs "*") reaches every namespace, resource and verb
    argocd = SA + "argocd-argocd-application-controller"
    assert engine.check(argocd, "delete", "k8s_namespace:prod-eu/payments")
    assert engine.check(argocd, "get", "k8s_resource:prod-eu/kube-system/secrets")
    assert engine.check(argocd, "escalate", "k8s_resource:prod-eu/*/clusterroles")
    reached = set(engine.list_objects(argocd, "get", "k8s_namespace"))
    assert reached >= {"k8s_namespace:prod-eu/payments", "k8s_namespace:prod-eu/kube-system"}
    # cluster-scoped resources are asked about cluster-wide
    prom = SA + "monitoring-prometheus"
    assert engine.check(prom, "list", "k8s_resource:prod-eu/*/nodes")
    assert not engine.check(prom, "delete", "k8s_resource:prod-eu/*/nodes")


def test_clusterrole_bound_in_a_namespace_reaches_only_that_namespace() -> None:
    engine = plan_engine(plan_kubernetes(export(), idp_state()))
    operator = SA + "payments-operator"  # RoleBinding in payments → ClusterRole namespace-admin
    assert engine.check(operator, "delete", "k8s_namespace:prod-eu/payments")
    assert engine.check(operator, "get", "k8s_resource:prod-eu/payments/secrets")
    assert not engine.check(operator, "get", "k8s_namespace:prod-eu/billing")
    assert not engine.check(operator, "get", "k8s_resource:prod-eu/billing/secrets")
    assert set(engine.list_objects(operator, "get", "k8s_namespace")) == {
        "k8s_namespace:prod-eu/payments"
    }
    exporter = SA + "billing-exporter"  # RoleBinding in billing → ClusterRole view
    assert engine.check(exporter, "list", "k8s_resource:prod-eu/billing/pods")
    assert not engine.check(exporter, "list", "k8s_resource:prod-eu/payments/pods")
    assert not engine.check(exporter, "get", "k8s_resource:prod-eu/billing/secrets")


def test_resource_names_limit_to_the_named_objects() -> None:
    engine = plan_engine(plan_kubernetes(export(), idp_state()))
    api = SA + "payments-api"  # Role secret-reader: get secrets payments-db, stripe-api-key
    assert engine.check(api, "get", "k8s_resource:prod-eu/payments/secrets/name=payments-db")
    assert not engine.check(api, "get", "k8s_resource:prod-eu/payments/secrets")
    assert not engine.check(api, "list", "k8s_resource:prod-eu/payments/secrets/name=payments-db")
    # a whole-resource grant covers the named objects
    carol_path = engine.check(
        "human:carol", "get", "k8s_resource:prod-eu/payments/secrets/name=payments-db"
    )
    assert carol_path  # platform-admins → cluster-admin


def test_groups_resolve_to_idp_groups_and_service_account_groups_expand() -> None:
    plan = plan_kubernetes(export(), idp_state())
    # the IdP provisions group:sre's members; the import only binds the group
    engine = plan_engine(plan, ["group:sre#member@human:bob"])
    assert engine.check("human:bob", "create", "k8s_resource:prod-eu/payments/pods/exec")
    assert not engine.check("human:bob", "create", "k8s_resource:prod-eu/billing/pods/exec")
    why = json.dumps(
        engine.explain("human:bob", "create", "k8s_resource:prod-eu/payments/pods/exec").paths
    )
    assert "group:sre#member" in why and "k8s_role:prod-eu/payments/ops-debug" in why
    # system:serviceaccounts:ci → every account of ci, the linked agent included
    for node in (SA + "ci-deployer", SA + "ci-default", "agent:release-bot"):
        assert engine.check(node, "update", "k8s_resource:prod-eu/ci/configmaps"), node
    assert not engine.check(SA + "payments-api", "update", "k8s_resource:prod-eu/ci/configmaps")
    # system: users and groups are Kubernetes' own and not imported
    assert not any(
        t.user.startswith(("group:system", "human:kubernetes-system")) for t in plan.tuples
    )
    users = engine.list_users("k8s_cluster:prod-eu", "any_verb", ["human", "group#member"])
    assert set(users) == {"human:carol", "group:platform-admins#member"}


def test_warnings_count_what_is_not_modelled() -> None:
    plan = plan_kubernetes(export(), PolicyState.empty("s"))
    text = "\n".join(plan.warnings)
    assert "non-resource URL rules" in text
    assert "service accounts not in the export" in text  # billing/reporter
    assert "system: bindings" in text


def test_removal_on_reimport_is_a_smaller_plan() -> None:
    data = export()
    first = plan_kubernetes(data, PolicyState.empty("s"))
    data["items"] = [
        it
        for it in data["items"]
        if not (it["kind"] == "ServiceAccount" and it["metadata"]["name"] == "operator")
        and it["metadata"]["name"] != "ci-deployer"
    ]
    second = plan_kubernetes(data, PolicyState.empty("s"))
    gone = {p.node for p in first.identities} - {p.node for p in second.identities}
    assert gone == {SA + "payments-operator"}
    removed = {str(t) for t in first.tuples} - {str(t) for t in second.tuples}
    assert f"k8s_binding:prod-eu/ci-deployer#subject@{SA}ci-deployer" in removed
    assert (
        "k8s_resource:prod-eu/*/deployments#update@k8s_clusterrole:prod-eu/deployer#bound"
        in removed
    )
    engine = plan_engine(second)
    assert not engine.check(SA + "ci-deployer", "update", "k8s_resource:prod-eu/ci/deployments")


def test_same_export_same_plan() -> None:
    a = plan_kubernetes(export(), idp_state())
    b = plan_kubernetes(json.loads(json.dumps(export())), idp_state())
    assert [str(t) for t in a.tuples] == [str(t) for t in b.tuples]
    assert a.identities == b.identities


def test_accepted_shapes() -> None:
    data = export()
    lists = {"cluster": "prod-eu", "lists": [json.loads(NAMESPACES.read_text()), data]}
    plan = plan_kubernetes(lists, PolicyState.empty("s"))
    assert plan.scope == "prod-eu"
    assert any(p.node == SA + "payments-api" for p in plan.identities)
    as_array = plan_kubernetes([data, json.loads(NAMESPACES.read_text())], idp_state())
    assert as_array.scope == "prod-eu"
    no_name = dict(data)
    del no_name["cluster"]
    unnamed = plan_kubernetes(no_name, PolicyState.empty("s"))
    assert unnamed.scope == "default" and "names no cluster" in unnamed.warnings[0]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["items"][3]["metadata"].pop("name"), "items[3].metadata.name"),
        (lambda d: d["items"][0]["metadata"].pop("namespace"), "items[0].metadata.namespace"),
        (lambda d: _find(d, "deployer", "ClusterRole")[1].update(rules={}), ".rules"),
        (lambda d: _rule(d, "deployer").update(verbs="get"), ".rules[0].verbs"),
        (lambda d: _find(d, "ci-deployer", "ClusterRoleBinding")[1].pop("roleRef"), ".roleRef"),
        (
            lambda d: _find(d, "ci-deployer", "ClusterRoleBinding")[1]["subjects"][0].update(
                kind="Robot"
            ),
            ".subjects[0].kind",
        ),
        (lambda d: d.update(cluster=""), "cluster"),
        (lambda d: d.update(items={}), "items"),
    ],
)
def test_bad_export_names_the_field(mutate: Any, path: str) -> None:
    data = export()
    mutate(data)
    with pytest.raises(ValidationError) as err:
        plan_kubernetes(data, PolicyState.empty("s"))
    assert err.value.details["path"].endswith(path), err.value.details
    if path.startswith("."):
        index = err.value.details["path"].split("]")[0] + "]"
        assert index.startswith("items[")


def test_not_a_list() -> None:
    with pytest.raises(ValidationError) as err:
        plan_kubernetes({"apiVersion": "v1"}, PolicyState.empty("s"))
    assert "items" in err.value.message
    with pytest.raises(ValidationError):
        plan_kubernetes('{"items": []} {"items": ', PolicyState.empty("s"))


def _find(data: dict[str, Any], name: str, kind: str) -> tuple[int, dict[str, Any]]:
    for i, it in enumerate(data["items"]):
        if it["kind"] == kind and it["metadata"]["name"] == name:
            return i, it
    raise AssertionError(name)


def _rule(data: dict[str, Any], name: str) -> dict[str, Any]:
    rule: dict[str, Any] = _find(data, name, "ClusterRole")[1]["rules"][0]
    return rule


# ------------------------------------------------------------------------------ end to end


def test_import_end_to_end(store: Store) -> None:
    """Through import_source, on SQLite and PostgreSQL: the model fragment, identities and
    tuples written; a service account bound to a ClusterRole reaching a namespace; an
    IdP human reaching a namespace through an IdP group; the same export again changes
    nothing; an account and a binding gone are removed on re-import."""
    store.human("alice", "alice@example.com")
    store.human("bob", "bob@example.com")
    text = RBAC.read_text() + NAMESPACES.read_text()
    r = store.imp("kubernetes", text)
    assert (r.source, r.scope, r.model_changed) == ("kubernetes", "prod-eu", True)
    assert r.identities.to_json()["added"] == 23
    worker = store.identity(SA + "payments-worker")
    assert worker.source == "import:kubernetes" and worker.owners == ("human:bob",)
    assert worker.attributes["links"] == {"kubernetes": "prod-eu/payments/worker"}
    # a service account bound to a ClusterRole: in its binding's namespace only …
    operator = SA + "payments-operator"
    assert store.check(operator, "delete", "k8s_namespace:prod-eu/payments")
    assert not store.check(operator, "get", "k8s_namespace:prod-eu/billing")
    # … or cluster-wide
    deployer = SA + "ci-deployer"
    assert store.check(deployer, "update", "k8s_resource:prod-eu/billing/deployments")
    why = store.explain(deployer, "update", "k8s_resource:prod-eu/billing/deployments")
    assert "k8s_clusterrole:prod-eu/deployer" in why
    # the IdP's group members (written by the IdP, not by the import) reach through it
    store.write("group:sre#member@human:bob")
    assert store.check("human:bob", "create", "k8s_resource:prod-eu/payments/pods/exec")
    assert "group:sre#member" in store.explain(
        "human:bob", "create", "k8s_resource:prod-eu/payments/pods/exec"
    )

    again = store.imp("kubernetes", text)
    assert again.identities.to_json() == {"added": 0, "changed": 0, "removed": 0}
    assert again.tuples.to_json() == {"added": 0, "changed": 0, "removed": 0}

    data = export()
    data["items"] = [
        it
        for it in data["items"]
        if not (it["kind"] == "ServiceAccount" and it["metadata"]["name"] == "operator")
        and it["metadata"]["name"] != "ci-deployer"
    ]
    data["items"] += json.loads(NAMESPACES.read_text())["items"]
    after = store.imp("kubernetes", data)
    assert after.identities.to_json()["removed"] == 1
    assert store.identity(operator).status == "deprovisioned"
    assert not store.check(deployer, "update", "k8s_resource:prod-eu/billing/deployments")
    assert store.check(deployer, "update", "k8s_resource:prod-eu/ci/configmaps")  # still
    # the IdP's own tuple is not the import's: it stays
    assert store.check("human:bob", "create", "k8s_resource:prod-eu/payments/pods/exec")


def test_docs_show_the_model_fragment() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "identity-sources.md").read_text()
    section = docs.split("### Kubernetes RBAC", 1)[1].split("\n### ", 1)[0]
    shown = {re.sub(r"\s+# .*$", "", line).rstrip() for line in section.splitlines()}
    lines = [line for line in MODEL_DSL.splitlines()[3:] if line.strip()]
    for line in lines:  # every type and every relation but the verbs after get
        if any(f"define {v}:" in line for v in VERBS if v != "get"):
            continue
        assert line in shown, line
    for verb in VERBS:
        assert f"`{verb}`" in section, verb


def test_group_subjects_are_the_groups_scim_provisions() -> None:
    assert group_id("Payments Team") == "payments-team"
    assert group_id("sre") == "sre"
    assert group_id("oidc:Platform Admins") == "oidc-platform-admins"
    data = export()
    _find(data, "sre-debug", "RoleBinding")[1]["subjects"] = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "SRE On-Call"}
    ]
    plan = plan_kubernetes(data, PolicyState.empty("s"))
    engine = plan_engine(plan, ["group:sre-on-call#member@human:bob"])
    assert engine.check("human:bob", "create", "k8s_resource:prod-eu/payments/pods/exec")

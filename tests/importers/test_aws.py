"""The AWS IAM importer at plan level: the sample exports of two accounts (an identity
account 111111111111 where people and CI live, a production account 222222222222 whose
roles trust it) planned against an identity plane with identity-provider humans, and the
graph those plans make, evaluated by the real engine over the base model merged with the
importer's fragment (every tuple validated as a write would validate it).

End-to-end through ``service.imports.import_source`` (SQLite and PostgreSQL): the
``test_import_*`` tests at the bottom."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from keyplane import FixedClock, Keyplane, Settings
from keyplane.errors import ValidationError
from keyplane.graph.compiled import CompiledModel
from keyplane.graph.engine import Engine
from keyplane.graph.index import TupleIndex
from keyplane.graph.tuples import Tuple, parse_tuple
from keyplane.importers.aws import DEFAULT_OWNER, MODEL, action_class, plan_aws, resource_id
from keyplane.importers.base import ImportPlan, get_importer, sanitize_id
from keyplane.policy.base_model import load_extended
from keyplane.policy.records import Identity
from keyplane.policy.state import PolicyState
from keyplane.service.imports import import_source, list_imports
from keyplane.service.scim import scim_create, scim_patch
from keyplane.storage.base import PolicyChanges

DATA = Path(__file__).parent / "data"
IDENTITY_ACCOUNT = "111111111111"
PROD_ACCOUNT = "222222222222"
PROD_DEPLOY = f"aws_role:{PROD_ACCOUNT}/prod-deploy"
# an IAM user named by an e-mail address: its identity id is the sanitised ARN
CAROL = f"human:aws-{sanitize_id(f'arn:aws:iam::{IDENTITY_ACCOUNT}:user/carol@example.com')}"


def export(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def identity_export() -> dict[str, Any]:
    return export(f"aws_identity_{IDENTITY_ACCOUNT}.json")


def prod_export() -> dict[str, Any]:
    return export(f"aws_prod_{PROD_ACCOUNT}.json")


def ident(
    kind: str, id_: str, *, source: str = "scim", attributes: Mapping[str, Any] | None = None
) -> Identity:
    return Identity(
        store_id="s",
        kind=kind,
        id=id_,
        display_name=id_,
        attributes=dict(attributes or {}),
        status="active",
        owners=(),
        orphaned=False,
        source=source,
        created_at=1.0,
        updated_at=1.0,
        last_seen=None,
        revision=1,
    )


def state_with(*identities: Identity) -> PolicyState:
    return PolicyState.empty("s").advanced(
        PolicyChanges(
            identities=tuple(identities),
            delegations=(),
            guardrail_set=None,
            store_policy=None,
            revision=1,
        )
    )


def idp() -> PolicyState:
    """The identity provider's people: alice and bob by e-mail (SCIM), dave linked to his
    IAM user explicitly (``links.aws``); carol, erin and frank are not in the IdP."""
    return state_with(
        ident("human", "alice", attributes={"emails": ["alice@example.com"], "userName": "alice"}),
        ident("human", "bob", attributes={"emails": ["bob@example.com"], "userName": "bob"}),
        ident(
            "human",
            "dave",
            source="api",
            attributes={"links": {"aws": f"arn:aws:iam::{IDENTITY_ACCOUNT}:user/dave"}},
        ),
    )


def engine(*plans: ImportPlan) -> Engine:
    model = CompiledModel.compile(load_extended(MODEL))
    index = TupleIndex()
    for plan in plans:
        owners = [Tuple(p.node, "owner", o) for p in plan.identities for o in p.owners]
        for t in [*plan.tuples, *owners]:
            model.validate_tuple(t)  # fits the model exactly as a write must
            index.add(t)
    return Engine(model, index)


def planned(plan: ImportPlan) -> dict[str, Any]:
    return {p.display_name: p for p in plan.identities}


def path_starts(paths: Iterable[Any]) -> set[str]:
    """The users the granting paths' last (direct) steps name: where each path starts."""
    starts: set[str] = set()

    def walk(steps: Iterable[Any]) -> None:
        for step in steps:
            if step.get("kind") == "direct":
                starts.add(step["tuple"].rpartition("@")[2])
            for branch in step.get("all_of", ()) or ():
                walk(branch)

    for path in paths:
        walk(path)
    return starts


def tuples_of(plan: ImportPlan) -> set[str]:
    return {str(t) for t in plan.tuples}


# ------------------------------------------------------------------------------ the plan


def test_registered_and_scoped_to_the_account() -> None:
    assert get_importer("aws") is plan_aws
    plan = plan_aws(identity_export(), idp())
    assert (plan.source, plan.scope) == ("aws", IDENTITY_ACCOUNT)
    assert plan_aws(prod_export(), idp()).scope == PROD_ACCOUNT
    assert "type aws_role" in plan.model and plan.model == MODEL


def test_the_documented_fragment_is_the_model() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "identity-sources.md").read_text()
    section = doc[doc.index("### AWS IAM") :]
    block = section[section.index("**The model fragment**") :]
    fenced = block.split("```\n", 2)[1]
    assert fenced.strip() == MODEL.split("schema 1.1\n", 1)[1].strip()


def test_users_resolve_to_idp_humans_else_people_else_service_accounts() -> None:
    plan = plan_aws(identity_export(), idp())
    mine = planned(plan)
    # alice (email tag, any case) and bob (email tag) are the IdP's humans; dave by links.aws
    assert "alice" not in mine and "bob" not in mine and "dave" not in mine
    assert f"aws_user:{IDENTITY_ACCOUNT}/alice#identity@human:alice" in tuples_of(plan)
    assert f"aws_user:{IDENTITY_ACCOUNT}/dave#identity@human:dave" in tuples_of(plan)
    assert f"aws_group:{IDENTITY_ACCOUNT}/deployers#member@human:bob" in tuples_of(plan)
    # people the IdP does not know: humans of the import (e-mail tag, or an e-mail user name)
    carol, frank = mine["carol@example.com"], mine["frank"]
    assert (carol.kind, carol.attributes["emails"]) == ("human", ["carol@example.com"])
    assert carol.id == CAROL.removeprefix("human:")
    assert carol.external_id == f"arn:aws:iam::{IDENTITY_ACCOUNT}:user/carol@example.com"
    assert (frank.kind, frank.attributes["emails"]) == ("human", ["frank@contractor.example.net"])
    assert frank.attributes["aws"]["path"] == "/contractors/" and not frank.owners
    # users without an e-mail are service accounts, owned by their owner tag's person
    assert mine["ci-deployer"].kind == "service_account"
    assert mine["ci-deployer"].owners == ("human:alice",)
    assert mine["backup-bot"].owners == (DEFAULT_OWNER,)
    # an owner tag naming a person of the import itself (erin is not in the IdP)
    assert mine["legacy-reporting"].owners == (mine["erin"].node,)
    assert mine["legacy-reporting"].kind == "service_account"  # the keyplane:kind tag
    # an owner tag no one answers to: the default owner, and a warning saying so
    assert mine["terraform"].owners == (DEFAULT_OWNER,)
    assert any("ghost@example.com" in w and "default owner" in w for w in plan.warnings)


def test_roles_are_workloads_or_service_accounts_with_their_trust() -> None:
    plan = plan_aws(prod_export(), idp())
    mine = planned(plan)
    t = tuples_of(plan)
    # a service principal: a workload
    ecs = mine["prod-orders-ecs"]
    assert ecs.kind == "workload" and ecs.owners == ("human:bob",)
    assert f"aws_role:{PROD_ACCOUNT}/prod-orders-ecs#identity@{ecs.node}" in t
    assert (
        f"aws_role:{PROD_ACCOUNT}/prod-orders-ecs#trusted@aws_service:ecs-tasks.amazonaws.com" in t
    )
    lam = f"aws_role:{PROD_ACCOUNT}/prod-orders-lambda"
    assert f"{lam}#trusted@aws_service:lambda.amazonaws.com" in t
    assert f"{lam}#trusted@aws_service:edgelambda.amazonaws.com" in t
    # people federated through SAML assume it: a service account (no workload identity)
    assert mine["okta-sso-poweruser"].kind == "service_account"
    assert (
        f"aws_role:{PROD_ACCOUNT}/okta-sso-poweruser#trusted"
        f"@aws_identity_provider:iam/{PROD_ACCOUNT}/saml-provider/Okta"
    ) in t
    # trusted AWS principals: an account root; a named principal of another account
    deploy = mine["prod-deploy"]
    assert deploy.kind == "service_account" and deploy.owners == ("human:alice",)
    assert deploy.attributes["aws"]["tags"]["env"] == "production"
    assert f"{PROD_DEPLOY}#trusted_account@aws_account:{IDENTITY_ACCOUNT}" in t
    admin = f"aws_role:{PROD_ACCOUNT}/prod-admin"
    assert f"{admin}#trusted_external@aws_user:{IDENTITY_ACCOUNT}/alice#identity" in t
    assert f"{admin}#external_account@aws_account:{IDENTITY_ACCOUNT}" in t
    ci = f"aws_role:{PROD_ACCOUNT}/prod-ci"
    assert f"{ci}#trusted_external@aws_role:{IDENTITY_ACCOUNT}/github-actions#session" in t
    # an NHI whose owner tag names nobody known: the default owner group
    assert mine["OrganizationAccountAccessRole"].owners == (DEFAULT_OWNER,)
    # an OIDC provider (GitHub Actions) makes the role a workload
    ident_plan = planned(plan_aws(identity_export(), idp()))
    assert ident_plan["github-actions"].kind == "workload"
    assert ident_plan["break-glass"].kind == "service_account"


def test_an_owner_who_left_owns_nothing() -> None:
    gone = dataclasses.replace(
        ident("human", "bob", attributes={"emails": ["bob@example.com"]}), status="deprovisioned"
    )
    plan = plan_aws(prod_export(), state_with(gone))
    assert planned(plan)["prod-orders-ecs"].owners == (DEFAULT_OWNER,)
    assert any("deprovisioned person" in w and "bob@example.com" in w for w in plan.warnings)
    deploy = planned(plan)["prod-deploy"]
    assert deploy.attributes["aws"]["last_used"] == "2026-11-27T16:02:11Z"


def test_an_owner_tag_may_name_a_person_later_in_the_export() -> None:
    data = identity_export()
    users = data["UserDetailList"]
    erin = next(u for u in users if u["UserName"] == "erin")
    users.remove(erin)
    users.append(erin)  # legacy-reporting (owner erin@example.com) now comes first
    mine = planned(plan_aws(data, idp()))
    assert mine["legacy-reporting"].owners == (mine["erin"].node,)


def test_a_role_linked_to_an_agent_is_that_agent() -> None:
    """An agent registered by hand, linked to the role it runs as (``links.aws``): the
    import names the agent as the role's identity and creates no NHI for it."""
    arn = f"arn:aws:iam::{PROD_ACCOUNT}:role/service-role/prod-orders-lambda"
    agent = ident("agent", "orders-assistant", source="api", attributes={"links": {"aws": arn}})
    plan = plan_aws(prod_export(), state_with(agent))
    assert "prod-orders-lambda" not in planned(plan)
    lam = f"aws_role:{PROD_ACCOUNT}/prod-orders-lambda"
    assert f"{lam}#identity@agent:orders-assistant" in tuples_of(plan)
    e = engine(plan)
    orders = f"aws_resource:dynamodb/eu-west-1/{PROD_ACCOUNT}/table/orders"
    assert e.check("agent:orders-assistant", "write", orders)


def test_policies_are_attached_and_classed_on_resources() -> None:
    t = tuples_of(plan_aws(prod_export(), idp()))
    deploy_policy = f"aws_policy:{PROD_ACCOUNT}/ProdDeploy"
    assert f"{deploy_policy}#attached@{PROD_DEPLOY}#session" in t
    # s3:GetObject / s3:PutObject on a pattern of objects → read and write on the pattern
    artifacts = f"aws_resource:{PROD_ACCOUNT}/s3/acme-prod-artifacts/*"
    assert f"{artifacts}#read@{deploy_policy}#attached" in t
    assert f"{artifacts}#write@{deploy_policy}#attached" in t
    assert f"{artifacts}#admin@{deploy_policy}#attached" not in t
    # iam:PassRole is a privilege escalation: admin on the role passed
    assert (
        f"aws_resource:iam/{PROD_ACCOUNT}/role/prod-orders-ecs#admin@{deploy_policy}#attached" in t
    )
    # AWS managed policies are per account (the same ARN grants in each account alone)
    admin_policy = f"aws_policy:{PROD_ACCOUNT}/aws/AdministratorAccess"
    assert f"aws_resource:{PROD_ACCOUNT}/*#admin@{admin_policy}#attached" in t
    assert f"aws_account:{PROD_ACCOUNT}#assume_any@{admin_policy}#attached" in t
    assert f"{admin_policy}#attached@aws_group:{PROD_ACCOUNT}/break-glass#member" in t
    # inline policies: aws_policy:<account>/<user|group|role>/<name>/<policy>
    inline = f"aws_policy:{PROD_ACCOUNT}/user/payments-integration/orders-read"
    orders = f"aws_resource:dynamodb/eu-west-1/{PROD_ACCOUNT}/table/orders"
    assert f"{orders}#read@{inline}#attached" in t and f"{orders}#write@{inline}#attached" not in t
    # a concrete resource is under the account's patterns that cover it
    assert f"{orders}#parent@aws_resource:{PROD_ACCOUNT}/dynamodb/*" in t
    assert f"{orders}#parent@aws_resource:{PROD_ACCOUNT}/*" in t
    # a policy nobody is attached to writes nothing
    assert not any("FullAccessNobodyUses" in x for x in t)


def test_every_tuple_has_a_text_form() -> None:
    """``object#relation@user`` parses back to the same tuple (an ``@`` of an IAM name is
    ``%40`` in an object id), so the CLI and the ledger can name every imported tuple."""
    for plan in (plan_aws(identity_export(), idp()), plan_aws(prod_export(), idp())):
        for t in plan.tuples:
            assert parse_tuple(str(t)) == t
    t = tuples_of(plan_aws(identity_export(), idp()))
    assert f"aws_user:{IDENTITY_ACCOUNT}/carol%40example.com#identity@" + CAROL in t
    long = "arn:aws:s3:::" + "b" * 300
    rid = resource_id(long, IDENTITY_ACCOUNT)
    assert len(rid) <= 200 and rid != resource_id(long + "c", IDENTITY_ACCOUNT)


def test_warnings_name_what_is_not_modelled() -> None:
    ident_w = "\n".join(plan_aws(identity_export(), idp()).warnings)
    prod_w = "\n".join(plan_aws(prod_export(), idp()).warnings)
    assert "Deny statement not modelled" in ident_w and "DenyDataDeletion" in ident_w
    assert "condition not modelled" in ident_w and "trust of role github-actions" in ident_w
    assert "NotAction taken as read and write" in prod_w and "PowerUserAccess" in prod_w
    assert "trust of role prod-deploy" in prod_w  # its MFA condition


def test_url_encoded_documents_plan_alike() -> None:
    """The raw IAM API answers documents URL-encoded; the CLI prints them decoded."""
    data = identity_export()
    encoded = copy.deepcopy(data)
    for r in encoded["RoleDetailList"]:
        if isinstance(r["AssumeRolePolicyDocument"], dict):
            r["AssumeRolePolicyDocument"] = quote(json.dumps(r["AssumeRolePolicyDocument"]))
    for p in encoded["Policies"]:
        for v in p["PolicyVersionList"]:
            if isinstance(v["Document"], dict):
                v["Document"] = quote(json.dumps(v["Document"]))
    a, b = plan_aws(data, idp()), plan_aws(encoded, idp())
    assert [str(t) for t in a.tuples] == [str(t) for t in b.tuples]
    assert a.identities == b.identities


def test_planning_is_deterministic() -> None:
    a, b = plan_aws(prod_export(), idp()), plan_aws(prod_export(), idp())
    assert [str(t) for t in a.tuples] == [str(t) for t in b.tuples]
    assert a.identities == b.identities and a.warnings == b.warnings


def test_default_owner_is_configurable() -> None:
    data = prod_export()
    data["DefaultOwner"] = "group:cloud-platform#member"
    mine = planned(plan_aws(data, state_with()))
    assert mine["OrganizationAccountAccessRole"].owners == ("group:cloud-platform#member",)
    data["DefaultOwner"] = "alice"
    with pytest.raises(ValidationError) as err:
        plan_aws(data, state_with())
    assert err.value.details["path"] == "DefaultOwner"


# ------------------------------------------------------------------------------ the graph


def test_who_can_assume_the_production_role() -> None:
    """Across both accounts: the production role trusts the identity account's root, so
    whoever the identity account lets call sts:AssumeRole on it may assume it — the
    deployers (an inline policy naming the role), and anyone with AdministratorAccess
    there, including through a role they may assume (dave via break-glass)."""
    e = engine(plan_aws(identity_export(), idp()), plan_aws(prod_export(), idp()))
    humans = e.list_users(PROD_DEPLOY, "can_assume", ["human"])
    assert sorted(humans) == ["human:alice", "human:bob", "human:dave"]
    for outsider in ("carol@example.com", "erin", "frank"):
        node = planned(plan_aws(identity_export(), idp()))[outsider].node
        assert not e.check(node, "can_assume", PROD_DEPLOY)
    nhis = e.list_users(PROD_DEPLOY, "can_assume", ["service_account"])
    assert "service_account:aws-arn-aws-iam-111111111111-user-ci-deployer" in nhis
    # the paths start at the IdP's humans, and say why
    why = e.explain("human:alice", "can_assume", PROD_DEPLOY)
    assert why.allowed and "human:alice" in path_starts(why.paths)
    text = json.dumps(why.paths)
    assert f"{PROD_DEPLOY}#trusted_account@aws_account:{IDENTITY_ACCOUNT}" in text
    assert f"aws_group:{IDENTITY_ACCOUNT}/deployers#member@human:alice" in text
    # dave is no deployer: his path runs through the break-glass role he may assume
    dave = json.dumps(e.explain("human:dave", "can_assume", PROD_DEPLOY).paths)
    assert f"aws_role:{IDENTITY_ACCOUNT}/break-glass" in dave
    assert (
        f"aws_role:{IDENTITY_ACCOUNT}/break-glass#trusted@aws_user:{IDENTITY_ACCOUNT}/dave" in dave
    )


def test_a_cross_account_trust_needs_both_sides() -> None:
    """prod-admin trusts alice's IAM user by ARN; AWS also requires alice's own account to
    allow the call. With only the production account imported nobody can assume it."""
    prod_only = engine(plan_aws(prod_export(), idp()))
    assert (
        prod_only.list_users(f"aws_role:{PROD_ACCOUNT}/prod-admin", "can_assume", ["human"]) == []
    )
    both = engine(plan_aws(identity_export(), idp()), plan_aws(prod_export(), idp()))
    assert both.list_users(f"aws_role:{PROD_ACCOUNT}/prod-admin", "can_assume", ["human"]) == [
        "human:alice"
    ]
    # role chaining across accounts: GitHub Actions' workload → prod-ci
    ci = both.list_users(f"aws_role:{PROD_ACCOUNT}/prod-ci", "can_assume", ["workload"])
    assert ci == ["workload:aws-arn-aws-iam-111111111111-role-github-actions"]


def test_the_roles_permissions_are_reached_through_can_assume() -> None:
    e = engine(plan_aws(identity_export(), idp()), plan_aws(prod_export(), idp()))
    artifacts = f"aws_resource:{PROD_ACCOUNT}/s3/acme-prod-artifacts/*"
    assert e.check("human:bob", "write", artifacts)  # bob → deployers → prod-deploy
    orders = f"aws_resource:dynamodb/eu-west-1/{PROD_ACCOUNT}/table/orders"
    # bob may assume prod-readonly (ReadOnlyAccess: dynamodb:Get* on "*"): read, not write
    assert e.check("human:bob", "read", orders)
    assert not e.check("human:bob", "write", orders)
    writers = e.list_users(orders, "write", ["workload"])
    assert sorted(writers) == [
        "workload:aws-arn-aws-iam-222222222222-role-prod-orders-ecs",
        "workload:aws-arn-aws-iam-222222222222-role-service-role-prod-orders-lambda",
    ]
    # a service principal reaches the table through the role it assumes
    assert e.check("aws_service:lambda.amazonaws.com", "write", orders)
    # the identity account's developers write their dev data, not production's
    dev = f"aws_resource:{IDENTITY_ACCOUNT}/s3/acme-dev-data/*"
    carol = planned(plan_aws(identity_export(), idp()))["carol@example.com"].node
    assert e.check(carol, "write", dev)
    assert not e.check(carol, "write", artifacts)


def test_reimport_without_the_role_loses_its_trust_and_access() -> None:
    data = prod_export()
    data["RoleDetailList"] = [r for r in data["RoleDetailList"] if r["RoleName"] != "prod-deploy"]
    before = plan_aws(prod_export(), idp())
    after = plan_aws(data, idp())
    gone = tuples_of(before) - tuples_of(after)
    assert f"{PROD_DEPLOY}#trusted_account@aws_account:{IDENTITY_ACCOUNT}" in gone
    assert f"aws_policy:{PROD_ACCOUNT}/ProdDeploy#attached@{PROD_DEPLOY}#session" in gone
    assert "prod-deploy" not in planned(after)
    e = engine(plan_aws(identity_export(), idp()), after)
    assert e.list_users(PROD_DEPLOY, "can_assume", ["human"]) == []


# ------------------------------------------------------------------------------ rules


@pytest.mark.parametrize(
    ("action", "cls"),
    [
        ("*", "admin"),
        ("s3:*", "admin"),
        ("s3:GetObject", "read"),
        ("s3:Get*", "read"),
        ("s3:ListBucket", "read"),
        ("ec2:Describe*", "read"),
        ("dynamodb:Query", "read"),
        ("dynamodb:BatchGetItem", "read"),
        ("iam:GenerateCredentialReport", "read"),
        ("s3:PutObject", "write"),
        ("dynamodb:UpdateItem", "write"),
        ("ecs:UpdateService", "write"),
        ("ec2:CreateSnapshot", "write"),
        ("s3:*Object", "write"),
        ("s3:Put*", "admin"),  # could be s3:PutBucketPolicy
        ("s3:PutBucketPolicy", "admin"),
        ("iam:PassRole", "admin"),
        ("iam:AttachRolePolicy", "admin"),
        ("iam:CreateAccessKey", "admin"),
        ("kms:CreateGrant", "admin"),
        ("lambda:AddPermission", "admin"),
        ("IAM:passrole", "admin"),  # action names are case-insensitive
    ],
)
def test_action_classes(action: str, cls: str) -> None:
    assert action_class(action) == cls


@pytest.mark.parametrize(
    ("arn", "rid"),
    [
        ("arn:aws:s3:::prod-data", "s3/prod-data"),
        ("arn:aws:s3:::prod-data/*", "111111111111/s3/prod-data/*"),
        (
            "arn:aws:dynamodb:eu-west-1:222222222222:table/orders",
            "dynamodb/eu-west-1/222222222222/table/orders",
        ),
        ("arn:aws:iam::222222222222:role/x", "iam/222222222222/role/x"),
        (
            "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/lambda/x:*",
            "111111111111/logs/eu-west-1/111111111111/log-group/aws/lambda/x/*",
        ),
        ("*", "111111111111/*"),
    ],
)
def test_resource_ids(arn: str, rid: str) -> None:
    assert resource_id(arn, "111111111111") == rid


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["RoleDetailList"][2].pop("RoleName"), "RoleDetailList[2].RoleName"),
        (lambda d: d["UserDetailList"][1].update(Arn=42), "UserDetailList[1].Arn"),
        (lambda d: d.update(GroupDetailList={}), "GroupDetailList"),
        (
            lambda d: d["RoleDetailList"][0].update(AssumeRolePolicyDocument="%7Bnot-json"),
            "RoleDetailList[0].AssumeRolePolicyDocument",
        ),
        (
            lambda d: d["UserDetailList"][0]["GroupList"].append(7),
            "UserDetailList[0].GroupList[2]",
        ),
        (
            lambda d: d["RoleDetailList"][0]["AssumeRolePolicyDocument"]["Statement"][0].update(
                Action=5
            ),
            "RoleDetailList[0].AssumeRolePolicyDocument.Statement[0].Action",
        ),
        (
            # another account's user in this export
            lambda d: d["UserDetailList"].append(
                {**d["UserDetailList"][0], "Arn": "arn:aws:iam::999999999999:user/mallory"}
            ),
            "UserDetailList[10].Arn",
        ),
        (lambda d: d["Policies"][0].update(PolicyVersionList=[]), "Policies[0].PolicyVersionList"),
    ],
)
def test_bad_exports_name_the_field(mutate: Any, path: str) -> None:
    data = identity_export()
    mutate(data)
    with pytest.raises(ValidationError) as err:
        plan_aws(data, idp())
    assert err.value.details["path"] == path
    assert err.value.message.startswith(f"{path}: ")


def test_not_an_export() -> None:
    for bad in ([], {"Users": []}, {"UserDetailList": [], "RoleDetailList": []}):
        with pytest.raises(ValidationError):
            plan_aws(bad, idp())


# ------------------------------------------------------------------------------ end to end


@pytest.fixture
def kp(storage_url: str) -> Iterator[Keyplane]:
    """A store (SQLite and PostgreSQL) whose people came from the identity provider over
    SCIM: alice and bob (their work e-mails), and the SCIM group of platform admins that
    owns AWS's unowned NHIs."""
    store = f"aws-{uuid.uuid4().hex[:10]}"
    settings = Settings(database_url=storage_url, poll_interval=0.0, default_store=store)
    k = Keyplane.open(settings=settings, clock=FixedClock(1_800_000_000.0))
    try:
        for name in ("alice", "bob"):
            scim_create(
                k.services,
                k.caller,
                store,
                "User",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name,
                    "displayName": name.title(),
                    "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
                    "active": True,
                },
                base_url="https://keyplane.test/scim/v2",
            )
        yield k
    finally:
        try:
            k.delete_store(store)
        finally:
            k.close()


def _import(k: Keyplane, data: Any, **kw: Any) -> Any:
    return import_source(k.services, k.caller, _store(k), "aws", data, **kw)


def _store(k: Keyplane) -> str:
    return k.services.settings.default_store


def test_import_who_can_assume_the_production_role(kp: Keyplane) -> None:
    first = _import(kp, identity_export())
    second = _import(kp, prod_export())
    assert (first.scope, second.scope) == (IDENTITY_ACCOUNT, PROD_ACCOUNT)
    assert first.model_changed and not second.model_changed  # one fragment, merged once
    # the IAM users alice and bob are the IdP's humans (no identity created for them)
    assert "human:alice" not in first.identities_added
    alice = kp.get_identity("human:alice")
    assert alice.source == "scim"
    carol = kp.get_identity(CAROL)
    assert carol.source == "import:aws"
    assert carol.attributes["links"]["aws"].endswith(":user/carol@example.com")
    deploy_nhi = kp.get_identity(f"service_account:aws-arn-aws-iam-{PROD_ACCOUNT}-role-prod-deploy")
    assert deploy_nhi.owners == ("human:alice",)  # the owner tag, resolved to the IdP's alice
    # dave is no one the IdP knows, but the identity account's import made him a person:
    # he owns the production NHIs tagged with his e-mail
    dave = f"human:aws-arn-aws-iam-{IDENTITY_ACCOUNT}-user-dave"
    readonly = kp.get_identity(f"service_account:aws-arn-aws-iam-{PROD_ACCOUNT}-role-prod-readonly")
    assert readonly.owners == (dave,)
    # who can assume it: people first, with the paths that grant it
    holders = list(kp.iter_who_can_access(PROD_DEPLOY, relation="can_assume", user_type="human"))
    by_user = {e.user: e for e in holders}
    # dave is not in the IdP: the human the import created for him (through break-glass)
    assert sorted(by_user) == ["human:alice", dave, "human:bob"]
    assert path_starts(by_user["human:alice"].paths) == {"human:alice"}
    assert f"aws_group:{IDENTITY_ACCOUNT}/deployers#member@human:alice" in json.dumps(
        by_user["human:alice"].paths
    )
    assert kp.check("human:alice", "can_assume", PROD_DEPLOY).allowed
    assert not kp.check(carol.node, "can_assume", PROD_DEPLOY).allowed
    # and what that role reaches, alice reaches: effective access through can_assume
    reach = {
        (e.relation, e.object)
        for e in kp.iter_effective_access("human:alice", object_type="aws_resource")
    }
    assert ("write", f"aws_resource:{PROD_ACCOUNT}/s3/acme-prod-artifacts/*") in reach


def test_import_again_changes_nothing_and_removal_is_applied(kp: Keyplane) -> None:
    _import(kp, identity_export())
    _import(kp, prod_export())
    again = _import(kp, prod_export())
    assert again.identities.total == 0 and again.tuples.total == 0
    data = prod_export()
    data["RoleDetailList"] = [r for r in data["RoleDetailList"] if r["RoleName"] != "prod-deploy"]
    gone = _import(kp, data)
    node = f"service_account:aws-arn-aws-iam-{PROD_ACCOUNT}-role-prod-deploy"
    assert gone.identities_removed == (node,)
    assert f"{PROD_DEPLOY}#trusted_account@aws_account:{IDENTITY_ACCOUNT}" in gone.tuples_removed
    assert kp.get_identity(node).status == "deprovisioned"
    assert not kp.check("human:alice", "can_assume", PROD_DEPLOY).allowed
    assert list(kp.iter_who_can_access(PROD_DEPLOY, relation="can_assume")) == []
    # the identity account's import is untouched by the production account's
    assert kp.check("human:alice", "can_assume", f"aws_role:{PROD_ACCOUNT}/prod-readonly").allowed


def test_import_a_bad_export_writes_nothing(kp: Keyplane) -> None:
    data = prod_export()
    data["RoleDetailList"][3]["AssumeRolePolicyDocument"] = "%7Bbroken"
    with pytest.raises(ValidationError) as err:
        _import(kp, data)
    assert err.value.details["path"] == "RoleDetailList[3].AssumeRolePolicyDocument"
    assert [i.node for i in kp.list_identities().items] == ["human:alice", "human:bob"]
    assert [r for r in list_imports(kp.services, kp.caller, _store(kp))] == []


def test_import_nhis_of_someone_who_leaves_are_orphaned(kp: Keyplane) -> None:
    """The identity provider deactivates alice: the AWS roles and service accounts whose
    only owner she was (by their owner tags) no longer have an owner — across systems."""
    _import(kp, identity_export())
    _import(kp, prod_export())
    scim_patch(
        kp.services,
        kp.caller,
        _store(kp),
        "User",
        "alice",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
        base_url="https://keyplane.test/scim/v2",
    )
    assert kp.get_identity("human:alice").status == "deprovisioned"
    orphans = {i.node for i in kp.list_identities(orphaned=True, page_size=100).items}
    assert {
        f"service_account:aws-arn-aws-iam-{PROD_ACCOUNT}-role-prod-deploy",
        f"service_account:aws-arn-aws-iam-{PROD_ACCOUNT}-role-prod-admin",
        f"service_account:aws-arn-aws-iam-{IDENTITY_ACCOUNT}-user-ci-deployer",
        f"workload:aws-arn-aws-iam-{IDENTITY_ACCOUNT}-role-github-actions",
    } <= orphans
    # bob's stay owned; the default owner group's are never orphans
    assert f"workload:aws-arn-aws-iam-{PROD_ACCOUNT}-role-prod-orders-ecs" not in orphans
    assert f"workload:aws-arn-aws-iam-{IDENTITY_ACCOUNT}-role-build-runner" not in orphans
    # re-importing hands them to the default owner group (an owner must be active), and
    # the warning says whose they were
    again = _import(kp, identity_export())
    assert again.identities.changed == 3 and again.tuples.total == 0
    ci = kp.get_identity(f"service_account:aws-arn-aws-iam-{IDENTITY_ACCOUNT}-user-ci-deployer")
    assert ci.owners == (DEFAULT_OWNER,) and not ci.orphaned
    assert any("deprovisioned person" in w and "alice@example.com" in w for w in again.warnings)

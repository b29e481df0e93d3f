"""A bearer token as the decision's input on every surface, against a real server (uvicorn
on loopback, SQLite): REST ``/v1/stores/{store}/decide`` and ``decide:batch``, AuthZEN
evaluation, evaluations and resource search (``subject.properties.token``), the SDK
(``Client``, ``AsyncClient``), the CLI (``keyplane decide --token -``) and the MCP
``decide`` tool (official MCP client). Each: allowed with the token alone, denied
``token_invalid`` once something the token was issued under is revoked — before it
expires — and the token never in the ledger."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from decide_env import TokenStore, build, claims_of
from typer.testing import CliRunner

from keyplane.cli.main import app
from keyplane.config import Settings
from keyplane.ledger.events import EventFilter
from keyplane.sdk import AsyncClient, Client
from keyplane.secrets import generate_master_key
from keyplane.service import delegations, identities, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.decisions import DecideItem
from keyplane.service.keys import bootstrap_admin
from keyplane.service.tokens import revoke_token_id
from live_server import serve

R = "document:roadmap"
S = "default"
pytestmark = pytest.mark.timeout(120)


class LiveTokens:
    def __init__(self, url: str, key: str, env: TokenStore) -> None:
        self.url, self.key, self.env = url, key, env
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)

    def never_recorded(self, *tokens: str) -> None:
        evs = self.env.svc.storage.read_events(S, filters=EventFilter())
        text = json.dumps([e.to_dict() for e in evs], default=str)
        for t in tokens:
            assert t.split(".")[2] not in text


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveTokens]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'server.db'}",
        poll_interval=0.0,
        master_key=generate_master_key(),
    )
    svc = Services.open(settings)
    try:
        stores.create_store(svc, Caller.system_caller(), "default", store_id=S)
        env = build(svc, S)
        _, key = bootstrap_admin(svc)
        with serve(svc) as url:
            lt = LiveTokens(url, key, env)
            try:
                yield lt
            finally:
                lt.http.close()
    finally:
        svc.close()


# ------------------------------------------------------------------------------ REST


def test_rest_decide_and_batch_with_a_token(live: LiveTokens) -> None:
    env = live.env
    t1, t2 = env.t1(), env.t2()
    r = live.post(f"/v1/stores/{S}/decide", {"action": "viewer", "resource": R, "token": t2})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["allowed"] is True
    assert got["delegation_ids"] == [env.delegation["planner"], env.delegation["worker"]]
    # the token's own subject (and chain) may be repeated; another one is a 400
    same = {"subject": "human:alice", "actors": ["agent:planner", "agent:worker"]}
    r = live.post(
        f"/v1/stores/{S}/decide", {"action": "viewer", "resource": R, "token": t2, **same}
    )
    assert r.json()["allowed"] is True
    r = live.post(
        f"/v1/stores/{S}/decide",
        {"subject": "human:bob", "action": "viewer", "resource": R, "token": t2},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
    r = live.post(f"/v1/stores/{S}/decide", {"action": "viewer", "resource": R})
    assert r.status_code == 400  # neither subject nor token
    batch = {
        "items": [
            {"action": "viewer", "resource": R, "token": t1, "correlation_id": "a"},
            {"action": "viewer", "resource": "document:q3", "token": t2, "correlation_id": "b"},
        ]
    }
    res = live.post(f"/v1/stores/{S}/decide:batch", batch).json()["results"]
    assert [(x["correlation_id"], x["allowed"], x["code"]) for x in res] == [
        ("a", True, "allowed"),
        ("b", False, "actor_lacks_permission"),
    ]
    # the worker's delegation is revoked: its token denies at once, planner's still holds
    delegations.revoke_delegation(env.svc, env.admin, S, env.delegation["worker"])
    r = live.post(f"/v1/stores/{S}/decide", {"action": "viewer", "resource": R, "token": t2})
    got = r.json()
    assert got["allowed"] is False and got["code"] == "token_invalid"
    assert got["reason"]["reason"] == "delegation_revoked"
    assert got["reason"]["jti"] == claims_of(t2)["jti"]
    res = live.post(f"/v1/stores/{S}/decide:batch", batch).json()["results"]
    assert [x["code"] for x in res] == ["allowed", "token_invalid"]
    live.never_recorded(t1, t2)


# ------------------------------------------------------------------------------ AuthZEN


def _evaluation(token: str, resource: str = "roadmap", **subject: Any) -> dict[str, Any]:
    return {
        "subject": {**subject, "properties": {"token": token, "team": "x"}},
        "action": {"name": "viewer"},
        "resource": {"type": "document", "id": resource},
    }


def test_authzen_evaluation_with_a_token(live: LiveTokens) -> None:
    env = live.env
    t2 = env.t2()
    for path in ("/access/v1/evaluation", f"/stores/{S}/access/v1/evaluation"):
        r = live.post(path, _evaluation(t2))
        assert r.status_code == 200, r.text
        assert r.json()["decision"] is True, r.json()
        # type and id may be given: they must be the token's subject
        assert live.post(path, _evaluation(t2, type="human", id="alice")).json()["decision"]
        r = live.post(path, _evaluation(t2, type="human", id="bob"))
        assert r.status_code == 400, r.text
        r = live.post(path, _evaluation(t2, type="human"))  # half a subject
        assert r.status_code == 400, r.text
    # without a token a subject still needs its type and id
    body = _evaluation(t2)
    body["subject"] = {"type": "human"}
    assert live.post("/access/v1/evaluation", body).status_code == 400
    r = live.post("/access/v1/evaluation", _evaluation(t2, resource="q3"))
    ctx = r.json()["context"]
    assert r.json()["decision"] is False
    assert ctx["reason_admin"]["code"] == "actor_lacks_permission"
    # the token is taken out of the subject properties (the rest stay)
    d = [
        e
        for e in env.svc.storage.read_events(S, filters=EventFilter(types=("decision.evaluate",)))
        if e.id == ctx["id"]
    ]
    assert d[0].details["input"]["subject_properties"] == {"team": "x"}
    assert d[0].details["token"]["jti"] == claims_of(t2)["jti"]
    # suspending the agent: the very next evaluation denies (the token has minutes left)
    identities.suspend_identity(env.svc, env.admin, S, "agent:worker")
    r = live.post("/access/v1/evaluation", _evaluation(t2))
    got = r.json()
    assert got["decision"] is False
    assert got["context"]["reason_admin"]["code"] == "token_invalid"
    assert got["context"]["keyplane"]["reason"]["reason"] == "identity_suspended"
    live.never_recorded(t2)


def test_authzen_evaluations_and_search_with_a_token(live: LiveTokens) -> None:
    env = live.env
    t1 = env.t1()
    t2 = env.t2(t1)
    body = {
        "subject": {"properties": {"token": t2}},
        "action": {"name": "viewer"},
        "evaluations": [
            {"resource": {"type": "document", "id": "roadmap"}},
            {"resource": {"type": "document", "id": "q3"}},
            {
                "subject": {"properties": {"token": t1}},
                "resource": {"type": "document", "id": "q3"},
            },
            {
                "subject": {"properties": {"token": "x.y.z"}},
                "resource": {"type": "document", "id": "roadmap"},
            },
        ],
        "options": {"include_context": True},
    }
    r = live.post(f"/stores/{S}/access/v1/evaluations", body)
    assert r.status_code == 200, r.text
    got = r.json()["evaluations"]
    assert [x["decision"] for x in got] == [True, False, True, False]
    assert got[1]["context"]["reason_admin"]["code"] == "actor_lacks_permission"
    assert got[3]["context"]["reason_admin"]["code"] == "token_invalid"
    # a resource search with the token: only what the whole chain may see
    search = {
        "subject": {"type": "human", "id": "alice", "properties": {"token": t2}},
        "action": {"name": "viewer"},
        "resource": {"type": "document"},
    }
    r = live.post(f"/stores/{S}/access/v1/search/resource", search)
    assert r.json()["results"] == [{"type": "document", "id": "roadmap"}]
    search["subject"]["properties"] = {"token": t1}  # type: ignore[index]
    r = live.post(f"/stores/{S}/access/v1/search/resource", search)
    assert {x["id"] for x in r.json()["results"]} == {"q3", "roadmap"}
    revoke_token_id(env.svc, env.admin, S, claims_of(t1)["jti"])
    got = live.post(f"/stores/{S}/access/v1/evaluations", body).json()["evaluations"]
    # t2 was exchanged from t1: both die with it
    assert [x["decision"] for x in got] == [False, False, False, False]
    assert got[0]["context"]["keyplane"]["reason"]["reason"] == "parent_token_revoked"
    live.never_recorded(t1, t2)


# ------------------------------------------------------------------------------ SDK


def test_sdk_clients_with_a_token(live: LiveTokens) -> None:
    env = live.env
    t2 = env.t2()
    with Client(live.url, live.key) as c:
        d = c.decide(None, "viewer", R, token=t2)
        assert d.allowed and d.delegation_ids == (
            env.delegation["planner"],
            env.delegation["worker"],
        )
        got = c.decide_batch(
            [
                DecideItem(None, "viewer", R, token=t2, correlation_id="a"),
                DecideItem(None, "viewer", "document:q3", token=t2, correlation_id="b"),
            ]
        )
        assert [x.code for x in got] == ["allowed", "actor_lacks_permission"]

    async def main() -> None:
        async with AsyncClient(live.url, live.key) as ac:
            assert (await ac.decide(None, "viewer", R, token=t2)).allowed
            delegations.revoke_delegation(env.svc, env.admin, S, env.delegation["planner"])
            d = await ac.decide(None, "viewer", R, token=t2)
            assert d.code == "token_invalid" and d.reason["reason"] == "delegation_revoked"

    anyio.run(main)


# ------------------------------------------------------------------------------ CLI


def test_cli_decide_with_a_token(live: LiveTokens) -> None:
    env = live.env
    t2 = env.t2()
    runner = CliRunner()
    environ = {"KEYPLANE_URL": live.url, "KEYPLANE_API_KEY": live.key}

    def decide(*args: str, stdin: str | None = None) -> tuple[int, str]:
        res = runner.invoke(app, ["decide", *args], env=environ, input=stdin)
        return res.exit_code, res.stdout

    rc, out = decide("--token", "-", "viewer", R, "--json", stdin=t2 + "\n")
    assert rc == 0, out
    assert json.loads(out)["allowed"] is True
    rc, out = decide("--token", t2, "human:alice", "viewer", "document:q3")
    assert rc == 3 and "actor_lacks_permission" in out
    rc, out = decide("viewer", R)  # no token, no subject: a usage error
    assert rc == 2
    revoke_token_id(env.svc, env.admin, S, claims_of(t2)["jti"])
    rc, out = decide("--token", "-", "viewer", R, stdin=t2 + "\n")
    assert rc == 3 and "token_invalid" in out and "revoked" in out
    live.never_recorded(t2)


# ------------------------------------------------------------------------------ MCP


def test_mcp_decide_tool_with_a_token(live: LiveTokens) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "identity_surfaces"))
    from test_mcp_identity_plane import ok, session

    env = live.env
    t2 = env.t2()

    async def main() -> None:
        async with session(live.url, live.key) as s:
            out, text = await ok(s, "decide", {"action": "viewer", "resource": R, "token": t2})
            assert out["allowed"] is True and text.startswith("allowed")
            credentials_revoked = env.credential["agent:worker"]
            from keyplane.service import credentials

            credentials.revoke_credential(env.svc, env.admin, S, credentials_revoked)
            out, text = await ok(s, "decide", {"action": "viewer", "resource": R, "token": t2})
            assert out["allowed"] is False and out["code"] == "token_invalid"
            assert "credential" in out["reason_user"]
            got, _ = await ok(
                s,
                "decide_batch",
                {"items": [{"action": "viewer", "resource": R, "token": t2}]},
            )
            assert got["results"][0]["code"] == "token_invalid"

    anyio.run(main)
    live.never_recorded(t2)


# ------------------------------------------------------------------------------ fast lane


def test_the_fast_lane_answers_token_requests_like_the_route(live: LiveTokens) -> None:
    """AuthZEN requests with a token are served by the fast lane (decided on a worker
    thread) and answered exactly as the FastAPI route answers them."""
    from keyplane.api import create_app

    env = live.env
    t1 = env.t1()
    t2 = env.t2(t1)
    lane_app = create_app(env.svc)
    route_app = create_app(env.svc, fast_path=False)
    single = _evaluation(t2)
    many = {
        "subject": {"properties": {"token": t2}},
        "action": {"name": "viewer"},
        "evaluations": [
            {"resource": {"type": "document", "id": "roadmap"}},
            {"resource": {"type": "document", "id": "q3"}},
            {
                "subject": {"properties": {"token": "x.y.z"}},
                "resource": {"type": "document", "id": "q3"},
            },
        ],
        "options": {"include_context": True},
    }

    def masked(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "<id>" if k == "id" else masked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [masked(v) for v in value]
        return value

    async def main() -> list[Any]:
        answers = []
        headers = {"Authorization": f"Bearer {live.key}"}
        for app_ in (lane_app, route_app):
            transport = httpx.ASGITransport(app=app_)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://kp.test", headers=headers
            ) as c:
                got = []
                for _ in range(2):  # the first authenticates the key for the lane's cache
                    for path, body in (
                        ("/access/v1/evaluation", single),
                        (f"/stores/{S}/access/v1/evaluations", many),
                    ):
                        r = await c.post(path, json=body)
                        assert r.status_code == 200, r.text
                        got.append(masked(r.json()))
                answers.append(got)
        return answers

    lane, route = anyio.run(main)
    assert lane == route
    assert lane[2]["decision"] is True
    assert [x["decision"] for x in lane[3]["evaluations"]] == [True, False, False]
    assert lane_app.state.fast_lane.served >= 2
    live.never_recorded(t2)

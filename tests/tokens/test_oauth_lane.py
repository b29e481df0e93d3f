"""The OAuth endpoints served by the fast lane (keyplane.api.fastpath, no FastAPI routing)
answer exactly as the FastAPI routes do (an app built with ``fast_path=False``): the same
status, body and headers for tokens, introspection, revocation and every kind of refusal
the lane meets before the grant (content type, size, client authentication, the app's own
body limit); and they are counted under their route's operation in the metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from oauth_env import GRANT_EXCHANGE, TT_ACCESS, Env, oauth_env

from keyplane.api import create_app

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

BASE = "http://kp.test"
_HEADERS = ("cache-control", "pragma", "content-type", "www-authenticate", "content-length")
_VARYING = {"access_token", "jti", "iat", "exp", "nbf"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with oauth_env(tmp_path) as e:
        yield e


def _shape(r: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """What must be equal between the two apps (token values and times masked)."""
    try:
        body: Any = r.json()
    except ValueError:
        body = r.content
    if isinstance(body, dict):
        body = {k: "<v>" if k in _VARYING else v for k, v in body.items()}
    headers = {h: r.headers[h] for h in _HEADERS if h in r.headers}
    if isinstance(body, dict) and "access_token" in body:
        headers.pop("content-length", None)  # a token's length varies with its jti
    return r.status_code, body, headers


async def _chunks(n: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"a=" + b"x" * 998


def test_the_lane_answers_oauth_requests_like_the_routes(env: Env) -> None:
    lane_app = create_app(env.svc, max_body_bytes=8_000)
    route_app = create_app(env.svc, max_body_bytes=8_000, fast_path=False)
    planner = env.basic("agent:planner")
    worker = env.basic("agent:worker")
    acme = env.basic("agent:planner", "acme")
    form = {"content-type": "application/x-www-form-urlencoded"}

    async def run(app: Any) -> tuple[list[tuple[int, Any, dict[str, str]]], dict[str, Any]]:
        out: list[tuple[int, Any, dict[str, str]]] = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE,
            timeout=10,
            headers={"x-request-id": "lane-test"},  # error envelopes carry it
        ) as c:

            async def post(path: str, data: Any, **kw: Any) -> httpx.Response:
                if isinstance(data, bytes | str):
                    kw["content"] = data
                else:
                    kw["data"] = data
                r = await c.post(path, **kw)
                out.append(_shape(r))
                return r

            cc = {"grant_type": "client_credentials"}
            r = await post("/oauth2/token", cc, auth=planner)
            assert r.status_code == 200, r.text
            subject = r.json()["access_token"]
            r = await post("/oauth2/token", cc, auth=worker)
            actor = r.json()["access_token"]
            r = await post("/stores/acme/oauth2/token", {**cc, "scope": "a b"}, auth=acme)
            assert r.status_code == 200 and r.json()["scope"] == "a b", r.text
            acme_token = r.json()["access_token"]
            exchange = {
                "grant_type": GRANT_EXCHANGE,
                "subject_token": subject,
                "subject_token_type": TT_ACCESS,
                "actor_token": actor,
                "actor_token_type": TT_ACCESS,
            }
            r = await post("/oauth2/token", exchange, auth=worker)
            assert r.status_code == 200 and r.json()["issued_token_type"] == TT_ACCESS, r.text
            exchanged = r.json()["access_token"]
            # client_secret_post; introspection by a client and by an API key
            secret_post = {"client_id": planner[0], "client_secret": planner[1]}
            r = await post("/oauth2/introspect", {"token": exchanged, **secret_post})
            assert r.json()["active"] is True and r.json()["act"] == {"sub": "agent:worker"}
            bearer = {"authorization": f"Bearer {env.reader_key}"}
            await post("/stores/acme/oauth2/introspect", {"token": acme_token}, headers=bearer)
            await post("/oauth2/introspect", {"token": acme_token}, auth=planner)  # other store
            # refusals before the grant
            await post("/oauth2/token", b'{"grant_type":"x"}', auth=planner,
                       headers={"content-type": "application/json"})  # fmt: skip
            await post("/oauth2/token", cc, auth=(planner[0], "kpcs_wrong"))
            await post("/oauth2/token", cc)  # no client authentication
            await post("/oauth2/token", {"grant_type": "password"}, auth=planner)
            await post("/oauth2/token", "grant_type=a&grant_type=b", auth=planner, headers=form)
            await post("/oauth2/token", {**cc, **secret_post}, auth=planner)  # two methods
            await post("/oauth2/introspect", {"token": subject}, headers={"authorization": "Bearer kp_nope"})  # fmt: skip
            await post(f"/stores/{'s' * 129}/oauth2/token", cc, auth=planner)
            await post("/stores/nosuch/oauth2/token", cc, auth=planner)
            await post("/oauth2/token", "x" * 7_000, auth=planner, headers=form)  # under 8,000
            # past the app's body limit: announced (refused before any endpoint) and streamed
            await post("/oauth2/token", "x" * 9_000, auth=planner, headers=form)
            r = await c.post("/oauth2/token", content=_chunks(9), auth=planner, headers=form)
            assert r.status_code == 413 and r.json()["error"]["code"] == "limit_exceeded"
            out.append((r.status_code, r.json()["error"]["code"], {}))
            # revocation, then the token is inactive
            r = await post("/oauth2/revoke", {"token": subject}, auth=planner)
            assert r.status_code == 200 and r.content == b""
            r = await post("/oauth2/introspect", {"token": subject}, auth=planner)
            assert r.json() == {"active": False}
            # not a POST: the route's 405
            r = await c.get("/oauth2/token")
            out.append((r.status_code, r.json(), {}))
        return out, {"subject": subject}

    async def main() -> tuple[Any, Any]:
        return await run(lane_app), await run(route_app)

    (lane, _), (route, _) = anyio.run(main)
    assert len(lane) == len(route)
    for i, (a, b) in enumerate(zip(lane, route, strict=True)):
        assert a == b, f"answer {i}: lane {a} != route {b}"
    statuses = [s for s, _, _ in lane]
    assert statuses.count(401) >= 3 and 413 in statuses and 404 in statuses
    # the lane answered the POSTs that reached an OAuth endpoint (not the one refused by
    # the body limit before it, nor the GET); the route app has no lane
    assert lane_app.state.fast_lane.oauth == len(lane) - 2
    assert not hasattr(route_app.state, "fast_lane")
    # metrics name the route's operation, not "unmatched"
    counted = {
        (s.labels["operation"], s.labels["status"])
        for m in lane_app.state.metrics.requests.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.value
    }
    assert ("oauth2_token", "200") in counted
    assert ("oauth2_token_store", "200") in counted
    assert ("oauth2_introspect_store", "200") in counted
    assert ("oauth2_revoke", "200") in counted

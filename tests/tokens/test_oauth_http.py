"""The OAuth endpoints over real HTTP with independent implementations (issue 6 §3–§5):
authlib's OAuth2Client obtains tokens (client_credentials with client_secret_basic,
client_secret_post and private_key_jwt; RFC 8693 token exchange), introspects and revokes
them; PyJWT's PyJWKClient and joserfc verify every issued token against the JWK Set the
server publishes. The server is uvicorn on loopback (tests/live_server.py), over SQLite and
over PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import OKPKey
from oauth_env import (
    GRANT_EXCHANGE,
    TT_ACCESS,
    TT_JWT,
    Env,
    oauth_env,
    verify_joserfc,
    verify_pyjwt,
)

from keyplane.sdk import Client
from keyplane.service import delegations, identities, policies
from keyplane.service.auth import Caller

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")  # joserfc, RFC 9864


@pytest.fixture
def env(tmp_path: Path, storage_url: str) -> Iterator[Env]:
    """Once on SQLite, once on PostgreSQL (tests/conftest.py)."""
    with oauth_env(tmp_path, storage_url) as e:
        yield e


def _metadata(env: Env, store: str = "default") -> dict[str, object]:
    suffix = "" if store == "default" else f"/stores/{store}"
    r = httpx.get(f"{env.url}/.well-known/oauth-authorization-server{suffix}")
    assert r.status_code == 200
    md: dict[str, object] = r.json()
    return md


def test_metadata_points_at_working_endpoints(env: Env) -> None:
    for store in ("default", "acme"):
        md = _metadata(env, store)
        assert md["issuer"] == env.issuer(store)
        assert md["token_endpoint"] == env.endpoint("token", store)
        assert md["introspection_endpoint"] == env.endpoint("introspect", store)
        assert md["revocation_endpoint"] == env.endpoint("revoke", store)
        assert md["grant_types_supported"] == ["client_credentials", GRANT_EXCHANGE]
        assert md["token_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]
        assert "EdDSA" in md["token_endpoint_auth_signing_alg_values_supported"]  # type: ignore[operator]
        # the advertised token endpoint issues tokens of the advertised issuer
        c = env.client("agent:planner", store=store)
        tok = c.fetch_token(str(md["token_endpoint"]), grant_type="client_credentials")
        assert verify_pyjwt(env, tok["access_token"], store=store)["iss"] == md["issuer"]


def test_the_default_store_under_its_store_path_is_its_own_issuer(env: Env) -> None:
    """Discovery at /.well-known/oauth-authorization-server/stores/default says issuer
    <base>/stores/default and endpoints under it: tokens from that token endpoint carry
    that iss (a discovering client checks it: RFC 8414 §3.3, RFC 9068 §4), those from
    /oauth2/token carry <base>, and both are the default store's tokens at either path."""
    r = httpx.get(f"{env.url}/.well-known/oauth-authorization-server/stores/default")
    assert r.status_code == 200
    md = r.json()
    assert md["issuer"] == f"{env.url}/stores/default"
    assert md["token_endpoint"] == f"{env.url}/stores/default/oauth2/token"
    planner = env.client("agent:planner")
    via_store = planner.fetch_token(str(md["token_endpoint"]), grant_type="client_credentials")
    via_root = planner.fetch_token(env.endpoint("token"), grant_type="client_credentials")
    # a resource server that discovered through the store path: PyJWT, md's keys and issuer
    keys = jwt.PyJWKClient(str(md["jwks_uri"]), cache_keys=False, cache_jwk_set=False)
    t1 = via_store["access_token"]
    c1 = jwt.decode(
        t1, keys.get_signing_key_from_jwt(t1).key, algorithms=["EdDSA", "ES256"],
        issuer=str(md["issuer"]), audience=str(md["issuer"]),
    )  # fmt: skip
    assert c1["iss"] == c1["aud"][0] == f"{env.url}/stores/default"
    c2 = verify_pyjwt(env, via_root["access_token"])  # the root issuer, <base>
    assert c2["iss"] == env.url
    # either token is active at either introspection endpoint (the same store)
    for token in (t1, via_root["access_token"]):
        for url in (env.endpoint("introspect"), f"{env.url}/stores/default/oauth2/introspect"):
            r = httpx.post(url, data={"token": token}, auth=env.basic("agent:planner"))
            assert r.status_code == 200 and r.json()["active"] is True, (url, r.text)
    # exchanged at the root endpoint: a subject token of the store path is accepted, the new
    # token names the root issuer
    worker = env.client("agent:worker")
    ex = worker.fetch_token(
        env.endpoint("token"), grant_type=GRANT_EXCHANGE, subject_token=t1,
        subject_token_type=TT_ACCESS, actor_token=env.token("agent:worker"),
        actor_token_type=TT_ACCESS,
    )  # fmt: skip
    assert verify_pyjwt(env, ex["access_token"])["act"] == {"sub": "agent:worker"}
    # revoked at the root endpoint by its client: dead at both paths
    r = httpx.post(env.endpoint("revoke"), data={"token": t1}, auth=env.basic("agent:planner"))
    assert r.status_code == 200
    for url in (env.endpoint("introspect"), f"{env.url}/stores/default/oauth2/introspect"):
        r = httpx.post(url, data={"token": t1}, auth=env.basic("agent:planner"))
        assert r.json() == {"active": False}
    # another store's path is not an alias: acme's tokens are not the default store's
    acme = env.token("agent:planner", store="acme")
    r = httpx.post(
        env.endpoint("introspect"), data={"token": acme}, auth=env.basic("agent:planner")
    )
    assert r.json() == {"active": False}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_client_credentials(env: Env, method: str) -> None:
    c = env.client("agent:planner", method)
    tok = c.fetch_token(env.endpoint("token"), grant_type="client_credentials")
    assert tok["token_type"] == "Bearer"
    assert 0 < tok["expires_in"] <= 300  # the store policy's access_token_seconds default
    access = tok["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["typ"] == "at+jwt" and header["alg"] in ("EdDSA", "ES256")
    claims = verify_pyjwt(env, access)
    assert claims == verify_joserfc(env, access)
    assert claims["sub"] == claims["client_id"] == "agent:planner"
    assert claims["aud"] == [env.issuer()]
    assert claims["exp"] - claims["iat"] == tok["expires_in"]
    assert "act" not in claims and "scope" not in claims
    # the credential it was obtained with: the secret's, or the registered key's
    creds = {
        r.credential.type: r.credential.id
        for r in env.svc.storage.list_credentials(
            "default", client_id="agent:planner", status=None, page_size=10,
            continuation_token=None,
        ).items
    }  # fmt: skip
    want = "private_key_jwt" if method == "private_key_jwt" else "client_secret"
    assert claims["kp_creds"] == [creds[want]]
    # the issuance is in the store's ledger, without the token
    [ev] = [e for e in env.events("token.issued") if e.details.get("jti") == claims["jti"]]
    assert (ev.outcome, ev.subject, ev.action) == ("allow", "agent:planner", "client_credentials")
    assert access not in repr(ev)


def test_authlib_s_stock_private_key_jwt(env: Env) -> None:
    """authlib's PrivateKeyJWT as it comes signs 3600-s assertions: accepted (no workaround
    needed), each once; one valid longer than MAX_ASSERTION_SECONDS is refused."""
    key = OKPKey.import_key(env.private_key)
    url = env.endpoint("token")
    stock = private_key_jwt_sign(key, client_id="agent:planner", token_endpoint=url, alg="EdDSA")
    claims = jwt.decode(stock, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600  # authlib's default lifetime
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": stock,
    }
    r = env.post("token", form)
    assert r.status_code == 200, r.text
    assert verify_pyjwt(env, r.json()["access_token"])["client_id"] == "agent:planner"
    assert env.post("token", form).status_code == 401  # single use
    # through authlib's client, several requests in a row (a fresh jti each time)
    c = OAuth2Client("agent:planner", key, token_endpoint_auth_method=PrivateKeyJWT(alg="EdDSA"))
    try:
        for _ in range(2):
            assert c.fetch_token(url, grant_type="client_credentials")["token_type"] == "Bearer"
    finally:
        c.close()
    too_long = private_key_jwt_sign(
        key, client_id="agent:planner", token_endpoint=url, alg="EdDSA", expires_in=7200
    )
    r = env.post("token", dict(form, client_assertion=too_long))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "assertion_too_long" in env.reasons("credential.auth_failed")


def test_responses_are_not_cached_and_errors_are_rfc6749(env: Env) -> None:
    r = env.post("token", {"grant_type": "client_credentials"}, auth=env.basic("agent:planner"))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    assert r.headers["content-type"].startswith("application/json")
    r = env.post("token", {"grant_type": "password"}, auth=env.basic("agent:planner"))
    assert r.status_code == 400 and r.headers["cache-control"] == "no-store"
    assert r.json()["error"] == "unsupported_grant_type"
    assert set(r.json()) <= {"error", "error_description"}


def test_requested_scope_audience_and_resource(env: Env) -> None:
    tok = env.client("agent:planner").fetch_token(
        env.endpoint("token"),
        grant_type="client_credentials",
        scope="document:roadmap#read calendar.read",
        audience="https://api.example",
    )
    # a scope is a set (RFC 6749 §3.3): the order is the server's
    assert set(tok["scope"].split()) == {"document:roadmap#read", "calendar.read"}
    claims = verify_pyjwt(env, tok["access_token"], audience="https://api.example")
    assert claims["scope"] == tok["scope"]
    assert claims["aud"] == ["https://api.example"]
    # several resource parameters (RFC 8707 / RFC 8693 allow repeating them)
    r = env.post(
        "token",
        "grant_type=client_credentials&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example",
        auth=env.basic("agent:planner"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    aud = jwt.decode(r.json()["access_token"], options={"verify_signature": False})["aud"]
    assert set(aud) == {"https://a.example", "https://b.example"}


def test_basic_credentials_are_form_urldecoded(env: Env) -> None:
    """RFC 6749 §2.3.1: the id and secret are form-urlencoded before base64 — authlib
    sends ``agent%3Aplanner``; a client that does not encode the colon-free parts works
    too, since decoding leaves them as they are."""
    import base64
    from urllib.parse import quote

    secret = env.secrets[("default", "agent:planner")]
    for raw in (
        f"{quote('agent:planner', safe='')}:{quote(secret, safe='')}",
        f"agent%3Aplanner:{secret}",
    ):
        auth = base64.b64encode(raw.encode()).decode()
        r = env.post(
            "token",
            {"grant_type": "client_credentials"},
            headers={"authorization": f"Basic {auth}"},
        )
        assert r.status_code == 200, r.text


def test_token_exchange_with_actor_token(env: Env) -> None:
    """agent:worker, holding a delegation from agent:planner, exchanges planner's token
    (with its own as actor_token) for a token whose sub is planner and act is worker."""
    subject = env.token("agent:planner", scope="document:*#read")
    actor = env.token("agent:worker")
    worker = env.client("agent:worker", "client_secret_post")
    tok = worker.fetch_token(
        env.endpoint("token"),
        grant_type=GRANT_EXCHANGE,
        subject_token=subject,
        subject_token_type=TT_ACCESS,
        actor_token=actor,
        actor_token_type=TT_ACCESS,
        scope="document:roadmap#read",
    )
    assert tok["issued_token_type"] == TT_ACCESS
    assert tok["token_type"] == "Bearer"
    assert tok["scope"] == "document:roadmap#read"
    claims = verify_pyjwt(env, tok["access_token"])
    assert claims == verify_joserfc(env, tok["access_token"])
    assert claims["sub"] == "agent:planner"
    assert claims["act"] == {"sub": "agent:worker"}
    assert claims["client_id"] == "agent:worker"
    assert claims["delegation_id"] == env.delegation["default"]
    sub_jti = jwt.decode(subject, options={"verify_signature": False})["jti"]
    act_jti = jwt.decode(actor, options={"verify_signature": False})["jti"]
    assert claims["kp_parents"][:2] == [sub_jti, act_jti]
    [ev] = [e for e in env.events("token.issued") if e.details.get("jti") == claims["jti"]]
    assert ev.action == "token_exchange" and tuple(ev.actor_chain) == ("agent:worker",)


def test_introspection(env: Env) -> None:
    access = env.token("agent:planner", scope="document:roadmap#read")
    claims = verify_pyjwt(env, access)
    worker = env.client("agent:worker")
    r = worker.introspect_token(env.endpoint("introspect"), token=access)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["active"] is True
    assert body["sub"] == "agent:planner" and body["client_id"] == "agent:planner"
    assert body["scope"] == "document:roadmap#read"
    assert body["exp"] == claims["exp"] and body["iss"] == env.issuer()
    assert body.get("token_type") in (None, "Bearer")
    # private_key_jwt at introspection: the assertion's aud may be this endpoint or the
    # token endpoint
    for aud in (None, env.endpoint("token")):
        c = env.client("agent:planner", "private_key_jwt")
        c.token_endpoint_auth_method.token_endpoint = aud
        c.revocation_endpoint_auth_method.token_endpoint = aud
        assert c.introspect_token(env.endpoint("introspect"), token=access).json()["active"]
    # garbage, and a token of another store: inactive, nothing else said
    for bad in ("not-a-token", env.token("agent:planner", store="acme")):
        r = worker.introspect_token(env.endpoint("introspect"), token=bad)
        assert r.status_code == 200 and r.json() == {"active": False}
    # an API key with can_read_identities may introspect; the answer is the same
    r = env.post(
        "introspect", {"token": access}, headers={"authorization": f"Bearer {env.reader_key}"}
    )
    assert r.status_code == 200 and r.json()["jti"] == claims["jti"]
    # no client authentication at all: 401 invalid_client
    r = env.post("introspect", {"token": access})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_revocation_by_the_client_kills_the_token_and_its_descendants(env: Env) -> None:
    subject = env.token("agent:planner", scope="document:*#read")
    worker = env.client("agent:worker")
    exchanged = worker.fetch_token(
        env.endpoint("token"),
        grant_type=GRANT_EXCHANGE,
        subject_token=subject,
        subject_token_type=TT_ACCESS,
        actor_token=env.token("agent:worker"),
        actor_token_type=TT_ACCESS,
    )["access_token"]
    intro = env.client("agent:worker")
    assert intro.introspect_token(env.endpoint("introspect"), token=exchanged).json()["active"]

    planner = env.client("agent:planner")
    r = planner.revoke_token(env.endpoint("revoke"), token=subject, token_type_hint="access_token")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    for t in (subject, exchanged):  # its descendant dies with it (kp_parents)
        assert intro.introspect_token(env.endpoint("introspect"), token=t).json() == {
            "active": False
        }
    jti = jwt.decode(subject, options={"verify_signature": False})["jti"]
    assert env.svc.storage.is_token_revoked("default", jti)
    assert any(jti in str(e.details) for e in env.events("token.revoked"))
    # RFC 7009 §2.2: revoking again, or revoking garbage, is still a 200
    assert planner.revoke_token(env.endpoint("revoke"), token=subject).status_code == 200
    assert planner.revoke_token(env.endpoint("revoke"), token="garbage").status_code == 200


def test_revocation_by_api_key(env: Env) -> None:
    access = env.token("agent:planner")
    jti = jwt.decode(access, options={"verify_signature": False})["jti"]
    # a reader key may not revoke
    r = env.post("revoke", {"token": access}, headers={"authorization": f"Bearer {env.reader_key}"})
    assert r.status_code == 403 and r.json()["error"] == "unauthorized_client"
    assert not env.svc.storage.is_token_revoked("default", jti)
    # an admin key revokes any token of the store
    r = env.post("revoke", {"token": access}, headers={"authorization": f"Bearer {env.admin_key}"})
    assert r.status_code == 200 and r.content == b""
    assert env.svc.storage.is_token_revoked("default", jti)


def test_store_endpoints_issue_the_store_s_tokens(env: Env) -> None:
    c = env.client("agent:planner", store="acme")
    tok = c.fetch_token(env.endpoint("token", "acme"), grant_type="client_credentials")
    claims = verify_pyjwt(env, tok["access_token"], store="acme")
    assert claims["iss"] == f"{env.url}/stores/acme"
    assert claims == verify_joserfc(env, tok["access_token"], store="acme")
    # acme's key is not default's: default's JWKS does not verify it
    with pytest.raises(jwt.PyJWKClientError):
        verify_pyjwt(env, tok["access_token"], store="default")
    # acme's client secret is not a client of the default store
    r = env.post(
        "token", {"grant_type": "client_credentials"}, auth=env.basic("agent:planner", "acme")
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"] == 'Basic realm="keyplane"'


def test_a_suspended_client_gets_no_token(env: Env) -> None:
    c = env.client("agent:worker")
    assert c.fetch_token(env.endpoint("token"), grant_type="client_credentials")
    identities.suspend_identity(env.svc, Caller.system_caller(), "default", "agent:worker")
    with pytest.raises(AuthlibOAuthError) as err:
        c.fetch_token(env.endpoint("token"), grant_type="client_credentials")
    assert err.value.error == "invalid_client"


def test_chain_from_a_person_s_idp_token(env: Env) -> None:
    """RFC 8693 delegation chain: alice's token from a trusted IdP (inline JWK Set in the
    store policy) → agent:planner (delegated by alice) → agent:worker (sub-delegated by
    planner). The last token's sub is alice and its act chain names worker, then planner
    (newest outermost); every hop is verified by PyJWT and joserfc."""
    system = Caller.system_caller()
    idp_key = ec.generate_private_key(ec.SECP256R1())
    idp_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(idp_key.public_key()))
    idp_jwk.update(kid="idp-1", alg="ES256", use="sig")
    policies.update_store_policy(
        env.svc, system, "default",
        trusted_issuers=[{
            "issuer": "https://idp.example", "jwks": {"keys": [idp_jwk]},
            "audience": env.issuer(), "subject_kind": "human",
        }],
    )  # fmt: skip
    root = delegations.create_delegation(
        env.svc, system, "default", delegator="human:alice", delegate="agent:planner",
        scope=[{"resource": "document:*", "actions": ["read"]}],
        expires_at=env.svc.clock.now() + 3600, max_depth=1,
    )  # fmt: skip
    sub = delegations.create_delegation(
        env.svc, system, "default", delegator="agent:planner", delegate="agent:worker",
        scope=[{"resource": "document:roadmap", "actions": ["read"]}],
        expires_at=env.svc.clock.now() + 1800, parent_id=root.id,
    )  # fmt: skip
    now = int(time.time())
    alice = jwt.encode(
        {"iss": "https://idp.example", "sub": "alice", "aud": env.issuer(),
         "iat": now, "exp": now + 600},
        idp_key, algorithm="ES256", headers={"kid": "idp-1"},
    )  # fmt: skip

    planner = env.client("agent:planner", "private_key_jwt")
    hop1 = planner.fetch_token(
        env.endpoint("token"),
        grant_type=GRANT_EXCHANGE,
        subject_token=alice,
        subject_token_type=TT_JWT,
        actor_token=env.token("agent:planner"),
        actor_token_type=TT_ACCESS,
    )["access_token"]
    c1 = verify_pyjwt(env, hop1)
    assert c1 == verify_joserfc(env, hop1)
    assert (c1["sub"], c1["act"], c1["delegation_id"]) == (
        "human:alice",
        {"sub": "agent:planner"},
        root.id,
    )

    worker = env.client("agent:worker", "client_secret_post")
    hop2 = worker.fetch_token(
        env.endpoint("token"),
        grant_type=GRANT_EXCHANGE,
        subject_token=hop1,
        subject_token_type=TT_ACCESS,
        actor_token=env.token("agent:worker"),
        actor_token_type=TT_ACCESS,
        scope="document:roadmap#read",
    )["access_token"]
    c2 = verify_pyjwt(env, hop2)
    assert c2 == verify_joserfc(env, hop2)
    assert c2["sub"] == "human:alice"
    assert c2["act"] == {"sub": "agent:worker", "act": {"sub": "agent:planner"}}
    assert c2["delegation_id"] == sub.id and c2["scope"] == "document:roadmap#read"
    assert c2["exp"] <= c1["exp"]
    assert c1["jti"] in c2["kp_parents"]
    # introspection shows the chain
    body = env.client("agent:intruder").introspect_token(env.endpoint("introspect"), token=hop2)
    assert body.json()["active"] is True and body.json()["act"] == c2["act"]
    # revoking the root delegation kills the whole chain at once
    delegations.revoke_delegation(env.svc, system, "default", root.id)
    for t in (hop1, hop2):
        r = env.client("agent:intruder").introspect_token(env.endpoint("introspect"), token=t)
        assert r.json() == {"active": False}


def test_private_key_jwt_names_the_store_s_endpoint(env: Env) -> None:
    """An assertion is for one endpoint: acme's token endpoint accepts one addressed to it,
    not one addressed to the default store's (nor the other way round)."""
    acme = env.client("agent:planner", "private_key_jwt", store="acme")
    tok = acme.fetch_token(env.endpoint("token", "acme"), grant_type="client_credentials")
    assert verify_pyjwt(env, tok["access_token"], store="acme")["sub"] == "agent:planner"
    misaddressed = env.client("agent:planner", "private_key_jwt", store="acme")
    misaddressed.token_endpoint_auth_method.token_endpoint = env.endpoint("token")
    with pytest.raises(AuthlibOAuthError) as err:
        misaddressed.fetch_token(env.endpoint("token", "acme"), grant_type="client_credentials")
    assert err.value.error == "invalid_client"
    assert "wrong_audience" in env.reasons("credential.auth_failed", "acme")


def test_request_id_reaches_the_ledger(env: Env) -> None:
    r = env.post(
        "token",
        {"grant_type": "client_credentials", "scope": "bad\\scope"},
        auth=env.basic("agent:planner"),
        headers={"x-request-id": "oauth-req-1"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    assert r.headers["x-request-id"] == "oauth-req-1"
    [ev] = [e for e in env.events("token.refused") if e.request_id == "oauth-req-1"]
    assert ev.subject == "agent:planner" and ev.reasons == ("scope_syntax",)
    r = env.post(
        "token", {"grant_type": "client_credentials"}, auth=env.basic("agent:planner"),
        headers={"x-request-id": "oauth-req-2"},
    )  # fmt: skip
    claims = verify_pyjwt(env, r.json()["access_token"])
    [ev] = [e for e in env.events("token.issued") if e.request_id == "oauth-req-2"]
    assert ev.details["jti"] == claims["jti"]


def test_behind_a_proxy_the_configured_issuer_names_everything(tmp_path: Path) -> None:
    """KEYPLANE_ISSUER: the tokens' iss, the metadata's endpoints and the audience a client
    assertion must name are the public URLs, whatever address the request came in on."""
    public = "https://auth.example.com"
    with oauth_env(tmp_path, issuer=public) as env:
        md = httpx.get(f"{env.url}/.well-known/oauth-authorization-server/stores/acme").json()
        assert md["token_endpoint"] == f"{public}/stores/acme/oauth2/token"
        # the client signs for the public URL, the request goes to the loopback address
        c = env.client("agent:planner", "private_key_jwt", store="acme")
        c.token_endpoint_auth_method.token_endpoint = md["token_endpoint"]
        tok = c.fetch_token(env.endpoint("token", "acme"), grant_type="client_credentials")
        claims = jwt.decode(tok["access_token"], options={"verify_signature": False})
        assert claims["iss"] == f"{public}/stores/acme" and claims["aud"] == [claims["iss"]]
        # an assertion for the address actually dialled is not for this server
        wrong = env.client("agent:planner", "private_key_jwt", store="acme")
        with pytest.raises(AuthlibOAuthError):
            wrong.fetch_token(env.endpoint("token", "acme"), grant_type="client_credentials")


def test_tokens_across_a_rotation_to_es256(env: Env) -> None:
    """After the store's key rotates to ES256 (REST, admin key), new tokens are ES256
    (raw r||s signatures, RFC 7518 §3.4) and verify with PyJWT and joserfc; tokens the
    retiring EdDSA key signed still verify and stay active."""
    before = env.token("agent:planner", store="acme")
    with Client(env.url, env.admin_key) as kp:
        kp.rotate_signing_key(store="acme", algorithm="ES256")
    after = env.token("agent:planner", store="acme")
    assert jwt.get_unverified_header(before)["alg"] == "EdDSA"
    assert jwt.get_unverified_header(after)["alg"] == "ES256"
    for t in (before, after):
        assert verify_pyjwt(env, t, store="acme") == verify_joserfc(env, t, store="acme")
        r = env.post(
            "introspect", {"token": t}, store="acme", auth=env.basic("agent:worker", "acme")
        )
        assert r.json()["active"] is True

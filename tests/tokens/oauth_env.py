"""A live Keyplane authorization server for the OAuth endpoint tests (test_oauth_http.py,
test_oauth_hostile.py): uvicorn on loopback over a SQLite file, two stores (``default`` and
``acme``) each with the identity model, ``human:alice`` owning two agents, client
credentials (a client secret each; ``agent:planner`` also a registered Ed25519 key for
``private_key_jwt``), and a delegation ``agent:planner`` → ``agent:worker``
(``document:*`` read). The server's clock is the real time plus an offset tests move
forward (:class:`ShiftedClock`), so clients that sign with the real time keep working.

Clients are authlib's (an independent OAuth implementation); tokens are checked with
PyJWT's ``PyJWKClient`` and joserfc against the published JWK Set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet, OKPKey

from keyplane.config import Settings
from keyplane.ledger.events import LedgerEvent
from keyplane.sdk import Client
from keyplane.secrets import generate_master_key
from keyplane.service import credentials, delegations, identities, models, stores
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.keys import authenticate, bootstrap_admin, create_key
from keyplane.service.refusals import flush_refusals
from live_server import serve

GRANT_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TT_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
TT_JWT = "urn:ietf:params:oauth:token-type:jwt"
ALGS = ["EdDSA", "ES256"]

MODEL = """\
model
  schema 1.1

type human

type agent
  relations
    define owner: [human]

type workload
  relations
    define owner: [human]

type document
  relations
    define owner: [human]
    define viewer: [human, agent] or owner
"""


class ShiftedClock:
    """The real time plus ``offset`` (moved by :meth:`advance`)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Env:
    url: str
    svc: Services
    clock: ShiftedClock
    admin_key: str
    reader_key: str
    secrets: dict[tuple[str, str], str]  # (store, client) -> client secret
    private_key: Ed25519PrivateKey  # agent:planner's registered key (both stores)
    delegation: dict[str, str]  # store -> the planner → worker delegation id
    clients: list[OAuth2Client] = field(default_factory=list)

    # -- URLs
    def issuer(self, store: str = "default") -> str:
        return self.url if store == "default" else f"{self.url}/stores/{store}"

    def endpoint(self, name: str, store: str = "default") -> str:
        return f"{self.issuer(store)}/oauth2/{name}"

    def jwks_uri(self, store: str = "default") -> str:
        return f"{self.issuer(store)}/.well-known/jwks.json"

    # -- clients
    def client(
        self, client_id: str, method: str = "client_secret_basic", store: str = "default"
    ) -> OAuth2Client:
        if method == "private_key_jwt":
            c = OAuth2Client(
                client_id,
                OKPKey.import_key(self.private_key),
                # authlib's own, as it comes: 3600 s assertions, a fresh jti each
                token_endpoint_auth_method=PrivateKeyJWT(alg="EdDSA"),
                revocation_endpoint_auth_method=PrivateKeyJWT(alg="EdDSA"),
            )
        else:
            c = OAuth2Client(
                client_id,
                self.secrets[(store, client_id)],
                token_endpoint_auth_method=method,
                revocation_endpoint_auth_method=method,
            )
        self.clients.append(c)
        return c

    def token(self, client_id: str = "agent:planner", store: str = "default", **params: Any) -> str:
        """A client_credentials token of ``client_id`` (client_secret_basic)."""
        tok = self.client(client_id, store=store).fetch_token(
            self.endpoint("token", store), grant_type="client_credentials", **params
        )
        access: str = tok["access_token"]
        return access

    def post(
        self, name: str, data: Mapping[str, Any] | str | bytes, *, store: str = "default",
        auth: tuple[str, str] | None = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        """A raw POST to an OAuth endpoint (form-encoded unless ``data`` is bytes/str)."""
        kw: dict[str, Any] = {"headers": dict(headers or {}), "auth": auth}
        if isinstance(data, str | bytes):
            kw["content"] = data
        else:
            kw["data"] = dict(data)
        return httpx.post(self.endpoint(name, store), timeout=10, **kw)

    def basic(self, client_id: str, store: str = "default") -> tuple[str, str]:
        return (client_id, self.secrets[(store, client_id)])

    # -- the ledger, read over REST with the admin key (the SDK's Client)
    def events(self, type_: str, store: str = "default") -> list[LedgerEvent]:
        flush_refusals(self.svc, force=True)  # write the coalesced windows' summaries
        out: list[LedgerEvent] = []
        cursor: str | None = None
        with Client(self.url, self.admin_key) as kp:
            while True:
                page = kp.query_events(store=store, types=[type_], cursor=cursor, limit=100)
                out.extend(page.events)
                cursor = page.next_cursor
                if cursor is None:
                    return out

    def refused(self, store: str = "default") -> list[LedgerEvent]:
        return self.events("token.refused", store)

    def reasons(self, type_: str, store: str = "default") -> list[str]:
        return [r for e in self.events(type_, store) for r in e.reasons]


def verify_pyjwt(
    env: Env, token: str, *, store: str = "default", audience: str | None = None
) -> dict[str, Any]:
    """Verify ``token`` the way a resource server using PyJWT does: key from the JWKS
    by ``kid``, signature, ``exp``/``iat``/``nbf``, ``iss`` and ``aud``."""
    jwks = jwt.PyJWKClient(env.jwks_uri(store), cache_keys=False, cache_jwk_set=False)
    key = jwks.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=ALGS,
        audience=audience or env.issuer(store),
        issuer=env.issuer(store),
        options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
    )
    return claims


def verify_joserfc(
    env: Env, token: str, *, store: str = "default", audience: str | None = None
) -> dict[str, Any]:
    """Verify ``token`` with joserfc against the JWK Set fetched over HTTP, with the
    claims registry (RFC 9068 §4: ``typ`` at+jwt, iss, aud, exp)."""
    keys = KeySet.import_key_set(httpx.get(env.jwks_uri(store)).json())
    tok = jose_jwt.decode(token, keys, algorithms=ALGS)
    assert tok.header["typ"] == "at+jwt"
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": env.issuer(store)},
        aud={"essential": True, "value": audience or env.issuer(store)},
        sub={"essential": True},
        jti={"essential": True},
        exp={"essential": True},
    )
    registry.validate(tok.claims)
    return dict(tok.claims)


def _seed_store(svc: Services, store: str, key: Ed25519PrivateKey) -> tuple[dict[str, str], str]:
    system = Caller.system_caller()
    stores.create_store(svc, system, store, store_id=store)
    models.write_model(svc, system, store, MODEL)
    identities.create_identity(svc, system, store, "human", "alice")
    secrets: dict[str, str] = {}
    for agent in ("planner", "worker", "intruder"):
        identities.create_identity(svc, system, store, "agent", agent, owners=["human:alice"])
        _, secret = credentials.create_credential(svc, system, store, f"agent:{agent}")
        assert secret is not None
        secrets[f"agent:{agent}"] = secret
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    credentials.create_credential(
        svc, system, store, "agent:planner", type="private_key_jwt", public_jwk=jwk
    )
    d = delegations.create_delegation(
        svc, system, store, delegator="agent:planner", delegate="agent:worker",
        scope=[{"resource": "document:*", "actions": ["read"]}],
        expires_at=svc.clock.now() + 3600,
    )  # fmt: skip
    return secrets, d.id


@contextmanager
def oauth_env(
    tmp_path: Path, database_url: str | None = None, *, issuer: str | None = None
) -> Iterator[Env]:
    """The seeded server on ``database_url`` (default: a SQLite file in ``tmp_path``);
    ``issuer``: KEYPLANE_ISSUER (the URLs a proxy in front would serve)."""
    clock = ShiftedClock()
    settings = Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'oauth.db'}",
        poll_interval=0.0,
        master_key=generate_master_key(),
        issuer=issuer,
    )
    svc = Services.open(settings, clock=clock)
    env: Env | None = None
    try:
        key = Ed25519PrivateKey.generate()
        all_secrets: dict[tuple[str, str], str] = {}
        dels: dict[str, str] = {}
        for store in ("default", "acme"):
            secrets, dels[store] = _seed_store(svc, store, key)
            all_secrets.update({(store, c): s for c, s in secrets.items()})
        _, admin_secret = bootstrap_admin(svc)
        admin = authenticate(svc, admin_secret)
        _, reader_secret = create_key(svc, admin, owner="test-reader", roles=["reader"])
        with serve(svc) as base:
            env = Env(base, svc, clock, admin_secret, reader_secret, all_secrets, key, dels)
            yield env
    finally:
        for c in env.clients if env else ():
            c.close()
        svc.close()

"""A store where a person's agents hold tokens, for the decision tests with a bearer token
(test_decide_tokens.py, test_decide_tokens_http.py).

``human:alice`` (signed in at a trusted IdP, ``https://idp.example``, whose Ed25519 key is
in the store policy as an inline JWK Set) delegates ``viewer`` on every document for
``planning`` to ``agent:planner`` (one further hop allowed), which sub-delegates to
``agent:worker``. Both agents have a client secret. Every token is minted by engineer B's
service functions: the agent's ``client_credentials`` token, the exchange of Alice's IdP
token for one that says "planner for alice" (``t1``), and the worker's exchange of ``t1``
for "worker for planner for alice" (``t2``).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keyplane.policy.records import TrustedIssuer
from keyplane.service import credentials, delegations, identities, models, policies, tuples
from keyplane.service.auth import Caller
from keyplane.service.context import Services
from keyplane.service.credentials import AuthenticatedClient, authenticate_client
from keyplane.service.tokens import (
    TT_ACCESS,
    TT_JWT,
    exchange_token,
    issue_client_credentials,
    token_issuer,
)

IDP = "https://idp.example"
MODEL = """\
model
  schema 1.1

type human

type agent
  relations
    define owner: [human]

type document
  relations
    define viewer: [human, agent]
"""


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class TokenStore:
    svc: Services
    store: str
    admin: Caller
    idp_key: Ed25519PrivateKey
    secrets: dict[str, str] = field(default_factory=dict)  # client -> secret
    credential: dict[str, str] = field(default_factory=dict)  # client -> credential id
    delegation: dict[str, str] = field(default_factory=dict)  # "planner" / "worker" -> id
    revision: int = 0

    @property
    def issuer(self) -> str:
        return token_issuer(self.svc, self.store)

    def client(self, node: str) -> AuthenticatedClient:
        return authenticate_client(
            self.svc, self.store, node, secret=self.secrets[node],
            token_endpoint_url=self.issuer + "/oauth2/token",
        )  # fmt: skip

    def own_token(self, node: str, **kw: Any) -> str:
        """``node``'s client_credentials token."""
        return issue_client_credentials(
            self.svc, self.store, self.client(node), issuer=self.issuer, **kw
        ).access_token

    def idp_token(self, sub: str = "alice", **claims: Any) -> str:
        now = int(self.svc.clock.now())
        body = {"iss": IDP, "sub": sub, "aud": "keyplane", "iat": now, "exp": now + 600}
        return jwt.encode({**body, **claims}, self.idp_key, algorithm="EdDSA",
                          headers={"kid": "idp-1"})  # fmt: skip

    def t1(self, **kw: Any) -> str:
        """planner for alice (exchange of Alice's IdP token)."""
        kw.setdefault("purpose", "planning")
        return exchange_token(
            self.svc, self.store, self.client("agent:planner"), issuer=self.issuer,
            subject_token=self.idp_token(), subject_token_type=TT_JWT,
            actor_token=self.own_token("agent:planner"), actor_token_type=TT_ACCESS, **kw,
        ).access_token  # fmt: skip

    def t2(self, t1: str | None = None, **kw: Any) -> str:
        """worker for planner for alice (exchange of ``t1``)."""
        return exchange_token(
            self.svc, self.store, self.client("agent:worker"), issuer=self.issuer,
            subject_token=t1 or self.t1(), subject_token_type=TT_ACCESS,
            actor_token=self.own_token("agent:worker"), actor_token_type=TT_ACCESS, **kw,
        ).access_token  # fmt: skip


def claims_of(token: str) -> dict[str, Any]:
    seg = token.split(".")[1]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    return out


def build(svc: Services, store: str) -> TokenStore:
    """The store described in the module docstring (the store must exist)."""
    admin = Caller.system_caller()
    key = Ed25519PrivateKey.generate()
    env = TokenStore(svc, store, admin, key)
    models.write_model(svc, admin, store, MODEL)
    identities.create_identity(svc, admin, store, "human", "alice")
    for agent in ("planner", "worker"):
        identities.create_identity(svc, admin, store, "agent", agent, owners=["human:alice"])
        cred, secret = credentials.create_credential(svc, admin, store, f"agent:{agent}")
        assert secret is not None
        env.secrets[f"agent:{agent}"] = secret
        env.credential[f"agent:{agent}"] = cred.id
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(pub), "kid": "idp-1", "alg": "EdDSA"}
    policies.update_store_policy(
        svc, admin, store,
        trusted_issuers=[TrustedIssuer(issuer=IDP, jwks={"keys": [jwk]}, audience="keyplane")],
    )  # fmt: skip
    expires = svc.clock.now() + 3600
    d1 = delegations.create_delegation(
        svc, admin, store, delegator="human:alice", delegate="agent:planner",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        purposes=["planning"], expires_at=expires, max_depth=1,
    )  # fmt: skip
    d2 = delegations.create_delegation(
        svc, admin, store, delegator="agent:planner", delegate="agent:worker",
        scope=[{"actions": ["viewer"], "resource": "document:*"}],
        purposes=["planning"], expires_at=expires, parent_id=d1.id,
    )  # fmt: skip
    env.delegation = {"planner": d1.id, "worker": d2.id}
    writes = [
        f"document:roadmap#viewer@{u}" for u in ("human:alice", "agent:planner", "agent:worker")
    ] + ["document:q3#viewer@human:alice", "document:q3#viewer@agent:planner"]
    env.revision = tuples.write_tuples(svc, admin, store, writes=writes).revision
    return env


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())

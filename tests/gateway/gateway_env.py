"""A store set up for the gateway's runtime and end-to-end tests (RUNTIME's tests).

``human:alice`` (signed in at a trusted IdP whose Ed25519 key is in the store policy) and
``human:carol`` (a contractor: ``employment: contractor``) each own an agent
(``agent:planner``, ``agent:helper``) holding a client secret, and each delegates to it
``can_call`` on every gateway tool (``mcp_tool:*``). A downstream server ``docs`` (the
real MCP server of ``downstream_server.py``) is registered with a bearer secret; its tools
are discovered and ``echo``, ``create_ticket`` and ``delete_repo`` approved; toolset
``dev`` holds them and is granted to both humans and both agents. ``whoami`` stays
pending.

Tokens: an agent's own (``client_credentials``) and "agent for its human" (RFC 8693
exchange of the human's IdP token, the agent's own token as actor token), minted by the
service functions — or over HTTP by the e2e test.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keyplane.policy.records import TrustedIssuer
from keyplane.service import credentials, delegations, identities, models, policies, stores
from keyplane.service import gateway as gw
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
STORE = "acme"
SECRET = "downstream-s3cret-value"
MODEL = """\
model
  schema 1.1

type document
  relations
    define viewer: [human, agent]
"""
APPROVED = ("echo", "create_ticket", "delete_repo")
#: whose agent: human -> agent
AGENTS = {"human:alice": "agent:planner", "human:carol": "agent:helper"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class GatewayStore:
    svc: Services
    store: str
    idp_key: Ed25519PrivateKey
    secrets: dict[str, str] = field(default_factory=dict)  # agent -> client secret
    delegation: dict[str, str] = field(default_factory=dict)  # agent -> delegation id

    admin = Caller.system_caller()

    @property
    def issuer(self) -> str:
        return token_issuer(self.svc, self.store)

    def client(self, node: str) -> AuthenticatedClient:
        return authenticate_client(
            self.svc, self.store, node, secret=self.secrets[node],
            token_endpoint_url=self.issuer + "/oauth2/token",
        )  # fmt: skip

    def own_token(self, node: str, **kw: Any) -> str:
        return issue_client_credentials(
            self.svc, self.store, self.client(node), issuer=self.issuer, **kw
        ).access_token

    def idp_token(self, sub: str) -> str:
        now = int(self.svc.clock.now())
        body = {"iss": IDP, "sub": sub, "aud": "keyplane", "iat": now, "exp": now + 600}
        return jwt.encode(body, self.idp_key, algorithm="EdDSA", headers={"kid": "idp-1"})

    def acting_token(self, human: str, **kw: Any) -> str:
        """The human's agent acting for the human (RFC 8693 exchange)."""
        agent = AGENTS[human]
        return exchange_token(
            self.svc, self.store, self.client(agent), issuer=self.issuer,
            subject_token=self.idp_token(human.partition(":")[2]), subject_token_type=TT_JWT,
            actor_token=self.own_token(agent), actor_token_type=TT_ACCESS, **kw,
        ).access_token  # fmt: skip


def claims_of(token: str) -> dict[str, Any]:
    seg = token.split(".")[1]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    return out


def build(svc: Services, url: str, *, store: str = STORE) -> GatewayStore:
    """The store of the module docstring, its server ``docs`` at ``url`` (an HTTP
    downstream server requiring ``Authorization: Bearer <SECRET>``)."""
    admin = Caller.system_caller()
    key = Ed25519PrivateKey.generate()
    env = GatewayStore(svc, store, key)
    stores.create_store(svc, admin, "Acme", store_id=store)
    models.write_model(svc, admin, store, MODEL)
    identities.create_identity(svc, admin, store, "human", "alice")
    identities.create_identity(
        svc, admin, store, "human", "carol", attributes={"employment": "contractor"}
    )
    expires = svc.clock.now() + 3600
    for human, agent in AGENTS.items():
        identities.create_identity(svc, admin, store, "agent", agent.partition(":")[2],
                                   owners=[human])  # fmt: skip
        _, secret = credentials.create_credential(svc, admin, store, agent)
        assert secret is not None
        env.secrets[agent] = secret
        d = delegations.create_delegation(
            svc, admin, store, delegator=human, delegate=agent,
            scope=[{"actions": ["can_call"], "resource": "mcp_tool:*"}], expires_at=expires,
        )  # fmt: skip
        env.delegation[agent] = d.id
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(pub), "kid": "idp-1", "alg": "EdDSA"}
    policies.update_store_policy(
        svc, admin, store,
        trusted_issuers=[TrustedIssuer(issuer=IDP, jwks={"keys": [jwk]}, audience="keyplane")],
    )  # fmt: skip
    gw.register_server(
        svc, admin, store, "docs", transport="http", url=url,
        credential={"kind": "bearer"}, secret=SECRET,
    )  # fmt: skip
    for tool in APPROVED:
        gw.update_tool(svc, admin, store, "docs", tool, status="enabled")
    gw.put_toolset(svc, admin, store, "dev", [f"docs/{t}" for t in APPROVED])
    from keyplane.service import tuples

    grants = [f"toolset:dev#member@{n}" for pair in AGENTS.items() for n in pair]
    tuples.write_tuples(svc, admin, store, writes=grants)
    return env

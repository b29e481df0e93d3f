"""``keyplane.sdk.oauth.TokenClient`` — an OAuth 2.0 client of Keyplane's token endpoints,
for agents and workloads holding a client credential (not an API key).

>>> with TokenClient("https://kp.example", "agent:bot", client_secret="kpcs_…") as tc:  # doctest: +SKIP
...     token = tc.client_credentials(scope="document:*#read")["access_token"]
...     for_alice = tc.exchange(alice_token, actor_token=token)   # acting for alice
...     tc.introspect(for_alice["access_token"])["active"]
True

* Grants: ``client_credentials`` (RFC 6749 §4.4) and token exchange (RFC 8693 §2.1).
  Introspection (RFC 7662) and revocation (RFC 7009) of the client's own tokens.
* Client authentication: ``client_secret_basic`` (RFC 6749 §2.3.1: id and secret
  form-urlencoded, then Basic) with ``client_secret``; ``private_key_jwt`` (RFC 7523 §2.2)
  with ``private_key`` — an Ed25519, P-256 or RSA private key (a ``cryptography`` key, PEM
  text or bytes, or a private JWK), signing a fresh assertion (``iss`` = ``sub`` = the
  client id, ``aud`` = the endpoint URL called, a random ``jti``, 60 s) for every request.
* Endpoints: ``{base_url}/oauth2/…`` for the server's default store, else
  ``{base_url}/stores/{store}/oauth2/…``.
* Answers are the endpoints' JSON bodies, as dicts. An OAuth error answer raises
  :class:`OAuthResponseError` (``error``, ``description``, ``status``); a connection failure
  :class:`keyplane.errors.TransportError`. Synchronous, over httpx; nothing is retried (a
  token request is not idempotent, and an assertion is single-use).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, quote_plus

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keyplane import __version__
from keyplane.errors import TransportError
from keyplane.sdk.client import transport_error

__all__ = [
    "ASSERTION_TYPE",
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_TOKEN_EXCHANGE",
    "TT_ACCESS",
    "TT_JWT",
    "OAuthResponseError",
    "TokenClient",
    "client_assertion",
    "load_private_key",
]

GRANT_CLIENT_CREDENTIALS: Final = "client_credentials"
GRANT_TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
TT_ACCESS: Final = "urn:ietf:params:oauth:token-type:access_token"
TT_JWT: Final = "urn:ietf:params:oauth:token-type:jwt"
ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: lifetime of a client assertion (the server refuses much longer ones)
ASSERTION_SECONDS = 60

SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class OAuthResponseError(Exception):
    """The endpoint answered an OAuth error (RFC 6749 §5.2): ``error`` (e.g.
    ``invalid_grant``), ``description`` and the HTTP ``status``."""

    def __init__(self, error: str, description: str | None, status: int) -> None:
        self.error, self.description, self.status = error, description, status
        super().__init__(f"{error}: {description}" if description else error)


# ---------------------------------------------------------------------------- keys


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("a JWK member is not a base64url string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_b64d(jwk.get(name)), "big")


def _from_jwk(jwk: Mapping[str, Any]) -> SigningKey:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if "d" not in jwk:
        raise ValueError("the JWK holds no private key (no `d`)")
    if kty == "OKP" and crv == "Ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(_b64d(jwk["d"]))
    if kty == "EC" and crv == "P-256":
        return ec.derive_private_key(_int(jwk, "d"), ec.SECP256R1())
    if kty == "RSA":
        public = rsa.RSAPublicNumbers(_int(jwk, "e"), _int(jwk, "n"))
        return rsa.RSAPrivateNumbers(
            p=_int(jwk, "p"), q=_int(jwk, "q"), d=_int(jwk, "d"), dmp1=_int(jwk, "dp"),
            dmq1=_int(jwk, "dq"), iqmp=_int(jwk, "qi"), public_numbers=public,
        ).private_key()  # fmt: skip
    raise ValueError("the private key must be Ed25519 (OKP), P-256 (EC) or RSA")


def load_private_key(key: Any) -> SigningKey:
    """A signing key from a ``cryptography`` private key, PEM text/bytes, or a private JWK
    (a mapping or its JSON text). Raises ValueError for anything else."""
    if isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("an EC private key must be on P-256")
        return key
    if isinstance(key, Mapping):
        return load_private_key(_from_jwk(key))
    if isinstance(key, str | bytes):
        raw = key.encode() if isinstance(key, str) else key
        if raw.lstrip().startswith(b"{"):
            return load_private_key(_from_jwk(json.loads(raw)))
        return load_private_key(serialization.load_pem_private_key(raw, password=None))
    raise ValueError(f"cannot use a {type(key).__name__} as a private key")


def _alg(key: SigningKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    return "RS256"


def _sign(key: SigningKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        # JWS ES256 (RFC 7518 §3.4): R || S, 32 bytes each, not DER
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def client_assertion(
    key: SigningKey,
    client_id: str,
    audience: str,
    *,
    kid: str | None = None,
    now: float | None = None,
    lifetime: int = ASSERTION_SECONDS,
) -> str:
    """An RFC 7523 §3 client assertion: a JWT signed by ``key`` with ``iss`` = ``sub`` =
    ``client_id``, ``aud`` = ``audience`` (the endpoint URL), a random ``jti``."""
    issued = int(time.time() if now is None else now)
    header: dict[str, Any] = {"alg": _alg(key), "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": issued,
        "exp": issued + lifetime,
    }
    signing_input = ".".join(
        _b64e(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    ).encode("ascii")
    return signing_input.decode("ascii") + "." + _b64e(_sign(key, signing_input))


# ---------------------------------------------------------------------------- client


class TokenClient:
    """An OAuth client of one Keyplane store's token, introspection and revocation
    endpoints. Give ``client_secret`` or ``private_key`` (not both)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | None = None,
        private_key: Any = None,
        store: str | None = None,
        *,
        kid: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (client_secret is None) == (private_key is None):
            raise ValueError("give exactly one of client_secret and private_key")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.store = store
        self._secret = client_secret
        self._key = None if private_key is None else load_private_key(private_key)
        if kid is None and isinstance(private_key, Mapping):
            kid = private_key.get("kid")
        self._kid = kid
        self._timeout = timeout
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"user-agent": f"keyplane-python/{__version__}", "accept": "application/json"},
        )

    def __repr__(self) -> str:  # never the secret or the key
        method = "client_secret_basic" if self._secret is not None else "private_key_jwt"
        return f"TokenClient({self.base_url!r}, {self.client_id!r}, {method}, store={self.store!r})"

    def __enter__(self) -> TokenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # endpoints -----------------------------------------------------------------------

    def endpoint(self, name: str) -> str:
        """The URL of ``name`` (``token``, ``introspect`` or ``revoke``)."""
        if self.store is None:
            return f"{self.base_url}/oauth2/{name}"
        return f"{self.base_url}/stores/{quote(self.store, safe='')}/oauth2/{name}"

    @property
    def token_endpoint(self) -> str:
        return self.endpoint("token")

    # grants --------------------------------------------------------------------------

    def client_credentials(
        self,
        *,
        scope: str | Sequence[str] | None = None,
        audience: Sequence[str] = (),
        resource: Sequence[str] = (),
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """A token for the client itself (RFC 6749 §4.4): the RFC 6749 §5.1 response."""
        form: list[tuple[str, str]] = [("grant_type", GRANT_CLIENT_CREDENTIALS)]
        form += _common(scope, audience, resource, purpose)
        answer = self._post("token", form)
        assert isinstance(answer, dict)
        return answer

    def exchange(
        self,
        subject_token: str,
        *,
        subject_token_type: str = TT_ACCESS,
        actor_token: str | None = None,
        actor_token_type: str | None = None,
        requested_token_type: str | None = None,
        scope: str | Sequence[str] | None = None,
        audience: Sequence[str] = (),
        resource: Sequence[str] = (),
        purpose: str | None = None,
        delegation_id: str | None = None,
    ) -> dict[str, Any]:
        """RFC 8693 token exchange: a token for ``subject_token``'s subject with this client
        as the newest actor (``actor_token``: the client's own token; without it the
        request is impersonation, which store policy refuses unless allowed). The RFC 8693
        §2.2.1 response."""
        form: list[tuple[str, str]] = [
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject_token),
            ("subject_token_type", subject_token_type),
        ]
        if actor_token is not None:
            form += [
                ("actor_token", actor_token),
                ("actor_token_type", actor_token_type or TT_ACCESS),
            ]
        if requested_token_type is not None:
            form.append(("requested_token_type", requested_token_type))
        if delegation_id is not None:
            form.append(("delegation_id", delegation_id))
        form += _common(scope, audience, resource, purpose)
        answer = self._post("token", form)
        assert isinstance(answer, dict)
        return answer

    def introspect(self, token: str, *, token_type_hint: str | None = None) -> dict[str, Any]:
        """RFC 7662: ``{"active": true, …claims}`` or ``{"active": false}``."""
        form = [("token", token)]
        if token_type_hint is not None:
            form.append(("token_type_hint", token_type_hint))
        answer = self._post("introspect", form)
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise TransportError(
                f"the introspection answer from {self.endpoint('introspect')} is not RFC 7662",
                details={"url": self.endpoint("introspect")},
            )
        return answer

    def revoke(self, token: str, *, token_type_hint: str | None = None) -> None:
        """RFC 7009: revoke one of the client's tokens (and every token exchanged from it).
        The endpoint answers the same for a token that is already invalid."""
        form = [("token", token)]
        if token_type_hint is not None:
            form.append(("token_type_hint", token_type_hint))
        self._post("revoke", form)

    # transport -----------------------------------------------------------------------

    def _post(self, name: str, form: list[tuple[str, str]]) -> Any:
        url = self.endpoint(name)
        headers: dict[str, str] = {}
        if self._secret is not None:
            # RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            assert self._key is not None
            assertion = client_assertion(self._key, self.client_id, url, kid=self._kid)
            form = [
                *form,
                ("client_id", self.client_id),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
            ]
        try:
            resp = self._http.post(url, data=_group(form), headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error(url, exc, self._timeout) from None
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = None
        if resp.status_code >= 400:
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                desc = body.get("error_description")
                raise OAuthResponseError(
                    body["error"], desc if isinstance(desc, str) else None, resp.status_code
                )
            raise TransportError(
                f"{url} answered {resp.status_code}: {resp.text[:200]!r}",
                details={"url": url, "status": resp.status_code},
            )
        if body is None and resp.content:
            raise TransportError(
                f"the answer from {url} is not JSON: {resp.text[:200]!r}", details={"url": url}
            )
        return body


def _common(
    scope: str | Sequence[str] | None,
    audience: Sequence[str],
    resource: Sequence[str],
    purpose: str | None,
) -> list[tuple[str, str]]:
    form: list[tuple[str, str]] = []
    if scope is not None:
        form.append(("scope", scope if isinstance(scope, str) else " ".join(scope)))
    form += [("audience", a) for a in _many(audience)]
    form += [("resource", r) for r in _many(resource)]
    if purpose is not None:
        form.append(("purpose", purpose))
    return form


def _many(values: Sequence[str]) -> list[str]:
    if isinstance(values, str):  # a lone string is one value, not its characters
        return [values]
    return list(values)


def _group(form: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """httpx's form data: repeated names (audience, resource) as lists."""
    out: dict[str, str | list[str]] = {}
    for k, v in form:
        prev = out.get(k)
        if prev is None:
            out[k] = v
        elif isinstance(prev, list):
            prev.append(v)
        else:
            out[k] = [prev, v]
    return out

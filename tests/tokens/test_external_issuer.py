"""Tokens of trusted external issuers (keyplane.tokens.external): JWTs signed with real keys
by PyJWT (an independent implementation), key sets inline or served over a real local
HTTP server (jwks_uri), the cache's TTL and refetch limit driven by an injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from keyplane.clock import FixedClock
from keyplane.policy.records import TrustedIssuer
from keyplane.tokens.errors import TokenInvalid
from keyplane.tokens.external import (
    JWKS_TTL,
    LEEWAY,
    MAX_TOKEN_BYTES,
    REFETCH_INTERVAL,
    JWKSCache,
    find_trusted_issuer,
    peek_issuer,
    verify_external_token,
)

ISS = "https://idp.example.com"
AUD = "https://keyplane.example.com"
ALL_ALGS = ("RS256", "PS256", "ES256", "EdDSA")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A private key, its public JWK (with kid) and a signer."""

    def __init__(self, alg: str, kid: str, private: Any) -> None:
        self.alg, self.kid, self.private = alg, kid, private
        pub = private.public_key()
        if isinstance(private, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(pub))
        elif isinstance(private, ec.EllipticCurvePrivateKey):
            jwk = json.loads(ECAlgorithm.to_jwk(pub))
        else:
            jwk = json.loads(OKPAlgorithm.to_jwk(pub))
        jwk["kid"] = kid
        self.jwk: dict[str, Any] = jwk

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        h: dict[str, Any] = {"kid": self.kid, **headers}
        h = {k: v for k, v in h.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=h)


def make_key(alg: str, kid: str) -> Key:
    if alg in ("RS256", "PS256"):
        return Key(alg, kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    if alg == "ES256":
        return Key(alg, kid, ec.generate_private_key(ec.SECP256R1()))
    return Key(alg, kid, ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    rsa_key = make_key("RS256", "rsa-1")
    ps = Key("PS256", "rsa-ps", rsa_key.private)
    ps.jwk["kid"] = "rsa-ps"
    return {
        "RS256": rsa_key,
        "PS256": ps,
        "ES256": make_key("ES256", "ec-1"),
        "EdDSA": make_key("EdDSA", "ed-1"),
    }


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    c: dict[str, Any] = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j-1",
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def inline(*ks: Key, **over: Any) -> TrustedIssuer:
    t = TrustedIssuer(
        issuer=ISS, jwks={"keys": [k.jwk for k in ks]}, audience=AUD, algorithms=ALL_ALGS
    )
    return replace(t, **over)


def refused(token: str, issuer: TrustedIssuer, reason: str, **kw: Any) -> None:
    with pytest.raises(TokenInvalid) as exc:
        verify_external_token(token, issuer, now=kw.pop("now", time.time()), **kw)
    assert exc.value.reason == reason


# ----------------------------------------------------------------------- inline key sets


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_each_algorithm_verifies(keys: dict[str, Key], alg: str) -> None:
    k = keys[alg]
    issuer = inline(*keys.values())
    out = verify_external_token(k.sign(claims()), issuer, now=time.time(), cache=JWKSCache())
    assert out.subject == "human:alice"
    assert out.issuer == ISS
    assert out.alg == alg
    assert out.kid == k.kid
    assert out.jti == "j-1"
    assert out.claims["aud"] == AUD


def test_only_the_configured_algorithms(keys: dict[str, Key]) -> None:
    issuer = inline(*keys.values(), algorithms=("ES256",))
    verify_external_token(keys["ES256"].sign(claims()), issuer, now=time.time())
    for alg in ("RS256", "PS256", "EdDSA"):
        refused(keys[alg].sign(claims()), issuer, "alg_not_allowed")
    # the record's default list leaves PS256 out
    default = TrustedIssuer(issuer=ISS, jwks={"keys": [keys["PS256"].jwk]}, audience=AUD)
    refused(keys["PS256"].sign(claims()), default, "alg_not_allowed")


def _unsigned(header: dict[str, Any], body: dict[str, Any], sig: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}.{b64(sig)}"


def test_none_and_hmac_refused_before_any_crypto(keys: dict[str, Key]) -> None:
    issuer = inline(*keys.values())
    refused(_unsigned({"alg": "none", "kid": "ec-1"}, claims()), issuer, "alg_not_allowed")
    refused(_unsigned({"alg": "None"}, claims()), issuer, "alg_not_allowed")
    # HS256 "keyed" with the issuer's public key: the classic algorithm confusion
    pem = (
        keys["RS256"]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for alg, h in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        head = b64(json.dumps({"alg": alg, "kid": "rsa-1"}).encode())
        body = b64(json.dumps(claims()).encode())
        mac = hmac.new(pem, f"{head}.{body}".encode(), h).digest()
        refused(f"{head}.{body}.{b64(mac)}", issuer, "alg_not_allowed")
    refused(_unsigned({"kid": "ec-1"}, claims()), issuer, "alg_not_allowed")  # no alg


def test_signature_must_verify(keys: dict[str, Key]) -> None:
    issuer = inline(*keys.values())
    good = keys["ES256"].sign(claims())
    head, body, sig = good.split(".")
    forged_body = b64(json.dumps(claims(sub="mallory")).encode())
    refused(f"{head}.{forged_body}.{sig}", issuer, "bad_signature")
    flipped = bytearray(base64.urlsafe_b64decode(sig + "=="))
    flipped[5] ^= 1
    refused(f"{head}.{body}.{b64(bytes(flipped))}", issuer, "bad_signature")
    refused(f"{head}.{body}.", issuer, "bad_signature")
    # another key claiming the issuer's kid
    impostor = make_key("EdDSA", "ed-1")
    refused(impostor.sign(claims()), issuer, "bad_signature")


def test_key_selection(keys: dict[str, Key]) -> None:
    issuer = inline(keys["ES256"], keys["EdDSA"])
    refused(keys["ES256"].sign(claims(), kid="nope"), issuer, "unknown_kid")
    # no kid: only when the set has exactly one key for the alg
    no_kid = jwt.encode(claims(), keys["EdDSA"].private, algorithm="EdDSA")
    out = verify_external_token(no_kid, issuer, now=time.time())
    assert out.kid is None
    two = make_key("EdDSA", "ed-2")
    refused(no_kid, inline(keys["EdDSA"], two), "kid_missing")
    # the kid of an RSA key signed as PS256 while the JWK says RS256: unusable for PS256
    rs_only = dict(keys["RS256"].jwk, alg="RS256")
    t = TrustedIssuer(issuer=ISS, jwks={"keys": [rs_only]}, audience=AUD, algorithms=ALL_ALGS)
    ps = jwt.encode(claims(), keys["RS256"].private, algorithm="PS256", headers={"kid": "rsa-1"})
    refused(ps, t, "unknown_kid")
    # a jku/jwk header never names the key
    attacker = make_key("ES256", "ec-1")
    refused(
        attacker.sign(claims(), jku="http://127.0.0.1:1/jwks", jwk=attacker.jwk),
        issuer,
        "bad_signature",
    )


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_unusable_jwks_members_are_skipped(keys: dict[str, Key]) -> None:
    k = keys["ES256"]
    private_nums = k.private.private_numbers()
    with_d = dict(k.jwk, d=b64(private_nums.private_value.to_bytes(32, "big")))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_jwk = json.loads(RSAAlgorithm.to_jwk(small.public_key()))
    small_jwk["kid"] = "small"
    for bad in (with_d, dict(k.jwk, use="enc"), dict(k.jwk, key_ops=["encrypt"]), small_jwk):
        t = TrustedIssuer(issuer=ISS, jwks={"keys": [bad]}, audience=AUD, algorithms=ALL_ALGS)
        kid = bad["kid"]
        token = (
            jwt.encode(claims(), small, algorithm="RS256", headers={"kid": kid})
            if kid == "small"
            else k.sign(claims())
        )
        refused(token, t, "unknown_kid")
    # the same key, usable, next to them: accepted
    t = TrustedIssuer(issuer=ISS, jwks={"keys": [small_jwk, dict(k.jwk, use="sig")]}, audience=AUD)
    assert verify_external_token(k.sign(claims()), t, now=time.time()).subject == "human:alice"
    nokeys = TrustedIssuer(issuer=ISS, jwks={"nokeys": []}, audience=AUD)
    refused(k.sign(claims()), nokeys, "unknown_kid")


def test_structure_and_size(keys: dict[str, Key]) -> None:
    issuer = inline(*keys.values())
    k = keys["EdDSA"]
    for bad in ("", "a.b", "a.b.c.d", "!!!.e30.", k.sign(claims()) + "="):
        refused(bad, issuer, "malformed")
    refused(k.sign(claims(), crit=["exp"]), issuer, "crit_unsupported")
    # repeated claim members: what one parser reads another might not
    head = b64(json.dumps({"alg": "EdDSA", "kid": "ed-1"}).encode())
    body = b64(b'{"iss":"%s","sub":"alice","sub":"root","exp":9999999999}' % ISS.encode())
    sig = k.private.sign(f"{head}.{body}".encode())
    refused(f"{head}.{body}.{b64(sig)}", issuer, "malformed")
    # a claims array, not an object
    body = b64(b"[1]")
    refused(f"{head}.{body}.{b64(k.private.sign(f'{head}.{body}'.encode()))}", issuer, "malformed")
    # 8 KiB at most, even validly signed
    big = k.sign(claims(pad="x" * MAX_TOKEN_BYTES))
    assert len(big) > MAX_TOKEN_BYTES
    refused(big, issuer, "too_large")
    fits = k.sign(claims(pad="x" * 5000))
    assert len(fits) <= MAX_TOKEN_BYTES
    verify_external_token(fits, issuer, now=time.time())


def test_time_claims_with_leeway(keys: dict[str, Key]) -> None:
    issuer = inline(*keys.values())
    k = keys["ES256"]
    now = time.time()
    t0 = int(now)
    ok = k.sign(claims(exp=t0 + 60, iat=t0, nbf=t0))
    verify_external_token(ok, issuer, now=now)
    verify_external_token(ok, issuer, now=t0 + 60 + LEEWAY - 1)  # inside the leeway
    refused(ok, issuer, "expired", now=t0 + 60 + LEEWAY)
    refused(k.sign(claims(exp=None)), issuer, "missing_exp")
    refused(k.sign(claims(exp="tomorrow")), issuer, "invalid_exp")
    refused(k.sign(claims(exp=True)), issuer, "invalid_exp")
    refused(k.sign(claims(nbf=t0 + LEEWAY + 5)), issuer, "not_yet_valid", now=t0)
    verify_external_token(k.sign(claims(nbf=t0 + LEEWAY - 5)), issuer, now=t0)
    refused(k.sign(claims(iat=t0 + LEEWAY + 5)), issuer, "iat_in_future", now=t0)
    verify_external_token(k.sign(claims(iat=None, nbf=None)), issuer, now=now)


def test_issuer_and_audience(keys: dict[str, Key]) -> None:
    issuer = inline(*keys.values())
    k = keys["EdDSA"]
    refused(k.sign(claims(iss="https://evil.example.com")), issuer, "wrong_issuer")
    refused(k.sign(claims(iss=ISS + "/")), issuer, "wrong_issuer")
    refused(k.sign(claims(iss=None)), issuer, "wrong_issuer")
    refused(k.sign(claims(aud="https://other.example.com")), issuer, "wrong_audience")
    refused(k.sign(claims(aud=None)), issuer, "wrong_audience")
    verify_external_token(k.sign(claims(aud=["x", AUD])), issuer, now=time.time())
    # the audience is always checked (token confusion): an issuer without one (only a
    # stale stored record can be) accepts no token, whatever its aud
    unset = replace(issuer, audience="")
    for aud in ("elsewhere", AUD, "", None):
        refused(k.sign(claims(aud=aud)), unset, "wrong_audience")
    refused(k.sign(claims(aud=[])), unset, "wrong_audience")
    with pytest.raises(TypeError):
        TrustedIssuer(issuer=ISS, jwks={"keys": [k.jwk]})  # type: ignore[call-arg]


def test_subject_node(keys: dict[str, Key]) -> None:
    k = keys["EdDSA"]
    issuer = inline(*keys.values(), subject_kind="employee", subject_claim="email")
    out = verify_external_token(k.sign(claims(email="bob@example.com")), issuer, now=time.time())
    assert out.subject == "employee:bob@example.com"
    refused(k.sign(claims()), issuer, "invalid_subject")  # no email claim
    plain = inline(*keys.values())
    for bad in ("a#b", "a:b", "a b", "", 42, ["alice"]):
        refused(k.sign(claims(sub=bad)), plain, "invalid_subject")


def test_find_trusted_issuer(keys: dict[str, Key]) -> None:
    a = inline(keys["EdDSA"])
    b = replace(a, issuer="https://other.example.com")
    token = keys["EdDSA"].sign(claims(iss="https://other.example.com"))
    assert peek_issuer(token) == "https://other.example.com"
    assert find_trusted_issuer((a, b), token) is b
    assert find_trusted_issuer((a,), token) is None
    assert find_trusted_issuer((a, b), "not a jwt") is None
    assert peek_issuer(keys["EdDSA"].sign(claims(iss=None))) is None


# ------------------------------------------------------------------------------ jwks_uri


class JWKSServer:
    """A real HTTP server on loopback serving a mutable JWK Set and counting requests."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.status = 200
        self.requests = 0
        self.redirect_to: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if outer.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect_to)
                    self.end_headers()
                    return
                body = json.dumps(outer.jwks).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    s = JWKSServer()
    try:
        yield s
    finally:
        s.close()


def remote(server: JWKSServer) -> TrustedIssuer:
    return TrustedIssuer(issuer=ISS, jwks_uri=server.url, audience=AUD, algorithms=ALL_ALGS)


def test_jwks_uri_fetched_once_and_cached(keys: dict[str, Key], server: JWKSServer) -> None:
    server.jwks = {"keys": [keys["ES256"].jwk, keys["RS256"].jwk]}
    cache = JWKSCache(clock=FixedClock(1000.0))
    issuer = remote(server)
    for _ in range(5):
        for alg in ("ES256", "RS256"):
            out = verify_external_token(
                keys[alg].sign(claims()), issuer, now=time.time(), cache=cache
            )
            assert out.subject == "human:alice"
    assert server.requests == 1
    assert cache.fetches == 1


def test_rotation_refetch_on_unknown_kid_at_most_every_10s(
    keys: dict[str, Key], server: JWKSServer
) -> None:
    clock = FixedClock(1000.0)
    cache = JWKSCache(clock=clock)
    issuer = remote(server)
    old, new = keys["ES256"], make_key("ES256", "ec-2")
    server.jwks = {"keys": [old.jwk]}
    verify_external_token(old.sign(claims()), issuer, now=time.time(), cache=cache)
    assert server.requests == 1
    # the IdP rotates: a token with the new kid refetches at once (the set is fresh)
    server.jwks = {"keys": [old.jwk, new.jwk]}
    clock.advance(REFETCH_INTERVAL)
    assert verify_external_token(new.sign(claims()), issuer, now=time.time(), cache=cache).kid == (
        "ec-2"
    )
    assert server.requests == 2
    # made-up kids: one refetch per 10 s at most, whatever their number
    clock.advance(REFETCH_INTERVAL)
    for i in range(20):
        refused(old.sign(claims(), kid=f"bogus-{i}"), issuer, "unknown_kid", cache=cache)
    assert server.requests == 3
    clock.advance(REFETCH_INTERVAL - 1)
    refused(old.sign(claims(), kid="bogus-x"), issuer, "unknown_kid", cache=cache)
    assert server.requests == 3
    clock.advance(1)
    refused(old.sign(claims(), kid="bogus-y"), issuer, "unknown_kid", cache=cache)
    assert server.requests == 4
    # known kids kept working meanwhile without a fetch
    verify_external_token(new.sign(claims()), issuer, now=time.time(), cache=cache)
    assert server.requests == 4


def test_ttl_expiry_drops_removed_keys(keys: dict[str, Key], server: JWKSServer) -> None:
    clock = FixedClock(1000.0)
    cache = JWKSCache(clock=clock)
    issuer = remote(server)
    old, new = keys["EdDSA"], make_key("EdDSA", "ed-9")
    server.jwks = {"keys": [old.jwk]}
    verify_external_token(old.sign(claims()), issuer, now=time.time(), cache=cache)
    server.jwks = {"keys": [new.jwk]}  # the old key withdrawn (compromised)
    clock.advance(JWKS_TTL - 1)
    verify_external_token(old.sign(claims()), issuer, now=time.time(), cache=cache)
    assert server.requests == 1
    clock.advance(1)
    refused(old.sign(claims()), issuer, "unknown_kid", cache=cache)
    assert server.requests == 2
    verify_external_token(new.sign(claims()), issuer, now=time.time(), cache=cache)
    assert server.requests == 2


def test_unreachable_or_failing_jwks_fails_closed(keys: dict[str, Key], server: JWKSServer) -> None:
    clock = FixedClock(1000.0)
    cache = JWKSCache(clock=clock)
    issuer = remote(server)
    k = keys["ES256"]
    server.status = 500
    server.jwks = {"keys": [k.jwk]}
    refused(k.sign(claims()), issuer, "jwks_unavailable", cache=cache)
    refused(k.sign(claims()), issuer, "jwks_unavailable", cache=cache)
    assert server.requests == 1  # a failed fetch is not retried for 10 s
    assert cache.failures == 1
    clock.advance(REFETCH_INTERVAL)
    server.status = 200
    verify_external_token(k.sign(claims()), issuer, now=time.time(), cache=cache)
    assert server.requests == 2
    # stale and the IdP gone: the old set is not used
    clock.advance(JWKS_TTL)
    server.close()
    refused(k.sign(claims()), issuer, "jwks_unavailable", cache=cache)
    assert cache.failures == 2


def test_jwks_uri_redirects_and_bad_bodies_refused(
    keys: dict[str, Key], server: JWKSServer
) -> None:
    clock = FixedClock(1000.0)
    issuer = remote(server)
    k = keys["ES256"]
    server.redirect_to = server.url
    refused(k.sign(claims()), issuer, "jwks_unavailable", cache=JWKSCache(clock=clock))
    server.redirect_to = None
    server.jwks = {"keys": [k.jwk], "pad": "x" * (300 * 1024)}
    refused(k.sign(claims()), issuer, "jwks_unavailable", cache=JWKSCache(clock=clock))
    server.jwks = {"nokeys": []}
    refused(k.sign(claims()), issuer, "jwks_unavailable", cache=JWKSCache(clock=clock))
    not_http = replace(issuer, jwks_uri="file:///etc/passwd")
    refused(k.sign(claims()), not_http, "jwks_unavailable", cache=JWKSCache(clock=clock))
    neither = replace(issuer, jwks_uri=None)
    refused(k.sign(claims()), neither, "jwks_unavailable", cache=JWKSCache(clock=clock))


def test_concurrent_verifications_fetch_once(keys: dict[str, Key], server: JWKSServer) -> None:
    server.jwks = {"keys": [keys["EdDSA"].jwk]}
    cache = JWKSCache(clock=FixedClock(1000.0))
    issuer = remote(server)
    token = keys["EdDSA"].sign(claims())
    results: list[str] = []

    def work() -> None:
        results.append(verify_external_token(token, issuer, now=time.time(), cache=cache).subject)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["human:alice"] * 16
    assert server.requests == 1

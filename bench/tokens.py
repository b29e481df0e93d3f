"""Access tokens (issue 6) — printed, never asserted.

    make bench-tokens
    python bench/tokens.py --seconds 3 --trials 20 --no-http --no-postgres

One store with ``human:alice``, ``agent:planner`` and ``agent:worker`` (client secrets),
delegations alice → planner → worker on ``document:*``, and a trusted external issuer
(an inline JWK Set; its tokens are alice's IdP tokens, signed here with Ed25519):

1. **in-process, SQLite** (a fresh file, ledger ``KEYPLANE_LEDGER_MODE``, default ``sync``;
   every token issued writes its ``token.issued`` event): tokens issued/s by
   ``keyplane.service.tokens`` — ``client_credentials`` with the client authenticated once,
   and with ``authenticate_client`` (secret) before each; ``exchange`` of planner's token
   by worker (an actor token, one delegation hop) and of alice's IdP token by planner;
   then tokens verified/s by ``verify_access_token`` — first sight of each token (the
   signature verified) and the same tokens again (the signature cached: the live checks
   only).
2. **over HTTP** (``keyplane serve``, one uvicorn process on the same SQLite file, raw
   keep-alive HTTP/1.1 from this process, ``client_secret_basic``): ``POST /oauth2/token``
   for ``client_credentials`` and for the token exchange, and ``POST /oauth2/introspect``:
   requests/s, p50 / p99.
3. **revoke → deny**: ``--trials`` times, a fresh token verified, revoked
   (``revoke_token``), then verified until refused; the time from the revocation call to
   the first refusal: in-process (SQLite, PostgreSQL) and across two processes sharing
   PostgreSQL (a fresh schema in ``KEYPLANE_BENCH_POSTGRES_URL``, default
   ``postgresql://postgres@127.0.0.1:5432/test``, dropped at the end): process 2 — a child
   running ``verify_access_token`` every ms; and, with HTTP, ``keyplane serve`` answering
   ``POST /oauth2/introspect`` polled every ms until ``active`` is false. Across processes
   the bound is the other process's ``KEYPLANE_POLL_INTERVAL`` (``--poll-interval``,
   default 0.2 s): it learns of a revocation when its tailer next reads the store.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from keyplane.config import Settings
from keyplane.service.auth import Caller
from keyplane.service.context import Services

PG_URL = os.environ.get("KEYPLANE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ISSUER = "http://keyplane.bench"  # KEYPLANE_ISSUER for this process and the servers
IDP = "https://idp.bench.example"
STORE = "default"
MODEL = """\
model
  schema 1.1

type human
type agent
type document
  relations
    define viewer: [human, agent]
"""
SYSTEM = Caller.system_caller()
TOKEN_URL = f"{ISSUER}/oauth2/token"
TT_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
TT_JWT = "urn:ietf:params:oauth:token-type:jwt"
GRANT_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


# ------------------------------------------------------------------------------ set-up


@dataclass
class World:
    """The store's principals and what a benchmark needs to act as them."""

    secrets: dict[str, str] = field(default_factory=dict)  # client node -> client secret
    idp_key: Any = None  # Ed25519 private key of the trusted external issuer

    def idp_token(self, sub: str = "alice", ttl: int = 3600) -> str:
        now = int(time.time())
        claims = {"iss": IDP, "sub": sub, "aud": ISSUER, "iat": now, "exp": now + ttl}
        head = {"alg": "EdDSA", "kid": "idp-1", "typ": "JWT"}

        def b64(obj: dict[str, Any]) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        signing_input = f"{b64(head)}.{b64(claims)}"
        sig = self.idp_key.sign(signing_input.encode())
        return f"{signing_input}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def open_services(url: str, master_key: str, *, poll_interval: float = 0.2) -> Services:
    return Services.open(
        Settings.from_env(
            database_url=url,
            master_key=master_key,
            issuer=ISSUER,
            poll_interval=poll_interval,
            default_store=STORE,
        )
    )


def prepare(svc: Services) -> World:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from keyplane.service import (
        credentials,
        delegations,
        identities,
        models,
        policies,
        stores,
        tuples,
    )

    with contextlib.suppress(Exception):  # the store may exist already
        stores.create_store(svc, SYSTEM, "bench", store_id=STORE)
    models.write_model(svc, SYSTEM, STORE, MODEL)
    identities.create_identity(svc, SYSTEM, STORE, "human", "alice")
    for name in ("planner", "worker"):
        identities.create_identity(svc, SYSTEM, STORE, "agent", name, owners=("human:alice",))
    now = time.time()
    scope = [{"actions": ["viewer"], "resource": "document:*"}]
    d1 = delegations.create_delegation(
        svc, SYSTEM, STORE, delegator="human:alice", delegate="agent:planner", scope=scope,
        expires_at=now + 86400, max_depth=1,
    )  # fmt: skip
    delegations.create_delegation(
        svc, SYSTEM, STORE, delegator="agent:planner", delegate="agent:worker", scope=scope,
        expires_at=now + 86400, parent_id=d1.id,
    )  # fmt: skip
    tuples.write_tuples(
        svc, SYSTEM, STORE,
        writes=[{"object": "document:1", "relation": "viewer", "user": "human:alice"},
                {"object": "document:1", "relation": "viewer", "user": "agent:planner"},
                {"object": "document:1", "relation": "viewer", "user": "agent:worker"}],
    )  # fmt: skip
    world = World(idp_key=Ed25519PrivateKey.generate())
    x = world.idp_key.public_key().public_bytes_raw()
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(x).rstrip(b"=").decode(),
        "kid": "idp-1",
    }
    policies.update_store_policy(
        svc, SYSTEM, STORE, access_token_seconds=3600,
        trusted_issuers=[{"issuer": IDP, "jwks": {"keys": [jwk]}, "audience": ISSUER,
                          "algorithms": ["EdDSA"]}],
    )  # fmt: skip
    for name in ("agent:planner", "agent:worker"):
        _, secret = credentials.create_credential(svc, SYSTEM, STORE, name)
        assert secret is not None
        world.secrets[name] = secret
    return world


def authenticate(svc: Services, world: World, client: str) -> Any:
    from keyplane.service.credentials import authenticate_client

    return authenticate_client(
        svc, STORE, client, secret=world.secrets[client], token_endpoint_url=TOKEN_URL
    )


# ------------------------------------------------------------------------------ timing


@dataclass
class Row:
    label: str
    ops: int = 0
    seconds: float = 0.0
    lat: list[float] = field(default_factory=list)
    note: str = ""
    measured: dict[float, float] = field(default_factory=dict)  # percentile -> ms, given
    extra: str = ""  # a last column (server CPU per request)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if q in self.measured:
            return self.measured[q]
        if not self.lat:
            return 0.0
        s = sorted(self.lat)
        return s[min(len(s) - 1, int(len(s) * q))] * 1000


def loop(label: str, fn: Callable[[int], Any], seconds: float) -> Row:
    """Call ``fn(i)`` for ``seconds`` (after 20 warm-up calls); one row."""
    for i in range(20):
        fn(i)
    row = Row(label)
    pc = time.perf_counter
    start = pc()
    until = start + seconds
    i = 0
    while True:
        t0 = pc()
        if t0 >= until:
            break
        fn(i)
        row.lat.append(pc() - t0)
        i += 1
    row.ops, row.seconds = i, pc() - start
    return row


def each(label: str, fn: Callable[[Any], Any], items: list[Any]) -> Row:
    """Call ``fn`` once on every item."""
    row = Row(label)
    pc = time.perf_counter
    start = pc()
    for it in items:
        t0 = pc()
        fn(it)
        row.lat.append(pc() - t0)
    row.ops, row.seconds = len(items), pc() - start
    return row


def na(label: str, exc: BaseException) -> Row:
    return Row(label, note=f"n/a ({type(exc).__name__}: {str(exc)[:80]})")


def print_rows(title: str, rows: list[Row], unit: str = "tokens/s", extra: str = "") -> None:
    print(f"\n{title}")
    print(f"  {'':<58} {unit:>12} {'p50 ms':>8} {'p99 ms':>8} {extra}")
    for r in rows:
        if r.note:
            print(f"  {r.label:<58} {r.note}")
        else:
            print(
                f"  {r.label:<58} {r.rate:>12,.0f} {r.pct(0.5):>8.3f} {r.pct(0.99):>8.3f} {r.extra}"
            )


# -------------------------------------------------------------------------- in-process


def in_process(
    svc: Services, fresh: Callable[[], Services], world: World, seconds: float, verify_n: int
) -> list[Row]:
    from keyplane.service import tokens as T

    rows: list[Row] = []
    planner = authenticate(svc, world, "agent:planner")
    worker = authenticate(svc, world, "agent:worker")

    def cc(_: int) -> Any:
        return T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER)

    def auth_cc(_: int) -> Any:
        client = authenticate(svc, world, "agent:planner")
        return T.issue_client_credentials(svc, STORE, client, issuer=ISSUER)

    for label, fn in (
        ("client_credentials (client authenticated once)", cc),
        ("client_credentials (authenticate_client + issue)", auth_cc),
    ):
        try:
            rows.append(loop(label, fn, seconds))
        except Exception as exc:
            rows.append(na(label, exc))

    label = "exchange: planner's token → worker (actor token, 1 hop)"
    try:
        subject = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
        actor = T.issue_client_credentials(svc, STORE, worker, issuer=ISSUER).access_token

        def ex(_: int) -> Any:
            return T.exchange_token(
                svc, STORE, worker, issuer=ISSUER, subject_token=subject,
                subject_token_type=TT_ACCESS, actor_token=actor, actor_token_type=TT_ACCESS,
            )  # fmt: skip

        rows.append(loop(label, ex, seconds))
    except Exception as exc:
        rows.append(na(label, exc))

    label = "exchange: alice's IdP token → planner (external issuer)"
    try:
        idp = world.idp_token()
        actor = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token

        def ex_idp(_: int) -> Any:
            return T.exchange_token(
                svc, STORE, planner, issuer=ISSUER, subject_token=idp,
                subject_token_type=TT_JWT, actor_token=actor, actor_token_type=TT_ACCESS,
            )  # fmt: skip

        rows.append(loop(label, ex_idp, seconds))
    except Exception as exc:
        rows.append(na(label, exc))

    label = "decide(token=the exchanged token), decisions/s"
    try:
        from keyplane.service.decisions import decide

        subject = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
        actor = T.issue_client_credentials(svc, STORE, worker, issuer=ISSUER).access_token
        chained = T.exchange_token(
            svc, STORE, worker, issuer=ISSUER, subject_token=subject,
            subject_token_type=TT_ACCESS, actor_token=actor, actor_token_type=TT_ACCESS,
        )  # fmt: skip
        vt = T.verify_access_token(svc, STORE, chained.access_token, issuer=ISSUER)
        first = decide(svc, SYSTEM, STORE, None, "viewer", "document:1", token=chained.access_token)
        if not first.allowed:
            raise RuntimeError(f"the token's decision is a deny: {first.code}")

        def with_token(_: int) -> Any:
            return decide(svc, SYSTEM, STORE, None, "viewer", "document:1",
                          token=chained.access_token)  # fmt: skip

        def without(_: int) -> Any:
            return decide(svc, SYSTEM, STORE, vt.subject, "viewer", "document:1",
                          actors=vt.actors, delegation_id=vt.delegation_id)  # fmt: skip

        rows.append(loop(label, with_token, seconds))
        rows.append(loop("decide(subject, actors, delegation_id), decisions/s",
                         without, seconds))  # fmt: skip
    except Exception as exc:
        rows.append(na(label, exc))

    try:
        issued = [
            T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
            for _ in range(verify_n)
        ]
        actor_w = T.issue_client_credentials(svc, STORE, worker, issuer=ISSUER).access_token
        issued_ex = [
            T.exchange_token(
                svc, STORE, worker, issuer=ISSUER, subject_token=tok,
                subject_token_type=TT_ACCESS, actor_token=actor_w, actor_token_type=TT_ACCESS,
            ).access_token
            for tok in issued[:1000]
        ]  # fmt: skip

        # a verifier that has seen none of them (the exchanges above verified the
        # subject tokens, which caches their signatures in ``svc``)
        verifier = fresh()
        try:

            def verify(tok: str) -> Any:
                return T.verify_access_token(verifier, STORE, tok, issuer=ISSUER)

            verify(issued[0])  # load the store's keys and live state
            rows.append(
                each(f"verify, first sight ({len(issued) - 1:,} cc tokens)", verify, issued[1:])
            )
            rows.append(
                each(f"verify, first sight ({len(issued_ex):,} exchanged)", verify, issued_ex)
            )
            again = issued * max(1, 20_000 // len(issued))
            rows.append(each("verify, signature cached (live checks only)", verify, again))
            rows.append(
                each(
                    "introspect_token, signature cached",
                    lambda tok: T.introspect_token(verifier, STORE, tok, issuer=ISSUER),
                    again[:10_000],
                )
            )
        finally:
            verifier.close()
    except Exception as exc:
        rows.append(na("verify", exc))
    return rows


@dataclass
class Trials:
    """revoke → deny trials: the time from the revocation call to the first refusal, and
    how much of it the revocation call itself took (its transaction)."""

    label: str
    total: list[float] = field(default_factory=list)
    call: list[float] = field(default_factory=list)
    note: str = ""


def _revoke(svc: Services, tok: str, trials: Trials) -> float:
    """Revoke ``tok``; returns the wall-clock time the call started."""
    from keyplane.service import tokens as T

    t0, p0 = time.time(), time.perf_counter()
    T.revoke_token(svc, STORE, tok, requester="agent:planner", issuer=ISSUER)
    trials.call.append(time.perf_counter() - p0)
    return t0


def revoke_to_deny_local(svc: Services, world: World, n: int, label: str) -> Trials:
    """In one process: the time from the revoke call to the first refused verification."""
    from keyplane.service import tokens as T
    from keyplane.tokens.errors import TokenInvalid

    planner = authenticate(svc, world, "agent:planner")
    out = Trials(label)
    for _ in range(n):
        tok = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
        T.verify_access_token(svc, STORE, tok, issuer=ISSUER)  # valid, signature cached
        t0 = _revoke(svc, tok, out)
        while True:
            try:
                T.verify_access_token(svc, STORE, tok, issuer=ISSUER)
            except TokenInvalid:
                out.total.append(time.time() - t0)
                break
            if time.time() > t0 + 10:
                out.note = "still valid 10 s after its revocation"
                return out
    return out


# ------------------------------------------------------------------------------ HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    db: str, master_key: str, tmp: Path, *, poll_interval: float
) -> Iterator[tuple[int, int]]:
    port = _free_port()
    env = {
        **os.environ,
        "KEYPLANE_DATABASE_URL": db,
        "KEYPLANE_MASTER_KEY": master_key,
        "KEYPLANE_ISSUER": ISSUER,
        "KEYPLANE_DEFAULT_STORE": STORE,
        "KEYPLANE_POLL_INTERVAL": str(poll_interval),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyplane", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=tmp,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _basic(client: str, secret: str) -> str:
    raw = f"{quote(client, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _form(path: str, form: dict[str, str], auth: str) -> bytes:
    raw = urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def over_http(
    db: str, master_key: str, tmp: Path, world: World, subject: str, actor: str, seconds: float,
    connections: int,
) -> list[Row]:  # fmt: skip
    sys.path.insert(0, str(Path(__file__).parent))
    from authzen_http import drive

    planner = _basic("agent:planner", world.secrets["agent:planner"])
    worker = _basic("agent:worker", world.secrets["agent:worker"])
    cases = [
        ("POST /oauth2/token client_credentials",
         _form("/oauth2/token", {"grant_type": "client_credentials"}, planner)),
        ("POST /oauth2/token token exchange (1 hop)",
         _form("/oauth2/token", {"grant_type": GRANT_EXCHANGE, "subject_token": subject,
                                 "subject_token_type": TT_ACCESS, "actor_token": actor,
                                 "actor_token_type": TT_ACCESS}, worker)),
        ("POST /oauth2/introspect (an active token)",
         _form("/oauth2/introspect", {"token": subject}, planner)),
    ]  # fmt: skip
    rows: list[Row] = []
    with serve(db, master_key, tmp, poll_interval=0.2) as (port, pid):
        drive(port, [cases[0][1]], 1.0, connections)  # warm up
        for label, req in cases:
            r = drive(port, [req], seconds, connections, pid)
            n = int(r["requests"])
            rows.append(
                Row(
                    f"{label}, {connections} conn.",
                    ops=n,
                    seconds=n / r["rps"] if r["rps"] else 0.0,
                    measured={0.5: r["p50"], 0.99: r["p99"]},
                    extra=f"{r['cpu_us']:>10,.0f}",
                )
            )
    return rows


# -------------------------------------------------------------------- across processes


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    import psycopg

    schema = f"kp_bench_tok_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def child(url: str, master_key: str, poll_interval: float) -> None:
    """Process 2: for each token read on stdin, wait until it verifies, say ``ok``, then
    verify it every ms until refused and print the wall-clock time of the refusal."""
    from keyplane.service import tokens as T
    from keyplane.tokens.errors import TokenInvalid

    svc = open_services(url, master_key, poll_interval=poll_interval)
    try:
        for line in sys.stdin:
            tok = line.strip()
            if not tok:
                break
            deadline = time.time() + 10
            while True:  # the token's own issuance reaches this process first
                try:
                    T.verify_access_token(svc, STORE, tok, issuer=ISSUER)
                    break
                except TokenInvalid as exc:
                    if time.time() > deadline:
                        print(f"never-valid {exc.reason}", flush=True)
                        return
                    time.sleep(0.001)
            print("ok", flush=True)
            deadline = time.time() + 10
            while True:
                try:
                    T.verify_access_token(svc, STORE, tok, issuer=ISSUER)
                except TokenInvalid:
                    print(f"denied {time.time():.6f}", flush=True)
                    break
                if time.time() > deadline:
                    print("timeout", flush=True)
                    break
                time.sleep(0.001)
    finally:
        svc.close()


def revoke_to_deny_child(
    svc: Services, world: World, url: str, master_key: str, n: int, poll_interval: float
) -> Trials:
    from keyplane.service import tokens as T

    planner = authenticate(svc, world, "agent:planner")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", url, "--master-key", master_key,
         "--poll-interval", str(poll_interval)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    out = Trials(f"2 processes, PostgreSQL: verify (poll {poll_interval:g} s)")
    rng = random.Random(6)
    try:
        for _ in range(n):
            tok = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
            proc.stdin.write(tok + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline().strip()
            if answer != "ok":
                out.note = f"process 2: {answer or 'exited'}"
                return out
            # back-to-back trials would lock onto the tailer's period: start at a random phase
            time.sleep(rng.uniform(0, poll_interval))
            t0 = _revoke(svc, tok, out)
            answer = proc.stdout.readline().strip()
            if not answer.startswith("denied "):
                out.note = f"process 2: {answer or 'exited'}"
                return out
            out.total.append(float(answer.split()[1]) - t0)
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.write("\n")
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def revoke_to_deny_http(
    svc: Services, world: World, url: str, master_key: str, tmp: Path, n: int,
    poll_interval: float,
) -> Trials:  # fmt: skip
    import httpx

    from keyplane.service import tokens as T

    planner = authenticate(svc, world, "agent:planner")
    auth = (quote("agent:planner", safe=""), quote(world.secrets["agent:planner"], safe=""))
    out = Trials(f"2 processes, PostgreSQL: HTTP introspect (poll {poll_interval:g} s)")
    rng = random.Random(7)
    with (
        serve(url, master_key, tmp, poll_interval=poll_interval) as (port, _),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=auth) as http,
    ):
        for _ in range(n):
            tok = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
            deadline = time.time() + 10
            while not http.post("/oauth2/introspect", data={"token": tok}).json().get("active"):
                if time.time() > deadline:
                    out.note = "the server never saw the token active"
                    return out
                time.sleep(0.001)
            time.sleep(rng.uniform(0, poll_interval))  # a random phase of the server's tailer
            t0 = _revoke(svc, tok, out)
            while True:
                body = http.post("/oauth2/introspect", data={"token": tok}).json()
                if not body.get("active"):
                    out.total.append(time.time() - t0)
                    break
                if time.time() > t0 + 10:
                    out.note = "still active 10 s after its revocation"
                    return out
                time.sleep(0.001)
    return out


def print_trials(t: Trials) -> None:
    if not t.total:
        print(f"  {t.label:<58} n/a ({t.note})")
        return
    p50 = statistics.median(t.total) * 1000
    call = statistics.median(t.call) * 1000 if t.call else 0.0
    extra = f"  !! {t.note}" if t.note else ""
    print(
        f"  {t.label:<58} {len(t.total):>6} {p50:>8.2f} {max(t.total) * 1000:>8.2f} "
        f"{call:>9.2f}{extra}"
    )


# ------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="per throughput row")
    ap.add_argument("--trials", type=int, default=20, help="revoke → deny trials")
    ap.add_argument("--verify", type=int, default=2000, help="tokens verified at first sight")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--poll-interval", type=float, default=0.2, help="process 2's tailer")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--master-key", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.master_key, a.poll_interval)
        return

    from keyplane.secrets import generate_master_key

    master_key = generate_master_key()
    tmp = Path(tempfile.mkdtemp(prefix="kp-tokens-bench-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    mode = os.environ.get("KEYPLANE_LEDGER_MODE", "sync")
    print(f"machine: {os.cpu_count()} cores; ledger {mode}; {a.seconds:g} s per row")
    revoke_rows: list[Trials] = []
    try:
        svc = open_services(db, master_key)
        try:
            world = prepare(svc)
            rows = in_process(
                svc, lambda: open_services(db, master_key), world, a.seconds, a.verify
            )
            print_rows("in-process (keyplane.service.tokens), SQLite", rows)
            revoke_rows.append(revoke_to_deny_local(svc, world, a.trials, "in-process, SQLite"))
            from keyplane.service import tokens as T

            planner = authenticate(svc, world, "agent:planner")
            worker = authenticate(svc, world, "agent:worker")
            subject = T.issue_client_credentials(svc, STORE, planner, issuer=ISSUER).access_token
            actor = T.issue_client_credentials(svc, STORE, worker, issuer=ISSUER).access_token
        finally:
            svc.close()
        if not a.no_http:
            try:
                rows = over_http(db, master_key, tmp, world, subject, actor, a.seconds,
                                 a.connections)  # fmt: skip
            except Exception as exc:
                rows = [na("HTTP", exc)]
            print_rows(
                "over HTTP (keyplane serve, one process, same SQLite file)",
                rows,
                "requests/s",
                "srv CPU µs/req",
            )

        if not a.no_postgres:
            try:
                with postgres_schema() as url:
                    pg = open_services(url, master_key)
                    try:
                        pg_world = prepare(pg)
                        revoke_rows.append(
                            revoke_to_deny_local(pg, pg_world, a.trials, "in-process, PostgreSQL")
                        )
                        revoke_rows.append(
                            revoke_to_deny_child(
                                pg, pg_world, url, master_key, a.trials, a.poll_interval
                            )
                        )
                        if not a.no_http:
                            revoke_rows.append(
                                revoke_to_deny_http(
                                    pg, pg_world, url, master_key, tmp, a.trials, a.poll_interval
                                )
                            )
                    finally:
                        pg.close()
            except Exception as exc:
                revoke_rows.append(Trials("PostgreSQL", note=f"{type(exc).__name__}: {exc}"[:100]))

        print(f"\nrevoke → deny: from the revoke_token call to the first refusal, {a.trials} "
              f"trials; 'revoke ms' = the call itself (its transaction)")  # fmt: skip
        print(f"  {'':<58} {'trials':>6} {'p50 ms':>8} {'max ms':>8} {'revoke ms':>9}")
        for t in revoke_rows:
            print_trials(t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

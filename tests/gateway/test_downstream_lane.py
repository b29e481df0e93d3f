"""The pool's direct lane to streamable-HTTP servers (keyplane.gateway.downstream_http):
one POST per call on a kept-alive connection, against the real downstream server
(tests/gateway/downstream_server.py: JSON and SSE answers, stateful and stateless), a TCP
proxy that drops requests (the resend rules), and raw servers answering garbage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest

from gateway.downstream_server import serve_downstream
from keyplane.config import Settings
from keyplane.gateway.downstream import DownstreamError, DownstreamPool, seal_secret
from keyplane.gateway.downstream_http import HttpLane
from keyplane.gateway.records import DownstreamCredential, McpServer
from keyplane.secrets import generate_master_key
from keyplane.service.context import Services

pytestmark = pytest.mark.timeout(60)

STORE = "gw-store"
SECRET = "s3cret-Do-Not-Leak-42"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.open(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'kp.db'}",
            master_key=generate_master_key(),
            poll_interval=0.0,
        )
    )
    try:
        yield services
    finally:
        services.close()


def server_at(
    svc: Services, url: str, *, secret: str | None = None, revision: int = 1, **cred: Any
) -> McpServer:
    return McpServer(
        store_id=STORE,
        name="tracker",
        transport="http",
        url=url,
        credential=DownstreamCredential(**cred) if cred else DownstreamCredential(),
        encrypted_secret=seal_secret(svc, STORE, "tracker", secret) if secret else None,
        revision=revision,
    )


def text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def lane_of(pool: DownstreamPool) -> HttpLane:
    lane = pool.lane(STORE, "tracker")
    assert lane is not None
    return lane


# -- JSON and SSE, stateful and stateless -----------------------------------------------------


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
def test_calls_on_one_kept_alive_connection(
    svc: Services, stateless: bool, json_response: bool
) -> None:
    with serve_downstream(stateless=stateless, json_response=json_response) as ds:
        server = server_at(svc, ds.url)

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                for i in range(5):
                    got = await pool.call_tool(server, "echo", {"text": f"hi {i}"})
                    assert text(got) == f"hi {i}"
                lane = lane_of(pool)
                assert (lane.session_id is None) == stateless
                assert lane.protocol_version == "2025-11-25"
                # a tool's own failure comes back as the server's result (not an error)
                failed = await pool.call_tool(server, "create_ticket", {})
                assert failed.is_error
                seen = json.loads(text(await pool.call_tool(server, "whoami", {})))
                assert seen["transport"] == "http"
                # initialize + initialized + 7 calls, all on ONE connection
                assert lane.connections_opened == 1
                assert pool.sessions == [(STORE, "tracker")]

        anyio.run(main)
        assert ds.connections == 1
        assert ds.initializes == 1
        assert [c[0] for c in ds.calls] == ["echo"] * 5 + ["create_ticket", "whoami"]


def test_concurrent_calls_open_connections_as_needed_one_session(svc: Services) -> None:
    with serve_downstream() as ds:
        server = server_at(svc, ds.url)
        out: dict[int, str] = {}

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                async with anyio.create_task_group() as tg:
                    for i in range(6):

                        async def one(i: int = i) -> None:
                            out[i] = text(await pool.call_tool(server, "echo", {"text": str(i)}))

                        tg.start_soon(one)
                opened = lane_of(pool).connections_opened
                # sequential calls after that reuse the idle connections
                for _ in range(6):
                    await pool.call_tool(server, "echo", {"text": "again"})
                assert lane_of(pool).connections_opened == opened

        anyio.run(main)
        assert out == {i: str(i) for i in range(6)}
        assert ds.initializes == 1 and len(ds.calls) == 12


# -- the resend rules ------------------------------------------------------------------------


class DroppingProxy:
    """A TCP proxy to the downstream server that, when told, closes a client connection
    on the first bytes of a request instead of forwarding them (the server's idle close
    racing a reuse)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop = 0  # how many requests to drop
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def back() -> None:
            try:
                while data := await up_r.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        task = asyncio.ensure_future(back())
        try:
            while data := await reader.read(65536):
                if self.drop:
                    self.drop -= 1
                    self.dropped += 1
                    writer.transport.abort()
                    break
                up_w.write(data)
                await up_w.drain()
        except OSError:
            pass
        finally:
            up_w.close()
            task.cancel()


def test_reused_connection_closed_before_answer_is_resent_once(svc: Services) -> None:
    with serve_downstream() as ds:

        async def main() -> None:
            proxy = DroppingProxy(ds.port)
            await proxy.start()
            server = server_at(svc, f"http://127.0.0.1:{proxy.port}/mcp")
            try:
                async with DownstreamPool(svc) as pool:
                    assert text(await pool.call_tool(server, "echo", {"text": "a"})) == "a"
                    lane = lane_of(pool)
                    assert lane.connections_opened == 1
                    # the kept connection fails before any answer byte: resent on a new one
                    proxy.drop = 1
                    assert text(await pool.call_tool(server, "echo", {"text": "b"})) == "b"
                    assert proxy.dropped == 1 and lane.connections_opened == 2
                    # it fails again on the new connection: an error, not a second resend
                    proxy.drop = 2
                    with pytest.raises(DownstreamError) as info:
                        await pool.call_tool(server, "echo", {"text": "c"})
                    assert info.value.details["reason"] == "unreachable", info.value.message
                    assert proxy.dropped == 3
                    # a NEW connection failing before an answer is never resent
                    proxy.drop = 1
                    with pytest.raises(DownstreamError):
                        await pool.call_tool(server, "echo", {"text": "d"})
                    assert proxy.dropped == 4
                    assert text(await pool.call_tool(server, "echo", {"text": "e"})) == "e"
            finally:
                await proxy.stop()

        anyio.run(main)
        # the dropped requests never reached the server; each delivered call once
        assert ds.calls == [
            ("echo", {"text": "a"}),
            ("echo", {"text": "b"}),
            ("echo", {"text": "e"}),
        ]
        assert ds.initializes == 1


def test_server_closing_idle_connections(svc: Services) -> None:
    with serve_downstream(keep_alive=0.2) as ds:
        server = server_at(svc, ds.url)

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                assert text(await pool.call_tool(server, "echo", {"text": "1"})) == "1"
                await anyio.sleep(0.5)  # uvicorn closes the idle connection
                assert text(await pool.call_tool(server, "echo", {"text": "2"})) == "2"
                assert lane_of(pool).connections_opened == 2

        anyio.run(main)
        assert ds.connections == 2 and ds.initializes == 1
        assert [c[1]["text"] for c in ds.calls] == ["1", "2"]


def test_unknown_session_reinitializes_and_resends(svc: Services) -> None:
    with serve_downstream() as ds:
        server = server_at(svc, ds.url)

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                assert text(await pool.call_tool(server, "echo", {"text": "1"})) == "1"
                first = lane_of(pool).session_id
                await anyio.to_thread.run_sync(ds.restart)  # every session is gone
                assert text(await pool.call_tool(server, "echo", {"text": "2"})) == "2"
                assert lane_of(pool).session_id not in (None, first)

        anyio.run(main)
        assert ds.initializes == 2
        assert [c[1]["text"] for c in ds.calls] == ["1", "2"]
        # the refused request (404) and the resent one: the server ran the call once
        assert ds.methods.count("tools/call") == 2


def test_oauth_token_refreshed_on_401_and_resent(svc: Services) -> None:
    with serve_downstream(client_id="gw", client_secret=SECRET) as ds:
        server = server_at(
            svc,
            ds.url,
            secret=SECRET,
            kind="oauth_client_credentials",
            token_url=ds.token_url,
            client_id="gw",
        )

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                assert text(await pool.call_tool(server, "echo", {"text": "1"})) == "1"
                ds.revoke_tokens()
                assert text(await pool.call_tool(server, "echo", {"text": "2"})) == "2"
                assert lane_of(pool).connections_opened == 1

        anyio.run(main)
        assert len(ds.token_requests) == 2 and ds.initializes == 1
        assert [c[1]["text"] for c in ds.calls] == ["1", "2"]
        live = next(iter(ds.tokens))
        assert ds.seen_auth[-1] == {"authorization": f"Bearer {live}"}


def test_wrong_bearer_is_unauthorized_without_resend(svc: Services) -> None:
    with serve_downstream(require={"authorization": f"Bearer {SECRET}"}) as ds:
        server = server_at(svc, ds.url, secret="not-" + SECRET, kind="bearer")

        async def main() -> None:
            async with DownstreamPool(svc) as pool:
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server, "echo", {"text": "x"})
                err = info.value
                assert err.details == {"server": "tracker", "reason": "unauthorized"}
                assert "HTTP 401" in err.message and SECRET not in err.message

        anyio.run(main)
        assert len(ds.seen_auth) == 1 and ds.calls == []


def test_call_timeout_keeps_the_session(svc: Services) -> None:
    with serve_downstream() as ds:
        ds.set_tools(add=[{"name": "slow", "sleep": 2}])
        server = server_at(svc, ds.url)

        async def main() -> None:
            async with DownstreamPool(svc, call_timeout=0.3) as pool:
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server, "slow", {})
                assert info.value.details["reason"] == "timeout"
                assert text(await pool.call_tool(server, "echo", {"text": "ok"})) == "ok"

        anyio.run(main)
        assert [c[0] for c in ds.calls] == ["slow", "echo"] and ds.initializes == 1


# -- servers answering garbage -----------------------------------------------------------------

Answer = Callable[[dict[str, Any], dict[str, str]], Awaitable[bytes]]


async def raw_server(answer: Answer, *, tls: Any = None) -> tuple[asyncio.Server, str]:
    """A bare HTTP/1.1 server: each request (headers, JSON body) answered with the bytes
    ``answer`` returns."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                msg = json.loads(body) if body else {}
                writer.write(await answer(msg, headers))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/mcp"


def http(status: int, body: bytes, ctype: str = "application/json", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


def rpc(msg: dict[str, Any], result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg.get("id"), "result": result}).encode()


async def handshake(msg: dict[str, Any], headers: dict[str, str]) -> bytes | None:
    if msg.get("method") == "initialize":
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "serverInfo": {"name": "r", "version": "1"},
        }
        return http(200, rpc(msg, init), extra="mcp-session-id: s1\r\n")
    if msg.get("method") == "notifications/initialized":
        return http(202, b"")
    return None


def garbage_case(call_answer: Callable[[dict[str, Any], dict[str, str]], bytes]) -> Answer:
    async def answer(msg: dict[str, Any], headers: dict[str, str]) -> bytes:
        got = await handshake(msg, headers)
        if got is not None:
            return got
        if msg.get("method") != "tools/call":  # e.g. the DELETE ending the session
            return http(405, b"")
        return call_answer(msg, headers)

    return answer


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda m, h: b"SURPRISE, NOT HTTP\r\n\r\n", "answered garbage"),
        (lambda m, h: http(200, b"{not json"), "invalid JSON"),
        (lambda m, h: http(200, b"hello", ctype="text/plain"), "without a JSON-RPC response"),
        (lambda m, h: http(200, rpc({"id": 999}, {})), "without a JSON-RPC response"),
        (lambda m, h: http(200, rpc(m, {"content": "not a list"})), "invalid tools/call result"),
        (
            lambda m, h: http(
                200, b'data: {"jsonrpc":"2.0","method":"x"}\n\n', ctype="text/event-stream"
            ),
            "without a JSON-RPC response",
        ),
        (lambda m, h: http(502, b"<html>bad gateway</html>", ctype="text/html"), "HTTP 502"),
    ],
    ids=["not-http", "bad-json", "text", "other-id", "bad-result", "sse-no-answer", "http-502"],
)
def test_garbage_is_a_downstream_error(svc: Services, answer: Any, words: str) -> None:
    async def main() -> None:
        srv, url = await raw_server(garbage_case(answer))
        try:
            async with DownstreamPool(svc) as pool:
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server_at(svc, url), "echo", {"text": "x"})
                assert info.value.details["reason"] == "protocol_error", info.value.message
                assert words in info.value.message, info.value.message
        finally:
            srv.close()

    anyio.run(main)


def test_sse_answer_among_other_messages_and_error_answers(svc: Services) -> None:
    def call(msg: dict[str, Any], headers: dict[str, str]) -> bytes:
        args = msg["params"]["arguments"]
        if args.get("fail"):
            err = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32602, "message": "bad"}}
            return http(200, json.dumps(err).encode())
        note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
        result = {"content": [{"type": "text", "text": headers.get("authorization", "")}]}
        stream = (
            b": comment\r\n\r\nevent: message\r\ndata: " + json.dumps(note).encode() + b"\r\n\r\n"
            b"data: " + rpc(msg, result) + b"\r\n\r\n"
        )
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(stream), stream)
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + chunked
        )

    async def main() -> None:
        srv, url = await raw_server(garbage_case(call))
        server = server_at(svc, url, secret=SECRET, kind="bearer")
        try:
            async with DownstreamPool(svc) as pool:
                got = await pool.call_tool(server, "echo", {})
                assert text(got) == f"Bearer {SECRET}"
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server, "echo", {"fail": True})
                assert info.value.details == {
                    "server": "tracker",
                    "reason": "protocol_error",
                    "mcp_code": -32602,
                }
                assert lane_of(pool).connections_opened == 1
        finally:
            srv.close()

    anyio.run(main)


def test_errors_never_carry_the_secret(svc: Services) -> None:
    def leaky(msg: dict[str, Any], headers: dict[str, str]) -> bytes:
        err = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": 1, "message": str(headers)}}
        return http(500, json.dumps(err).encode())

    async def main() -> None:
        srv, url = await raw_server(garbage_case(leaky))
        server = server_at(svc, url, secret=SECRET, kind="header", header="X-Api-Key")
        try:
            async with DownstreamPool(svc) as pool:
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server, "echo", {})
                err = info.value
                assert "HTTP 500" in err.message and "x-api-key" in err.message
                for shown in (err.message, repr(err), json.dumps(err.to_dict(), default=str)):
                    assert SECRET not in shown
                assert SECRET not in repr(pool) + repr(pool._lanes)
        finally:
            srv.close()

    anyio.run(main)


def test_a_server_that_never_answers_times_out(svc: Services) -> None:
    async def silent(msg: dict[str, Any], headers: dict[str, str]) -> bytes:
        got = await handshake(msg, headers)
        if got is None:
            await asyncio.sleep(5)
            return b""
        return got

    async def main() -> None:
        srv, url = await raw_server(silent)
        try:
            async with DownstreamPool(svc, call_timeout=0.3) as pool:
                started = time.monotonic()
                with pytest.raises(DownstreamError) as info:
                    await pool.call_tool(server_at(svc, url), "echo", {})
                assert info.value.details["reason"] == "timeout"
                assert time.monotonic() - started < 2
        finally:
            srv.close()

    anyio.run(main)


# -- TLS -----------------------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_https_server_with_the_trust_of_the_sdk_client(
    svc: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    seen: list[str] = []

    def call(msg: dict[str, Any], headers: dict[str, str]) -> bytes:
        seen.append(headers.get("authorization", ""))
        return http(200, rpc(msg, {"content": [{"type": "text", "text": "over tls"}]}))

    async def main(trusted: bool) -> None:
        srv, url = await raw_server(garbage_case(call), tls=tls)
        server = server_at(svc, url.replace("http://", "https://"), secret=SECRET, kind="bearer")
        try:
            async with DownstreamPool(svc) as pool:
                if trusted:
                    for _ in range(2):
                        assert text(await pool.call_tool(server, "echo", {})) == "over tls"
                    assert lane_of(pool).connections_opened == 1
                else:
                    with pytest.raises(DownstreamError) as info:
                        await pool.call_tool(server, "echo", {})
                    assert info.value.details["reason"] == "unreachable"
                    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
        finally:
            srv.close()

    # a certificate no trusted CA signed: refused
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    anyio.run(main, False)
    assert seen == []
    # SSL_CERT_FILE naming it (as httpx2, the SDK's client, reads it): trusted
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    anyio.run(main, True)
    assert seen == [f"Bearer {SECRET}"] * 2


def test_an_answer_over_the_size_limit_is_refused() -> None:
    with serve_downstream(json_response=True) as ds:

        async def main() -> None:
            lane = HttpLane("tracker", ds.url, max_answer_bytes=2_000)
            try:
                assert text(await lane.call_tool("echo", {"text": "small"})) == "small"
                with pytest.raises(DownstreamError) as info:
                    await lane.call_tool("echo", {"text": "x" * 5_000})
                assert info.value.details["reason"] == "protocol_error"
                assert "exceeds 2000 bytes" in info.value.message
                # the connection is dropped, the session stays
                assert text(await lane.call_tool("echo", {"text": "again"})) == "again"
                assert lane.connections_opened == 2
            finally:
                await lane.aclose()

        anyio.run(main)
        assert ds.initializes == 1

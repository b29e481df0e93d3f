"""The HTTP client's own duties, against a real server with real keys: error mapping
(class, code, details, request id), authentication and roles, key management, streaming,
retries of reads only, transport failures, the shared protocol, the package exports."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import keyplane
from keyplane import AsyncClient, Client, Keyplane
from keyplane import errors as e
from keyplane.sdk import AsyncKeyplaneAPI, KeyplaneAPI
from keyplane.sdk.wire import ERRORS_BY_CODE, error_from_response
from keyplane.service.keys import authenticate
from live_server import Server

MODEL = """\
model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
"""


@pytest.fixture
def acme(client: Client) -> Client:
    client.create_store("Acme", store_id="acme")
    client.write_model(MODEL, store="acme")
    return client


# ---------------------------------------------------------------------------- errors


def test_every_error_code_maps_back_to_its_class() -> None:
    for cls in e.all_error_classes():
        assert ERRORS_BY_CODE[cls.code] is cls
        body = f'{{"error": {{"code": "{cls.code}", "message": "m", "request_id": "r1"}}}}'
        exc = error_from_response(418, body.encode(), {})
        assert type(exc) is cls and exc.message == "m" and exc.request_id == "r1"


def test_server_errors_carry_details_and_request_id(acme: Client) -> None:
    with pytest.raises(e.RelationNotFoundError) as info:
        acme.write_tuples(["document:1#editor@user:anne"], store="acme")
    assert info.value.request_id and len(info.value.request_id) >= 16
    assert info.value.fga_code == 2022
    assert "fga_code" not in info.value.details  # the class carries it already

    bad = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [team]\n"
    with pytest.raises(e.InvalidModelError) as model_info:
        acme.write_model(bad, store="acme")
    issue = model_info.value.errors[0]
    assert issue.line is not None and issue.line[0] == 5  # positions survive the wire


def test_unknown_codes_fall_back_on_the_status() -> None:
    body = b'{"error": {"code": "brand_new", "message": "later", "request_id": "x"}}'
    exc = error_from_response(404, body, {})
    assert type(exc) is e.NotFoundError and exc.details["server_code"] == "brand_new"
    exc = error_from_response(502, b"<html>bad gateway</html>", {})
    assert type(exc) is e.TransportError and "502" in exc.message


def test_unauthenticated(server: Server) -> None:
    for key in (None, "kp_nope", "kp_01JBOGUS00000000000000000_" + "a" * 52):
        with Client(server.url, key) as c, pytest.raises(e.AuthenticationError) as info:
            c.list_stores()
        assert info.value.code == "unauthenticated" and info.value.request_id


def test_roles_are_enforced_and_denials_match_in_process(server: Server, acme: Client) -> None:
    rec, secret = acme.create_key(owner="reader-bot", roles=["reader:acme"])
    assert secret.startswith("kp_") and rec.roles == ("reader:acme",)
    remote = Client(server.url, secret)
    local = Keyplane(server.services, caller=authenticate(server.services, secret))
    try:
        assert remote.check("user:anne", "viewer", "document:1", store="acme").allowed is False
        for kp in (remote, local):
            with pytest.raises(e.PermissionDeniedError):
                kp.write_tuples(["document:1#viewer@user:anne"], store="acme")
        errs: list[tuple[Any, ...]] = []
        for kp in (remote, local):
            try:
                kp.write_tuples(["document:1#viewer@user:anne"], store="acme")
            except e.PermissionDeniedError as exc:
                errs.append((type(exc), exc.code, exc.message, exc.details))
        assert errs[0] == errs[1]
    finally:
        remote.close()


def test_key_management(server: Server, client: Client) -> None:
    client.create_store("Keys", store_id="k")
    rec, secret = client.create_key(
        owner="ci", roles=["writer"], description="pipeline", expires_in=3600
    )
    assert rec.expires_at is not None and rec.description == "pipeline"
    assert client.get_key(rec.id) == rec
    assert rec.id in {k.id for k in client.list_keys(page_size=100).items}
    with Client(server.url, secret) as c:
        assert c.get_store("k").name == "Keys"
    rotated, new_secret = client.rotate_key(rec.id, overlap_seconds=0)
    assert rotated.id == rec.id and new_secret != secret
    with Client(server.url, new_secret) as c:
        assert c.get_store("k").name == "Keys"
    with Client(server.url, secret) as old, pytest.raises(e.AuthenticationError):
        old.get_store("k")
    client.revoke_key(rec.id)
    with Client(server.url, new_secret) as c, pytest.raises(e.AuthenticationError):
        c.get_store("k")
    assert client.get_key(rec.id).revoked_at is not None
    with pytest.raises(e.NotFoundError):
        client.get_key("01JNOSUCHKEY00000000000000")


# ---------------------------------------------------------------------------- streaming


def test_list_objects_streams(acme: Client) -> None:
    for i in range(0, 3000, 1000):
        acme.write_tuples(
            [f"document:d{j}#viewer@user:anne" for j in range(i, i + 1000)], store="acme"
        )
    it = acme.list_objects("user:anne", "viewer", "document", store="acme")
    assert isinstance(it, Iterator)
    first = next(it)
    rest = list(it)
    assert len({first, *rest}) == 3000
    # errors found before the first line raise at the call, as in-process
    with pytest.raises(e.TypeNotFoundError):
        acme.list_objects("user:anne", "viewer", "robot", store="acme")


def test_async_client_natively(server: Server, acme: Client) -> None:
    acme.write_tuples(["document:a#viewer@user:anne", "document:b#viewer@user:anne"], store="acme")

    async def main() -> None:
        async with AsyncClient(server.url, server.key) as ac:
            objs = [
                o
                async for o in await ac.list_objects(
                    "user:anne", "viewer", "document", store="acme"
                )
            ]
            assert sorted(objs) == ["document:a", "document:b"]
            decision, explanation = await asyncio.gather(
                ac.check("user:anne", "viewer", "document:a", store="acme"),
                ac.explain("user:anne", "viewer", "document:a", store="acme"),
            )
            assert decision.allowed and explanation.allowed
            assert "document:a#viewer@user:anne" in explanation.render()
            with pytest.raises(e.StoreNotFoundError):
                await ac.get_store("nope")

    asyncio.run(main())


# ---------------------------------------------------------------------------- transport


class FlakyTransport(httpx.BaseTransport):
    """The network failing ``failures`` times before the real transport answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise httpx.ConnectError("connection refused", request=request)
        return self.real.handle_request(request)


def test_reads_are_retried_on_connection_errors(server: Server) -> None:
    flaky = FlakyTransport(failures=2)
    with Client(server.url, server.key, transport=flaky, retries=2) as c:
        assert c.list_stores().items is not None
    assert flaky.attempts == 3
    flaky = FlakyTransport(failures=3)
    with (
        Client(server.url, server.key, transport=flaky, retries=2) as c,
        pytest.raises(e.TransportError) as info,
    ):
        c.list_stores()
    assert flaky.attempts == 3 and server.url in info.value.message


def test_writes_are_never_retried(server: Server) -> None:
    flaky = FlakyTransport(failures=1)
    with Client(server.url, server.key, transport=flaky, retries=5) as c:
        with pytest.raises(e.TransportError):
            c.create_store("once", store_id="once")
        assert flaky.attempts == 1
        assert c.create_store("once", store_id="once").id == "once"


def test_unreachable_server_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}", "kp_x", retries=1) as c,
        pytest.raises(e.TransportError) as info,
    ):
        c.check("user:a", "viewer", "document:1")
    assert info.value.code == "transport_error"


def test_a_silent_server_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # accept, never answer
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with (
            Client(url, "kp_x", timeout=0.3, retries=0) as c,
            pytest.raises(e.TransportError) as info,
        ):
            c.list_stores()
        assert "within 0.3s" in info.value.message
    finally:
        stop.set()
        t.join()
        for conn in held:
            conn.close()
        listener.close()


# ---------------------------------------------------------------------------- one interface


PROTOCOL_METHODS = [
    n for n, v in vars(KeyplaneAPI).items() if callable(v) and not n.startswith("_")
]


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_same_signature_everywhere(name: str) -> None:
    """Names, kinds, defaults: the embedded API, Client, AsyncClient and the protocols."""

    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        sig = inspect.signature(fn)
        return [(p.name, p.kind, p.default) for p in sig.parameters.values()]

    want = shape(getattr(Keyplane, name))
    assert shape(getattr(Client, name)) == want
    assert shape(getattr(KeyplaneAPI, name)) == want
    if name != "close":
        assert shape(getattr(AsyncClient, name)) == want
        assert shape(getattr(AsyncKeyplaneAPI, name)) == want
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name))


def test_package_exports(tmp_path: Path, server: Server) -> None:
    assert keyplane.Client is Client and keyplane.AsyncClient is AsyncClient
    with keyplane.open(str(tmp_path / "plain-path.db")) as kp:
        assert isinstance(kp, Keyplane)
        assert kp.get_store("default").id == "default"
    remote = keyplane.connect(server.url, api_key=server.key)
    assert isinstance(remote, Client)
    remote.close()
    local = keyplane.connect(f"sqlite:///{tmp_path / 'other.db'}")
    assert isinstance(local, Keyplane)
    local.close()

"""``keyplane tuple import`` / ``export``: 10k-tuple round trips in CSV and JSON Lines
(against a real server and locally), bad rows, idempotent re-runs, server limits,
streaming."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keyplane import Client, Settings
from keyplane.cli.bulk import COLUMNS, Format, chunks, read_rows
from keyplane.cli.main import app
from keyplane.graph.tuples import Tuple
from keyplane.service.context import Services
from live_server import Server, admin_key, serve

MODEL = """\
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define viewer: [user, user with in_hours, group#member]
condition in_hours(hour: int) {
  hour >= 9 && hour < 18
}
"""

N = 10_000


def tuple_keys(n: int = N) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        if i % 10 == 3:
            out.append(
                {
                    "object": f"document:d{i}",
                    "relation": "viewer",
                    "user": f"user:u{i}",
                    "condition": {"name": "in_hours", "context": {"hour": i % 24}},
                }
            )
        elif i % 10 == 5:
            out.append(
                {
                    "object": f"document:d{i}",
                    "relation": "viewer",
                    "user": f"group:g{i % 50}#member",
                }
            )
        elif i % 7 == 0:
            out.append(
                {
                    "object": f"document:d{i}",
                    "relation": "viewer",
                    "user": f"user:u{i}",
                    "expires_at": "2030-01-01T00:00:00Z",
                }
            )
        else:
            out.append({"object": f"document:d{i}", "relation": "viewer", "user": f"user:u{i}"})
    return out


def write_jsonl(path: Path, keys: list[dict[str, Any]]) -> None:
    with path.open("w") as f:
        for k in keys:
            f.write(json.dumps(k) + "\n")


def write_csv(path: Path, keys: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for k in keys:
            cond = k.get("condition")
            w.writerow(
                [
                    k["object"],
                    k["relation"],
                    k["user"],
                    cond["name"] if cond else "",
                    json.dumps(cond["context"]) if cond else "",
                    k.get("expires_at", ""),
                ]
            )


def canonical(keys: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(Tuple.from_dict(k).to_dict(), sort_keys=True) for k in keys)


def exported(text: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line]
    keys = []
    for row in csv.DictReader(io.StringIO(text)):
        k: dict[str, Any] = {
            "object": row["object"],
            "relation": row["relation"],
            "user": row["user"],
        }
        if row["condition_name"]:
            k["condition"] = {
                "name": row["condition_name"],
                "context": json.loads(row["condition_context"]),
            }
        if row["expires_at"]:
            k["expires_at"] = row["expires_at"]
        keys.append(k)
    return keys


Invoke = Callable[..., tuple[int, str, str]]


def _invoker(env: dict[str, str]) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        res = runner.invoke(app, list(args), env=env, input=stdin)
        return res.exit_code, res.stdout, res.stderr

    return invoke


def _server(tmp_path: Path, **settings: Any) -> Iterator[Server]:
    svc = Services.open(Settings(database_url=f"sqlite:///{tmp_path / 'server.db'}", **settings))
    try:
        key = admin_key(svc)
        with serve(svc) as url:
            with Client(url, key) as c:
                c.create_store("default", store_id="default")
                c.write_model(MODEL, store="default")
            yield Server(url, key, svc)
    finally:
        svc.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _server(tmp_path)


@pytest.fixture
def remote(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.chdir(tmp_path)
    return _invoker({"KEYPLANE_URL": server.url, "KEYPLANE_API_KEY": server.key})


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEYPLANE_URL", raising=False)
    invoke = _invoker({"KEYPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"})
    (tmp_path / "model.fga").write_text(MODEL)
    assert invoke("model", "write", "model.fga")[0] == 0
    return invoke


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip_10k_remote(fmt: str, remote: Invoke, tmp_path: Path) -> None:
    keys = tuple_keys()
    path = tmp_path / f"in.{fmt}"
    (write_csv if fmt == "csv" else write_jsonl)(path, keys)
    rc, out, err = remote("tuple", "import", str(path), "-o", "json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["tuples"] == N and summary["chunks"] == 10
    assert summary["lines"] == ([2, N + 1] if fmt == "csv" else [1, N])
    rc, out, err = remote("tuple", "export", "--format", fmt)
    assert rc == 0 and f"exported {N} tuple(s)" in err
    assert canonical(exported(out, fmt)) == canonical(keys)
    # filters reach the server: one type, one object
    rc, out, _ = remote("tuple", "export", "--object", "document:d3", "--format", fmt)
    assert exported(out, fmt) == [Tuple.from_dict(keys[3]).to_dict()]


def test_round_trip_local_and_across_formats(local: Invoke, remote: Invoke, tmp_path: Path) -> None:
    """CSV in locally → JSON Lines out → into a server → CSV out: the same tuples."""
    keys = tuple_keys(2500)
    write_csv(tmp_path / "in.csv", keys)
    assert local("tuple", "import", "in.csv", "--chunk-size", "400")[0] == 0
    rc, out, _ = local("tuple", "export", "--format", "jsonl", "--page-size", "333")
    assert rc == 0
    (tmp_path / "mid.jsonl").write_text(out)
    assert remote("tuple", "import", "mid.jsonl")[0] == 0
    rc, out, _ = remote("tuple", "export", "--format", "csv")
    assert canonical(exported(out, "csv")) == canonical(keys)


def test_import_from_stdin(remote: Invoke) -> None:
    lines = "".join(json.dumps(k) + "\n" for k in tuple_keys(30))
    rc, out, _ = remote("tuple", "import", "-", "-o", "json", stdin=lines)
    assert rc == 0 and json.loads(out)["tuples"] == 30
    csv_text = "object,relation,user\ndocument:s1,viewer,user:s\n"
    rc, out, _ = remote("tuple", "import", "-", "--format", "csv", "-o", "json", stdin=csv_text)
    assert rc == 0 and json.loads(out)["tuples"] == 1


# ---------------------------------------------------------------------------- failures


def _count(invoke: Invoke) -> int:
    rc, out, _ = invoke("tuple", "export")
    assert rc == 0
    return len(out.splitlines())


def test_bad_row_stops_before_its_chunk_and_a_rerun_continues(
    remote: Invoke, tmp_path: Path
) -> None:
    keys = tuple_keys(2500)
    path = tmp_path / "in.csv"
    write_csv(path, keys)
    lines = path.read_text().splitlines(keepends=True)
    lines[1699] = "document:d1698,viewer,not a user,,,\n"  # file line 1700
    path.write_text("".join(lines))
    rc, out, err = remote("tuple", "import", str(path), "--chunk-size", "500")
    assert rc == 1
    assert "error[invalid_tuple]: line 1700:" in err
    assert "1500 tuple(s) in 3 chunk(s) (lines 2–1501) were written" in err
    assert _count(remote) == 1500  # nothing of lines 1502–2001

    # without --idempotent a re-run stops at once on the first committed row
    lines[1699] = "document:d1698,viewer,user:u1698,,,\n"
    path.write_text("".join(lines))
    rc, _, err = remote("tuple", "import", str(path), "--chunk-size", "500")
    assert rc == 1 and "error[tuple_exists]: line 2:" in err and "nothing was written" in err
    assert _count(remote) == 1500

    rc, out, err = remote(
        "tuple", "import", str(path), "--chunk-size", "500", "--idempotent", "-o", "json"
    )
    assert rc == 0, err
    assert json.loads(out)["tuples"] == 2500
    rc, out, _ = remote("tuple", "export")
    assert canonical([json.loads(x) for x in out.splitlines()]) == canonical(keys)


@pytest.mark.parametrize(
    ("row", "code", "where"),
    [
        (
            '{"object": "document:a", "relation": "viewer"}',
            "invalid_tuple",
            "line 3: tuple is missing the field 'user'",
        ),
        ("not json", "invalid_tuple", "line 3: not JSON"),
        ("[1, 2]", "invalid_tuple", "line 3: expected a JSON object"),
        (
            '{"object": "document:a", "relation": "viewer", "user": "group:g#member", "condition": {"name": "in_hours"}}',
            "invalid_tuple",
            "line 3: invalid tuple",
        ),
        (
            '{"object": "robot:1", "relation": "viewer", "user": "user:a"}',
            "type_not_found",
            "in the chunk of lines 1–4",
        ),
        (
            '{"object": "document:a", "relation": "viewer", "user": "user:a", "expires_at": "soon"}',
            "invalid_tuple",
            "line 3: expires_at 'soon'",
        ),
    ],
)
def test_bad_jsonl_rows(row: str, code: str, where: str, remote: Invoke, tmp_path: Path) -> None:
    good = [
        json.dumps({"object": f"document:ok{i}", "relation": "viewer", "user": "user:a"})
        for i in range(3)
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join([good[0], good[1], row, good[2]]) + "\n")
    rc, _, err = remote("tuple", "import", str(path))
    assert rc == 1
    assert f"error[{code}]" in err and where in err, err
    assert "nothing was written" in err
    assert _count(remote) == 0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "object,relation\ndocument:a,viewer\n",
            "line 1: the header must name object, relation, user",
        ),
        ("object,relation,user,colour\n", "unknown: colour"),
        ("object,relation,user\ndocument:a,viewer\n", "line 2: expected 3 cells, found 2"),
        (
            "object,relation,user,condition_name,condition_context\ndocument:a,viewer,user:a,in_hours,{bad\n",
            "line 2: condition_context is not JSON",
        ),
        (
            "object,relation,user,condition_context\ndocument:a,viewer,user:a,{}\n",
            "line 2: condition_context without condition_name",
        ),
    ],
)
def test_bad_csv(text: str, where: str, remote: Invoke, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(text)
    rc, _, err = remote("tuple", "import", "bad.csv")
    assert rc == 1 and "error[invalid_tuple]" in err and where in err, err


def test_csv_quoting_conditions_and_column_order(remote: Invoke, tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_text(
        "user,expires_at,relation,object,condition_name,condition_context\n"
        'user:dave,,viewer,document:shift,in_hours,"{""hour"": 9}"\n'
        "user:erin,2030-01-01T00:00:00Z,viewer,document:temp,,\n"
        "\n"
    )
    rc, _, err = remote("tuple", "import", "q.csv")
    assert rc == 0, err
    rc, out, _ = remote("tuple", "export", "--format", "jsonl")
    got = sorted(out.splitlines())
    assert json.loads(got[0]) == {
        "object": "document:shift",
        "relation": "viewer",
        "user": "user:dave",
        "condition": {"name": "in_hours", "context": {"hour": 9}},
    }
    assert json.loads(got[1])["expires_at"] == "2030-01-01T00:00:00Z"


def test_unknown_extension_needs_format(remote: Invoke, tmp_path: Path) -> None:
    (tmp_path / "rows.txt").write_text("")
    rc, _, err = remote("tuple", "import", "rows.txt")
    assert rc == 2 and "--format" in err


def test_chunks_and_pages_shrink_to_the_server_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for srv in _server(tmp_path, max_write_tuples=100, max_page_size=100):
        invoke = _invoker({"KEYPLANE_URL": srv.url, "KEYPLANE_API_KEY": srv.key})
        write_jsonl(tmp_path / "in.jsonl", tuple_keys(1050))
        rc, out, err = invoke("tuple", "import", "in.jsonl", "--chunk-size", "1000", "-o", "json")
        assert rc == 0, err
        summary = json.loads(out)
        assert (
            summary["chunk_size"] == 100 and summary["chunks"] == 11 and summary["tuples"] == 1050
        )
        # export asks for pages of 1000; the server's page limit is 100: pages shrink
        rc, out, err = invoke("tuple", "export", "--page-size", "1000")
        assert rc == 0, err
        assert canonical([json.loads(x) for x in out.splitlines()]) == canonical(tuple_keys(1050))


# ---------------------------------------------------------------------------- streaming


def test_reading_is_lazy() -> None:
    """A chunk is built from only as many lines as it needs: the file is never read whole."""
    consumed = 0

    def endless(header: str | None) -> Iterator[str]:
        nonlocal consumed
        if header:
            consumed += 1
            yield header
        i = 0
        while True:
            consumed += 1
            if consumed > 2500:
                raise AssertionError("read past the chunk being built")
            i += 1
            yield (
                f"document:d{i},viewer,user:u{i}\n"
                if header
                else json.dumps(
                    {"object": f"document:d{i}", "relation": "viewer", "user": "user:u"}
                )
                + "\n"
            )

    for fmt, header in ((Format.csv, "object,relation,user\n"), (Format.jsonl, None)):
        consumed = 0
        it = chunks(read_rows(endless(header), fmt), 1000)
        first = next(it)
        assert len(first) == 1000 and first[0][0] == (2 if header else 1)
        assert consumed <= 1001 + (1 if header else 0)
        second = next(it)
        assert second[0][0] == first[-1][0] + 1

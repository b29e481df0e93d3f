"""Docs held in place by tests: every setting, error code, CLI command and MCP tool is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from keyplane.cli.main import app
from keyplane.config import SETTINGS_ENV, Settings
from keyplane.errors import all_error_classes

ROOT = Path(__file__).resolve().parents[1]


def test_every_error_code_is_documented() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    for cls in all_error_classes():
        assert f"`{cls.code}`" in text, f"{cls.__name__} ({cls.code}) missing from docs/errors.md"


def test_error_codes_are_unique() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes))


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert set(SETTINGS_ENV) == set(Settings.__dataclass_fields__)
    for var in SETTINGS_ENV.values():
        assert f"`{var}`" in text, f"{var} missing from docs/configuration.md"


def _commands(group: typer.Typer, prefix: str = "") -> list[str]:
    click_group = typer.main.get_command(group)
    names: list[str] = []
    for name, cmd in click_group.commands.items():  # type: ignore[attr-defined]
        full = f"{prefix}{name}"
        sub = getattr(cmd, "commands", None)
        if sub:
            names.extend(f"{full} {s}" for s in sub)
        else:
            names.append(full)
    return names


@pytest.mark.parametrize("command", _commands(app))
def test_every_cli_command_is_documented(command: str) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    assert f"keyplane {command}" in text, f"`keyplane {command}` missing from docs/cli.md"


def _mcp_tools() -> list[str]:
    from keyplane.mcp import build_tools

    return sorted(build_tools("default"))


@pytest.mark.parametrize("tool", _mcp_tools())
def test_every_mcp_tool_is_documented(tool: str) -> None:
    text = (ROOT / "docs" / "mcp.md").read_text()
    assert f"| `{tool}` |" in text, f"MCP tool `{tool}` missing from the tools table of docs/mcp.md"


def _openfga_routes() -> list[str]:
    from fastapi.routing import APIRoute

    from keyplane.api.openfga import router

    return sorted(
        f"{method} {r.path}"
        for r in router.routes
        if isinstance(r, APIRoute)
        for method in r.methods
    )


@pytest.mark.parametrize("route", _openfga_routes())
def test_every_openfga_compatible_endpoint_is_documented(route: str) -> None:
    text = (ROOT / "docs" / "openfga-compat.md").read_text()
    assert f"| `{route}` |" in text, f"`{route}` missing from the table of docs/openfga-compat.md"


def _sdk_methods() -> list[str]:
    from keyplane.sdk import KeyplaneAPI

    return sorted(n for n, v in vars(KeyplaneAPI).items() if callable(v) and not n.startswith("_"))


@pytest.mark.parametrize("method", [m for m in _sdk_methods() if m != "close"])
def test_every_sdk_method_is_documented(method: str) -> None:
    text = (ROOT / "docs" / "sdk.md").read_text()
    assert f"`{method}(" in text, f"`{method}(…)` missing from the methods table of docs/sdk.md"


def _rest_routes() -> list[str]:
    # from the OpenAPI document the server serves: included routers are not flattened
    # into .routes on every FastAPI version, the document always lists every operation
    from keyplane.api.openapi import openapi_document

    return sorted(
        f"{method.upper()} {path}"
        for path, ops in openapi_document()["paths"].items()
        if path.startswith("/v1/")
        or path in ("/healthz", "/readyz", "/metrics")
        or "/access/v1/" in path  # AuthZEN (also docs/authzen.md)
        or "authzen-configuration" in path
        for method in ops
    )


@pytest.mark.parametrize("route", _rest_routes())
def test_every_rest_endpoint_is_documented(route: str) -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    assert f"| `{route}` |" in text, f"`{route}` missing from the tables of docs/api.md"


def test_every_ledger_event_type_is_documented() -> None:
    from keyplane.ledger.events import EVENT_TYPES

    text = (ROOT / "docs" / "ledger.md").read_text()
    section = text.split("## Event types", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("`")[1] for line in section.splitlines() if line.startswith("- `")}
    assert documented == set(EVENT_TYPES), "docs/ledger.md 'Event types' and EVENT_TYPES differ"

"""What the MCP gateway's admin operations (:mod:`keyplane.service.gateway`) accept, and
how a discovery changes a tool — pure functions, no storage.

Inputs: server and tool names, URLs (absolute http(s), no credentials in them), stdio
commands (argv, no shell) and environments (POSIX names), downstream credentials checked
against the transport (``bearer``, ``header``, ``oauth_client_credentials`` for http;
``env`` for stdio) and their secrets (printable ASCII when sent in a header: no header
injection). Each refusal is a :class:`~keyplane.errors.ValidationError` naming the field.

Discovery (:func:`listed_definitions`, :func:`after_discovery`): what a server listed,
as stored definitions with their digest (names the gateway cannot take skipped, with
why), and the lifecycle of :mod:`keyplane.gateway.records` applied to one tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlsplit

from keyplane.errors import ValidationError
from keyplane.gateway.records import (
    CREDENTIAL_KINDS,
    MAX_COMMAND_PARTS,
    MAX_ENV_VARS,
    SERVER_NAME_RE,
    TOOL_NAME_RE,
    TOOLSET_NAME_RE,
    DownstreamCredential,
    McpTool,
    definition_digest,
    proposed_classification,
    split_ref,
)

__all__ = [
    "MAX_DEFINITION_BYTES",
    "MAX_DISCOVERY_SECONDS",
    "MAX_SECRET_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TOOLSET_TOOLS",
    "MAX_TOOLS_PER_SERVER",
    "MAX_URL_CHARS",
    "MIN_DISCOVERY_SECONDS",
    "after_discovery",
    "check_command",
    "check_credential",
    "check_env",
    "check_interval",
    "check_ref",
    "check_secret",
    "check_server_name",
    "check_text",
    "check_tool_name",
    "check_toolset_name",
    "check_url",
    "listed_definitions",
]

#: tools kept per server (a server listing more: the rest are skipped)
MAX_TOOLS_PER_SERVER: Final = 1000
#: tools one toolset may hold
MAX_TOOLSET_TOOLS: Final = 1000
#: a tool definition (title, description, schema, annotations as JSON) larger is skipped
MAX_DEFINITION_BYTES: Final = 256 * 1024
#: discovery intervals: 0 (on demand only) or this range
MIN_DISCOVERY_SECONDS: Final = 60
MAX_DISCOVERY_SECONDS: Final = 30 * 86400
MAX_SECRET_CHARS: Final = 8192
MAX_URL_CHARS: Final = 2048
MAX_TEXT_CHARS: Final = 1024

_ENV_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER_RE: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
#: headers the gateway's HTTP client and the MCP transport own
_RESERVED_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    }
)
#: credential fields a caller may give, per kind (besides ``kind``); the first are required
_CREDENTIAL_FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "none": ((), ()),
    "bearer": ((), ()),
    "header": (("header",), ()),
    "oauth_client_credentials": (("token_url", "client_id"), ("scope", "audience")),
    "env": (("env_var",), ()),
}
_HTTP_KINDS: Final = ("bearer", "header", "oauth_client_credentials")


def check_text(value: Any, what: str, *, limit: int = MAX_TEXT_CHARS) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise ValidationError(
            f"{what} must be a string of at most {limit} characters",
            details={"field": what},
        )
    return value


def check_server_name(name: Any) -> str:
    if not isinstance(name, str) or not SERVER_NAME_RE.match(name):
        raise ValidationError(
            f"invalid server name {str(name)[:100]!r}: 1-32 lower-case letters, digits and "
            "inner hyphens",
            details={"field": "name", "name": str(name)[:100]},
        )
    return name


def check_tool_name(name: Any) -> str:
    if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
        raise ValidationError(
            f"invalid tool name {str(name)[:150]!r}: 1-128 of A-Z a-z 0-9 _ . -",
            details={"field": "tool", "tool": str(name)[:150]},
        )
    return name


def check_ref(ref: Any, what: str = "tool") -> tuple[str, str]:
    parts = split_ref(ref) if isinstance(ref, str) else None
    if parts is None:
        raise ValidationError(
            f"invalid {what} {str(ref)[:200]!r}: '<server>/<tool>'",
            details={"field": what, what: str(ref)[:200]},
        )
    return parts


def check_url(value: Any, what: str = "url") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        raise ValidationError(
            f"{what} must be an absolute http(s) URL of at most {MAX_URL_CHARS} characters",
            details={"field": what},
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValidationError(f"{what} is not a valid URL", details={"field": what}) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError(
            f"{what} must be an absolute http or https URL", details={"field": what}
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            f"{what} must not hold credentials: give them as the server's credential "
            "(stored encrypted), not in the URL",
            details={"field": what},
        )
    if parts.fragment or any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ValidationError(
            f"{what} must have no fragment, spaces or control characters",
            details={"field": what},
        )
    return value


def check_command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ValidationError(
            "command must be a non-empty list of strings (argv: the program, then its "
            "arguments; no shell)",
            details={"field": "command"},
        )
    if len(value) > MAX_COMMAND_PARTS:
        raise ValidationError(
            f"command has more than {MAX_COMMAND_PARTS} parts", details={"field": "command"}
        )
    for part in value:
        if not isinstance(part, str) or len(part) > 4096 or "\x00" in part:
            raise ValidationError(
                "every part of command must be a string of at most 4096 characters",
                details={"field": "command"},
            )
    if not value[0].strip():
        raise ValidationError("command must name a program", details={"field": "command"})
    return tuple(value)


def check_env(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError(
            "env must be a mapping of variable names to values", details={"field": "env"}
        )
    if len(value) > MAX_ENV_VARS:
        raise ValidationError(
            f"env has more than {MAX_ENV_VARS} variables", details={"field": "env"}
        )
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _ENV_NAME_RE.match(k):
            raise ValidationError(
                f"invalid environment variable name {str(k)[:100]!r} (POSIX: letters, "
                "digits and '_', not starting with a digit)",
                details={"field": "env", "name": str(k)[:100]},
            )
        if not isinstance(v, str) or len(v) > 8192 or "\x00" in v:
            raise ValidationError(
                f"the value of {k} must be a string of at most 8192 characters",
                details={"field": "env", "name": k},
            )
        out[k] = v
    return out


def check_interval(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 0 or MIN_DISCOVERY_SECONDS <= value <= MAX_DISCOVERY_SECONDS)
    ):
        raise ValidationError(
            "discovery_interval_seconds must be 0 (on demand only) or an integer in "
            f"{MIN_DISCOVERY_SECONDS}..{MAX_DISCOVERY_SECONDS}",
            details={"field": "discovery_interval_seconds", "value": str(value)[:50]},
        )
    return value


def check_credential(value: Any, transport: str, env: Mapping[str, str]) -> DownstreamCredential:
    """A caller's credential (the fields of DownstreamCredential except ``secret_set_at``)
    checked against the server's transport; ``secret_set_at`` is left None."""
    if value is None:
        return DownstreamCredential()
    if isinstance(value, DownstreamCredential):
        value = value.to_json()
        value.pop("secret_set_at", None)
    if not isinstance(value, Mapping):
        raise ValidationError(
            "credential must be a mapping with a 'kind'", details={"field": "credential"}
        )
    kind = value.get("kind", "none")
    if kind not in CREDENTIAL_KINDS:
        raise ValidationError(
            f"unknown credential kind {str(kind)[:50]!r}: one of {', '.join(CREDENTIAL_KINDS)}",
            details={"field": "credential.kind"},
        )
    required, optional = _CREDENTIAL_FIELDS[kind]
    given = {k: v for k, v in value.items() if k != "kind" and v is not None}
    unknown = sorted(set(given) - set(required) - set(optional))
    if unknown:
        raise ValidationError(
            f"a {kind!r} credential takes no {', '.join(map(str, unknown))[:200]}"
            + (f" (it takes {', '.join(required + optional)})" if required + optional else ""),
            details={"field": "credential", "unexpected": [str(u)[:50] for u in unknown]},
        )
    for name in required:
        if name not in given:
            raise ValidationError(
                f"a {kind!r} credential needs {name}", details={"field": f"credential.{name}"}
            )
    if kind in _HTTP_KINDS and transport != "http":
        raise ValidationError(
            f"a {kind!r} credential is for http servers; a stdio server takes 'env'",
            details={"field": "credential.kind"},
        )
    if kind == "env" and transport != "stdio":
        raise ValidationError(
            "an 'env' credential is for stdio servers; an http server takes 'bearer', "
            "'header' or 'oauth_client_credentials'",
            details={"field": "credential.kind"},
        )
    out: dict[str, Any] = {"kind": kind}
    if kind == "header":
        header = given["header"]
        if not isinstance(header, str) or not _HEADER_RE.match(header):
            raise ValidationError(
                "credential.header must be an HTTP header name",
                details={"field": "credential.header"},
            )
        if header.lower() in _RESERVED_HEADERS:
            raise ValidationError(
                f"credential.header {header!r} is set by the gateway's MCP transport",
                details={"field": "credential.header"},
            )
        out["header"] = header
    if kind == "oauth_client_credentials":
        out["token_url"] = check_url(given["token_url"], "credential.token_url")
        for name in ("client_id", "scope", "audience"):
            if name in given:
                text = check_text(given[name], f"credential.{name}")
                if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
                    raise ValidationError(
                        f"credential.{name} must be non-empty text without control characters",
                        details={"field": f"credential.{name}"},
                    )
                out[name] = text
    if kind == "env":
        var = given["env_var"]
        if not isinstance(var, str) or not _ENV_NAME_RE.match(var):
            raise ValidationError(
                "credential.env_var must be an environment variable name (POSIX)",
                details={"field": "credential.env_var"},
            )
        if var in env:
            raise ValidationError(
                f"credential.env_var {var!r} is also in env: the secret's variable must be "
                "the secret's alone",
                details={"field": "credential.env_var"},
            )
        out["env_var"] = var
    return DownstreamCredential.from_json(out)


def check_secret(value: Any, kind: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_SECRET_CHARS:
        raise ValidationError(
            f"secret must be a non-empty string of at most {MAX_SECRET_CHARS} characters",
            details={"field": "secret"},
        )
    if kind in ("bearer", "header"):
        # sent in an HTTP header: visible ASCII only (no header injection)
        if value != value.strip() or any(not 0x20 <= ord(c) < 0x7F for c in value):
            raise ValidationError(
                "a bearer or header secret must be printable ASCII without surrounding spaces",
                details={"field": "secret"},
            )
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValidationError("secret must have no control characters", details={"field": "secret"})
    return value


def check_toolset_name(name: Any) -> str:
    if not isinstance(name, str) or not TOOLSET_NAME_RE.match(name):
        raise ValidationError(
            f"invalid toolset name {str(name)[:100]!r}: 1-64 of a-z 0-9 _ . -, starting "
            "with a letter or digit",
            details={"field": "name", "name": str(name)[:100]},
        )
    return name


def listed_definitions(listed: Sequence[Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The server's tools by name, as stored definitions, and the ones skipped (why)."""
    tools: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for t in listed:
        name = getattr(t, "name", None)
        label = str(name)[:128]
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            skipped[label] = "invalid name: 1-128 of A-Z a-z 0-9 _ . -"
            continue
        if name in tools:
            skipped[label] = "listed more than once"
            continue
        if len(tools) >= MAX_TOOLS_PER_SERVER:
            skipped[label] = f"more than {MAX_TOOLS_PER_SERVER} tools"
            continue
        ann_obj = getattr(t, "annotations", None)
        annotations: dict[str, Any] = (
            ann_obj.model_dump(mode="json", by_alias=True, exclude_none=True)
            if ann_obj is not None
            else {}
        )
        title = getattr(t, "title", None) or annotations.get("title")
        schema = getattr(t, "input_schema", None)
        schema = dict(schema) if isinstance(schema, Mapping) else {}
        desc = getattr(t, "description", None)
        title = title if isinstance(title, str) else None
        desc = desc if isinstance(desc, str) else None
        definition: dict[str, Any] = {
            "title": title,
            "description": desc,
            "input_schema": schema,
            "annotations": annotations,
        }
        try:
            size = len(json.dumps(definition, default=str).encode())
        except (TypeError, ValueError):
            skipped[label] = "definition is not JSON"
            continue
        if size > MAX_DEFINITION_BYTES:
            skipped[label] = f"definition larger than {MAX_DEFINITION_BYTES} bytes"
            continue
        definition["digest"] = definition_digest(desc, schema, annotations, title)
        tools[name] = definition
    return tools, skipped


def after_discovery(
    old: McpTool | None, d: dict[str, Any], store_id: str, server: str, name: str, now: float
) -> tuple[McpTool, str]:
    """The tool after a discovery listed it, and what happened (added / changed /
    unchanged)."""
    fields = {k: d[k] for k in ("title", "description", "input_schema", "annotations", "digest")}
    if old is None:
        kind, risk = proposed_classification(d["annotations"])
        tool = McpTool(
            store_id=store_id, server=server, name=name, **fields, status="pending",
            status_reason="new: awaiting approval", kind=kind, risk=risk, first_seen_at=now,
            last_seen_at=now, updated_at=now,
        )  # fmt: skip
        return tool, "added"
    if old.status == "removed":
        tool = replace(
            old, **fields, status="pending", status_reason="reappeared: awaiting approval",
            removed_at=None, last_seen_at=now, updated_at=now,
        )  # fmt: skip
        return tool, "added"
    if d["digest"] == old.digest:
        return replace(old, last_seen_at=now), "unchanged"
    tool = replace(old, **fields, last_seen_at=now, updated_at=now)
    if old.approved_digest is None and (old.kind, old.risk) == proposed_classification(
        old.annotations
    ):
        kind, risk = proposed_classification(d["annotations"])  # never reviewed: propose anew
        tool = replace(tool, kind=kind, risk=risk)
    if old.status in ("enabled", "pending"):
        if d["digest"] == old.approved_digest:
            tool = replace(tool, status="enabled", status_reason=None)  # back to the approved one
        else:
            tool = replace(tool, status="pending", status_reason="definition changed")
    return tool, "changed"

"""``keyplane token …`` — access tokens (issue 6).

* ``introspect`` and ``revoke``: control-plane operations, like every command either on the
  local database (``--db``) or a server (``--url`` + ``--api-key``).
* ``client-credentials`` and ``exchange``: ask a server's OAuth token endpoint for a token
  with a client credential (``--client-id`` + ``--client-secret`` or ``--private-key``) — for
  people trying the token flows by hand. They need ``--url``; they print the endpoint's JSON.

A token argument ``-`` is read from standard input (a token on the command line is seen by
every user of the machine in the process list).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from keyplane.cli.common import (
    ApiKeyOpt,
    DbOpt,
    JsonOpt,
    OutputOpt,
    UrlOpt,
    connect,
    emit_json,
    err,
    out,
    timestamp,
    wants_json,
)
from keyplane.errors import KeyplaneError

__all__ = ["token_app"]

token_app = typer.Typer(
    help="Access tokens: introspect and revoke them; get one from the OAuth token endpoint "
    "with a client credential.",
    no_args_is_help=True,
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", envvar="KEYPLANE_STORE", help="Store id.")]
OAuthStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        envvar="KEYPLANE_STORE",
        help="Store id (default: the server's default store, /oauth2/token).",
    ),
]
ClientIdOpt = Annotated[
    str,
    typer.Option(
        "--client-id", envvar="KEYPLANE_CLIENT_ID", help="The client: an identity, e.g. agent:bot."
    ),
]
ClientSecretOpt = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar="KEYPLANE_CLIENT_SECRET",
        help="The client secret (client_secret_basic). Prefer the environment variable.",
    ),
]
PrivateKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--private-key",
        help="A file holding the client's private key (PEM or JWK): private_key_jwt.",
    ),
]
ScopeOpt = Annotated[
    str | None, typer.Option("--scope", help="Space-delimited scopes, e.g. 'document:*#read'.")
]
AudienceOpt = Annotated[
    list[str] | None, typer.Option("--audience", help="An audience (repeatable).")
]
ResourceOpt = Annotated[
    list[str] | None, typer.Option("--resource", help="A resource URI (repeatable, RFC 8707).")
]
PurposeOpt = Annotated[str | None, typer.Option("--purpose", help="The purpose of use.")]


def _usage(message: str) -> NoReturn:
    err.print(f"error[validation_error]: {message}", markup=False, highlight=False)
    raise typer.Exit(2)


def _token(value: str, what: str = "TOKEN") -> str:
    if value == "-":
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        _usage(f"{what} is empty")
    return value


@token_app.command("introspect")
def token_introspect(
    token: Annotated[str, typer.Argument(help="The access token, or - to read it from stdin.")],
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Whether a token is live now, and its claims (RFC 7662 JSON)."""
    value = _token(token)
    with connect(db, url, api_key) as kp:
        answer = kp.introspect_token(value, store=store)
    emit_json(answer)
    if not answer.get("active"):
        raise typer.Exit(3)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[
        str | None,
        typer.Argument(help="The access token, or - to read it from stdin (or give --jti)."),
    ] = None,
    jti: Annotated[
        str | None, typer.Option("--jti", help="Revoke the token with this id instead.")
    ] = None,
    expires_at: Annotated[
        float | None,
        typer.Option("--expires-at", help="With --jti: the token's exp, when known."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="With --jti: why (recorded).")
    ] = None,
    store: StoreOpt = "default",
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Revoke a token (or, with --jti, the token with that id) and every token exchanged
    from it, at once."""
    if (token is None) == (jti is None):
        _usage("give a TOKEN or --jti, not both")
    value = None if token is None else _token(token)
    with connect(db, url, api_key) as kp:
        r = kp.revoke_token(value, store=store, jti=jti, expires_at=expires_at, reason=reason)
    if wants_json(as_json, output):
        emit_json(r.to_dict())
        return
    if r.revoked:
        at = "" if r.revision is None else f" (revision {r.revision})"
        out.print(f"Revoked token {r.jti}{at}", highlight=False, markup=False)
    else:
        out.print("Nothing to revoke: not a live token of this store", highlight=False)


# ---------------------------------------------------------------------------- OAuth grants


def _oauth_client(
    url: str | None,
    client_id: str,
    client_secret: str | None,
    private_key: Path | None,
    store: str | None,
) -> Any:
    from keyplane.sdk.oauth import TokenClient

    if not url:
        _usage("the OAuth token endpoint is a server's: give --url (or KEYPLANE_URL)")
    if (client_secret is None) == (private_key is None):
        _usage("give --client-secret (or KEYPLANE_CLIENT_SECRET) or --private-key, not both")
    key: str | None = None
    if private_key is not None:
        try:
            key = private_key.read_text()
        except OSError as exc:
            _usage(f"--private-key: {exc}")
    try:
        return TokenClient(
            url, client_id, client_secret=client_secret, private_key=key, store=store
        )
    except ValueError as exc:
        _usage(f"--private-key: {exc}")


def _call(fn: Any, **kw: Any) -> None:
    from keyplane.sdk.oauth import OAuthResponseError

    try:
        answer = fn(**kw)
    except OAuthResponseError as exc:
        err.print(
            f"error[{exc.error}]: {exc.description or exc.error} (HTTP {exc.status})",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None
    except KeyplaneError as exc:
        err.print(f"error[{exc.code}]: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    emit_json(answer)
    expires_in = answer.get("expires_in") if isinstance(answer, dict) else None
    if isinstance(expires_in, int):
        import time

        err.print(f"expires {timestamp(time.time() + expires_in)}", highlight=False)


@token_app.command("client-credentials")
def token_client_credentials(
    client_id: ClientIdOpt,
    client_secret: ClientSecretOpt = None,
    private_key: PrivateKeyOpt = None,
    scope: ScopeOpt = None,
    audience: AudienceOpt = None,
    resource: ResourceOpt = None,
    purpose: PurposeOpt = None,
    store: OAuthStoreOpt = None,
    url: UrlOpt = None,
) -> None:
    """A token for the client itself (the client_credentials grant); prints the
    endpoint's JSON answer."""
    tc = _oauth_client(url, client_id, client_secret, private_key, store)
    with tc:
        _call(
            tc.client_credentials,
            scope=scope,
            audience=audience or (),
            resource=resource or (),
            purpose=purpose,
        )


@token_app.command("exchange")
def token_exchange(
    client_id: ClientIdOpt,
    subject_token: Annotated[
        str,
        typer.Option(
            "--subject-token", help="The token of the party acted for, or - to read stdin."
        ),
    ],
    subject_token_type: Annotated[
        str,
        typer.Option(
            "--subject-token-type",
            help="Its type (urn:ietf:params:oauth:token-type:access_token or …:jwt).",
        ),
    ] = "urn:ietf:params:oauth:token-type:access_token",
    actor_token: Annotated[
        str | None,
        typer.Option("--actor-token", help="The client's own token (none: impersonation)."),
    ] = None,
    actor_token_type: Annotated[
        str | None, typer.Option("--actor-token-type", help="Its type (default access_token).")
    ] = None,
    requested_token_type: Annotated[
        str | None, typer.Option("--requested-token-type", help="The token type wanted.")
    ] = None,
    delegation_id: Annotated[
        str | None, typer.Option("--delegation-id", help="The delegation to act under.")
    ] = None,
    client_secret: ClientSecretOpt = None,
    private_key: PrivateKeyOpt = None,
    scope: ScopeOpt = None,
    audience: AudienceOpt = None,
    resource: ResourceOpt = None,
    purpose: PurposeOpt = None,
    store: OAuthStoreOpt = None,
    url: UrlOpt = None,
) -> None:
    """Exchange a token (RFC 8693): a token for the subject with this client acting for
    them, under a delegation; prints the endpoint's JSON answer."""
    if subject_token == "-" and actor_token == "-":
        _usage("only one of --subject-token and --actor-token can be read from stdin")
    subject = _token(subject_token, "--subject-token")
    actor = None if actor_token is None else _token(actor_token, "--actor-token")
    tc = _oauth_client(url, client_id, client_secret, private_key, store)
    with tc:
        _call(
            tc.exchange,
            subject_token=subject,
            subject_token_type=subject_token_type,
            actor_token=actor,
            actor_token_type=actor_token_type,
            requested_token_type=requested_token_type,
            scope=scope,
            audience=audience or (),
            resource=resource or (),
            purpose=purpose,
            delegation_id=delegation_id,
        )

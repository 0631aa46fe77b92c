"""`deskbridge connect resourceguru`: a peer platform whose connecting is more than its fields, by hand.

Resource Guru is connected with the authorisation code its consent page sent to the redirect URI: it
is exchanged here once for the token pair kept (encrypted) with the app's credentials. As everywhere,
secrets come from environment variables, never the command line, and are never printed back. Every
other kind's command is built from its descriptor (connect.py).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from deskbridge.commands.common import OrgOption, fail, organisation, out, store
from store.models import ConnectionKind

Name = Annotated[str | None, typer.Option("--name", help="What the connection is called; a default per kind.")]


def _secret(variable: str, what: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        fail(f"the environment variable {variable} ({what}) is not set or empty.")
    return value


def _done(connection_id: int, summary: str) -> None:
    out().print(summary, markup=False, soft_wrap=True)
    out().print(f"Read its people and events now with `deskbridge sync {connection_id}`.", markup=False)


def register(app: typer.Typer) -> None:
    """Add the hand-written commands to `deskbridge connect`."""
    from deskbridge.commands.connect import _create

    @app.command("resourceguru")
    def resourceguru(
        account: Annotated[str, typer.Option("--account", help="The account URL id (app.resourceguruapp.com/<id>).")],
        client_id: Annotated[str, typer.Option("--client-id", help="The registered application's client id.")],
        redirect_uri: Annotated[str, typer.Option("--redirect-uri", help="The application's redirect URI.")],
        org: OrgOption = None,
        name: Name = None,
        secret_env: Annotated[
            str, typer.Option("--client-secret-env", help="The variable holding the application's secret.")
        ] = "RESOURCEGURU_CLIENT_SECRET",  # noqa: S107 (a variable's name)
        code_env: Annotated[
            str, typer.Option("--code-env", help="The variable holding the authorisation code the consent page gave.")
        ] = "RESOURCEGURU_CODE",
        webhook_secret_env: Annotated[
            str | None, typer.Option("--webhook-secret-env", help="The variable holding the webhooks' secret.")
        ] = None,
        api_url: Annotated[
            str | None,
            # Hidden: the worker reads the real service (DirectoryEndpoints), so only a test double
            # standing in for both may be named here.
            typer.Option("--api-url", hidden=True, help="Where Resource Guru's API lives."),
        ] = None,
    ) -> None:
        """Connect Resource Guru: people become members, bookings busy and downtime out-of-office events."""
        from connectors.records import ConnectorError
        from connectors.resourceguru import DEFAULT_BASE_URL, OAuthApp, exchange_code
        from sync.peers.readers import pair_credentials

        app_ = OAuthApp(client_id.strip(), _secret(secret_env, "client secret"), redirect_uri.strip())
        code = _secret(code_env, "authorisation code")
        webhook_secret = _secret(webhook_secret_env, "webhook secret") if webhook_secret_env else None
        settings = {"account": account.strip()}
        # A code is good once: anything that would refuse the connection is checked before it is spent.
        _check(org, ConnectionKind.RESOURCEGURU, settings)
        try:
            pair = exchange_code(app_, code, base_url=api_url or DEFAULT_BASE_URL)
        except ConnectorError as error:
            fail(error.message)
        credentials = {
            "client_id": app_.client_id,
            "client_secret": app_.client_secret,
            "redirect_uri": app_.redirect_uri,
            **pair_credentials(pair),
        }
        if webhook_secret is not None:
            credentials["webhook_secret"] = webhook_secret
        _done(*_created(_create(org, ConnectionKind.RESOURCEGURU, name or "Resource Guru", settings, credentials)))


def _created(made: tuple[int, str, str | None]) -> tuple[int, str]:
    return made[0], made[1]


def _check(org: str | None, kind: ConnectionKind, settings: dict[str, Any]) -> None:
    """Fail, changing nothing, when the organisation or the settings would refuse the connection."""
    from store.services import connections

    with store() as session:
        organisation(session, org)
        connections.validate_settings(kind, settings)

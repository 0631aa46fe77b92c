"""`deskbridge connect wheniwork|kadence|resourceguru`: peer platforms from the command line.

As for directories, secrets come from environment variables, never the command line, and are
never printed back. Resource Guru is connected with the authorisation code its consent page sent
to the redirect URI: it is exchanged here once for the token pair kept (encrypted) with the app's
credentials.
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
    """Add the peer platforms' commands to `deskbridge connect`."""
    from deskbridge.commands.connect import _create

    @app.command("wheniwork")
    def wheniwork(
        username: Annotated[str, typer.Option("--username", help="The When I Work user the worker signs in as.")],
        org: OrgOption = None,
        name: Name = None,
        key_env: Annotated[str, typer.Option("--key-env", help="The variable holding the developer key (W-Key).")] = (
            "WHENIWORK_KEY"
        ),
        password_env: Annotated[
            str, typer.Option("--password-env", help="The variable holding the user's password.")
        ] = "WHENIWORK_PASSWORD",  # noqa: S107 (a variable's name)
        office_location: Annotated[
            list[str] | None,
            typer.Option(
                "--office-location",
                help="A location whose shifts are office days, by id or name; repeat it for more. "
                "Left out: every location.",
            ),
        ] = None,
    ) -> None:
        """Connect When I Work: its users become members, shifts bookings (reason shift), time off out of office."""
        credentials = {
            "developer_key": _secret(key_env, "developer key"),
            "username": username.strip(),
            "password": _secret(password_env, "password"),
        }
        settings: dict[str, Any] = {}
        if office_location:
            settings["office_locations"] = [_location(entry) for entry in office_location]
        _done(*_created(_create(org, ConnectionKind.WHENIWORK, name or "When I Work", settings, credentials)))

    @app.command("kadence")
    def kadence(
        client_id: Annotated[str, typer.Option("--client-id", help="The Kadence API client's id.")],
        org: OrgOption = None,
        name: Name = None,
        secret_env: Annotated[
            str, typer.Option("--client-secret-env", help="The variable holding the API client's secret.")
        ] = "KADENCE_CLIENT_SECRET",  # noqa: S107 (a variable's name)
        region: Annotated[str, typer.Option("--region", help="eu or us: where the Kadence company lives.")] = "eu",
        import_desks: Annotated[bool, typer.Option("--import-desks", help="Make Kadence's desks deskbridge desks.")] = (
            False
        ),
    ) -> None:
        """Connect Kadence: its users become members, desk bookings bookings (reason WFO)."""
        settings: dict[str, Any] = {"region": region, "import_desks": import_desks}
        credentials = {"client_id": client_id.strip(), "client_secret": _secret(secret_env, "client secret")}
        _done(*_created(_create(org, ConnectionKind.KADENCE, name or "Kadence", settings, credentials)))

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


def _location(entry: str) -> int | str:
    """A When I Work location as given: digits are its id, anything else its name."""
    text = entry.strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _check(org: str | None, kind: ConnectionKind, settings: dict[str, Any]) -> None:
    """Fail, changing nothing, when the organisation or the settings would refuse the connection."""
    from store.services import connections

    with store() as session:
        organisation(session, org)
        connections.validate_settings(kind, settings)

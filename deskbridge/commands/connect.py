"""`deskbridge connect …` and `deskbridge connections`: directory and calendar connections from the command line.

Secrets are read from an environment variable or a file, never from the command line (where
shell history and `ps` would keep them), and never printed back. The one exception is a SCIM
connection's bearer token, printed once, alone on stdout, when the connection is made. An ICS
feed's URL may be given with --url too (many are public), but --url-env is there for those that
carry a token; either way it is printed with its scheme and host only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.ics import redact
from connectors.kind import Capability
from connectors.kinds import REGISTRY
from deskbridge.commands.common import OrgOption, err, fail, organisation, out, store
from deskbridge.settings import get_settings
from store.errors import NotFound
from store.models import ConnectionKind
from store.services import calendars as calendar_store
from store.services import connections, members

app = typer.Typer(help="Connect a directory people are synced from, or a calendar feed.", no_args_is_help=True)

Name = Annotated[str | None, typer.Option("--name", help="What the connection is called; a default per kind.")]
ScopeGroups = Annotated[
    list[str] | None,
    typer.Option(
        "--scope-group", help="Only members of this group (Graph group id, Google group address). Repeatable."
    ),
]
ScopeDomains = Annotated[list[str] | None, typer.Option("--scope-domain", help="Only this email domain. Repeatable.")]
ScopeOrgUnits = Annotated[
    list[str] | None, typer.Option("--scope-org-unit", help="Only this Google org unit and below. Repeatable.")
]
IncludeGuests = Annotated[bool, typer.Option("--include-guests", help="Bring in guest (B2B) accounts too.")]
TeamGroups = Annotated[
    list[str] | None,
    typer.Option("--team-group", help='Mirror this group as a team ("*" for every group). Repeatable.'),
]
Calendars = Annotated[
    bool,
    typer.Option(
        "--calendars",
        help="Also sync people's calendars: office days become bookings, bookings go into calendars "
        "(needs the calendar permission, see the README).",
    ),
]


def _settings(
    groups: list[str] | None,
    domains: list[str] | None,
    org_units: list[str] | None,
    include_guests: bool,
    team_groups: list[str] | None,
    **provider: str | None,
) -> dict[str, Any]:
    """The settings document from the common options; options left out stay out (defaults apply)."""
    scope: dict[str, Any] = {}
    for key, values in (("groups", groups), ("domains", domains), ("org_units", org_units)):
        if values:
            scope[key] = values
    if include_guests:
        scope["include_guests"] = True
    settings: dict[str, Any] = {key: value for key, value in provider.items() if value is not None}
    settings["scope"] = scope
    if team_groups:
        settings["team_groups"] = team_groups
    return settings


def _create(
    org: str | None, kind: ConnectionKind, name: str, settings: dict[str, Any], credentials: dict[str, Any]
) -> tuple[int, str, str | None]:
    # Imported here: they bring the API and worker in, which other commands need not load.
    from api.v1.endpoints.connections import default_settings
    from deskbridge.wiring import make_secret_box

    box = make_secret_box(get_settings())
    with store() as session:
        chosen = organisation(session, org)
        email = settings.get("member_email")
        if email and members.find_by_email(session, chosen.id, email) is None:
            raise NotFound(f"{chosen.slug} has no member {email}")
        connection, token = connections.create(
            session,
            box,
            chosen.id,
            kind,
            name,
            settings=default_settings(kind.value, settings),
            credentials=credentials,
        )
        if calendar_store.reads_calendars(connection):
            # The calendars known now (an ICS feed's one) are there for the worker's next calendar poll;
            # a directory's people get theirs after its sync.
            calendar_store.ensure(session, connection)
        what = REGISTRY.get(kind).title if REGISTRY.can(kind, Capability.ONE_CALENDAR) else f"{kind.value} directory"
        summary = f"Connected {what} {connection.name!r} to {chosen.slug} as connection {connection.id}."
        connection_id = connection.id
    return connection_id, summary, token


@app.command("microsoft")
def microsoft(
    tenant_id: Annotated[str, typer.Option("--tenant-id", help="The Entra ID tenant (directory) id.")],
    client_id: Annotated[str, typer.Option("--client-id", help="The app registration's application (client) id.")],
    org: OrgOption = None,
    name: Name = None,
    client_secret_env: Annotated[
        str | None, typer.Option("--client-secret-env", help="The environment variable holding the client secret.")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option("--certificate", help="A PEM file with the certificate's private key.")
    ] = None,
    thumbprint: Annotated[
        str | None, typer.Option("--thumbprint", help="The certificate's SHA-1 thumbprint, as Entra ID shows it.")
    ] = None,
    scope_group: ScopeGroups = None,
    scope_domain: ScopeDomains = None,
    scope_org_unit: ScopeOrgUnits = None,
    include_guests: IncludeGuests = False,
    team_group: TeamGroups = None,
    calendars: Calendars = False,
) -> None:
    """Connect Microsoft Entra ID (needs User.Read.All and Group.Read.All application permissions;
    with --calendars, Calendars.ReadWrite too)."""
    if (client_secret_env is None) == (certificate is None):
        fail("give either --client-secret-env VAR or --certificate PEM with --thumbprint.")
    credentials: dict[str, Any]
    if client_secret_env is not None:
        secret = os.environ.get(client_secret_env, "").strip()
        if not secret:
            fail(f"the environment variable {client_secret_env} is not set or empty.")
        credentials = {"client_secret": secret}
    else:
        assert certificate is not None
        if not thumbprint:
            fail("--certificate needs --thumbprint.")
        credentials = {"private_key": _read_pem(certificate), "thumbprint": thumbprint.strip()}
    settings = _settings(
        scope_group, scope_domain, scope_org_unit, include_guests, team_group, tenant_id=tenant_id, client_id=client_id
    )
    if calendars:
        settings["calendars"] = True
    connection_id, summary, _ = _create(
        org, ConnectionKind.MICROSOFT, name or "Microsoft Entra ID", settings, credentials
    )
    out().print(summary, markup=False, soft_wrap=True)
    out().print(f"Read the directory now with `deskbridge sync {connection_id}`.", markup=False)


def _read_pem(path: Path) -> str:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {getattr(error, 'strerror', None) or 'not a text file'}.")
    if "PRIVATE KEY-----" not in text:
        fail(f"{path} holds no PEM private key (-----BEGIN PRIVATE KEY-----).")
    return text


@app.command("google")
def google(
    admin_email: Annotated[
        str, typer.Option("--admin-email", help="A Workspace admin the service account acts as (delegation).")
    ],
    key_file: Annotated[Path, typer.Option("--key-file", help="The service account's JSON key file.")],
    org: OrgOption = None,
    name: Name = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="The Workspace customer id; my_customer if left out.")
    ] = None,
    scope_group: ScopeGroups = None,
    scope_domain: ScopeDomains = None,
    scope_org_unit: ScopeOrgUnits = None,
    include_guests: IncludeGuests = False,
    team_group: TeamGroups = None,
    calendars: Calendars = False,
) -> None:
    """Connect Google Workspace through a service account with domain-wide delegation (with
    --calendars, add the calendar.events scope to the delegation)."""
    key = _read_key(key_file)
    settings = _settings(
        scope_group,
        scope_domain,
        scope_org_unit,
        include_guests,
        team_group,
        admin_email=admin_email,
        customer=customer,
    )
    if calendars:
        settings["calendars"] = True
    connection_id, summary, _ = _create(
        org, ConnectionKind.GOOGLE, name or "Google Workspace", settings, {"service_account_key": key}
    )
    out().print(summary, markup=False, soft_wrap=True)
    out().print(f"Read the directory now with `deskbridge sync {connection_id}`.", markup=False)


def _read_key(path: Path) -> dict[str, Any]:
    # The messages name the file and the fields, never what the file holds.
    try:
        key = json.loads(path.read_text())
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}.")
    except (ValueError, UnicodeDecodeError):
        fail(f"{path} is not a JSON key file.")
    if not isinstance(key, dict) or key.get("type") != "service_account":
        fail(f"{path} is not a service-account key (its type must be service_account).")
    missing = [field for field in ("client_email", "private_key", "token_uri") if not key.get(field)]
    if missing:
        fail(f"{path} lacks {', '.join(missing)}; download a new JSON key for the service account.")
    return key


@app.command("scim")
def scim(org: OrgOption = None, name: Name = None) -> None:
    """Make a SCIM 2.0 endpoint for an identity provider (Entra ID, Okta) to push people to.

    The bearer token is printed once, alone on stdout (`TOKEN=$(deskbridge connect scim …)`).
    """
    _, summary, token = _create(org, ConnectionKind.SCIM, name or "SCIM", _settings(None, None, None, False, None), {})
    assert token is not None
    base = get_settings().base_url
    err().print(summary, markup=False, soft_wrap=True)
    err().print(f"SCIM base URL: {base}/scim/v2", markup=False, soft_wrap=True)
    err().print("The bearer token below is shown only now; keep it safe.", markup=False)
    typer.echo(token)


@app.command("csv")
def csv(
    org: OrgOption = None,
    name: Name = None,
    team_group: TeamGroups = None,
) -> None:
    """Make a CSV directory: import a people export (email,name,teams,active) into it with `deskbridge sync`."""
    settings = _settings(None, None, None, False, team_group)
    connection_id, summary, _ = _create(org, ConnectionKind.CSV, name or "CSV", settings, {})
    out().print(summary, markup=False, soft_wrap=True)
    out().print(f"Preview an import with `deskbridge sync {connection_id} --file people.csv --dry-run`.", markup=False)


@app.command("ics")
def ics(
    org: OrgOption = None,
    name: Name = None,
    url_env: Annotated[
        str | None,
        typer.Option("--url-env", help="The environment variable holding the feed's URL (most carry a secret)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The feed's URL (http, https or webcal), if it holds no secret.")
    ] = None,
    member: Annotated[
        str | None,
        typer.Option("--member", help="The member whose calendar it is (email); leave out for a room or resource."),
    ] = None,
) -> None:
    """Read an ICS calendar feed (Google's secret address, Outlook's published calendar, a booking tool's)."""
    if (url_env is None) == (url is None):
        fail("give either --url-env VAR or --url URL.")
    if url_env is not None:
        url = os.environ.get(url_env, "").strip()
        if not url:
            fail(f"the environment variable {url_env} is not set or empty.")
    assert url is not None
    url = url.strip()
    settings: dict[str, Any] = {"member_email": member.strip().lower()} if member else {}
    default = f"Calendar of {member.strip()}" if member else "ICS feed"
    _, summary, _ = _create(org, ConnectionKind.ICS, name or default, settings, {"url": url})
    out().print(f"{summary} Feed: {redact(url)}", markup=False, soft_wrap=True)
    minutes = get_settings().calendar_sync_minutes
    out().print(f"The worker reads it at its next calendar poll, then every {minutes:g} minutes.", markup=False)


@app.command("caldav")
def caldav(
    url: Annotated[str, typer.Option("--url", help="The CalDAV server's (or the person's principal) URL.")],
    username: Annotated[str, typer.Option("--username", help="The account's user name.")],
    password_env: Annotated[
        str, typer.Option("--password-env", help="The environment variable holding the account's (app) password.")
    ],
    member: Annotated[str, typer.Option("--member", help="The member whose calendars these are (email).")],
    org: OrgOption = None,
    name: Name = None,
    calendar: Annotated[
        str | None,
        typer.Option("--calendar", help="Read and write only this calendar (display name or URL); default: all."),
    ] = None,
) -> None:
    """Read a person's CalDAV calendars (Nextcloud, Fastmail, iCloud, Radicale, SOGo, Zimbra) and write their
    bookings into them."""
    password = os.environ.get(password_env, "")
    if not password:
        fail(f"the environment variable {password_env} is not set or empty.")
    settings: dict[str, Any] = {"member_email": member.strip().lower()}
    if calendar:
        settings["calendar"] = calendar
    credentials = {"url": url.strip(), "username": username, "password": password}
    _, summary, _ = _create(org, ConnectionKind.CALDAV, name or f"Calendars of {member.strip()}", settings, credentials)
    out().print(summary, markup=False, soft_wrap=True)
    minutes = get_settings().calendar_sync_minutes
    out().print(f"The worker reads it at its next calendar poll, then every {minutes:g} minutes.", markup=False)


# Peer platforms (When I Work, Kadence, Resource Guru) live in their own module, added here.
from deskbridge.commands.connect_peers import register as _register_peers  # noqa: E402

_register_peers(app)

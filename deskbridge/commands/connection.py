"""`deskbridge connection list|show|set`: the organisation's connections, and their settings changed.

`set` changes an existing connection's name or settings through the same service as the API's
`PATCH /v1/connections/{id}` (`connections.update_connection`: settings merged key by key and
validated for the connection's kind); credentials are changed with `deskbridge connect` or the API,
never on a command line.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from deskbridge.commands.common import JsonOption, OrgOption, err, fail, organisation, out, print_rows, store
from deskbridge.settings import get_settings
from store.models import Connection
from store.services import calendars, connections

app = typer.Typer(help="Directory and calendar connections: list, show, change settings.", no_args_is_help=True)

ConnectionId = Annotated[int, typer.Argument(help="The connection's id (see `deskbridge connection list`).")]


@app.command("list")
def list_connections(org: OrgOption = None, as_json: JsonOption = False) -> None:
    """Show the organisation's connections with their status and last sync."""
    with store() as session:
        chosen = organisation(session, org)
        rows = [
            {
                "id": row.id,
                "kind": row.kind.value,
                "name": row.name,
                "status": row.status.value,
                "last_synced": row.last_synced_at,
                "last_error": row.last_error,
            }
            for row in session.scalars(connections.select_connections(chosen.id).order_by(Connection.id))
        ]
        slug = chosen.slug
    empty = f"{slug} has no connections yet: add one with `deskbridge connect …`."
    print_rows(rows, as_json=as_json, empty=empty, missing={"last_synced": "never"})


@app.command("show")
def show(connection_id: ConnectionId, org: OrgOption = None, as_json: JsonOption = False) -> None:
    """Show one connection: its settings, status and what its last sync did (never its credentials)."""
    with store() as session:
        connection = connections.get(session, organisation(session, org).id, connection_id)
        shown = _shown(connection)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=lambda value: value.isoformat()))
        return
    for key, value in shown.items():
        text = json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else str(value))
        out().print(f"{key.replace('_', ' ').capitalize()}: {text}", markup=False, soft_wrap=True)


def _shown(connection: Connection) -> dict[str, Any]:
    return {
        "id": connection.id,
        "kind": connection.kind.value,
        "name": connection.name,
        "status": connection.status.value,
        "settings": dict(connection.settings),
        "last_synced_at": connection.last_synced_at,
        "last_error": connection.last_error,
        "last_counts": dict(connection.last_counts),
        "last_notes": list(connection.last_notes),
        "sync_requested_at": connection.sync_requested_at,
        "created_at": connection.created_at,
    }


@app.command("set")
def set_settings(
    connection_id: ConnectionId,
    org: OrgOption = None,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A setting as KEY=VALUE, VALUE in JSON where it is not a plain word: calendars=true, "
            'scope=\'{"domains": ["acme.example"]}\', team_groups=\'["*"]\'. Repeatable; other settings stay.',
        ),
    ] = None,
) -> None:
    """Change a connection's name or settings, validated as the API validates them. A new scope is applied
    by the next sync (which decides everyone again); a calendar switch brings the calendars in line now."""
    changes = _parse(values or [])
    if name is None and not changes:
        fail("nothing to change: give --name or --set KEY=VALUE.")
    from deskbridge.wiring import make_secret_box

    box = make_secret_box(get_settings())
    with store() as session:
        connection = connections.get(session, organisation(session, org).id, connection_id)
        reading_before = calendars.reads_calendars(connection)
        connections.update_connection(session, box, connection, name=name, settings=changes or None)
        recalendar = bool(changes) and (reading_before or calendars.reads_calendars(connection))
        shown = _shown(connection)
    out().print(f"Connection {shown['id']} ({shown['name']!r}) now has:", markup=False, soft_wrap=True)
    out().print(json.dumps(shown["settings"], indent=2), markup=False, soft_wrap=True)
    if recalendar:
        _follow_calendars(connection_id)
    if changes:
        err().print(
            f"The new settings apply from the next sync (`deskbridge sync {connection_id}` runs one now).",
            markup=False,
            soft_wrap=True,
        )


def _parse(values: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--set takes KEY=VALUE, not {item!r}.")
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw  # a plain word: a string
    return parsed


def _follow_calendars(connection_id: int) -> None:
    """Make or drop the connection's calendars now, as the API's PATCH has the worker do."""
    from deskbridge.wiring import build
    from worker import runtime
    from worker.calendar.jobs import follow

    components = build(get_settings())
    try:
        live = follow(runtime.current(), connection_id, retry=True)
    except Exception as error:
        err().print(f"The calendars follow at the next poll ({type(error).__name__} now).", markup=False)
        return
    finally:
        components.engine.dispose()
    err().print(f"The connection reads {len(live)} calendar(s).", markup=False)

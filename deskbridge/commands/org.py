"""`deskbridge org`: create and list organisations, switch their API on and off."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func, select

from deskbridge.commands.common import JsonOption, OrgOption, organisation, out, print_rows, store
from deskbridge.settings import get_settings
from store.models import Member, MemberStatus
from store.services import organisations

app = typer.Typer(help="Organisations.", no_args_is_help=True)
api_app = typer.Typer(help="The organisation's API switch (off for new organisations).", no_args_is_help=True)
app.add_typer(api_app, name="api")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Acme Ltd'.")],
    slug: Annotated[str | None, typer.Option(help="Short identifier; derived from the name if left out.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA time zone, e.g. Europe/London; DESKBRIDGE_DEFAULT_TIMEZONE if left out.")
    ] = None,
) -> None:
    """Create an organisation. Its API stays off until `deskbridge org api enable`."""
    with store() as session:
        created = organisations.create(session, name, slug=slug, timezone=timezone or get_settings().default_timezone)
        summary = f"Created {created.name!r} (slug {created.slug}, time zone {created.timezone})."
        hint = f"Its API is off: `deskbridge org api enable --org {created.slug}` turns it on."
    out().print(summary, markup=False)
    out().print(hint, markup=False)


@app.command("list")
def list_organisations(as_json: JsonOption = False) -> None:
    """Show every organisation with its time zone, API switch and number of active members."""
    with store() as session:
        found = organisations.list_all(session)
        counts = session.execute(
            select(Member.organisation_id, func.count())
            .where(Member.status == MemberStatus.ACTIVE)
            .group_by(Member.organisation_id)
        )
        active = {organisation_id: count for organisation_id, count in counts}
        rows = [
            {
                "slug": o.slug,
                "name": o.name,
                "time_zone": o.timezone,
                "api": o.api_enabled,
                "active_members": active.get(o.id, 0),
            }
            for o in found
        ]
    if not as_json:  # the table says on/off for the switch
        rows = [{**row, "api": "on" if row["api"] else "off"} for row in rows]
    print_rows(rows, as_json=as_json, empty="No organisations yet: create one with `deskbridge org create NAME`.")


@api_app.command("enable")
def api_enable(org: OrgOption = None) -> None:
    """Turn the organisation's API on (members still need API access, see `member grant-api`)."""
    _switch_api(org, on=True)


@api_app.command("disable")
def api_disable(org: OrgOption = None) -> None:
    """Turn the organisation's API off: every API call answers 403 until it is on again."""
    _switch_api(org, on=False)


def _switch_api(slug: str | None, *, on: bool) -> None:
    with store() as session:
        chosen = organisation(session, slug)
        was_on = chosen.api_enabled
        organisations.update_settings(session, chosen, api_enabled=on)
        name = chosen.slug
    state = "on" if on else "off"
    already = " (it already was)" if was_on == on else ""
    out().print(f"The API of {name} is {state}{already}.", markup=False)

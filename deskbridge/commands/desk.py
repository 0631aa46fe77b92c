"""`deskbridge desk`: bookable places."""

from __future__ import annotations

from typing import Annotated

import typer

from deskbridge.commands.common import JsonOption, OrgOption, organisation, out, print_rows, store
from store.services import desks

app = typer.Typer(help="Desks, rooms and other bookable places.", no_args_is_help=True)


@app.command("add")
def add(
    label: Annotated[str, typer.Argument(help="What people call it, e.g. '11'; unique within a building.")],
    org: OrgOption = None,
    building: Annotated[str, typer.Option(help="Building, if the organisation has several.")] = "",
    floor: Annotated[str, typer.Option(help="Floor.")] = "",
    zone: Annotated[str, typer.Option(help="Zone or neighbourhood.")] = "",
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(desks.KINDS)}.")] = "desk",
) -> None:
    """Add a desk (or room, parking space…) people can book."""
    with store() as session:
        chosen = organisation(session, org)
        desk = desks.create(session, chosen.id, label, building=building, floor=floor, zone=zone, kind=kind)
        where = ", ".join(part for part in (desk.building, desk.floor, desk.zone) if part)
        summary = f"Added {desk.kind} {desk.label!r}{f' ({where})' if where else ''} to {chosen.slug}, id {desk.id}."
    out().print(summary, markup=False)


@app.command("list")
def list_desks(org: OrgOption = None, as_json: JsonOption = False) -> None:
    """Show the organisation's desks."""
    with store() as session:
        chosen = organisation(session, org)
        rows = [
            {
                "id": d.id,
                "label": d.label,
                "building": d.building,
                "floor": d.floor,
                "zone": d.zone,
                "kind": d.kind,
                "active": d.active,
            }
            for d in desks.list_all(session, chosen.id)
        ]
        slug = chosen.slug
    print_rows(rows, as_json=as_json, empty=f"{slug} has no desks yet: add one with `deskbridge desk add LABEL`.")

"""`deskbridge token`: API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from deskbridge.commands.common import OrgOption, err, organisation, store
from store.services import members, tokens

app = typer.Typer(help="API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="The member the token acts as.")],
    org: OrgOption = None,
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'zapier'.")] = "",
) -> None:
    """Make an API token. The secret is printed once, alone on stdout (`TOKEN=$(deskbridge token create …)`)."""
    with store() as session:
        chosen = organisation(session, org)
        member = members.get_by_email(session, chosen.id, email)
        token, secret = tokens.create(session, member, name=name)
        notes = [f"Token {token.prefix}… for {member.email}; the secret below is shown only now, keep it safe."]
        if not member.api_access:
            notes.append(f"Note: {member.email} has no API access yet: `deskbridge member grant-api {member.email}`.")
        if not chosen.api_enabled:
            notes.append(f"Note: the API of {chosen.slug} is off: `deskbridge org api enable --org {chosen.slug}`.")
    for note in notes:
        err().print(note, markup=False, soft_wrap=True)
    typer.echo(secret)

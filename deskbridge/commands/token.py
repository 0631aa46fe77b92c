"""`deskbridge token`: API tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from deskbridge.commands.common import JsonOption, OrgOption, err, fail, organisation, out, print_rows, store
from store.models import ApiToken, Member
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


@app.command("list")
def list_tokens(
    org: OrgOption = None,
    email: Annotated[str | None, typer.Option("--email", help="Only this member's tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the live (unrevoked) API tokens: id, prefix, member, name, made and last used. Never the secret."""
    with store() as session:
        chosen = organisation(session, org)
        member_id = members.get_by_email(session, chosen.id, email).id if email else None
        query = (
            tokens.select_tokens(chosen.id, member_id=member_id)
            .join(Member, Member.id == ApiToken.member_id)
            .add_columns(Member.email)
            .order_by(ApiToken.id)
        )
        rows = [
            {
                "id": token.id,
                "prefix": token.prefix,
                "member": address,
                "name": token.name,
                "created": token.created_at,
                "last_used": token.last_used_at,
            }
            for token, address in session.execute(query)
        ]
        slug = chosen.slug
    print_rows(rows, as_json=as_json, empty=f"{slug} has no live API tokens{' of ' + email if email else ''}.")


@app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(help="The token's id or its prefix (as `deskbridge token list` shows).")],
    org: OrgOption = None,
) -> None:
    """Revoke an API token: requests made with it are refused from now on."""
    with store() as session:
        chosen = organisation(session, org)
        found = _find(session, chosen.id, token)
        already = found.revoked_at is not None
        tokens.revoke(session, found)
        prefix = found.prefix
    if already:
        out().print(f"Token {prefix}… was already revoked; nothing changed.", markup=False)
    else:
        out().print(f"Revoked token {prefix}….", markup=False)


def _find(session: Session, organisation_id: int, key: str) -> ApiToken:
    key = key.strip().rstrip("…").rstrip(".")
    if key.isdigit():
        return tokens.get(session, organisation_id, int(key))
    found = list(
        session.scalars(
            select(ApiToken).where(ApiToken.organisation_id == organisation_id, ApiToken.prefix == key).limit(2)
        )
    )
    if len(found) != 1:
        fail(f"no token with the id or prefix {key!r}: see `deskbridge token list`.")
    return found[0]

"""`deskbridge member`: add people at once, grant or revoke API access, remove them and restore them."""

from __future__ import annotations

from typing import Annotated

import typer

from deskbridge.commands.common import JsonOption, OrgOption, err, fail, organisation, out, print_rows, store
from store.models import Member, MemberStatus, Role
from store.services import members, restores

app = typer.Typer(help="Members of an organisation.", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(help="The member's email address (case does not matter).")]


@app.command("list")
def list_members(
    org: OrgOption = None,
    status: Annotated[
        MemberStatus | None, typer.Option(help="Only members in this state (removed ones are hidden otherwise).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the organisation's members: email, name, role, status and API access."""
    with store() as session:
        chosen = organisation(session, org)
        query = members.select_members(chosen.id, status=status).order_by(Member.email)
        if status is None:
            query = query.where(Member.status != MemberStatus.REMOVED)
        rows = [
            {
                "id": member.id,
                "email": member.email,
                "name": member.display_name,
                "role": member.role.value,
                "status": member.status.value,
                "api_access": member.api_access,
                "joined": member.created_at,
            }
            for member in session.scalars(query)
        ]
        slug = chosen.slug
    print_rows(rows, as_json=as_json, empty=f"{slug} has no members{' ' + status.value if status else ''}.")


@app.command("add")
def add(
    email: EmailArgument,
    org: OrgOption = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Make them an admin.")] = False,
    api: Annotated[bool, typer.Option("--api", help="Give them API access.")] = False,
) -> None:
    """Make someone an active member straight away, without an invitation email."""
    with store() as session:
        chosen = organisation(session, org)
        member = members.add(
            session,
            chosen.id,
            email,
            role=Role.ADMIN if admin else Role.MEMBER,
            display_name=name,
            api_access=api,
            source="cli",
        )
        summary = (
            f"Added {member.email} to {chosen.slug} as {member.role.value}, "
            f"API access {'on' if member.api_access else 'off'}."
        )
    out().print(summary, markup=False)


@app.command("grant-api")
def grant_api(email: EmailArgument, org: OrgOption = None) -> None:
    """Let a member use the API with their tokens."""
    _set_api_access(email, org, allowed=True)


@app.command("revoke-api")
def revoke_api(email: EmailArgument, org: OrgOption = None) -> None:
    """Stop a member's API use; their tokens stay but are refused."""
    _set_api_access(email, org, allowed=False)


def _set_api_access(email: str, slug: str | None, *, allowed: bool) -> None:
    with store() as session:
        chosen = organisation(session, slug)
        member = members.get_by_email(session, chosen.id, email)
        if member.status is MemberStatus.REMOVED:
            fail(f"{member.email} was removed; add them again with `deskbridge member add`.")
        members.update(session, member, api_access=allowed)
        address, api_on, org_slug = member.email, chosen.api_enabled, chosen.slug
    out().print(f"API access for {address} is {'on' if allowed else 'off'}.", markup=False)
    if allowed and not api_on:
        err().print(
            f"Note: the API of {org_slug} is off; `deskbridge org api enable --org {org_slug}` turns it on.",
            markup=False,
            soft_wrap=True,
        )


@app.command("remove")
def remove(email: EmailArgument, org: OrgOption = None) -> None:
    """Remove a membership: history stays, future bookings are cancelled, API tokens revoked."""
    with store() as session:
        chosen = organisation(session, org)
        member = members.get_by_email(session, chosen.id, email)
        removed = members.remove(session, member)
        address = member.email
    if removed:
        out().print(f"Removed {address}: future bookings cancelled, API tokens revoked.", markup=False)
    else:
        out().print(f"{address} was already removed; nothing changed.", markup=False)


@app.command("restore")
def restore(email: EmailArgument, org: OrgOption = None) -> None:
    """Undo a removal within the organisation's undo window: membership, teams, API access (new tokens,
    shown once) and the cancelled bookings whose desk and time are still free."""
    with store() as session:
        chosen = organisation(session, org)
        done = restores.restore(session, members.get_by_email(session, chosen.id, email), source="cli")
        address, status = done.member.email, done.member.status.value
        teams = ", ".join(team.name for team in done.teams) or "none"
        issued = [(token.name, secret) for token, secret in done.tokens]
        booked, missing = len(done.bookings), [item.detail for item in done.unrestored]
    console = out()
    console.print(f"Restored {address} ({status}): {booked} booking(s) booked again; teams: {teams}.", markup=False)
    for name, secret in issued:
        console.print(f"New token{f' {name!r}' if name else ''} (shown once): {secret}", markup=False, soft_wrap=True)
    if missing:
        console.print("Not restored:", markup=False)
        for detail in missing:
            console.print(f"  - {detail}", markup=False, soft_wrap=True)

"""The page an invitation email links to. Opening it changes nothing (mail scanners open links);
the button posts the acceptance, which also signs the new member in to the web console."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.console.auth import set_session_cookie
from api.deps import DB
from store.errors import StoreError
from store.models import Invitation, InvitationStatus, Organisation
from store.services import console_sessions, members

router = APIRouter(tags=["invitations"], include_in_schema=False)

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto;">
<h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status)


@router.get("/invitations/{token}")
def show(token: str, db: DB) -> HTMLResponse:
    invitation = db.scalar(select(Invitation).where(Invitation.token_hash == members.hash_secret(token)))
    if invitation is None:
        return _page("Invitation not found", "<p>This link is not valid.</p>", 404)
    status = members.invitation_status(invitation)
    if status is not InvitationStatus.PENDING:
        return _page("Invitation closed", f"<p>This invitation is {escape(status.value)}.</p>", 410)
    organisation = db.get_one(Organisation, invitation.organisation_id)
    form = (
        f"<p>{escape(invitation.email)}, you are invited to join <b>{escape(organisation.name)}</b>.</p>"
        f'<form method="post"><label>Your name <input name="display_name" autocomplete="name"></label> '
        f'<button type="submit">Accept invitation</button></form>'
    )
    return _page("Join " + organisation.name, form)


@router.post("/invitations/{token}")
def accept(
    token: str, request: Request, db: DB, display_name: Annotated[str, Form(max_length=200)] = ""
) -> HTMLResponse:
    try:
        member = members.accept_invitation(db, token, display_name=display_name)
    except StoreError as error:
        return _page("Invitation not accepted", f"<p>{escape(error.message)}</p>", 410)
    session_secret = console_sessions.start(db, member)
    db.commit()
    response = _page(
        "Welcome",
        f"<p>{escape(member.email)} is now a member. You are signed in: "
        '<a href="/console/">open the console</a> to see your bookings.</p>',
    )
    set_session_cookie(request, response, session_secret)
    return response

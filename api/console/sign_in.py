"""Signing in (an emailed link, or an API token) and out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console.auth import (
    SESSION_COOKIE,
    Posted,
    anonymous_csrf,
    check_anonymous_csrf,
    clear_session_cookie,
    keep_anonymous_csrf,
    set_session_cookie,
)
from api.console.pages import ConsoleRoute, render
from api.deps import DB, context
from store.errors import StoreError
from store.models import Member
from store.services import console_sessions, members, sign_in_links, tokens

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Anonymous = Depends(check_anonymous_csrf)


def signed_in_as(request: Request, db: DB, member: Member, *, api_token_id: int | None = None) -> Response:
    """Start a session for `member`, commit it, and send the browser to the console with its cookie."""
    secret = console_sessions.start(db, member, api_token_id=api_token_id)
    db.commit()
    response = RedirectResponse("/console/", status_code=303)
    set_session_cookie(request, response, secret)
    return response


def _sign_in_page(request: Request, *, status: int = 200, **context: Any) -> HTMLResponse:
    csrf = anonymous_csrf(request)
    response = render(request, "sign_in.html", status_code=status, csrf=csrf, **context)
    keep_anonymous_csrf(request, response, csrf)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request, db: DB) -> Response:
    """The two ways in: an emailed link, or an API token."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    if secret and console_sessions.resolve(db, secret) is not None:
        return RedirectResponse("/console/", status_code=303)
    return _sign_in_page(request)


@router.post("/sign-in/email", dependencies=[Anonymous])
def ask_for_link(request: Request, db: DB, email: Annotated[str, Form(max_length=320)]) -> HTMLResponse:
    """Email a sign-in link to each active membership of the address. The answer is the same
    whether the address has any, so the page tells nobody who is a member."""
    link_ids = sign_in_links.request(db, email)
    db.commit()
    jobs = context(request).jobs
    for link_id in link_ids:
        jobs.email_sign_in_link(link_id)
    return _sign_in_page(request, sent_to=email.strip())


@router.get("/sign-in/link/{token}")
def link_page(request: Request, db: DB, token: str) -> HTMLResponse:
    """Opening the link changes nothing (mail scanners open links): a button signs in."""
    link = sign_in_links.find(db, token)
    if link is None or link.used_at is not None:
        message = "This sign-in link is not valid or was used already. Ask for a new one."
        return _sign_in_page(request, status=410 if link else 404, error=message)
    csrf = anonymous_csrf(request)
    response = render(request, "sign_in_link.html", csrf=csrf, token=token)
    keep_anonymous_csrf(request, response, csrf)
    return response


@router.post("/sign-in/link/{token}", dependencies=[Anonymous])
def use_link(request: Request, db: DB, token: str) -> Response:
    """Use the link once: a session starts."""
    try:
        member = sign_in_links.redeem(db, token)
    except StoreError as error:
        db.commit()  # a used or expired link stays so
        return _sign_in_page(request, status=410, error=error.message)
    return signed_in_as(request, db, member)


@router.post("/sign-in/token", dependencies=[Anonymous])
def use_token(request: Request, db: DB, token: Annotated[str, Form(max_length=200)]) -> Response:
    """Sign in with an API token: the session lasts while the token is live and API access is given."""
    caller = tokens.authenticate(db, token.strip())
    if caller is None:
        return _sign_in_page(request, status=401, error="This token is not valid (unknown, revoked or removed).")
    if not caller.member.api_access:
        message = "Your account has not been given API access, so its tokens do not sign in. Use an email link."
        return _sign_in_page(request, status=403, error=message)
    member = members.get(db, caller.organisation.id, caller.member.id)
    return signed_in_as(request, db, member, api_token_id=caller.token_id)


@router.post("/sign-out")
def sign_out(request: Request, viewer: Posted, db: DB) -> Response:
    """End this session."""
    console_sessions.end(db, viewer.secret)
    db.commit()
    response = RedirectResponse("/console/sign-in", status_code=303)
    clear_session_cookie(response)
    return response

"""Who is using the console, and the checks every page and form makes.

- The session cookie (`SESSION_COOKIE`): HTTP-only, SameSite=Lax, Secure when the public base URL
  is https, scoped to /console. Its session is read on every request (services.console_sessions):
  a removed member, a revoked sign-in token or API access, an expired session: back to sign-in.
- CSRF: every POST carries `csrf_token`. Signed in, it is the session's own (derived from the
  cookie's secret); before sign-in (the sign-in forms themselves), a random value that must match
  a cookie of its own (the double-submit pattern), so another site cannot sign a browser in either.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import DB, context
from store.models import Member, Organisation, Role
from store.services import console_sessions

SESSION_COOKIE = "deskbridge_console"
ANONYMOUS_CSRF_COOKIE = "deskbridge_console_csrf"
FLASH_COOKIE = "deskbridge_console_notice"
CSRF_FIELD = "csrf_token"
PATH = "/console"


@dataclass(frozen=True)
class Viewer:
    """The signed-in member of this request, with their organisation."""

    member: Member
    organisation: Organisation
    secret: str

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return console_sessions.csrf_token(self.secret)

    @property
    def is_admin(self) -> bool:
        return self.member.role is Role.ADMIN

    @property
    def zone(self) -> ZoneInfo:
        """The organisation's time zone: every time on a page is shown in it."""
        return ZoneInfo(self.organisation.timezone)

    @property
    def may_use_api(self) -> bool:
        """As in WiggleDesk: tokens only when the organisation turned the API on and an admin gave access."""
        return self.organisation.api_enabled and self.member.api_access


class SignInNeeded(Exception):
    """No valid session: the browser goes to the sign-in page."""


class Refused(Exception):
    """A request the console answers with a page saying why (403: CSRF, admins only)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure when the console is served over https."""
    return context(request).public_base_url.lower().startswith("https://")


def set_session_cookie(request: Request, response: Response, secret: str) -> None:
    """Hand the browser its session after a sign-in."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(console_sessions.SESSION_LIFETIME.total_seconds()),
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PATH)


def viewer(request: Request, db: DB) -> Viewer:
    """The signed-in member, checked now: their session, membership and (for a token sign-in) token."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    signed_in = console_sessions.resolve(db, secret) if secret else None
    if signed_in is None:
        raise SignInNeeded
    return Viewer(signed_in.member, signed_in.organisation, secret)


async def _posted_token(request: Request) -> str:
    form = await request.form()  # Starlette keeps it: the route's Form parameters read the same
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


async def checked(request: Request, signed_in: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """The viewer of a POST whose form carries this session's CSRF token; refused otherwise."""
    if not hmac.compare_digest(await _posted_token(request), signed_in.csrf):
        raise Refused("This form has expired or did not come from the console. Go back, reload the page and retry.")
    return signed_in


async def admin(signed_in: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """A viewer who is an admin of the organisation."""
    if not signed_in.is_admin:
        raise Refused("Only admins can open this page.")
    return signed_in


async def checked_admin(signed_in: Annotated[Viewer, Depends(checked)]) -> Viewer:
    """An admin's POST with this session's CSRF token."""
    if not signed_in.is_admin:
        raise Refused("Only admins can do this.")
    return signed_in


def anonymous_csrf(request: Request) -> str:
    """The pre-sign-in CSRF value: the cookie's, or a new one (set by `keep_anonymous_csrf`)."""
    return request.cookies.get(ANONYMOUS_CSRF_COOKIE) or secrets.token_urlsafe(24)


def keep_anonymous_csrf(request: Request, response: Response, value: str) -> None:
    if request.cookies.get(ANONYMOUS_CSRF_COOKIE) != value:
        response.set_cookie(
            ANONYMOUS_CSRF_COOKIE, value, path=PATH, httponly=True, samesite="lax", secure=secure_cookies(request)
        )


async def check_anonymous_csrf(request: Request) -> None:
    """A sign-in form's POST: its token matches the browser's pre-sign-in cookie."""
    cookie = request.cookies.get(ANONYMOUS_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(await _posted_token(request), cookie):
        raise Refused("This form has expired or did not come from the console. Reload the sign-in page and retry.")


Signed = Annotated[Viewer, Depends(viewer)]
Posted = Annotated[Viewer, Depends(checked)]
Admin = Annotated[Viewer, Depends(admin)]
AdminPosted = Annotated[Viewer, Depends(checked_admin)]


def install_handlers(app: FastAPI) -> None:
    """Sign-in redirects and refusals, as pages."""
    from api.console.pages import render  # pages imports this module

    async def sign_in_needed(request: Request, exc: Exception) -> Response:
        response = RedirectResponse("/console/sign-in", status_code=303)
        clear_session_cookie(response)
        return response

    async def refused(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, Refused)
        return render(request, "error.html", None, status_code=exc.status, title="Not allowed", message=exc.message)

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(Refused, refused)

"""Rendering: the templates, times in the organisation's zone, one-time notices, and errors turned
into notices on the page they came from (a refused form changes nothing and says why)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from api.console.auth import FLASH_COOKIE, Viewer
from api.errors import ApiError
from store.errors import StoreError

logger = logging.getLogger(__name__)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
NO_STORE = {"Cache-Control": "no-store"}
# Every asset is the app's own, so the pages allow nothing else: no framing at all (clickjacking a form;
# the edge's X-Frame-Options allows our own origin), no form posted elsewhere, and a Referer only to
# ourselves (a sign-in link's token is in its page's URL).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
}
_MAX_NOTICE = 600


def local_time(viewer: Viewer | None) -> Callable[[datetime | None], str]:
    """A formatter of stored UTC times in the organisation's time zone."""

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "—"
        if viewer is None:
            return f"{moment:%a %d %b %Y, %H:%M} UTC"
        return f"{moment.astimezone(viewer.zone):%a %d %b %Y, %H:%M}"

    return when


def render(
    request: Request,
    name: str,
    viewer: Viewer | None = None,
    *,
    status_code: int = 200,
    no_store: bool = False,
    **context: Any,
) -> HTMLResponse:
    """A page from `templates/`; `no_store`: it shows a secret once, so no cache keeps it (signed-in
    pages are never cached either)."""
    notice = request.cookies.get(FLASH_COOKIE)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "viewer": viewer,
            "csrf": viewer.csrf if viewer is not None else context.pop("csrf", ""),
            "notice": _read_notice(notice),
            "when": local_time(viewer),
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
        headers={**PAGE_HEADERS, **(NO_STORE if no_store or viewer is not None else {})},
    )
    if notice is not None:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def done(request: Request, where: str, message: str, *, error: bool = False) -> RedirectResponse:
    """Back to a page after a form (303: the browser GETs it), with a one-time notice."""
    response = RedirectResponse(where, status_code=303)
    text = ("!" if error else "+") + message[:_MAX_NOTICE]
    response.set_cookie(FLASH_COOKIE, quote(text), path="/console", httponly=True, samesite="lax")
    return response


def _read_notice(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    text = unquote(raw)[: _MAX_NOTICE + 1]
    return {"error": text.startswith("!"), "text": text[1:]}


def back_to(request: Request) -> str:
    """The console page a form was posted from (its Referer), else the console's home."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc in ("", request.url.netloc) and referer.path.startswith("/console/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/console/"


def explain(error: Exception) -> str:
    """An error the console shows, in plain words."""
    if isinstance(error, StoreError):
        return error.message[:1].upper() + error.message[1:]
    if isinstance(error, ApiError):
        return error.detail
    if isinstance(error, RequestValidationError | ValidationError):
        parts = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"] if part not in ("body", "query", "path"))
            message = "is required" if problem["type"] == "missing" else str(problem["msg"])
            parts.append(f"{where or 'input'}: {message}")
        return "Check the form: " + "; ".join(parts) + "."
    if isinstance(error, IntegrityError):
        return "A concurrent change conflicts with this one; try again."
    return "It was deleted meanwhile."


_REFUSED = (StoreError, ApiError, RequestValidationError, ValidationError, IntegrityError)
_GONE = (StaleDataError, ObjectDeletedError)
_STATUS = {"not_found": 404}


class ConsoleRoute(APIRoute):
    """A console route: a refused form goes back to its page with the reason; a refused page read
    is an error page. Nothing changes either way (the request's store session is rolled back)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (*_REFUSED, *_GONE) as error:
                message = explain(error)
                if request.method == "POST":
                    return done(request, back_to(request), message, error=True)
                status = 404 if isinstance(error, _GONE) else _status_of(error)
                return render(request, "error.html", None, status_code=status, title="Not shown", message=message)

        return handle


def _status_of(error: Exception) -> int:
    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, StoreError):
        return _STATUS.get(error.code, 409 if error.code not in ("invalid",) else 422)
    return 422

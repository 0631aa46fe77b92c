"""The web console under /console: server-rendered pages and plain forms for members and admins.

Every page calls the store services the `/v1` routes call (never the API over HTTP). Sign-in is
by an emailed link or an API token, into an HTTP-only session cookie; every form carries a CSRF
token (see `auth.py`). One module per group of pages; `templates/` and `static/` beside them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import (
    admin_connections,
    admin_org,
    admin_places,
    admin_plans,
    admin_users,
    admin_webhooks,
    me,
    sign_in,
)
from api.console.auth import install_handlers
from api.console.pages import ConsoleRoute

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the console's pages, its static files and its error handlers on `app`."""
    install_handlers(app)
    for module in (sign_in, me, admin_org, admin_users, admin_places, admin_connections, admin_plans, admin_webhooks):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")


__all__ = ["ConsoleRoute", "install"]

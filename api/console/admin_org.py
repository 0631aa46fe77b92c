"""Manage organisation (admins): the API switch, time zone, calendar and office-day settings, directory
policy. Checked by the API's own body model and saved by the same service, so both refuse alike. Each
directory connection's removal limit is shown and changed here too (a connection setting, saved as the
connection's page saves it)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from api.console.admin_connections import has_people, removal_limit
from api.console.auth import Admin, AdminPosted
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB, context
from api.v1.endpoints.connections import ConnectionOut
from api.v1.endpoints.organisation import OrganisationPatch, apply_settings
from store.models import Connection
from store.services import connections, organisations, removals

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
_ZONES = sorted(available_timezones())


def words(text: str) -> list[str]:
    """A comma- or line-separated list typed in a text box."""
    return [word.strip() for word in text.replace("\n", ",").split(",") if word.strip()]


@router.get("/organisation")
def organisation_page(request: Request, viewer: Admin, db: DB) -> HTMLResponse:
    """The organisation's settings form, and each directory connection's removal limit."""
    box = context(request).box()
    rows = db.scalars(connections.select_connections(viewer.organisation.id).order_by(Connection.id))
    shown = [ConnectionOut.of(row, box) for row in rows if has_people(row.kind)]
    return render(
        request,
        "organisation.html",
        viewer,
        zones=_ZONES,
        min_days=organisations.MIN_WINDOW_DAYS,
        max_days=organisations.MAX_WINDOW_DAYS,
        undo_days=(removals.MIN_UNDO_DAYS, removals.MAX_UNDO_DAYS),
        limits=[(connection, removal_limit(connection)) for connection in shown],
    )


@router.post("/organisation")
def save_organisation(
    request: Request,
    viewer: AdminPosted,
    db: DB,
    timezone: Annotated[str, Form(max_length=64)],
    directory_policy: Annotated[str, Form(max_length=32)],
    calendar_window_days: Annotated[int, Form()],
    offboarding_undo_days: Annotated[int, Form()],
    categories: Annotated[str, Form(max_length=5000)] = "",
    keywords: Annotated[str, Form(max_length=5000)] = "",
    api_enabled: Annotated[bool, Form()] = False,
    calendar_busy_only: Annotated[bool, Form()] = False,
    working_elsewhere_with_location: Annotated[bool, Form()] = False,
    release_on_absence: Annotated[bool, Form()] = False,
) -> Response:
    """Save every setting of the form (an unticked box is off)."""
    body = OrganisationPatch.model_validate(
        {
            "timezone": timezone,
            "api_enabled": api_enabled,
            "directory_policy": directory_policy,
            "calendar_busy_only": calendar_busy_only,
            "calendar_window_days": calendar_window_days,
            "offboarding_undo_days": offboarding_undo_days,
            "release_on_absence": release_on_absence,
            "office_rules": {
                "categories": words(categories),
                "keywords": words(keywords),
                "working_elsewhere_with_location": working_elsewhere_with_location,
            },
        }
    )
    apply_settings(db, context(request), viewer.organisation, body)
    return done(request, "/console/admin/organisation", "Organisation settings saved.")

"""Connections (admins): each directory or feed with its status, last sync, counts, notes and error;
sync now; settings through the API's validation (`connections.update_connection`); CSV imports."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.console.auth import Admin, AdminPosted, Viewer
from api.console.pages import ConsoleRoute, back_to, done, render
from api.deps import DB, context
from api.v1.common import ResourceId
from api.v1.endpoints import connections as v1_connections
from api.v1.endpoints.connections import ConnectionIn, ConnectionOut, ConnectionPatch
from connectors.csv import parse
from connectors.kind import Capability, RemovalLimit
from connectors.kinds import REGISTRY
from store.errors import Invalid
from store.models import Connection, ConnectionStatus
from store.services import calendars, connections
from sync.directory import imports

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)
LIST = "/console/admin/connections"
KINDS = list(REGISTRY.names())
# What each status asks of an admin, in plain words.
STATUS_WORDS = {
    ConnectionStatus.ACTIVE: "Working.",
    ConnectionStatus.SYNCING: "Reading the directory now.",
    ConnectionStatus.ERROR: "The last sync failed; it is tried again at the next poll.",
    ConnectionStatus.ACTION_REQUIRED: "Stopped until an admin fixes it: check its credentials and permissions.",
    ConnectionStatus.REMOVALS_HELD: "Syncing, but more people would leave than its removal limit allows: "
    "those removals wait for an admin to approve or reject them.",
}


def has_people(kind: str) -> bool:
    """Whether a kind brings people in (a directory or a peer platform), so that a removal limit applies."""
    return not REGISTRY.can(kind, Capability.ONE_CALENDAR)


def can_plan(kind: str) -> bool:
    """Whether a plan of a sync is read from the directory itself (a file's plan is its import's dry run)."""
    return REGISTRY.can(kind, Capability.READS_DIRECTORY) or REGISTRY.can(kind, Capability.PEER_PLATFORM)


def removal_limit(connection: ConnectionOut) -> RemovalLimit:
    """The connection's removal limit as it applies (the kind's defaults where the settings name none)."""
    return RemovalLimit.model_validate(connection.settings.get("removal_limit") or {})


def _json_field(text: str, name: str) -> dict[str, Any]:
    """A JSON object typed in a text box ("" is an empty one)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise Invalid(f"{name} is not valid JSON: {error.msg} (line {error.lineno}).", field=name) from None
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be a JSON object, such as {{}}.", field=name)
    return value


@router.get("/connections")
def connections_page(request: Request, viewer: Admin, db: DB) -> HTMLResponse:
    """Every connection with how its last sync went, and the form to add one."""
    ctx = context(request)
    rows = list(db.scalars(connections.select_connections(viewer.organisation.id).order_by(Connection.id)))
    return render(
        request,
        "connections.html",
        viewer,
        connections=[ConnectionOut.of(row, ctx.box()) for row in rows],
        kinds=KINDS,
        status_words=STATUS_WORDS,
    )


@router.post("/connections")
def create_connection(
    request: Request,
    viewer: AdminPosted,
    db: DB,
    kind: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=200)],
    settings: Annotated[str, Form(max_length=20000)] = "",
    credentials: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Connect a directory or feed, as POST /v1/connections does."""
    ctx = context(request)
    body = ConnectionIn.model_validate(
        {
            "kind": kind,
            "name": name,
            "settings": _json_field(settings, "settings"),
            "credentials": _json_field(credentials, "credentials"),
        }
    )
    connection, token = v1_connections.add_connection(db, ctx, viewer.organisation.id, body)
    if token is not None:  # a SCIM token is shown once: on this page, not in a redirect
        return _detail(request, viewer, db, connection, scim_token=token)
    return done(request, f"{LIST}/{connection.id}", f"Connection {connection.name} added.")


def _detail(request: Request, viewer: Viewer, db: Session, connection: Connection, **extra: Any) -> HTMLResponse:
    ctx = context(request)
    shown = ConnectionOut.of(connection, ctx.box())
    rows = list(db.scalars(calendars.select_calendars(connection.id).limit(200)))
    return render(
        request,
        "connection.html",
        viewer,
        connection=shown,
        settings_text=json.dumps(shown.settings, indent=2, sort_keys=True),
        status_words=STATUS_WORDS,
        calendars=rows,
        limit=removal_limit(shown) if has_people(connection.kind) else None,
        pushed=REGISTRY.can(connection.kind, Capability.DIRECTORY_PUSHED),  # no "sync now": it is sent to us
        takes_files=REGISTRY.can(connection.kind, Capability.TAKES_FILES),
        reads_person=REGISTRY.can(connection.kind, Capability.READS_PERSON),
        plans=can_plan(connection.kind),
        no_store="scim_token" in extra,
        **extra,
    )


@router.get("/connections/{connection_id}")
def connection_page(request: Request, connection_id: ResourceId, viewer: Admin, db: DB) -> HTMLResponse:
    """One connection: its last sync, its calendars, its settings form, sync now and (CSV) import."""
    return _detail(request, viewer, db, connections.get(db, viewer.organisation.id, connection_id))


@router.post("/connections/{connection_id}")
def update_connection(
    request: Request,
    connection_id: ResourceId,
    viewer: AdminPosted,
    db: DB,
    name: Annotated[str, Form(max_length=200)],
    settings: Annotated[str, Form(max_length=20000)] = "",
    credentials: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Rename it and change its settings (merged key by key) or replace its credentials (left blank:
    kept), as PATCH /v1/connections/{id} does."""
    ctx = context(request)
    connection = connections.get(db, viewer.organisation.id, connection_id)
    patch: dict[str, Any] = {"name": name, "settings": _json_field(settings, "settings")}
    if credentials.strip():
        patch["credentials"] = _json_field(credentials, "credentials")
    body = ConnectionPatch.model_validate(patch)
    v1_connections.change_connection(db, ctx, connection, body)
    return done(request, f"{LIST}/{connection.id}", "Connection saved.")


@router.post("/connections/{connection_id}/removal-limit")
def set_removal_limit(
    request: Request,
    connection_id: ResourceId,
    viewer: AdminPosted,
    db: DB,
    people: Annotated[int, Form()],
    percent: Annotated[float, Form()],
) -> Response:
    """Change the connection's removal limit (settings.removal_limit, checked as PATCH /v1/connections/{id}
    checks it); back to the page the form was on (the connection's, or Manage organisation)."""
    connection = connections.get(db, viewer.organisation.id, connection_id)
    body = ConnectionPatch.model_validate({"settings": {"removal_limit": {"people": people, "percent": percent}}})
    v1_connections.change_connection(db, context(request), connection, body)
    words = f"{people} people or {percent:g}%"
    return done(request, back_to(request), f"{connection.name}: up to {words} may leave in an hour, whichever is more.")


@router.post("/connections/{connection_id}/sync")
def sync_now(request: Request, connection_id: ResourceId, viewer: AdminPosted, db: DB) -> Response:
    """Queue a sync now, as POST /v1/connections/{id}/sync does."""
    ctx = context(request)
    connection = connections.get(db, viewer.organisation.id, connection_id)
    where = f"{LIST}/{connection.id}"
    if v1_connections.queue_sync(db, ctx, connection):
        return done(request, where, "Sync queued.")
    return done(request, where, "A sync was already asked for; it covers this one.")


@router.post("/connections/{connection_id}/person")
def sync_person_now(
    request: Request,
    connection_id: ResourceId,
    viewer: AdminPosted,
    db: DB,
    email: Annotated[str, Form(max_length=320)],
) -> Response:
    """Read one person from the directory and apply it at once, as POST /v1/connections/{id}/sync with an
    email does (the same checks and the same answer, in words)."""
    connection = connections.get(db, viewer.organisation.id, connection_id)
    body = v1_connections.SyncIn.model_validate({"email": email})
    synced = v1_connections.sync_person(db, context(request), connection, body.email)
    did = ", ".join(f"{name} {count}" for name, count in synced.counts.items()) or "nothing to change"
    if not synced.found:
        said = f"{synced.email} is no longer in the directory: {did}."
    elif synced.in_scope:
        said = f"{synced.email} read from the directory: {did}."
    else:
        said = f"{synced.email} is outside the connection's scope: {did}."
    return done(request, f"{LIST}/{connection.id}", " ".join([said, *synced.notes]))


@router.post("/connections/{connection_id}/import")
async def import_csv(
    request: Request,
    connection_id: ResourceId,
    viewer: AdminPosted,
    db: DB,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    """Import a CSV file into a csv connection (or, as a dry run, show what it would do)."""
    raw = await file.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("The file is not UTF-8 text: export it as CSV UTF-8 and try again.") from None
    return await _run_import(request, viewer, db, connection_id, text, dry_run)


async def _run_import(
    request: Request, viewer: Viewer, db: Session, connection_id: int, text: str, dry_run: bool
) -> Response:
    """Parse and apply the file on the thread pool (the store's I/O), as the sync routes run."""

    def work() -> Response:
        connection = connections.get(db, viewer.organisation.id, connection_id)
        parsed = parse(text)
        if parsed.page is None:
            return _detail(request, viewer, db, connection, import_errors=parsed.errors, import_rows=parsed.rows)
        plan_id = None
        if dry_run:  # the plan is kept: it can be applied as it is
            tally, plan = imports.plan_file(db, connection, parsed.page)
            plan_id = plan.public_id
        else:
            tally = imports.import_page(db, connection, parsed.page, dry_run=False)
        db.commit()
        return _detail(
            request,
            viewer,
            db,
            connection,
            imported={
                "dry_run": dry_run,
                "rows": parsed.rows,
                "counts": tally.counts,
                "people": tally.people,
                "plan_id": plan_id,
            },
            import_notes=tally.notes,
        )

    return await run_in_threadpool(work)

"""Connections (admins): Microsoft Entra ID, Google Workspace, SCIM and CSV directories, and ICS feeds.

Credentials go in and never come out: no answer, list or event carries them. A SCIM connection's
bearer token is shown once, when it is made or rotated. A CSV connection is fed by imports: the
file is the whole directory, so whoever it leaves out is removed; `dry_run` shows that plan first.
An ICS connection's feed URL is a credential too (most carry a token): it is shown as its scheme
and host only. Microsoft and Google connections read people's calendars with `calendars: true`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.deps import DB, AdminCaller, context
from api.errors import ApiError, problem
from api.v1.common import PatchBody, RequestBody, Resource, Timestamp, path_id, problems
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from connectors.csv import parse
from connectors.ics import redact
from connectors.kind import Capability, KindCredentials, KindSettings
from connectors.kinds import KINDS, REGISTRY
from connectors.records import ConnectorError
from store.models import Calendar, Connection, ConnectionKind
from store.secret_box import SecretBox, UndecryptableSecret
from store.services import calendars, connections
from sync.directory import imports, person

router = APIRouter(prefix="/connections", tags=["connections"])

KEYSET = Keyset("connections", (Connection.id,))
ConnectionId = Annotated[int, path_id("The connection's id.")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
NO_STORE = {"Cache-Control": "no-store"}


def _known_kind(value: str) -> str:
    REGISTRY.get(value)  # KindInvalid (a ValueError) for a name no kind has: a 422
    return value


Kind = Annotated[str, AfterValidator(_known_kind), WithJsonSchema({"type": "string", "enum": list(REGISTRY.names())})]


def _help(part: str) -> str:
    """Each kind's options (`settings` or `credentials`) with their descriptions, from the kind registry."""
    lines = []
    for kind in KINDS.values():
        model = kind.settings if part == "settings" else kind.credentials
        base = KindSettings if part == "settings" else KindCredentials
        fields = [
            f"{name} ({field.description})" if field.description else name
            for name, field in model.model_fields.items()
            if name not in base.model_fields
        ]
        lines.append(f"{kind.name}: {', '.join(fields) or 'none'}")
    return "; ".join(lines)


SETTINGS_HELP = (
    _help("settings")
    + "; every kind: scope {groups, org_units, domains, include_guests, include_without_mailbox}, team_groups "
    '(group ids or addresses mirrored as teams, "*" for all; a csv connection defaults to ["*"]) and removal_limit '
    "{people, percent}: removals within an hour past the larger wait for an admin (default 10 people or 5%)."
)
CREDENTIALS_HELP = (
    _help("credentials") + ". Kept encrypted; never shown again (an ics url only as its scheme and host)."
)


def read_at_once(connection: Connection) -> bool:
    """Whether the connection's directory is read as soon as it is made (pushing kinds, peer platforms)."""
    return _pushes(connection) or REGISTRY.can(connection.kind, Capability.PEER_PLATFORM)


def get_connection(db: DB, caller: AdminCaller, connection_id: ConnectionId) -> Connection:
    """The caller's organisation's connection from the path; another organisation's id is a 404."""
    return connections.get(db, caller.organisation.id, connection_id)


Context = Annotated[ApiContext, Depends(context)]
Chosen = Annotated[Connection, Depends(get_connection)]


# --- models ------------------------------------------------------------------------------------


class ConnectionOut(Resource):
    """A directory people are synced from, and how its last sync went. Credentials are never part of it."""

    id: int
    kind: Kind
    name: str
    status: Literal["active", "syncing", "error", "action_required", "removals_held"] = Field(
        description="error: the last sync failed and is retried; action_required: only an admin can fix it; "
        "removals_held: syncs go on, but removals past the removal limit wait for an admin (`held_plan_id`)."
    )
    held_plan_id: str | None = Field(
        description="The plan holding removals for an admin (GET …/plans/{plan_id}: apply approves, reject keeps)."
    )
    settings: dict[str, Any] = Field(description=SETTINGS_HELP)
    last_synced_at: Timestamp | None
    last_error: str | None = Field(description="Why the last sync failed, for an admin to act on.")
    last_counts: dict[str, int] = Field(description="What the last sync did: seen, invited, removed…")
    last_notes: list[str] = Field(description="What happened on the way (throttled, resynced, skipped people).")
    feed_url: str | None = Field(
        default=None, description="ics: the feed's scheme and host only (the rest may be a secret); null otherwise."
    )
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, connection: Connection, box: SecretBox) -> ConnectionOut:
        """The connection as admins see it: an ICS feed's URL redacted, other credentials left out."""
        out = cls.model_validate(connection)
        shown = REGISTRY.get(connection.kind).shown_address
        if shown is not None:
            out.feed_url = redact(str(connections.credentials(box, connection).get(shown, "")))
        return out


class ConnectionCreated(ConnectionOut):
    """A new connection; for SCIM with its bearer token, shown only now (rotate it to get a new one)."""

    token: str | None = Field(description="The SCIM bearer token; null for other kinds.")


def _kinds_schema(schema: dict[str, Any]) -> None:
    # Documented one kind at a time (from the registry); checked by the kind's descriptor, whose messages
    # name the setting, rather than by the schema.
    schema["oneOf"] = [kind.json_schema() for kind in KINDS.values()]


class ConnectionIn(RequestBody):
    """A new connection: its kind's settings and credentials are listed one kind at a time (`oneOf`)."""

    model_config = ConfigDict(json_schema_extra=_kinds_schema)

    kind: Kind
    name: Name
    settings: dict[str, Any] = Field(default_factory=dict, description=SETTINGS_HELP)
    credentials: dict[str, Any] = Field(default_factory=dict, description=CREDENTIALS_HELP)


class ConnectionPatch(PatchBody):
    """What to change; leave a field out to keep it. `settings` are merged key by key; `credentials` replace."""

    name: Name | None = None
    settings: dict[str, Any] | None = Field(default=None, description=SETTINGS_HELP)
    credentials: dict[str, Any] | None = Field(default=None, description=CREDENTIALS_HELP)


class SyncQueued(BaseModel):
    """Whether this request queued a sync."""

    queued: bool = Field(description="false: a sync was already asked for and not started; it covers this one.")


class SyncIn(RequestBody):
    """One person now: read just them from the directory and apply it at once (Microsoft, Google)."""

    email: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320, pattern=r"^[^@\s/]+@[^@\s/]+$")
    ] = Field(description="Their address: mailbox or sign-in name.")


class PersonSynced(BaseModel):
    """What reading one person did."""

    email: str
    found: bool = Field(description="false: the directory no longer has them; the connection knew them, so they left.")
    in_scope: bool = Field(description="Whether the connection's scope takes them in.")
    member_id: int | None = Field(description="The member they feed, if any.")
    member_status: Literal["invited", "active", "removed"] | None
    counts: dict[str, int] = Field(description="What it did: invited, added, updated, removed…")
    notes: list[str]


class TokenOut(BaseModel):
    """A new SCIM bearer token; the previous one stopped working."""

    token: str


class ImportIn(RequestBody):
    """A CSV export: ours (email,name,teams,active; only email is required), or Microsoft Entra ID's or the
    Google Admin console's "Download users" file as downloaded; separated by ',', ';' or tab."""

    csv: str = Field(
        description="The file's text. Teams are separated by ';' or '|'; active is true/false, yes/no, 1/0 or "
        "Active/Suspended. Excel's 'sep=' first line is understood."
    )


class RowErrorOut(BaseModel):
    line: int
    message: str


class ImportOut(BaseModel):
    """What an import did, or with `dry_run`, would do."""

    dry_run: bool
    applied: bool = Field(description="Whether the store was changed (never on a dry run or a file with errors).")
    rows: int = Field(description="People rows read.")
    counts: dict[str, int]
    people: dict[str, list[str]] = Field(
        description="Addresses by action: invited, added, restored, linked (already members, now the file's), "
        "updated, removed, skipped…"
    )
    notes: list[str]
    errors: list[RowErrorOut] = Field(description="Bad rows (a dry run only; an import answers 422 instead).")
    plan_id: str | None = Field(
        default=None,
        description="A dry run: the plan kept for an hour; POST /v1/connections/{id}/plans/{plan_id}/apply imports "
        "the file as planned.",
    )


def default_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with the kind's defaults for what they leave out (a CSV connection mirrors every team)."""
    return {**REGISTRY.get(kind).default_settings, **settings}


# --- routes ------------------------------------------------------------------------------------


@router.post("", status_code=201, summary="Create a connection", responses=problems(400, 413, 415, 422))
def create_connection(
    body: ConnectionIn, response: Response, caller: AdminCaller, db: DB, ctx: Context
) -> ConnectionCreated:
    """Connect a directory (admins only). A Microsoft or Google directory is read at once and its push
    channels opened; a SCIM one waits for its identity provider, a CSV one for an import; an ICS feed
    (and the calendars of a connection with `calendars: true`) is read at once."""
    connection, token = add_connection(db, ctx, caller.organisation.id, body)
    response.headers["Location"] = f"/v1/connections/{connection.id}"
    response.headers.update(NO_STORE)
    out = ConnectionOut.of(connection, ctx.box())
    return ConnectionCreated.model_validate({**out.model_dump(), "token": token})


@router.get("", summary="List connections", responses=problems(422))
def list_connections(caller: AdminCaller, db: DB, paging: Paging, ctx: Context) -> Page[ConnectionOut]:
    """The organisation's connections with their status, by id (admins only)."""
    rows, cursor = fetch(db, connections.select_connections(caller.organisation.id), KEYSET, paging)
    return page_of([ConnectionOut.of(row, ctx.box()) for row in rows], cursor)


@router.get("/{connection_id}", summary="Get a connection", responses=problems(404))
def get_one(connection: Chosen, ctx: Context) -> ConnectionOut:
    """One connection and how its last sync went (admins only)."""
    return ConnectionOut.of(connection, ctx.box())


class CalendarOut(Resource):
    """A calendar a connection reads (a person's, or the feed), and how its last sync went."""

    id: int
    member_id: int | None = Field(description="Whose calendar it is; null for an organisation resource's feed.")
    address: str = Field(description="The mailbox it is read as (Microsoft, Google); empty for a feed.")
    status: Literal["active", "syncing", "error", "action_required"]
    last_synced_at: Timestamp | None
    last_error: str | None = Field(description="Why the last sync failed, for an admin to act on.")
    last_counts: dict[str, int] = Field(description="What the last sync did: events seen, changed, booked…")
    last_notes: list[str]


CALENDAR_KEYSET = Keyset("calendars", (Calendar.id,))


@router.get("/{connection_id}/calendars", summary="List a connection's calendars", responses=problems(404, 422))
def list_calendars(connection: Chosen, db: DB, paging: Paging) -> Page[CalendarOut]:
    """The calendars the connection reads, by id, with each one's last sync (admins only): where a
    person's calendar that cannot be read shows why."""
    rows, cursor = fetch(db, calendars.select_calendars(connection.id), CALENDAR_KEYSET, paging)
    return page_of([CalendarOut.model_validate(row) for row in rows], cursor)


@router.patch("/{connection_id}", summary="Update a connection", responses=problems(400, 404, 413, 415, 422))
def update_one(body: ConnectionPatch, connection: Chosen, db: DB, ctx: Context) -> ConnectionOut:
    """Rename it, change its settings (a new scope applies from the next sync, which re-decides
    everyone) or replace its credentials (which puts a connection needing action back to active).
    Turning `calendars` on or off, or changing what a calendar-reading connection reads with, has its
    calendars brought in line at once."""
    change_connection(db, ctx, connection, body)
    return ConnectionOut.of(connection, ctx.box())


def add_connection(
    db: Session, ctx: ApiContext, organisation_id: int, body: ConnectionIn
) -> tuple[Connection, str | None]:
    """Make the connection `body` describes and commit, then queue its first read: a directory read at
    once with its push channels, a calendar-reading one's calendars. Returns it with its SCIM token
    (shown once; None for other kinds). The API's POST and the console's form both call this."""
    connection, token = connections.create(
        db,
        ctx.box(),
        organisation_id,
        ConnectionKind(body.kind),
        body.name,
        settings=default_settings(body.kind, body.settings),
        credentials=body.credentials,
    )
    first_sync = read_at_once(connection) and connections.request_sync(db, connection.id)
    db.commit()
    if first_sync:
        # Read the directory now and open its push channels, rather than at the scheduler's next poll.
        ctx.jobs.sync_directory(connection.id)
        if _pushes(connection):
            ctx.jobs.renew_directory_channels(connection.id, False)
    if calendars.reads_calendars(connection):
        ctx.jobs.follow_calendars(connection.id)
    return connection, token


def change_connection(db: Session, ctx: ApiContext, connection: Connection, body: ConnectionPatch) -> None:
    """Apply `body` to `connection` and commit, then reopen its push channels when its credentials or
    tenant changed and bring its calendars in line when what they are read with changed. The API's
    PATCH and the console's form both call this."""
    before, reading_before = connection.settings, calendars.reads_calendars(connection)
    connections.update_connection(db, ctx.box(), connection, **body.model_dump(exclude_unset=True))
    # Channels are opened with the credentials and tenant: reopen them when those change.
    reopen = _pushes(connection) and (
        body.credentials is not None or _provider(before) != _provider(connection.settings)
    )
    recalendar = (reading_before or calendars.reads_calendars(connection)) and (
        body.settings is not None or body.credentials is not None
    )
    db.commit()
    if reopen:
        ctx.jobs.renew_directory_channels(connection.id, True)
    if recalendar:
        ctx.jobs.follow_calendars(connection.id)


def _provider(settings: dict[str, Any]) -> dict[str, Any]:
    # Directory channels watch users and groups: the calendar switch does not concern them.
    return {key: value for key, value in settings.items() if key not in ("scope", "team_groups", "calendars")}


@router.delete("/{connection_id}", status_code=204, summary="Delete a connection", responses=problems(404))
def delete_one(connection: Chosen, db: DB, ctx: Context) -> Response:
    """Forget a connection and what its directory said (admins only); the members it brought in stay.
    Its push channels are closed at Microsoft or Google first, while its credentials still exist."""
    if _pushes(connection):
        ctx.jobs.close_channels(connection.id)
    connections.delete(db, connection)
    db.commit()
    return Response(status_code=204)


@router.post(
    "/{connection_id}/sync",
    status_code=202,
    summary="Sync a connection, or one person now",
    response_model=SyncQueued | PersonSynced,
    responses=problems(400, 404, 413, 415, 422, 502),
)
def sync_one(connection: Chosen, db: DB, ctx: Context, body: SyncIn | None = None) -> SyncQueued | PersonSynced:
    """Queue a sync (admins only): `SyncQueued`. Requests while one waits are covered by it: `queued:
    false`. An ICS or CalDAV connection's calendar is read again.

    With `{"email": …}` (Microsoft and Google connections): read just that person from the directory
    and apply it now, as a sync would (invited or added, renamed, their groups and teams, removed when
    out of scope), answered with what it did (`PersonSynced`, done by the time the answer comes). A
    person the directory no longer has is removed when the connection knows them, and is a 404
    otherwise; a refusal or failure of the directory is a 502 and changes nothing."""
    if body is None:
        return SyncQueued(queued=queue_sync(db, ctx, connection))
    return sync_person(db, ctx, connection, body.email)


def sync_person(db: Session, ctx: ApiContext, connection: Connection, email: str) -> PersonSynced:
    """Read one person of `connection`'s directory, apply and commit (the API's route and the CLI)."""
    try:
        done = person.sync_person(db, ctx.box(), ctx.directory, connection, email)
    except ConnectorError as error:
        db.rollback()
        code = "directory_refused" if error.action_required else "directory_failed"
        raise ApiError(502, f"{connection.name}: {error.message}", code=code) from None
    except UndecryptableSecret:
        db.rollback()
        raise ApiError(502, UndecryptableSecret.reason("the connection's credentials"), code="undecryptable") from None
    out = PersonSynced(
        email=done.address,
        found=done.found,
        in_scope=done.in_scope,
        member_id=done.member.id if done.member is not None else None,
        member_status=done.member.status.value if done.member is not None else None,
        counts={name: count for name, count in done.tally.counts.items() if count},
        notes=done.tally.notes,
    )
    db.commit()
    return out


def queue_sync(db: Session, ctx: ApiContext, connection: Connection) -> bool:
    """Ask for `connection`'s sync now and commit; False when one already asked for covers it (the
    API's route and the console's button both call this)."""
    if REGISTRY.can(connection.kind, Capability.ONE_CALENDAR):
        # A connection that is one calendar is read by the calendar worker, which coalesces requests itself.
        ctx.jobs.follow_calendars(connection.id)
        return True
    queued = connections.request_sync(db, connection.id)
    db.commit()
    if queued:
        ctx.jobs.sync_directory(connection.id)
    return queued


@router.post("/{connection_id}/token", summary="Rotate a SCIM token", responses=problems(404))
def rotate_token(connection: Chosen, response: Response, db: DB) -> TokenOut:
    """A new bearer token for a SCIM connection, shown only now; the old one stops working at once."""
    token = connections.rotate_scim_token(db, connection)
    db.commit()
    response.headers.update(NO_STORE)
    return TokenOut(token=token)


@router.post(
    "/{connection_id}/import",
    summary="Import a CSV file",
    response_model=ImportOut,
    responses=problems(400, 404, 409, 413, 415, 422),
)
def import_csv(
    body: ImportIn,
    connection: Chosen,
    request: Request,
    db: DB,
    dry_run: Annotated[
        bool, Query(description="Answer the plan and change nothing but keeping the plan (`plan_id`).")
    ] = False,
) -> ImportOut | JSONResponse:
    """Reconcile a csv connection with a file (admins only): people new in it are invited (or added,
    by the organisation's directory policy), changed ones updated, and people it leaves out or marks
    inactive are removed. A file with any bad row changes nothing: 422 with every row's error."""
    parsed = parse(body.csv)
    if parsed.page is None:
        errors = [RowErrorOut(line=error.line, message=error.message) for error in parsed.errors]
        if dry_run:
            return ImportOut(
                dry_run=True, applied=False, rows=parsed.rows, counts={}, people={}, notes=[], errors=errors
            )
        return problem(
            request,
            422,
            f"{len(errors)} bad row(s); nothing was imported. Fix them all and send the file again.",
            code="invalid_csv",
            errors=[{"field": "csv", "line": error.line, "detail": str(error)} for error in parsed.errors],
        )
    plan_id = None
    if dry_run:
        tally, plan = imports.plan_file(db, connection, parsed.page)
        plan_id = plan.public_id
    else:
        tally = imports.import_page(db, connection, parsed.page, dry_run=False)
    db.commit()
    return ImportOut(
        plan_id=plan_id,
        dry_run=dry_run,
        applied=not dry_run,
        rows=parsed.rows,
        counts=tally.counts,
        people=tally.people,
        notes=tally.notes,
        errors=[],
    )


def _pushes(connection: Connection) -> bool:
    """Whether the connection's kind opens push channels to us (the kind registry says)."""
    return REGISTRY.can(connection.kind, Capability.RECEIVES_PUSHES)

"""WiggleDesk-compatible endpoints, as the WiggleDesk API document describes them.

Trailing slashes, `Authorization: token <secret>`, Django REST framework pages
(`count`/`next`/`previous`/`results`, `?page=N`) and its error shapes. httpie sends `key=value`
items as a JSON body even on GET, so `team_name` is read from the body as well as the query. The
POST routes take JSON, form-encoded and multipart bodies, as Django REST framework's parsers do
(Zapier's "form" mode sends a form). `Allow`, OPTIONS and HEAD are the edge's (api.middleware).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, ValidationError
from sqlalchemy import ColumnElement, Integer, Select, bindparam, exists, func, select

from api.deps import DB, SECURITY, AdminCaller, api_caller_on_loop, context, reads
from api.errors import ApiError
from store.columns import MAX_KEY, UTCDateTime, utcnow
from store.errors import NotFound, StoreError
from store.models import Booking, BookingStatus, Desk, Member, TeamMembership
from store.services import members, teams
from store.services.tokens import Caller

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MEDIA_TYPES = (JSON, FORM, MULTIPART)  # what the POST routes parse
# Django REST framework's two error bodies, as components every error answer refers to (see document()).
_SCHEMAS: dict[str, dict[str, Any]] = {
    "CompatDetail": {
        "type": "object",
        "description": "An error, as Django REST framework words it.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "CompatFieldErrors": {
        "type": "object",
        "description": "Bad input: each field at fault with its messages.",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
}
_DETAIL = {"$ref": "#/components/schemas/CompatDetail"}
_FIELDS = {"$ref": "#/components/schemas/CompatFieldErrors"}


def _documented(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Django REST framework's error shapes, as these routes answer them (never FastAPI's 422).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _documented("Bad input: the fields at fault with their messages, or a detail.", {"anyOf": [_FIELDS, _DETAIL]}),
    401: _documented("No token, or the token is unknown or revoked.", _DETAIL),
    403: _documented("The organisation's API is off, no API access, or the action needs an admin.", _DETAIL),
    404: _documented("No such member, team or page.", _DETAIL),
    409: _documented("The change conflicts with the current state.", _DETAIL),
    413: _documented("The body is larger than the server accepts.", _DETAIL),
    415: _documented("The body is neither JSON, a form nor multipart form data.", _DETAIL),
    429: _documented("The daily request limit is reached; see `Retry-After`.", _DETAIL),
}

router = APIRouter(prefix="/api", tags=["WiggleDesk-compatible"], responses=ERRORS)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document with these routes' validation errors as they are (400, not FastAPI's 422)
    and the body schema their POST routes read by hand."""
    for path, operations in schema.get("paths", {}).items():
        if path.startswith(router.prefix + "/"):
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["MembershipBody"] = MembershipBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(_SCHEMAS)
    return schema


PAGE_SIZE = 100
# What "has a booking" means to WiggleDesk readers: anything not cancelled.
SHOWN_STATUSES = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN, BookingStatus.CHECKED_OUT, BookingStatus.COMPLETED)


class MembershipBody(BaseModel):
    """Who to invite or remove."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email_invited": "example@example.com"}]}
    )

    email_invited: EmailStr


class MembershipReply(BaseModel):
    """A membership as these routes answer it; `status` only when read back by GET."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email_invited": "example@example.com",
                    "url": "https://wiggledesk.com/api/create_membership_invitation/membership_id/",
                }
            ]
        }
    )

    email_invited: str
    url: str
    status: str | None = None


class BookingRow(BaseModel):
    """One booking, its times in the organisation's time zone (`YYYY-MM-DD HH:MM`)."""

    event_id: str
    event_desk: str
    start_date: str
    end_date: str
    user: str
    event_details: str
    booking_reason: str


class UserRow(BaseModel):
    """Someone with a booking today."""

    email: str
    username: str


_BOOKING_EXAMPLE: dict[str, Any] = {
    "event_id": "1",
    "event_desk": "11",
    "start_date": "2022-08-27 09:00",
    "end_date": "2022-08-27 17:00",
    "user": "William",
    "event_details": "Client meeting",
    "booking_reason": "Other",
}


class BookingPage(BaseModel):
    """A Django REST framework page of bookings: `next`/`previous` are the neighbouring pages' URLs."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"count": 1, "next": None, "previous": None, "results": [_BOOKING_EXAMPLE]}]}
    )

    count: int
    next: str | None
    previous: str | None
    results: list[BookingRow]


class UserPage(BaseModel):
    """A Django REST framework page of people."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "count": 1,
                    "next": None,
                    "previous": None,
                    "results": [{"email": "william@test.com", "username": "William"}],
                }
            ]
        }
    )

    count: int
    next: str | None
    previous: str | None
    results: list[UserRow]


async def _membership_body(request: Request) -> MembershipBody:
    """The body as JSON, a form or multipart form data: what Django REST framework's parsers take."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: Any
    if media_type in (FORM, MULTIPART):
        form = await request.form()
        data = {name: value for name, value in form.multi_items() if isinstance(value, str)}  # files are no field
    else:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            raise ApiError(400, "JSON parse error: the body is not valid JSON.") from error
    try:
        return MembershipBody.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from error


# The body is read by `_membership_body` in any of the three forms, so FastAPI cannot see it: documented here.
# Its content names JSON only, the forms in words: openapi-python-client 0.29 writes an uncompilable
# function for a body of several media types (its template loses `body_required` out of a loop's scope).
_MEMBERSHIP_BODY = {
    "requestBody": {
        "required": True,
        "description": "The same field may come form-encoded (`application/x-www-form-urlencoded`, as httpie's "
        "`--form` and Zapier's form mode send it) or as `multipart/form-data`, as Django REST framework reads them.",
        "content": {
            JSON: {
                "schema": {"$ref": "#/components/schemas/MembershipBody"},
                "example": {"email_invited": "example@example.com"},
            }
        },
    }
}


@contextmanager
def _email_field() -> Iterator[None]:
    """Report the services' `email` field under this API's name for it, `email_invited`."""
    try:
        yield
    except StoreError as error:
        if error.field == "email":
            error.field = "email_invited"
        raise


def _membership_reply(request: Request, route: str, member: Member, status: int) -> Response:
    url = f"{context(request).public_base_url.rstrip('/')}/api/{route}/{member.id}/"
    body = {"email_invited": member.email, "url": url}
    if status == 200:
        body["status"] = member.status.value
    # `Allow` is the edge's (api.middleware), as on every answer of these routes.
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Location": url} if status == 201 else {},
    )


# Read after the caller is checked (the caller comes first in the routes' parameters), as Django REST
# framework parses a body only when the view reads it: a member's malformed body is a 403, not a 400.
MembershipIn = Annotated[MembershipBody, Depends(_membership_body)]


@router.post(
    "/create_membership_invitation/",
    status_code=201,
    response_model=MembershipReply,
    openapi_extra=_MEMBERSHIP_BODY,
    responses={201: {"headers": {"Location": {"description": "The membership's URL.", "schema": {"type": "string"}}}}},
)
def create_membership_invitation(caller: AdminCaller, body: MembershipIn, request: Request, db: DB) -> Response:
    """Invite someone by email; the invitation email goes out shortly after."""
    with _email_field():
        invitation = members.invite(
            db,
            caller.organisation.id,
            body.email_invited,
            invited_by=members.get(db, caller.organisation.id, caller.member.id),
            source="api",
        )
    member = db.get_one(Member, invitation.member_id)
    db.commit()
    return _membership_reply(request, "create_membership_invitation", member, 201)


@router.post(
    "/remove_membership/",
    status_code=201,
    response_model=MembershipReply,
    openapi_extra=_MEMBERSHIP_BODY,
    responses={201: {"headers": {"Location": {"description": "The membership's URL.", "schema": {"type": "string"}}}}},
)
def remove_membership(caller: AdminCaller, body: MembershipIn, request: Request, db: DB) -> Response:
    """Remove someone: history stays, future bookings are cancelled, they can no longer book."""
    with _email_field():
        member = members.get_by_email(db, caller.organisation.id, body.email_invited)
        members.remove(db, member, reason="member_removed")
    db.commit()
    return _membership_reply(request, "remove_membership", member, 201)


@router.get("/create_membership_invitation/{member_id}/", response_model=MembershipReply)
@router.get("/remove_membership/{member_id}/", response_model=MembershipReply)
def membership(
    member_id: Annotated[int, Path(ge=1, le=MAX_KEY, description="The id at the end of the membership's `url`.")],
    request: Request,
    caller: AdminCaller,
    db: DB,
) -> Response:
    """The membership a POST above created or removed, with its current status."""
    member = members.get(db, caller.organisation.id, member_id)
    route = request.url.path.removeprefix("/api/").split("/", 1)[0]
    return _membership_reply(request, route, member, 200)


# Past this page the offset would leave the database's integer range; no listing is that long.
LAST_PAGE = MAX_KEY // PAGE_SIZE


def _page_number(request: Request) -> int:
    """`?page=`, as Django REST framework reads it: anything but a page that exists is 404 "Invalid page."."""
    raw = request.query_params.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 1 <= int(raw) <= LAST_PAGE:
        raise ApiError(404, "Invalid page.")
    return int(raw)


Render = Callable[[Any], dict[str, str]]


async def _page(
    request: Request, query: Select[*tuple[Any, ...]], params: dict[str, Any], render: Render
) -> JSONResponse:
    """One Django REST framework page of a prebuilt `query` (see `_listing`), which counts its own rows."""
    number = _page_number(request)
    page = {"limit": PAGE_SIZE, "offset": (number - 1) * PAGE_SIZE}
    rows = await reads(request).all(query, params | page)
    if not rows and number > 1:
        raise ApiError(404, "Invalid page.")
    total = rows[0].total if rows else 0

    def link(page: int) -> str | None:
        if page < 1 or (page - 1) * PAGE_SIZE >= total:
            return None
        if page == 1:
            return str(request.url.remove_query_params("page"))
        return str(request.url.include_query_params(page=page))

    body = {
        "count": total,
        "next": link(number + 1),
        "previous": link(number - 1),
        "results": [render(r) for r in rows],
    }
    return JSONResponse(body)


def _listing(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """`query` paged by `:limit`/`:offset`, each row carrying the total (a window count)."""
    return (
        query.add_columns(func.count().over().label("total"))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


def _bookings_where(*conditions: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    return _listing(
        select(
            Booking.id,
            Booking.start_at,
            Booking.end_at,
            Booking.details,
            Booking.reason,
            # A lookup per row on the page rather than a join: the planner would hash every desk.
            select(Desk.label).where(Desk.id == Booking.desk_id).scalar_subquery().label("label"),
            Member.display_name,
            Member.email,
        )
        .join(Member, Member.id == Booking.member_id)
        .where(Booking.organisation_id == bindparam("organisation_id"), Booking.status.in_(SHOWN_STATUSES), *conditions)
        .order_by(Booking.start_at, Booking.id)
    )


# The listings are built once: these routes are the API's busiest, and building a statement costs
# more than running it. Values arrive as bound parameters.
_MINE = Booking.member_id == bindparam("member_id")
_UPCOMING = Booking.end_at > bindparam("now", type_=UTCDateTime())
_IN_TEAM = exists().where(TeamMembership.team_id == bindparam("team_id"), TeamMembership.member_id == Booking.member_id)
MY_BOOKINGS = _bookings_where(_MINE)
MY_UPCOMING_BOOKINGS = _bookings_where(_MINE, _UPCOMING)
TEAM_UPCOMING_BOOKINGS = _bookings_where(_IN_TEAM, _UPCOMING)


async def _booking_page(
    request: Request, caller: Caller, query: Select[*tuple[Any, ...]], **params: Any
) -> JSONResponse:
    zone = ZoneInfo(caller.organisation.timezone)

    def render(row: Any) -> dict[str, str]:
        return {
            "event_id": str(row.id),
            "event_desk": row.label or "",
            "start_date": _local(row.start_at, zone),
            "end_date": _local(row.end_at, zone),
            "user": row.display_name or row.email.split("@", 1)[0],
            "event_details": row.details,
            "booking_reason": row.reason,
        }

    return await _page(request, query, {"organisation_id": caller.organisation.id, **params}, render)


def _local(value: datetime, zone: ZoneInfo) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
    return aware.astimezone(zone).isoformat(" ", "minutes")[:16]  # "%Y-%m-%d %H:%M", at a third of strftime's cost


async def _team_name(request: Request) -> str:
    name = request.query_params.get("team_name")
    if name is None and await request.body():
        try:
            body = await request.json()
        except ValueError as error:
            raise ApiError(400, "JSON parse error: the body is not valid JSON.") from error
        name = body.get("team_name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "This field is required.", field="team_name")
    return name


# `team_name` is read by `_team_name` (query or body), so FastAPI cannot see it: documented by hand.
_TEAM_NAME = {
    "name": "team_name",
    "in": "query",
    "required": True,
    "description": "The team's name (httpie may send it in a JSON body instead).",
    "schema": {"type": "string", "minLength": 1, "pattern": r"\S"},  # blank is "This field is required."
    "example": "Platform",
}


_PAGE = {
    "name": "page",
    "in": "query",
    "required": False,
    "description": "The page (of 100), from 1; a page past the last is 404 `Invalid page.`.",
    "schema": {"type": "integer", "minimum": 1, "maximum": LAST_PAGE, "default": 1},
}
_PAGED = {"parameters": [_PAGE], **SECURITY}


# The listings are the API's busiest routes: they run on the event loop from end to end, the caller
# authenticated (`api_caller_on_loop`) and the page read (`reads`) without a trip to the thread pool.


@router.get(
    "/teams_upcoming_bookings/",
    response_model=BookingPage,
    openapi_extra={"parameters": [_TEAM_NAME, _PAGE], **SECURITY},
)
async def teams_upcoming_bookings(request: Request, team_name: Annotated[str, Depends(_team_name)]) -> JSONResponse:
    """The upcoming bookings (ending after now) of everyone in the team named `team_name`."""
    caller = await api_caller_on_loop(request)
    key = {"organisation_id": caller.organisation.id, "name_key": teams.name_key(team_name)}
    team = await reads(request).first(teams.TEAM_ID_BY_NAME, key)
    if team is None:
        raise NotFound(f"no team named {team_name!r}", field="team_name")
    return await _booking_page(request, caller, TEAM_UPCOMING_BOOKINGS, team_id=team.id, now=utcnow())


@router.get("/bookings/", response_model=BookingPage, openapi_extra=_PAGED)
async def my_bookings(request: Request) -> JSONResponse:
    """All of the caller's bookings: past, present and future."""
    caller = await api_caller_on_loop(request)
    return await _booking_page(request, caller, MY_BOOKINGS, member_id=caller.member.id)


@router.get("/my_upcoming_bookings/", response_model=BookingPage, openapi_extra=_PAGED)
async def my_upcoming_bookings(request: Request) -> JSONResponse:
    """The caller's bookings that end after now."""
    caller = await api_caller_on_loop(request)
    return await _booking_page(request, caller, MY_UPCOMING_BOOKINGS, member_id=caller.member.id, now=utcnow())


# Members with a booking overlapping [:day_start, :day_end).
USERS_IN_OFFICE = _listing(
    select(Member.email, Member.display_name)
    .where(
        exists().where(
            Booking.member_id == Member.id,
            Booking.organisation_id == bindparam("organisation_id"),
            Booking.status.in_(SHOWN_STATUSES),
            Booking.start_at < bindparam("day_end", type_=UTCDateTime()),
            Booking.end_at > bindparam("day_start", type_=UTCDateTime()),
        )
    )
    .order_by(Member.display_name, Member.email)
)


@router.get("/users_in_office/", response_model=UserPage, openapi_extra=_PAGED)
async def users_in_office(request: Request) -> JSONResponse:
    """Everyone with a booking during today, in the organisation's time zone."""

    def render(row: Any) -> dict[str, str]:
        return {"email": row.email, "username": row.display_name or row.email.split("@", 1)[0]}

    caller = await api_caller_on_loop(request)
    zone = ZoneInfo(caller.organisation.timezone)
    today = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = (today + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"organisation_id": caller.organisation.id, "day_start": today, "day_end": tomorrow}
    return await _page(request, USERS_IN_OFFICE, params, render)

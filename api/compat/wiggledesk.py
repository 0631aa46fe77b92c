"""WiggleDesk-compatible endpoints, as the WiggleDesk API document describes them.

Trailing slashes, `Authorization: token <secret>`, Django REST framework pages
(`count`/`next`/`previous`/`results`, `?page=N`) and its error shapes. httpie sends `key=value`
items as a JSON body even on GET, so `team_name` is read from the body as well as the query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.deps import DB, AdminCaller, ApiCaller, context
from api.errors import ApiError
from store.columns import utcnow
from store.errors import StoreError
from store.models import Booking, BookingStatus, Desk, Member
from store.services import bookings, members, teams
from store.services.bookings import BookingFilter
from store.services.tokens import Caller

router = APIRouter(prefix="/api", tags=["WiggleDesk-compatible"])

PAGE_SIZE = 100
# What "has a booking" means to WiggleDesk readers: anything not cancelled.
SHOWN_STATUSES = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN, BookingStatus.CHECKED_OUT, BookingStatus.COMPLETED)


class MembershipBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email_invited: EmailStr


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
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Location": url, "Allow": "GET, POST, HEAD, OPTIONS"} if status == 201 else {},
    )


@router.post("/create_membership_invitation/", status_code=201)
def create_membership_invitation(body: MembershipBody, request: Request, caller: AdminCaller, db: DB) -> Response:
    """Invite someone by email; the invitation email goes out shortly after."""
    with _email_field():
        invitation = members.invite(
            db, caller.organisation.id, body.email_invited, invited_by=caller.member, source="api"
        )
    member = db.get_one(Member, invitation.member_id)
    db.commit()
    return _membership_reply(request, "create_membership_invitation", member, 201)


@router.post("/remove_membership/", status_code=201)
def remove_membership(body: MembershipBody, request: Request, caller: AdminCaller, db: DB) -> Response:
    """Remove someone: history stays, future bookings are cancelled, they can no longer book."""
    with _email_field():
        member = members.get_by_email(db, caller.organisation.id, body.email_invited)
        members.remove(db, member, reason="member_removed")
    db.commit()
    return _membership_reply(request, "remove_membership", member, 201)


@router.get("/create_membership_invitation/{member_id}/")
@router.get("/remove_membership/{member_id}/")
def membership(member_id: int, request: Request, caller: AdminCaller, db: DB) -> Response:
    """The membership a POST above created or removed, with its current status."""
    member = members.get(db, caller.organisation.id, member_id)
    route = request.url.path.removeprefix("/api/").split("/", 1)[0]
    return _membership_reply(request, route, member, 200)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(404, "Invalid page.")
    return int(raw)


Render = Callable[[Any], dict[str, str]]


def _page(request: Request, db: Session, query: Select[*tuple[Any, ...]], render: Render) -> JSONResponse:
    """One Django REST framework page of `query`, counted by the same statement (a window count)."""
    number = _page_number(request)
    rows = db.execute(
        query.add_columns(func.count().over().label("total")).limit(PAGE_SIZE).offset((number - 1) * PAGE_SIZE)
    ).all()
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


_ROW_COLUMNS = (
    Booking.id,
    Booking.start_at,
    Booking.end_at,
    Booking.details,
    Booking.reason,
    Desk.label,
    Member.display_name,
    Member.email,
)


def _booking_page(request: Request, db: Session, caller: Caller, where: BookingFilter) -> JSONResponse:
    zone = ZoneInfo(caller.organisation.timezone)
    query = (
        select(*_ROW_COLUMNS)
        .join(Member, Member.id == Booking.member_id)
        .outerjoin(Desk, Desk.id == Booking.desk_id)
        .where(*bookings.booking_conditions(caller.organisation.id, where))
        .order_by(Booking.start_at, Booking.id)
    )

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

    return _page(request, db, query, render)


def _local(value: datetime, zone: ZoneInfo) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
    return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M")


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


@router.get("/teams_upcoming_bookings/")
def teams_upcoming_bookings(
    request: Request, team_name: Annotated[str, Depends(_team_name)], caller: ApiCaller, db: DB
) -> JSONResponse:
    """The upcoming bookings (ending after now) of everyone in the team named `team_name`."""
    team = teams.get_by_name(db, caller.organisation.id, team_name)
    where = BookingFilter(team_id=team.id, ends_after=utcnow(), statuses=SHOWN_STATUSES)
    return _booking_page(request, db, caller, where)


@router.get("/bookings/")
def my_bookings(request: Request, caller: ApiCaller, db: DB) -> JSONResponse:
    """All of the caller's bookings: past, present and future."""
    return _booking_page(request, db, caller, BookingFilter(member_id=caller.member.id, statuses=SHOWN_STATUSES))


@router.get("/my_upcoming_bookings/")
def my_upcoming_bookings(request: Request, caller: ApiCaller, db: DB) -> JSONResponse:
    """The caller's bookings that end after now."""
    where = BookingFilter(member_id=caller.member.id, ends_after=utcnow(), statuses=SHOWN_STATUSES)
    return _booking_page(request, db, caller, where)


@router.get("/users_in_office/")
def users_in_office(request: Request, caller: ApiCaller, db: DB) -> JSONResponse:
    """Everyone with a booking during today, in the organisation's time zone."""
    zone = ZoneInfo(caller.organisation.timezone)
    today = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    day_start, day_end = today, (today + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    in_office = (
        select(Booking.member_id)
        .where(
            Booking.organisation_id == caller.organisation.id,
            Booking.status.in_(SHOWN_STATUSES),
            Booking.start_at < day_end,
            Booking.end_at > day_start,
        )
        .distinct()
        .subquery()
    )
    query = select(Member.email, Member.display_name).where(Member.id.in_(select(in_office.c.member_id)))
    query = query.order_by(Member.display_name, Member.email)

    def render(row: Any) -> dict[str, str]:
        return {"email": row.email, "username": row.display_name or row.email.split("@", 1)[0]}

    return _page(request, db, query, render)

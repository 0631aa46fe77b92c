"""Bookings: book a slot (with or without a desk), list and filter, move, cancel, check in and out.

Everyone may read the organisation's bookings; members change their own, admins any.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import Field, ValidationInfo, field_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import DB, SECURITY, ApiCaller, LoopApiCaller, context, reads
from api.errors import ApiError
from api.v1.common import (
    PatchBody,
    QueryTime,
    RequestBody,
    Resource,
    ResourceId,
    Time,
    Timestamp,
    is_admin,
    path_id,
    problems,
    query_id,
)
from api.v1.pagination import Keyset, Page, Paging, cut, keyset_params, keyset_query
from store.models import Booking, BookingStatus
from store.services import bookings, desks, members, teams
from store.services.bookings import BookingFilter, FilterShape
from store.services.tokens import Caller

router = APIRouter(prefix="/bookings", tags=["bookings"])

KEYSET = Keyset("bookings", (Booking.start_at, Booking.id))
BookingId = Annotated[int, path_id("The booking's id.")]
Details = Annotated[str, Field(max_length=2000, description="Free text shown with the booking.")]
Reason = Annotated[str, Field(min_length=1, max_length=32, description="Why: WFO, Other…")]


class BookingOut(Resource):
    """A member's claim on a time slot, with or without a desk."""

    id: int
    member_id: int
    desk_id: int | None
    start: Timestamp = Field(validation_alias="start_at")
    end: Timestamp = Field(validation_alias="end_at")
    details: str
    reason: str
    status: BookingStatus
    source: str = Field(description="Where it was made: api, wiggledesk, calendar…")
    cancellation_reason: str | None
    cancelled_at: Timestamp | None
    checked_in_at: Timestamp | None
    checked_out_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


def _end_after_start(end: datetime | None, info: ValidationInfo) -> datetime | None:
    start = info.data.get("start")
    if end is not None and start is not None and end <= start:
        raise ValueError("end must be after start")
    return end


class BookingIn(RequestBody):
    """A new booking. Times are ISO 8601 with an offset; times without one are refused."""

    start: Time
    end: Time
    desk_id: ResourceId | None = Field(default=None, description="The desk to hold; leave out to book without one.")
    member_id: ResourceId | None = Field(
        default=None, description="Whom the booking is for (admins only); leave out to book for yourself."
    )
    details: Details = ""
    reason: Reason = "WFO"

    _check_end = field_validator("end")(_end_after_start)


class BookingPatch(PatchBody):
    """The fields to change; leave a field out to keep it. `desk_id` null drops the desk."""

    nullable = frozenset({"desk_id"})

    start: Time | None = None
    end: Time | None = None
    desk_id: ResourceId | None = None
    details: Details | None = None
    reason: Reason | None = None

    _check_end = field_validator("end")(_end_after_start)


class CancelIn(RequestBody):
    """Why the booking is cancelled (optional)."""

    reason: str = Field(default="", max_length=64)


def _booking_for_change(db: Session, caller: Caller, booking_id: int) -> Booking:
    """The booking, if the caller may change it: their own, or any of the organisation's for an admin."""
    booking = bookings.get(db, caller.organisation.id, booking_id)
    if booking.member_id != caller.member.id and not is_admin(caller):
        raise ApiError(403, "You can only change your own bookings.", code="not_your_booking")
    return booking


@router.post("", status_code=201, summary="Book a slot", responses=problems(400, 404, 409, 413, 415, 422))
def create_booking(body: BookingIn, response: Response, caller: ApiCaller, db: DB) -> BookingOut:
    """Book a slot for yourself, or, as an admin, for any member (`member_id`).

    A desk or member already booked for an overlapping time is a 409 conflict; an unknown desk or
    member a 404.
    """
    member_id = caller.member.id
    if body.member_id is not None and body.member_id != caller.member.id:
        if not is_admin(caller):
            raise ApiError(403, "Only admins can book for someone else.", code="admin_only")
        member_id = body.member_id
    member = members.get(db, caller.organisation.id, member_id)
    booking = bookings.create(
        db,
        member,
        start=body.start,
        end=body.end,
        desk_id=body.desk_id,
        details=body.details,
        reason=body.reason,
        source="api",
    )
    db.commit()
    response.headers["Location"] = f"/v1/bookings/{booking.id}"
    return BookingOut.model_validate(booking)


@router.get(
    "", summary="List bookings", response_model=Page[BookingOut], responses=problems(404, 422), openapi_extra=SECURITY
)
async def list_bookings(
    request: Request,
    caller: LoopApiCaller,
    paging: Paging,
    ends_after: Annotated[
        QueryTime | None,
        Query(alias="from", description="Only bookings that end after this time (ISO 8601 with offset)."),
    ] = None,
    starts_before: Annotated[
        QueryTime | None,
        Query(alias="to", description="Only bookings that start before this time (ISO 8601 with offset)."),
    ] = None,
    member_id: Annotated[int | None, query_id("Only this member's bookings.")] = None,
    team_id: Annotated[int | None, query_id("Only bookings of this team's members.")] = None,
    desk_id: Annotated[int | None, query_id("Only bookings of this desk.")] = None,
    status: Annotated[list[BookingStatus] | None, Query(description="Only these statuses; repeat for several.")] = None,
) -> Response:
    """The organisation's bookings by start time. `from` and `to` select the bookings overlapping
    that window. An unknown member, team or desk is a 404."""
    if ends_after is not None and starts_before is not None and starts_before <= ends_after:
        raise ApiError(422, "`to` must be after `from`.", field="to")
    organisation_id = caller.organisation.id

    def check_filters() -> None:
        with context(request).session_factory() as db:
            if member_id is not None:
                members.get(db, organisation_id, member_id)
            if team_id is not None:
                teams.get(db, organisation_id, team_id)
            if desk_id is not None:
                desks.get(db, organisation_id, desk_id)

    # A row on the page proves its member, team and desk are the organisation's: the filters are looked
    # up (404 when unknown) only for an empty page, or before reading a cursor, as ever.
    if paging.cursor is not None:
        await run_in_threadpool(check_filters)
    where = BookingFilter(
        member_id=member_id,
        team_id=team_id,
        desk_id=desk_id,
        statuses=tuple(status or ()),
        ends_after=ends_after,
        starts_before=starts_before,
    )
    params = where.values(organisation_id) | keyset_params(KEYSET, paging)
    rows, cursor = cut(
        await reads(request).all(_listing(where.shape(), paging.cursor is not None), params), KEYSET, paging
    )
    if not rows and paging.cursor is None:
        await run_in_threadpool(check_filters)
    page = Page[BookingOut].model_validate(
        {"data": rows, "next_cursor": cursor, "has_more": cursor is not None}, from_attributes=True
    )
    return Response(page.model_dump_json(), media_type="application/json")


# The columns `BookingOut` shows, by the names it reads them by.
_COLUMNS = [Booking.__table__.c[str(field.validation_alias or name)] for name, field in BookingOut.model_fields.items()]


@functools.cache
def _listing(shape: FilterShape, after: bool) -> Select[*tuple[Any, ...]]:
    """The listing's statement for filters of this shape, built once per shape (see `store.reads`)."""
    return keyset_query(select(*_COLUMNS).where(*bookings.bound_conditions(shape)), KEYSET, after=after)


@router.get("/{booking_id}", summary="Get a booking", responses=problems(404))
def get_booking(booking_id: BookingId, caller: ApiCaller, db: DB) -> BookingOut:
    """One booking of the organisation."""
    return BookingOut.model_validate(bookings.get(db, caller.organisation.id, booking_id))


@router.patch("/{booking_id}", summary="Move or edit a booking", responses=problems(400, 404, 409, 413, 415, 422))
def update_booking(booking_id: BookingId, body: BookingPatch, caller: ApiCaller, db: DB) -> BookingOut:
    """Move a live booking in time, change or drop its desk, or edit its details and reason.

    Your own bookings, or any as an admin. An overlap with another booking, or a booking that is no
    longer live (cancelled, checked out…), is a 409 conflict.
    """
    booking = _booking_for_change(db, caller, booking_id)
    bookings.update(db, booking, **body.model_dump(exclude_unset=True))
    db.commit()
    return BookingOut.model_validate(booking)


@router.post("/{booking_id}/cancel", summary="Cancel a booking", responses=problems(400, 404, 409, 413, 415, 422))
def cancel_booking(
    booking_id: BookingId, caller: ApiCaller, db: DB, body: Annotated[CancelIn | None, Body()] = None
) -> BookingOut:
    """Cancel a live booking; the desk is free again. The body is optional."""
    booking = _booking_for_change(db, caller, booking_id)
    default = "cancelled_by_member" if booking.member_id == caller.member.id else "cancelled_by_admin"
    bookings.cancel(db, booking, reason=(body.reason.strip() if body else "") or default)
    db.commit()
    return BookingOut.model_validate(booking)


@router.post("/{booking_id}/check-in", summary="Check in", responses=problems(404, 409))
def check_in(booking_id: BookingId, caller: ApiCaller, db: DB) -> BookingOut:
    """Check in to a booking, from 30 minutes before its start until its end; otherwise a 409 conflict."""
    booking = _booking_for_change(db, caller, booking_id)
    bookings.check_in(db, booking)
    db.commit()
    return BookingOut.model_validate(booking)


@router.post("/{booking_id}/check-out", summary="Check out", responses=problems(404, 409))
def check_out(booking_id: BookingId, caller: ApiCaller, db: DB) -> BookingOut:
    """Check out of a checked-in booking; the desk is free for the rest of the slot."""
    booking = _booking_for_change(db, caller, booking_id)
    bookings.check_out(db, booking)
    db.commit()
    return BookingOut.model_validate(booking)

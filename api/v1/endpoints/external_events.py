"""External events: what people's calendars say (Outlook, Google Calendar, ICS feeds), read-only.

Admins read everyone's, a member their own. With the organisation's privacy setting on, titles,
locations, attendees and categories are empty: the sync no longer keeps them, and events kept from
before the setting are blanked here too, so nothing private leaks whatever the order of things.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import DB, ApiCaller
from api.errors import ApiError
from api.v1.common import QueryTime, Resource, Timestamp, is_admin, problems, query_id
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.models import ExternalEvent, ShowAs, WorkingLocation
from store.services import calendars, external_events, members, organisations

router = APIRouter(prefix="/external-events", tags=["external events"])

KEYSET = Keyset("external_events", (ExternalEvent.start_at, ExternalEvent.id))
# The widest organisation window is 367 days (a day back, 365 ahead, the day in progress): a little
# more lets a caller ask for any of it at once, and bounds what one listing walks.
MAX_WINDOW = timedelta(days=400)


class ExternalEventOut(Resource):
    """An event of a member's calendar (or one instance of a series), as the calendar last said."""

    id: int
    member_id: int | None = Field(description="Whose calendar; null for an organisation's resource feed.")
    calendar_id: int
    provider: str = Field(description="microsoft, google or ics.")
    start: Timestamp = Field(validation_alias="start_at")
    end: Timestamp = Field(validation_alias="end_at")
    timezone: str | None = Field(description="The zone the calendar gave the event in (IANA or Windows name).")
    all_day: bool
    show_as: ShowAs
    working_location: WorkingLocation | None = Field(
        description="Google working-location entries: where the person works that day."
    )
    working_location_label: str | None = Field(description="The office's name; null under the privacy setting.")
    status: str = Field(description="confirmed, tentative or cancelled.")
    title: str = Field(description="Empty under the organisation's privacy setting.")
    location: str = Field(description="Empty under the organisation's privacy setting.")
    attendees: list[str] = Field(description="Addresses; empty under the organisation's privacy setting.")
    categories: list[str] = Field(description="Empty under the organisation's privacy setting.")
    booking_id: int | None = Field(description="The booking this event made (an office day).")
    booking_refused: str | None = Field(description="Why an office day did not become a booking (a clash).")
    updated_at: Timestamp

    @classmethod
    def of(cls, event: ExternalEvent, *, private: bool) -> ExternalEventOut:
        """The event as the API shows it; `private`: the organisation keeps only when people are busy."""
        out = cls.model_validate(event)
        if private:
            out.title = out.location = ""
            out.attendees, out.categories, out.working_location_label = [], [], None
        return out


def _window(
    default: tuple[datetime, datetime], start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """[start, end) as asked; a bound left out follows the other by the organisation's window length."""
    length = default[1] - default[0]
    if start is None and end is None:
        return default
    if start is None:
        assert end is not None
        return end - length, end
    return start, end if end is not None else start + length


@router.get("", summary="List external events", responses=problems(404, 422))
def list_external_events(
    caller: ApiCaller,
    db: DB,
    paging: Paging,
    start: Annotated[
        QueryTime | None,
        Query(description="Only events that end after this time (ISO 8601 with offset); default: the window's start."),
    ] = None,
    end: Annotated[
        QueryTime | None,
        Query(description="Only events that start before this time (ISO 8601 with offset); default: the window's end."),
    ] = None,
    member_id: Annotated[
        int | None, query_id("Only this member's events (admins); a member always reads their own.")
    ] = None,
) -> Page[ExternalEventOut]:
    """Calendar events overlapping [start, end), by start time. Without `start` and `end`: the
    organisation's calendar window (a day back to `calendar_window_days` ahead); with one of them, a
    window as long from it. At most 400 days at once. Admins read every member's events (or one
    member's with `member_id`); a member reads only their own."""
    organisation = organisations.get(db, caller.organisation.id)
    since, until = _window(calendars.window(organisation), start, end)
    if until <= since:
        raise ApiError(422, "`end` must be after `start`.", field="end")
    if until - since > MAX_WINDOW:
        raise ApiError(422, f"The window is at most {MAX_WINDOW.days} days; page through shorter ones.", field="end")
    if not is_admin(caller):
        if member_id is not None and member_id != caller.member.id:
            raise ApiError(403, "Only admins can read other members' calendars.", code="admin_only")
        member_id = caller.member.id
    elif member_id is not None:
        members.get(db, organisation.id, member_id)
    query = external_events.select_external_events(organisation.id, start=since, end=until, member_id=member_id)
    rows, cursor = fetch(db, query, KEYSET, paging)
    private = organisation.calendar_busy_only
    return page_of([ExternalEventOut.of(row, private=private) for row in rows], cursor)

"""Absence releases desks (issue 16, item 6): with the organisation's `release_on_absence` on, a calendar
entry saying its person is out of office for whole days cancels their bookings within those days (reason
`out_of_office`, on the booking and in `booking.cancelled`), read through the real connectors: Outlook
(fake Graph, the batch path), Google (fake Google, the one-calendar path) and ICS feeds. CalDAV is in
test_caldav.py, peer platforms' time off in tests/worker/peers/test_absence.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.records import CalendarEvent
from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, ConnectionKind, Organisation, OutboxEvent
from store.services import bookings, members, organisations
from sync.calendar.rules import ABSENT, absent_days
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import FakeGraph
from tests.fakes.ics import FakeIcsServer
from tests.worker.calendar.conftest import World, google_workspace, microsoft
from worker.calendar import batch, jobs, sync

D = (utcnow() + timedelta(days=3)).date()
ADA, BOB = "ada@contoso.example", "bob@contoso.example"
BERLIN = ZoneInfo("Europe/Berlin")


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def release_on(world: World) -> None:
    with transaction(world.factory) as session:
        organisations.update_settings(
            session, session.get_one(Organisation, world.organisation_id), release_on_absence=True
        )


def book(world: World, email: str, start: datetime, end: datetime) -> int:
    """A booking made by hand through the API's service."""
    with transaction(world.factory) as session:
        member = members.get_by_email(session, world.organisation_id, email)
        return bookings.create(session, member, start=start, end=end).id


def status(world: World, booking_id: int) -> tuple[BookingStatus, str | None]:
    with world.factory() as session:
        booking = session.get_one(Booking, booking_id)
        return booking.status, booking.cancellation_reason


def cancelled_reasons(world: World) -> dict[int, str]:
    """booking id → the reason its booking.cancelled event gave."""
    with world.factory() as session:
        rows = session.query(OutboxEvent.data).filter(OutboxEvent.type == "booking.cancelled")
        return {data["booking_id"]: data["reason"] for (data,) in rows}


def test_an_all_day_out_of_office_in_outlook_releases_that_days_bookings_only(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    release_on(world)
    calendar_id = world.calendar_id(ADA)
    covered = book(world, ADA, at(D, 9), at(D, 17))
    next_day = book(world, ADA, at(D + timedelta(days=1), 9), at(D + timedelta(days=1), 17))
    overnight = book(world, ADA, at(D - timedelta(days=1), 20), at(D, 2))  # begins before the day off
    bobs = book(world, BOB, at(D, 9), at(D, 17))
    graph.calendars.add_event("u1", "Holiday", D, D + timedelta(days=1), show_as="oof")

    [tally] = batch.run(world.runtime, connection_id, [calendar_id]).values()

    assert tally is not None
    assert tally.counts["released"] == 1
    assert status(world, covered) == (BookingStatus.CANCELLED, ABSENT)
    assert cancelled_reasons(world) == {covered: "out_of_office"}
    for kept in (next_day, overnight, bobs):
        assert status(world, kept) == (BookingStatus.BOOKED, None)
    assert any("out of office" in note for note in world.calendar(calendar_id).last_notes)


def test_absences_release_nothing_while_the_setting_is_off(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    covered = book(world, ADA, at(D, 9), at(D, 17))
    graph.calendars.add_event("u1", "Holiday", D, D + timedelta(days=1), show_as="oof")

    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert "released" not in tally.counts
    assert status(world, covered) == (BookingStatus.BOOKED, None)


def test_part_of_a_day_out_of_office_is_no_whole_day(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    release_on(world)
    morning = book(world, ADA, at(D, 8), at(D, 12))
    graph.calendars.add_event("u1", "Dentist", at(D, 12), at(D, 17), show_as="oof")
    graph.calendars.add_event("u1", "Busy all day", D, D + timedelta(days=1), show_as="busy")

    sync.run(world.runtime, world.calendar_id(ADA))

    assert status(world, morning) == (BookingStatus.BOOKED, None)


def test_a_google_out_of_office_entry_releases_the_whole_days_it_spans(world: World, google: FakeGoogle) -> None:
    google.add_user("cy@acme.example", "Cy", notify=False)
    google_workspace(world, google)
    release_on(world)
    first, second, after = D, D + timedelta(days=1), D + timedelta(days=2)
    inside = [book(world, "cy@acme.example", at(day, 9), at(day, 17)) for day in (first, second)]
    later = book(world, "cy@acme.example", at(after, 9), at(after, 17))
    # Google's out-of-office entries are never all-day: midnight to midnight in the calendar's zone.
    google.add_event(
        "cy@acme.example",
        datetime.combine(first, time(0), BERLIN),
        datetime.combine(after, time(0), BERLIN),
        "Away",
        time_zone="Europe/Berlin",
        eventType="outOfOffice",
    )

    assert sync.run(world.runtime, world.calendar_id("cy@acme.example")) is not None

    assert [status(world, booking_id) for booking_id in inside] == [(BookingStatus.CANCELLED, ABSENT)] * 2
    assert status(world, later) == (BookingStatus.BOOKED, None)


FEED = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r
BEGIN:VEVENT\r
UID:away@test\r
DTSTAMP:20250101T000000Z\r
DTSTART;VALUE=DATE:{start}\r
DTEND;VALUE=DATE:{end}\r
SUMMARY:Away\r
X-MICROSOFT-CDO-BUSYSTATUS:{busy}\r
END:VEVENT\r
END:VCALENDAR\r
"""


@pytest.mark.parametrize(("busy", "released"), [("OOF", True), ("BUSY", False)])
def test_an_ics_all_day_entry_marked_out_of_office_releases_the_day(
    world: World, graph: FakeGraph, ics: FakeIcsServer, busy: str, released: bool
) -> None:
    microsoft(world, graph)  # Ada is a member
    release_on(world)
    covered = book(world, ADA, at(D, 9), at(D, 17))
    feed = world.connect(ConnectionKind.ICS, {"member_email": ADA}, {"url": ics.url("/ada.ics")})
    end = D + timedelta(days=1)
    ics.serve("/ada.ics", FEED.format(start=f"{D:%Y%m%d}", end=f"{end:%Y%m%d}", busy=busy).encode())
    [calendar_id] = jobs.follow(world.runtime, feed)

    assert sync.run(world.runtime, calendar_id) is not None

    expected = (BookingStatus.CANCELLED, ABSENT) if released else (BookingStatus.BOOKED, None)
    assert status(world, covered) == expected


def event(start: datetime, end: datetime, **fields: object) -> CalendarEvent:
    return CalendarEvent("e", start, end, **{"show_as": "oof", **fields})  # type: ignore[arg-type]


def test_the_whole_days_an_absence_covers() -> None:
    monday = date(2030, 3, 25)  # the week Europe/Berlin moves to summer time (Sunday the 31st)
    midnight = datetime.combine(monday, time(0), BERLIN)
    # A timed entry: only days from midnight to midnight in its zone.
    assert absent_days(event(midnight, midnight + timedelta(days=2), timezone="Europe/Berlin"), "UTC") == (
        midnight.astimezone(UTC),
        (midnight + timedelta(days=2)).astimezone(UTC),
    )
    noon = midnight + timedelta(hours=12)
    assert absent_days(event(noon, noon + timedelta(days=2), timezone="Europe/Berlin"), "UTC") == (
        (midnight + timedelta(days=1)).astimezone(UTC),
        (midnight + timedelta(days=2)).astimezone(UTC),
    )
    assert absent_days(event(noon, noon + timedelta(hours=20), timezone="Europe/Berlin"), "UTC") is None
    # No zone (or one unknown here): the organisation's.
    assert absent_days(event(midnight, midnight + timedelta(days=1)), "Europe/Berlin") is not None
    assert absent_days(event(midnight, midnight + timedelta(days=1), timezone="Mars/Olympus"), "UTC") is None
    # Across the change to summer time the day is 23 hours, and still a whole day.
    sunday = datetime.combine(date(2030, 3, 31), time(0), BERLIN)
    assert absent_days(event(sunday, sunday + timedelta(days=1), timezone="Europe/Berlin"), "UTC") is not None
    # All-day entries are their days; cancelled or not out of office: none.
    assert absent_days(event(midnight, midnight + timedelta(days=1), all_day=True), "UTC") is not None
    assert absent_days(event(midnight, midnight + timedelta(days=1), all_day=True, status="cancelled"), "UTC") is None
    assert absent_days(event(midnight, midnight + timedelta(days=1), all_day=True, show_as="busy"), "UTC") is None

"""Whole calendar syncs through the real connectors: Outlook (fake Graph), Google (fake Google), ICS feeds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store.columns import utcnow
from store.db import transaction
from store.models import (
    Booking,
    BookingStatus,
    Calendar,
    Connection,
    ConnectionKind,
    ConnectionStatus,
    ExternalEvent,
    Organisation,
)
from store.services import bookings, members
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import FakeGraph
from tests.fakes.ics import FakeIcsServer
from tests.worker.calendar.conftest import World, google_workspace, microsoft, with_runtime
from worker.calendar import jobs, sync
from worker.webhooks.sender import make_client

DAY = (utcnow() + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
ADA = "ada@contoso.example"


def stored(world: World, calendar_id: int) -> dict[str, ExternalEvent]:
    with world.factory() as session:
        rows = session.scalars(select(ExternalEvent).where(ExternalEvent.calendar_id == calendar_id))
        return {row.title or row.event_id: row for row in rows}


def calendar_bookings(world: World, status: BookingStatus = BookingStatus.BOOKED) -> list[Booking]:
    with world.factory() as session:
        return list(session.scalars(select(Booking).where(Booking.source == "calendar", Booking.status == status)))


def test_directory_sync_makes_a_calendar_per_person(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    with world.factory() as session:
        addresses = sorted(session.scalars(select(Calendar.address)))
    assert addresses == ["ada@contoso.example", "bob@contoso.example"]


def test_outlook_first_sync_changes_and_an_office_day_that_moves(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    standup = graph.calendars.add_event("u1", "Standup", DAY, DAY + timedelta(minutes=15))
    office = graph.calendars.add_event(
        "u1", "In the office", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=8), categories=["Office"]
    )

    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert tally.counts["booked"] == 1
    assert set(stored(world, calendar_id)) == {"Standup", "In the office"}
    [booking] = calendar_bookings(world)
    assert booking.start_at == DAY + timedelta(days=1)
    calendar = world.calendar(calendar_id)
    assert calendar.status is ConnectionStatus.ACTIVE
    assert calendar.cursor
    assert calendar.last_synced_at
    assert calendar.last_counts["seen"] == 2

    # Changes: the office day moves, the standup is deleted; an incremental round reads only those.
    moved = DAY + timedelta(days=2)
    graph.calendars.update_event("u1", office.id, start=moved, end=moved + timedelta(hours=8))
    graph.calendars.delete_event("u1", standup.id)
    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert (tally.counts["moved"], tally.counts["removed"]) == (1, 1)
    assert set(stored(world, calendar_id)) == {"In the office"}
    [booking] = calendar_bookings(world)
    assert booking.start_at == moved

    # Cancelled in Outlook: the booking goes with it.
    graph.calendars.delete_event("u1", office.id)
    sync.run(world.runtime, calendar_id)
    assert calendar_bookings(world) == []
    assert len(calendar_bookings(world, BookingStatus.CANCELLED)) == 1


def test_a_410_lists_the_window_again_and_emits_only_real_changes(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Kept", DAY, DAY + timedelta(hours=1))
    gone = graph.calendars.add_event("u1", "Gone meanwhile", DAY + timedelta(hours=2), DAY + timedelta(hours=3))
    sync.run(world.runtime, calendar_id)
    before = world.types()

    graph.calendars.expire_tokens()
    with graph.calendars.lock:  # deleted while the sync state was lost: only a full listing can tell
        graph.calendars.calendars["u1"].events.pop(gone.id)
    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert any("listing the window again" in note for note in world.calendar(calendar_id).last_notes)
    assert set(stored(world, calendar_id)) == {"Kept"}
    assert world.types()[len(before) :] == ["external_event.deleted"]


def test_a_shorter_window_is_listed_again_and_what_falls_out_forgotten(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Soon", DAY, DAY + timedelta(hours=1))
    graph.calendars.add_event("u1", "Later", DAY + timedelta(days=20), DAY + timedelta(days=20, hours=1))
    sync.run(world.runtime, calendar_id)
    assert set(stored(world, calendar_id)) == {"Soon", "Later"}

    with transaction(world.factory) as session:
        session.get_one(Organisation, world.organisation_id).calendar_window_days = 10
    sync.run(world.runtime, calendar_id)

    assert set(stored(world, calendar_id)) == {"Soon"}
    assert any("window moved" in note for note in world.calendar(calendar_id).last_notes)
    assert "external_event.deleted" not in world.types()  # nothing changed in the calendar

    with transaction(world.factory) as session:
        session.get_one(Organisation, world.organisation_id).calendar_window_days = 60
    sync.run(world.runtime, calendar_id)
    assert set(stored(world, calendar_id)) == {"Soon", "Later"}


def test_privacy_keeps_only_busy_times_but_office_days_still_count(world: World, graph: FakeGraph) -> None:
    with transaction(world.factory) as session:
        session.get_one(Organisation, world.organisation_id).calendar_busy_only = True
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event(
        "u1", "Salary review", DAY, DAY + timedelta(hours=1), location="Room 1", attendees=["boss@contoso.example"]
    )
    graph.calendars.add_event(
        "u1", "Office", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=8), categories=["Office"]
    )

    sync.run(world.runtime, calendar_id)

    rows = list(stored(world, calendar_id).values())
    assert len(rows) == 2
    assert all((row.title, row.location, row.attendees, row.categories) == ("", "", [], []) for row in rows)
    assert len(calendar_bookings(world)) == 1


def test_a_clash_is_refused_visibly(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    with transaction(world.factory) as session:
        ada = members.get_by_email(session, world.organisation_id, ADA)
        own = bookings.create(session, ada, start=DAY, end=DAY + timedelta(hours=4)).id
    graph.calendars.add_event("u1", "Office", DAY, DAY + timedelta(hours=8), categories=["Office"])

    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert tally.counts["refused"] == 1
    assert calendar_bookings(world) == []
    with world.factory() as session:
        assert session.get_one(Booking, own).status is BookingStatus.BOOKED
    assert any("was not booked" in note for note in world.calendar(calendar_id).last_notes)
    assert "external_event.booking_refused" in world.types()


def test_a_refused_calendar_keeps_its_cursor_and_needs_an_admin(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    sync.run(world.runtime, calendar_id)
    cursor = world.calendar(calendar_id).cursor
    graph.identity.apps.clear()  # the app registration was deleted

    assert sync.run(world.runtime, calendar_id) is None

    calendar = world.calendar(calendar_id)
    assert calendar.status is ConnectionStatus.ACTION_REQUIRED
    assert calendar.last_error
    assert "graph~secret" not in calendar.last_error
    assert calendar.cursor == cursor


def test_google_working_locations_become_bookings_and_a_410_resyncs(world: World, google: FakeGoogle) -> None:
    google.add_user("cy@acme.example", "Cy", notify=False)
    google_workspace(world, google)
    calendar_id = world.calendar_id("cy@acme.example")
    google.add_event("cy@acme.example", DAY, DAY + timedelta(minutes=30), "1:1")
    google.add_event(
        "cy@acme.example",
        DAY + timedelta(days=1),
        DAY + timedelta(days=1, hours=8),
        "Office",
        eventType="workingLocation",
        visibility="public",
        transparency="transparent",
        workingLocationProperties={"type": "officeLocation", "officeLocation": {"label": "Berlin HQ"}},
    )

    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert tally.counts["booked"] == 1
    [booking] = calendar_bookings(world)
    assert booking.details == "Berlin HQ"
    google.expire_sync_tokens("cy@acme.example")
    tally = sync.run(world.runtime, calendar_id)
    assert tally is not None
    assert tally.counts["changed"] == 0
    assert any("sync token" in note for note in world.calendar(calendar_id).last_notes)


FEED = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//feed//EN\r
BEGIN:VEVENT\r
UID:one@test\r
DTSTAMP:20250101T000000Z\r
DTSTART:{start}\r
DTEND:{end}\r
SUMMARY:Dentist\r
END:VEVENT\r
END:VCALENDAR\r
"""


def _feed() -> bytes:
    stamp = "%Y%m%dT%H%M%SZ"
    text = FEED.decode().format(start=DAY.strftime(stamp), end=(DAY + timedelta(hours=1)).strftime(stamp))
    return text.encode()


def test_a_broken_feed_is_an_error_on_its_own_calendar_only(world: World, ics: FakeIcsServer) -> None:
    good = world.connect(ConnectionKind.ICS, {"member_email": ADA}, {"url": ics.url("/good.ics?token=s3cret")})
    broken = world.connect(ConnectionKind.ICS, {}, {"url": ics.url("/broken.ics?token=s3cret")})
    ics.serve("/good.ics?token=s3cret", _feed())
    ics.fail("/broken.ics?token=s3cret", 500, b"oops")
    [good_calendar] = jobs.follow(world.runtime, good)
    [broken_calendar] = jobs.follow(world.runtime, broken)

    assert sync.run(world.runtime, good_calendar) is not None
    assert sync.run(world.runtime, broken_calendar) is None

    assert set(stored(world, good_calendar)) == {"Dentist"}
    failed = world.calendar(broken_calendar)
    assert failed.status is ConnectionStatus.ERROR
    assert failed.last_error
    assert "500" in failed.last_error
    assert "s3cret" not in failed.last_error
    assert world.calendar(good_calendar).status is ConnectionStatus.ACTIVE
    with world.factory() as session:
        assert session.get_one(Connection, broken).status is ConnectionStatus.ERROR
        assert session.get_one(Connection, good).status is ConnectionStatus.ACTIVE

    # Unchanged feed: a conditional request, nothing applied again.
    before = world.types()
    assert sync.run(world.runtime, good_calendar) is not None
    assert world.types()[len(before) :] == ["connection.synced"]
    assert ics.requests[-1].headers.get("if-none-match")


def test_a_feed_on_a_private_address_is_refused(world: World, ics: FakeIcsServer) -> None:
    strict = with_runtime(world, webhook_client=make_client(allow_private=False))
    ics.serve("/feed.ics", _feed())
    connection_id = world.connect(ConnectionKind.ICS, {}, {"url": ics.url("/feed.ics")})
    [calendar_id] = jobs.follow(strict, connection_id)

    assert sync.run(strict, calendar_id) is None

    calendar = world.calendar(calendar_id)
    assert calendar.status is ConnectionStatus.ACTION_REQUIRED
    assert calendar.last_error
    assert "refused" in calendar.last_error
    assert ics.requests == []

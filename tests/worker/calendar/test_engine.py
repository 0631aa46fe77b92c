"""The calendar engine on both stores: events staged once, office days booked, clashes refused."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.records import CalendarEvent, CalendarPage, RemovedEvent
from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, Calendar, ConnectionKind, ExternalEvent, Organisation
from store.secret_box import SecretBox
from store.services import bookings, calendars, connections, desks, external_events, members
from sync.calendar.engine import Context, Tally, apply_page, apply_pages, remove_unlisted
from tests.conftest import Org, events, make_org

BOX = SecretBox([SecretBox.generate_key()])
DAY = (utcnow() + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)


@dataclass
class Setup:
    factory: sessionmaker[Session]
    org: Org
    calendar_id: int
    desk_id: int


@pytest.fixture
def setup(session_factory: sessionmaker[Session]) -> Setup:
    org = make_org(session_factory)
    with transaction(session_factory) as session:
        organisation = session.get_one(Organisation, org.organisation.id)
        organisation.office_rules = {"categories": ["Office"], "keywords": ["wfo"]}
        desk = desks.create(session, organisation.id, "4.12")
        connection, _ = connections.create(
            session,
            BOX,
            organisation.id,
            ConnectionKind.ICS,
            "Will's feed",
            settings={"member_email": org.member.email},
            credentials={"url": "https://calendar.example/feed.ics?token=secret"},
        )
        [calendar] = calendars.ensure(session, connection)
        return Setup(session_factory, org, calendar.id, desk.id)


def event(event_id: str = "e1", /, **fields: object) -> CalendarEvent:
    values: dict[str, object] = {"start": DAY, "end": DAY + timedelta(hours=9), "title": "Standup", "etag": "1"}
    values.update(fields)
    return CalendarEvent(event_id=event_id, **values)  # type: ignore[arg-type]


def apply(setup: Setup, *events_: CalendarEvent, removed: tuple[str, ...] = ()) -> Tally:
    tally = Tally()
    page = CalendarPage(events=events_, removed=tuple(RemovedEvent(item) for item in removed), last=True)
    with transaction(setup.factory) as session:
        apply_page(session, setup.calendar_id, page, tally)
    return tally


def stored(setup: Setup) -> list[ExternalEvent]:
    with setup.factory() as session:
        return list(session.scalars(select(ExternalEvent).order_by(ExternalEvent.event_id)))


def types(setup: Setup) -> list[str]:
    return [item.type for item in events(setup.factory, setup.org.organisation.id)]


def live_bookings(setup: Setup) -> list[Booking]:
    with setup.factory() as session:
        return list(
            session.scalars(select(Booking).where(Booking.status == BookingStatus.BOOKED, Booking.source == "calendar"))
        )


def test_events_are_stored_once_and_changes_emitted(setup: Setup) -> None:
    tally = apply(setup, event("e1"), event("e2", title="Lunch", show_as="free"))
    assert tally.counts["changed"] == 2
    assert [row.title for row in stored(setup)] == ["Standup", "Lunch"]
    before = types(setup)
    assert before.count("external_event.upserted") == 2

    tally = apply(setup, event("e1"), event("e2", title="Lunch", show_as="free"))
    assert tally.counts["changed"] == 0
    assert types(setup) == before

    apply(setup, event("e1", title="Standup (moved)", start=DAY + timedelta(hours=1), etag="2"), removed=("e2",))
    assert [row.title for row in stored(setup)] == ["Standup (moved)"]
    assert types(setup)[len(before) :] == ["external_event.upserted", "external_event.deleted"]


def test_a_new_title_alone_is_stored_and_judged_but_not_emitted(setup: Setup) -> None:
    apply(setup, event("e1"))
    before = types(setup)
    # The payload carries no title: receivers would get the same event again. The rules still read it.
    tally = apply(setup, event("e1", title="WFO planning", etag="2"))
    assert tally.counts["changed"] == 1
    assert [row.title for row in stored(setup)] == ["WFO planning"]
    assert len(live_bookings(setup)) == 1  # the keyword rule saw the new title
    assert types(setup)[len(before) :] == ["booking.created"]


def test_events_deskbridge_wrote_never_come_back(setup: Setup) -> None:
    tally = apply(setup, event("ours", booking_id=42, categories=("Office",)))
    assert tally.counts["echoes"] == 1
    assert stored(setup) == []
    assert live_bookings(setup) == []


def test_privacy_keeps_only_when_people_are_busy(setup: Setup) -> None:
    with transaction(setup.factory) as session:
        session.get_one(Organisation, setup.org.organisation.id).calendar_busy_only = True
    apply(setup, event(title="Salary review", location="Room 1", attendees=("boss@acme.example",), categories=("HR",)))
    [row] = stored(setup)
    assert (row.title, row.location, row.attendees, row.categories) == ("", "", [], [])
    assert row.show_as == "busy"


@pytest.mark.parametrize(
    "office",
    [
        {"categories": ("office",)},
        {"title": "WFO today"},
        {"working_location": "office", "working_location_label": "4.12"},
    ],
    ids=["category", "keyword", "working-location"],
)
def test_office_days_become_bookings_that_follow_the_event(setup: Setup, office: dict[str, object]) -> None:
    apply(setup, event(location="4.12", **office))
    [booking] = live_bookings(setup)
    assert (booking.start_at, booking.reason, booking.member_id) == (DAY, "WFO", setup.org.member.id)
    assert booking.desk_id == setup.desk_id

    moved = DAY + timedelta(days=1)
    tally = apply(setup, event(location="4.12", start=moved, end=moved + timedelta(hours=8), etag="2", **office))
    assert tally.counts["moved"] == 1
    [booking] = live_bookings(setup)
    assert booking.start_at == moved

    tally = apply(setup, removed=("e1",))
    assert tally.counts["cancelled"] == 1
    assert live_bookings(setup) == []


def test_an_office_day_that_is_no_longer_one_cancels_its_booking(setup: Setup) -> None:
    apply(setup, event(working_location="office"))
    assert len(live_bookings(setup)) == 1
    apply(setup, event(working_location="home", etag="2"))
    assert live_bookings(setup) == []


def test_working_from_home_is_no_office_day_whatever_the_subject(setup: Setup) -> None:
    apply(setup, event(title="WFO", working_location="home"))
    assert live_bookings(setup) == []


def test_an_unknown_desk_books_without_one(setup: Setup) -> None:
    apply(setup, event(working_location="office", working_location_label="Main building"))
    [booking] = live_bookings(setup)
    assert booking.desk_id is None
    assert booking.details == "Main building"


def test_a_clash_is_refused_visibly_and_overwrites_nothing(setup: Setup) -> None:
    with transaction(setup.factory) as session:
        will = members.get(session, setup.org.organisation.id, setup.org.member.id)
        own = bookings.create(session, will, start=DAY, end=DAY + timedelta(hours=4))
        own_id = own.id

    tally = apply(setup, event(categories=("Office",)))

    assert tally.counts["refused"] == 1
    assert live_bookings(setup) == []
    with setup.factory() as session:
        assert session.get_one(Booking, own_id).status is BookingStatus.BOOKED
    [row] = stored(setup)
    assert row.booking_refused
    assert "already has a booking" in row.booking_refused
    assert "external_event.booking_refused" in types(setup)
    assert any("was not booked" in note for note in tally.notes)


def test_a_complete_listing_removes_what_it_left_out(setup: Setup) -> None:
    later = DAY + timedelta(days=2)
    apply(setup, event("keep"), event("gone", categories=("Office",), start=later, end=later + timedelta(hours=8)))
    assert len(live_bookings(setup)) == 1
    tally = Tally()
    start = DAY - timedelta(days=1)
    with transaction(setup.factory) as session:
        remove_unlisted(session, setup.calendar_id, {"keep"}, start, start + timedelta(days=30), tally)
    assert [row.event_id for row in stored(setup)] == ["keep"]
    assert live_bookings(setup) == []


def test_an_invited_member_cannot_have_office_days_booked(setup: Setup) -> None:
    with transaction(setup.factory) as session:
        invited = members.invite(session, setup.org.organisation.id, "new@acme.example").member_id
        calendar = session.get_one(Calendar, setup.calendar_id)
        calendar.member_id = invited
    tally = apply(setup, replace(event(), working_location="office"))
    assert tally.counts["refused"] == 1
    assert live_bookings(setup) == []


def test_all_day_events_keep_their_day(setup: Setup) -> None:
    day = datetime(2031, 3, 30, tzinfo=UTC)
    apply(setup, event("holiday", start=day, end=day + timedelta(days=1), all_day=True, show_as="oof"))
    [row] = stored(setup)
    assert (row.all_day, row.show_as, row.start_at, row.end_at) == (True, "oof", day, day + timedelta(days=1))


def test_two_writers_of_one_calendar_take_turns(setup: Setup) -> None:
    # A poll and a webhook may stage the same new event at once: the second must see the first's row
    # (PostgreSQL row lock) instead of inserting it again. SQLite has a single writer anyway.
    with setup.factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("concurrent writers are PostgreSQL's case")
    errors: list[BaseException] = []

    def write(barrier: threading.Barrier, event_id: str, title: str) -> None:
        try:
            barrier.wait()
            apply(setup, event(event_id, title=title, etag=title))
        except BaseException as error:  # the test reports it
            errors.append(error)

    for round_ in range(8):  # a race: several rounds, so that it shows when the turns are not taken
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=write, args=(barrier, f"same-{round_}", title)) for title in ("one", "two")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert [row.event_id for row in stored(setup)] == [f"same-{round_}" for round_ in range(8)]


def test_pages_of_several_calendars_are_staged_together_in_order(setup: Setup) -> None:
    with transaction(setup.factory) as session:
        connection, _ = connections.create(
            session,
            BOX,
            setup.org.organisation.id,
            ConnectionKind.ICS,
            "Room feed",
            settings={},
            credentials={"url": "https://calendar.example/room.ics"},
        )
        [other] = calendars.ensure(session, connection)
        other_id = other.id
    apply(setup, event("kept"), event("back"), event("shared"))
    with transaction(setup.factory) as session:
        context, context_other = Context.load(session, setup.calendar_id), Context.load(session, other_id)
    with transaction(setup.factory) as session:
        external_events.lock(session, [other_id])
        apply_pages(session, [(page(event("shared", title="Room")), Tally(), context_other)])
    first, second = Tally(), Tally()

    with transaction(setup.factory) as session:
        external_events.lock(session, [setup.calendar_id, other_id])
        apply_pages(
            session,
            [
                # One calendar's listing over two pages, read in order: "late" (never stored) listed
                # then removed is not stored, "kept" renamed then removed is gone, "back" removed then
                # listed again (moved) is kept.
                (page(event("late"), event("kept", title="Renamed"), removed=("back",)), first, context),
                (page(event("back", start=DAY + timedelta(hours=1)), removed=("late", "kept")), first, context),
                # Another calendar with an event of the same id: removing it there leaves this one's alone.
                (page(removed=("shared",)), second, context_other),
            ],
        )

    assert [(row.calendar_id, row.event_id, row.start_at) for row in stored(setup)] == [
        (setup.calendar_id, "back", DAY + timedelta(hours=1)),
        (setup.calendar_id, "shared", DAY),
    ]
    assert (first.counts["changed"], first.counts["removed"], second.counts["removed"]) == (1, 1, 1)
    organisation_events = events(setup.factory, setup.org.organisation.id)
    deleted = [item.data["calendar_id"] for item in organisation_events if item.type == "external_event.deleted"]
    assert sorted(deleted) == sorted([setup.calendar_id, other_id])


def page(*events_: CalendarEvent, removed: tuple[str, ...] = ()) -> CalendarPage:
    return CalendarPage(events=events_, removed=tuple(RemovedEvent(item) for item in removed))


def test_an_edited_office_day_whose_booking_is_over_books_nothing_again(setup: Setup) -> None:
    apply(setup, event(categories=("Office",)))
    [booking] = live_bookings(setup)
    with transaction(setup.factory) as session:
        held = session.get_one(Booking, booking.id)
        bookings.check_in(session, held, now=DAY + timedelta(minutes=5))
        bookings.check_out(session, held, now=DAY + timedelta(hours=8))

    tally = apply(setup, event(categories=("Office",), title="Standup, moved room", etag="2"))

    assert tally.counts["booked"] == 0
    assert tally.counts["refused"] == 0
    assert live_bookings(setup) == []
    [row] = stored(setup)
    assert row.booking_id == booking.id  # still the event's: its history

    later = DAY + timedelta(days=1)  # moved to another day: that day is booked anew
    apply(setup, event(categories=("Office",), start=later, end=later + timedelta(hours=9), etag="3"))
    [again] = live_bookings(setup)
    assert again.start_at == later


def test_an_office_day_seen_again_takes_back_the_booking_left_behind(setup: Setup) -> None:
    apply(setup, event(categories=("Office",)))
    [booking] = live_bookings(setup)
    with transaction(setup.factory) as session:
        # The window narrowed: the event is forgotten, its future booking stays.
        calendar = session.get_one(Calendar, setup.calendar_id)
        external_events.forget_outside(session, calendar, DAY - timedelta(days=10), DAY - timedelta(days=1))
    assert stored(setup) == []

    tally = apply(setup, event(categories=("Office",)))  # widened again: read from scratch

    assert tally.counts["refused"] == 0
    [kept] = live_bookings(setup)
    assert kept.id == booking.id
    [row] = stored(setup)
    assert (row.booking_id, row.booking_refused) == (booking.id, None)

"""Bookings written into Outlook and Google calendars: create, update, cancel, each once; and the echo
loop both ways (our events never come back in; office days never go back out)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select

from store.columns import utcnow
from store.db import transaction
from store.models import Booking, CalendarEntry, ExternalEvent
from store.services import bookings, desks, members
from tests.conftest import BROKER, QUEUE
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import FakeGraph
from tests.fakes.graph.calendars import Event
from tests.worker.calendar.conftest import World, google_workspace, microsoft
from tests.worker.conftest import drain
from worker.calendar import outbound, sync
from worker.queue import ActorName

DAY = (utcnow() + timedelta(days=5)).replace(hour=8, minute=0, second=0, microsecond=0)
ADA = "ada@contoso.example"
ADA_EVENTS = "/v1.0/users/ada@contoso.example/events"


def book(world: World, email: str, *, start: datetime = DAY, desk: str | None = "4.12") -> int:
    with transaction(world.factory) as session:
        person = members.get_by_email(session, world.organisation_id, email)
        desk_id = (
            desks.create(session, world.organisation_id, desk, building="Berlin HQ", floor="4").id if desk else None
        )
        return bookings.create(session, person, start=start, end=start + timedelta(hours=8), desk_id=desk_id).id


def outlook(graph: FakeGraph, user: str = "u1") -> list[Event]:
    with graph.calendars.lock:
        return list(graph.calendars.calendars[user].events.values())


def writes(graph: FakeGraph) -> int:
    return sum(graph.count(ADA_EVENTS, method) for method in ("POST", "PATCH", "DELETE"))


def entry(world: World, booking_id: int) -> CalendarEntry:
    with world.factory() as session:
        return session.scalars(select(CalendarEntry).where(CalendarEntry.booking_id == booking_id)).one()


def test_a_booking_is_written_updated_and_removed_once_each(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    booking_id = book(world, ADA)

    assert outbound.write(world.runtime, booking_id) == 1
    [event] = outlook(graph)
    assert (event.subject, event.location, event.show_as) == (
        "Desk 4.12 (deskbridge)",
        "Desk 4.12, Floor 4, Berlin HQ",
        "workingElsewhere",
    )
    assert event.start == DAY
    assert str(booking_id) in event.properties.values()
    assert entry(world, booking_id).provider_event_id == event.id

    sent = writes(graph)
    assert outbound.write(world.runtime, booking_id) == 0  # a redelivered job
    assert writes(graph) == sent

    with transaction(world.factory) as session:
        bookings.update(session, session.get_one(Booking, booking_id), start=DAY + timedelta(hours=1))
    assert outbound.write(world.runtime, booking_id) == 1
    [moved] = outlook(graph)
    assert (moved.id, moved.start) == (event.id, DAY + timedelta(hours=1))
    assert entry(world, booking_id).sequence > 0

    with transaction(world.factory) as session:
        bookings.cancel(session, session.get_one(Booking, booking_id))
    assert outbound.write(world.runtime, booking_id) == 1
    assert outlook(graph) == []
    sent = writes(graph)
    assert outbound.write(world.runtime, booking_id) == 0
    assert writes(graph) == sent
    assert entry(world, booking_id).deleted


def test_an_answer_lost_after_the_create_makes_no_second_event(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    booking_id = book(world, ADA)
    outbound.write(world.runtime, booking_id)
    with transaction(world.factory) as session:  # as if the worker died before recording the write
        session.execute(delete(CalendarEntry))

    assert outbound.write(world.runtime, booking_id) == 1

    [event] = outlook(graph)
    assert entry(world, booking_id).provider_event_id == event.id


def test_jobs_queued_by_commits_and_redelivered_make_one_event(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    booking_id = book(world, ADA)  # the commit queues write_booking
    QUEUE.send(ActorName.WRITE_BOOKING, booking_id)  # and the queue delivers it twice more
    QUEUE.send(ActorName.WRITE_BOOKING, booking_id)

    drain(BROKER, "calendar")

    assert len(outlook(graph)) == 1


def test_a_refused_write_is_kept_on_the_entry_and_retried(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    booking_id = book(world, ADA)
    graph.identity.apps["app-cal"].permissions.discard("Calendars.ReadWrite")
    graph.identity.apps["app-cal"].permissions.add("Calendars.Read")

    with pytest.raises(outbound.WriteFailed):
        outbound.write(world.runtime, booking_id)

    assert entry(world, booking_id).last_error
    assert outlook(graph) == []
    graph.identity.apps["app-cal"].permissions.add("Calendars.ReadWrite")
    assert outbound.write(world.runtime, booking_id) == 1
    assert entry(world, booking_id).last_error is None


def test_our_outlook_event_never_comes_back_in(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    booking_id = book(world, ADA)
    outbound.write(world.runtime, booking_id)

    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert tally.counts["echoes"] == 1
    with world.factory() as session:
        assert session.scalars(select(ExternalEvent)).all() == []
        assert session.scalars(select(Booking.id)).all() == [booking_id]


def test_an_office_day_booking_is_never_written_back(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Office", DAY, DAY + timedelta(hours=8), categories=["Office"])
    sync.run(world.runtime, calendar_id)
    with world.factory() as session:
        [booking_id] = session.scalars(select(Booking.id).where(Booking.source == "calendar")).all()

    assert outbound.write(world.runtime, booking_id) == 0

    assert writes(graph) == 0
    assert [event.subject for event in outlook(graph)] == ["Office"]


def test_google_gets_a_working_location_that_does_not_come_back(world: World, google: FakeGoogle) -> None:
    google.add_user("cy@acme.example", "Cy", notify=False)
    google_workspace(world, google)
    calendar_id = world.calendar_id("cy@acme.example")
    booking_id = book(world, "cy@acme.example")

    assert outbound.write(world.runtime, booking_id) == 1
    assert outbound.write(world.runtime, booking_id) == 0

    [item] = google.calendar("cy@acme.example").live()
    assert item["eventType"] == "workingLocation"
    assert item["workingLocationProperties"]["officeLocation"]["label"] == "Berlin HQ"
    tally = sync.run(world.runtime, calendar_id)
    assert tally is not None
    assert tally.counts["echoes"] == 1
    assert tally.counts["booked"] == 0
    with world.factory() as session:
        assert session.scalars(select(ExternalEvent)).all() == []

    with transaction(world.factory) as session:
        bookings.cancel(session, session.get_one(Booking, booking_id))
    assert outbound.write(world.runtime, booking_id) == 1
    assert google.calendar("cy@acme.example").live() == []

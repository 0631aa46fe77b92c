"""Stored calendar events brought in line when the organisation's calendar settings change
(worker/calendar/reevaluate.py), through the real Outlook connector against the fake Graph, on SQLite
and PostgreSQL; and once end to end through Redis with Dramatiq workers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import timedelta

import dramatiq
import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
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
    FollowUp,
    Organisation,
)
from store.services import bookings, calendar_settings, calendars, follow_ups, members, organisations
from tests.conftest import BROKER, QUEUE, REDIS_URL
from tests.fakes.graph import FakeGraph
from tests.worker.calendar.conftest import World, microsoft
from worker import actors, runtime
from worker import follow_ups as worker_follow_ups
from worker.calendar import reevaluate, sync

DAY = (utcnow() + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
ADA = "ada@contoso.example"
JOIN_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def empty_queue() -> Iterator[None]:
    """The in-process broker's calendar queue, empty for each test (commits queue calendar writes there)."""
    BROKER.flush_all()
    yield
    BROKER.flush_all()


def queued() -> list[tuple[str, tuple[object, ...]]]:
    """This job's and sync jobs waiting in the in-process broker: actor and arguments."""
    messages = [Message.decode(raw) for raw in BROKER.queues["calendar"].queue]
    return [(message.actor_name, tuple(message.args)) for message in messages if message.actor_name in OURS]


OURS = {"reevaluate_organisation", "reevaluate_calendar", "sync_calendar"}


def set_rules(world: World, **rules: object) -> None:
    """Change the office rules as the API does (validated, `organisation.updated` recorded)."""
    clean = {"categories": [], "keywords": [], "working_elsewhere_with_location": False, **rules}
    with transaction(world.factory) as session:
        organisation = session.get_one(Organisation, world.organisation_id)
        organisations.update_settings(session, organisation, office_rules=clean)


def set_busy_only(world: World, on: bool) -> None:
    with transaction(world.factory) as session:
        organisation = session.get_one(Organisation, world.organisation_id)
        organisations.update_settings(session, organisation, calendar_busy_only=on)


def calendar_bookings(world: World) -> dict[str, BookingStatus]:
    """Calendar-sourced bookings by the title of the event that made them (or its start when blank)."""
    with world.factory() as session:
        rows = session.execute(
            select(ExternalEvent.event_id, ExternalEvent.title, Booking.status).join(
                Booking, Booking.id == ExternalEvent.booking_id
            )
        )
        return {title or event_id: status for event_id, title, status in rows}


def booking_statuses(world: World) -> list[tuple[str, BookingStatus]]:
    with world.factory() as session:
        return [(row.source, row.status) for row in session.scalars(select(Booking).order_by(Booking.id))]


def event_row(world: World, event_id: str) -> ExternalEvent:
    with world.factory() as session:
        return session.scalars(select(ExternalEvent).where(ExternalEvent.event_id == event_id)).one()


def hand_made(world: World, start_hours: int, hours: int) -> int:
    with transaction(world.factory) as session:
        ada = members.get_by_email(session, world.organisation_id, ADA)
        start = DAY + timedelta(hours=start_hours)
        return bookings.create(session, ada, start=start, end=start + timedelta(hours=hours)).id


def test_new_office_rules_book_what_now_qualifies_and_cancel_what_no_longer_does(
    world: World, graph: FakeGraph
) -> None:
    microsoft(world, graph)  # the world's rules: category "Office"
    calendar_id = world.calendar_id(ADA)
    now = utcnow()
    graph.calendars.add_event("u1", "Desk day", DAY, DAY + timedelta(hours=8), categories=["Office"])
    wfo = graph.calendars.add_event("u1", "WFO", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=8))
    graph.calendars.add_event(
        "u1", "Started", now - timedelta(hours=1), now + timedelta(hours=1), categories=["Office"]
    )
    clash = graph.calendars.add_event("u1", "WFO too", DAY + timedelta(days=2), DAY + timedelta(days=2, hours=8))
    own = hand_made(world, 48, 4)  # Ada's own booking, the day of "WFO too"
    assert sync.run(world.runtime, calendar_id) is not None
    assert calendar_bookings(world) == {"Desk day": BookingStatus.BOOKED, "Started": BookingStatus.BOOKED}

    set_rules(world, keywords=["wfo"])
    before = world.types()
    done = reevaluate.plan(world.runtime, world.organisation_id, ["office_rules"])

    assert done == {"judged": 2, "reread": 0, "synced": 0, "blanked": 0}  # Ada's and Bob's calendars
    bob = world.calendar_id("bob@contoso.example")
    assert sorted(queued()) == [("reevaluate_calendar", (calendar_id, False)), ("reevaluate_calendar", (bob, False))]
    tally = reevaluate.judge(world.runtime, calendar_id)

    assert (tally.counts["booked"], tally.counts["cancelled"], tally.counts["refused"]) == (1, 1, 1)
    assert calendar_bookings(world) == {
        "Desk day": BookingStatus.CANCELLED,  # no longer an office day
        "WFO": BookingStatus.BOOKED,  # now one
        "Started": BookingStatus.BOOKED,  # already started: history, left alone
    }
    refused = event_row(world, clash.id)
    assert refused.booking_id is None
    assert refused.booking_refused
    assert "member" in refused.booking_refused
    assert event_row(world, wfo.id).booking_refused is None
    with world.factory() as session:
        assert session.get_one(Booking, own).status is BookingStatus.BOOKED  # made by hand: never touched
    assert any("was not booked" in note for note in world.calendar(calendar_id).last_notes)
    assert sorted(world.types()[len(before) :]) == [
        "booking.cancelled",
        "booking.created",
        "external_event.booking_refused",
    ]

    # Idempotent: judged again, nothing changes and nothing more is said.
    again = world.types()
    tally = reevaluate.judge(world.runtime, calendar_id)
    assert (tally.counts["booked"], tally.counts["cancelled"]) == (0, 0)
    assert world.types() == again

    # Rules that no longer name the keyword cancel only the calendar's booking.
    set_rules(world)
    reevaluate.judge(world.runtime, calendar_id)
    assert calendar_bookings(world)["WFO"] is BookingStatus.CANCELLED
    assert event_row(world, clash.id).booking_refused is None  # no office day: nothing refused any more
    assert ("api", BookingStatus.BOOKED) in booking_statuses(world)


def test_an_office_day_cancelled_by_hand_stays_cancelled(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "WFO desk day", DAY, DAY + timedelta(hours=8), categories=["Office"])
    graph.calendars.add_event("u1", "WFO", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=8))
    sync.run(world.runtime, calendar_id)
    with transaction(world.factory) as session:
        [booking] = session.scalars(select(Booking)).all()
        bookings.cancel(session, booking, reason="not coming in after all")
    set_rules(world, keywords=["wfo"])  # both events are office days by these rules

    tally = reevaluate.judge(world.runtime, calendar_id)

    assert tally.counts["booked"] == 1
    assert calendar_bookings(world) == {"WFO desk day": BookingStatus.CANCELLED, "WFO": BookingStatus.BOOKED}
    # One the calendar cancelled (its event stopped being an office day) comes back when it is one again.
    set_rules(world, categories=["Office"])
    reevaluate.judge(world.runtime, calendar_id)
    assert calendar_bookings(world)["WFO"] is BookingStatus.CANCELLED
    set_rules(world, keywords=["wfo"])
    reevaluate.judge(world.runtime, calendar_id)
    assert calendar_bookings(world) == {"WFO desk day": BookingStatus.CANCELLED, "WFO": BookingStatus.BOOKED}


def test_judging_in_batches_takes_every_event(world: World, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    for day in range(5):
        start = DAY + timedelta(days=day)
        graph.calendars.add_event("u1", f"WFO {day}", start, start + timedelta(hours=8))
    sync.run(world.runtime, calendar_id)
    set_rules(world, keywords=["wfo"])
    monkeypatch.setattr(reevaluate, "BATCH", 2)

    tally = reevaluate.judge(world.runtime, calendar_id)

    assert tally.counts["booked"] == 5
    assert set(calendar_bookings(world).values()) == {BookingStatus.BOOKED}


def test_with_privacy_on_new_rules_read_the_calendars_again(world: World, graph: FakeGraph) -> None:
    set_busy_only(world, True)
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    office = graph.calendars.add_event("u1", "Desk day", DAY, DAY + timedelta(hours=8), categories=["Office"])
    wfo = graph.calendars.add_event("u1", "WFO", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=8))
    sync.run(world.runtime, calendar_id)
    assert calendar_bookings(world) == {office.id: BookingStatus.BOOKED}  # stored without titles

    set_rules(world, keywords=["wfo"])
    before = world.types()
    assert reevaluate.plan(world.runtime, world.organisation_id, ["office_rules"])["reread"] == 2
    assert ("reevaluate_calendar", (calendar_id, True)) in queued()
    # A job queued to judge stored events finds nothing to judge by: it asks for a read instead.
    BROKER.flush_all()
    reevaluate.judge(world.runtime, calendar_id)
    assert queued() == [("reevaluate_calendar", (calendar_id, True))]

    tally = reevaluate.reread_calendar(world.runtime, calendar_id)

    assert tally is not None
    assert calendar_bookings(world) == {office.id: BookingStatus.CANCELLED, wfo.id: BookingStatus.BOOKED}
    rows = [event_row(world, office.id), event_row(world, wfo.id)]
    assert all((row.title, row.categories) == ("", []) for row in rows)  # still only busy times
    # Nothing changed in the calendar: no external_event.* but the bookings'.
    assert sorted(world.types()[len(before) :]) == ["booking.cancelled", "booking.created"]
    calendar = world.calendar(calendar_id)
    assert (calendar.status, calendar.sync_lease_until, calendar.cursor is not None) == (
        ConnectionStatus.ACTIVE,
        None,
        True,
    )


def test_privacy_off_brings_details_back_without_events(world: World, graph: FakeGraph) -> None:
    set_busy_only(world, True)
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    review = graph.calendars.add_event(
        "u1", "Salary review", DAY, DAY + timedelta(hours=1), location="Room 1", attendees=["boss@contoso.example"]
    )
    sync.run(world.runtime, calendar_id)
    assert event_row(world, review.id).title == ""

    set_busy_only(world, False)
    before = world.types()
    assert reevaluate.plan(world.runtime, world.organisation_id, ["calendar_busy_only"])["reread"] == 2
    assert reevaluate.reread_calendar(world.runtime, calendar_id) is not None

    row = event_row(world, review.id)
    assert (row.title, row.location, row.attendees) == ("Salary review", "Room 1", ["boss@contoso.example"])
    assert world.types()[len(before) :] == []  # details never travel in events: nothing to tell
    sync.run(world.runtime, calendar_id)
    assert "external_event.upserted" not in world.types()[len(before) :]


def test_privacy_on_blanks_what_a_late_page_stored_in_batches(
    world: World, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    for number in range(3):
        start = DAY + timedelta(days=number)
        graph.calendars.add_event("u1", f"Secret {number}", start, start + timedelta(hours=1), attendees=["x@y.z"])
    sync.run(world.runtime, calendar_id)
    # The setting turned on by a sync that read it before (its pages stored the details after the blanking).
    with transaction(world.factory) as session:
        session.get_one(Organisation, world.organisation_id).calendar_busy_only = True
    monkeypatch.setattr(reevaluate, "BATCH", 2)
    before = world.types()

    done = reevaluate.plan(world.runtime, world.organisation_id, ["calendar_busy_only"])

    assert done == {"judged": 0, "reread": 0, "synced": 0, "blanked": 3}
    with world.factory() as session:
        rows = list(session.scalars(select(ExternalEvent)))
    assert len(rows) == 3
    assert all((row.title, row.attendees) == ("", []) for row in rows)
    assert world.types()[len(before) :] == []
    assert queued() == []  # rules unchanged: nothing to judge
    # Once more a sync's lease later, for a sync under way when the setting changed: owed, due then, and
    # queued by the follow-up sweep; that pass is the last.
    with world.factory() as session:
        [later] = session.scalars(select(FollowUp).where(FollowUp.kind == follow_ups.BLANK_AGAIN)).all()
    assert later.target_id == world.organisation_id
    assert later.due_at >= utcnow() + timedelta(minutes=9)
    worker_follow_ups.sweep(world.runtime)
    assert queued() == []  # not due yet
    worker_follow_ups.sweep(world.runtime, now=later.due_at)
    assert queued() == [("reevaluate_organisation", (world.organisation_id, ["calendar_busy_only"], True))]
    BROKER.flush_all()
    assert reevaluate.plan(world.runtime, world.organisation_id, ["calendar_busy_only"], again=True)["blanked"] == 0
    with world.factory() as session:
        assert follow_ups.pending(session, follow_ups.BLANK_AGAIN) == []


def test_a_window_change_asks_every_calendar_for_a_sync(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Far", DAY + timedelta(days=80), DAY + timedelta(days=80, hours=1))
    sync.run(world.runtime, calendar_id)
    sync.run(world.runtime, world.calendar_id("bob@contoso.example"))
    with world.factory() as session:
        assert session.scalars(select(ExternalEvent)).all() == []  # beyond 60 days
    with transaction(world.factory) as session:
        organisation = session.get_one(Organisation, world.organisation_id)
        organisations.update_settings(session, organisation, calendar_window_days=90)

    assert reevaluate.plan(world.runtime, world.organisation_id, ["calendar_window_days"])["synced"] == 2
    bob = world.calendar_id("bob@contoso.example")
    assert sorted(queued()) == sorted([("sync_calendar", (calendar_id,)), ("sync_calendar", (bob,))])
    # Asked once: a second change before the syncs ran queues nothing more.
    assert reevaluate.plan(world.runtime, world.organisation_id, ["calendar_window_days"])["synced"] == 0

    sync.run(world.runtime, calendar_id)
    assert any("window moved" in note for note in world.calendar(calendar_id).last_notes)
    assert event_row(world, next(iter(graph.calendars.calendars["u1"].events))).title == "Far"


def test_rules_and_window_changed_with_privacy_on_read_once(world: World, graph: FakeGraph) -> None:
    set_busy_only(world, True)
    microsoft(world, graph)
    done = reevaluate.plan(world.runtime, world.organisation_id, ["calendar_window_days", "office_rules"])
    assert done == {"judged": 0, "reread": 2, "synced": 0, "blanked": 0}  # a re-read lists the new window too
    assert {name for name, _ in queued()} == {"reevaluate_calendar"}


def test_peer_platform_calendars_are_left_to_their_connection(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    own = [world.calendar_id(ADA), world.calendar_id("bob@contoso.example")]
    with transaction(world.factory) as session:
        peer = Connection(organisation_id=world.organisation_id, kind=ConnectionKind.KADENCE, name="Kadence")
        session.add(peer)
        session.flush()
        session.add(
            Calendar(
                organisation_id=world.organisation_id,
                connection_id=peer.id,
                member_id=world.member_id(ADA),
                address=ADA,
            )
        )
    with world.factory() as session:
        followed = calendar_settings.followed_calendars(session, world.organisation_id)
    assert followed == sorted(own)
    assert reevaluate.plan(world.runtime, world.organisation_id, ["office_rules"])["judged"] == 2


def test_a_calendar_being_synced_is_read_later(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "WFO", DAY, DAY + timedelta(hours=8))
    set_rules(world, keywords=["wfo"])
    with transaction(world.factory) as session:
        assert calendars.claim(session, calendar_id)  # a sync holds it
        lease = session.get_one(Calendar, calendar_id).sync_lease_until

    assert reevaluate.reread_calendar(world.runtime, calendar_id) is None
    with pytest.raises(reevaluate.CalendarBusy):
        actors.reevaluate_calendar(calendar_id, True)  # Dramatiq retries it, with backoff
    assert world.calendar(calendar_id).sync_lease_until == lease  # the sync's lease is left alone
    with world.factory() as session:
        assert session.scalars(select(ExternalEvent)).all() == []  # nothing read, nothing staged


def test_a_refused_read_is_kept_on_the_calendar_and_changes_no_booking(world: World, graph: FakeGraph) -> None:
    set_busy_only(world, True)
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Desk day", DAY, DAY + timedelta(hours=8), categories=["Office"])
    sync.run(world.runtime, calendar_id)
    with graph.calendars.lock:  # the mailbox is gone at Graph
        graph.calendars.calendars.pop("u1")
    set_rules(world, keywords=["wfo"])

    tally = reevaluate.reread_calendar(world.runtime, calendar_id)

    assert tally is not None
    calendar = world.calendar(calendar_id)
    assert calendar.status in (ConnectionStatus.ERROR, ConnectionStatus.ACTION_REQUIRED)
    assert calendar.last_error
    assert calendar.sync_lease_until is None
    assert set(calendar_bookings(world).values()) == {BookingStatus.BOOKED}  # untouched until it can be read


def test_a_read_refused_for_now_is_tried_again(world: World, graph: FakeGraph) -> None:
    set_busy_only(world, True)
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "WFO", DAY, DAY + timedelta(hours=8))
    sync.run(world.runtime, calendar_id)
    set_rules(world, keywords=["wfo"])
    graph.fail(1, 400)

    with pytest.raises(reevaluate.ReadFailed):
        reevaluate.reread_calendar(world.runtime, calendar_id)

    calendar = world.calendar(calendar_id)
    assert (calendar.status, calendar.sync_lease_until) == (ConnectionStatus.ERROR, None)
    assert calendar_bookings(world) == {}
    assert reevaluate.reread_calendar(world.runtime, calendar_id) is not None  # Dramatiq's retry
    assert list(calendar_bookings(world).values()) == [BookingStatus.BOOKED]
    assert world.calendar(calendar_id).status is ConnectionStatus.ACTIVE


def test_gone_calendars_and_organisations_are_nothing_to_do(world: World, graph: FakeGraph) -> None:
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    with transaction(world.factory) as session:
        session.delete(session.get_one(Calendar, calendar_id))
    assert reevaluate.judge(world.runtime, calendar_id).counts["booked"] == 0
    tally = reevaluate.reread_calendar(world.runtime, calendar_id)
    assert tally is not None
    assert tally.counts["seen"] == 0
    assert reevaluate.plan(world.runtime, world.organisation_id + 100, ["office_rules"]) == {}


def test_settings_changed_ignores_others_and_never_raises(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # a send lost to an outage is a debug line
    reevaluate.settings_changed(QUEUE, world.organisation_id, ["timezone"])
    assert queued() == []
    reevaluate.settings_changed(QUEUE, world.organisation_id, ["office_rules", "timezone"])
    assert queued() == [("reevaluate_organisation", (world.organisation_id, ["office_rules"]))]

    down = RedisBroker(url="redis://127.0.0.1:1/0")  # type: ignore[no-untyped-call]  # nothing listens there
    try:
        reevaluate.settings_changed(actors.bind(down), world.organisation_id, ["office_rules"])  # does not raise
    finally:
        down.close()
    assert "could not enqueue" in caplog.text


def test_through_redis_with_dramatiq_workers(world: World, graph: FakeGraph, redis_client: redis.Redis) -> None:
    """Production's path: the API's call queues the organisation's job on Redis; a worker fans it out
    to a job per calendar, which books the office day the new rules find."""
    microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "WFO", DAY, DAY + timedelta(hours=8))
    sync.run(world.runtime, calendar_id)
    assert calendar_bookings(world) == {}
    set_rules(world, keywords=["wfo"])

    redis_broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
    on_redis = actors.bind(redis_broker)  # every actor on Redis, as the wiring binds them
    runtime.configure(dataclasses.replace(world.runtime, queue=on_redis))
    worker = dramatiq.Worker(redis_broker, worker_timeout=100)
    worker.start()
    try:
        reevaluate.settings_changed(on_redis, world.organisation_id, ["office_rules"])
        # The jobs done (not worker.join(): a relay job stays until the worker stops).
        redis_broker.join("calendar", timeout=JOIN_TIMEOUT_MS)
    finally:
        worker.stop()
        runtime.configure(world.runtime)
        redis_broker.close()

    assert calendar_bookings(world) == {"WFO": BookingStatus.BOOKED}

"""Durable follow-ups: a change committed while the broker is unreachable still has its consequence,
done by the scheduler's follow-up sweep once the broker is back, exactly once: the booking reaches
Outlook, a connection's calendars are made, stored events are judged by new office rules, details are
blanked after privacy is turned on. On SQLite and PostgreSQL (the `world` fixture).

"Unreachable" is `broker_down` (conftest): each send fails as in an outage. The sweep is the
scheduler's job function, called with a clock past its grace.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select, update

from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, Calendar, Connection, ConnectionKind, ExternalEvent, Organisation
from store.services import bookings, calendars, connections, follow_ups, members, organisations
from tests.conftest import BROKER, QUEUE, REDIS_URL
from tests.fakes.graph import FakeGraph
from tests.fakes.graph.calendars import Event
from tests.fakes.ics import FakeIcsServer
from tests.fakes.tcp_proxy import TcpProxy
from tests.worker.calendar.conftest import CLIENT_ID, SECRET, World, broker_down, microsoft
from tests.worker.conftest import drain
from worker import actors, runtime
from worker import follow_ups as sweeper
from worker.calendar import jobs, outbound, reevaluate, sync

DAY = (utcnow() + timedelta(days=4)).replace(hour=8, minute=0, second=0, microsecond=0)
ADA = "ada@contoso.example"
ADA_EVENTS = "/v1.0/users/ada@contoso.example/events"


def later(minutes: float = 0) -> datetime:
    """A clock past the grace the queue has before the sweep steps in."""
    return utcnow() + follow_ups.GRACE + timedelta(seconds=1, minutes=minutes)


def owed(world: World, kind: str) -> list[int]:
    with world.factory() as session:
        return [item.target_id for item in follow_ups.pending(session, kind)]


def outlook(graph: FakeGraph, user: str = "u1") -> list[Event]:
    with graph.calendars.lock:
        return list(graph.calendars.calendars[user].events.values())


def writes(graph: FakeGraph) -> int:
    return sum(graph.count(ADA_EVENTS, method) for method in ("POST", "PATCH", "DELETE"))


def book(world: World, email: str = ADA) -> int:
    with transaction(world.factory) as session:
        person = members.get_by_email(session, world.organisation_id, email)
        return bookings.create(session, person, start=DAY, end=DAY + timedelta(hours=8)).id


def settle(world: World, graph: FakeGraph) -> int:
    """A Microsoft connection reading calendars, with its first syncs done and nothing left owed."""
    connection_id = microsoft(world, graph)
    jobs.follow(world.runtime, connection_id, retry=True)  # what the API queues after the commit
    drain(BROKER, "calendar")
    assert owed(world, follow_ups.CONNECTION_CALENDARS) == []
    return connection_id


def test_a_booking_committed_while_the_broker_is_down_reaches_outlook_once_by_the_sweep(
    world: World, graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # a send lost to an outage is a debug line
    settle(world, graph)
    with broker_down():
        booking_id = book(world)  # its commit's write_booking cannot be queued
    assert "could not enqueue the calendar write" in caplog.text
    drain(BROKER, "calendar")
    assert outlook(graph) == []
    assert owed(world, follow_ups.CALENDAR_WRITE) == [booking_id]

    assert sweeper.sweep(world.runtime) == 0  # within the queue's grace: not the sweep's yet
    assert sweeper.sweep(world.runtime, now=later()) == 1
    drain(BROKER, "calendar")

    [event] = outlook(graph)
    assert str(booking_id) in event.properties.values()
    assert owed(world, follow_ups.CALENDAR_WRITE) == []
    sent = writes(graph)
    assert sweeper.sweep(world.runtime, now=later(minutes=600)) == 0  # done: nothing more to queue
    assert writes(graph) == sent


def test_through_a_real_redis_cut_by_a_proxy_the_booking_reaches_outlook_once(
    world: World, graph: FakeGraph, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Production's path: the actor on a RedisBroker whose Redis is behind a TCP proxy the test cuts
    while the booking commits; the proxy comes back, the sweep queues the write, a Dramatiq worker does it."""
    caplog.set_level(logging.DEBUG)  # a send lost to an outage is a debug line
    settle(world, graph)
    real = urlsplit(REDIS_URL)
    with TcpProxy((real.hostname or "127.0.0.1", real.port or 6379)) as proxy:
        proxied = urlunsplit((real.scheme, f"127.0.0.1:{proxy.port}", real.path, real.query, ""))
        redis_broker = RedisBroker(url=proxied)  # type: ignore[no-untyped-call]
        on_redis = dataclasses.replace(world.runtime, queue=actors.bind(redis_broker))  # as the wiring binds them
        runtime.configure(on_redis)
        try:
            proxy.cut("refuse")
            booking_id = book(world)  # its write cannot be queued
            assert "could not enqueue the calendar write" in caplog.text
            proxy.restore()
            assert sweeper.sweep(on_redis, now=later()) == 1
            worker = dramatiq.Worker(redis_broker, worker_timeout=100)
            worker.start()
            try:
                # The write done (not worker.join(): a relay job stays until the worker stops).
                redis_broker.join("calendar", timeout=30_000)
            finally:
                worker.stop()
        finally:
            runtime.configure(world.runtime)
            redis_broker.close()

    [event] = outlook(graph)
    assert str(booking_id) in event.properties.values()
    assert owed(world, follow_ups.CALENDAR_WRITE) == []


def test_a_job_queued_twice_by_commit_and_sweep_writes_the_booking_once(world: World, graph: FakeGraph) -> None:
    """A busy queue: the sweep queues the write again beside the commit's job still waiting."""
    settle(world, graph)
    booking_id = book(world)  # queued, not yet run
    assert sweeper.sweep(world.runtime, now=later()) == 1

    drain(BROKER, "calendar")

    assert len(outlook(graph)) == 1
    assert owed(world, follow_ups.CALENDAR_WRITE) == []
    assert outbound.write(world.runtime, booking_id) == 0


def test_a_cancellation_while_the_broker_is_down_takes_the_booking_out_by_the_sweep(
    world: World, graph: FakeGraph
) -> None:
    settle(world, graph)
    booking_id = book(world)
    drain(BROKER, "calendar")
    assert len(outlook(graph)) == 1
    with broker_down(), transaction(world.factory) as session:
        bookings.cancel(session, session.get_one(Booking, booking_id))

    sweeper.sweep(world.runtime, now=later())
    drain(BROKER, "calendar")

    assert outlook(graph) == []
    assert owed(world, follow_ups.CALENDAR_WRITE) == []


def test_a_refused_write_is_left_to_the_queues_retries_and_swept_when_they_end(world: World, graph: FakeGraph) -> None:
    settle(world, graph)
    booking_id = book(world)  # its job waits in the queue
    permissions = graph.identity.apps[CLIENT_ID].permissions
    permissions.discard("Calendars.ReadWrite")
    with pytest.raises(outbound.WriteFailed):
        outbound.write(world.runtime, booking_id)  # the job's first try: Dramatiq retries it for hours

    assert sweeper.sweep(world.runtime, now=later()) == 0  # not a second stream of retries
    permissions.add("Calendars.ReadWrite")
    assert sweeper.sweep(world.runtime, now=utcnow() + follow_ups.MAX_DELAY + timedelta(seconds=1)) == 1
    drain(BROKER, "calendar")  # the commit's job and the sweep's

    assert len(outlook(graph)) == 1
    assert owed(world, follow_ups.CALENDAR_WRITE) == []


def test_a_change_during_the_write_stays_owed(world: World, graph: FakeGraph) -> None:
    """The job clears only the request it saw: one made while it ran is written by the next job."""
    settle(world, graph)
    booking_id = book(world)
    with world.factory() as session:
        seen = follow_ups.seen(session, follow_ups.CALENDAR_WRITE, booking_id)
    with transaction(world.factory) as session:  # a move commits while the first job is writing
        bookings.update(session, session.get_one(Booking, booking_id), start=DAY + timedelta(hours=1))
    with transaction(world.factory) as session:
        follow_ups.done(session, follow_ups.CALENDAR_WRITE, booking_id, seen)  # the first job ends
    assert owed(world, follow_ups.CALENDAR_WRITE) == [booking_id]


def test_only_bookings_that_have_a_calendar_to_go_to_are_owed_a_write(world: World, graph: FakeGraph) -> None:
    with transaction(world.factory) as session:  # a member without any calendar
        loner = members.add(session, world.organisation_id, "lone@contoso.example", display_name="Lone")
    with transaction(world.factory) as session:
        bookings.create(session, session.merge(loner), start=DAY, end=DAY + timedelta(hours=8))
    assert owed(world, follow_ups.CALENDAR_WRITE) == []

    settle(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Office", DAY, DAY + timedelta(hours=8), categories=["Office"])
    sync.run(world.runtime, calendar_id)  # an office-day booking, made from Ada's own calendar
    with world.factory() as session:
        assert session.scalars(select(Booking.source).order_by(Booking.id)).all() == ["api", "calendar"]
    assert owed(world, follow_ups.CALENDAR_WRITE) == []  # never written back


def test_a_connection_changed_while_the_broker_is_down_gets_its_calendars_by_the_sweep(
    world: World, graph: FakeGraph
) -> None:
    connection_id = world.connect(
        ConnectionKind.MICROSOFT,
        {"tenant_id": graph.tenant_id, "client_id": CLIENT_ID, "calendars": False},
        {"client_secret": SECRET},
    )
    drain(BROKER, "calendar")
    assert owed(world, follow_ups.CONNECTION_CALENDARS) == []  # reads no calendars: nothing owed
    with broker_down():
        with transaction(world.factory) as session:
            connection = session.get_one(Connection, connection_id)
            connections.update_connection(session, world.runtime.secret_box, connection, settings={"calendars": True})
        jobs.calendars_changed(world.runtime, connection_id)  # what the API calls after the commit: lost
    drain(BROKER, "calendar")
    with world.factory() as session:
        assert session.scalars(select(Calendar)).all() == []

    assert sweeper.sweep(world.runtime, now=later()) == 1
    drain(BROKER, "calendar")

    with world.factory() as session:
        made = session.scalars(select(Calendar).order_by(Calendar.id)).all()
    assert [calendar.address for calendar in made] == [ADA, "bob@contoso.example"]
    assert all(calendar.last_synced_at is not None for calendar in made)  # and synced
    assert owed(world, follow_ups.CONNECTION_CALENDARS) == []
    assert sweeper.sweep(world.runtime, now=later(minutes=600)) == 0  # done once: nothing more to queue


def test_an_ics_sync_asked_for_while_the_broker_is_down_is_done_by_the_sweep(world: World, ics: FakeIcsServer) -> None:
    """`POST /v1/connections/{id}/sync` of a feed commits nothing: the refused send records what is owed."""
    ics.serve("/feed.ics", _feed("Dentist"))
    connection_id = world.connect(ConnectionKind.ICS, {"member_email": ADA}, {"url": ics.url("/feed.ics")})
    jobs.follow(world.runtime, connection_id, retry=True)
    drain(BROKER, "calendar")
    assert ics.hits("/feed.ics") == 1
    ics.serve("/feed.ics", _feed("Dentist again"))
    with broker_down():
        jobs.calendars_changed(world.runtime, connection_id)  # the route's call: refused

    assert owed(world, follow_ups.CONNECTION_CALENDARS) == [connection_id]
    assert sweeper.sweep(world.runtime, now=later()) == 1
    drain(BROKER, "calendar")

    assert ics.hits("/feed.ics") == 2
    assert _titles(world) == ["Dentist again"]
    assert owed(world, follow_ups.CONNECTION_CALENDARS) == []


def _feed(title: str) -> bytes:
    """A feed of one event on DAY, as a calendar server publishes it."""
    stamp = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "BEGIN:VEVENT",
        "UID:dentist@test",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{DAY.strftime(stamp)}",
        f"DTEND:{(DAY + timedelta(hours=1)).strftime(stamp)}",
        f"SUMMARY:{title}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def _office_rules(world: World, **rules: object) -> None:
    clean = {"categories": [], "keywords": [], "working_elsewhere_with_location": False, **rules}
    with transaction(world.factory) as session:
        organisations.update_settings(session, session.get_one(Organisation, world.organisation_id), office_rules=clean)


def _booked(world: World) -> list[tuple[str, BookingStatus]]:
    with world.factory() as session:
        rows = session.execute(
            select(ExternalEvent.title, Booking.status).join(Booking, Booking.id == ExternalEvent.booking_id)
        )
        return [(title, status) for title, status in rows]


def test_office_rules_changed_while_the_broker_is_down_judge_stored_events_by_the_sweep(
    world: World, graph: FakeGraph
) -> None:
    settle(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "WFO", DAY, DAY + timedelta(hours=8))
    sync.run(world.runtime, calendar_id)
    assert _booked(world) == []
    with broker_down():
        _office_rules(world, keywords=["wfo"])
        reevaluate.settings_changed(QUEUE, world.organisation_id, ["office_rules"])  # the API's call: lost
    assert owed(world, "office_rules") == [world.organisation_id]

    assert sweeper.sweep(world.runtime, now=later()) == 1  # the organisation's job, which fans out
    drain(BROKER, "calendar")

    assert _booked(world) == [("WFO", BookingStatus.BOOKED)]
    with world.factory() as session:
        assert [(item.kind, item.target_id) for item in follow_ups.pending(session)] == []
    sweeper.sweep(world.runtime, now=later(minutes=600))
    drain(BROKER, "calendar")
    assert _booked(world) == [("WFO", BookingStatus.BOOKED)]  # once: no second booking, no cancellation


def test_a_fan_out_lost_to_the_broker_is_judged_by_the_sweep(world: World, graph: FakeGraph) -> None:
    """The organisation's job runs, but the broker goes while it queues a job per calendar."""
    settle(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "WFO", DAY, DAY + timedelta(hours=8))
    sync.run(world.runtime, calendar_id)
    _office_rules(world, keywords=["wfo"])
    with broker_down():
        assert reevaluate.plan(world.runtime, world.organisation_id, ["office_rules"])["judged"] == 2
    assert owed(world, "office_rules") == []  # the organisation's part is done
    assert sorted(owed(world, follow_ups.CALENDAR_JUDGE)) == sorted(
        [calendar_id, world.calendar_id("bob@contoso.example")]
    )
    assert _booked(world) == []

    assert sweeper.sweep(world.runtime, now=later()) == 2
    drain(BROKER, "calendar")

    assert _booked(world) == [("WFO", BookingStatus.BOOKED)]
    assert owed(world, follow_ups.CALENDAR_JUDGE) == []


def test_a_wider_window_while_the_broker_is_down_is_read_by_the_sweep(world: World, graph: FakeGraph) -> None:
    settle(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Far", DAY + timedelta(days=80), DAY + timedelta(days=80, hours=1))
    sync.run(world.runtime, calendar_id)
    assert _titles(world) == []  # beyond 60 days
    with broker_down():
        with transaction(world.factory) as session:
            organisation = session.get_one(Organisation, world.organisation_id)
            organisations.update_settings(session, organisation, calendar_window_days=90)
        reevaluate.settings_changed(QUEUE, world.organisation_id, ["calendar_window_days"])  # lost

    assert sweeper.sweep(world.runtime, now=later()) == 1  # the organisation's job, which asks for syncs
    drain(BROKER, "calendar")

    assert _titles(world) == ["Far"]
    assert owed(world, "calendar_window_days") == []
    with world.factory() as session:
        assert session.scalars(select(Calendar.sync_requested_at)).all() == [None, None]  # all read


def test_a_reread_of_a_calendar_being_synced_waits_for_the_queues_retries(world: World, graph: FakeGraph) -> None:
    settle(world, graph)
    calendar_id = world.calendar_id(ADA)
    with transaction(world.factory) as session:
        follow_ups.record(session, follow_ups.CALENDAR_REREAD, calendar_id, world.organisation_id)
        assert calendars.claim(session, calendar_id)  # a sync holds it
    with pytest.raises(reevaluate.CalendarBusy):
        actors.reevaluate_calendar(calendar_id, True)  # Dramatiq retries it, with backoff

    assert sweeper.sweep(world.runtime, now=later()) == 0  # not a second stream of retries
    with transaction(world.factory) as session:
        session.get_one(Calendar, calendar_id).sync_lease_until = None  # that sync ended
    assert sweeper.sweep(world.runtime, now=utcnow() + follow_ups.MAX_DELAY + timedelta(seconds=1)) == 1
    drain(BROKER, "calendar")

    assert owed(world, follow_ups.CALENDAR_REREAD) == []
    assert world.calendar(calendar_id).sync_lease_until is None


def _late_page(world: World) -> None:
    """What a sync that read the setting before it was turned on stores after the blanking: details."""
    with transaction(world.factory) as session:
        session.execute(update(ExternalEvent).values(title="Salary review", location="Room 1"))


def _titles(world: World) -> list[str]:
    with world.factory() as session:
        return list(session.scalars(select(ExternalEvent.title)))


def test_privacy_turned_on_while_the_broker_is_down_is_blanked_by_the_sweep_and_again_later(
    world: World, graph: FakeGraph
) -> None:
    settle(world, graph)
    calendar_id = world.calendar_id(ADA)
    graph.calendars.add_event("u1", "Salary review", DAY, DAY + timedelta(hours=1), location="Room 1")
    sync.run(world.runtime, calendar_id)
    with broker_down():
        with transaction(world.factory) as session:
            organisation = session.get_one(Organisation, world.organisation_id)
            organisations.update_settings(session, organisation, calendar_busy_only=True)
        reevaluate.settings_changed(QUEUE, world.organisation_id, ["calendar_busy_only"])  # lost
    assert _titles(world) == [""]  # blanked in the change's own transaction
    _late_page(world)

    sweeper.sweep(world.runtime, now=later())
    drain(BROKER, "calendar")

    assert _titles(world) == [""]
    assert owed(world, "calendar_busy_only") == []
    assert owed(world, follow_ups.BLANK_AGAIN) == [world.organisation_id]  # once more, a sync's lease later
    _late_page(world)
    sweeper.sweep(world.runtime, now=later(minutes=12))
    drain(BROKER, "calendar")
    assert _titles(world) == [""]
    with world.factory() as session:
        assert follow_ups.pending(session) == []


def test_the_sweep_leaves_what_the_broker_refuses_due_and_gives_up_at_last(
    world: World, graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    settle(world, graph)
    with broker_down():
        booking_id = book(world)
        assert sweeper.sweep(world.runtime, now=later()) == 0  # still down: nothing counted
    with world.factory() as session:
        [waiting] = follow_ups.pending(session, follow_ups.CALENDAR_WRITE)
    assert waiting.attempts == 0

    clock = later()  # the queued jobs never run here: as if each failed
    for _ in range(follow_ups.MAX_ATTEMPTS):
        assert sweeper.sweep(world.runtime, now=clock) == 1
        assert sweeper.sweep(world.runtime, now=clock) == 0  # put off until its next delay
        clock += follow_ups.MAX_DELAY
    BROKER.flush_all()
    with caplog.at_level(logging.WARNING):
        assert sweeper.sweep(world.runtime, now=clock) == 0
    assert f"gave up calendar_write of {booking_id}" in caplog.text
    assert owed(world, follow_ups.CALENDAR_WRITE) == []

"""Follow-ups (store/services/follow_ups.py), on SQLite and PostgreSQL: recorded with the change that owes
them and only then, one row per kind and target however often asked, cleared only as the job saw them,
found by the sweep only when due."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Calendar, Connection, ConnectionKind, FollowUp, Organisation
from store.secret_box import SecretBox
from store.services import bookings, connections, follow_ups, organisations
from tests.conftest import Org

BOX = SecretBox([SecretBox.generate_key()])
ICS = {"url": "https://calendar.example/feed.ics"}
MICROSOFT = {"tenant_id": "t", "client_id": "c"}


def rows(factory: sessionmaker[Session]) -> list[tuple[str, int, int, int]]:
    with factory() as session:
        found = session.scalars(select(FollowUp).order_by(FollowUp.kind, FollowUp.target_id))
        return [(row.kind, row.target_id, row.generation, row.attempts) for row in found]


def test_asking_again_is_one_row_with_a_new_generation(session_factory: sessionmaker[Session], acme: Org) -> None:
    organisation_id = acme.organisation.id
    with transaction(session_factory) as session:
        follow_ups.record(session, follow_ups.CALENDAR_WRITE, 7, organisation_id)
    with transaction(session_factory) as session:
        first = session.scalars(select(FollowUp)).one()
        first.attempts = 3  # the sweep queued it three times
    with transaction(session_factory) as session:
        follow_ups.record(session, follow_ups.CALENDAR_WRITE, 7, organisation_id, due_in=timedelta(hours=1))
        follow_ups.record_many(session, follow_ups.CALENDAR_JUDGE, [1, 2, 2], organisation_id)

    assert rows(session_factory) == [
        ("calendar_judge", 1, 1, 0),
        ("calendar_judge", 2, 1, 0),
        ("calendar_write", 7, 2, 0),
    ]
    with session_factory() as session:
        write = session.scalars(select(FollowUp).where(FollowUp.kind == follow_ups.CALENDAR_WRITE)).one()
    assert write.due_at > utcnow() + timedelta(minutes=59)


def test_an_unknown_kind_is_refused(session_factory: sessionmaker[Session], acme: Org) -> None:
    with session_factory() as session, pytest.raises(ValueError, match="unknown follow-up kind"):
        follow_ups.record(session, "nonsense", 1, acme.organisation.id)


def test_a_job_clears_only_the_generation_it_saw(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        follow_ups.record(session, follow_ups.CONNECTION_CALENDARS, 5, acme.organisation.id)
    with session_factory() as session:
        seen = follow_ups.seen(session, follow_ups.CONNECTION_CALENDARS, 5)
    with transaction(session_factory) as session:
        follow_ups.record(session, follow_ups.CONNECTION_CALENDARS, 5, acme.organisation.id)  # asked again meanwhile
    with transaction(session_factory) as session:
        follow_ups.done(session, follow_ups.CONNECTION_CALENDARS, 5, seen)
    assert rows(session_factory) == [("connection_calendars", 5, 2, 0)]

    with session_factory() as session:
        seen = follow_ups.seen(session, follow_ups.CONNECTION_CALENDARS, 5)
    with transaction(session_factory) as session:
        follow_ups.done(session, follow_ups.CONNECTION_CALENDARS, 5, seen)
        follow_ups.done(session, follow_ups.CONNECTION_CALENDARS, 6, None)  # none owed: nothing to do
    assert rows(session_factory) == []


def test_the_sweep_finds_only_what_is_due_and_puts_it_off_longer_each_time(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        follow_ups.record(session, follow_ups.CALENDAR_WRITE, 1, acme.organisation.id, now=now)
        follow_ups.record(session, follow_ups.CALENDAR_WRITE, 2, acme.organisation.id, now=now + timedelta(hours=1))
    with transaction(session_factory) as session:
        assert follow_ups.due(session, now=now) == []
        [row] = follow_ups.due(session, now=now + follow_ups.GRACE)
        assert row.target_id == 1
        follow_ups.postpone(row, now + follow_ups.GRACE)
    delays = []
    with transaction(session_factory) as session:
        row = session.scalars(select(FollowUp).where(FollowUp.target_id == 1)).one()
        for _ in range(follow_ups.MAX_ATTEMPTS - 1):
            before = row.due_at
            follow_ups.postpone(row, before)
            delays.append(row.due_at - before)
        assert follow_ups.exhausted(row)
    assert delays[0] == 2 * follow_ups.GRACE
    assert delays == sorted(delays)
    assert delays[-1] == follow_ups.MAX_DELAY


def _outlook_calendar(session: Session, acme: Org) -> None:
    """The member's Outlook calendar, where their bookings are written."""
    outlook, _ = connections.create(
        session,
        BOX,
        acme.organisation.id,
        ConnectionKind.MICROSOFT,
        "Entra",
        settings=MICROSOFT,
        credentials={"client_secret": "s"},
    )
    session.add(Calendar(organisation_id=acme.organisation.id, connection_id=outlook.id, member_id=acme.member.id))


def test_a_change_rolled_back_owes_nothing(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        _outlook_calendar(session, acme)
    start = utcnow() + timedelta(days=1)
    with session_factory() as session:
        bookings.create(session, session.merge(acme.member), start=start, end=start + timedelta(hours=1))
        session.rollback()
    assert rows(session_factory) == []


def test_bookings_owe_a_write_only_where_a_calendar_takes_it(session_factory: sessionmaker[Session], acme: Org) -> None:
    start = utcnow() + timedelta(days=1)
    with transaction(session_factory) as session:  # no calendar at all
        bookings.create(session, session.merge(acme.member), start=start, end=start + timedelta(hours=1))
    with transaction(session_factory) as session:  # a feed: read-only
        feed, _ = connections.create(session, BOX, acme.organisation.id, ConnectionKind.ICS, "Feed", credentials=ICS)
        session.add(Calendar(organisation_id=acme.organisation.id, connection_id=feed.id, member_id=acme.member.id))
        bookings.create(
            session, session.merge(acme.member), start=start + timedelta(days=1), end=start + timedelta(days=1, hours=1)
        )
    assert [kind for kind, *_ in rows(session_factory)] == ["connection_calendars"]

    with transaction(session_factory) as session:  # Outlook: written into
        _outlook_calendar(session, acme)
        booking = bookings.create(
            session, session.merge(acme.member), start=start + timedelta(days=2), end=start + timedelta(days=2, hours=1)
        )
        booking_id = booking.id
    with transaction(session_factory) as session:
        booking = bookings.get(session, acme.organisation.id, booking_id)
        bookings.check_in(session, booking, now=booking.start_at)  # nothing a calendar shows
    assert ("calendar_write", booking_id, 1, 0) in rows(session_factory)
    with transaction(session_factory) as session:
        bookings.cancel(session, bookings.get(session, acme.organisation.id, booking_id))
    assert ("calendar_write", booking_id, 2, 0) in rows(session_factory)


def test_connections_owe_their_calendars_when_they_read_them(session_factory: sessionmaker[Session], acme: Org) -> None:
    organisation_id = acme.organisation.id
    with transaction(session_factory) as session:
        entra, _ = connections.create(
            session,
            BOX,
            organisation_id,
            ConnectionKind.MICROSOFT,
            "Entra",
            settings=MICROSOFT,
            credentials={"client_secret": "s"},
        )
        entra_id = entra.id
    assert rows(session_factory) == []  # reads no calendars
    with transaction(session_factory) as session:
        connections.update_connection(session, BOX, session.get_one(Connection, entra_id), name="Entra ID")
    assert rows(session_factory) == []
    with transaction(session_factory) as session:
        connections.update_connection(session, BOX, session.get_one(Connection, entra_id), settings={"calendars": True})
    assert rows(session_factory) == [("connection_calendars", entra_id, 1, 0)]
    with transaction(session_factory) as session:  # off again: its calendars are dropped
        connections.update_connection(
            session, BOX, session.get_one(Connection, entra_id), settings={"calendars": False}
        )
    assert rows(session_factory) == [("connection_calendars", entra_id, 2, 0)]


def test_calendar_settings_owe_their_follow_up_each(session_factory: sessionmaker[Session], acme: Org) -> None:
    organisation_id = acme.organisation.id
    with transaction(session_factory) as session:
        organisation = session.get_one(Organisation, organisation_id)
        organisations.update_settings(
            session, organisation, timezone="Europe/Paris", calendar_window_days=organisation.calendar_window_days
        )
    assert rows(session_factory) == []
    with transaction(session_factory) as session:
        organisation = session.get_one(Organisation, organisation_id)
        organisations.update_settings(session, organisation, calendar_busy_only=True, calendar_window_days=30)
    assert rows(session_factory) == [
        ("calendar_busy_only", organisation_id, 1, 0),
        ("calendar_window_days", organisation_id, 1, 0),
    ]


def test_concurrent_requests_make_one_row(session_factory: sessionmaker[Session], acme: Org) -> None:
    racers = 8
    barrier = Barrier(racers)

    def ask(_: int) -> None:
        with transaction(session_factory) as session:
            barrier.wait()
            follow_ups.record(session, follow_ups.CALENDAR_WRITE, 42, acme.organisation.id)

    with ThreadPoolExecutor(racers) as pool:
        list(pool.map(ask, range(racers)))

    assert rows(session_factory) == [("calendar_write", 42, racers, 0)]


def test_two_sweeps_at_once_take_different_rows(session_factory: sessionmaker[Session], acme: Org) -> None:
    with session_factory() as probe:
        if probe.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite runs one writer at a time: two sweeps cannot overlap there")
    now = utcnow()
    with transaction(session_factory) as session:
        follow_ups.record_many(session, follow_ups.CALENDAR_JUDGE, [1, 2], acme.organisation.id, now=now)
    due = now + follow_ups.GRACE
    with transaction(session_factory) as first, transaction(session_factory) as second:
        [taken] = follow_ups.due(first, now=due, limit=1)
        [other] = follow_ups.due(second, now=due)  # the first's row is locked: skipped, not waited for
        assert {taken.target_id, other.target_id} == {1, 2}

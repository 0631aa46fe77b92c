"""A CalDAV connection end to end against a real Radicale server: the person's calendar read into
events and office days (recurring ones expanded), bookings written into it once with no echo, and
refusals kept on the calendar and its connection. On SQLite and PostgreSQL (the `engine` fixture):
the new kind is a plain value of the `connections.kind` column, no migration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import caldav
import pytest
from sqlalchemy import select

from store.columns import utcnow
from store.db import transaction
from store.models import Booking, Connection, ConnectionKind, ConnectionStatus, ExternalEvent, Organisation
from store.services import bookings, connections, desks, members, organisations
from sync.directory.readers import DirectoryEndpoints
from tests.fakes.graph import FakeGraph
from tests.radicale import USERS, Radicale, radicale
from tests.worker.calendar.conftest import CLIENT_ID, SECRET, World
from worker.calendar import jobs, outbound, sync

DAY = (utcnow() + timedelta(days=3)).replace(hour=7, minute=0, second=0, microsecond=0)
ADA = "ada@contoso.example"
STAMP = "%Y%m%dT%H%M%SZ"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale(tmp_path_factory.mktemp("radicale")) as running:
        yield running


@pytest.fixture
def work(server: Radicale) -> caldav.Calendar:
    return server.client().principal().make_calendar(name=f"Work {uuid.uuid4().hex[:8]}")  # one per test and store


def people(world: World, graph: FakeGraph) -> None:
    """Ada and Bob as members (a Microsoft directory that reads no calendars)."""
    world.connect(
        ConnectionKind.MICROSOFT, {"tenant_id": graph.tenant_id, "client_id": CLIENT_ID}, {"client_secret": SECRET}
    )


def connect(world: World, server: Radicale, work: caldav.Calendar, password: str = USERS["alice"]) -> int:
    """A CalDAV connection of Ada's (a calendar, not a directory: nothing to sync but its calendar)."""
    settings = {"member_email": ADA, "calendar": work.get_display_name()}
    credentials = {"url": server.url, "username": "alice", "password": password}
    with transaction(world.factory) as session:
        connection, _ = connections.create(
            session,
            world.runtime.secret_box,
            world.organisation_id,
            ConnectionKind.CALDAV,
            "CalDAV",
            settings=settings,
            credentials=credentials,
        )
        return connection.id


def office_week(start: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            "BEGIN:VEVENT",
            "UID:office-week",
            f"DTSTAMP:{start}",
            f"DTSTART:{start}",
            f"DTEND:{(DAY + timedelta(hours=9)).strftime(STAMP)}",
            "SUMMARY:In the office",
            "CATEGORIES:Office",
            "RRULE:FREQ=DAILY;COUNT=3",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )


def stored(world: World, calendar_id: int) -> list[ExternalEvent]:
    with world.factory() as session:
        return list(session.scalars(select(ExternalEvent).where(ExternalEvent.calendar_id == calendar_id)))


def test_a_caldav_calendar_is_read_and_a_booking_written_into_it_never_comes_back(
    world: World, graph: FakeGraph, server: Radicale, work: caldav.Calendar
) -> None:
    people(world, graph)
    work.save_event(office_week(DAY.strftime(STAMP)))
    connection_id = connect(world, server, work)
    [calendar_id] = jobs.follow(world.runtime, connection_id)
    assert world.calendar(calendar_id).member_id == world.member_id(ADA)

    tally = sync.run(world.runtime, calendar_id)

    assert tally is not None
    assert len(stored(world, calendar_id)) == 3  # the series, expanded as an ICS feed's is
    with world.factory() as session:
        office_days = session.scalars(select(Booking).where(Booking.source == "calendar")).all()
        assert len(office_days) == 3
        assert session.get_one(Connection, connection_id).status is ConnectionStatus.ACTIVE

    # Unchanged: the sync-collection REPORT says so, nothing is applied again.
    before = world.types()
    assert sync.run(world.runtime, calendar_id) is not None
    assert world.types()[len(before) :] == ["connection.synced"]

    with transaction(world.factory) as session:
        person = members.get_by_email(session, world.organisation_id, ADA)
        desk = desks.create(session, world.organisation_id, "4.12", building="Berlin HQ", floor="4")
        start = DAY + timedelta(days=5)
        booking_id = bookings.create(session, person, start=start, end=start + timedelta(hours=8), desk_id=desk.id).id

    assert outbound.write(world.runtime, booking_id) == 1
    assert outbound.write(world.runtime, booking_id) == 0  # a redelivered job writes nothing
    [ours] = [item for item in work.events() if "Desk 4.12" in item.data]
    assert f"X-DESKBRIDGE-BOOKING-ID:{booking_id}" in ours.data

    echoed = sync.run(world.runtime, calendar_id)
    assert echoed is not None
    assert echoed.counts["echoes"] == 1
    assert len(stored(world, calendar_id)) == 3  # still only the person's own events

    with transaction(world.factory) as session:
        booking = session.get_one(Booking, booking_id)
        bookings.cancel(session, booking)
    assert outbound.write(world.runtime, booking_id) == 1
    assert [item for item in work.events() if "Desk 4.12" in item.data] == []


def test_a_refused_password_needs_an_admin_on_the_calendar_and_its_connection(
    world: World, graph: FakeGraph, server: Radicale, work: caldav.Calendar
) -> None:
    people(world, graph)
    connection_id = connect(world, server, work, password="wrong")
    [calendar_id] = jobs.follow(world.runtime, connection_id)

    assert sync.run(world.runtime, calendar_id) is None

    calendar = world.calendar(calendar_id)
    assert calendar.status is ConnectionStatus.ACTION_REQUIRED
    assert calendar.last_error
    assert "wrong" not in calendar.last_error
    with world.factory() as session:
        assert session.get_one(Connection, connection_id).status is ConnectionStatus.ACTION_REQUIRED


def test_a_server_on_a_private_address_is_refused(
    world: World, graph: FakeGraph, server: Radicale, work: caldav.Calendar, tmp_path: Path
) -> None:
    from tests.worker.calendar.conftest import with_runtime

    people(world, graph)
    strict = with_runtime(world, directory=DirectoryEndpoints(allow_private=False))
    connection_id = connect(world, server, work)
    [calendar_id] = jobs.follow(strict, connection_id)

    assert sync.run(strict, calendar_id) is None

    calendar = world.calendar(calendar_id)
    assert calendar.status is ConnectionStatus.ACTION_REQUIRED
    assert calendar.last_error
    assert "refused" in calendar.last_error


def test_an_all_day_entry_marked_out_of_office_releases_the_day_when_the_organisation_says_so(
    world: World, graph: FakeGraph, server: Radicale, work: caldav.Calendar
) -> None:
    people(world, graph)
    with transaction(world.factory) as session:
        organisation = session.get_one(Organisation, world.organisation_id)
        organisations.update_settings(session, organisation, release_on_absence=True)
        person = members.get_by_email(session, world.organisation_id, ADA)
        day = DAY.date() + timedelta(days=1)
        covered = bookings.create(session, person, start=DAY + timedelta(days=1), end=DAY + timedelta(days=1, hours=8))
        covered_id = covered.id
    work.save_event(
        "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//test//EN",
                "BEGIN:VEVENT",
                "UID:away",
                f"DTSTAMP:{DAY.strftime(STAMP)}",
                f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
                "SUMMARY:Away",
                "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
    )
    [calendar_id] = jobs.follow(world.runtime, connect(world, server, work))

    assert sync.run(world.runtime, calendar_id) is not None

    with world.factory() as session:
        booking = session.get_one(Booking, covered_id)
        assert (booking.status.value, booking.cancellation_reason) == ("cancelled", "out_of_office")

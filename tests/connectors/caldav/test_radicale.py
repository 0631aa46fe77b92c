"""The CalDAV connector against a real Radicale server on loopback: reads (sync-collection, recurring
events expanded like ICS), writes recognised as ours when read back, and the errors an admin sees."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import caldav
import pytest

from connectors.caldav import CalDavAccount, CalDavCalendar, CalDavCalendarWriter
from connectors.records import BookingEntry, ConnectorError, Window
from tests.radicale import USERS, Radicale, radicale

START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
WINDOW = Window(START - timedelta(days=2), START + timedelta(days=14))
STAMP = "%Y%m%dT%H%M%SZ"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale(tmp_path_factory.mktemp("radicale")) as running:
        yield running


@pytest.fixture
def work(server: Radicale) -> caldav.Calendar:
    """A fresh calendar of alice's, of this test's own."""
    return server.client().principal().make_calendar(name=f"Work {uuid.uuid4().hex[:8]}")


def account(server: Radicale, calendar: caldav.Calendar, password: str = USERS["alice"]) -> CalDavAccount:
    return CalDavAccount(server.url, "alice", password, calendar=calendar.get_display_name(), allow_private=True)


def event(uid: str, summary: str, start: datetime, *, rule: str = "", extra: str = "") -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{START.strftime(STAMP)}",
        f"DTSTART:{start.strftime(STAMP)}",
        f"DTEND:{(start + timedelta(hours=1)).strftime(STAMP)}",
        f"SUMMARY:{summary}",
        *([f"RRULE:{rule}"] if rule else []),
        *([extra] if extra else []),
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines)


def entry(booking_id: int = 41, title: str = "Desk 4.12 (deskbridge)") -> BookingEntry:
    return BookingEntry(
        booking_id=booking_id,
        start=START + timedelta(days=1),
        end=START + timedelta(days=1, hours=8),
        timezone="Europe/Berlin",
        title=title,
        location="Desk 4.12, Berlin HQ",
        office_label="Berlin HQ",
    )


def test_a_recurring_event_is_expanded_and_an_unchanged_calendar_reads_nothing(
    server: Radicale, work: caldav.Calendar
) -> None:
    work.save_event(event("standup", "Standup", START, rule="FREQ=DAILY;COUNT=3"))
    reader = CalDavCalendar(account(server, work), default_timezone="Europe/Berlin")

    [page] = list(reader.read(None, WINDOW))

    assert page.full
    assert page.last
    assert sorted(item.start for item in page.events) == [START + timedelta(days=n) for n in range(3)]
    assert {item.title for item in page.events} == {"Standup"}

    [again] = list(reader.read(page.cursor, WINDOW))  # the sync-collection REPORT: nothing changed
    assert again.events == ()
    assert not again.full

    work.save_event(event("lunch", "Lunch", START + timedelta(hours=4)))
    [changed] = list(reader.read(again.cursor, WINDOW))
    assert changed.full
    assert sorted(item.title for item in changed.events) == ["Lunch", "Standup", "Standup", "Standup"]


def test_a_booking_written_is_made_once_updated_in_place_read_back_as_ours_and_deleted(
    server: Radicale, work: caldav.Calendar
) -> None:
    writer = CalDavCalendarWriter(account(server, work))

    event_id = writer.put(entry(), None)
    assert writer.put(entry(title="Desk 5.01 (deskbridge)"), event_id) == event_id  # the same resource
    assert writer.put(entry(title="Desk 5.01 (deskbridge)"), None) == event_id  # a retried create: no second

    [stored] = work.events()
    assert "Desk 5.01" in stored.data
    [page] = list(CalDavCalendar(account(server, work)).read(None, WINDOW))
    [ours] = page.events
    assert ours.booking_id == 41  # what the sync engine counts as an echo, never as a person's event

    writer.delete(event_id)
    assert work.events() == []
    writer.delete(event_id)  # already gone: fine


def test_a_wrong_password_needs_an_admin(server: Radicale, work: caldav.Calendar) -> None:
    reader = CalDavCalendar(account(server, work, password="wrong"))

    with pytest.raises(ConnectorError) as refused:
        list(reader.read(None, WINDOW))

    assert refused.value.action_required
    assert "username and password" in refused.value.message
    assert "wrong" not in refused.value.message


def test_a_calendar_name_the_account_lacks_needs_an_admin(server: Radicale) -> None:
    reader = CalDavCalendar(CalDavAccount(server.url, "alice", USERS["alice"], calendar="Nope", allow_private=True))

    with pytest.raises(ConnectorError) as missing:
        list(reader.read(None, WINDOW))

    assert missing.value.action_required
    assert "'Nope'" in missing.value.message


def test_a_server_on_a_private_address_is_refused_before_any_request(server: Radicale, work: caldav.Calendar) -> None:
    strict = CalDavAccount(server.url, "alice", USERS["alice"], allow_private=False)

    with pytest.raises(ConnectorError) as refused:
        list(CalDavCalendar(strict).read(None, WINDOW))

    assert refused.value.action_required
    assert "refused" in refused.value.message


def test_an_unreachable_server_is_an_error_retried_not_an_admins(server: Radicale) -> None:
    gone = CalDavAccount("http://127.0.0.1:1/", "alice", USERS["alice"], allow_private=True)

    with pytest.raises(ConnectorError) as failed:
        list(CalDavCalendar(gone).read(None, WINDOW))

    assert not failed.value.action_required

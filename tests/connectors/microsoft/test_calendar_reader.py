"""OutlookCalendar against the fake Graph: full and incremental rounds, resyncs, moved windows, throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.microsoft import CalendarCursor, GraphClient, OutlookCalendar
from connectors.records import CalendarEvent, CalendarPage, ConnectorError, Window
from tests.connectors.microsoft.conftest import CALENDAR_UPN, CALENDAR_USER, CLIENT_ID, Sleeps
from tests.fakes.graph import FakeGraph

WINDOW = Window(datetime(2025, 3, 24, tzinfo=UTC), datetime(2025, 4, 14, tzinfo=UTC))


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def seed(fake: FakeGraph, count: int = 7) -> None:
    """`count` one-hour events e1… on consecutive days from 24 March, 09:00 UTC."""
    for n in range(1, count + 1):
        fake.calendars.add_event(
            CALENDAR_USER,
            f"Event {n}",
            at(23 + n, 9),
            at(23 + n, 10),
            event_id=f"e{n}",
            location=f"Room {n}",
            categories=["Blue"],
            attendees=[f"Guest{n}@Fabrikam.example"],
        )


def events_of(pages: list[CalendarPage]) -> dict[str, CalendarEvent]:
    return {event.event_id: event for page in pages for event in page.events}


def removed_of(pages: list[CalendarPage]) -> set[str]:
    return {removed.event_id for page in pages for removed in page.removed}


def last_cursor(pages: list[CalendarPage]) -> str:
    assert pages[-1].last
    assert pages[-1].cursor is not None
    return pages[-1].cursor


@pytest.fixture
def reader(calendar_graph: GraphClient) -> OutlookCalendar:
    return OutlookCalendar(calendar_graph, CALENDAR_USER, page_size=3)


def test_full_round_over_pages_with_the_cursor_on_the_last(fake: FakeGraph, reader: OutlookCalendar) -> None:
    seed(fake)
    fake.calendars.add_event(CALENDAR_USER, "Long ago", at(1, 9, month=1), at(1, 10, month=1), event_id="old")

    pages = list(reader.read(None, WINDOW))

    # 7 events, 3 a page: the page size is asked on every request (nextLinks do not carry it).
    assert [len(page.events) for page in pages] == [3, 3, 1]
    assert all(page.full for page in pages)
    assert [page.last for page in pages] == [False, False, True]
    assert [page.cursor is not None for page in pages] == [False, False, True]
    events = events_of(pages)
    assert set(events) == {f"e{n}" for n in range(1, 8)}  # "old" is outside the window
    first = events["e1"]
    assert (first.start, first.end) == (at(24, 9), at(24, 10))
    assert (first.title, first.location, first.categories) == ("Event 1", "Room 1", ("Blue",))
    assert first.attendees == ("guest1@fabrikam.example",)
    assert (first.show_as, first.status, first.all_day, first.timezone) == ("busy", "confirmed", False, "UTC")
    assert first.etag == "1"
    assert first.ical_uid
    assert first.updated is not None
    assert first.booking_id is None
    assert first.recurrence_id is None


def test_incremental_round_returns_changes_and_removals(fake: FakeGraph, reader: OutlookCalendar) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None, WINDOW)))
    fake.calendars.update_event(CALENDAR_USER, "e1", start=at(24, 14), end=at(24, 15), subject="Moved")
    fake.calendars.delete_event(CALENDAR_USER, "e2")
    fake.calendars.update_event(CALENDAR_USER, "e3", start=at(1, 9, month=6), end=at(1, 10, month=6))  # out
    fake.calendars.add_event(CALENDAR_USER, "New", at(28, 12), at(28, 13), event_id="e9")

    pages = list(reader.read(cursor, WINDOW))

    assert not any(page.full for page in pages)
    events = events_of(pages)
    assert set(events) == {"e1", "e9"}
    assert (events["e1"].start, events["e1"].title, events["e1"].etag) == (at(24, 14), "Moved", "2")
    assert removed_of(pages) == {"e2", "e3"}  # deleted, and moved out of the window

    quiet = list(reader.read(last_cursor(pages), WINDOW))
    assert events_of(quiet) == {}
    assert removed_of(quiet) == set()
    assert quiet[-1].last


@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired"])
def test_expired_state_starts_a_full_round_with_a_note(fake: FakeGraph, reader: OutlookCalendar, code: str) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None, WINDOW)))
    fake.calendars.expire_tokens(code)
    fake.calendars.delete_event(CALENDAR_USER, "e7")

    pages = list(reader.read(cursor, WINDOW))

    assert all(page.full for page in pages)
    assert set(events_of(pages)) == {f"e{n}" for n in range(1, 7)}
    assert any(code in note and "again" in note for note in pages[0].notes)
    assert events_of(list(reader.read(last_cursor(pages), WINDOW))) == {}


def test_410_part_way_through_a_round_lists_the_window_again(fake: FakeGraph, reader: OutlookCalendar) -> None:
    seed(fake)
    rounds = reader.read(None, WINDOW)
    first = next(rounds)
    fake.calendars.expire_tokens()  # the first page's nextLink is now gone
    rest = list(rounds)

    assert first.full
    assert all(page.full for page in rest)
    assert "again" in " ".join(rest[0].notes)
    assert len(events_of(rest)) == 7  # complete on its own


def test_resyncs_are_bounded(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    seed(fake)
    reader = OutlookCalendar(calendar_graph, CALENDAR_USER, page_size=3, max_resyncs=1)
    rounds = reader.read(None, WINDOW)
    next(rounds)
    fake.calendars.expire_tokens()
    next(rounds)  # resynced once
    fake.calendars.expire_tokens()

    with pytest.raises(ConnectorError) as caught:
        list(rounds)
    assert "syncStateNotFound" in caught.value.message


def test_a_moved_window_is_listed_again_from_scratch(fake: FakeGraph, reader: OutlookCalendar) -> None:
    seed(fake)
    fake.calendars.add_event(CALENDAR_USER, "Later", at(15, 9, month=4), at(15, 10, month=4), event_id="later")
    cursor = last_cursor(list(reader.read(None, WINDOW)))
    moved = Window(WINDOW.start + timedelta(days=2), WINDOW.end + timedelta(days=2))

    pages = list(reader.read(cursor, moved))

    assert all(page.full for page in pages)
    assert "window moved" in " ".join(pages[0].notes)
    # e1 and e2 are before the new window (a full listing leaves them out); "later" slid in.
    assert set(events_of(pages)) == {"e3", "e4", "e5", "e6", "e7", "later"}
    kept = CalendarCursor.decode(last_cursor(pages))
    assert (kept.start, kept.end) == ("2025-03-26T00:00:00Z", "2025-04-16T00:00:00Z")
    assert not any(page.full for page in reader.read(last_cursor(pages), moved))


def test_a_window_moving_within_the_day_keeps_the_cursor(fake: FakeGraph, reader: OutlookCalendar) -> None:
    seed(fake)
    now = Window(at(24, 9, 17), at(13, 9, 17, month=4))  # "from a day back to N days ahead", at 09:17
    cursor = last_cursor(list(reader.read(None, now)))
    later = Window(now.start + timedelta(hours=5), now.end + timedelta(hours=5))

    pages = list(reader.read(cursor, later))

    assert not any(page.full for page in pages)
    assert events_of(pages) == {}
    kept = CalendarCursor.decode(last_cursor(pages))
    assert (kept.start, kept.end) == ("2025-03-24T00:00:00Z", "2025-04-14T00:00:00Z")  # whole days


def test_unreadable_cursor_means_a_full_round(fake: FakeGraph, reader: OutlookCalendar) -> None:
    seed(fake, 2)

    pages = list(reader.read("not-a-cursor", WINDOW))

    assert pages[0].full
    assert "cursor" in " ".join(pages[0].notes)
    assert len(events_of(pages)) == 2


def test_the_person_can_be_named_by_user_principal_name(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    seed(fake, 2)

    pages = list(OutlookCalendar(calendar_graph, CALENDAR_UPN).read(None, WINDOW))

    assert set(events_of(pages)) == {"e1", "e2"}
    assert fake.count(f"/v1.0/users/{CALENDAR_UPN}/calendarView/delta") == 1


def test_throttling_waits_the_retry_after_and_says_so(fake: FakeGraph, reader: OutlookCalendar, sleeps: Sleeps) -> None:
    seed(fake)
    fake.throttle(2, retry_after="1.5")

    pages = list(reader.read(None, WINDOW))

    assert sleeps.calls == [1.5, 1.5]
    assert "throttled 2\u00d7 by Graph (waited 3s)" in pages[0].notes
    assert len(events_of(pages)) == 7


def test_a_long_retry_after_goes_to_the_worker(fake: FakeGraph, reader: OutlookCalendar, sleeps: Sleeps) -> None:
    fake.throttle(1, retry_after="300")

    with pytest.raises(ConnectorError) as caught:
        list(reader.read(None, WINDOW))
    assert caught.value.retry_after == 300
    assert sleeps.calls == []


def test_without_calendar_permission_the_admin_is_told_which(fake: FakeGraph, reader: OutlookCalendar) -> None:
    fake.identity.apps[CLIENT_ID].permissions = {"User.Read.All"}

    with pytest.raises(ConnectorError) as caught:
        list(reader.read(None, WINDOW))
    assert caught.value.action_required
    assert "Calendars.ReadWrite" in caught.value.message


def test_a_user_without_a_mailbox_is_for_the_admin(calendar_graph: GraphClient) -> None:
    with pytest.raises(ConnectorError) as caught:
        list(OutlookCalendar(calendar_graph, "nobody@contoso.example").read(None, WINDOW))
    assert caught.value.action_required
    assert "mailbox" in caught.value.message


def test_naive_window_is_refused(reader: OutlookCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        list(reader.read(None, Window(datetime(2025, 3, 24), datetime(2025, 4, 1))))

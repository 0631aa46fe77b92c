"""Reading a person's primary calendar through the real client against the fake: full listings over
pages, sync tokens, 410 and moved windows, and what each kind of event becomes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.google import GoogleCalendar, GoogleSettings
from connectors.google.calendar import SyncCursor
from connectors.records import CalendarEvent, CalendarPage, RemovedEvent, Window
from tests.fakes.google import FakeGoogle

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2025, 3, 2, 23, 0, tzinfo=UTC), datetime(2025, 5, 1, 22, 0, tzinfo=UTC))
EVENTS = "calendar/v3/calendars/primary/events"


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=BERLIN)


def read(
    settings: GoogleSettings, person: str, cursor: str | None = None, window: Window = WINDOW, **options: int
) -> list[CalendarPage]:
    return list(GoogleCalendar(settings, person, **options).read(cursor, window))  # type: ignore[arg-type]


def events_of(pages: list[CalendarPage]) -> dict[str, CalendarEvent]:
    return {event.event_id: event for page in pages for event in page.events}


def removed_of(pages: list[CalendarPage]) -> list[str]:
    return [removed.event_id for page in pages for removed in page.removed]


def answer(person: str, response: str) -> dict[str, object]:
    return {"email": person, "self": True, "responseStatus": response}


def listings(fake: FakeGoogle) -> list[dict[str, str]]:
    return [r.query for r in fake.requests if r.path == EVENTS and r.method == "GET"]


def test_full_listing_over_pages(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    ids = [fake.add_event(person, at(3 + n, 9), at(3 + n, 10), f"Meeting {n}") for n in range(5)]
    fake.add_event(person, at(1, 9), at(1, 10), "Before the window")
    fake.add_event(person, at(2, 9, month=5), at(2, 10, month=5), "After the window")

    pages = read(settings, person, page_size=2)

    assert len(pages) == 3
    assert set(events_of(pages)) == set(ids)
    assert all(page.full for page in pages)
    assert [page.last for page in pages] == [False, False, True]
    assert [page.cursor is not None for page in pages] == [False, False, True]
    cursor = SyncCursor.load(pages[-1].cursor or "")
    assert cursor is not None
    assert cursor.sync_token
    assert (cursor.start, cursor.end) == (WINDOW.start, WINDOW.end)
    assert listings(fake)[0] == {
        "singleEvents": "true",
        "maxResults": "2",
        "timeMin": "2025-03-02T23:00:00Z",
        "timeMax": "2025-05-01T22:00:00Z",
        "alt": "json",
    }
    assert "pageToken" in listings(fake)[1]
    assert fake.discovery_requests == 0


def test_timed_event_mapping(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    event_id = fake.add_event(
        person,
        at(4, 14),
        at(4, 15),
        "Planning",
        time_zone="America/New_York",
        location="Room 4.12",
        attendees=[
            {"email": person, "self": True, "responseStatus": "accepted"},
            {"email": "sam@example.com", "responseStatus": "needsAction"},
        ],
    )

    (event,) = events_of(read(settings, person)).values()

    stored = fake.calendar(person).items[event_id]
    assert event == CalendarEvent(
        event_id=event_id,
        start=datetime(2025, 3, 4, 13, tzinfo=UTC),
        end=datetime(2025, 3, 4, 14, tzinfo=UTC),
        ical_uid=f"{event_id}@google.com",
        timezone="America/New_York",
        show_as="busy",
        status="confirmed",
        title="Planning",
        location="Room 4.12",
        attendees=(person, "sam@example.com"),
        etag=stored["etag"],
        updated=datetime.fromisoformat(stored["updated"]),
    )
    assert event.start.tzinfo == UTC


def test_all_day_events_run_midnight_to_midnight_in_the_calendars_zone(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    holiday = fake.add_event(person, date(2025, 3, 28), date(2025, 3, 29), "Holiday", transparency="transparent")
    trip = fake.add_event(person, date(2025, 3, 30), date(2025, 4, 2), "Trip")  # across the DST change

    events = events_of(read(settings, person))

    assert events[holiday].all_day
    assert (events[holiday].start, events[holiday].end) == (
        datetime(2025, 3, 27, 23, tzinfo=UTC),
        datetime(2025, 3, 28, 23, tzinfo=UTC),
    )
    assert events[holiday].timezone == "Europe/Berlin"  # the calendar's: all-day events name none
    assert events[holiday].show_as == "free"
    assert (events[trip].start, events[trip].end) == (
        datetime(2025, 3, 29, 23, tzinfo=UTC),
        datetime(2025, 4, 1, 22, tzinfo=UTC),
    )


def test_recurring_event_with_exdate_moved_and_cancelled_instances(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    series = fake.add_event(
        person,
        at(3, 14),
        at(3, 14) + timedelta(minutes=30),
        "Weekly sync",
        recurrence=["EXDATE;TZID=Europe/Berlin:20250317T140000", "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
    )
    moved = fake.move_instance(person, series, at(24, 14), at(25, 15), at(25, 16), summary="Weekly sync (moved)")
    cancelled = fake.cancel_instance(person, series, at(31, 14))

    events = events_of(read(settings, person))

    # Mondays 3, 10, (17 excluded), 24 (moved), 31 (cancelled), April 7 (after the clocks changed).
    assert sorted(events) == sorted(
        [
            f"{series}_20250303T130000Z",
            f"{series}_20250310T130000Z",
            moved,
            f"{series}_20250407T120000Z",
        ]
    )
    assert cancelled == f"{series}_20250331T120000Z"
    assert events[moved].title == "Weekly sync (moved)"
    assert events[moved].start == datetime(2025, 3, 25, 14, tzinfo=UTC)
    assert events[moved].recurrence_id == "2025-03-24T13:00:00+00:00"
    april = events[f"{series}_20250407T120000Z"]
    assert (april.start, april.recurrence_id) == (datetime(2025, 4, 7, 12, tzinfo=UTC), "2025-04-07T12:00:00+00:00")
    assert len({event.ical_uid for event in events.values()}) == 1


def test_incremental_round_brings_changes_and_cancellations(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    kept = fake.add_event(person, at(5, 9), at(5, 10), "Kept")
    moved = fake.add_event(person, at(6, 9), at(6, 10), "Moved")
    deleted = fake.add_event(person, at(7, 9), at(7, 10), "Deleted")
    series = fake.add_event(person, at(3, 8), at(3, 9), "Daily", recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    cursor = read(settings, person)[-1].cursor

    fake.update_event(person, moved, start=at(6, 11), end=at(6, 12))
    fake.delete_event(person, deleted)
    fake.cancel_instance(person, series, at(4, 8))
    added = fake.add_event(person, at(8, 9), at(8, 10), "Added")
    pages = read(settings, person, cursor)

    assert len(pages) == 1
    assert pages[0].last
    assert not pages[0].full
    events = events_of(pages)
    assert set(events) == {moved, added}
    assert events[moved].start == datetime(2025, 3, 6, 10, tzinfo=UTC)
    assert sorted(removed_of(pages)) == sorted([deleted, f"{series}_20250304T070000Z"])
    assert kept not in events
    incremental = listings(fake)[-1]
    assert incremental["syncToken"] == json.loads(cursor or "")["syncToken"]
    assert not {"timeMin", "timeMax", "showDeleted"} & incremental.keys()  # Google refuses them beside a token

    again = read(settings, person, pages[-1].cursor)  # nothing changed since
    assert again == [CalendarPage(cursor=again[0].cursor, last=True)]


def test_incremental_reports_an_event_moved_out_of_the_window_as_removed(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    event_id = fake.add_event(person, at(5, 9), at(5, 10), "Conference")
    cursor = read(settings, person)[-1].cursor

    fake.update_event(person, event_id, start=at(5, 9, month=6), end=at(5, 10, month=6))
    pages = read(settings, person, cursor)

    assert events_of(pages) == {}
    assert removed_of(pages) == [event_id]


def test_expired_sync_token_starts_a_full_listing_with_a_note(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    event_id = fake.add_event(person, at(5, 9), at(5, 10), "Kept")
    cursor = read(settings, person)[-1].cursor
    fake.expire_sync_tokens(person)

    pages = read(settings, person, cursor)

    assert [page.full for page in pages] == [True]
    assert set(events_of(pages)) == {event_id}
    assert pages[0].notes == ("Google no longer accepts the sync token (fullSyncRequired): read the whole window",)
    assert pages[-1].cursor != cursor
    assert [("syncToken" in q, "timeMin" in q) for q in listings(fake)[-2:]] == [(True, False), (False, True)]
    assert read(settings, person, pages[-1].cursor)[0].full is False  # the new token works


def test_window_moved_past_the_cursor_is_read_in_full(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    fake.add_event(person, at(5, 9), at(5, 10), "Early")
    cursor = read(settings, person)[-1].cursor
    later = Window(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    new_day = fake.add_event(person, at(1, 22, month=5), at(1, 23, month=5), "In the new day")

    pages = read(settings, person, cursor, later)

    assert all(page.full for page in pages)
    assert new_day in events_of(pages)
    assert pages[0].notes == ("the window moved: read the whole window again",)
    stored = SyncCursor.load(pages[-1].cursor or "")
    assert stored is not None
    assert (stored.start, stored.end) == (later.start, later.end)


def test_a_smaller_window_keeps_the_token(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    cursor = read(settings, person)[-1].cursor
    narrower = Window(WINDOW.start + timedelta(days=1), WINDOW.end)

    pages = read(settings, person, cursor, narrower)

    assert not pages[0].full
    assert "syncToken" in listings(fake)[-1]


def test_unreadable_cursor_starts_over(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    pages = read(settings, person, "not-a-cursor")

    assert pages[0].full
    assert pages[0].notes == ("the stored cursor was unreadable: read the whole window again",)


def test_status_events(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    office = fake.add_event(
        person,
        date(2025, 3, 4),
        date(2025, 3, 5),
        "Berlin HQ",
        eventType="workingLocation",
        visibility="public",
        transparency="transparent",
        workingLocationProperties={
            "type": "officeLocation",
            "officeLocation": {"buildingId": "berlin-hq", "deskId": "4E-17", "label": "Berlin HQ"},
        },
    )
    building = fake.add_event(
        person,
        date(2025, 3, 5),
        date(2025, 3, 6),
        eventType="workingLocation",
        visibility="public",
        transparency="transparent",
        workingLocationProperties={"type": "officeLocation", "officeLocation": {"buildingId": "munich-2"}},
    )
    home = fake.add_event(
        person,
        date(2025, 3, 6),
        date(2025, 3, 7),
        "Home",
        eventType="workingLocation",
        visibility="public",
        transparency="transparent",
        workingLocationProperties={"type": "homeOffice", "homeOffice": {}},
    )
    away = fake.add_event(
        person,
        at(10, 0),
        at(15, 0),
        "Out of office",
        eventType="outOfOffice",
        outOfOfficeProperties={"autoDeclineMode": "declineAllConflictingInvitations"},
    )
    declined = fake.add_event(person, at(7, 9), at(7, 10), attendees=[answer(person, "declined")])
    maybe = fake.add_event(person, at(7, 11), at(7, 12), attendees=[answer(person, "tentative")])

    events = events_of(read(settings, person))

    assert (events[office].show_as, events[office].working_location) == ("workingElsewhere", "office")
    assert events[office].working_location_label == "Berlin HQ"
    assert events[building].working_location_label == "munich-2"
    assert (events[home].working_location, events[home].working_location_label) == ("home", None)
    assert events[away].show_as == "oof"
    assert events[away].working_location is None
    assert events[declined].show_as == "free"
    assert events[maybe].show_as == "tentative"


def test_events_deskbridge_wrote_carry_their_booking_id(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    ours = fake.add_event(
        person, at(5, 9), at(5, 17), "Desk 4.12", extendedProperties={"private": {"deskbridgeBookingId": "42"}}
    )
    theirs = fake.add_event(
        person, at(6, 9), at(6, 17), "Other app", extendedProperties={"private": {"deskbridgeBookingId": "x"}}
    )

    events = events_of(read(settings, person))

    assert events[ours].booking_id == 42
    assert events[theirs].booking_id is None


def test_throttled_listing_is_retried_and_noted(
    fake: FakeGoogle, settings: GoogleSettings, person: str, sleeps: list[float]
) -> None:
    fake.add_event(person, at(5, 9), at(5, 10))
    fake.fail(429, retry_after="3", path=EVENTS)
    fake.fail(403, reason="userRateLimitExceeded", path=EVENTS)

    pages = read(settings, person)

    assert sleeps == [3.0, 2.0]  # Retry-After first; then backoff (1 s, doubled after the first retry)
    assert pages[-1].last
    assert pages[0].notes == ("throttled 2× by Google",)  # noqa: RUF001


def test_deleted_series_comes_back_as_cancelled_instances(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    series = fake.add_event(person, at(3, 8), at(3, 9), "Daily", recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    cursor = read(settings, person)[-1].cursor

    fake.delete_event(person, series)
    pages = read(settings, person, cursor)

    assert sorted(removed_of(pages)) == [f"{series}_2025030{d}T070000Z" for d in (3, 4, 5)]
    assert events_of(pages) == {}


def test_removed_event_record(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    event_id = fake.add_event(person, at(5, 9), at(5, 10))
    cursor = read(settings, person)[-1].cursor
    fake.delete_event(person, event_id)

    (page,) = read(settings, person, cursor)

    assert page.removed == (RemovedEvent(event_id),)

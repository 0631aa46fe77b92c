"""Time zones, DST edges, all-day and recurring events, read from the fake Graph in several Prefer zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.microsoft import GraphClient, OutlookCalendar
from connectors.microsoft.calendar_times import iana_name, read_time
from connectors.records import CalendarEvent, Window
from tests.connectors.microsoft.conftest import CALENDAR_USER
from tests.fakes.graph import FakeGraph

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2025, 3, 24, tzinfo=UTC), datetime(2025, 4, 21, tzinfo=UTC))
PREFERRED = ["UTC", "W. Europe Standard Time", "Pacific Standard Time", "Asia/Tokyo"]


def read_all(graph: GraphClient, timezone: str, cursor: str | None = None) -> tuple[dict[str, CalendarEvent], set[str]]:
    pages = list(OutlookCalendar(graph, CALENDAR_USER, timezone=timezone).read(cursor, WINDOW))
    events = {event.event_id: event for page in pages for event in page.events}
    return events, {removed.event_id for page in pages for removed in page.removed}


@pytest.mark.parametrize("preferred", PREFERRED)
def test_an_event_across_the_spring_dst_change(fake: FakeGraph, calendar_graph: GraphClient, preferred: str) -> None:
    # Berlin, night of 29 to 30 March 2025: clocks go from 02:00 CET to 03:00 CEST; four hours, not five.
    start = datetime(2025, 3, 29, 23, 30, tzinfo=BERLIN)
    end = datetime(2025, 3, 30, 4, 30, tzinfo=BERLIN)
    fake.calendars.add_event(CALENDAR_USER, "Night shift", start, end, event_id="night", zone="W. Europe Standard Time")

    events, _ = read_all(calendar_graph, preferred)

    night = events["night"]
    assert (night.start, night.end) == (
        datetime(2025, 3, 29, 22, 30, tzinfo=UTC),
        datetime(2025, 3, 30, 2, 30, tzinfo=UTC),
    )
    assert night.end - night.start == timedelta(hours=4)
    assert night.timezone == "Europe/Berlin"  # the Windows name, translated


@pytest.mark.parametrize("preferred", PREFERRED)
def test_all_day_events_are_days_in_the_organisers_zone(
    fake: FakeGraph, calendar_graph: GraphClient, preferred: str
) -> None:
    fake.calendars.add_event(
        CALENDAR_USER, "Offsite", date(2025, 3, 31), date(2025, 4, 1), event_id="offsite", zone="Pacific Standard Time"
    )
    # Two days over the Berlin DST change: 47 hours long.
    fake.calendars.add_event(
        CALENDAR_USER, "Trip", date(2025, 3, 29), date(2025, 3, 31), event_id="trip", zone="W. Europe Standard Time"
    )
    fake.calendars.add_event(CALENDAR_USER, "Holiday", date(2025, 4, 18), date(2025, 4, 19), event_id="holiday")

    events, _ = read_all(calendar_graph, preferred)

    offsite, trip, holiday = events["offsite"], events["trip"], events["holiday"]
    assert offsite.all_day
    assert (offsite.start, offsite.end) == (datetime(2025, 3, 31, 7, tzinfo=UTC), datetime(2025, 4, 1, 7, tzinfo=UTC))
    assert offsite.timezone == "America/Los_Angeles"
    assert (trip.start, trip.end) == (datetime(2025, 3, 28, 23, tzinfo=UTC), datetime(2025, 3, 30, 22, tzinfo=UTC))
    assert (holiday.start, holiday.end) == (datetime(2025, 4, 18, tzinfo=UTC), datetime(2025, 4, 19, tzinfo=UTC))


@pytest.mark.parametrize("preferred", ["UTC", "Pacific Standard Time"])
def test_weekly_series_with_an_exception_and_cancelled_instances(
    fake: FakeGraph, calendar_graph: GraphClient, preferred: str
) -> None:
    # Mondays 09:00 in Berlin from 24 March: 08:00Z before the DST change, 07:00Z after it.
    series = fake.calendars.add_series(
        CALENDAR_USER,
        "Weekly sync",
        datetime(2025, 3, 24, 9, tzinfo=BERLIN),
        timedelta(hours=1),
        weeks=5,
        zone_name="W. Europe Standard Time",
        series_id="S1",
    )
    fake.calendars.move_occurrence(
        CALENDAR_USER,
        "S1",
        date(2025, 3, 31),
        datetime(2025, 4, 1, 10, tzinfo=BERLIN),
        datetime(2025, 4, 1, 11, tzinfo=BERLIN),
    )
    fake.calendars.cancel_occurrence(CALENDAR_USER, "S1", date(2025, 4, 7))  # deleted
    fake.calendars.cancel_occurrence(CALENDAR_USER, "S1", date(2025, 4, 14), remove=False)  # meeting cancelled

    events, _ = read_all(calendar_graph, preferred)

    instances = sorted(events.values(), key=lambda event: event.start)
    assert [event.recurrence_id for event in instances] == [
        "2025-03-24T08:00:00Z",
        "2025-03-31T07:00:00Z",  # the exception keeps the slot it was moved from
        "2025-04-14T07:00:00Z",
    ]  # 21 April is outside the window, 7 April was deleted
    first, moved, cancelled = instances
    assert (first.start, first.end) == (datetime(2025, 3, 24, 8, tzinfo=UTC), datetime(2025, 3, 24, 9, tzinfo=UTC))
    assert moved.start == datetime(2025, 4, 1, 8, tzinfo=UTC)
    assert cancelled.status == "cancelled"
    assert {event.status for event in (first, moved)} == {"confirmed"}
    assert {event.ical_uid for event in instances} == {series.ical_uid}
    assert len({event.event_id for event in instances}) == 3
    assert {event.timezone for event in instances} == {"Europe/Berlin"}


def test_series_changes_come_incrementally(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    fake.calendars.add_series(
        CALENDAR_USER, "Weekly", datetime(2025, 3, 24, 9, tzinfo=BERLIN), timedelta(hours=1), weeks=3,
        zone_name="Europe/Berlin", series_id="S1",
    )  # fmt: skip
    reader = OutlookCalendar(calendar_graph, CALENDAR_USER)
    cursor = list(reader.read(None, WINDOW))[-1].cursor
    fake.calendars.cancel_occurrence(CALENDAR_USER, "S1", date(2025, 3, 31))

    pages = list(reader.read(cursor, WINDOW))

    assert [event for page in pages for event in page.events] == []
    assert [removed.event_id for page in pages for removed in page.removed] == ["S1_20250331"]

    fake.calendars.rename_series(CALENDAR_USER, "S1", "Renamed")
    pages = list(reader.read(pages[-1].cursor, WINDOW))
    renamed = {event.event_id: event.title for page in pages for event in page.events}
    assert renamed == {"S1_20250324": "Renamed", "S1_20250407": "Renamed"}
    assert not any(page.full for page in pages)


def test_zone_names_graph_uses() -> None:
    assert iana_name("Pacific Standard Time") == "America/Los_Angeles"
    assert iana_name("W. Europe Standard Time") == "Europe/Berlin"
    assert iana_name("tzone://Microsoft/Utc") == "UTC"
    assert iana_name("Europe/Paris") == "Europe/Paris"
    assert iana_name("tzone://Microsoft/Custom") is None
    assert iana_name("../etc/passwd") is None
    assert iana_name(None) is None


def test_reading_times_with_seven_digits_and_a_repeated_hour() -> None:
    value = {"dateTime": "2017-04-15T11:00:00.1234567", "timeZone": "Pacific Standard Time"}
    assert read_time(value) == datetime(2017, 4, 15, 18, 0, 0, 123456, tzinfo=UTC)
    # 02:30 happens twice in Berlin on 26 October 2025; Exchange means the first (CEST).
    repeated = {"dateTime": "2025-10-26T02:30:00.0000000", "timeZone": "W. Europe Standard Time"}
    assert read_time(repeated) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert read_time({"dateTime": "2025-01-01T10:00:00", "timeZone": "Mars/Olympus"}) == datetime(
        2025, 1, 1, 10, tzinfo=UTC
    )

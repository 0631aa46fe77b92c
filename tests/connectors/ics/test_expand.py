"""Expanding and translating calendars written for the case: time zones, DST, series, show-as, identity."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connectors.records import Window
from tests.connectors.ics.conftest import WIDE, at, calendar, day, read, titles, window


def test_spring_forward_gap_uses_the_offset_before_it() -> None:
    # 2024-03-31 02:30 does not exist in Berlin; RFC 5545: read it with the offset before the gap (+01:00).
    data = calendar("UID:gap\nDTSTART;TZID=Europe/Berlin:20240331T023000\nDTEND;TZID=Europe/Berlin:20240331T033000")
    (event,) = read(data, WIDE).events
    assert event.start == at(2024, 3, 31, 1, 30)
    assert event.end == at(2024, 3, 31, 1, 30)  # 03:30 CEST is the same instant: a zero-length event
    assert event.timezone == "Europe/Berlin"


def test_weekly_series_keeps_wall_clock_time_across_dst() -> None:
    data = calendar("UID:weekly\nDTSTART;TZID=Europe/Berlin:20240324T023000\nDURATION:PT1H\nRRULE:FREQ=WEEKLY;COUNT=3")
    found = read(data, WIDE).events
    assert [event.start for event in found] == [at(2024, 3, 24, 1, 30), at(2024, 3, 31, 1, 30), at(2024, 4, 7, 0, 30)]
    assert [event.recurrence_id for event in found] == [
        "2024-03-24T01:30:00Z",
        "2024-03-31T01:30:00Z",
        "2024-04-07T00:30:00Z",
    ]


def test_fall_back_ambiguity_takes_the_first() -> None:
    data = calendar("UID:fold\nDTSTART;TZID=Europe/Berlin:20241027T023000\nDURATION:PT30M")
    (event,) = read(data, WIDE).events
    assert event.start == at(2024, 10, 27, 0, 30)  # 02:30 CEST, the first 02:30 of the night


def test_windows_zone_with_its_vtimezone() -> None:
    head = "\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:W. Europe Standard Time",
            "BEGIN:STANDARD",
            "DTSTART:16010101T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:16010101T020000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
            "END:DAYLIGHT",
            "END:VTIMEZONE",
        ]
    )
    data = calendar("UID:w\nDTSTART;TZID=W. Europe Standard Time:20240701T090000\nDURATION:PT1H", head=head)
    (event,) = read(data, WIDE).events
    assert event.start == at(2024, 7, 1, 7)
    assert event.timezone == "Europe/Berlin"


def test_all_day_runs_midnight_to_midnight_in_the_calendars_zone() -> None:
    event_body = "UID:day\nDTSTART;VALUE=DATE:20240610\nDTEND;VALUE=DATE:20240612"
    (utc,) = read(calendar(event_body), WIDE).events
    assert utc.all_day
    assert utc.timezone is None
    assert (utc.start, utc.end) == (at(2024, 6, 10), at(2024, 6, 12))
    (tokyo,) = read(calendar(event_body, head="X-WR-TIMEZONE:Asia/Tokyo"), WIDE).events
    assert (tokyo.start, tokyo.end) == (at(2024, 6, 10, zone="Asia/Tokyo"), at(2024, 6, 12, zone="Asia/Tokyo"))
    assert tokyo.timezone == "Asia/Tokyo"
    # The feed's own zone wins over the member's default.
    (still,) = read(calendar(event_body, head="X-WR-TIMEZONE:Asia/Tokyo"), WIDE, default_timezone="Europe/Paris").events
    assert still.start == tokyo.start
    # A one-day event without DTEND lasts the day; the next day's window does not see it.
    data = calendar("UID:one\nDTSTART;VALUE=DATE:20240610")
    (single,) = read(data, day(2024, 6, 10)).events
    assert single.end - single.start == timedelta(days=1)
    assert read(data, day(2024, 6, 11)).events == ()
    assert read(data, day(2024, 6, 9)).events == ()


def test_floating_times_use_the_default_zone() -> None:
    data = calendar("UID:float\nDTSTART:20240610T090000\nDTEND:20240610T100000")
    (utc,) = read(data, WIDE).events
    assert utc.start == at(2024, 6, 10, 9)
    assert utc.timezone is None
    (paris,) = read(data, WIDE, default_timezone="Europe/Paris").events
    assert paris.start == at(2024, 6, 10, 9, zone="Europe/Paris")
    assert paris.timezone == "Europe/Paris"
    (windows,) = read(data, WIDE, default_timezone="Romance Standard Time").events
    assert windows.start == paris.start
    assert windows.timezone == "Europe/Paris"


def test_series_with_exdate_override_and_cancelled_instance() -> None:
    master = "\n".join(
        [
            "UID:standup",
            "SUMMARY:Stand-up",
            "DTSTART;TZID=Europe/Berlin:20240603T093000",
            "DTEND;TZID=Europe/Berlin:20240603T094500",
            "RRULE:FREQ=DAILY;COUNT=5",
            "EXDATE;TZID=Europe/Berlin:20240604T093000",
        ]
    )
    moved = "\n".join(
        [
            "UID:standup",
            "RECURRENCE-ID;TZID=Europe/Berlin:20240605T093000",
            "SUMMARY:Stand-up (late)",
            "DTSTART;TZID=Europe/Berlin:20240605T113000",
            "DTEND;TZID=Europe/Berlin:20240605T114500",
        ]
    )
    cancelled = "\n".join(
        [
            "UID:standup",
            "RECURRENCE-ID;TZID=Europe/Berlin:20240606T093000",
            "STATUS:CANCELLED",
            "SUMMARY:Stand-up",
            "DTSTART;TZID=Europe/Berlin:20240606T093000",
            "DTEND;TZID=Europe/Berlin:20240606T094500",
        ]
    )
    found = read(calendar(master, moved, cancelled), WIDE).events
    assert [(e.start.day, e.title, e.status) for e in found] == [
        (3, "Stand-up", "confirmed"),
        (5, "Stand-up (late)", "confirmed"),
        (6, "Stand-up", "cancelled"),
        (7, "Stand-up", "confirmed"),
    ]
    assert found[1].start == at(2024, 6, 5, 11, 30, zone="Europe/Berlin")
    assert found[1].event_id == "standup/2024-06-05T07:30:00Z"  # named by the slot it was moved from
    assert found[2].show_as == "free"
    assert {e.ical_uid for e in found} == {"standup"}
    # The moved instance is found where it now is, not where it was.
    assert titles(read(calendar(master, moved, cancelled), window(at(2024, 6, 5, 9), timedelta(hours=1))).events) == [
        "Stand-up (late)"
    ]


@pytest.mark.parametrize(
    ("lines", "show_as", "status"),
    [
        ("", "busy", "confirmed"),
        ("TRANSP:TRANSPARENT", "free", "confirmed"),
        ("STATUS:TENTATIVE", "tentative", "tentative"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:OOF", "oof", "confirmed"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", "tentative", "confirmed"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:FREE\nTRANSP:OPAQUE", "free", "confirmed"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:BUSY\nTRANSP:TRANSPARENT", "busy", "confirmed"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:WORKINGELSEWHERE", "workingElsewhere", "confirmed"),
        ("STATUS:CANCELLED", "free", "cancelled"),
    ],
)
def test_show_as_and_status(lines: str, show_as: str, status: str) -> None:
    (event,) = read(calendar(f"UID:s\nDTSTART:20240610T090000Z\nDURATION:PT1H\n{lines}"), WIDE).events
    assert (event.show_as, event.status) == (show_as, status)


def test_details_attendees_categories_booking_id_updated() -> None:
    body = "\n".join(
        [
            "UID:d",
            "DTSTART:20240610T090000Z",
            "DTEND:20240610T100000Z",
            "SUMMARY:Planning\\, Q3",
            "LOCATION:Room 4.12",
            "CATEGORIES:Office,Team",
            "ATTENDEE;CN=Ann:mailto:ann@example.com",
            "ATTENDEE;CN=Ann again:MAILTO:ann@example.com",
            "ATTENDEE:urn:uuid:00000000-0000-0000-0000-000000000000",
            "ATTENDEE:mailto:bob@example.com",
            "LAST-MODIFIED:20240601T120000Z",
            "X-DESKBRIDGE-BOOKING-ID:42",
        ]
    )
    (event,) = read(calendar(body), WIDE).events
    assert (event.title, event.location) == ("Planning, Q3", "Room 4.12")
    assert event.categories == ("Office", "Team")
    assert event.attendees == ("ann@example.com", "bob@example.com")
    assert event.updated == at(2024, 6, 1, 12)
    assert event.booking_id == 42
    assert (event.event_id, event.ical_uid, event.recurrence_id) == ("d", "d", None)
    (garbled,) = read(calendar(body.replace(":42", ":forty-two")), WIDE).events
    assert garbled.booking_id is None


def test_etag_follows_content_not_dtstamp() -> None:
    body = "UID:e\nDTSTART:20240610T090000Z\nDURATION:PT1H\nSUMMARY:A\nDTSTAMP:{stamp}\nLAST-MODIFIED:{stamp}"
    first = read(calendar(body.format(stamp="20240101T000000Z")), WIDE).events[0]
    restamped = read(calendar(body.format(stamp="20240202T000000Z")), WIDE).events[0]
    renamed = read(calendar(body.format(stamp="20240101T000000Z").replace("SUMMARY:A", "SUMMARY:B")), WIDE).events[0]
    assert first.etag == restamped.etag
    assert first.etag != renamed.etag


def test_one_unreadable_series_does_not_sink_the_others() -> None:
    good = "UID:good\nDTSTART:20240610T090000Z\nDURATION:PT1H\nSUMMARY:Fine"
    bad = "UID:bad\nDTSTART:2024-06-10 09:00\nDURATION:PT1H\nSUMMARY:Broken"
    found = read(calendar(good, bad), WIDE)
    assert titles(found.events) == ["Fine"]
    assert len(found.notes) == 1
    assert found.notes[0].startswith("skipped 1 series that could not be read (bad: ")


def test_events_without_uid_get_stable_ids() -> None:
    data = calendar("DTSTART:20240610T090000Z\nSUMMARY:One", "DTSTART:20240611T090000Z\nSUMMARY:Two")
    first, second = read(data, WIDE).events
    assert first.event_id != second.event_id
    assert first.ical_uid is None
    assert [e.event_id for e in read(data, WIDE).events] == [first.event_id, second.event_id]


def test_event_ids_never_repeat_in_a_page() -> None:
    # Two masters with one UID: recurring-ical-events keeps one.
    body = "UID:twice\nDTSTART:20240610T090000Z\nDURATION:PT1H\nSUMMARY:{}"
    assert len(read(calendar(body.format("First"), body.format("Second")), WIDE).events) == 1
    # A UID that looks like another series' instance id: the first one listed stays, the page says so.
    single = "UID:a/2024-06-10T09:00:00Z\nDTSTART:20240610T090000Z\nSUMMARY:Single"
    series = "UID:a\nDTSTART:20240610T090000Z\nRRULE:FREQ=DAILY;COUNT=2\nSUMMARY:Series"
    found = read(calendar(single, series), WIDE)
    assert titles(found.events) == ["Single", "Series"]
    assert found.notes == ("ignored 1 duplicate occurrence(s) (events sharing a UID)",)


def test_unknown_x_wr_timezone_is_noted_and_ignored() -> None:
    found = read(calendar("UID:x\nDTSTART:20240610T090000\nDURATION:PT1H", head="X-WR-TIMEZONE:Mars/Olympus"), WIDE)
    assert found.events[0].start == at(2024, 6, 10, 9)
    assert found.notes == ("ignored the unknown calendar time zone X-WR-TIMEZONE 'Mars/Olympus'",)


def test_window_edges_are_half_open() -> None:
    data = calendar("UID:w\nDTSTART:20240610T090000Z\nDTEND:20240610T100000Z")
    assert read(data, window(at(2024, 6, 10, 10), timedelta(hours=1))).events == ()
    assert read(data, window(at(2024, 6, 10, 8), timedelta(hours=1))).events == ()
    assert len(read(data, window(at(2024, 6, 10, 9, 59), timedelta(minutes=1))).events) == 1


def test_a_naive_window_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        read(calendar("UID:n\nDTSTART:20240610T090000Z"), Window(datetime(2024, 1, 1), datetime(2025, 1, 1)))

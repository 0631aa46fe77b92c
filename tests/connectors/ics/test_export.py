"""The bookings feed format: valid RFC 5545 that icalendar and our own reader read back as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import icalendar
import pytest

from connectors.ics import expand, parse, render
from connectors.records import BookingEntry, Window

STAMP = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
BERLIN_SUMMER = timezone(timedelta(hours=2))


def entry(booking_id: int = 7, **changes: object) -> BookingEntry:
    values: dict[str, object] = {
        "booking_id": booking_id,
        "start": datetime(2024, 6, 10, 9, 0, tzinfo=BERLIN_SUMMER),
        "end": datetime(2024, 6, 10, 17, 30, tzinfo=BERLIN_SUMMER),
        "timezone": "Europe/Berlin",
        "title": "Desk 4.12 (deskbridge)",
        "location": "Desk 4.12, HQ, floor 4",
        "office_label": "HQ",
        "sequence": 2,
    }
    values.update(changes)
    return BookingEntry(**values)  # type: ignore[arg-type]


def rendered(*entries: BookingEntry, cancelled: frozenset[int] = frozenset()) -> bytes:
    return render(entries, name="Ann's desks", domain="desks.example.com", cancelled=cancelled, stamp=STAMP)


def test_round_trip_through_icalendar() -> None:
    data = rendered(entry(7), entry(8, sequence=5, location=""), cancelled=frozenset({8}))
    parsed = icalendar.Calendar.from_ical(data)
    assert str(parsed["PRODID"]) == "-//deskbridge//bookings//EN"
    assert (str(parsed["VERSION"]), str(parsed["METHOD"]), str(parsed["X-WR-CALNAME"])) == (
        "2.0",
        "PUBLISH",
        "Ann's desks",
    )
    assert str(parsed["X-PUBLISHED-TTL"]) == "PT1H"
    first, second = parsed.walk("VEVENT")
    assert str(first["UID"]) == "booking-7@desks.example.com"
    assert first.decoded("DTSTART") == datetime(2024, 6, 10, 7, 0, tzinfo=UTC)
    assert first.decoded("DTEND") == datetime(2024, 6, 10, 15, 30, tzinfo=UTC)
    assert first.decoded("DTSTAMP") == STAMP
    assert (str(first["SUMMARY"]), str(first["LOCATION"])) == ("Desk 4.12 (deskbridge)", "Desk 4.12, HQ, floor 4")
    assert (first["SEQUENCE"], str(first["STATUS"]), str(first["X-DESKBRIDGE-BOOKING-ID"])) == (2, "CONFIRMED", "7")
    assert (second["SEQUENCE"], str(second["STATUS"])) == (5, "CANCELLED")
    assert "LOCATION" not in second
    assert b"DTSTART:20240610T070000Z\r\n" in data  # UTC, no VTIMEZONE needed
    assert b"VTIMEZONE" not in data


def test_lines_are_crlf_and_folded_at_75_octets() -> None:
    long_title = "Schreibtisch 4.12 · Großraumbüro Süd, Überlauf " * 4  # multi-byte characters across the fold
    data = rendered(entry(title=long_title))
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)  # the title was folded
    for line in lines:
        line.decode("utf-8")  # never folded inside a character
    assert str(icalendar.Calendar.from_ical(data).walk("VEVENT")[0]["SUMMARY"]) == long_title


def test_same_bookings_same_bytes() -> None:
    assert rendered(entry(7), entry(8)) == rendered(entry(7), entry(8))
    assert rendered(entry(7)) != rendered(entry(7, sequence=3))


def test_our_reader_reads_the_booking_back() -> None:
    data = rendered(entry(7), entry(8), cancelled=frozenset({8}))
    calendar, notes = parse(data, where="test")
    found = expand(calendar, Window(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)))
    assert notes == ()
    assert found.notes == ()
    mine, gone = found.events
    assert (mine.booking_id, mine.ical_uid, mine.event_id) == (
        7,
        "booking-7@desks.example.com",
        "booking-7@desks.example.com",
    )
    assert (mine.start, mine.end) == (entry().start, entry().end)
    assert (mine.status, mine.show_as, mine.timezone) == ("confirmed", "free", "UTC")
    assert (gone.booking_id, gone.status) == (8, "cancelled")


def test_an_empty_feed_is_still_a_calendar() -> None:
    parsed = icalendar.Calendar.from_ical(rendered())
    assert parsed.walk("VEVENT") == []
    assert str(parsed["X-WR-CALNAME"]) == "Ann's desks"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="booking 9"):
        rendered(entry(9, start=datetime(2024, 6, 10, 9)))

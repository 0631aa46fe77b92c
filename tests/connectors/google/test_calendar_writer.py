"""Writing bookings into a person's calendar: working-location entries (or plain events where Google
refuses them), updates, deletes, and idempotency by the booking id in the private extended property."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.google import GoogleCalendar, GoogleCalendarWriter, GoogleSettings
from connectors.records import BookingEntry, ConnectorError, Window
from tests.fakes.google import FakeGoogle

BERLIN = ZoneInfo("Europe/Berlin")
EVENTS = "calendar/v3/calendars/primary/events"
ENTRY = BookingEntry(
    booking_id=42,
    start=datetime(2025, 3, 5, 8, tzinfo=UTC),
    end=datetime(2025, 3, 5, 16, tzinfo=UTC),
    timezone="Europe/Berlin",
    title="Desk 4.12 (deskbridge)",
    location="Desk 4.12, Floor 4, Berlin HQ",
    office_label="Berlin HQ",
)


def writer(settings: GoogleSettings, person: str, **options: Any) -> GoogleCalendarWriter:
    return GoogleCalendarWriter(settings, person, **options)


def live(fake: FakeGoogle, person: str) -> list[dict[str, Any]]:
    return fake.calendar(person).live()


def writes(fake: FakeGoogle) -> list[str]:
    return [r.method for r in fake.requests if r.path.startswith(EVENTS) and r.method != "GET"]


def test_a_booking_becomes_a_working_location_entry(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    event_id = writer(settings, person).put(ENTRY, None)

    (item,) = live(fake, person)
    assert item["id"] == event_id
    assert item["eventType"] == "workingLocation"
    assert item["workingLocationProperties"] == {"type": "officeLocation", "officeLocation": {"label": "Berlin HQ"}}
    assert (item["visibility"], item["transparency"]) == ("public", "transparent")
    assert item["start"] == {"dateTime": "2025-03-05T09:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert item["end"] == {"dateTime": "2025-03-05T17:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert item["extendedProperties"] == {"private": {"deskbridgeBookingId": "42"}}
    insert = next(r for r in fake.requests if r.method == "POST" and r.path == EVENTS)
    assert insert.query["sendUpdates"] == "none"
    assert fake.discovery_requests == 0


def test_plain_event_where_working_locations_are_off(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    fake.calendar(person).working_location = False
    calendar_writer = writer(settings, person)

    event_id = calendar_writer.put(ENTRY, None)

    (item,) = live(fake, person)
    assert item["id"] == event_id
    assert item["eventType"] == "default"
    assert (item["summary"], item["location"], item["transparency"]) == (
        ENTRY.title,
        ENTRY.location,
        "opaque",
    )
    assert item["extendedProperties"] == {"private": {"deskbridgeBookingId": "42"}}
    assert calendar_writer.working_location is False  # remembered: the next booking goes straight to a plain event
    calendar_writer.put(dataclasses.replace(ENTRY, booking_id=43), None)
    assert writes(fake) == ["POST", "POST", "POST"]


def test_forced_working_location_refused_is_an_error(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    fake.calendar(person).working_location = False

    with pytest.raises(ConnectorError, match="Working locations are not enabled"):
        writer(settings, person, working_location=True).put(ENTRY, None)

    assert live(fake, person) == []


def test_plain_events_by_choice(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    writer(settings, person, working_location=False).put(ENTRY, None)

    (item,) = live(fake, person)
    assert item["eventType"] == "default"
    assert writes(fake) == ["POST"]


def test_update_keeps_the_event_and_its_type(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    calendar_writer = writer(settings, person)
    event_id = calendar_writer.put(ENTRY, None)
    moved = dataclasses.replace(ENTRY, start=ENTRY.start + timedelta(days=1), end=ENTRY.end + timedelta(days=1))

    assert calendar_writer.put(dataclasses.replace(moved, office_label="Munich"), event_id) == event_id

    (item,) = live(fake, person)
    assert item["start"]["dateTime"] == "2025-03-06T09:00:00+01:00"
    assert item["workingLocationProperties"]["officeLocation"]["label"] == "Munich"
    assert item["sequence"] == 1
    assert writes(fake) == ["POST", "PUT"]


def test_plain_event_stays_plain_when_updated(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    # Written while working locations were off; Google will not change an event's type afterwards.
    event_id = writer(settings, person, working_location=False).put(ENTRY, None)

    writer(settings, person).put(dataclasses.replace(ENTRY, title="Desk 5.01 (deskbridge)"), event_id)

    (item,) = live(fake, person)
    assert (item["id"], item["eventType"], item["summary"]) == (event_id, "default", "Desk 5.01 (deskbridge)")


def test_a_retried_create_finds_the_first_event(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    first = writer(settings, person).put(ENTRY, None)  # the worker crashed before keeping this id

    again = writer(settings, person).put(ENTRY, None)

    assert again == first
    assert len(live(fake, person)) == 1
    lookup = [r.query for r in fake.requests if r.method == "GET" and r.path == EVENTS][-1]
    assert lookup["privateExtendedProperty"] == "deskbridgeBookingId=42"


def test_an_insert_whose_answer_was_lost_is_retried_without_a_duplicate(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    # Google makes the event but answers after our timeout: the retried insert meets our own id (409).
    fake.stall(0.6, path=EVENTS, method="POST")
    sleeps: list[float] = []

    def pause(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(0.6)  # long enough for the stalled insert to be done at Google's end

    calendar_writer = writer(dataclasses.replace(settings, timeout=0.3, sleep=pause), person)

    event_id = calendar_writer.put(ENTRY, None)

    assert event_id == "deskbridge42"
    assert [item["id"] for item in live(fake, person)] == [event_id]
    assert sleeps == [1.0]
    assert writes(fake) == ["POST", "POST", "PUT"]  # insert (lost), insert (409), update


def test_a_stored_id_that_was_deleted_is_brought_back(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    calendar_writer = writer(settings, person)
    deleted = calendar_writer.put(ENTRY, None)
    fake.delete_event(person, deleted)  # the person deleted it in their calendar

    again = calendar_writer.put(ENTRY, deleted)

    assert again == deleted  # Google keeps a deleted event's id: the insert meets it and revives it
    (item,) = live(fake, person)
    assert (item["id"], item["status"]) == (deleted, "confirmed")


def test_an_unknown_stored_id_is_looked_up_by_booking(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    calendar_writer = writer(settings, person)
    created = calendar_writer.put(ENTRY, None)

    assert calendar_writer.put(ENTRY, "nosuchevent") == created
    assert len(live(fake, person)) == 1


def test_a_stored_id_of_someone_elses_event_is_never_overwritten(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    theirs = fake.add_event(person, datetime(2025, 3, 5, 9, tzinfo=BERLIN), datetime(2025, 3, 5, 10, tzinfo=BERLIN))

    ours = writer(settings, person).put(ENTRY, theirs)

    assert ours != theirs
    assert {item["id"] for item in live(fake, person)} == {theirs, ours}
    assert fake.calendar(person).items[theirs]["summary"] == ""
    assert "extendedProperties" not in fake.calendar(person).items[theirs]


def test_duplicates_from_the_past_are_cleaned_up(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    marker = {"private": {"deskbridgeBookingId": "42"}}
    first = fake.add_event(person, ENTRY.start, ENTRY.end, "Desk", extendedProperties=marker, id="aaaaaaaaaa")
    fake.add_event(person, ENTRY.start, ENTRY.end, "Desk", extendedProperties=marker, id="bbbbbbbbbb")

    assert writer(settings, person).put(ENTRY, None) == first
    assert [item["id"] for item in live(fake, person)] == [first]


def test_delete_is_idempotent(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    calendar_writer = writer(settings, person)
    event_id = calendar_writer.put(ENTRY, None)

    calendar_writer.delete(event_id)
    calendar_writer.delete(event_id)  # Google answers 410 deleted
    calendar_writer.delete("never-existed")  # and 404 here

    assert live(fake, person) == []
    assert writes(fake) == ["POST", "DELETE", "DELETE", "DELETE"]


def test_throttled_write_is_retried(
    fake: FakeGoogle, settings: GoogleSettings, person: str, sleeps: list[float]
) -> None:
    fake.fail(403, reason="rateLimitExceeded", path=EVENTS)
    fake.fail(429, retry_after="5", path=EVENTS)

    writer(settings, person).put(ENTRY, None)

    assert sleeps == [1.0, 5.0]
    assert len(live(fake, person)) == 1


def test_our_event_comes_back_with_its_booking_id(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    event_id = writer(settings, person).put(ENTRY, None)
    window = Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))

    (page,) = GoogleCalendar(settings, person).read(None, window)

    (event,) = page.events
    assert (event.event_id, event.booking_id) == (event_id, 42)
    assert (event.working_location, event.working_location_label) == ("office", "Berlin HQ")
    assert (event.start, event.end) == (ENTRY.start, ENTRY.end)

"""OutlookCalendarWriter against the fake Graph: create, update, delete, idempotency, echo, throttling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.microsoft import GraphClient, OutlookCalendar, OutlookCalendarWriter
from connectors.microsoft.calendar_events import BOOKING_PROPERTY
from connectors.records import BookingEntry, ConnectorError, Window
from tests.connectors.microsoft.conftest import CALENDAR_USER, CLIENT_ID, Sleeps
from tests.fakes.graph import FakeGraph
from tests.fakes.graph.calendars import Event

WINDOW = Window(datetime(2025, 3, 24, tzinfo=UTC), datetime(2025, 4, 14, tzinfo=UTC))
ENTRY = BookingEntry(
    booking_id=42,
    start=datetime(2025, 3, 31, 7, tzinfo=UTC),  # 09:00 in Berlin (CEST)
    end=datetime(2025, 3, 31, 15, tzinfo=UTC),
    timezone="Europe/Berlin",
    title="Desk 4.12 (deskbridge)",
    location="Desk 4.12, HQ, floor 4",
    office_label="HQ",
)


@pytest.fixture
def writer(calendar_graph: GraphClient) -> OutlookCalendarWriter:
    return OutlookCalendarWriter(calendar_graph, CALENDAR_USER)


def stored(fake: FakeGraph) -> list[Event]:
    calendar = fake.calendars.calendar(CALENDAR_USER)
    assert calendar is not None
    return list(calendar.events.values())


def test_create_writes_the_booking_with_its_ids(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    event_id = writer.put(ENTRY, None)

    (event,) = stored(fake)
    assert event.id == event_id
    assert (event.subject, event.location) == ("Desk 4.12 (deskbridge)", "Desk 4.12, HQ, floor 4")
    assert (event.start, event.end) == (ENTRY.start, ENTRY.end)
    assert event.zone == "Europe/Berlin"  # written in the organisation's zone, as the person sees it
    assert (event.show_as, event.categories, event.all_day) == ("workingElsewhere", ["deskbridge"], False)
    assert event.transaction_id == "deskbridge-booking-42-0"
    assert event.properties == {BOOKING_PROPERTY: "42"}


def test_a_create_sent_twice_makes_one_event(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    # The lookup by extended property finds the first one.
    first = writer.put(ENTRY, None)
    second = writer.put(ENTRY, None)

    assert first == second
    assert len(stored(fake)) == 1
    assert fake.count("/v1.0/users/u1/events", method="POST") == 1


def test_graph_dedupes_by_transaction_id_when_the_lookup_misses(
    fake: FakeGraph, writer: OutlookCalendarWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the first POST's answer was lost and the event not yet findable: same transactionId.
    monkeypatch.setattr(writer, "find", lambda booking_id: None)

    first = writer.put(ENTRY, None)
    second = writer.put(ENTRY, None)

    assert first == second
    assert len(stored(fake)) == 1
    assert fake.count("/v1.0/users/u1/events", method="POST") == 2


def test_update_patches_the_stored_event(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    event_id = writer.put(ENTRY, None)
    later = replace(
        ENTRY, start=datetime(2025, 4, 1, 7, tzinfo=UTC), end=datetime(2025, 4, 1, 11, tzinfo=UTC), sequence=1
    )

    assert writer.put(later, event_id) == event_id

    (event,) = stored(fake)
    assert (event.start, event.end) == (later.start, later.end)
    assert event.transaction_id == "deskbridge-booking-42-0"  # cannot change; the PATCH leaves it out
    assert fake.count("/v1.0/users/u1/events/", method="PATCH") == 1


def test_without_an_id_an_existing_event_is_found_and_updated(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    event_id = writer.put(ENTRY, None)
    moved = replace(ENTRY, title="Desk 5.01 (deskbridge)", sequence=1)

    assert writer.put(moved, None) == event_id

    (event,) = stored(fake)
    assert event.subject == "Desk 5.01 (deskbridge)"


def test_an_event_deleted_in_outlook_is_made_again(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    event_id = writer.put(ENTRY, None)
    fake.calendars.delete_event(CALENDAR_USER, event_id)

    again = writer.put(ENTRY, event_id)

    assert again != event_id
    (event,) = stored(fake)
    assert event.id == again
    assert event.properties == {BOOKING_PROPERTY: "42"}
    assert event.transaction_id is not None
    assert event.transaction_id.startswith("deskbridge-booking-42-0-")


def test_delete_and_delete_again(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    event_id = writer.put(ENTRY, None)

    writer.delete(event_id)
    writer.delete(event_id)  # already gone: fine

    assert stored(fake) == []
    assert fake.count("/v1.0/users/u1/events/", method="DELETE") == 2


def test_our_event_comes_back_with_its_booking_id(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    writer = OutlookCalendarWriter(calendar_graph, CALENDAR_USER)
    reader = OutlookCalendar(calendar_graph, CALENDAR_USER)
    fake.calendars.add_event(
        CALENDAR_USER, "Own meeting", datetime(2025, 3, 25, 9, tzinfo=UTC), datetime(2025, 3, 25, 10, tzinfo=UTC)
    )
    cursor = list(reader.read(None, WINDOW))[-1].cursor
    event_id = writer.put(ENTRY, None)

    (ours,) = [event for page in reader.read(cursor, WINDOW) for event in page.events]

    assert ours.event_id == event_id
    assert ours.booking_id == 42
    assert ours.categories == ("deskbridge",)
    assert ours.show_as == "workingElsewhere"
    assert ours.timezone == "Europe/Berlin"
    full = {event.title: event.booking_id for page in reader.read(None, WINDOW) for event in page.events}
    assert full == {"Own meeting": None, "Desk 4.12 (deskbridge)": 42}


def test_busy_can_be_chosen(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    OutlookCalendarWriter(calendar_graph, CALENDAR_USER, show_as="busy").put(ENTRY, None)

    assert stored(fake)[0].show_as == "busy"


def test_throttled_writes_are_retried_after_the_wait(
    fake: FakeGraph, writer: OutlookCalendarWriter, sleeps: Sleeps
) -> None:
    fake.throttle(2, retry_after="2")

    writer.put(ENTRY, None)

    assert sleeps.calls == [2.0, 2.0]
    assert len(stored(fake)) == 1


def test_a_read_only_grant_is_for_the_admin(fake: FakeGraph, writer: OutlookCalendarWriter) -> None:
    fake.identity.apps[CLIENT_ID].permissions = {"Calendars.Read"}
    fake.calendars.add_event(
        CALENDAR_USER, "Other", datetime(2025, 3, 25, 9, tzinfo=UTC), datetime(2025, 3, 25, 10, tzinfo=UTC)
    )

    with pytest.raises(ConnectorError) as caught:
        writer.put(ENTRY, "AAMkAD000001=")
    assert caught.value.action_required
    assert "Calendars.ReadWrite" in caught.value.message

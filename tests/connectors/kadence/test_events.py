"""Bookings in the window as people's office days: paging, the date filters, statuses, changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from connectors.kadence import Kadence, KadenceEvent, kadence_status
from connectors.records import CalendarEvent, PeoplePage, PersonEvent, Window
from tests.connectors.kadence.conftest import WINDOW, Office, Sleeps, at, make_reader
from tests.fakes.kadence import FakeKadence

BOOKINGS = "/v1/public/bookings"


def events_of(pages: list[PeoplePage]) -> dict[str, PersonEvent]:
    return {item.event.event_id: item for page in pages for item in page.events}


def test_first_read_over_several_pages(fake: FakeKadence, reader: Kadence, office: Office) -> None:
    first = fake.add_booking(office.ada, office.desk1, at(4, 9), at(4, 17))
    others = [fake.add_booking(office.bob, office.desk2, at(day, 9), at(day, 17)) for day in (5, 6, 7, 8)]

    pages = list(reader.events(None, WINDOW))

    assert len(pages) == 3  # 5 bookings, 2 a page
    assert all(page.full for page in pages)
    assert [page.cursor for page in pages] == [None, None, "2024-03-01T12:00:00+00:00"]
    assert [page.last for page in pages] == [False, False, True]
    events = events_of(pages)
    assert list(events) == [f"booking:{ulid}" for ulid in (first, *others)]
    assert events[f"booking:{first}"] == KadenceEvent(
        person="ada@example.com",
        booking_reason="WFO",
        status="booked",
        event=CalendarEvent(
            event_id=f"booking:{first}",
            start=at(4, 9),
            end=at(4, 17),
            timezone="Europe/London",
            show_as="workingElsewhere",
            status="confirmed",
            title="Desk 01",
            location="Desk 01, Floor 1, London Office",
            categories=("kadence:booked",),
            working_location="office",
            working_location_label="Desk 01",
            etag=f"{fake.bookings[first].updated.isoformat()}/booked",
            updated=fake.bookings[first].updated,
        ),
    )
    pages_asked = [r.query["page"] for r in fake.requests if r.path == BOOKINGS]
    assert pages_asked == ["1", "2", "3"]


def test_the_window_is_asked_with_the_documented_filters(fake: FakeKadence, reader: Kadence, office: Office) -> None:
    before = fake.add_booking(office.ada, office.desk1, at(3, 9), at(4, 0))  # ends as the window starts
    across = fake.add_booking(office.ada, office.desk1, at(3, 22), at(4, 2))  # runs into the window
    inside = fake.add_booking(office.bob, office.desk2, at(10, 9), at(10, 17))
    after = fake.add_booking(office.bob, office.desk2, at(11, 0), at(11, 8))  # starts as the window ends

    events = events_of(list(reader.events(None, WINDOW)))

    assert set(events) == {f"booking:{across}", f"booking:{inside}"}
    assert f"booking:{before}" not in events
    assert f"booking:{after}" not in events
    query = next(r.query for r in fake.requests if r.path == BOOKINGS)
    assert query["startDateTime[strictly_before]"] == "2024-03-11T00:00:00"
    assert query["endDateTime[strictly_after]"] == "2024-03-04T00:00:00"
    assert query["order[startDate]"] == "asc"


def test_window_edges_in_other_zones_are_sent_in_utc_rounded_outward(
    fake: FakeKadence, reader: Kadence, office: Office
) -> None:
    paris = timezone(timedelta(hours=1))
    window = Window(datetime(2024, 3, 4, 9, 30, 15, 500, tzinfo=paris), datetime(2024, 3, 5, 1, 0, 0, 1, tzinfo=paris))

    list(reader.events(None, window))

    query = next(r.query for r in fake.requests if r.path == BOOKINGS)
    assert query["endDateTime[strictly_after]"] == "2024-03-04T08:30:15"
    assert query["startDateTime[strictly_before]"] == "2024-03-05T00:00:01"


@pytest.mark.parametrize(
    ("status", "calendar_status"),
    [
        ("booked", "confirmed"),
        ("checkedIn", "confirmed"),
        ("checkedOut", "confirmed"),
        ("completed", "confirmed"),
        ("cancelled", "cancelled"),
        ("noCheckIn", "cancelled"),
        ("unknown", "tentative"),
    ],
)
def test_every_status_is_mapped_and_kept(
    fake: FakeKadence, reader: Kadence, office: Office, status: str, calendar_status: str
) -> None:
    ulid = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17), status=status)

    (item,) = events_of(list(reader.events(None, WINDOW))).values()

    assert item.event.status == calendar_status
    assert kadence_status(item.event) == status
    assert item.event.event_id == f"booking:{ulid}"
    assert item.event.etag is not None
    assert item.event.etag.endswith(f"/{status}")


def test_changes_and_cancellations_between_reads(fake: FakeKadence, reader: Kadence, office: Office) -> None:
    moved = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17))
    cancelled = fake.add_booking(office.bob, office.desk2, at(5, 9), at(5, 17))
    kept = fake.add_booking(office.bob, office.desk2, at(6, 9), at(6, 17))
    first = events_of(list(reader.events(None, WINDOW)))

    fake.change_booking(moved, space=office.desk2, start=at(6, 8), end=at(6, 12))
    fake.cancel_booking(cancelled)
    fake.change_booking(kept, status="checkedIn")
    second = events_of(list(reader.events("2024-03-01T12:00:00+00:00", WINDOW)))

    assert set(second) == set(first)  # a cancellation stays listed, as a cancelled event
    now_moved = second[f"booking:{moved}"].event
    assert (now_moved.start, now_moved.end, now_moved.working_location_label) == (at(6, 8), at(6, 12), "Desk 02")
    assert now_moved.etag != first[f"booking:{moved}"].event.etag
    now_cancelled = second[f"booking:{cancelled}"].event
    assert now_cancelled.status == "cancelled"
    assert kadence_status(now_cancelled) == "cancelled"
    assert now_cancelled.etag != first[f"booking:{cancelled}"].event.etag
    assert kadence_status(second[f"booking:{kept}"].event) == "checkedIn"


def test_status_alone_changes_the_etag(fake: FakeKadence, reader: Kadence, office: Office) -> None:
    # Kadence completes bookings itself; even if it left updatedAt alone the change must show.
    ulid = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17))
    before = events_of(list(reader.events(None, WINDOW)))[f"booking:{ulid}"].event.etag
    fake.bookings[ulid].status = "completed"  # no updatedAt bump

    after = events_of(list(reader.events(None, WINDOW)))[f"booking:{ulid}"].event.etag

    assert before != after


def test_onsite_passes_count_rooms_do_not_and_strangers_are_noted(
    fake: FakeKadence, reader: Kadence, office: Office
) -> None:
    onsite = fake.add_booking(office.ada, None, at(5, 8), at(5, 18), building=office.building)
    fake.add_booking(office.ada, office.room, at(5, 10), at(5, 11))
    gone = fake.add_booking(office.bob, office.desk2, at(6, 9), at(6, 17))
    fake.override("bookings", gone, userId="/v1/public/users/01HKGONE0000000000000000000")

    pages = list(reader.events(None, WINDOW))

    events = events_of(pages)
    assert list(events) == [f"booking:{onsite}"]
    pass_event = events[f"booking:{onsite}"].event
    assert pass_event.working_location_label == "London Office"
    assert pass_event.location == "London Office"
    assert any("1 Kadence booking(s) skipped" in note for note in pages[-1].notes)


def test_references_as_embedded_objects_are_read_too(fake: FakeKadence, reader: Kadence, office: Office) -> None:
    ulid = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17))
    # The document types references as "string or object"; `id` as an object is its schema artifact.
    fake.override(
        "bookings",
        ulid,
        id={"@context": "string", "@id": "string", "@type": "string"},
        userId={"@id": f"/v1/public/users/{office.ada}", "@type": "User"},
    )

    (item,) = events_of(list(reader.events(None, WINDOW))).values()

    assert item.event.event_id == f"booking:{ulid}"
    assert item.person == "ada@example.com"


@pytest.mark.parametrize("offset", [timedelta(hours=5, minutes=30), timedelta(hours=-7), timedelta(0)])
def test_dates_with_offsets_become_utc(http: httpx.Client, sleeps: Sleeps, offset: timedelta) -> None:
    with FakeKadence(offset=offset) as fake:
        building = fake.add_building("Pune", "Asia/Kolkata")
        desk = fake.add_space("Desk 7", building=building)
        ada = fake.add_user("ada@example.com")
        ulid = fake.add_booking(ada, desk, at(5, 3, 30), at(5, 12))

        (item,) = events_of(list(make_reader(fake, http, sleeps).events(None, WINDOW))).values()

        assert fake.booking_json(fake.bookings[ulid])["startDate"].endswith(
            {timedelta(hours=5, minutes=30): "+05:30", timedelta(hours=-7): "-07:00", timedelta(0): "+00:00"}[offset]
        )
        assert item.event.start == at(5, 3, 30)
        assert item.event.end == at(5, 12)
        assert item.event.start.tzinfo is UTC
        assert item.event.updated is not None
        assert item.event.updated.tzinfo is UTC


def test_an_offset_written_out_differently_is_the_same_instant(
    fake: FakeKadence, reader: Kadence, office: Office
) -> None:
    ulid = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17))
    fake.override("bookings", ulid, startDate="2024-03-05T04:00:00-05:00", endDate="2024-03-05T17:00:00Z")

    (item,) = events_of(list(reader.events(None, WINDOW))).values()

    assert (item.event.start, item.event.end) == (at(5, 9), at(5, 17))


def test_check_in_and_out_dates_come_with_the_booking(fake: FakeKadence, reader: Kadence, office: Office) -> None:
    ulid = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17))
    (before,) = events_of(list(reader.events(None, WINDOW))).values()
    fake.check_in(ulid, at(5, 9) + timedelta(minutes=4))
    fake.check_out(ulid, at(5, 15))
    (after,) = events_of(list(reader.events(None, WINDOW))).values()

    assert isinstance(before, KadenceEvent)
    assert (before.status, before.checked_in_at, before.checked_out_at) == ("booked", None, None)
    assert isinstance(after, KadenceEvent)
    assert (after.status, after.checked_in_at, after.checked_out_at) == (
        "checkedOut",
        at(5, 9) + timedelta(minutes=4),
        at(5, 15),
    )


def test_check_in_dates_in_another_offset_are_read_as_utc(office: Office, reader: Kadence, fake: FakeKadence) -> None:
    fake.offset = timedelta(hours=2)
    ulid = fake.add_booking(office.ada, office.desk1, at(5, 9), at(5, 17))
    fake.check_in(ulid, at(5, 9))
    (item,) = events_of(list(reader.events(None, WINDOW))).values()
    assert isinstance(item, KadenceEvent)
    assert item.checked_in_at == at(5, 9)
    assert item.checked_in_at is not None
    assert item.checked_in_at.tzinfo is UTC

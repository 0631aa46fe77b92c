"""Shifts and time off in a window: the first read, changes and deletions between reads, what is skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.records import CalendarEvent, PersonEvent
from connectors.wheniwork import WhenIWork, WhenIWorkClient
from tests.connectors.wheniwork.conftest import USERNAME, WINDOW
from tests.fakes.wheniwork import FakeWhenIWork

JEN = "jen.parker@example.com"  # the address as listed is Jen.Parker@…; people are named in lower case


def read(reader: WhenIWork) -> dict[str, PersonEvent]:
    pages = list(reader.events(None, WINDOW))
    assert all(page.full for page in pages)
    assert pages[-1].last
    assert pages[-1].cursor
    return {item.event.event_id: item for page in pages for item in page.events}


@pytest.fixture
def schedule(fake: FakeWhenIWork) -> FakeWhenIWork:
    """A week of the account's schedule, in local (America/Chicago) wall-clock times."""
    fake.add_shift(
        10000, user_id=2, location_id=136, start=datetime(2014, 3, 7, 8, 30), end=datetime(2014, 3, 7, 14, 30)
    )
    fake.add_shift(10001, user_id=1, location_id=137, start=datetime(2014, 3, 10, 9), end=datetime(2014, 3, 10, 17))
    fake.add_shift(10002, user_id=0, location_id=136, start=datetime(2014, 3, 8, 9), end=datetime(2014, 3, 8, 17))
    fake.add_shift(
        10003,
        user_id=2,
        location_id=136,
        start=datetime(2014, 3, 11, 9),
        end=datetime(2014, 3, 11, 17),
        published=False,
    )
    fake.add_request(54, user_id=2, status=2, start=datetime(2014, 3, 14), end=datetime(2014, 3, 15))
    fake.add_request(55, user_id=1, status=2, start=datetime(2014, 3, 12, 8), end=datetime(2014, 3, 12, 12))
    fake.add_request(56, user_id=1, status=0, start=datetime(2014, 3, 13), end=datetime(2014, 3, 14))  # pending
    fake.add_request(57, user_id=2, status=1, start=datetime(2014, 3, 5), end=datetime(2014, 3, 6))  # canceled
    return fake


def test_first_read_maps_published_assigned_shifts_and_approved_time_off(
    schedule: FakeWhenIWork, reader: WhenIWork
) -> None:
    found = read(reader)
    assert sorted(found) == ["shift:10000", "shift:10001", "timeoff:54", "timeoff:55"]  # no open, unpublished, pending
    shift = found["shift:10000"]
    updated = shift.event.updated
    assert updated is not None
    assert shift == PersonEvent(
        person=JEN,
        event=CalendarEvent(
            event_id="shift:10000",
            start=datetime(2014, 3, 7, 14, 30, tzinfo=UTC),  # 08:30 -0600
            end=datetime(2014, 3, 7, 20, 30, tzinfo=UTC),
            timezone="Etc/GMT+6",
            title="Shift",
            location="Downtown",
            working_location="office",
            working_location_label="Downtown",
            etag=f"{updated.isoformat()} Downtown",
            updated=updated,
        ),
        booking_reason="shift",
    )
    assert updated == datetime.strptime(schedule.shifts[10000]["updated_at"], "%a, %d %b %Y %H:%M:%S %z")
    after_switch = found["shift:10001"]  # 10 March is daylight saving time: -0500
    assert (after_switch.person, after_switch.event.start) == (USERNAME, datetime(2014, 3, 10, 14, tzinfo=UTC))
    assert after_switch.event.timezone == "Etc/GMT+5"
    assert after_switch.event.working_location_label == "Uptown"


def test_time_off_is_out_of_office_and_all_day_only_from_midnight_to_midnight(
    schedule: FakeWhenIWork, reader: WhenIWork
) -> None:
    found = read(reader)
    days, hours = found["timeoff:54"], found["timeoff:55"]
    assert days.booking_reason is None
    assert days.person == JEN
    assert (days.event.show_as, days.event.all_day, days.event.title) == ("oof", True, "Time off")
    assert (days.event.start, days.event.end) == (
        datetime(2014, 3, 14, 5, tzinfo=UTC),
        datetime(2014, 3, 15, 5, tzinfo=UTC),
    )
    assert (hours.event.show_as, hours.event.all_day) == ("oof", False)
    assert hours.event.start == datetime(2014, 3, 12, 13, tzinfo=UTC)
    assert days.event.working_location is None


def test_the_window_is_asked_for_in_the_documents_parameters_and_kept_exact(
    schedule: FakeWhenIWork, reader: WhenIWork
) -> None:
    # Inside the widened query (2 March) but outside the window (which starts 3 March 00:00 UTC).
    schedule.add_shift(10004, user_id=2, location_id=136, start=datetime(2014, 3, 2, 9), end=datetime(2014, 3, 2, 17))
    assert "shift:10004" not in read(reader)
    shifts = next(entry for entry in schedule.log if entry.path == "/2/shifts")
    requests = next(entry for entry in schedule.log if entry.path == "/2/requests")
    assert shifts.query == {"start_time": "2014-03-02", "end_time": "2014-03-19"}
    assert requests.query == {"start": "2014-03-02", "end": "2014-03-19"}


def test_changes_between_reads_show_in_times_and_etags(schedule: FakeWhenIWork, reader: WhenIWork) -> None:
    before = read(reader)
    schedule.update_shift(10000, end_time=datetime(2014, 3, 7, 16, 30))
    schedule.locations[137]["name"] = "Uptown Mall"  # shift 10001 itself is unchanged
    schedule.requests[56]["status"] = 2  # approved since
    after = read(reader)
    assert after["shift:10000"].event.end == datetime(2014, 3, 7, 22, 30, tzinfo=UTC)
    assert after["shift:10000"].event.etag != before["shift:10000"].event.etag
    assert after["shift:10001"].event.working_location_label == "Uptown Mall"
    assert after["shift:10001"].event.etag != before["shift:10001"].event.etag
    assert after["timeoff:54"] == before["timeoff:54"]  # nothing changed: the same record, the same etag
    assert "timeoff:56" in after
    assert "timeoff:56" not in before


def test_a_shift_gone_from_the_window_is_left_out_of_a_full_listing(schedule: FakeWhenIWork, reader: WhenIWork) -> None:
    assert {"shift:10000", "shift:10001", "timeoff:54"} <= set(read(reader))
    del schedule.shifts[10000]  # deleted
    schedule.update_shift(10001, user_id=0)  # handed back as an open shift
    schedule.requests[54]["status"] = 1  # canceled
    pages = list(reader.events("the previous cursor", WINDOW))
    assert all(page.full for page in pages)
    assert all(page.removed == () for page in pages)
    assert {item.event.event_id for page in pages for item in page.events} == {"timeoff:55"}


def test_shifts_of_unknown_people_or_places_are_skipped_with_a_note(schedule: FakeWhenIWork, reader: WhenIWork) -> None:
    schedule.add_shift(10005, user_id=99, location_id=136, start=datetime(2014, 3, 7, 9), end=datetime(2014, 3, 7, 17))
    schedule.add_shift(10006, user_id=2, location_id=999, start=datetime(2014, 3, 7, 9), end=datetime(2014, 3, 7, 17))
    schedule.shifts[10007] = dict(schedule.shifts[10000], id="10007", location_id=0)  # and a string id
    (page,) = list(reader.events(None, WINDOW))
    assert not {"shift:10005", "shift:10006", "shift:10007"} & {item.event.event_id for item in page.events}
    assert "skipped 1 shifts of people When I Work does not list with an email" in page.notes
    assert "skipped 2 shifts without a listed location" in page.notes


def test_events_come_in_pages_with_the_cursor_on_the_last(schedule: FakeWhenIWork, client: WhenIWorkClient) -> None:
    now = datetime(2014, 3, 4, 12, tzinfo=UTC)
    pages = list(WhenIWork(client, page_size=3, now=lambda: now).events(None, WINDOW))
    assert [len(page.events) for page in pages] == [3, 1]
    assert [page.last for page in pages] == [False, True]
    assert pages[0].cursor is None
    cursor = json.loads(pages[-1].cursor or "")
    assert cursor == {"v": "1", "kind": "events", "read_at": now.isoformat(), "start": "2014-03-03T00:00:00+00:00"} | {
        "end": "2014-03-17T00:00:00+00:00"
    }


def test_an_empty_window_is_still_one_full_last_page(fake: FakeWhenIWork, reader: WhenIWork) -> None:
    (page,) = list(reader.events(None, WINDOW))
    assert (page.events, page.full, page.last) == ((), True, True)
    assert page.cursor


def test_approved_statuses_can_be_configured(schedule: FakeWhenIWork, client: WhenIWorkClient) -> None:
    found = read(WhenIWork(client, approved_statuses=frozenset({0})))
    assert {key for key in found if key.startswith("timeoff:")} == {"timeoff:56"}


def _office_read(client: WhenIWorkClient, offices: list[int | str]) -> tuple[set[str], tuple[str, ...]]:
    (page,) = list(WhenIWork(client, office_locations=offices).events(None, WINDOW))
    return {item.event.event_id for item in page.events}, page.notes


@pytest.mark.parametrize("offices", [[136], ["downtown"], [" DOWNTOWN "], [136, "Downtown"]])
def test_only_shifts_at_the_office_locations_are_listed(
    schedule: FakeWhenIWork, client: WhenIWorkClient, offices: list[int | str]
) -> None:
    listed, notes = _office_read(client, offices)
    assert listed == {"shift:10000", "timeoff:54", "timeoff:55"}  # 10001 is at Uptown; time off is anywhere
    assert "skipped 1 shifts at locations that are not offices" in notes


def test_office_locations_naming_no_location_are_noted(schedule: FakeWhenIWork, client: WhenIWorkClient) -> None:
    listed, notes = _office_read(client, ["Midtown", 999, 137])
    assert listed == {"shift:10001", "timeoff:54", "timeoff:55"}
    assert "office location 'Midtown' is not a When I Work location" in notes
    assert "office location '999' is not a When I Work location" in notes


def test_no_office_location_means_no_shift_is_an_office_day(schedule: FakeWhenIWork, client: WhenIWorkClient) -> None:
    listed, notes = _office_read(client, [])
    assert listed == {"timeoff:54", "timeoff:55"}
    assert "skipped 2 shifts at locations that are not offices" in notes


def test_a_name_two_locations_share_names_both(schedule: FakeWhenIWork, client: WhenIWorkClient) -> None:
    schedule.locations[137]["name"] = "downtown"
    listed, _ = _office_read(client, ["Downtown"])
    assert {"shift:10000", "shift:10001"} <= listed

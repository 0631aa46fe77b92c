"""The reconciling poll: people, then bookings and time off in a window, over pages, and again after changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.records import ConnectorError, PeoplePage, PersonEvent, Window
from tests.connectors.resourceguru.conftest import NOW, Wired
from tests.fakes.resourceguru import FakeResourceGuru

WINDOW = Window(NOW - timedelta(days=1), NOW + timedelta(days=14))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def people_setup(fake: FakeResourceGuru) -> dict[str, int]:
    return {
        "ada": fake.add_resource("Ada", "Lovelace", "ada@example.com", timezone="London")["id"],
        "bob": fake.add_resource("Bob", "Bauer", "bob@example.com", timezone="Berlin")["id"],
        "carol": fake.add_resource("Carol", "Nomail")["id"],
        "room": fake.add_resource("Board", "Room", "room@example.com", type_id=2)["id"],
        "eve": fake.add_resource("Eve", "Upper", "  Eve@Example.COM ")["id"],
        "dan": fake.add_resource("Dan", "Gone", "dan@example.com", archived=True)["id"],
    }


def by_id(pages: list[PeoplePage]) -> dict[tuple[str, str], PersonEvent]:
    return {(item.event.event_id, item.person): item for page in pages for item in page.events}


def test_people_is_a_full_round_of_humans_with_an_address(wired: Wired) -> None:
    ids = people_setup(wired.fake)
    pages = list(wired.reader.people(None))
    users = {user.external_id: user for page in pages for user in page.users}
    assert set(users) == {str(ids["ada"]), str(ids["bob"]), str(ids["eve"]), str(ids["dan"])}
    ada = users[str(ids["ada"])]
    assert (ada.username, ada.email, ada.display_name, ada.active) == (
        "ada@example.com",
        "ada@example.com",
        "Ada Lovelace",
        True,
    )
    assert users[str(ids["eve"])].email == "eve@example.com"
    assert users[str(ids["dan"])].active is False  # archived
    assert all(page.full_users for page in pages)
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert [page.cursor for page in pages] == [None] * (len(pages) - 1) + [NOW.isoformat()]
    # Five active resources at two a page, then the archived one: limit/offset as documented.
    listing = [(r.path.rsplit("/", 1)[-1], r.query.get("offset")) for r in wired.fake.requests if "resources" in r.path]
    assert listing == [("resources", ["0"]), ("resources", ["2"]), ("resources", ["4"]), ("archived", ["0"])]
    assert all(r.query.get("limit") == ["2"] for r in wired.fake.requests if "resources" in r.path)


def events_setup(fake: FakeResourceGuru, ids: dict[str, int]) -> dict[str, int]:
    ada, bob = ids["ada"], ids["bob"]
    add, off = fake.add_booking, fake.add_downtime
    return {
        "timed": add([ada], "2025-06-03", "2025-06-03", duration=90, start_time=540, details="Kick-off\nagenda")["id"],
        "days": add([ada, bob, ids["room"]], "2025-06-04", "2025-06-06", duration=240)["id"],
        "tentative": add(
            [bob], "2025-06-05", "2025-06-05", duration=60, start_time=600, timezone="UTC", tentative=True
        )["id"],
        "project": add([ada], "2025-05-20", "2025-06-20", duration=120)["id"],
        "far": add([ada], "2025-08-01", "2025-08-01")["id"],
        "before": add([ada], "2025-05-25", "2025-05-25")["id"],
        "nomail": add([ids["carol"]], "2025-06-03", "2025-06-03")["id"],
        "archived": add([ids["dan"]], "2025-06-03", "2025-06-03")["id"],
        "holiday": off([bob], "2025-06-09", "2025-06-10")["id"],
        "dentist": off([ada], "2025-06-12", "2025-06-12", start_time=780, end_time=1020, details="Dentist\nx")["id"],
        "cancelled": off([ada], "2025-06-13", "2025-06-13", deleted=True)["id"],
    }


def test_events_read_bookings_and_time_off_in_the_window_over_pages(wired: Wired) -> None:
    ids = people_setup(wired.fake)
    made = events_setup(wired.fake, ids)
    pages = list(wired.reader.events(None, WINDOW))
    events = by_id(pages)
    ada, bob = "ada@example.com", "bob@example.com"
    assert set(events) == {
        (f"booking:{made['timed']}", ada),
        (f"booking:{made['days']}", ada),
        (f"booking:{made['days']}", bob),
        (f"booking:{made['tentative']}", bob),
        (f"booking:{made['project']}", ada),
        (f"downtime:{made['holiday']}", bob),
        (f"downtime:{made['dentist']}", ada),
    }
    timed = events[(f"booking:{made['timed']}", ada)]
    assert timed.booking_reason is None
    event = timed.event
    # 09:00 London in June is 08:00 UTC; 90 minutes.
    assert (event.start, event.end, event.all_day) == (utc("2025-06-03T08:00"), utc("2025-06-03T09:30"), False)
    assert (event.show_as, event.status, event.title, event.timezone) == (
        "busy",
        "confirmed",
        "Kick-off",
        "Europe/London",
    )
    # Several days without a time: whole days in each person's own zone.
    days_ada = events[(f"booking:{made['days']}", ada)].event
    days_bob = events[(f"booking:{made['days']}", bob)].event
    assert (days_ada.start, days_ada.end, days_ada.all_day) == (utc("2025-06-03T23:00"), utc("2025-06-06T23:00"), True)
    assert (days_bob.start, days_bob.end) == (utc("2025-06-03T22:00"), utc("2025-06-06T22:00"))
    tentative = events[(f"booking:{made['tentative']}", bob)].event
    assert (tentative.start, tentative.show_as, tentative.status) == (utc("2025-06-05T10:00"), "tentative", "tentative")
    holiday = events[(f"downtime:{made['holiday']}", bob)].event
    assert (holiday.start, holiday.end, holiday.all_day) == (utc("2025-06-08T22:00"), utc("2025-06-10T22:00"), True)
    assert (holiday.show_as, holiday.title) == ("oof", "Time off")
    dentist = events[(f"downtime:{made['dentist']}", ada)].event
    assert (dentist.start, dentist.end, dentist.all_day) == (utc("2025-06-12T12:00"), utc("2025-06-12T16:00"), False)
    assert dentist.title == "Dentist"
    assert all(page.full for page in pages)
    assert [page.cursor for page in pages] == [None] * (len(pages) - 1) + [NOW.isoformat()]
    assert pages[-1].last
    assert sum(page.last for page in pages) == 1


def test_events_ask_with_the_documented_date_filters_widened_by_the_slack(wired: Wired) -> None:
    people_setup(wired.fake)
    list(wired.reader.events(None, WINDOW))
    bookings = [r.query for r in wired.fake.requests if r.path.endswith("/bookings")]
    downtimes = [r.query for r in wired.fake.requests if r.path.endswith("/downtimes")]
    assert bookings[0]["start_date"] == ["2025-05-01"]  # a day back, less 31 days
    assert bookings[0]["end_date"] == ["2025-07-17"]
    assert (downtimes[0]["from"], downtimes[0]["to"]) == (["2025-05-01"], ["2025-07-17"])
    assert bookings[0]["include_archived_resources"] == ["0"]
    assert bookings[0]["limit"] == ["2"]


def test_changes_and_deletions_show_in_the_next_round(wired: Wired) -> None:
    fake = wired.fake
    ids = people_setup(fake)
    made = events_setup(fake, ids)
    list(wired.reader.events(None, WINDOW))
    fake.update("bookings", made["timed"], start_time=840)
    fake.delete("bookings", made["days"])
    fake.update("downtimes", made["holiday"], deleted=True)
    fake.update("resources", ids["bob"], archived=True)
    fake.delete("resources", ids["eve"])
    second = list(wired.reader.events(None, WINDOW))
    events = by_id(second)
    assert set(events) == {
        (f"booking:{made['timed']}", "ada@example.com"),
        (f"booking:{made['project']}", "ada@example.com"),
        (f"downtime:{made['dentist']}", "ada@example.com"),
    }
    assert events[(f"booking:{made['timed']}", "ada@example.com")].event.start == utc("2025-06-03T13:00")
    people = {user.external_id: user for page in wired.reader.people(None) for user in page.users}
    assert people[str(ids["bob"])].active is False
    assert str(ids["eve"]) not in people


def test_an_unreadable_booking_fails_the_round_with_nothing_of_its_page(wired: Wired) -> None:
    fake = wired.fake
    ada = fake.add_resource("Ada", "Lovelace", "ada@example.com")["id"]
    for day in ("2025-06-01", "2025-06-02", "2025-06-03", "2025-06-04"):
        fake.add_booking([ada], day, day)
    good = fake.add_booking([ada], "2025-06-05", "2025-06-05")["id"]
    bad = fake.add_booking([ada], "2025-06-06", "2025-06-06", duration=0)["id"]
    got: list[str] = []
    with pytest.raises(ConnectorError) as failed:
        collect(wired, got)
    assert f"booking {bad}" in failed.value.message
    assert "duration 0 is outside 1..1440" in failed.value.message
    assert not failed.value.action_required
    # Pages of two: the first comes through; the second is held back as the possible last page; the
    # third (a good booking and the bad one) never becomes a page.
    assert f"booking:{good}" not in got
    assert len(got) == 2


def collect(wired: Wired, into: list[str]) -> None:
    for page in wired.reader.events(None, WINDOW):
        into.extend(item.event.event_id for item in page.events)


def test_an_empty_account_still_ends_the_round(wired: Wired) -> None:
    pages = list(wired.reader.events(None, WINDOW))
    assert len(pages) == 2  # one empty page of bookings, one of downtimes
    assert pages[-1].last
    assert pages[-1].cursor == NOW.isoformat()
    assert all(page.full for page in pages)
    assert list(wired.reader.people(None))[-1].last

"""/v1/external-events: what people's calendars say, by window and member, private under the privacy setting."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from connectors.records import CalendarEvent
from store.db import transaction
from store.models import ConnectionKind, Organisation
from store.services import calendars, connections, external_events
from tests.api.v1.conftest import FURNISH_BOX, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth

TODAY = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)


def at(days: float, hours: float = 9) -> datetime:
    """A time `days` from today's midnight (UTC)."""
    return TODAY + timedelta(days=days, hours=hours)


def event(event_id: str, start: datetime, **fields: Any) -> CalendarEvent:
    return CalendarEvent(event_id=event_id, start=start, end=start + timedelta(hours=1), **fields)


def store_events(factory: sessionmaker[Session], org: Org, email: str, *records: CalendarEvent) -> int:
    """The records as the calendar sync keeps them, in the ICS calendar of `email`; returns the calendar id."""
    with transaction(factory) as session:
        connection, _ = connections.create(
            session,
            FURNISH_BOX,
            org.organisation.id,
            ConnectionKind.ICS,
            f"Feed of {email}",
            settings={"member_email": email},
            credentials={"url": "https://calendar.example/feed.ics"},
        )
        (calendar,) = calendars.ensure(session, connection)
        external_events.apply(session, calendar, "ics", records, [])
        return calendar.id


def listing(client: TestClient, token: str, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/external-events", params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["data"]]


def test_fields_of_an_event(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    calendar_id = store_events(
        api_factory,
        org,
        org.member.email,
        event(
            "e1",
            at(1),
            timezone="Europe/London",
            show_as="workingElsewhere",
            title="Planning",
            location="Room 4",
            categories=("Office",),
            attendees=("ada@acme.example",),
            working_location="office",
            working_location_label="HQ",
        ),
    )
    (item,) = listing(client, org.member_token)["data"]
    assert datetime.fromisoformat(item["start"]) == at(1)
    assert datetime.fromisoformat(item["end"]) == at(1, 10)
    expected = {
        "member_id": org.member.id,
        "calendar_id": calendar_id,
        "provider": "ics",
        "timezone": "Europe/London",
        "all_day": False,
        "show_as": "workingElsewhere",
        "working_location": "office",
        "working_location_label": "HQ",
        "status": "confirmed",
        "title": "Planning",
        "location": "Room 4",
        "attendees": ["ada@acme.example"],
        "categories": ["Office"],
        "booking_id": None,
        "booking_refused": None,
    }
    assert {key: item[key] for key in expected} == expected
    assert set(item) == {*expected, "id", "start", "end", "updated_at"}


def test_members_see_their_own_admins_everyones(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    store_events(api_factory, org, org.member.email, event("m", at(1), title="Will's"))
    store_events(api_factory, org, org.admin.email, event("a", at(2), title="Ada's"))

    assert ids(listing(client, org.member_token)) == ["Will's"]
    assert ids(listing(client, org.member_token, member_id=org.member.id)) == ["Will's"]
    assert ids(listing(client, org.admin_token)) == ["Will's", "Ada's"]
    assert ids(listing(client, org.admin_token, member_id=org.member.id)) == ["Will's"]
    with nothing_written(api_factory):
        response = client.get("/v1/external-events", params={"member_id": org.admin.id}, headers=auth(org.member_token))
    assert_problem(response, 403, "admin_only")


def test_other_organisations_events_and_members_are_unknown(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, other_org: Org
) -> None:
    store_events(api_factory, org, org.member.email, event("m", at(1), title="Acme's"))
    assert listing(client, other_org.admin_token)["data"] == []
    response = client.get(
        "/v1/external-events", params={"member_id": org.member.id}, headers=auth(other_org.admin_token)
    )
    assert_problem(response, 404, "not_found")
    unknown = client.get("/v1/external-events", params={"member_id": 987654}, headers=auth(org.admin_token))
    assert_problem(unknown, 404, "not_found")


def test_the_default_window_is_the_organisations(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    store_events(
        api_factory,
        org,
        org.member.email,
        event("old", at(-3), title="three days ago"),
        event("yesterday", at(-1), title="yesterday"),
        event("soon", at(59), title="in 59 days"),
        event("later", at(70), title="in 70 days"),
    )
    assert ids(listing(client, org.member_token)) == ["yesterday", "in 59 days"]
    with transaction(api_factory) as session:
        session.get_one(Organisation, org.organisation.id).calendar_window_days = 80
    assert ids(listing(client, org.member_token)) == ["yesterday", "in 59 days", "in 70 days"]

    # A window as asked; with one bound only, one as long as the organisation's from it.
    page = listing(client, org.member_token, start=at(-4).isoformat(), end=at(0).isoformat())
    assert ids(page) == ["three days ago", "yesterday"]
    assert ids(listing(client, org.member_token, start=at(60).isoformat())) == ["in 70 days"]
    assert ids(listing(client, org.member_token, end=at(0).isoformat())) == ["three days ago", "yesterday"]
    # Overlap, not containment: an event running across the start is in.
    assert ids(listing(client, org.member_token, start=at(59, 9.5).isoformat(), end=at(60).isoformat())) == [
        "in 59 days"
    ]


def test_times_with_offsets(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    store_events(api_factory, org, org.member.email, event("e", at(1), title="nine UTC"))
    # The event runs 09:00-10:00 UTC: from 12:30+02:00 (10:30 UTC) it is over, from 11:30+02:00 not yet.
    paris = f"{at(1).date().isoformat()}T12:30:00+02:00"
    assert ids(listing(client, org.member_token, start=paris)) == []
    early = f"{at(1).date().isoformat()}T11:30:00+02:00"
    assert ids(listing(client, org.member_token, start=early)) == ["nine UTC"]


def test_pages_by_start_then_id(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    records = [event(f"e{n}", at(1 + n // 2), title=f"t{n}") for n in range(7)]  # pairs share a start
    store_events(api_factory, org, org.member.email, *reversed(records))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = listing(client, org.member_token, **params)
        seen.extend(ids(page))
        assert page["has_more"] is (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen, key=lambda title: int(title[1:]) // 2) == seen
    assert sorted(seen) == [f"t{n}" for n in range(7)]
    whole = listing(client, org.member_token)["data"]
    assert [(item["start"], item["id"]) for item in whole] == sorted((item["start"], item["id"]) for item in whole)


def test_privacy_hides_what_was_kept_before(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    store_events(
        api_factory,
        org,
        org.member.email,
        event("e", at(1), title="Salary talk", location="HR", attendees=("boss@acme.example",), categories=("HR",)),
    )
    # The switch turned on without the store's clean-up (a sync that raced it): the API hides anyway.
    with transaction(api_factory) as session:
        session.execute(
            update(Organisation).where(Organisation.id == org.organisation.id).values(calendar_busy_only=True)
        )
    (item,) = listing(client, org.admin_token)["data"]
    assert (item["title"], item["location"], item["attendees"], item["categories"]) == ("", "", [], [])
    assert item["show_as"] == "busy"
    assert "Salary" not in client.get("/v1/external-events", headers=auth(org.member_token)).text


def test_bad_input_is_refused(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    headers = auth(org.admin_token)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"start": at(2).isoformat(), "end": at(1).isoformat()}, "end"),
        ({"start": at(1).isoformat(), "end": at(1).isoformat()}, "end"),
        ({"start": at(0).isoformat(), "end": at(401).isoformat()}, "end"),
        ({"start": "2030-01-31T09:00:00"}, "start"),  # no offset
        ({"end": "tomorrow"}, "end"),
        ({"member_id": 0}, "member_id"),
        ({"member_id": "ada"}, "member_id"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
    ]
    with nothing_written(api_factory):
        for params, field in cases:
            body = assert_problem(client.get("/v1/external-events", params=params, headers=headers), 422)
            assert error_fields(body) == {field}, params
    # Exactly the widest window passes.
    assert listing(client, org.admin_token, start=at(0).isoformat(), end=at(400).isoformat())["data"] == []

"""/v1/organisation: the calendar settings (privacy, window, office-day rules), read by all, changed by admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.records import CalendarEvent
from store.db import transaction
from store.models import ConnectionKind, ExternalEvent, Organisation
from store.services import calendars, connections, external_events
from tests.api.v1.conftest import FURNISH_BOX, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events

DEFAULT_RULES = {"categories": [], "keywords": [], "working_elsewhere_with_location": False}


def patch(client: TestClient, org: Org, body: dict[str, Any]) -> dict[str, Any]:
    response = client.patch("/v1/organisation", json=body, headers=auth(org.admin_token))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_defaults_are_readable_by_everyone(client: TestClient, org: Org) -> None:
    body = client.get("/v1/organisation", headers=auth(org.member_token)).json()
    assert (body["calendar_busy_only"], body["calendar_window_days"]) == (False, 60)
    assert body["office_rules"] == DEFAULT_RULES


def test_admins_change_the_calendar_settings(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    rules = {"categories": [" Office "], "keywords": ["WFO", "in office"], "working_elsewhere_with_location": True}
    body = patch(client, org, {"calendar_busy_only": True, "calendar_window_days": 90, "office_rules": rules})

    clean = {**rules, "categories": ["Office"]}  # trimmed by the rules' own check
    assert (body["calendar_busy_only"], body["calendar_window_days"], body["office_rules"]) == (True, 90, clean)
    assert client.get("/v1/organisation", headers=auth(org.member_token)).json()["office_rules"] == clean
    event = events(api_factory, org.organisation.id)[-1]
    assert event.type == "organisation.updated"
    assert event.data == {
        "organisation_id": org.organisation.id,
        "calendar_busy_only": True,
        "calendar_window_days": 90,
        "office_rules": clean,
    }
    with api_factory() as session:
        stored = session.get_one(Organisation, org.organisation.id)
        assert (stored.calendar_busy_only, stored.calendar_window_days, stored.office_rules) == (True, 90, clean)

    # Rules are replaced whole: a rule left out is off.
    assert patch(client, org, {"office_rules": {"keywords": ["WFO"]}})["office_rules"] == {
        **DEFAULT_RULES,
        "keywords": ["WFO"],
    }
    # The same values again change nothing and say nothing.
    count = len(events(api_factory, org.organisation.id))
    with nothing_written(api_factory):
        patch(
            client, org, {"calendar_busy_only": True, "calendar_window_days": 90, "office_rules": {"keywords": ["WFO"]}}
        )
    assert len(events(api_factory, org.organisation.id)) == count


def test_absences_release_desks_only_once_an_admin_turns_it_on(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    assert client.get("/v1/organisation", headers=auth(org.member_token)).json()["release_on_absence"] is False
    assert patch(client, org, {"release_on_absence": True})["release_on_absence"] is True
    event = events(api_factory, org.organisation.id)[-1]
    assert (event.type, event.data) == (
        "organisation.updated",
        {"organisation_id": org.organisation.id, "release_on_absence": True},
    )
    with api_factory() as session:
        assert session.get_one(Organisation, org.organisation.id).release_on_absence is True
    member = client.patch("/v1/organisation", json={"release_on_absence": False}, headers=auth(org.member_token))
    assert_problem(member, 403, "admin_only")


def test_bad_calendar_settings_change_nothing(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"calendar_window_days": 0}, "calendar_window_days"),
        ({"calendar_window_days": 366}, "calendar_window_days"),
        ({"calendar_window_days": "sixty"}, "calendar_window_days"),
        ({"calendar_window_days": None}, "calendar_window_days"),
        ({"calendar_busy_only": "yes please"}, "calendar_busy_only"),
        ({"release_on_absence": "sometimes"}, "release_on_absence"),
        ({"office_rules": {"subjects": ["WFO"]}}, "office_rules.subjects"),
        ({"office_rules": {"keywords": "WFO"}}, "office_rules.keywords"),
        ({"office_rules": {"keywords": ["  "]}}, "office_rules.keywords"),
        ({"office_rules": {"categories": ["x" * 101]}}, "office_rules.categories.0"),
        ({"office_rules": {"categories": ["x"] * 51}}, "office_rules.categories"),
        (
            {"office_rules": {"working_elsewhere_with_location": "sometimes"}},
            "office_rules.working_elsewhere_with_location",
        ),
        ({"office_rules": []}, "office_rules"),
    ]
    with nothing_written(api_factory):
        for body, field in cases:
            response = client.patch("/v1/organisation", json=body, headers=auth(org.admin_token))
            assert error_fields(assert_problem(response, 422)) == {field}, body
        member = client.patch("/v1/organisation", json={"calendar_busy_only": True}, headers=auth(org.member_token))
        assert_problem(member, 403, "admin_only")
    for days in (1, 365):
        assert patch(client, org, {"calendar_window_days": days})["calendar_window_days"] == days


def test_privacy_on_forgets_what_calendars_told(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, other_org: Org
) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    record = CalendarEvent(
        event_id="e1",
        start=start,
        end=start + timedelta(hours=1),
        title="Salary talk",
        location="HR",
        categories=("HR",),
        attendees=("boss@acme.example",),
        working_location="office",
        working_location_label="HQ",
    )
    for owner in (org, other_org):
        with transaction(api_factory) as session:
            connection, _ = connections.create(
                session,
                FURNISH_BOX,
                owner.organisation.id,
                ConnectionKind.ICS,
                "Feed",
                settings={"member_email": owner.member.email},
                credentials={"url": "https://calendar.example/feed.ics"},
            )
            (calendar,) = calendars.ensure(session, connection)
            external_events.apply(session, calendar, "ics", [record], [])

    patch(client, org, {"calendar_busy_only": True})

    with api_factory() as session:
        rows = {row.organisation_id: row for row in session.scalars(select(ExternalEvent))}
    mine, theirs = rows[org.organisation.id], rows[other_org.organisation.id]
    assert (mine.title, mine.location, mine.categories, mine.attendees, mine.working_location_label) == (
        "",
        "",
        [],
        [],
        None,
    )
    assert (mine.start_at, mine.working_location) == (theirs.start_at, theirs.working_location)  # when stays
    assert (theirs.title, theirs.attendees) == ("Salary talk", ["boss@acme.example"])  # another organisation's stay

"""No member of one organisation reads or changes another's data, on any /v1 route.

Another organisation's ids answer 404 exactly like unknown ids, and nothing is written.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import ApiToken, Booking, Desk, Invitation, Member, OutboxEvent, Team
from tests.api.v1.conftest import Call, World, assert_problem, every_call, hours_from_now, nothing_written
from tests.conftest import auth

ID_CALLS = [call for call in every_call() if call.has_ids]


def call_id(call: Call) -> str:
    return f"{call.method} {call.template}"


@pytest.mark.parametrize("call", ID_CALLS, ids=call_id)
def test_other_organisations_ids_are_unknown(
    client: TestClient, api_factory: sessionmaker[Session], world: World, other_world: World, call: Call
) -> None:
    intruder = other_world.org
    with nothing_written(api_factory):
        theirs = client.request(call.method, call.path(world.ids()), json=call.json, headers=auth(intruder.admin_token))
        unknown = client.request(
            call.method,
            call.path(dict.fromkeys(world.ids(), 987654)),
            json=call.json,
            headers=auth(intruder.admin_token),
        )
        if not call.admin_only:
            as_member = client.request(
                call.method, call.path(world.ids()), json=call.json, headers=auth(intruder.member_token)
            )
            assert_problem(as_member, 404, "not_found")
    body = assert_problem(theirs, 404, "not_found")
    assert body["title"] == unknown.json()["title"]
    assert unknown.status_code == 404


LISTINGS: dict[str, type[Any]] = {
    "/v1/members": Member,
    "/v1/invitations": Invitation,
    "/v1/teams": Team,
    "/v1/desks": Desk,
    "/v1/bookings": Booking,
    "/v1/tokens": ApiToken,
}


@pytest.mark.parametrize("path", list(LISTINGS))
def test_listings_show_only_the_callers_organisation(
    client: TestClient, api_factory: sessionmaker[Session], world: World, other_world: World, path: str
) -> None:
    page = client.get(path, params={"limit": 200}, headers=auth(other_world.org.admin_token)).json()
    assert page["data"]
    with api_factory() as session:
        owners = {session.get_one(LISTINGS[path], item["id"]).organisation_id for item in page["data"]}
    assert owners == {other_world.org.organisation.id}


def test_events_show_only_the_callers_organisation(
    client: TestClient, api_factory: sessionmaker[Session], world: World, other_world: World
) -> None:
    page = client.get("/v1/events", params={"limit": 200}, headers=auth(other_world.org.admin_token)).json()
    with api_factory() as session:
        owners = {session.get_one(OutboxEvent, item["id"]).organisation_id for item in page["data"]}
    assert owners == {other_world.org.organisation.id}


def test_organisation_is_the_callers(client: TestClient, world: World, other_world: World) -> None:
    got = client.get("/v1/organisation", headers=auth(other_world.org.member_token)).json()
    assert got["id"] == other_world.org.organisation.id


def test_filters_with_other_organisations_ids(
    client: TestClient, api_factory: sessionmaker[Session], world: World, other_world: World
) -> None:
    headers = auth(other_world.org.admin_token)
    for name in ("member_id", "team_id", "desk_id"):
        response = client.get("/v1/bookings", params={name: world.ids()[name]}, headers=headers)
        assert_problem(response, 404, "not_found")
    assert_problem(client.get("/v1/tokens", params={"member_id": world.member_id}, headers=headers), 404)
    found = client.get("/v1/members", params={"email": "will@acme.example"}, headers=headers).json()
    assert found["data"] == []


def test_bodies_with_other_organisations_ids(
    client: TestClient, api_factory: sessionmaker[Session], world: World, other_world: World
) -> None:
    headers = auth(other_world.org.admin_token)
    start, end = hours_from_now(100).isoformat(), hours_from_now(102).isoformat()
    writes = [
        ("POST", "/v1/bookings", {"start": start, "end": end, "desk_id": world.desk_id}),
        ("POST", "/v1/bookings", {"start": start, "end": end, "member_id": world.member_id}),
        ("PATCH", f"/v1/bookings/{other_world.booking_id}", {"desk_id": world.desk_id}),
        ("POST", f"/v1/teams/{other_world.team_id}/members", {"member_ids": [world.member_id]}),
        ("DELETE", f"/v1/teams/{other_world.team_id}/members/{world.member_id}", None),
    ]
    with nothing_written(api_factory):
        for method, path, body in writes:
            assert_problem(client.request(method, path, json=body, headers=headers), 404, "not_found")


def test_cursors_do_not_cross_organisations(client: TestClient, world: World, other_world: World) -> None:
    # A cursor only says where to start; the caller's organisation still bounds the listing.
    page = client.get("/v1/members", params={"limit": 1}, headers=auth(world.org.admin_token)).json()
    theirs = client.get(
        "/v1/members", params={"cursor": page["next_cursor"]}, headers=auth(other_world.org.admin_token)
    )
    assert {m["email"].split("@")[1] for m in theirs.json()["data"]} <= {"globex.example"}

"""Keyset pagination: walking every page of every listing sees each item once, in order."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.services import bookings, desks, members, teams, tokens
from tests.api.v1.conftest import World, assert_problem, error_fields, hours_from_now
from tests.conftest import auth


@pytest.fixture
def crowded(api_factory: sessionmaker[Session], world: World) -> World:
    """Seven of everything, and bookings that share start times (so the id breaks ties)."""
    organisation_id = world.org.organisation.id
    now = hours_from_now(0)  # one instant, so that the bookings of a day share their start exactly
    with transaction(api_factory) as session:
        team = teams.get(session, organisation_id, world.team_id)
        people = [members.add(session, organisation_id, f"p{n}@acme.example", api_access=True) for n in range(7)]
        for n, person in enumerate(people):
            teams.create(session, organisation_id, f"Team {n}")
            desks.create(session, organisation_id, f"D{n}")
            members.invite(session, organisation_id, f"invitee{n}@acme.example")
            tokens.create(session, person)
            teams.add_member(session, team, person)
            for day in (3, 1, 2):
                start = now + timedelta(days=day)
                bookings.create(session, person, start=start, end=start + timedelta(hours=2))
    return world


LISTINGS = [
    "/v1/members",
    "/v1/invitations",
    "/v1/teams",
    "/v1/teams/{team_id}/members",
    "/v1/desks",
    "/v1/bookings",
    "/v1/tokens",
]


def walk(client: TestClient, path: str, token: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["data"]) <= limit
        assert page["has_more"] is (page["next_cursor"] is not None)
        items.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["data"]) == limit


@pytest.mark.parametrize("template", LISTINGS)
def test_walking_every_page(client: TestClient, crowded: World, template: str) -> None:
    path = template.format(team_id=crowded.team_id)
    token = crowded.org.admin_token
    everything = client.get(path, params={"limit": 200}, headers=auth(token)).json()["data"]
    assert len(everything) >= 7
    for limit in (1, 2, 3, len(everything)):
        walked = walk(client, path, token, limit)
        assert [item["id"] for item in walked] == [item["id"] for item in everything]


def test_bookings_come_by_start_then_id(client: TestClient, crowded: World) -> None:
    walked = walk(client, "/v1/bookings", crowded.org.admin_token, 4)
    keys = [(item["start"], item["id"]) for item in walked]
    assert keys == sorted(keys)
    assert len(walked) == 22
    assert len({item["start"] for item in walked}) == 4  # many ties, broken by id


def test_filters_hold_across_pages(client: TestClient, crowded: World) -> None:
    window = {"from": hours_from_now(40).isoformat(), "to": hours_from_now(60).isoformat()}
    walked = walk(client, "/v1/bookings", crowded.org.admin_token, 2, **window)
    assert len(walked) == 7
    assert len({item["start"] for item in walked}) == 1


def test_rows_added_while_walking_never_repeat_an_item(
    client: TestClient, api_factory: sessionmaker[Session], crowded: World
) -> None:
    headers = auth(crowded.org.admin_token)
    first = client.get("/v1/desks", params={"limit": 3}, headers=headers).json()
    client.post("/v1/desks", json={"label": "late"}, headers=headers)
    rest = walk(client, "/v1/desks", crowded.org.admin_token, 3, cursor=first["next_cursor"])
    ids = [d["id"] for d in first["data"] + rest]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    assert "late" in {d["label"] for d in rest}


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        "%%%",
        _cursor({"k": "desks", "v": [1]}),
        _cursor({"k": "bookings", "v": ["yesterday", 1]}),
        _cursor({"k": "bookings", "v": ["2030-01-01T00:00:00", 1]}),
        _cursor({"k": "bookings", "v": [1]}),
        _cursor({"k": "bookings", "v": ["2030-01-01T00:00:00Z", 2**70]}),
        _cursor({"k": "bookings", "v": ["2030-01-01T00:00:00Z", True]}),
        # Times no row holds: in UTC before year 1 or after 9999.
        _cursor({"k": "bookings", "v": ["0001-01-01T00:00:00+14:00", 1]}),
        _cursor({"k": "bookings", "v": ["9999-12-31T23:59:59-14:00", 1]}),
        _cursor(["bookings"]),
        _cursor("bookings"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_bad_cursors_are_refused(client: TestClient, world: World, cursor: str) -> None:
    response = client.get("/v1/bookings", params={"cursor": cursor}, headers=auth(world.org.member_token))
    body = assert_problem(response, 422, "invalid_cursor")
    assert error_fields(body) == {"cursor"}


def test_cursor_from_another_listing_is_refused(client: TestClient, crowded: World) -> None:
    desks_page = client.get("/v1/desks", params={"limit": 1}, headers=auth(crowded.org.admin_token)).json()
    response = client.get(
        "/v1/teams", params={"cursor": desks_page["next_cursor"]}, headers=auth(crowded.org.admin_token)
    )
    assert_problem(response, 422, "invalid_cursor")


@pytest.mark.parametrize("limit", ["0", "-1", "201", "many"])
def test_limit_is_bounded(client: TestClient, world: World, limit: str) -> None:
    for path in LISTINGS:
        url = path.format(team_id=world.team_id)
        response = client.get(url, params={"limit": limit}, headers=auth(world.org.admin_token))
        assert error_fields(assert_problem(response, 422, "invalid_input")) == {"limit"}

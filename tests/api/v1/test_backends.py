"""The parts of /v1 that lean on the database, on SQLite and PostgreSQL alike: keyset pages over
time-ordered rows, overlap conflicts from the database's guards, the event feed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import World, add_member, assert_problem, furnish, hours_from_now, nothing_written
from tests.api.v1.test_pagination import walk
from tests.conftest import auth, make_client, make_org


@pytest.fixture
def backend_world(session_factory: sessionmaker[Session]) -> World:
    return furnish(session_factory, make_org(session_factory))


@pytest.fixture
def backend_client(session_factory: sessionmaker[Session]) -> TestClient:
    return make_client(session_factory)


def test_booking_pages_with_tied_start_times(
    backend_client: TestClient, session_factory: sessionmaker[Session], backend_world: World
) -> None:
    admin = auth(backend_world.org.admin_token)
    start = hours_from_now(48)
    for n in range(5):
        member_id, _ = add_member(session_factory, backend_world.org, f"t{n}@acme.example")
        desk_id = backend_client.post("/v1/desks", json={"label": f"T{n}"}, headers=admin).json()["id"]
        begins = start + timedelta(hours=n % 2)  # several bookings share each start time
        body = {"start": begins.isoformat(), "end": (begins + timedelta(hours=1)).isoformat()}
        response = backend_client.post(
            "/v1/bookings", json={**body, "desk_id": desk_id, "member_id": member_id}, headers=admin
        )
        assert response.status_code == 201, response.text
    everything = backend_client.get("/v1/bookings", headers=admin).json()["data"]
    assert len(everything) == 6
    for limit in (1, 2, 4):
        walked = walk(backend_client, "/v1/bookings", backend_world.org.admin_token, limit)
        assert [b["id"] for b in walked] == [b["id"] for b in everything]
    keys = [(b["start"], b["id"]) for b in everything]
    assert keys == sorted(keys)


def test_overlap_conflicts_write_nothing(
    backend_client: TestClient, session_factory: sessionmaker[Session], backend_world: World
) -> None:
    booking = backend_client.get(
        f"/v1/bookings/{backend_world.booking_id}", headers=auth(backend_world.org.member_token)
    ).json()
    clash = {"start": booking["start"], "end": booking["end"], "desk_id": backend_world.desk_id}
    with nothing_written(session_factory):
        response = backend_client.post("/v1/bookings", json=clash, headers=auth(backend_world.org.admin_token))
    assert_problem(response, 409, "desk_unavailable")


def test_event_feed(backend_client: TestClient, backend_world: World) -> None:
    headers = auth(backend_world.org.admin_token)
    everything = backend_client.get("/v1/events", params={"limit": 200}, headers=headers).json()["data"]
    after, walked = "0", []
    while True:
        page = backend_client.get("/v1/events", params={"after": after, "limit": 2}, headers=headers).json()
        walked.extend(page["data"])
        after = page["next_cursor"]
        if not page["has_more"]:
            break
    assert walked == everything
    assert [e["seq"] for e in walked] == list(range(1, len(walked) + 1))


def test_booking_filters_select_the_same_bookings_on_both_stores(
    backend_client: TestClient, session_factory: sessionmaker[Session], backend_world: World
) -> None:
    admin = auth(backend_world.org.admin_token)
    world = backend_world
    made = []
    for start, desk in ((1, None), (26, world.desk_id), (50, None)):
        body = {"start": hours_from_now(start).isoformat(), "end": hours_from_now(start + 2).isoformat()}
        made.append(backend_client.post("/v1/bookings", json={**body, "desk_id": desk}, headers=admin).json())
    assert backend_client.post(f"/v1/bookings/{made[2]['id']}/cancel", headers=admin).status_code == 200
    everything = backend_client.get("/v1/bookings", headers=admin).json()["data"]
    assert len(everything) == 4
    middle = hours_from_now(24).isoformat()

    cases: dict[str, tuple[dict[str, object], list[int]]] = {
        "member": ({"member_id": world.member_id}, [world.booking_id]),
        "team": ({"team_id": world.team_id}, [world.booking_id]),
        "desk": ({"desk_id": world.desk_id}, [world.booking_id, made[1]["id"]]),
        "statuses": ({"status": ["cancelled", "checked_in"]}, [made[2]["id"]]),
        "from": ({"from": middle}, [made[1]["id"], made[2]["id"]]),
        "to": ({"to": middle}, [world.booking_id, made[0]["id"]]),
        "all at once": (
            {"member_id": world.org.admin.id, "desk_id": world.desk_id, "status": ["booked"], "from": middle},
            [made[1]["id"]],
        ),
    }
    for name, (query, expected) in cases.items():
        response = backend_client.get("/v1/bookings", params=query, headers=admin)
        assert response.status_code == 200, (name, response.text)
        data = response.json()["data"]
        assert [booking["id"] for booking in data] == expected, name
        assert data == [booking for booking in everything if booking["id"] in expected], name

    # A page of the filtered listing at a time, through its cursors.
    pages, cursor = [], None
    while True:
        params = {"desk_id": world.desk_id, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = backend_client.get("/v1/bookings", params=params, headers=admin).json()
        pages.append([booking["id"] for booking in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[world.booking_id], [made[1]["id"]]]

    unknown = backend_client.get("/v1/bookings", params={"member_id": 999_999}, headers=admin)
    assert_problem(unknown, 404)

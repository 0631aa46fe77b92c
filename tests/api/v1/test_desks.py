"""/v1/desks: create, list with filters, read, update, delete (admins write)."""

from __future__ import annotations

from typing import get_args

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.v1.endpoints.desks import DeskKind
from store.services.desks import KINDS
from tests.api.v1.conftest import World, assert_problem, error_fields, hours_from_now, iso, nothing_written
from tests.conftest import Org, auth, events


def test_kinds_match_the_store() -> None:
    assert get_args(DeskKind) == KINDS


def test_create_desk(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.post(
        "/v1/desks",
        json={"label": " 12 ", "building": "HQ", "floor": "2", "zone": "North", "kind": "room"},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 201, response.text
    desk = response.json()
    assert (desk["label"], desk["building"], desk["floor"], desk["zone"], desk["kind"]) == (
        "12",
        "HQ",
        "2",
        "North",
        "room",
    )
    assert desk["active"] is True
    assert response.headers["location"] == f"/v1/desks/{desk['id']}"
    assert client.get(f"/v1/desks/{desk['id']}", headers=auth(org.member_token)).json() == desk
    assert events(api_factory, org.organisation.id)[-1].type == "desk.created"


def test_create_desk_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    cases = [
        ({}, {"label"}),
        ({"label": " "}, {"label"}),
        ({"label": "1", "kind": "sofa"}, {"kind"}),
        ({"label": "1", "colour": "red"}, {"colour"}),
        ({"label": "x" * 101}, {"label"}),
        ({"label": "1", "floor": 2}, {"floor"}),
    ]
    with nothing_written(api_factory):
        for body, fields in cases:
            response = client.post("/v1/desks", json=body, headers=headers)
            assert error_fields(assert_problem(response, 422, "invalid_input")) == fields, body
        duplicate = client.post("/v1/desks", json={"label": "11", "building": "HQ"}, headers=headers)
        assert error_fields(assert_problem(duplicate, 409, "desk_exists")) == {"label"}


def test_list_desks_with_filters(client: TestClient, world: World) -> None:
    headers = auth(world.org.admin_token)
    room = client.post("/v1/desks", json={"label": "Board", "kind": "room"}, headers=headers).json()
    client.patch(f"/v1/desks/{room['id']}", json={"active": False}, headers=headers)

    def ids(**params: str) -> list[int]:
        return [d["id"] for d in client.get("/v1/desks", params=params, headers=headers).json()["data"]]

    assert ids() == [world.desk_id, room["id"]]
    assert ids(kind="room") == [room["id"]]
    assert ids(active="true") == [world.desk_id]
    assert ids(active="false") == [room["id"]]
    assert ids(building="HQ") == [world.desk_id]
    assert_problem(client.get("/v1/desks", params={"kind": "sofa"}, headers=headers), 422)


def test_update_desk(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    path = f"/v1/desks/{world.desk_id}"
    response = client.patch(path, json={"zone": "South", "active": False}, headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["zone"], response.json()["active"], response.json()["label"]) == ("South", False, "11")
    event = events(api_factory, world.org.organisation.id)[-1]
    assert (event.type, event.data["changes"]) == ("desk.updated", {"zone": "South", "active": False})
    with nothing_written(api_factory):
        for body, fields in [({"label": None}, {"label"}), ({"kind": "sofa"}, {"kind"}), ({"id": 3}, {"id"})]:
            assert error_fields(assert_problem(client.patch(path, json=body, headers=headers), 422)) == fields
        assert_problem(client.patch("/v1/desks/99999", json={"zone": "x"}, headers=headers), 404)


def test_renaming_onto_a_taken_label_conflicts(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    headers = auth(world.org.admin_token)
    other = client.post("/v1/desks", json={"label": "12", "building": "HQ"}, headers=headers).json()
    with nothing_written(api_factory):
        assert_problem(client.patch(f"/v1/desks/{other['id']}", json={"label": "11"}, headers=headers), 409)


def test_delete_desk(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    spare = client.post("/v1/desks", json={"label": "99"}, headers=headers).json()
    assert client.delete(f"/v1/desks/{spare['id']}", headers=headers).status_code == 204
    assert_problem(client.get(f"/v1/desks/{spare['id']}", headers=headers), 404)
    assert events(api_factory, world.org.organisation.id)[-1].type == "desk.deleted"
    with nothing_written(api_factory):
        assert_problem(client.delete(f"/v1/desks/{world.desk_id}", headers=headers), 409, "desk_has_bookings")
        assert_problem(client.delete(f"/v1/desks/{spare['id']}", headers=headers), 404)


def test_inactive_desk_cannot_be_booked(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    client.patch(f"/v1/desks/{world.desk_id}", json={"active": False}, headers=auth(world.org.admin_token))
    body = {"start": iso(hours_from_now(48)), "end": iso(hours_from_now(50)), "desk_id": world.desk_id}
    with nothing_written(api_factory):
        response = client.post("/v1/bookings", json=body, headers=auth(world.org.member_token))
    assert_problem(response, 409, "not_allowed")

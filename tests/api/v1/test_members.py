"""/v1/members: list with filters, read, update (admins), remove (admins)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Booking, BookingStatus, Member, Role
from tests.api.v1.conftest import World, add_member, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events


def test_list_members(client: TestClient, org: Org) -> None:
    response = client.get("/v1/members", headers=auth(org.member_token))
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    assert page["has_more"] is False
    assert [m["email"] for m in page["data"]] == ["admin@acme.example", "will@acme.example"]
    first = page["data"][0]
    assert first["role"] == "admin"
    assert first["status"] == "active"
    assert first["api_access"] is True
    assert first["created_at"].endswith("Z") or first["created_at"].endswith("+00:00")


def test_list_members_filters(client: TestClient, world: World) -> None:
    headers = auth(world.org.admin_token)
    by_role = client.get("/v1/members", params={"role": "admin"}, headers=headers).json()["data"]
    assert [m["email"] for m in by_role] == ["admin@acme.example"]
    invited = client.get("/v1/members", params={"status": "invited"}, headers=headers).json()["data"]
    assert [m["email"] for m in invited] == ["new@acme.example"]
    by_email = client.get("/v1/members", params={"email": "WILL@Acme.example"}, headers=headers).json()["data"]
    assert [m["id"] for m in by_email] == [world.member_id]
    both = client.get("/v1/members", params={"role": "admin", "status": "invited"}, headers=headers).json()["data"]
    assert both == []


def test_list_members_bad_filters(client: TestClient, org: Org) -> None:
    for params in ({"status": "sleeping"}, {"role": "owner"}, {"email": "not-an-email"}):
        response = client.get("/v1/members", params=params, headers=auth(org.admin_token))
        body = assert_problem(response, 422, "invalid_input")
        assert error_fields(body) == set(params)


def test_get_member(client: TestClient, org: Org) -> None:
    response = client.get(f"/v1/members/{org.member.id}", headers=auth(org.member_token))
    assert response.status_code == 200
    assert response.json()["email"] == "will@acme.example"
    assert response.json()["display_name"] == "William"


def test_get_unknown_member(client: TestClient, org: Org) -> None:
    assert_problem(client.get("/v1/members/999999", headers=auth(org.admin_token)), 404, "not_found")
    assert_problem(client.get("/v1/members/0", headers=auth(org.admin_token)), 422, "invalid_input")
    assert_problem(client.get("/v1/members/abc", headers=auth(org.admin_token)), 422, "invalid_input")
    assert_problem(client.get(f"/v1/members/{2**70}", headers=auth(org.admin_token)), 422, "invalid_input")


def test_admin_updates_member(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.patch(
        f"/v1/members/{org.member.id}",
        json={"display_name": "  Will  ", "role": "admin", "api_access": False},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["display_name"], body["role"], body["api_access"]) == ("Will", "admin", False)
    last = events(api_factory, org.organisation.id)[-1]
    assert last.type == "member.updated"
    assert last.data["changes"] == {"display_name": "Will", "role": "admin", "api_access": False}


def test_partial_update_keeps_other_fields(client: TestClient, org: Org) -> None:
    response = client.patch(f"/v1/members/{org.member.id}", json={"api_access": False}, headers=auth(org.admin_token))
    assert response.json()["display_name"] == "William"
    assert response.json()["role"] == "member"


def test_update_member_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    path = f"/v1/members/{org.member.id}"
    cases = [
        ({"role": "owner"}, {"role"}),
        ({"nickname": "W"}, {"nickname"}),
        ({"display_name": None}, {"display_name"}),
        ({"api_access": "maybe"}, {"api_access"}),
        ({"display_name": "x" * 201}, {"display_name"}),
    ]
    for body, fields in cases:
        with nothing_written(api_factory):
            response = client.patch(path, json=body, headers=auth(org.admin_token))
        assert error_fields(assert_problem(response, 422, "invalid_input")) == fields


def test_cannot_demote_last_admin(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        response = client.patch(f"/v1/members/{org.admin.id}", json={"role": "member"}, headers=auth(org.admin_token))
    assert_problem(response, 409, "last_admin")


def test_update_unknown_member(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        response = client.patch("/v1/members/4242", json={"role": "admin"}, headers=auth(org.admin_token))
    assert_problem(response, 404)


def test_remove_member(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    org = world.org
    response = client.delete(f"/v1/members/{world.member_id}", headers=auth(org.admin_token))
    assert response.status_code == 204
    assert response.content == b""
    got = client.get(f"/v1/members/{world.member_id}", headers=auth(org.admin_token)).json()
    assert got["status"] == "removed"
    assert got["removed_at"] is not None
    with api_factory() as session:
        assert session.get_one(Booking, world.booking_id).status is BookingStatus.CANCELLED
    types = [e.type for e in events(api_factory, org.organisation.id)]
    assert types[-2:] == ["booking.cancelled", "membership.removed"]
    # Their token was revoked with the membership.
    assert_problem(client.get("/v1/members", headers=auth(org.member_token)), 401)


def test_remove_removed_member_changes_nothing(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    assert client.delete(f"/v1/members/{org.member.id}", headers=auth(org.admin_token)).status_code == 204
    with nothing_written(api_factory):
        assert client.delete(f"/v1/members/{org.member.id}", headers=auth(org.admin_token)).status_code == 204


def test_cannot_remove_last_admin(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        response = client.delete(f"/v1/members/{org.admin.id}", headers=auth(org.admin_token))
    assert_problem(response, 409, "last_admin")


def test_admin_may_remove_themselves_when_another_admin_remains(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    add_member(api_factory, org, "second@acme.example", role=Role.ADMIN)
    assert client.delete(f"/v1/members/{org.admin.id}", headers=auth(org.admin_token)).status_code == 204
    with api_factory() as session:
        assert session.get_one(Member, org.admin.id).status.value == "removed"

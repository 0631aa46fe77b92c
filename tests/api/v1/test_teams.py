"""/v1/teams: create, list, read, rename, delete (admins write), and the members of a team."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import World, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events


def test_create_team(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.post("/v1/teams", json={"name": "  Data   Science "}, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    team = response.json()
    assert team["name"] == "Data Science"
    assert response.headers["location"] == f"/v1/teams/{team['id']}"
    assert client.get(f"/v1/teams/{team['id']}", headers=auth(org.member_token)).json() == team
    assert events(api_factory, org.organisation.id)[-1].type == "team.created"


def test_team_names_are_unique_ignoring_case(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    headers = auth(world.org.admin_token)
    with nothing_written(api_factory):
        body = assert_problem(client.post("/v1/teams", json={"name": "PLATFORM"}, headers=headers), 409, "team_exists")
    assert error_fields(body) == {"name"}
    other = client.post("/v1/teams", json={"name": "Design"}, headers=headers).json()
    with nothing_written(api_factory):
        response = client.patch(f"/v1/teams/{other['id']}", json={"name": "platform"}, headers=headers)
    assert_problem(response, 409, "team_exists")


def test_create_team_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    cases = [
        ({}, {"name"}),
        ({"name": "   "}, {"name"}),
        ({"name": "x" * 201}, {"name"}),
        ({"name": "A", "x": 1}, {"x"}),
    ]
    for body, fields in cases:
        with nothing_written(api_factory):
            response = client.post("/v1/teams", json=body, headers=auth(org.admin_token))
        assert error_fields(assert_problem(response, 422, "invalid_input")) == fields


def test_list_teams(client: TestClient, world: World) -> None:
    page = client.get("/v1/teams", headers=auth(world.org.member_token)).json()
    assert [t["id"] for t in page["data"]] == [world.team_id]
    assert page["next_cursor"] is None


def test_rename_team(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    path = f"/v1/teams/{world.team_id}"
    response = client.patch(path, json={"name": "Platform Engineering"}, headers=auth(world.org.admin_token))
    assert response.status_code == 200
    assert response.json()["name"] == "Platform Engineering"
    assert events(api_factory, world.org.organisation.id)[-1].type == "team.updated"
    with nothing_written(api_factory):
        unchanged = client.patch(path, json={}, headers=auth(world.org.admin_token))
        assert unchanged.json()["name"] == "Platform Engineering"
        response = client.patch(path, json={"name": None}, headers=auth(world.org.admin_token))
        assert error_fields(assert_problem(response, 422)) == {"name"}


def test_delete_team(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    assert client.delete(f"/v1/teams/{world.team_id}", headers=headers).status_code == 204
    assert_problem(client.get(f"/v1/teams/{world.team_id}", headers=headers), 404)
    assert client.get(f"/v1/members/{world.member_id}", headers=headers).json()["status"] == "active"
    with nothing_written(api_factory):
        assert_problem(client.delete(f"/v1/teams/{world.team_id}", headers=headers), 404)


def test_team_members(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    path = f"/v1/teams/{world.team_id}/members"
    listed = client.get(path, headers=auth(world.org.member_token)).json()
    assert [m["id"] for m in listed["data"]] == [world.member_id]
    admin_id = world.org.admin.id
    added = client.post(path, json={"member_ids": [admin_id, world.member_id, admin_id]}, headers=headers)
    assert added.status_code == 200, added.text
    assert added.json() == {"added": [admin_id]}
    assert {m["id"] for m in client.get(path, headers=headers).json()["data"]} == {admin_id, world.member_id}
    assert client.delete(f"{path}/{world.member_id}", headers=headers).status_code == 204
    assert [m["id"] for m in client.get(path, headers=headers).json()["data"]] == [admin_id]
    last = events(api_factory, world.org.organisation.id)[-1]
    assert (last.type, last.data["removed"]) == ("team.updated", [world.member_id])


def test_team_members_refuse_bad_input(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    path = f"/v1/teams/{world.team_id}/members"
    with nothing_written(api_factory):
        # All or nothing: the known admin is not added when another id is unknown.
        assert_problem(client.post(path, json={"member_ids": [world.org.admin.id, 99999]}, headers=headers), 404)
        for body, fields in [
            ({"member_ids": []}, {"member_ids"}),
            ({"member_ids": ["x"]}, {"member_ids.0"}),
            ({"member_ids": [0]}, {"member_ids.0"}),
            ({}, {"member_ids"}),
        ]:
            response = client.post(path, json=body, headers=headers)
            assert error_fields(assert_problem(response, 422)) == fields
        assert_problem(client.post("/v1/teams/99999/members", json={"member_ids": [1]}, headers=headers), 404)
        assert_problem(client.delete(f"{path}/{world.org.admin.id}", headers=headers), 404, "not_in_team")
        assert_problem(client.delete(f"{path}/99999", headers=headers), 404)
        assert_problem(client.get("/v1/teams/99999/members", headers=headers), 404)

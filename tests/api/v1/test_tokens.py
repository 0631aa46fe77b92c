"""/v1/tokens: create (secret shown once), list (never the secret), revoke."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import World, add_member, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events


def test_create_token_shows_secret_once(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.post("/v1/tokens", json={"name": "laptop"}, headers=auth(org.member_token))
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert secret.startswith(created["prefix"])
    assert (created["name"], created["member_id"], created["last_used_at"]) == ("laptop", org.member.id, None)
    # The new secret works, and no later answer ever shows it (or its hash).
    listed = client.get("/v1/tokens", headers=auth(secret))
    assert listed.status_code == 200
    assert secret not in listed.text
    assert "hash" not in listed.text
    mine = {t["id"]: t for t in listed.json()["data"]}
    assert set(mine[created["id"]]) == {"id", "member_id", "name", "prefix", "created_at", "last_used_at"}
    client.app.state.token_usage.flush()  # type: ignore[attr-defined]  # uses are written in batches
    relisted = client.get("/v1/tokens", headers=auth(secret)).json()["data"]
    assert {t["id"]: t for t in relisted}[created["id"]]["last_used_at"] is not None
    assert events(api_factory, org.organisation.id)[-1].type == "api_token.created"


def test_create_token_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        for body, fields in [({"name": "x" * 101}, {"name"}), ({"member_id": 1}, {"member_id"})]:
            response = client.post("/v1/tokens", json=body, headers=auth(org.admin_token))
            assert error_fields(assert_problem(response, 422)) == fields


def test_members_list_their_own_tokens(client: TestClient, org: Org) -> None:
    mine = client.get("/v1/tokens", headers=auth(org.member_token)).json()["data"]
    assert {t["member_id"] for t in mine} == {org.member.id}
    own = client.get("/v1/tokens", params={"member_id": org.member.id}, headers=auth(org.member_token))
    assert own.json()["data"] == mine
    other = client.get("/v1/tokens", params={"member_id": org.admin.id}, headers=auth(org.member_token))
    assert_problem(other, 403, "admin_only")


def test_admins_list_everyones_tokens(client: TestClient, org: Org) -> None:
    everyone = client.get("/v1/tokens", headers=auth(org.admin_token)).json()["data"]
    assert {t["member_id"] for t in everyone} == {org.admin.id, org.member.id}
    one = client.get("/v1/tokens", params={"member_id": org.member.id}, headers=auth(org.admin_token)).json()["data"]
    assert {t["member_id"] for t in one} == {org.member.id}
    assert_problem(client.get("/v1/tokens", params={"member_id": 99999}, headers=auth(org.admin_token)), 404)


def test_revoke_own_token(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    spare = client.post("/v1/tokens", json={}, headers=auth(org.member_token)).json()
    assert client.delete(f"/v1/tokens/{spare['id']}", headers=auth(org.member_token)).status_code == 204
    assert_problem(client.get("/v1/tokens", headers=auth(spare["secret"])), 401)
    listed = client.get("/v1/tokens", headers=auth(org.member_token)).json()["data"]
    assert spare["id"] not in {t["id"] for t in listed}
    assert events(api_factory, org.organisation.id)[-1].type == "api_token.revoked"
    with nothing_written(api_factory):
        assert_problem(client.delete(f"/v1/tokens/{spare['id']}", headers=auth(org.member_token)), 404)


def test_members_cannot_revoke_others_tokens(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    admin_token_id = client.get("/v1/tokens", headers=auth(world.org.admin_token)).json()["data"][0]["id"]
    _, colleague = add_member(api_factory, world.org, "colleague@acme.example")
    with nothing_written(api_factory):
        assert_problem(client.delete(f"/v1/tokens/{admin_token_id}", headers=auth(colleague)), 404)
        assert_problem(client.delete(f"/v1/tokens/{world.token_id}", headers=auth(colleague)), 404)
        assert_problem(client.delete("/v1/tokens/99999", headers=auth(colleague)), 404)


def test_admins_revoke_any_token(client: TestClient, world: World) -> None:
    assert client.delete(f"/v1/tokens/{world.token_id}", headers=auth(world.org.admin_token)).status_code == 204
    assert_problem(client.get("/v1/members", headers=auth(world.org.member_token)), 401, "invalid_token")


def test_no_body_is_an_empty_one(client: TestClient, org: Org) -> None:
    # The name is optional, so no body at all (or an empty one sent as JSON) is the same as `{}`.
    bare = client.post("/v1/tokens", headers=auth(org.member_token))
    empty = client.post(
        "/v1/tokens", content=b"", headers={**auth(org.member_token), "Content-Type": "application/json"}
    )

    for response in (bare, empty):
        assert response.status_code == 201, response.text
        assert response.json()["name"] == ""
        assert response.json()["member_id"] == org.member.id
    assert client.post("/v1/tokens", json=None, headers=auth(org.member_token)).status_code == 201

"""/v1/invitations: invite (admins), list, read, revoke (admins), accept by token (no API token)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Invitation
from store.services import members
from tests.api.v1.conftest import World, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events


def accept_token(factory: sessionmaker[Session], invitation_id: int) -> str:
    """The token the worker would put in the email."""
    with transaction(factory) as session:
        token = members.issue_invitation_token(session, session.get_one(Invitation, invitation_id))
        assert token is not None
        return token


def test_invite(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.post(
        "/v1/invitations",
        json={"email": "Grace@Acme.example", "role": "admin", "display_name": "Grace"},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/invitations/{body['id']}"
    assert body["email"] == "grace@acme.example"
    assert body["status"] == "pending"
    assert body["source"] == "api"
    assert body["invited_by_id"] == org.admin.id
    assert body["sent_at"] is None
    assert "token" not in body
    assert "token_hash" not in body
    member = client.get(f"/v1/members/{body['member_id']}", headers=auth(org.admin_token)).json()
    assert (member["status"], member["role"], member["display_name"]) == ("invited", "admin", "Grace")
    event = events(api_factory, org.organisation.id)[-1]
    assert event.type == "membership.invited"
    assert event.data["invitation_id"] == body["id"]


def test_invite_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    cases = [
        ({"email": "not-an-email"}, {"email"}),
        ({"email": "a@b"}, {"email"}),
        ({}, {"email"}),
        ({"email": "x@acme.example", "role": "owner"}, {"role"}),
        ({"email": "x@acme.example", "team": "Blue"}, {"team"}),
        ({"email": "x@acme.example", "display_name": "x" * 201}, {"display_name"}),
    ]
    for body, fields in cases:
        with nothing_written(api_factory):
            response = client.post("/v1/invitations", json=body, headers=auth(org.admin_token))
        assert error_fields(assert_problem(response, 422, "invalid_input")) == fields, body


def test_inviting_an_active_member_conflicts(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        response = client.post("/v1/invitations", json={"email": "WILL@acme.example"}, headers=auth(org.admin_token))
    body = assert_problem(response, 409, "already_member")
    assert error_fields(body) == {"email"}


def test_list_and_get_invitations(client: TestClient, world: World) -> None:
    headers = auth(world.org.member_token)
    page = client.get("/v1/invitations", headers=headers).json()
    assert [i["id"] for i in page["data"]] == [world.invitation_id]
    assert page["next_cursor"] is None
    got = client.get(f"/v1/invitations/{world.invitation_id}", headers=headers)
    assert got.status_code == 200
    assert got.json() == page["data"][0]
    assert_problem(client.get("/v1/invitations/987654", headers=headers), 404)


def test_list_invitations_by_status(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    headers = auth(world.org.admin_token)
    with transaction(api_factory) as session:
        stale = members.invite(session, world.org.organisation.id, "stale@acme.example")
        stale.expires_at = utcnow() - timedelta(days=1)
        stale_id = stale.id

    def ids(status: str) -> list[int]:
        return [
            i["id"] for i in client.get("/v1/invitations", params={"status": status}, headers=headers).json()["data"]
        ]

    assert ids("pending") == [world.invitation_id]
    assert ids("expired") == [stale_id]
    assert ids("revoked") == []
    assert client.get(f"/v1/invitations/{stale_id}", headers=headers).json()["status"] == "expired"
    assert_problem(client.get("/v1/invitations", params={"status": "lost"}, headers=headers), 422)


def test_revoke_invitation(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    token = accept_token(api_factory, world.invitation_id)
    headers = auth(world.org.admin_token)
    response = client.post(f"/v1/invitations/{world.invitation_id}/revoke", headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoked_at"] is not None
    assert events(api_factory, world.org.organisation.id)[-1].type == "invitation.revoked"
    with nothing_written(api_factory):
        again = client.post(f"/v1/invitations/{world.invitation_id}/revoke", headers=headers)
        assert_problem(again, 409, "not_allowed")
        assert_problem(client.post("/v1/invitations/accept", json={"token": token}), 409)


def test_accept_invitation(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    token = accept_token(api_factory, world.invitation_id)
    response = client.post("/v1/invitations/accept", json={"token": token, "display_name": "Newt"})
    assert response.status_code == 200, response.text
    member = response.json()
    assert member["status"] == "active"
    assert member["display_name"] == "Newt"
    assert member["email"] == "new@acme.example"
    invitation = client.get(f"/v1/invitations/{world.invitation_id}", headers=auth(world.org.admin_token)).json()
    assert invitation["status"] == "accepted"
    assert events(api_factory, world.org.organisation.id)[-1].type == "membership.accepted"
    with nothing_written(api_factory):
        assert_problem(client.post("/v1/invitations/accept", json={"token": token}), 409, "not_allowed")


def test_accept_refuses_bad_tokens_and_input(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    with nothing_written(api_factory):
        assert_problem(client.post("/v1/invitations/accept", json={"token": "made-up"}), 404, "not_found")
        for body, fields in [({}, {"token"}), ({"token": ""}, {"token"}), ({"token": "x", "admin": True}, {"admin"})]:
            response = client.post("/v1/invitations/accept", json=body)
            assert error_fields(assert_problem(response, 422, "invalid_input")) == fields
        malformed = client.post(
            "/v1/invitations/accept", content=b'{"token": ', headers={"Content-Type": "application/json"}
        )
        assert_problem(malformed, 400, "malformed_json")
        assert_problem(
            client.post("/v1/invitations/accept", content=b"token=x", headers={"Content-Type": "text/plain"}), 415
        )


def test_accept_expired_invitation(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    token = accept_token(api_factory, world.invitation_id)
    with transaction(api_factory) as session:
        session.get_one(Invitation, world.invitation_id).expires_at = utcnow() - timedelta(minutes=1)
    with nothing_written(api_factory):
        body = assert_problem(client.post("/v1/invitations/accept", json={"token": token}), 409)
    assert "expired" in body["detail"]

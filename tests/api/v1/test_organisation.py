"""/v1/organisation: read; admins change the time zone and the API switch (even while it is off)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events, make_org


def test_get_organisation(client: TestClient, org: Org) -> None:
    response = client.get("/v1/organisation", headers=auth(org.member_token))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["slug"]) == (org.organisation.id, "Acme", "acme")
    assert (body["timezone"], body["api_enabled"]) == ("Europe/London", True)


def test_admin_changes_settings(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.patch("/v1/organisation", json={"timezone": "Europe/Paris"}, headers=auth(org.admin_token))
    assert response.status_code == 200, response.text
    assert (response.json()["timezone"], response.json()["api_enabled"]) == ("Europe/Paris", True)
    event = events(api_factory, org.organisation.id)[-1]
    assert (event.type, event.data["timezone"]) == ("organisation.updated", "Europe/Paris")


def test_admin_turns_the_api_on_while_it_is_off(client: TestClient, api_factory: sessionmaker[Session]) -> None:
    closed = make_org(api_factory, "Initech", api_enabled=False)
    assert_problem(client.get("/v1/organisation", headers=auth(closed.admin_token)), 403, "api_disabled")
    response = client.patch("/v1/organisation", json={"api_enabled": True}, headers=auth(closed.admin_token))
    assert response.status_code == 200, response.text
    assert response.json()["api_enabled"] is True
    assert client.get("/v1/members", headers=auth(closed.member_token)).status_code == 200
    client.patch("/v1/organisation", json={"api_enabled": False}, headers=auth(closed.admin_token))
    assert_problem(client.get("/v1/members", headers=auth(closed.member_token)), 403, "api_disabled")


def test_settings_refuse_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        for body, fields in [
            ({"timezone": "Mars/Olympus"}, {"timezone"}),
            ({"timezone": None}, {"timezone"}),
            ({"api_enabled": "sometimes"}, {"api_enabled"}),
            ({"name": "Acme Corp"}, {"name"}),
        ]:
            response = client.patch("/v1/organisation", json=body, headers=auth(org.admin_token))
            assert error_fields(assert_problem(response, 422)) == fields, body

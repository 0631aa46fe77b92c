"""/v1/organisation's directory_policy: what directory connections do with newcomers."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events


def test_the_policy_is_invite_until_changed(client: TestClient, org: Org) -> None:
    body = client.get("/v1/organisation", headers=auth(org.member_token)).json()
    assert body["directory_policy"] == "invite"


def test_an_admin_sets_auto_accept_and_back(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = client.patch("/v1/organisation", json={"directory_policy": "auto_accept"}, headers=auth(org.admin_token))

    assert response.status_code == 200, response.text
    assert response.json()["directory_policy"] == "auto_accept"
    assert client.get("/v1/organisation", headers=auth(org.member_token)).json()["directory_policy"] == "auto_accept"
    event = events(api_factory, org.organisation.id)[-1]
    assert (event.type, event.data["directory_policy"]) == ("organisation.updated", "auto_accept")
    client.patch("/v1/organisation", json={"directory_policy": "invite"}, headers=auth(org.admin_token))
    assert client.get("/v1/organisation", headers=auth(org.admin_token)).json()["directory_policy"] == "invite"


def test_the_same_policy_again_records_nothing(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    with nothing_written(api_factory):
        response = client.patch("/v1/organisation", json={"directory_policy": "invite"}, headers=auth(org.admin_token))
    assert response.status_code == 200


def test_bad_policies_and_members_are_refused(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        for value in ("auto-accept", "AUTO_ACCEPT", None, 1):
            response = client.patch("/v1/organisation", json={"directory_policy": value}, headers=auth(org.admin_token))
            assert error_fields(assert_problem(response, 422)) == {"directory_policy"}, value
        response = client.patch(
            "/v1/organisation", json={"directory_policy": "auto_accept"}, headers=auth(org.member_token)
        )
        assert_problem(response, 403, "admin_only")

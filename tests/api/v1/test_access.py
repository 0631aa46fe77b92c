"""Every authenticated /v1 route refuses callers without the right to call it, and writes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Role
from tests.api.v1.conftest import Call, World, add_member, assert_problem, every_call, furnish, nothing_written
from tests.conftest import auth, make_org

CALLS = every_call()
ADMIN_ONLY = [call for call in CALLS if call.admin_only]


def call_id(call: Call) -> str:
    return f"{call.method} {call.template}"


BAD_CREDENTIALS = [
    ({}, "not provided"),
    ({"Authorization": "token dsk_not-a-real-token"}, "Invalid token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization: token"),
    ({"Authorization": "token "}, "Authorization: token"),
]


@pytest.mark.parametrize("call", CALLS, ids=call_id)
def test_unauthenticated_is_401(
    client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call
) -> None:
    for headers, detail in BAD_CREDENTIALS:
        with nothing_written(api_factory):
            response = client.request(call.method, call.path(world.ids()), json=call.json, headers=headers)
        body = assert_problem(response, 401)
        assert detail in body["detail"]
        assert response.headers["www-authenticate"] == "Token"


@pytest.mark.parametrize("call", CALLS, ids=call_id)
def test_revoked_token_is_401(client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call) -> None:
    token = world.org.member_token
    assert client.delete(f"/v1/tokens/{world.token_id}", headers=auth(token)).status_code == 204
    with nothing_written(api_factory):
        response = client.request(call.method, call.path(world.ids()), json=call.json, headers=auth(token))
    assert_problem(response, 401, "invalid_token")


@pytest.mark.parametrize("call", CALLS, ids=call_id)
def test_api_switch_off_is_403(client: TestClient, api_factory: sessionmaker[Session], call: Call) -> None:
    closed = furnish(api_factory, make_org(api_factory, "Initech", api_enabled=False))
    # The settings route lets admins in to turn the switch on; members are refused as non-admins there.
    expected = "admin_only" if call.template == "/v1/organisation" and call.method == "PATCH" else "api_disabled"
    with nothing_written(api_factory):
        response = client.request(
            call.method, call.path(closed.ids()), json=call.json, headers=auth(closed.org.member_token)
        )
    body = assert_problem(response, 403, expected)
    if expected == "api_disabled":
        assert "turned off" in body["detail"]


@pytest.mark.parametrize(
    "call", [c for c in CALLS if c.template != "/v1/organisation" or c.method == "GET"], ids=call_id
)
def test_admin_is_refused_too_while_switch_off(
    client: TestClient, api_factory: sessionmaker[Session], call: Call
) -> None:
    closed = furnish(api_factory, make_org(api_factory, "Initech", api_enabled=False))
    with nothing_written(api_factory):
        response = client.request(
            call.method, call.path(closed.ids()), json=call.json, headers=auth(closed.org.admin_token)
        )
    assert_problem(response, 403, "api_disabled")


@pytest.mark.parametrize("call", CALLS, ids=call_id)
def test_no_api_access_is_403(client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call) -> None:
    settings = call.method == "PATCH" and call.template == "/v1/organisation"
    for role in Role:
        if role is Role.ADMIN and settings:
            continue  # admins reach the settings route without API access, to turn the API on
        _, token = add_member(api_factory, world.org, f"locked-{role.value}@acme.example", role=role, api_access=False)
        with nothing_written(api_factory):
            response = client.request(call.method, call.path(world.ids()), json=call.json, headers=auth(token))
        assert_problem(response, 403, "admin_only" if settings else "no_api_access")


@pytest.mark.parametrize("call", ADMIN_ONLY, ids=call_id)
def test_admin_only_routes_refuse_members(
    client: TestClient, api_factory: sessionmaker[Session], world: World, call: Call
) -> None:
    with nothing_written(api_factory):
        response = client.request(
            call.method, call.path(world.ids()), json=call.json, headers=auth(world.org.member_token)
        )
    body = assert_problem(response, 403, "admin_only")
    assert "admin" in body["detail"]

"""/v1/connections: create, read, change and delete directory connections; sync requests and SCIM tokens.

Credentials go in and never come out: every answer and every event is searched for them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.models import Connection
from store.secret_box import SecretBox
from store.services import connections
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import Org, RecordedJobs, auth, events, make_client

BOX = SecretBox([SecretBox.generate_key()])
CLIENT_SECRET = "s3cret-client-value-~xyz"  # a test value searched for in answers
SERVICE_ACCOUNT_KEY = {
    "type": "service_account",
    "client_email": "sync@acme-project.iam.gserviceaccount.com",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ-not-a-real-key\n-----END PRIVATE KEY-----\n",
    "private_key_id": "pk-0123456789",
}
MS_SETTINGS = {"tenant_id": "tenant-1", "client_id": "client-1"}
MICROSOFT: dict[str, Any] = {
    "kind": "microsoft",
    "name": "Entra ID",
    "settings": MS_SETTINGS,
    "credentials": {"client_secret": CLIENT_SECRET},
}
GOOGLE: dict[str, Any] = {
    "kind": "google",
    "name": "Workspace",
    "settings": {"admin_email": "admin@acme.example", "scope": {"org_units": ["/Staff"]}},
    "credentials": {"service_account_key": SERVICE_ACCOUNT_KEY},
}
SECRETS = (CLIENT_SECRET, "MIIEvQ-not-a-real-key", "pk-0123456789")


@pytest.fixture
def queued() -> RecordedJobs:
    """What the API asked of the worker after its commits."""
    return RecordedJobs()


@pytest.fixture
def api(api_factory: sessionmaker[Session], queued: RecordedJobs) -> TestClient:
    """The API with a key ring the test knows (to read what was stored) and what it asks recorded."""
    return make_client(api_factory, secret_box=BOX, jobs=queued)


def create(client: TestClient, org: Org, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- create ------------------------------------------------------------------------------------


def test_create_a_microsoft_connection(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    response = api.post("/v1/connections", json=MICROSOFT, headers=auth(org.admin_token))

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/connections/{body['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert body["token"] is None
    del body["token"]
    assert body == api.get(f"/v1/connections/{body['id']}", headers=auth(org.admin_token)).json()
    assert (body["kind"], body["name"], body["status"]) == ("microsoft", "Entra ID", "active")
    assert body["settings"] == {"tenant_id": "tenant-1", "client_id": "client-1", "scope": {}, "team_groups": []}
    assert (body["last_synced_at"], body["last_error"], body["last_counts"], body["last_notes"]) == (None, None, {}, [])
    assert set(body) == {
        "id", "kind", "name", "status", "held_plan_id", "settings", "last_synced_at", "last_error",
        "last_counts", "last_notes", "feed_url", "created_at", "updated_at",
    }  # fmt: skip
    assert body["feed_url"] is None
    assert_no_secret(response.text)
    event = events(api_factory, org.organisation.id)[-1]
    assert (event.type, event.data) == (
        "connection.created",
        {"connection_id": body["id"], "kind": "microsoft", "name": "Entra ID"},
    )
    with api_factory() as session:
        row = session.get_one(Connection, body["id"])
        assert row.credentials_encrypted is not None
        assert CLIENT_SECRET not in row.credentials_encrypted  # encrypted at rest
        assert connections.credentials(BOX, row) == {"client_secret": CLIENT_SECRET}


def test_a_certificate_credential_is_enough_too(api: TestClient, org: Org) -> None:
    credentials = {"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ-not-a-real-key\n", "thumbprint": "AB12"}
    response = api.post(
        "/v1/connections", json={**MICROSOFT, "credentials": credentials}, headers=auth(org.admin_token)
    )
    assert response.status_code == 201, response.text
    assert_no_secret(response.text)


def test_create_a_scim_connection_shows_its_token_once(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    body = create(api, org, {"kind": "scim", "name": "Okta"})

    token = body["token"]
    assert token.startswith("dbscim_")
    fetched = api.get(f"/v1/connections/{body['id']}", headers=auth(org.admin_token))
    listed = api.get("/v1/connections", headers=auth(org.admin_token))
    for text in (fetched.text, listed.text, *(json.dumps(e.data) for e in events(api_factory, org.organisation.id))):
        assert token not in text
    assert "token" not in fetched.json()
    with api_factory() as session:
        found = connections.authenticate_scim(session, token)
        assert found is not None
        assert found.id == body["id"]


def test_a_csv_connection_mirrors_its_teams_unless_told_otherwise(api: TestClient, org: Org) -> None:
    assert create(api, org, {"kind": "csv", "name": "HR export"})["settings"]["team_groups"] == ["*"]
    chosen = create(api, org, {"kind": "csv", "name": "Other", "settings": {"team_groups": ["ops"]}})
    assert chosen["settings"]["team_groups"] == ["ops"]
    assert (
        create(api, org, {"kind": "csv", "name": "None", "settings": {"team_groups": []}})["settings"]["team_groups"]
        == []
    )
    # Only csv connections get the default: a directory's groups are opted in one by one.
    assert create(api, org, {"kind": "scim", "name": "Okta"})["settings"]["team_groups"] == []


def test_the_service_account_key_never_comes_back(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    created = api.post("/v1/connections", json=GOOGLE, headers=auth(org.admin_token))
    assert created.status_code == 201, created.text
    path = f"/v1/connections/{created.json()['id']}"
    answers = [
        created,
        api.get(path, headers=auth(org.admin_token)),
        api.get("/v1/connections", headers=auth(org.admin_token)),
        api.patch(path, json={"name": "Google", "credentials": GOOGLE["credentials"]}, headers=auth(org.admin_token)),
        api.post(f"{path}/sync", headers=auth(org.admin_token)),
        api.delete(path, headers=auth(org.admin_token)),
    ]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 202, 204]
    for answer in answers:
        assert_no_secret(answer.text)
    recorded = events(api_factory, org.organisation.id)
    assert {"connection.created", "connection.updated", "connection.deleted"} <= {e.type for e in recorded}
    for event in recorded:
        assert_no_secret(json.dumps(event.data))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "kind"),
        ({"kind": "okta", "name": "x"}, "kind"),
        ({"kind": "scim"}, "name"),
        ({"kind": "scim", "name": "   "}, "name"),
        ({"kind": "scim", "name": "x" * 201}, "name"),
        ({**MICROSOFT, "settings": {"client_id": "c"}}, "settings"),
        ({**MICROSOFT, "settings": {**MS_SETTINGS, "colour": "blue"}}, "settings"),
        ({**MICROSOFT, "settings": {**MS_SETTINGS, "scope": ["g1"]}}, "settings.scope"),
        ({**MICROSOFT, "settings": {**MS_SETTINGS, "scope": {"groups": "g1"}}}, "settings.scope.groups"),
        (
            {**MICROSOFT, "settings": {**MS_SETTINGS, "scope": {"include_guests": "yes"}}},
            "settings.scope.include_guests",
        ),
        ({**MICROSOFT, "settings": {**MS_SETTINGS, "team_groups": "*"}}, "settings.team_groups"),
        ({**MICROSOFT, "credentials": {}}, "credentials"),
        ({**MICROSOFT, "credentials": {"thumbprint": "AB"}}, "credentials"),
        ({**GOOGLE, "credentials": {"client_secret": "x"}}, "credentials"),
        ({**MICROSOFT, "settings": "tenant"}, "settings"),
        ({**MICROSOFT, "token": "mine"}, "token"),
    ],
)
def test_create_refuses_bad_input(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, body: dict[str, Any], field: str
) -> None:
    with nothing_written(api_factory):
        response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    problem = assert_problem(response, 422)
    assert error_fields(problem) == {field}
    assert_no_secret(response.text)


# --- read --------------------------------------------------------------------------------------


def test_list_is_paginated_and_only_the_callers(api: TestClient, org: Org, other_org: Org) -> None:
    ids = [create(api, org, {"kind": "scim", "name": f"S{n}"})["id"] for n in range(3)]
    create(api, other_org, {"kind": "scim", "name": "Theirs"})

    first = api.get("/v1/connections", params={"limit": 2}, headers=auth(org.admin_token)).json()
    assert [item["id"] for item in first["data"]] == ids[:2]
    assert first["has_more"] is True
    second = api.get(
        "/v1/connections", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth(org.admin_token)
    ).json()
    assert [item["id"] for item in second["data"]] == ids[2:]
    assert (second["has_more"], second["next_cursor"]) == (False, None)


def test_list_refuses_a_foreign_cursor_and_a_bad_limit(api: TestClient, org: Org) -> None:
    for params, name in [({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"), ({"limit": 0}, "limit")]:
        response = api.get("/v1/connections", params=params, headers=auth(org.admin_token))
        assert error_fields(assert_problem(response, 422)) == {name}


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("POST", "/sync", None),
        ("POST", "/token", None),
        ("POST", "/import", {"csv": "email\na@x.example\n"}),
    ],
)
def test_unknown_and_other_organisations_connections_are_404(
    api: TestClient,
    api_factory: sessionmaker[Session],
    org: Org,
    other_org: Org,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = create(api, other_org, {"kind": "csv", "name": "Theirs"})["id"]
    with nothing_written(api_factory):
        for connection_id in (theirs, 999_999):
            response = api.request(
                method, f"/v1/connections/{connection_id}{suffix}", json=body, headers=auth(org.admin_token)
            )
            assert_problem(response, 404, "not_found")
    bad = api.request(method, f"/v1/connections/0{suffix}", json=body, headers=auth(org.admin_token))
    assert error_fields(assert_problem(bad, 422)) == {"connection_id"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/connections", None),
        ("POST", "/v1/connections", {"kind": "scim", "name": "x"}),
        ("GET", "/v1/connections/{id}", None),
        ("PATCH", "/v1/connections/{id}", {"name": "x"}),
        ("DELETE", "/v1/connections/{id}", None),
        ("POST", "/v1/connections/{id}/sync", None),
        ("POST", "/v1/connections/{id}/token", None),
        ("POST", "/v1/connections/{id}/import", {"csv": "email\na@x.example\n"}),
    ],
)
def test_only_admins_may_and_only_with_a_token(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, method: str, path: str, body: dict[str, Any] | None
) -> None:
    connection_id = create(api, org, {"kind": "scim", "name": "Okta"})["id"]
    url = path.format(id=connection_id)
    with nothing_written(api_factory):
        assert_problem(api.request(method, url, json=body, headers=auth(org.member_token)), 403, "admin_only")
        assert_problem(api.request(method, url, json=body), 401)


# --- change ------------------------------------------------------------------------------------


def test_patch_name_scope_and_teams(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]
    with api_factory.begin() as session:
        session.get_one(Connection, connection_id).cursor = "delta-link"

    response = api.patch(
        f"/v1/connections/{connection_id}",
        json={"name": " Entra  ID (HQ) ", "settings": {"scope": {"groups": ["g-1"]}, "team_groups": ["g-1"]}},
        headers=auth(org.admin_token),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Entra ID (HQ)"
    assert body["settings"] == {
        "tenant_id": "tenant-1",
        "client_id": "client-1",
        "scope": {"groups": ["g-1"]},
        "team_groups": ["g-1"],
    }
    event = events(api_factory, org.organisation.id)[-1]
    assert (event.type, event.data["changed"]) == ("connection.updated", ["name", "settings"])
    with api_factory() as session:
        assert session.get_one(Connection, connection_id).cursor is None  # a new scope needs a full listing


def test_new_credentials_put_a_connection_needing_action_back_to_active(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]
    with api_factory.begin() as session:
        row = session.get_one(Connection, connection_id)
        connections.fail(session, row, "The client secret expired.", action_required=True, notes=[])
    assert api.get(f"/v1/connections/{connection_id}", headers=auth(org.admin_token)).json()["status"] == (
        "action_required"
    )

    fresh = {"client_secret": "a-new-secret-value"}
    response = api.patch(f"/v1/connections/{connection_id}", json={"credentials": fresh}, headers=auth(org.admin_token))

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert "a-new-secret-value" not in response.text
    with api_factory() as session:
        assert connections.credentials(BOX, session.get_one(Connection, connection_id)) == fresh
    assert events(api_factory, org.organisation.id)[-1].data["changed"] == ["credentials"]


def test_patch_with_nothing_new_records_nothing(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]
    before = len(events(api_factory, org.organisation.id))
    response = api.patch(f"/v1/connections/{connection_id}", json={"name": "Entra ID"}, headers=auth(org.admin_token))
    assert response.status_code == 200
    assert len(events(api_factory, org.organisation.id)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"settings": None}, "settings"),
        ({"settings": {"tenant_id": ""}}, "settings"),
        ({"settings": {"scope": {"domains": [""]}}}, "settings.scope.domains"),
        ({"settings": {"admin_email": "a@b.example"}}, "settings"),
        ({"credentials": {"client_secret": ""}}, "credentials"),
        ({"kind": "google"}, "kind"),
    ],
)
def test_patch_refuses_bad_input(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, body: dict[str, Any], field: str
) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]
    with nothing_written(api_factory):
        response = api.patch(f"/v1/connections/{connection_id}", json=body, headers=auth(org.admin_token))
    assert error_fields(assert_problem(response, 422)) == {field}


def test_patch_and_create_need_a_json_body(api: TestClient, org: Org) -> None:
    response = api.post(
        "/v1/connections", content=b"kind=scim", headers={**auth(org.admin_token), "Content-Type": "text/plain"}
    )
    assert_problem(response, 415)
    response = api.post(
        "/v1/connections", content=b"{", headers={**auth(org.admin_token), "Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


def test_delete(api: TestClient, api_factory: sessionmaker[Session], org: Org, queued: RecordedJobs) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]

    response = api.delete(f"/v1/connections/{connection_id}", headers=auth(org.admin_token))

    assert response.status_code == 204
    assert queued.closed == [connection_id]  # its push channels closed while its credentials existed
    assert response.content == b""
    assert_problem(api.get(f"/v1/connections/{connection_id}", headers=auth(org.admin_token)), 404)
    event = events(api_factory, org.organisation.id)[-1]
    assert (event.type, event.data["connection_id"]) == ("connection.deleted", connection_id)


# --- sync and token ----------------------------------------------------------------------------


def test_a_directory_is_read_and_its_channels_opened_once_created(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, queued: RecordedJobs
) -> None:
    microsoft = create(api, org, MICROSOFT)["id"]
    google = create(api, org, GOOGLE)["id"]
    create(api, org, {"kind": "scim", "name": "Okta"})
    create(api, org, {"kind": "csv", "name": "HR"})

    assert queued.syncs == [microsoft, google]  # pushed kinds wait for their pushes and files
    assert queued.channels == [(microsoft, False), (google, False)]
    with api_factory() as session:
        assert session.get_one(Connection, microsoft).sync_requested_at is not None


def test_sync_is_queued_once_while_it_waits(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, queued: RecordedJobs
) -> None:
    connection_id = create(api, org, {"kind": "csv", "name": "HR"})["id"]
    path = f"/v1/connections/{connection_id}/sync"

    first = api.post(path, headers=auth(org.admin_token))
    second = api.post(path, headers=auth(org.admin_token))

    assert (first.status_code, first.json()) == (202, {"queued": True})
    assert (second.status_code, second.json()) == (202, {"queued": False})  # coalesced into the first
    assert queued.syncs == [connection_id]
    with api_factory() as session:
        assert session.get_one(Connection, connection_id).sync_requested_at is not None


def test_a_sync_started_lets_the_next_request_queue_again(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, queued: RecordedJobs
) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]  # its first sync is asked for
    path = f"/v1/connections/{connection_id}/sync"
    assert api.post(path, headers=auth(org.admin_token)).json() == {"queued": False}
    with api_factory.begin() as session:
        assert connections.claim(session, connection_id)  # what the worker does as the sync starts

    assert api.post(path, headers=auth(org.admin_token)).json() == {"queued": True}
    assert queued.syncs == [connection_id, connection_id]


def test_channels_are_reopened_when_credentials_or_tenant_change(
    api: TestClient, org: Org, queued: RecordedJobs
) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]
    path = f"/v1/connections/{connection_id}"
    for body in (
        {"name": "Renamed"},
        {"settings": {"scope": {"domains": ["acme.example"]}, "team_groups": ["*"]}},
        {"settings": {"tenant_id": "tenant-2"}},
        {"credentials": {"client_secret": "another"}},
    ):
        assert api.patch(path, json=body, headers=auth(org.admin_token)).status_code == 200
    assert queued.channels == [(connection_id, False), (connection_id, True), (connection_id, True)]


def test_rotate_a_scim_token(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    created = create(api, org, {"kind": "scim", "name": "Okta"})

    response = api.post(f"/v1/connections/{created['id']}/token", headers=auth(org.admin_token))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()["token"]
    assert token.startswith("dbscim_")
    assert token != created["token"]
    with api_factory() as session:
        assert connections.authenticate_scim(session, created["token"]) is None
        assert connections.authenticate_scim(session, token) is not None


def test_only_scim_connections_have_a_token(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = create(api, org, MICROSOFT)["id"]
    with nothing_written(api_factory):
        response = api.post(f"/v1/connections/{connection_id}/token", headers=auth(org.admin_token))
    assert error_fields(assert_problem(response, 422)) == {"kind"}


def test_rows_hold_no_secret_in_clear(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    create(api, org, MICROSOFT)
    create(api, org, GOOGLE)
    with api_factory() as session:
        for row in session.scalars(select(Connection)):
            assert_no_secret(json.dumps(row.settings) + (row.credentials_encrypted or ""))

"""/v1/connections with kind "caldav": validated by the kind's descriptor (connectors/caldav/kind.py),
credentials kept encrypted and never shown, its calendar read by the calendar worker (create, sync now)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Connection
from store.services import connections
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.api.v1.test_connections_calendars import BOX
from tests.conftest import Org, RecordedJobs, auth, events, make_client


@pytest.fixture
def hooks() -> RecordedJobs:
    """What the API asked of the worker after its commits."""
    return RecordedJobs()


@pytest.fixture
def api(api_factory: sessionmaker[Session], hooks: RecordedJobs) -> TestClient:
    """The API with the calendars' secret box, its hooks to the workers recorded."""
    return make_client(api_factory, secret_box=BOX, jobs=hooks)


PASSWORD = "app-password-7c1e"  # searched for in every answer and event
CALDAV: dict[str, Any] = {
    "kind": "caldav",
    "name": "Will's calendars",
    "settings": {"member_email": "will@acme.example", "calendar": "Work"},
    "credentials": {"url": "https://dav.example/", "username": "will", "password": PASSWORD},
}


def test_a_caldav_connection_is_made_read_by_the_calendar_worker_and_keeps_its_password(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs
) -> None:
    response = api.post("/v1/connections", json=CALDAV, headers=auth(org.admin_token))

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["kind"], created["settings"]["calendar"]) == ("caldav", "Work")
    assert PASSWORD not in response.text
    assert hooks.calendars == [created["id"]]
    assert hooks.syncs == []  # no directory to read
    assert hooks.channels == []  # no push channels
    with api_factory() as session:
        row = session.get_one(Connection, created["id"])
        assert connections.credentials(BOX, row)["password"] == PASSWORD
        assert row.credentials_encrypted is not None
        assert PASSWORD not in row.credentials_encrypted
    assert all(PASSWORD not in str(event.data) for event in events(api_factory, org.organisation.id))

    synced = api.post(f"/v1/connections/{created['id']}/sync", headers=auth(org.admin_token))
    assert (synced.status_code, synced.json()) == (202, {"queued": True})
    assert hooks.calendars == [created["id"], created["id"]]
    assert hooks.syncs == []


def test_a_caldav_connection_without_its_password_or_with_a_strange_setting_is_refused(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    headers = auth(org.admin_token)
    without = {**CALDAV, "credentials": {"url": "https://dav.example/", "username": "will"}}
    with nothing_written(api_factory):
        body = assert_problem(api.post("/v1/connections", json=without, headers=headers), 422)
        assert error_fields(body) == {"credentials"}
        assert "password + url + username" in str(body)
        strange = {**CALDAV, "settings": {"tenant_id": "t"}}
        body = assert_problem(api.post("/v1/connections", json=strange, headers=headers), 422)
        assert error_fields(body) == {"settings"}
        assert "unknown setting 'tenant_id' for a caldav connection" in str(body)
        for url in ("gopher://dav.example/", "https://will:pw@dav.example/", "dav.example"):
            bad_url = {**CALDAV, "credentials": {**CALDAV["credentials"], "url": url}}
            body = assert_problem(api.post("/v1/connections", json=bad_url, headers=headers), 422)
            assert error_fields(body) == {"credentials.url"}
            assert url not in str(body)
            assert "http or https" in str(body) or "user or password" in str(body)
        flag = {**CALDAV, "settings": {"calendar": 3}}
        body = assert_problem(api.post("/v1/connections", json=flag, headers=headers), 422)
        assert error_fields(body) == {"settings.calendar"}


def test_an_unknown_kind_is_refused_with_the_registrys_kinds(api: TestClient, org: Org) -> None:
    response = api.post("/v1/connections", json={**CALDAV, "kind": "exchange"}, headers=auth(org.admin_token))

    body = assert_problem(response, 422)
    assert "caldav" in str(body)


def test_the_schema_lists_every_kind_and_its_options_from_the_registry(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    connection_in = schema["components"]["schemas"]["ConnectionIn"]["properties"]

    assert "caldav" in connection_in["kind"]["enum"]
    assert "caldav: member_email" in connection_in["settings"]["description"]
    assert "caldav: url" in connection_in["credentials"]["description"]
    variants = {
        item["properties"]["kind"]["const"]: item for item in schema["components"]["schemas"]["ConnectionIn"]["oneOf"]
    }
    assert set(variants) == set(connection_in["kind"]["enum"])
    caldav = variants["caldav"]["properties"]
    every_kind = {"scope", "team_groups", "removal_limit"}
    assert {"member_email", "calendar", *every_kind} == set(caldav["settings"]["properties"])
    assert caldav["settings"]["additionalProperties"] is False
    assert {"url", "username", "password"} <= set(caldav["credentials"]["properties"])

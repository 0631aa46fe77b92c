"""/v1/connections and calendars: ICS feed connections (their URL never shown whole) and `calendars` on
Microsoft and Google connections, each handing the calendar worker its hook."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Connection
from store.secret_box import SecretBox
from store.services import calendars, connections
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import Org, RecordedJobs, auth, events, make_client

BOX = SecretBox([SecretBox.generate_key()])
TOKEN = "private-a1b2c3d4e5"  # the secret part of the feed URL, searched for in every answer
URL = f"webcal://calendar.example/calendar/ical/ada%40acme.example/{TOKEN}/basic.ics?key={TOKEN}"
ICS: dict[str, Any] = {
    "kind": "ics",
    "name": "Will's calendar",
    "settings": {"member_email": "will@acme.example"},
    "credentials": {"url": URL},
}
MICROSOFT: dict[str, Any] = {
    "kind": "microsoft",
    "name": "Entra ID",
    "settings": {"tenant_id": "tenant-1", "client_id": "client-1", "calendars": True},
    "credentials": {"client_secret": "s3cret"},
}


@pytest.fixture
def hooks() -> RecordedJobs:
    """What the API asked of the worker after its commits."""
    return RecordedJobs()


@pytest.fixture
def api(api_factory: sessionmaker[Session], hooks: RecordedJobs) -> TestClient:
    """The API with the calendars' secret box, what it asks of the worker recorded."""
    return make_client(api_factory, secret_box=BOX, jobs=hooks)


def create(api: TestClient, org: Org, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    assert TOKEN not in response.text
    created: dict[str, Any] = response.json()
    return created


def stored_url(factory: sessionmaker[Session], connection_id: int) -> object:
    with factory() as session:
        return connections.credentials(BOX, session.get_one(Connection, connection_id)).get("url")


def test_an_ics_connection_shows_its_url_redacted(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs
) -> None:
    created = create(api, org, ICS)

    assert (created["kind"], created["feed_url"]) == ("ics", "webcal://calendar.example/…")
    assert created["settings"]["member_email"] == "will@acme.example"
    assert created["token"] is None
    headers = auth(org.admin_token)
    for answer in (
        api.get(f"/v1/connections/{created['id']}", headers=headers),
        api.get("/v1/connections", headers=headers),
    ):
        assert answer.status_code == 200
        assert TOKEN not in answer.text
        assert "webcal://calendar.example/…" in answer.text
    assert not any(TOKEN in str(event.data) for event in events(api_factory, org.organisation.id))
    assert stored_url(api_factory, created["id"]) == URL
    with api_factory() as session:
        encrypted = session.scalars(select(Connection.credentials_encrypted)).one()
    assert encrypted is not None
    assert TOKEN not in encrypted
    # Read by the calendar worker, not the directory sync: no directory sync, no channels.
    assert (hooks.calendars, hooks.syncs, hooks.channels) == ([created["id"]], [], [])


def test_a_new_url_is_redacted_too_and_tells_the_worker(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs
) -> None:
    created = create(api, org, ICS)
    headers = auth(org.admin_token)
    renamed = api.patch(f"/v1/connections/{created['id']}", json={"name": "Renamed"}, headers=headers)
    assert renamed.status_code == 200
    assert hooks.calendars == [created["id"]]  # a new name reads nothing differently

    new_url = f"https://outlook.example/owa/calendar/{TOKEN}/reachcalendar.ics"
    response = api.patch(f"/v1/connections/{created['id']}", json={"credentials": {"url": new_url}}, headers=headers)
    assert response.status_code == 200, response.text
    assert TOKEN not in response.text
    assert response.json()["feed_url"] == "https://outlook.example/…"
    assert stored_url(api_factory, created["id"]) == new_url
    assert hooks.calendars == [created["id"], created["id"]]


@pytest.mark.parametrize(
    "credentials",
    [{}, {"url": ""}, {"url": "ftp://calendar.example/x.ics"}, {"url": f"{TOKEN}.ics"}, {"url": 42},
     {"url": "https://" + "x" * 2001}, {"url": f"javascript:{TOKEN}"}, {"url": "https://[::1/x.ics"}],
)  # fmt: skip
def test_unusable_feed_urls_are_refused(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs, credentials: dict[str, Any]
) -> None:
    with nothing_written(api_factory):
        response = api.post("/v1/connections", json={**ICS, "credentials": credentials}, headers=auth(org.admin_token))
    body = assert_problem(response, 422)
    assert error_fields(body) <= {"credentials", "credentials.url"}
    assert TOKEN not in response.text
    assert hooks.calendars == []


def test_an_ics_connection_refuses_other_settings_and_bad_updates(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs
) -> None:
    headers = auth(org.admin_token)
    with nothing_written(api_factory):
        response = api.post("/v1/connections", json={**ICS, "settings": {"tenant_id": "t"}}, headers=headers)
        assert error_fields(assert_problem(response, 422)) == {"settings"}
    created = create(api, org, ICS)
    with nothing_written(api_factory):
        response = api.patch(
            f"/v1/connections/{created['id']}", json={"credentials": {"url": "gopher://x"}}, headers=headers
        )
        assert error_fields(assert_problem(response, 422)) == {"credentials.url"}
    assert hooks.calendars == [created["id"]]


def test_syncing_an_ics_connection_reads_its_feed(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs
) -> None:
    created = create(api, org, ICS)
    response = api.post(f"/v1/connections/{created['id']}/sync", headers=auth(org.admin_token))
    assert (response.status_code, response.json()) == (202, {"queued": True})
    assert hooks.calendars == [created["id"], created["id"]]
    assert hooks.syncs == []  # never the directory sync, which has no reader for a feed
    with api_factory() as session:
        assert session.get_one(Connection, created["id"]).sync_requested_at is None


def test_calendars_on_microsoft_and_google(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, hooks: RecordedJobs
) -> None:
    headers = auth(org.admin_token)
    reading = create(api, org, MICROSOFT)
    assert reading["settings"]["calendars"] is True
    assert hooks.calendars == [reading["id"]]
    assert hooks.channels == [(reading["id"], False)]

    plain = create(api, org, {**MICROSOFT, "settings": {"tenant_id": "t", "client_id": "c"}})
    assert hooks.calendars == [reading["id"]]  # a directory only: no calendars to read

    # Turning calendars on or off: the calendar worker hears of it; the directory's channels stay.
    for connection_id, flag in ((plain["id"], True), (reading["id"], False)):
        response = api.patch(
            f"/v1/connections/{connection_id}", json={"settings": {"calendars": flag}}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["settings"]["calendars"] is flag
    assert hooks.calendars == [reading["id"], plain["id"], reading["id"]]
    assert hooks.channels == [(reading["id"], False), (plain["id"], False)]

    with nothing_written(api_factory):
        response = api.patch(f"/v1/connections/{plain['id']}", json={"settings": {"calendars": "yes"}}, headers=headers)
        assert error_fields(assert_problem(response, 422)) == {"settings.calendars"}
    assert len(hooks.calendars) == 3


def test_a_connections_calendars_show_how_each_last_sync_went(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = create(api, org, ICS)["id"]
    with transaction(api_factory) as session:
        [calendar] = calendars.ensure(session, session.get_one(Connection, connection_id))
        calendars.fail(session, calendar, "the server answered 404 Not Found", action_required=True)
    response = api.get(f"/v1/connections/{connection_id}/calendars", headers=auth(org.admin_token))

    assert response.status_code == 200
    [item] = response.json()["data"]
    assert (item["member_id"], item["status"]) == (org.member.id, "action_required")
    assert item["last_error"] == "the server answered 404 Not Found"
    assert TOKEN not in response.text
    assert_problem(api.get("/v1/connections/999/calendars", headers=auth(org.admin_token)), 404)

"""/v1/connections for peer platforms (wheniwork, kadence, resourceguru): credentials checked and kept
encrypted, never shown; a new connection is read at once (no push channels)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Connection
from store.services import connections
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.api.v1.test_connections import BOX, api, queued  # noqa: F401 (fixtures)
from tests.conftest import Org, RecordedJobs, auth

PEERS: dict[str, dict[str, Any]] = {
    "wheniwork": {
        "settings": {},
        "credentials": {"developer_key": "wkey-secret-1", "username": "boss@example.com", "password": "pw-secret-2"},
    },
    "kadence": {
        "settings": {"region": "US", "import_desks": True},
        "credentials": {"client_id": "kid", "client_secret": "kadence-secret-3"},
    },
    "resourceguru": {
        "settings": {"account": "example-corp"},
        "credentials": {
            "client_id": "rg",
            "client_secret": "rg-secret-4",
            "access_token": "access-secret-5",
            "refresh_token": "refresh-secret-6",
            "expires_at": "2030-01-01T00:00:00+00:00",
            "webhook_secret": "hook-secret-7",
        },
    },
}


@pytest.mark.parametrize("kind", sorted(PEERS))
def test_a_peer_connection_is_made_read_at_once_and_keeps_its_secrets(
    api: TestClient,  # noqa: F811
    api_factory: sessionmaker[Session],
    org: Org,
    queued: RecordedJobs,  # noqa: F811
    kind: str,
) -> None:
    body = {"kind": kind, "name": kind, **PEERS[kind]}
    response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["kind"] == kind
    for secret in PEERS[kind]["credentials"].values():
        if "secret" in secret:
            assert secret not in response.text
    assert queued.syncs == [created["id"]]
    assert queued.channels == []
    with api_factory() as session:
        row = session.get_one(Connection, created["id"])
        assert connections.credentials(BOX, row) == PEERS[kind]["credentials"]
    if kind == "kadence":
        assert created["settings"]["region"] == "us"


@pytest.mark.parametrize(
    ("kind", "settings", "credentials", "field"),
    [
        ("wheniwork", {}, {"developer_key": "k", "username": "u"}, "credentials"),
        ("kadence", {"region": "mars"}, {"client_id": "k", "client_secret": "s"}, "settings.region"),
        ("kadence", {"import_desks": "yes"}, {"client_id": "k", "client_secret": "s"}, "settings.import_desks"),
        ("resourceguru", {}, PEERS["resourceguru"]["credentials"], "settings"),
        ("resourceguru", {"account": "a"}, {"client_id": "c", "client_secret": "s"}, "credentials"),
    ],
)
def test_incomplete_peer_connections_are_refused(
    api: TestClient,  # noqa: F811
    org: Org,
    kind: str,
    settings: dict[str, Any],
    credentials: dict[str, Any],
    field: str,
) -> None:
    body = {"kind": kind, "name": kind, "settings": settings, "credentials": credentials}
    response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 422, response.text
    assert field in response.text


WHENIWORK = PEERS["wheniwork"]["credentials"]


def test_when_i_work_office_locations_are_kept_changed_and_taken_away(
    api: TestClient,  # noqa: F811
    org: Org,
) -> None:
    body = {"kind": "wheniwork", "name": "W", "credentials": WHENIWORK}
    body["settings"] = {"office_locations": [136, " Downtown ", 136]}
    response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["settings"]["office_locations"] == [136, "Downtown"]
    url = f"/v1/connections/{created['id']}"
    changed = api.patch(url, json={"settings": {"office_locations": ["Uptown"]}}, headers=auth(org.admin_token))
    assert changed.json()["settings"]["office_locations"] == ["Uptown"]
    renamed = api.patch(url, json={"name": "When I Work"}, headers=auth(org.admin_token))
    assert renamed.json()["settings"]["office_locations"] == ["Uptown"]  # left out: kept
    cleared = api.patch(url, json={"settings": {"office_locations": None}}, headers=auth(org.admin_token))
    assert "office_locations" not in cleared.json()["settings"]  # every location again


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("Downtown", "must be a list"),
        ({"id": 136}, "must be a list"),
        ([0], "0 is neither"),
        ([-3], "-3 is neither"),
        ([True], "True is neither"),
        ([1.5], "1.5 is neither"),
        (["  "], "'  ' is neither"),
        (["x" * 201], "is neither"),
        ([[136]], "[136] is neither"),
        (list(range(1, 502)), "at most 500"),
    ],
)
def test_bad_office_locations_are_refused_and_change_nothing(
    api: TestClient,  # noqa: F811
    api_factory: sessionmaker[Session],
    org: Org,
    value: object,
    said: str,
) -> None:
    body = {"kind": "wheniwork", "name": "W", "settings": {"office_locations": value}, "credentials": WHENIWORK}
    with nothing_written(api_factory):
        response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    problem = assert_problem(response, 422)
    assert error_fields(problem) == {"settings.office_locations"}
    assert said in response.text
    made = api.post(
        "/v1/connections",
        json={"kind": "wheniwork", "name": "W", "credentials": WHENIWORK},
        headers=auth(org.admin_token),
    ).json()
    with nothing_written(api_factory):
        refused = api.patch(
            f"/v1/connections/{made['id']}",
            json={"settings": {"office_locations": value}},
            headers=auth(org.admin_token),
        )
    assert error_fields(assert_problem(refused, 422)) == {"settings.office_locations"}


def test_office_locations_are_for_when_i_work_only(
    api: TestClient,  # noqa: F811
    org: Org,
) -> None:
    body = {
        "kind": "kadence",
        "name": "K",
        "settings": {"office_locations": [1]},
        **{"credentials": PEERS["kadence"]["credentials"]},
    }
    response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 422
    assert "unknown setting 'office_locations'" in response.text

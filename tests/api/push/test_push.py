"""Inbound push notifications: only genuine ones start a sync, a burst starts one, forgeries nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Connection, ConnectionKind
from store.secret_box import SecretBox
from store.services import connections, push_channels
from tests.conftest import Org, RecordedJobs, make_client, shared_data

BOX = SecretBox([SecretBox.generate_key()])
SECRET = "s3cret-client-state"


@dataclass
class Setup:
    client: TestClient
    queued: RecordedJobs
    factory: sessionmaker[Session]
    microsoft: int
    google: int
    other: int


def _connection(factory: sessionmaker[Session], org: Org, kind: ConnectionKind, channel: str, **extra: str) -> int:
    with transaction(factory) as session:
        if kind is ConnectionKind.MICROSOFT:
            connection, _ = connections.create(
                session,
                BOX,
                org.organisation.id,
                kind,
                "Entra",
                settings={"tenant_id": "t", "client_id": "c"},
                credentials={"client_secret": "x"},
            )
        else:
            connection, _ = connections.create(
                session,
                BOX,
                org.organisation.id,
                kind,
                "Workspace",
                settings={"admin_email": "admin@acme.example"},
                credentials={"service_account_key": {"type": "service_account"}},
            )
        push_channels.add(
            session,
            connection.id,
            None,
            provider_id=channel,
            resource="users",
            expires_at=utcnow() + timedelta(days=1),
            secret=SECRET,
            **extra,
        )
        return connection.id


@pytest.fixture
def setup(api_factory: sessionmaker[Session], org: Org) -> Setup:
    queued = RecordedJobs()
    return Setup(
        client=make_client(api_factory, secret_box=BOX, jobs=queued),
        queued=queued,
        factory=api_factory,
        microsoft=_connection(api_factory, org, ConnectionKind.MICROSOFT, "sub-1"),
        google=_connection(api_factory, org, ConnectionKind.GOOGLE, "chan-1", resource_id="res-1"),
        other=_connection(api_factory, org, ConnectionKind.MICROSOFT, "sub-2"),
    )


def graph_body(subscription: str = "sub-1", secret: str = SECRET, count: int = 1, **item: str) -> dict[str, object]:
    base = {"subscriptionId": subscription, "clientState": secret, "changeType": "updated", "resource": "users/1"}
    return {"value": [{**base, **item} for _ in range(count)]}


def requested(setup: Setup, connection_id: int) -> bool:
    with setup.factory() as session:
        return session.get_one(Connection, connection_id).sync_requested_at is not None


def test_graph_validation_handshake_echoes_the_token_as_plain_text(setup: Setup) -> None:
    for path in (f"/push/microsoft/{setup.microsoft}", f"/push/microsoft/{setup.microsoft}/lifecycle"):
        response = setup.client.post(
            path, params={"validationToken": "Validation: Testing client application"}, content=b""
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "Validation: Testing client application"
    assert setup.queued.syncs == []


def test_a_genuine_notification_queues_one_sync_and_a_burst_no_more(setup: Setup) -> None:
    first = setup.client.post(f"/push/microsoft/{setup.microsoft}", json=graph_body())
    assert first.status_code == 202
    for _ in range(99):
        assert setup.client.post(f"/push/microsoft/{setup.microsoft}", json=graph_body(count=3)).status_code == 202
    assert setup.queued.syncs == [setup.microsoft]
    assert requested(setup, setup.microsoft)


@pytest.mark.parametrize(
    "body",
    [
        graph_body(secret="wrong"),
        graph_body(subscription="unknown"),
        graph_body(subscription="sub-2"),  # genuine, but another connection's subscription
        {"value": [graph_body()["value"][0], graph_body(secret="")["value"][0]]},  # one forged item in a batch
    ],
    ids=["wrong-client-state", "unknown-subscription", "other-connection", "forged-item-in-batch"],
)
def test_forged_graph_notifications_are_refused_and_queue_nothing(setup: Setup, body: dict[str, object]) -> None:
    response = setup.client.post(f"/push/microsoft/{setup.microsoft}", json=body)
    assert response.status_code == 401
    assert setup.queued.syncs == []
    assert not requested(setup, setup.microsoft)


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"value": [{"clientState": "x"}]}'])
def test_malformed_graph_bodies_are_400(setup: Setup, body: bytes) -> None:
    response = setup.client.post(
        f"/push/microsoft/{setup.microsoft}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert setup.queued.syncs == []


@pytest.mark.parametrize(
    ("event", "sync", "channels"),
    [
        ("missed", True, []),
        ("subscriptionRemoved", True, [True]),
        ("reauthorizationRequired", False, [False]),
    ],
)
def test_lifecycle_events(setup: Setup, event: str, sync: bool, channels: list[bool]) -> None:
    body = {"value": [{"subscriptionId": "sub-1", "clientState": SECRET, "lifecycleEvent": event}]}
    response = setup.client.post(f"/push/microsoft/{setup.microsoft}/lifecycle", json=body)
    assert response.status_code == 202
    assert setup.queued.syncs == ([setup.microsoft] if sync else [])
    assert setup.queued.channels == [(setup.microsoft, recreate) for recreate in channels]


def test_the_documented_lifecycle_sample_is_understood(setup: Setup) -> None:
    sample = json.loads(shared_data("graph", "lifecycle_notification_missed.json").read_text())
    sample["value"][0]["subscriptionId"] = "sub-1"
    sample["value"][0]["clientState"] = SECRET
    response = setup.client.post(f"/push/microsoft/{setup.microsoft}/lifecycle", json=sample)
    assert response.status_code == 202
    assert setup.queued.syncs == [setup.microsoft]


def google_headers(state: str = "update", token: str = SECRET, resource: str = "res-1") -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": "chan-1",
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": resource,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": "2",
        "X-Goog-Resource-URI": "https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer",
    }


def test_google_sync_message_is_acknowledged_without_a_sync(setup: Setup) -> None:
    response = setup.client.post(f"/push/google/{setup.google}", headers=google_headers("sync"))
    assert response.status_code == 204
    assert setup.queued.syncs == []


def test_google_change_queues_one_sync(setup: Setup) -> None:
    for state in ("add", "update", "delete"):
        body = json.dumps({"kind": "admin#directory#user", "id": "1"})
        headers = {**google_headers(state), "content-type": "application/json"}
        assert setup.client.post(f"/push/google/{setup.google}", content=body, headers=headers).status_code == 204
    assert setup.queued.syncs == [setup.google]


@pytest.mark.parametrize(
    "headers",
    [google_headers(token="wrong"), google_headers(resource="res-other")],
    ids=["wrong-token", "wrong-resource-id"],
)
def test_forged_google_notifications_are_refused(setup: Setup, headers: dict[str, str]) -> None:
    assert setup.client.post(f"/push/google/{setup.google}", headers=headers).status_code == 401
    assert setup.queued.syncs == []
    assert not requested(setup, setup.google)


def test_google_notification_without_its_headers_is_400(setup: Setup) -> None:
    headers = google_headers()
    del headers["X-Goog-Channel-Token"]
    assert setup.client.post(f"/push/google/{setup.google}", headers=headers).status_code == 400
    assert setup.queued.syncs == []

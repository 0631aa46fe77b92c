"""/healthz and /readyz: the store, the broker, and whether this process's key opens the stored secrets."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import ConnectionKind
from store.secret_box import SecretBox
from store.services import connections, webhook_endpoints
from tests.conftest import Org, RecordedJobs, make_client


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_what_is_down(api_factory: sessionmaker[Session]) -> None:
    response = make_client(api_factory, jobs=RecordedJobs(answers=False)).get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "down", "secret_key": "ok"},
    }


def test_readyz_when_all_is_up(client: TestClient) -> None:
    assert client.get("/readyz").json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "secret_key": "ok"},
    }


def test_readyz_is_not_ready_when_the_key_cannot_open_a_webhook_secret(
    api_factory: sessionmaker[Session], org: Org
) -> None:
    made_with = SecretBox([SecretBox.generate_key()])
    with transaction(api_factory) as session:
        webhook_endpoints.create_endpoint(
            session, org.organisation.id, "https://example.com/hook", box=made_with, event_types=["*"]
        )
    assert make_client(api_factory, secret_box=made_with).get("/readyz").status_code == 200

    response = make_client(api_factory, secret_box=SecretBox([SecretBox.generate_key()])).get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["secret_key"] == "down"
    reason = body["reasons"]["secret_key"]
    assert "a webhook's signing secret cannot be decrypted" in reason
    assert "DESKBRIDGE_SECRET_KEY" in reason


def test_readyz_checks_connection_credentials_and_a_rotated_key_ring_stays_ready(
    api_factory: sessionmaker[Session], org: Org
) -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    with transaction(api_factory) as session:
        connections.create(
            session,
            SecretBox([old_key]),
            org.organisation.id,
            ConnectionKind.ICS,
            "Holidays",
            settings={},
            credentials={"url": "https://example.com/feed.ics"},
        )
    wrong = make_client(api_factory, secret_box=SecretBox([new_key])).get("/readyz")
    assert wrong.status_code == 503
    assert "a connection's credentials cannot be decrypted" in wrong.json()["reasons"]["secret_key"]
    # Rotation: the new key first, the old one after it: what the old key made stays readable.
    assert make_client(api_factory, secret_box=SecretBox([new_key, old_key])).get("/readyz").status_code == 200

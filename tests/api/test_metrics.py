"""/metrics: Prometheus text (a bearer token when one is set), the worker's metrics and the API's own,
gauges read fresh at each scrape, sync metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Connection, ConnectionKind
from store.secret_box import SecretBox
from store.services import connections, outbox_relay
from tests.conftest import BROKER, QUEUE, Org, auth, make_client, sending_jobs
from worker import metrics
from worker.webhooks import enqueue

EXPECTED = {
    "deskbridge_api_requests",
    "deskbridge_api_request_duration_seconds",
    "deskbridge_webhook_deliveries",
    "deskbridge_webhook_delivery_latency_seconds",
    "deskbridge_webhook_request_duration_seconds",
    "deskbridge_outbox_lag_seconds",
    "deskbridge_queue_depth",
    "deskbridge_actor_duration_seconds",
    "deskbridge_actor_failures",
}


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def empty_broker() -> Iterator[None]:
    BROKER.flush_all()
    yield
    BROKER.flush_all()


def test_metrics_need_no_token_and_name_everything(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= EXPECTED
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_requests_are_counted_by_route_template_and_status(client: TestClient, org: Org) -> None:
    admin = auth(org.admin_token)
    key = (
        "deskbridge_api_requests_total",
        (("method", "GET"), ("route", "/v1/webhooks/{webhook_id}"), ("status", "404")),
    )
    before = scrape(client).get(key, 0.0)
    for webhook_id in (987654, 987655):
        assert client.get(f"/v1/webhooks/{webhook_id}", headers=admin).status_code == 404
    client.get("/no/such/path")
    after = scrape(client)
    assert after[key] - before == 2
    unmatched = ("deskbridge_api_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))
    assert after[unmatched] >= 1
    timed = (
        "deskbridge_api_request_duration_seconds_count",
        (("method", "GET"), ("route", "/v1/webhooks/{webhook_id}")),
    )
    assert after[timed] >= 2
    assert not any("987654" in dict(labels).get("route", "") for _, labels in after)


def test_outbox_lag_is_read_at_each_scrape(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    lag = ("deskbridge_outbox_lag_seconds", ())
    assert scrape(client)[lag] > 0  # the organisation's events wait: nothing relays in these tests
    with transaction(api_factory) as session:
        outbox_relay.relay(session, now=utcnow())  # the organisation's few events, all at once
    assert scrape(client)[lag] == 0


def test_queue_depth_is_read_at_each_scrape(api_factory: sessionmaker[Session], empty_broker: None) -> None:
    client = make_client(api_factory, jobs=sending_jobs(api_factory))  # the queue's own depths
    depth = ("deskbridge_queue_depth", (("queue", "webhooks"),))
    assert scrape(client)[depth] == 0
    enqueue.deliveries(QUEUE, 1)
    enqueue.deliveries(QUEUE, 2)
    assert scrape(client)[depth] == 2
    BROKER.flush("webhooks")
    assert scrape(client)[depth] == 0


def test_a_metrics_token_is_asked_for_when_set(api_factory: sessionmaker[Session]) -> None:
    client = make_client(api_factory, metrics_token="scrape-me-please")

    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "deskbridge_" not in missing.text
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "token scrape-me-please"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert allowed.status_code == 200
    assert "deskbridge_webhook_deliveries_total" in allowed.text


def test_seconds_since_each_connections_last_good_sync_are_read_from_the_store(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    box = SecretBox([SecretBox.generate_key()])
    with transaction(api_factory) as session:
        synced, _ = connections.create(session, box, org.organisation.id, ConnectionKind.CSV, "HR export")
        never, _ = connections.create(session, box, org.organisation.id, ConnectionKind.CSV, "Not yet")
        connections.finish(session, synced, counts={}, notes=[], cursor=None)
        synced.last_synced_at = utcnow() - timedelta(minutes=10)
        synced_id, never_id = synced.id, never.id

    samples = scrape(client)

    age = samples[("deskbridge_connection_seconds_since_success", (("connection_id", str(synced_id)), ("kind", "csv")))]
    assert 600 <= age < 3600
    assert not any(dict(labels).get("connection_id") == str(never_id) for _, labels in samples)
    with transaction(api_factory) as session:
        connections.delete(session, session.get_one(Connection, synced_id))
    assert not any(
        name == "deskbridge_connection_seconds_since_success" and dict(labels)["connection_id"] == str(synced_id)
        for name, labels in scrape(client)
    )


def test_sync_metrics_count_syncs_people_and_events(client: TestClient) -> None:
    before = scrape(client)
    metrics.record_sync("directory", "microsoft", "succeeded", {"seen": 9, "invited": 2, "removed": 1})
    metrics.record_sync("directory", "google", "action_required")
    metrics.record_sync("calendar", "ics", "succeeded", {"changed": 5, "removed": 0})
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("deskbridge_syncs_total", sync="directory", kind="microsoft", outcome="succeeded") == 1
    assert grew("deskbridge_syncs_total", sync="directory", kind="google", outcome="action_required") == 1
    assert grew("deskbridge_sync_people_total", kind="microsoft", action="invited") == 2
    assert grew("deskbridge_sync_people_total", kind="microsoft", action="removed") == 1
    assert grew("deskbridge_external_events_changed_total", kind="ics", change="changed") == 5

"""/metrics: Prometheus text without auth, the worker's metrics and the API's own, gauges read fresh at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.services import webhook_relay
from tests.conftest import BROKER, Org, auth
from worker import actors

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
        webhook_relay.relay(session, now=utcnow())  # the organisation's few events, all at once
    assert scrape(client)[lag] == 0


def test_queue_depth_is_read_at_each_scrape(client: TestClient, empty_broker: None) -> None:
    depth = ("deskbridge_queue_depth", (("queue", "webhooks"),))
    assert scrape(client)[depth] == 0
    actors.enqueue_delivery(1)
    actors.enqueue_delivery(2)
    assert scrape(client)[depth] == 2
    BROKER.flush("webhooks")
    assert scrape(client)[depth] == 0

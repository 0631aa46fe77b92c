"""/v1/hooks: Zapier-style REST hook subscriptions, their samples, delivery as arrays, and 410 unsubscribing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.event_types import CATALOG
from tests.api.v1.conftest import World, assert_problem, error_fields, hours_from_now, nothing_written
from tests.api.v1.webhooks.conftest import PUBLIC_URL, Pipeline, create, make_desk
from tests.conftest import Org, auth, make_client
from tests.worker.webhooks.conftest import Reply, StartReceiver


def subscribe(client: TestClient, org: Org, event: str, target_url: str = PUBLIC_URL) -> dict[str, Any]:
    response = client.post("/v1/hooks", json={"target_url": target_url, "event": event}, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def samples(client: TestClient, org: Org, event: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/hooks/samples/{event}", headers=auth(org.admin_token))
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def test_subscribe_list_and_unsubscribe(client: TestClient, org: Org, other_org: Org) -> None:
    hook = subscribe(client, org, "booking.created")
    assert set(hook) == {"id", "target_url", "event", "created_at"}
    assert (hook["target_url"], hook["event"]) == (PUBLIC_URL, "booking.created")
    subscribe(client, other_org, "booking.created")

    listed = client.get("/v1/hooks", headers=auth(org.admin_token)).json()
    assert listed == {"data": [hook], "next_cursor": None, "has_more": False}
    # A hook is an endpoint like any other: its deliveries, secret and test send are under /v1/webhooks.
    endpoint = client.get(f"/v1/webhooks/{hook['id']}", headers=auth(org.admin_token)).json()
    assert (endpoint["kind"], endpoint["payload_format"], endpoint["event_types"]) == (
        "rest_hook",
        "array",
        ["booking.created"],
    )
    assert "secret" not in endpoint

    response = client.delete(f"/v1/hooks/{hook['id']}", headers=auth(org.admin_token))
    assert (response.status_code, response.content) == (204, b"")
    assert client.get("/v1/hooks", headers=auth(org.admin_token)).json()["data"] == []
    assert_problem(client.delete(f"/v1/hooks/{hook['id']}", headers=auth(org.admin_token)), 404)


def test_hooks_accept_wildcards(client: TestClient, org: Org) -> None:
    assert subscribe(client, org, "booking.*")["event"] == "booking.*"
    assert subscribe(client, org, "*")["event"] == "*"


def test_subscribe_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"target_url": PUBLIC_URL}, "event"),
        ({"event": "booking.created"}, "target_url"),
        ({"target_url": PUBLIC_URL, "event": "booking.exploded"}, "event"),
        ({"target_url": PUBLIC_URL, "event": "bookings.*"}, "event"),
        ({"target_url": PUBLIC_URL, "event": "booking"}, "event"),
        ({"target_url": PUBLIC_URL, "event": ""}, "event"),
        ({"target_url": "http://169.254.169.254/", "event": "booking.created"}, "target_url"),
        ({"target_url": PUBLIC_URL, "event": "booking.created", "target": PUBLIC_URL}, "target"),
    ]
    for payload, field in cases:
        with nothing_written(api_factory):
            response = client.post("/v1/hooks", json=payload, headers=auth(org.admin_token))
        assert error_fields(assert_problem(response, 422)) == {field}, payload


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://localhost/hook"])
def test_private_targets_are_refused_when_not_allowed(api_factory: sessionmaker[Session], org: Org, url: str) -> None:
    strict = make_client(api_factory, allow_private_webhooks=False)
    with nothing_written(api_factory):
        response = strict.post(
            "/v1/hooks", json={"target_url": url, "event": "booking.created"}, headers=auth(org.admin_token)
        )
    body = assert_problem(response, 422, "unsafe_url")
    assert error_fields(body) == {"target_url"}
    assert "loopback" in body["errors"][0]["detail"]


def test_webhook_endpoints_cannot_be_unsubscribed_as_hooks(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, other_org: Org
) -> None:
    endpoint = create(client, org)
    theirs = subscribe(client, other_org, "booking.created")
    with nothing_written(api_factory):
        assert_problem(client.delete(f"/v1/hooks/{endpoint['id']}", headers=auth(org.admin_token)), 404)
        assert_problem(client.delete(f"/v1/hooks/{theirs['id']}", headers=auth(org.admin_token)), 404)
    assert client.get("/v1/hooks", headers=auth(org.admin_token)).json()["data"] == []


def test_members_cannot_use_hooks(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    with nothing_written(api_factory):
        for method, path in [("POST", "/v1/hooks"), ("GET", "/v1/hooks"), ("GET", "/v1/hooks/samples/booking.created")]:
            response = client.request(
                method,
                path,
                json={"target_url": PUBLIC_URL, "event": "booking.created"},
                headers=auth(org.member_token),
            )
            assert_problem(response, 403, "admin_only")


# --- samples -------------------------------------------------------------------------------------


def test_samples_without_events_are_one_representative_sample(client: TestClient, org: Org) -> None:
    [sample] = samples(client, org, "booking.created")
    assert set(sample) == {"id", "type", "timestamp", "data"}
    assert (sample["type"], sample["data"]) == ("booking.created", CATALOG["booking.created"].example)
    assert sample["id"].startswith("evt_")
    assert sample["timestamp"].endswith("Z")
    [wildcard] = samples(client, org, "booking.*")
    assert wildcard["type"].startswith("booking.")


def test_samples_are_the_latest_real_events_newest_first(client: TestClient, world: World) -> None:
    org, admin = world.org, auth(world.org.admin_token)
    [first] = samples(client, org, "booking.created")
    assert first["id"] == world.event_id  # the furnished booking's event
    assert first["data"]["booking_id"] == world.booking_id

    made = []
    for hours in (30, 40, 50, 60):
        body = {"start": hours_from_now(hours).isoformat(), "end": hours_from_now(hours + 1).isoformat()}
        response = client.post("/v1/bookings", json=body, headers=admin)
        assert response.status_code == 201
        made.append(response.json()["id"])
    latest = samples(client, org, "booking.created")
    assert [event["data"]["booking_id"] for event in latest] == made[::-1][:3]
    assert all(event["type"] == "booking.created" for event in latest)
    client.post(f"/v1/bookings/{made[0]}/cancel", headers=admin)
    assert samples(client, org, "booking.*")[0]["type"] == "booking.cancelled"
    assert samples(client, org, "*")[0]["type"] == "booking.cancelled"


def test_samples_are_the_organisations_own(client: TestClient, world: World, other_world: World) -> None:
    theirs = samples(client, other_world.org, "booking.created")
    assert [event["id"] for event in theirs] == [other_world.event_id]


def test_samples_of_unknown_types_are_404(client: TestClient, org: Org) -> None:
    for event in ("booking.exploded", "nothing.*", "Booking.created"):
        assert_problem(client.get(f"/v1/hooks/samples/{event}", headers=auth(org.admin_token)), 404, "not_found")


# --- delivery ------------------------------------------------------------------------------------


def test_hooks_receive_json_arrays(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    hook = subscribe(api, org, "desk.created", receiver.url)
    make_desk(api, org, "D1")
    pipeline.deliver()
    [request] = receiver.received
    [event] = json.loads(request.body)
    assert (event["type"], event["data"]["label"]) == ("desk.created", "D1")
    assert samples(api, org, "desk.created") == [event]  # what the Zap editor saw is what the Zap gets
    assert api.get("/v1/hooks", headers=auth(org.admin_token)).json()["data"] == [hook]


def test_gone_deletes_the_subscription(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(replies=[Reply(410, b"unsubscribed")])
    hook = subscribe(api, org, "desk.created", receiver.url)
    make_desk(api, org, "D1")
    pipeline.deliver()  # the attempt records the 410: delivery_attempts.record_attempt with gone=True

    assert len(receiver.received) == 1
    assert api.get("/v1/hooks", headers=auth(org.admin_token)).json()["data"] == []
    assert_problem(api.get(f"/v1/webhooks/{hook['id']}", headers=auth(org.admin_token)), 404)
    assert_problem(api.delete(f"/v1/hooks/{hook['id']}", headers=auth(org.admin_token)), 404)
    events = api.get("/v1/events", params={"limit": 200}, headers=auth(org.admin_token)).json()["data"]
    [deleted] = [event for event in events if event["type"] == "hook.deleted"]
    assert (deleted["data"]["endpoint_id"], deleted["data"]["reason"]) == (hook["id"], "gone")


def test_a_hook_changed_under_webhooks_still_lists(client: TestClient, org: Org) -> None:
    hook = subscribe(client, org, "booking.created")
    client.patch(f"/v1/webhooks/{hook['id']}", json={"event_types": []}, headers=auth(org.admin_token))
    [listed] = client.get("/v1/hooks", headers=auth(org.admin_token)).json()["data"]
    assert listed["event"] == "*"  # no pattern: every event


def test_every_event_type_recorded_anywhere_has_a_sample() -> None:
    # Events are recorded with string literals: read every `outbox.record(...)` of the code, so a new
    # type cannot go unlisted (the store's services, and the worker's engines that record outcomes).
    root = Path(__file__).resolve().parents[4]
    recorded: set[str] = set()
    for path in [*(root / "store").rglob("*.py"), *(root / "worker").rglob("*.py")]:
        recorded |= set(re.findall(r'outbox\.record\([^"]*"([a-z_]+\.[a-z_]+)"', path.read_text(), re.S))
    assert len(recorded) > 30
    assert recorded - set(CATALOG) == set()

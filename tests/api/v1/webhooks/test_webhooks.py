"""/v1/webhooks: endpoints, SSRF refusals, signing secrets (shown only when asked) and rotation, test sends
to a real receiver on loopback."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from store.columns import utcnow
from store.secret_box import SecretBox
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.api.v1.webhooks.conftest import PUBLIC_URL, create
from tests.conftest import Org, auth, make_client, sending_jobs
from tests.worker.webhooks.conftest import Reply, StartReceiver, free_port

# --- endpoints -----------------------------------------------------------------------------------


@pytest.fixture
def client(api_factory: sessionmaker[Session]) -> TestClient:
    """The API whose test sends go out through the worker's own webhook client (loopback allowed)."""
    return make_client(api_factory, jobs=sending_jobs(api_factory))


def test_create_webhook(client: TestClient, org: Org) -> None:
    response = client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "description": "CRM", "event_types": ["booking.*", "membership.removed"]},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/webhooks/{body['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    del body["secret"]
    assert body == client.get(f"/v1/webhooks/{body['id']}", headers=auth(org.admin_token)).json()
    assert body["kind"] == "webhook"
    assert body["url"] == PUBLIC_URL
    assert body["event_types"] == ["booking.*", "membership.removed"]
    assert (body["payload_format"], body["paused"]) == ("event", False)
    assert (body["disabled_at"], body["disabled_reason"], body["failing_since"]) == (None, None, None)


def test_create_webhook_defaults_and_options(client: TestClient, org: Org) -> None:
    body = create(client, org, payload_format="array", paused=True)
    assert (body["event_types"], body["payload_format"], body["paused"]) == ([], "array", True)


def test_create_webhook_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "url"),
        ({"url": ""}, "url"),
        ({"url": "ftp://1.1.1.1/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": PUBLIC_URL, "payload_format": "xml"}, "payload_format"),
        ({"url": PUBLIC_URL, "event_types": ["Booking Created"]}, "event_types"),
        ({"url": PUBLIC_URL, "event_types": "booking.*"}, "event_types"),
        ({"url": PUBLIC_URL, "description": "x" * 1001}, "description"),
        ({"url": PUBLIC_URL, "secret": "whsec_mine"}, "secret"),
    ]
    for payload, field in cases:
        with nothing_written(api_factory):
            response = client.post("/v1/webhooks", json=payload, headers=auth(org.admin_token))
        body = assert_problem(response, 422)
        assert field in error_fields(body), (payload, body)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::1]/hook", "loopback"),
        ("http://user:pass@1.1.1.1/hook", "credentials"),
    ],
)
def test_private_targets_are_refused_when_not_allowed(
    api_factory: sessionmaker[Session], org: Org, url: str, reason: str
) -> None:
    strict = make_client(api_factory, allow_private_webhooks=False)
    with nothing_written(api_factory):
        response = strict.post("/v1/webhooks", json={"url": url}, headers=auth(org.admin_token))
    body = assert_problem(response, 422, "unsafe_url")
    assert body["errors"][0]["field"] == "url"
    assert reason in body["errors"][0]["detail"]
    assert body["detail"].startswith("This URL cannot receive webhooks")


def test_public_targets_pass_when_private_ones_are_not_allowed(api_factory: sessionmaker[Session], org: Org) -> None:
    strict = make_client(api_factory, allow_private_webhooks=False)
    assert create(strict, org)["url"] == PUBLIC_URL


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/"])
def test_metadata_addresses_are_always_refused(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, url: str
) -> None:
    with nothing_written(api_factory):
        response = client.post("/v1/webhooks", json={"url": url}, headers=auth(org.admin_token))
    body = assert_problem(response, 422, "unsafe_url")
    assert "metadata" in body["errors"][0]["detail"]


def test_list_webhooks(client: TestClient, org: Org, other_org: Org) -> None:
    first = create(client, org, description="one")
    second = create(client, org, description="two")
    create(client, other_org)
    page = client.get("/v1/webhooks", params={"limit": 1}, headers=auth(org.admin_token)).json()
    assert [item["id"] for item in page["data"]] == [first["id"]]
    assert page["has_more"] is True
    rest = client.get("/v1/webhooks", params={"cursor": page["next_cursor"]}, headers=auth(org.admin_token)).json()
    assert [item["id"] for item in rest["data"]] == [second["id"]]
    assert rest == {"data": rest["data"], "next_cursor": None, "has_more": False}
    only_hooks = client.get("/v1/webhooks", params={"kind": "rest_hook"}, headers=auth(org.admin_token)).json()
    assert only_hooks["data"] == []
    assert_problem(client.get("/v1/webhooks", params={"kind": "zap"}, headers=auth(org.admin_token)), 422)


def test_update_webhook(client: TestClient, org: Org) -> None:
    endpoint = create(client, org)
    changes = {"description": "Renamed", "event_types": ["desk.*"], "payload_format": "array", "paused": True}
    response = client.patch(f"/v1/webhooks/{endpoint['id']}", json=changes, headers=auth(org.admin_token))
    assert response.status_code == 200
    assert {name: response.json()[name] for name in changes} == changes
    assert "secret" not in response.json()
    new_url = {"url": "https://8.8.8.8/other"}
    assert (
        client.patch(f"/v1/webhooks/{endpoint['id']}", json=new_url, headers=auth(org.admin_token)).json()["url"]
        == (new_url["url"])
    )


def test_update_webhook_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    endpoint = create(client, org)
    path = f"/v1/webhooks/{endpoint['id']}"
    strict = make_client(api_factory, allow_private_webhooks=False)
    with nothing_written(api_factory):
        unsafe = strict.patch(path, json={"url": "http://127.0.0.1:9/"}, headers=auth(org.admin_token))
        metadata = client.patch(path, json={"url": "http://169.254.169.254/"}, headers=auth(org.admin_token))
        null = client.patch(path, json={"paused": None}, headers=auth(org.admin_token))
        unknown = client.patch(path, json={"kind": "rest_hook"}, headers=auth(org.admin_token))
        missing = client.patch("/v1/webhooks/987654", json={"paused": True}, headers=auth(org.admin_token))
    assert error_fields(assert_problem(unsafe, 422, "unsafe_url")) == {"url"}
    assert error_fields(assert_problem(metadata, 422, "unsafe_url")) == {"url"}
    assert error_fields(assert_problem(null, 422)) == {"paused"}
    assert error_fields(assert_problem(unknown, 422)) == {"kind"}
    assert_problem(missing, 404, "not_found")


def test_delete_webhook(client: TestClient, org: Org) -> None:
    endpoint = create(client, org)
    path = f"/v1/webhooks/{endpoint['id']}"
    response = client.delete(path, headers=auth(org.admin_token))
    assert (response.status_code, response.content) == (204, b"")
    assert_problem(client.get(path, headers=auth(org.admin_token)), 404)
    assert_problem(client.delete(path, headers=auth(org.admin_token)), 404)


def test_members_cannot_manage_webhooks(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    endpoint = create(client, org)
    with nothing_written(api_factory):
        for method, path in [
            ("POST", "/v1/webhooks"),
            ("GET", f"/v1/webhooks/{endpoint['id']}/secret"),
            ("POST", f"/v1/webhooks/{endpoint['id']}/test"),
        ]:
            response = client.request(method, path, json={"url": PUBLIC_URL}, headers=auth(org.member_token))
            assert_problem(response, 403, "admin_only")


def test_other_organisations_endpoints_are_unknown(client: TestClient, org: Org, other_org: Org) -> None:
    theirs = create(client, other_org)
    for method, suffix in [("GET", ""), ("GET", "/secret"), ("POST", "/secret/rotate"), ("POST", "/test")]:
        response = client.request(method, f"/v1/webhooks/{theirs['id']}{suffix}", headers=auth(org.admin_token))
        assert_problem(response, 404, "not_found")


# --- secrets -------------------------------------------------------------------------------------


def test_the_secret_is_shown_only_when_asked_for(client: TestClient, org: Org) -> None:
    created = create(client, org)
    secret, path = created["secret"], f"/v1/webhooks/{created['id']}"
    admin = auth(org.admin_token)
    revealed = client.get(f"{path}/secret", headers=admin)
    assert revealed.json() == {"secret": secret}
    assert revealed.headers["cache-control"] == "no-store"
    client.patch(path, json={"description": "changed"}, headers=admin)
    rotated = client.post(f"{path}/secret/rotate", headers=admin).json()["secret"]
    everything_else = [
        client.get("/v1/webhooks", headers=admin).text,
        client.get(path, headers=admin).text,
        client.get("/v1/events", params={"limit": 200}, headers=admin).text,
        client.get(f"{path}/deliveries", headers=admin).text,
    ]
    for text in everything_else:
        for shown in (secret, rotated, secret.removeprefix("whsec_"), rotated.removeprefix("whsec_")):
            assert shown not in text
    events = client.get("/v1/events", params={"limit": 200}, headers=admin).json()["data"]
    assert {"endpoint.created", "endpoint.updated", "endpoint.secret_rotated"} <= {event["type"] for event in events}


def test_rotation_signs_with_both_secrets_for_a_day(
    client: TestClient, org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    created = create(client, org, receiver.url)
    old, path = created["secret"], f"/v1/webhooks/{created['id']}"
    before = utcnow()
    response = client.post(f"{path}/secret/rotate", headers=auth(org.admin_token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    new = response.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    valid_until = response.json()["previous_valid_until"]
    assert before + timedelta(hours=24) <= datetime.fromisoformat(valid_until) <= utcnow() + timedelta(hours=24)
    assert client.get(f"{path}/secret", headers=auth(org.admin_token)).json() == {"secret": new}

    assert client.post(f"{path}/test", headers=auth(org.admin_token)).json()["success"] is True
    sent = receiver.received[-1]
    # A receiver that has not switched yet still verifies; so does one that has.
    for secret in (old, new):
        assert Webhook(secret).verify(sent.body, sent.headers)["type"] == "webhook.test"
    assert len(sent.headers["webhook-signature"].split(" ")) == 2


def test_rotating_again_ends_the_older_secret(client: TestClient, org: Org, start_receiver: StartReceiver) -> None:
    receiver = start_receiver()
    created = create(client, org, receiver.url)
    path = f"/v1/webhooks/{created['id']}"
    second = client.post(f"{path}/secret/rotate", headers=auth(org.admin_token)).json()["secret"]
    third = client.post(f"{path}/secret/rotate", headers=auth(org.admin_token)).json()["secret"]
    client.post(f"{path}/test", headers=auth(org.admin_token))
    signatures = receiver.received[-1].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2  # the current and the one before; the first is gone
    sent = receiver.received[-1]
    for secret in (second, third):
        Webhook(secret).verify(sent.body, sent.headers)


# --- test sends ----------------------------------------------------------------------------------


def test_test_send_reaches_a_real_receiver(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(replies=[Reply(202, b'{"thanks":true}')])
    created = create(client, org, receiver.url)
    receiver.secrets = [created["secret"]]
    with nothing_written(api_factory):
        response = client.post(f"/v1/webhooks/{created['id']}/test", headers=auth(org.admin_token))
    assert response.status_code == 200
    outcome = response.json()
    assert set(outcome) == {"success", "status_code", "duration_ms", "response_excerpt", "error"}
    assert (outcome["success"], outcome["status_code"], outcome["error"]) == (True, 202, None)
    assert outcome["response_excerpt"] == '{"thanks":true}'
    assert outcome["duration_ms"] >= 0
    [sent] = receiver.received
    assert sent.verified_with == [created["secret"]]
    event = json.loads(sent.body)
    assert event["id"].startswith("evt_test_")
    assert sent.headers["webhook-id"] == event["id"]
    assert (event["type"], event["data"]) == ("webhook.test", {"endpoint_id": created["id"]})
    assert event["timestamp"].endswith("Z")
    assert sent.headers["user-agent"].startswith("deskbridge-webhooks/")


def test_test_send_in_the_array_format(client: TestClient, org: Org, start_receiver: StartReceiver) -> None:
    receiver = start_receiver()
    created = create(client, org, receiver.url, payload_format="array", paused=True)
    assert client.post(f"/v1/webhooks/{created['id']}/test", headers=auth(org.admin_token)).json()["success"]
    [event] = json.loads(receiver.received[0].body)
    assert event["type"] == "webhook.test"


def test_test_send_reports_failures(client: TestClient, org: Org, start_receiver: StartReceiver) -> None:
    receiver = start_receiver(replies=[Reply(503, b"down for maintenance", {"retry-after": "30"})])
    failing = create(client, org, receiver.url)
    outcome = client.post(f"/v1/webhooks/{failing['id']}/test", headers=auth(org.admin_token)).json()
    assert (outcome["success"], outcome["status_code"]) == (False, 503)
    assert outcome["response_excerpt"] == "down for maintenance"

    refused = create(client, org, f"http://127.0.0.1:{free_port()}/hook")
    outcome = client.post(f"/v1/webhooks/{refused['id']}/test", headers=auth(org.admin_token)).json()
    assert (outcome["success"], outcome["status_code"]) == (False, None)
    assert "Connect" in outcome["error"]


def test_test_send_to_a_target_no_longer_allowed(
    api_factory: sessionmaker[Session], box: SecretBox, org: Org, start_receiver: StartReceiver
) -> None:
    # Made while private targets were allowed; the process now refuses them (at connect time).
    receiver = start_receiver()
    created = create(make_client(api_factory, secret_box=box), org, receiver.url)
    strict = make_client(
        api_factory,
        secret_box=box,
        allow_private_webhooks=False,
        jobs=sending_jobs(api_factory, box, allow_private=False),
    )
    response = strict.post(f"/v1/webhooks/{created['id']}/test", headers=auth(org.admin_token))
    assert response.status_code == 200
    outcome = response.json()
    assert (outcome["success"], outcome["status_code"]) == (False, None)
    assert outcome["error"].startswith("refused:")
    assert receiver.received == []

"""Endpoint options (issue 14, item 4) through the API and real deliveries to a loopback receiver:
Standard Webhooks v1a (ed25519) signatures, strictly ordered delivery, the admins' email when an endpoint is
disabled, and the options' validation."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Delivery, OutboxEvent, Role, WebhookEndpoint
from store.secret_box import SecretBox
from tests.api.v1.conftest import add_member, assert_problem, error_fields, nothing_written
from tests.api.v1.webhooks.conftest import PUBLIC_URL, Pipeline, create, make_desk
from tests.conftest import REDIS_URL, Org, auth
from tests.worker.webhooks.conftest import Reply, StartReceiver
from worker import runtime
from worker.webhooks import delivery, limits


@pytest.fixture
def api_factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Every test here on SQLite and on PostgreSQL: the pipeline, the API and the organisation share it."""
    return session_factory


def verify_v1a(public_key: str, headers: dict[str, str], body: bytes) -> bool:
    """Verify as the Standard Webhooks specification says a receiver does: some `v1a,` entry of
    webhook-signature is the ed25519 signature of `{webhook-id}.{webhook-timestamp}.{body}` under the
    `whpk_` key (base64 of the raw public key). The standardwebhooks library (1.3) verifies v1 only."""
    assert public_key.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
        except InvalidSignature:
            continue
        return True
    return False


def labels(bodies: list[bytes]) -> list[str]:
    return [json.loads(body)["data"]["label"] for body in bodies]


# --- ed25519 ---------------------------------------------------------------------------------------


def test_an_ed25519_endpoint_signs_v1a_that_its_public_key_verifies(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver, api_factory: sessionmaker[Session]
) -> None:
    receiver = start_receiver()
    endpoint = create(api, org, receiver.url, event_types=["desk.created"], signature="ed25519")
    assert endpoint["signature"] == "ed25519"
    public_key = endpoint["public_key"]
    assert public_key.startswith("whpk_")
    assert len(base64.b64decode(public_key.removeprefix("whpk_"))) == 32
    assert api.get(f"/v1/webhooks/{endpoint['id']}", headers=auth(org.admin_token)).json()["public_key"] == public_key

    make_desk(api, org, "D1")
    pipeline.deliver()
    [request] = receiver.received
    assert labels([request.body]) == ["D1"]
    assert request.headers["webhook-signature"].startswith("v1a,")
    assert verify_v1a(public_key, request.headers, request.body)
    assert not verify_v1a(public_key, request.headers, request.body.replace(b"D1", b"D2"))  # tampered
    other = create(api, org, PUBLIC_URL, signature="ed25519")["public_key"]
    assert not verify_v1a(other, request.headers, request.body)  # another endpoint's key

    # The test send is signed the same way.
    sent = api.post(f"/v1/webhooks/{endpoint['id']}/test", headers=auth(org.admin_token)).json()
    assert sent["success"] is True
    assert verify_v1a(public_key, receiver.received[-1].headers, receiver.received[-1].body)

    # The private key is kept encrypted and never shown: not in answers, not in events.
    with api_factory() as session:
        stored = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint["id"])).one()
        events = [json.dumps(data) for data in session.scalars(select(OutboxEvent.data))]
    assert stored.private_key_encrypted is not None
    assert not stored.private_key_encrypted.startswith("whsk_")
    assert "whsk_" not in json.dumps(endpoint)
    assert not any("whsk_" in event for event in events)


def test_switching_to_ed25519_makes_the_key_pair(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver, box: SecretBox
) -> None:
    receiver = start_receiver()
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    assert (endpoint["signature"], endpoint["public_key"]) == ("hmac", None)
    receiver.secrets = [endpoint["secret"]]
    make_desk(api, org, "D1")
    pipeline.deliver()
    assert receiver.received[-1].verified_with == [endpoint["secret"]]  # v1, by the standardwebhooks library

    changed = api.patch(
        f"/v1/webhooks/{endpoint['id']}", json={"signature": "ed25519"}, headers=auth(org.admin_token)
    ).json()
    assert changed["signature"] == "ed25519"
    receiver.secrets = []
    make_desk(api, org, "D2")
    pipeline.deliver()
    last = receiver.received[-1]
    assert labels([last.body]) == ["D2"]
    assert verify_v1a(changed["public_key"], last.headers, last.body)
    assert " " not in last.headers["webhook-signature"]  # v1a alone: the HMAC secret no longer signs


# --- ordered ---------------------------------------------------------------------------------------


def make_due(factory: sessionmaker[Session], delivery_id: int) -> None:
    """The delivery's retry comes due (its 5 s pass)."""
    now = utcnow()
    with transaction(factory) as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(due_at=now, next_attempt_at=now))


def test_an_ordered_endpoint_holds_later_events_while_an_earlier_one_fails(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver, api_factory: sessionmaker[Session]
) -> None:
    receiver = start_receiver(replies=[Reply(503), Reply(200)])
    endpoint = create(api, org, receiver.url, event_types=["desk.created"], ordered=True)
    assert endpoint["ordered"] is True
    for label in ("D1", "D2", "D3"):
        make_desk(api, org, label)
    queued: list[list[int]] = []
    slow_retries = dataclasses.replace(runtime.current(), retry_delays=(5.0, 5.0))
    delivery.relay(slow_retries, lambda ids, _delay: queued.append(ids))
    [first_job] = queued
    queued.clear()

    delivery.attempt_batch(slow_retries, first_job, lambda ids, _delay: queued.append(ids))
    assert labels([request.body for request in receiver.received]) == ["D1"]  # D2 and D3 wait behind D1
    d1, d2, d3 = first_job
    # Any job for the later ones (the sweep's, once their lease ends) sends nothing while D1 waits.
    delivery.attempt_batch(slow_retries, [d2, d3], lambda ids, _delay: queued.append(ids))
    assert len(receiver.received) == 1
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth(org.admin_token)).json()["data"]
    assert [(entry["id"], entry["status"], entry["attempt_count"]) for entry in log] == [
        (d3, "pending", 0),
        (d2, "pending", 0),
        (d1, "pending", 1),
    ]

    make_due(api_factory, d1)
    delivery.attempt_batch(slow_retries, [d1], lambda ids, _delay: queued.append(ids))
    assert labels([request.body for request in receiver.received]) == ["D1", "D1", "D2", "D3"]
    log = api.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth(org.admin_token)).json()["data"]
    assert [entry["status"] for entry in log] == ["succeeded"] * 3


def test_an_unordered_endpoint_does_not_wait(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver
) -> None:
    # The counterpart: without `ordered`, a failing delivery holds nothing back.
    receiver = start_receiver(replies=[Reply(503), Reply(200)])
    create(api, org, receiver.url, event_types=["desk.created"])
    for label in ("D1", "D2", "D3"):
        make_desk(api, org, label)
    queued: list[list[int]] = []
    slow_retries = dataclasses.replace(runtime.current(), retry_delays=(5.0, 5.0))
    delivery.relay(slow_retries, lambda ids, _delay: queued.append(ids))
    delivery.attempt_batch(slow_retries, queued.pop(0), lambda ids, _delay: queued.append(ids))
    assert sorted(labels([request.body for request in receiver.received])) == ["D1", "D2", "D3"]


# --- rate limit ----------------------------------------------------------------------------------


def test_a_rate_limit_holds_across_two_workers_on_redis(
    api: TestClient, pipeline: Pipeline, org: Org, start_receiver: StartReceiver, redis_client: redis.Redis
) -> None:
    # Two workers (threads taking tokens from the one bucket in Redis) share one endpoint's deliveries;
    # the bucket holds them both to 3 a second (a burst of 3, then one a third of a second). Lower
    # bounds only: a slow machine spreads the requests more, never less.
    rate, count = 3, 12
    receiver = start_receiver()
    endpoint = create(api, org, receiver.url, event_types=["desk.created"], rate_limit_per_second=rate)
    for label in range(count):
        make_desk(api, org, f"D{label}")
    queued: list[list[int]] = []
    delivery.relay(runtime.current(), lambda ids, _delay: queued.append(ids))
    [ids] = queued
    limits.configure_limits(REDIS_URL)
    arrivals: list[float] = []
    receiver_handle = receiver.handle

    def timed(path: str, headers: dict[str, str], body: bytes) -> Reply:
        arrivals.append(time.monotonic())
        return receiver_handle(path, headers, body)

    receiver.handle = timed  # type: ignore[method-assign]

    def worker(share: list[int]) -> None:
        """A worker's loop: run a job, then what it handed on, after the delay it asked for."""
        jobs: list[tuple[list[int], int]] = [(share, 0)]
        while jobs:
            job, delay_ms = jobs.pop(0)
            time.sleep(delay_ms / 1000)
            delivery.attempt_batch(runtime.current(), job, lambda again, delay: jobs.append((again, delay)))

    threads = [threading.Thread(target=worker, args=(ids[index::2],)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(receiver.received) == count
    arrivals.sort()
    # Any 2 * rate + 1 requests took more than a second at the bucket (3 + 3 a second): allow for how
    # late each reached the receiver, and the whole run at least (count - rate) / rate seconds.
    assert min(arrivals[i + 2 * rate] - arrivals[i] for i in range(count - 2 * rate)) > 0.5
    assert arrivals[-1] - arrivals[0] > (count - rate) / rate - 1
    assert redis_client.exists(f"{limits.RATE_KEY_PREFIX}{endpoint['id']}")


# --- disabled: the admins are told ---------------------------------------------------------------


def test_an_endpoint_disabled_by_410_emails_the_admins(
    api: TestClient,
    pipeline: Pipeline,
    org: Org,
    start_receiver: StartReceiver,
    api_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    add_member(api_factory, org, "grace@example.com", role=Role.ADMIN)
    receiver = start_receiver(replies=[Reply(410, b"gone")])
    endpoint = create(api, org, receiver.url, event_types=["desk.created"])
    make_desk(api, org, "D1")
    pipeline.deliver()

    assert api.get(f"/v1/webhooks/{endpoint['id']}", headers=auth(org.admin_token)).json()["disabled_reason"] == "gone"
    mails = [message_from_bytes(path.read_bytes()) for path in sorted((tmp_path / "mail").glob("*.eml"))]
    assert sorted(str(mail["To"]) for mail in mails) == sorted([org.admin.email, "grace@example.com"])
    assert org.member.email not in {str(mail["To"]) for mail in mails}
    for mail in mails:
        assert "disabled" in str(mail["Subject"])
        text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert receiver.url in text
        assert "410 Gone" in text
        assert f"/v1/webhooks/{endpoint['id']}/enable" in text
    events = api.get("/v1/events", params={"limit": 200}, headers=auth(org.admin_token)).json()["data"]
    assert [event["data"]["reason"] for event in events if event["type"] == "endpoint.disabled"] == ["gone"]


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rate_limit_per_second": 0}, "rate_limit_per_second"),
        ({"rate_limit_per_second": 1001}, "rate_limit_per_second"),
        ({"rate_limit_per_second": "fast"}, "rate_limit_per_second"),
        ({"signature": "rsa"}, "signature"),
        ({"ordered": "sometimes"}, "ordered"),
    ],
)
def test_endpoint_options_refuse_bad_values(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, fields: dict[str, Any], field: str
) -> None:
    admin = auth(org.admin_token)
    with nothing_written(api_factory):
        response = client.post("/v1/webhooks", json={"url": PUBLIC_URL, **fields}, headers=admin)
    assert error_fields(assert_problem(response, 422)) == {field}
    made = client.post("/v1/webhooks", json={"url": PUBLIC_URL}, headers=admin).json()
    with nothing_written(api_factory):
        response = client.patch(f"/v1/webhooks/{made['id']}", json=fields, headers=admin)
    assert error_fields(assert_problem(response, 422)) == {field}


def test_a_rate_limit_is_set_and_removed(client: TestClient, org: Org) -> None:
    admin = auth(org.admin_token)
    made = client.post("/v1/webhooks", json={"url": PUBLIC_URL, "rate_limit_per_second": 5}, headers=admin).json()
    assert made["rate_limit_per_second"] == 5
    path = f"/v1/webhooks/{made['id']}"
    assert client.patch(path, json={"rate_limit_per_second": 2}, headers=admin).json()["rate_limit_per_second"] == 2
    assert (
        client.patch(path, json={"rate_limit_per_second": None}, headers=admin).json()["rate_limit_per_second"] is None
    )
    events = client.get("/v1/events", params={"limit": 200}, headers=admin).json()["data"]
    changes = [event["data"]["changes"] for event in events if event["type"] == "endpoint.updated"]
    assert changes == [{"rate_limit_per_second": 2}, {"rate_limit_per_second": None}]

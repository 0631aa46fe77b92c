"""Webhooks: signatures over real deliveries (good, forged, tampered, unsigned, replayed) and envelope parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.records import DirectoryUser, PersonEvent, RemovedEvent, RemovedUser
from connectors.resourceguru import SIGNATURE_HEADER, Person, Roster, parse, sign, verify
from tests.fakes.resourceguru import FakeResourceGuru, WebhookReceiver, WebhookSender

SECRET = "whsec-connection-1"
ROSTER = Roster(
    people={"10": Person("ada@example.com", "Europe/London"), "11": Person("bob@example.com", None)},
    human_types=frozenset({1}),
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def sender() -> WebhookSender:
    return WebhookSender(SECRET, now=lambda: 1_748_851_200)


def booking(**fields: Any) -> dict[str, Any]:
    item = {"id": 77, "resource_id": 10, "resource_ids": [10], "start_date": "2025-06-03", "end_date": "2025-06-03"}
    return item | {"duration": 60, "start_time": 540, "timezone": None, "details": "", "tentative": False} | fields


def received(receiver: WebhookReceiver, index: int = -1) -> tuple[bytes, str | None]:
    headers, body = receiver.received[index]
    return body, headers.get(SIGNATURE_HEADER.lower())


# --- signatures ------------------------------------------------------------------------------


def test_a_genuine_delivery_verifies_and_parses(sender: WebhookSender, receiver: WebhookReceiver) -> None:
    sender.deliver(receiver.url, booking() | {"action": "create", "type": "booking"})
    body, signature = received(receiver)
    headers = receiver.received[-1][0]
    assert headers["user-agent"] == "ResourceGuru/Webhooks"
    assert headers["content-type"] == "application/json"
    assert verify(SECRET, body, signature)
    envelope = parse(body, ROSTER)
    assert (envelope.id, envelope.action, envelope.type) == (1, "create", "booking")
    assert envelope.timestamp == datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda s, url, p: s.forge(url, p), id="wrong-secret"),
        pytest.param(lambda s, url, p: s.tamper(url, p, lambda b: b.replace(b"540", b"600")), id="tampered-body"),
        pytest.param(lambda s, url, p: s.unsigned(url, p), id="missing-header"),
        pytest.param(lambda s, url, p: s.unsigned(url, p, "zz" * 32), id="not-hex"),
        pytest.param(lambda s, url, p: s.unsigned(url, p, "ab" * 31), id="too-short"),
        pytest.param(lambda s, url, p: s.unsigned(url, p, "sha256=" + "a" * 64), id="prefixed"),
    ],
)
def test_anything_but_the_signature_of_these_bytes_fails(
    sender: WebhookSender, receiver: WebhookReceiver, send: Any
) -> None:
    send(sender, receiver.url, booking() | {"action": "update", "type": "booking"})
    body, signature = received(receiver)
    assert not verify(SECRET, body, signature)


def test_the_signature_is_the_documents_hex_hmac() -> None:
    body = b'{"id": 1}'
    # OpenSSL's HMAC-SHA256 of these bytes under "key", from `openssl dgst -sha256 -hmac key`.
    expected = "5328aa996385400504c7cc4e7b436fe9ac87339433cfb0c139b43f850e862cd7"
    assert sign("key", body) == expected
    assert verify("key", body, expected)
    assert not verify("key", body + b" ", expected)
    assert verify("key", body, sign("key", body).upper())  # hex is hex, whatever its case
    assert verify("key", body, f"  {sign('key', body)}\n")
    assert not verify("", body, sign("", body))  # a connection without a secret verifies nothing
    assert not verify("key", body, None)
    assert not verify("key", body, "\u00e9" * 64)  # non-ASCII: refused, not a TypeError


def test_a_replayed_delivery_verifies_and_keeps_its_id(sender: WebhookSender, receiver: WebhookReceiver) -> None:
    first = sender.deliver(receiver.url, booking() | {"action": "create", "type": "booking"})
    sender.replay(receiver.url, first)
    (body1, sig1), (body2, sig2) = received(receiver, 0), received(receiver, 1)
    assert (body1, sig1) == (body2, sig2)
    assert verify(SECRET, body2, sig2)
    # The signature has no timestamp: only the envelope id tells a replay, and the worker applies an id once.
    assert parse(body1, ROSTER).id == parse(body2, ROSTER).id == 1


def test_the_secret_header_is_not_a_signature(receiver: WebhookReceiver) -> None:
    sender = WebhookSender(SECRET, send_secret_header=True)
    sender.unsigned(receiver.url, booking() | {"action": "create", "type": "booking"})
    headers, body = receiver.received[-1]
    assert headers["x-resourceguru-key"] == SECRET
    assert not verify(SECRET, body, headers.get("x-resourceguru-signature"))


# --- envelopes -------------------------------------------------------------------------------


def envelope(payload: dict[str, Any], **outer: Any) -> bytes:
    return json.dumps({"id": 5, "timestamp": 1_748_851_200, "payload": payload} | outer).encode()


def test_booking_create_and_update_are_the_events_of_its_people() -> None:
    payload = booking(resource_ids=[10, 11, 99], tentative=True) | {"action": "update", "type": "booking"}
    records = parse(envelope(payload), ROSTER).payload
    assert all(isinstance(r, PersonEvent) for r in records)
    events = {r.person: r.event for r in records if isinstance(r, PersonEvent)}
    assert set(events) == {"ada@example.com", "bob@example.com"}  # 99 is no person we know
    assert events["ada@example.com"].start == datetime(2025, 6, 3, 8, 0, tzinfo=UTC)  # 09:00 London
    assert events["bob@example.com"].start == datetime(2025, 6, 3, 9, 0, tzinfo=UTC)  # no zone: UTC
    assert {e.event_id for e in events.values()} == {"booking:77"}
    assert {e.show_as for e in events.values()} == {"tentative"}


def test_booking_for_nobody_we_know_and_deleted_bookings_are_removals() -> None:
    nobody = booking(resource_id=99, resource_ids=[99]) | {"action": "update", "type": "booking"}
    assert parse(envelope(nobody), ROSTER).payload == (RemovedEvent("booking:77"),)
    deleted = {"id": 77, "action": "delete", "type": "booking"}  # a stripped-down delete
    assert parse(envelope(deleted), ROSTER).payload == (RemovedEvent("booking:77"),)


def test_downtime_actions() -> None:
    downtime = {"id": 8, "resource_ids": [11], "from": "2025-06-09", "to": "2025-06-10", "start_time": 0}
    downtime |= {"end_time": 1440, "timezone": "Berlin", "details": None, "deleted": False}
    created = parse(envelope(downtime | {"action": "create", "type": "downtime"}), ROSTER).payload
    assert len(created) == 1
    assert isinstance(created[0], PersonEvent)
    event = created[0].event
    assert (event.event_id, event.show_as, event.all_day) == ("downtime:8", "oof", True)
    assert event.start == datetime(2025, 6, 8, 22, 0, tzinfo=UTC)
    marked = downtime | {"deleted": True, "action": "update", "type": "downtime"}
    assert parse(envelope(marked), ROSTER).payload == (RemovedEvent("downtime:8"),)
    gone = {"id": 8, "action": "delete", "type": "downtime"}
    assert parse(envelope(gone), ROSTER).payload == (RemovedEvent("downtime:8"),)


def test_resource_actions(fake: FakeResourceGuru) -> None:
    ada = fake.add_resource("Ada", "Lovelace", "Ada@Example.com")
    created = parse(envelope(fake.payload("resources", ada["id"], "create")), ROSTER).payload
    assert created == (DirectoryUser(str(ada["id"]), "ada@example.com", "ada@example.com", "Ada Lovelace"),)
    fake.update("resources", ada["id"], archived=True)
    archived = parse(envelope(fake.payload("resources", ada["id"], "update")), ROSTER).payload
    assert isinstance(archived[0], DirectoryUser)
    assert archived[0].active is False
    fake.update("resources", ada["id"], email=None)
    no_address = parse(envelope(fake.payload("resources", ada["id"], "update")), ROSTER).payload
    assert no_address == (RemovedUser(str(ada["id"])),)
    room = fake.add_resource("Board", "Room", "room@example.com", type_id=2)
    assert parse(envelope(fake.payload("resources", room["id"], "create")), ROSTER).payload == (
        RemovedUser(str(room["id"])),
    )
    gone = {"id": ada["id"], "action": "delete", "type": "resource"}
    assert parse(envelope(gone), ROSTER).payload == (RemovedUser(str(ada["id"])),)


def test_other_types_are_acknowledged_with_nothing_to_apply() -> None:
    client = {"id": 1234, "archived": False, "name": "A client", "action": "create", "type": "client"}
    parsed = parse(envelope(client), ROSTER)
    assert (parsed.type, parsed.action, parsed.payload) == ("client", "create", ())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "webhook body is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"timestamp": 1, "payload": {}}).encode(), "envelope id is missing"),
        (envelope({"action": "create", "type": "booking"}, id=True), "envelope id is not a whole number"),
        (envelope({"action": "create", "type": "booking"}, timestamp="yesterday"), "timestamp is not a whole number"),
        (json.dumps({"id": 5, "timestamp": 1}).encode(), "envelope 5: payload is missing"),
        (envelope({"id": 1, "action": "archive", "type": "booking"}), "action 'archive' is not create"),
        (envelope({"id": 1, "action": "create"}), "payload type is missing"),
        (envelope({"action": "delete", "type": "booking"}), "booking id is missing"),
        (envelope(booking(start_date=None) | {"action": "create", "type": "booking"}), "start_date is missing"),
        (envelope(booking(end_date="03/06/2025") | {"action": "create", "type": "booking"}), "not an ISO 8601 date"),
        (envelope(booking(resource_ids="10") | {"action": "create", "type": "booking"}), "resource_ids is not a list"),
        (envelope(booking(start_time=2000) | {"action": "create", "type": "booking"}), "start_time 2000 is outside"),
        (
            envelope(
                {
                    "id": 8,
                    "resource_ids": [10],
                    "from": "2025-06-10",
                    "to": "2025-06-09",
                    "start_time": 0,
                    "end_time": 60,
                    "action": "create",
                    "type": "downtime",
                }
            ),
            "downtime 8: it ends",
        ),
        (envelope({"id": 3, "email": "nobody", "action": "create", "type": "resource"}), "is not an address"),
    ],
)
def test_malformed_deliveries_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse(body, ROSTER)


def test_a_booking_with_one_bad_resource_id_yields_nothing_at_all() -> None:
    # Ada's event could be built, but the delivery is malformed: no partial result.
    payload = booking(resource_ids=[10, "eleven"]) | {"action": "create", "type": "booking"}
    with pytest.raises(ValueError, match=r"envelope 5: booking 77: resource_ids: 'eleven' is not an id"):
        parse(envelope(payload), ROSTER)

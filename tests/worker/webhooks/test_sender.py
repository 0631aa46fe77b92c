"""Bodies, signatures and POSTs against a real receiver on loopback that verifies what it gets."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.worker.webhooks.conftest import Reply, StartReceiver, free_port
from worker.webhooks.sender import (
    EXCERPT_BYTES,
    USER_AGENT,
    EventPayload,
    build_body,
    event_payload,
    make_client,
    post,
    sign_headers,
)

OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()


def event(number: int = 1, event_type: str = "booking.created") -> EventPayload:
    return event_payload(
        f"evt_{number}", event_type, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), {"booking_id": number, "note": "café"}
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(allow_private=True) as webhook_client:
        yield webhook_client


def signed(body: bytes, event_id: str = "evt_1", secrets: list[str] | None = None) -> dict[str, str]:
    return sign_headers(event_id, body, secrets or [NEW_SECRET], datetime.now(UTC))


# --- bodies -------------------------------------------------------------------------------------


def test_the_event_format_is_one_object() -> None:
    assert json.loads(build_body([event()], "event")) == {
        "id": "evt_1",
        "type": "booking.created",
        "timestamp": "2030-01-02T03:04:05Z",
        "data": {"booking_id": 1, "note": "café"},
    }


def test_the_array_format_is_a_list_in_order() -> None:
    body = json.loads(build_body([event(1), event(2)], "array"))
    assert [item["id"] for item in body] == ["evt_1", "evt_2"]


@pytest.mark.parametrize("count", [0, 2])
def test_the_event_format_takes_exactly_one_event(count: int) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        build_body([event(n) for n in range(count)], "event")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown payload format"):
        build_body([event()], "xml")


def test_timestamps_are_given_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    payload = event_payload("evt_9", "booking.created", datetime(2030, 6, 1, 12, 0, tzinfo=paris), {})
    assert payload["timestamp"] == "2030-06-01T10:00:00Z"
    with pytest.raises(ValueError, match="aware"):
        event_payload("evt_9", "booking.created", datetime(2030, 6, 1, 12, 0), {})


# --- signatures ---------------------------------------------------------------------------------


def test_headers_follow_standard_webhooks() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    headers = sign_headers("evt_1", b"{}", [NEW_SECRET], at)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")


def test_a_rotation_signs_with_both_secrets_and_each_verifies() -> None:
    body = build_body([event()], "event")
    headers = sign_headers("evt_1", body, [OLD_SECRET, NEW_SECRET], datetime.now(UTC))

    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(OLD_SECRET).verify(body, headers)["id"] == "evt_1"
    assert Webhook(NEW_SECRET).verify(body, headers)["id"] == "evt_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, headers)


def test_a_signing_time_in_another_zone_is_the_same_instant() -> None:
    body = b'{"a":1}'
    local = datetime.now(UTC).astimezone(timezone(timedelta(hours=-7)))
    headers = sign_headers("evt_1", body, [NEW_SECRET], local)
    assert headers["webhook-timestamp"] == str(int(local.timestamp()))
    Webhook(NEW_SECRET).verify(body, headers)  # the receiver's 5-minute tolerance would catch a 7 h shift


def test_a_tampered_body_does_not_verify() -> None:
    headers = sign_headers("evt_1", b'{"a":1}', [NEW_SECRET], datetime.now(UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW_SECRET).verify(b'{"a":2}', headers)


def test_signing_needs_a_secret_and_an_aware_time() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign_headers("evt_1", b"{}", [], datetime.now(UTC))
    with pytest.raises(ValueError, match="aware"):
        sign_headers("evt_1", b"{}", [NEW_SECRET], datetime.now())


# --- posting ------------------------------------------------------------------------------------


def test_a_delivery_reaches_the_receiver_signed_with_both_secrets(
    start_receiver: StartReceiver, client: httpx.Client
) -> None:
    receiver = start_receiver(secrets=[OLD_SECRET, NEW_SECRET])
    body = build_body([event(1), event(2)], "array")

    outcome = post(client, receiver.url, body, signed(body, secrets=[OLD_SECRET, NEW_SECRET]))

    assert outcome.success, outcome
    assert outcome.status_code == 200
    assert outcome.response_excerpt == '{"ok":true}'
    assert outcome.error is None
    assert outcome.duration_ms >= 0
    [request] = receiver.received
    assert request.verified_with == [OLD_SECRET, NEW_SECRET]
    assert request.body == body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("deskbridge-webhooks/")
    assert request.headers["user-agent"] != "deskbridge-webhooks/"


def test_a_receiver_that_only_knows_the_old_secret_still_verifies(
    start_receiver: StartReceiver, client: httpx.Client
) -> None:
    receiver = start_receiver(secrets=[OLD_SECRET])
    body = build_body([event()], "event")
    assert post(client, receiver.url, body, signed(body, secrets=[OLD_SECRET, NEW_SECRET])).success
    assert post(client, receiver.url, body, signed(body, secrets=[NEW_SECRET])).status_code == 401


def test_retries_carry_the_same_webhook_id(start_receiver: StartReceiver, client: httpx.Client) -> None:
    receiver = start_receiver(secrets=[NEW_SECRET], replies=[Reply(500), Reply(500), Reply(200)])
    body = build_body([event()], "event")

    outcomes = [post(client, receiver.url, body, signed(body, "evt_1")) for _ in range(3)]

    assert [outcome.status_code for outcome in outcomes] == [500, 500, 200]
    assert [outcome.success for outcome in outcomes] == [False, False, True]
    assert {request.headers["webhook-id"] for request in receiver.received} == {"evt_1"}
    assert all(request.verified_with == [NEW_SECRET] for request in receiver.received)


def test_410_means_gone(start_receiver: StartReceiver, client: httpx.Client) -> None:
    receiver = start_receiver(replies=[Reply(410, b"unsubscribed")])
    outcome = post(client, receiver.url, b"{}", signed(b"{}"))
    assert outcome.gone
    assert not outcome.success
    assert outcome.response_excerpt == "unsubscribed"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_read_on_429_and_503(
    start_receiver: StartReceiver, client: httpx.Client, status: int
) -> None:
    receiver = start_receiver(replies=[Reply(status, headers={"Retry-After": "120"})])
    outcome = post(client, receiver.url, b"{}", signed(b"{}"))
    assert outcome.retry_after == 120
    assert not outcome.gone


def test_retry_after_as_an_http_date_is_read(start_receiver: StartReceiver, client: httpx.Client) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=600), usegmt=True)
    receiver = start_receiver(replies=[Reply(503, headers={"Retry-After": later})])
    outcome = post(client, receiver.url, b"{}", signed(b"{}"))
    assert outcome.retry_after is not None
    assert 590 <= outcome.retry_after <= 600


def test_retry_after_is_ignored_on_other_statuses(start_receiver: StartReceiver, client: httpx.Client) -> None:
    receiver = start_receiver(replies=[Reply(500, headers={"Retry-After": "120"})])
    outcome = post(client, receiver.url, b"{}", signed(b"{}"))
    assert outcome.status_code == 500
    assert outcome.retry_after is None


def test_redirects_are_not_followed(start_receiver: StartReceiver, client: httpx.Client) -> None:
    receiver = start_receiver(replies=[Reply(307, headers={"Location": "/elsewhere"}), Reply(200)])

    outcome = post(client, receiver.url, b"{}", signed(b"{}"))

    assert outcome.status_code == 307
    assert not outcome.success
    assert outcome.error is not None
    assert "/elsewhere" in outcome.error
    assert [request.path for request in receiver.received] == ["/hook"]


def test_the_response_excerpt_is_capped_and_decoded_with_replacement(
    start_receiver: StartReceiver, client: httpx.Client
) -> None:
    receiver = start_receiver(replies=[Reply(500, b"\xff" + b"x" * 100_000)])
    outcome = post(client, receiver.url, b"{}", signed(b"{}"))
    assert outcome.response_excerpt.startswith("\ufffdxxx")
    assert len(outcome.response_excerpt.encode("utf-8", errors="replace")) <= EXCERPT_BYTES + 2


def test_a_timeout_is_an_outcome(start_receiver: StartReceiver, client: httpx.Client) -> None:
    receiver = start_receiver(replies=[Reply(200, delay=3.0)])
    outcome = post(client, receiver.url, b"{}", signed(b"{}"), timeout=0.3)
    assert outcome.status_code is None
    assert not outcome.success
    assert outcome.error is not None
    assert "timed out" in outcome.error
    assert not outcome.refused


def test_connection_refused_is_an_outcome(client: httpx.Client) -> None:
    outcome = post(client, f"http://127.0.0.1:{free_port()}/hook", b"{}", signed(b"{}"), timeout=5)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "ConnectError" in outcome.error
    assert not outcome.refused


def test_an_unresolvable_host_is_an_outcome(client: httpx.Client) -> None:
    outcome = post(client, "http://no-such-host.invalid/hook", b"{}", signed(b"{}"), timeout=5)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "resolve" in outcome.error


def test_a_bad_url_is_an_outcome(client: httpx.Client) -> None:
    outcome = post(client, "ftp://127.0.0.1/hook", b"{}", signed(b"{}"))
    assert outcome.status_code is None
    assert outcome.error is not None


def test_the_client_ignores_proxy_settings(
    start_receiver: StartReceiver, monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{free_port()}")
    receiver = start_receiver()
    with make_client(allow_private=True) as fresh:
        assert post(fresh, receiver.url, b"{}", signed(b"{}")).success


def test_cookies_a_receiver_sets_are_never_sent_back(start_receiver: StartReceiver, client: httpx.Client) -> None:
    # One client serves every organisation's endpoints: nothing one receiver says may reach another.
    receiver = start_receiver(replies=[Reply(headers={"set-cookie": "session=abc; Path=/"}), Reply()])
    for _ in range(2):
        assert post(client, receiver.url, b"{}", signed(b"{}")).success
    assert [request.headers.get("cookie") for request in receiver.received] == [None, None]
    assert {request.headers["user-agent"] for request in receiver.received} == {USER_AGENT}
    assert {request.headers["content-type"] for request in receiver.received} == {"application/json"}


def test_post_needs_the_webhook_client() -> None:
    # Another client would skip the SSRF check at connect time.
    with httpx.Client() as plain, pytest.raises(TypeError, match="make_client"):
        post(plain, "http://127.0.0.1:9/hook", b"{}", signed(b"{}"))

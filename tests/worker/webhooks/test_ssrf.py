"""The SSRF guard: at creation (`check_url`) and at connect time, after DNS resolution (`make_client`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial

import pytest

from connectors import outbound
from connectors.outbound import UnsafeURL
from store.services.webhook_endpoints import WEBHOOK_URL
from tests.worker.webhooks.conftest import StartReceiver
from worker.webhooks import sender

check_url = partial(outbound.check_url, what=WEBHOOK_URL)

NOT_PUBLIC = [
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.10:8080/hook", "private"),
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10/hook", "loopback"),
    ("http://localhost:9000/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:10.0.0.1]/hook", "private"),
    ("http://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
    ("http://169.254.10.1/hook", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fc00::1]/hook", "private"),
    ("http://100.64.0.1/hook", "carrier-grade NAT"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://192.0.2.1/hook", "private"),  # documentation range: not routable
]
METADATA = ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"]
PUBLIC = ["https://8.8.8.8/hook", "http://1.1.1.1:8080/x?y=1", "https://[2606:4700:4700::1111]/hook"]


@pytest.mark.parametrize(("url", "reason"), NOT_PUBLIC)
def test_non_public_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(("url", "reason"), NOT_PUBLIC)
def test_non_public_addresses_pass_when_private_targets_are_allowed(url: str, reason: str) -> None:
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", METADATA)
@pytest.mark.parametrize("allow_private", [False, True])
def test_cloud_metadata_addresses_are_always_refused(url: str, allow_private: bool) -> None:
    with pytest.raises(UnsafeURL, match="metadata"):
        check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_pass(url: str) -> None:
    check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://8.8.8.8/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://8.8.8.8:70/", "only http and https"),
        ("8.8.8.8/hook", "only http and https"),
        ("https://user:secret@8.8.8.8/hook", "credentials"),
        ("https://token@8.8.8.8/hook", "credentials"),
        ("https:///hook", "no host"),
        ("https://8.8.8.8:99999/hook", "not a valid URL"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeURL, match=message):
        check_url(url, allow_private=True)


def test_a_name_is_refused_for_its_resolved_address() -> None:
    with pytest.raises(UnsafeURL, match=r"localhost \(127\.0\.0\.1\) is a loopback address"):
        outbound.resolve_safe("localhost", 443, False)
    assert outbound.resolve_safe("localhost", 443, True) == ["127.0.0.1"]


def _post(client_allow_private: bool, url: str) -> sender.Outcome:
    body = sender.build_body([sender.event_payload("evt_1", "booking.created", datetime.now(UTC), {})], "event")
    headers = sender.sign_headers("evt_1", body, ["whsec_" + "a" * 44], datetime.now(UTC))
    with sender.make_client(allow_private=client_allow_private) as client:
        return sender.post(client, url, body, headers, timeout=5)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_the_client_refuses_loopback_at_connect_time(start_receiver: StartReceiver, host: str) -> None:
    receiver = start_receiver(host="::1" if host == "::1" else "127.0.0.1")
    url = receiver.url if host != "localhost" else f"http://localhost:{receiver.port}/hook"

    outcome = _post(False, url)

    assert outcome.refused
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "loopback" in outcome.error
    assert receiver.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_the_client_reaches_loopback_when_private_targets_are_allowed(start_receiver: StartReceiver, host: str) -> None:
    receiver = start_receiver(host="::1" if host == "::1" else "127.0.0.1")
    url = receiver.url if host != "localhost" else f"http://localhost:{receiver.port}/hook"

    outcome = _post(True, url)

    assert outcome.success, outcome
    assert not outcome.refused
    assert len(receiver.received) == 1


def test_allowing_private_targets_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    outbound._warned.clear()
    with caplog.at_level(logging.WARNING, logger="connectors.outbound"):
        check_url("http://127.0.0.1/", allow_private=True)
        sender.make_client(allow_private=True).close()
        check_url("http://8.8.8.8/", allow_private=False)
    warnings = [record for record in caplog.records if "private outbound targets allowed" in record.getMessage()]
    assert len(warnings) == 1

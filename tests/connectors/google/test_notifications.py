"""Parsing Google push notifications from their X-Goog-* headers."""

from __future__ import annotations

import pytest

from connectors.google import parse_notification, secret_matches
from connectors.push import Notification
from tests.connectors.google.conftest import google_sample

HEADERS = {
    "X-Goog-Channel-ID": "4ba78bf0-6a47-11e2-bcfd-0800200c9a66",
    "X-Goog-Channel-Token": "our-secret",
    "X-Goog-Channel-Expiration": "Tue, 19 Nov 2013 01:13:52 GMT",
    "X-Goog-Resource-ID": "ret08u3rv24htgh289g",
    "X-Goog-Resource-URI": "https://admin.googleapis.com/admin/directory/v1/users?customer=my_customer&event=update",
    "X-Goog-Resource-State": "update",
    "X-Goog-Message-Number": "10",
}


def test_change() -> None:
    assert parse_notification(HEADERS) == Notification(
        channel_id="4ba78bf0-6a47-11e2-bcfd-0800200c9a66",
        secret="our-secret",
        kind="change",
        resource_id="ret08u3rv24htgh289g",
    )


def test_sync_message() -> None:
    headers = {**HEADERS, "X-Goog-Resource-State": "sync", "X-Goog-Message-Number": "1"}
    assert parse_notification(headers).kind == "sync"


@pytest.mark.parametrize("state", ["add", "delete", "undelete", "makeAdmin", "exists", "not_exists"])
def test_every_other_state_is_a_change(state: str) -> None:
    assert parse_notification({**HEADERS, "X-Goog-Resource-State": state}).kind == "change"


def test_header_names_in_any_case() -> None:
    # ASGI servers hand headers over lower-cased.
    lowered = {name.lower(): value for name, value in HEADERS.items()}
    assert parse_notification(lowered) == parse_notification(HEADERS)


@pytest.mark.parametrize(
    "missing",
    [
        "X-Goog-Channel-ID",
        "X-Goog-Channel-Token",
        "X-Goog-Resource-ID",
        "X-Goog-Resource-State",
        "X-Goog-Message-Number",
    ],
)
def test_missing_header(missing: str) -> None:
    headers = {name: value for name, value in HEADERS.items() if name != missing}
    with pytest.raises(ValueError, match=missing):
        parse_notification(headers)


def test_blank_header_counts_as_missing() -> None:
    with pytest.raises(ValueError, match="X-Goog-Channel-ID"):
        parse_notification({**HEADERS, "X-Goog-Channel-ID": "  "})


def test_message_number_must_be_a_number() -> None:
    with pytest.raises(ValueError, match="X-Goog-Message-Number"):
        parse_notification({**HEADERS, "X-Goog-Message-Number": "ten"})


def test_documented_user_deleted_notification() -> None:
    sample = google_sample("directory_users_watch_notification_user_deleted.json")

    notification = parse_notification(sample["headers"])

    assert notification == Notification(
        channel_id="deleteChannel",
        secret="245t1234tt83trrt333",
        kind="change",
        resource_id="B4ibMJiIhTjAQd7Ff2K2bexk8G4",
    )


def test_documented_sync_template() -> None:
    sample = google_sample("directory_users_watch_sync_template.json")
    notification = parse_notification(sample["headers"])
    assert (notification.kind, notification.channel_id) == ("sync", "channel-ID-value")


def test_secret_matches() -> None:
    assert secret_matches("our-secret", "our-secret")
    assert not secret_matches("our-secret", "our-secreT")
    assert not secret_matches("our-secret", "")
    assert secret_matches("ünïcode", "ünïcode")

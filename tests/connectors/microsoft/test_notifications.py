"""Parsing Graph notification collections: Microsoft's own sample payloads and malformed bodies."""

from __future__ import annotations

import json

import pytest

from connectors.microsoft import parse_notifications, secret_matches
from connectors.microsoft.subscriptions import parse_datetime
from connectors.push import Notification
from tests.connectors.microsoft.conftest import reference


def test_change_notification_sample() -> None:
    body = reference("change_notification_collection_message_created.json").read_bytes()

    assert parse_notifications(body) == [
        Notification(channel_id="{subscription_guid}", secret="secretClientValue", kind="change")
    ]


@pytest.mark.parametrize(
    ("name", "kind", "subscription", "secret"),
    [
        ("lifecycle_notification_missed.json", "missed", "<subscription_guid>", "<secretClientState>"),
        (
            "lifecycle_notification_subscriptionRemoved.json",
            "subscriptionRemoved",
            "<subscription_guid>",
            "<secretClientState>",
        ),
        (
            "lifecycle_notification_reauthorizationRequired.json",
            "reauthorizationRequired",
            "e3898f08-5cd0-4a6a-80fc-6addbfb73b7b",
            "{secret client state}",
        ),
    ],
)
def test_lifecycle_notification_samples(name: str, kind: str, subscription: str, secret: str) -> None:
    body = reference(name).read_text()

    assert parse_notifications(body) == [Notification(channel_id=subscription, secret=secret, kind=kind)]


def test_a_collection_of_several_and_a_parsed_mapping() -> None:
    body = {
        "value": [
            {"subscriptionId": "a", "clientState": "s", "changeType": "updated", "resource": "Users/1"},
            {"subscriptionId": "b", "clientState": "s", "changeType": "deleted", "resource": "Groups/2"},
        ]
    }

    assert [n.channel_id for n in parse_notifications(body)] == ["a", "b"]
    assert {n.kind for n in parse_notifications(json.dumps(body))} == {"change"}


def test_missing_client_state_parses_to_an_empty_secret_that_never_matches() -> None:
    (notification,) = parse_notifications({"value": [{"subscriptionId": "a", "changeType": "updated"}]})

    assert notification.secret == ""
    assert not secret_matches("stored-secret", notification.secret)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"value": {}}',
        b'{"values": []}',
        b'{"value": ["x"]}',
        b'{"value": [{"clientState": "s", "changeType": "updated"}]}',
        b'{"value": [{"subscriptionId": 7, "changeType": "updated"}]}',
        b'{"value": [{"subscriptionId": "a", "clientState": 5, "changeType": "updated"}]}',
        b'{"value": [{"subscriptionId": "a", "clientState": "s"}]}',
        b'{"value": [{"subscriptionId": "a", "clientState": "s", "lifecycleEvent": ""}]}',
        b'{"value": [' + b" " * (1024 * 1024) + b"]}",
    ],
)
def test_malformed_bodies_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every malformed shape is the same error to the caller
        parse_notifications(body)


def test_secret_matches() -> None:
    assert secret_matches("secretClientValue", "secretClientValue")
    assert not secret_matches("secretClientValue", "secretClientValuE")
    assert not secret_matches("secretClientValue", "")
    assert secret_matches("clé", "clé")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-11-20T18:23:45.9356913Z", "2016-11-20T18:23:45.935691+00:00"),
        ("2019-09-18T00:52:45.9696658+00:00", "2019-09-18T00:52:45.969665+00:00"),
        ("2019-03-20T11:00:00Z", "2019-03-20T11:00:00+00:00"),
        ("2019-03-20T13:00:00.5+02:00", "2019-03-20T11:00:00.500000+00:00"),
    ],
)
def test_graph_timestamps(text: str, expected: str) -> None:
    assert parse_datetime(text).isoformat() == expected

"""Subscriptions against the fake Graph: validation handshake, create, renew, delete, and real notifications."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.microsoft import GraphClient, MicrosoftSubscriptions, parse_notifications, secret_matches
from connectors.push import Notification, PushChannel
from connectors.records import ConnectorError
from tests.connectors.microsoft.conftest import CLIENT_ID
from tests.fakes.graph import FakeGraph, NotificationReceiver

SECRET = "client-state-0123456789"


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


@pytest.fixture
def subscriber(graph: GraphClient) -> MicrosoftSubscriptions:
    return MicrosoftSubscriptions(graph)


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def test_subscribe_opens_users_and_groups_after_the_handshake(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    channels = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(2))

    assert [channel.resource for channel in channels] == ["users", "groups"]
    assert len(receiver.validations) == 4  # both URLs validated for each subscription
    for channel in channels:
        stored = fake.subscriptions.items[channel.provider_id]
        assert stored.change_type == "updated,deleted"
        assert stored.client_state == SECRET
        assert stored.notification_url == receiver.url
        assert stored.lifecycle_url == receiver.lifecycle_url
        assert abs(channel.expires_at - in_days(2)) < timedelta(seconds=5)
        assert channel.expires_at == stored.expires_at


def test_expiry_beyond_graphs_limit_is_clamped(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    (users, _groups) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(90))

    assert users.expires_at < datetime.now(UTC) + timedelta(minutes=41760)
    assert users.expires_at > datetime.now(UTC) + timedelta(days=28)


def test_failed_handshake_refuses_and_leaves_nothing_behind(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    receiver.answer_validation = False

    with pytest.raises(ConnectorError) as caught:
        subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(2))
    assert "validation" in caught.value.message
    assert fake.subscriptions.items == {}


def test_second_subscription_failing_deletes_the_first(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    fake.identity.apps[CLIENT_ID].permissions = {"User.Read.All"}

    with pytest.raises(ConnectorError) as caught:
        subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(2))
    assert caught.value.action_required
    assert "Group.Read.All" in caught.value.message
    assert fake.count("/v1.0/subscriptions", method="POST") == 2
    assert fake.count("/v1.0/subscriptions/", method="DELETE") == 1
    assert fake.subscriptions.items == {}


def test_renew_extends_with_patch(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    (users, _groups) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))

    renewed = subscriber.renew(users, receiver.url, SECRET, in_days(5))

    assert renewed.provider_id == users.provider_id
    assert renewed.resource == "users"
    assert abs(renewed.expires_at - in_days(5)) < timedelta(seconds=5)
    assert fake.subscriptions.items[users.provider_id].expires_at == renewed.expires_at
    assert fake.count(f"/v1.0/subscriptions/{users.provider_id}", method="PATCH") == 1


def test_renewing_a_subscription_graph_removed_says_subscribe_again(
    fake: FakeGraph, subscriber: MicrosoftSubscriptions
) -> None:
    gone = PushChannel(provider_id="no-such-subscription", resource="users", expires_at=in_days(1))

    with pytest.raises(ConnectorError) as caught:
        subscriber.renew(gone, "http://127.0.0.1:9/n", SECRET, in_days(2))
    assert "subscribe again" in caught.value.message
    assert not caught.value.action_required


def test_unsubscribe_deletes_and_a_missing_one_is_fine(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    channels = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))

    for channel in channels:
        subscriber.unsubscribe(channel)
    subscriber.unsubscribe(channels[0])  # already gone: Graph answers 404

    assert fake.subscriptions.items == {}
    assert fake.count("/v1.0/subscriptions/", method="DELETE") == 3


def test_notifications_from_graph_parse_and_verify(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: MicrosoftSubscriptions
) -> None:
    (users, groups) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))

    assert fake.subscriptions.notify(users.provider_id, resource_id="u1") == 202
    assert fake.subscriptions.lifecycle(groups.provider_id, "reauthorizationRequired") == 202

    (change,) = parse_notifications(receiver.bodies["/graph/notifications"][0])
    assert change == Notification(channel_id=users.provider_id, secret=SECRET, kind="change")
    assert secret_matches(SECRET, change.secret)
    (lifecycle,) = parse_notifications(receiver.bodies["/graph/lifecycle"][0])
    assert lifecycle == Notification(channel_id=groups.provider_id, secret=SECRET, kind="reauthorizationRequired")


def test_subscribe_without_a_receiver_when_validation_is_off(
    fake: FakeGraph, subscriber: MicrosoftSubscriptions
) -> None:
    fake.subscriptions.validate_urls = False

    channels = subscriber.subscribe("https://example.invalid/n", "https://example.invalid/l", SECRET, in_days(1))

    assert len(channels) == 2
    assert len(fake.subscriptions.items) == 2


def test_naive_expiry_is_refused(subscriber: MicrosoftSubscriptions) -> None:
    with pytest.raises(ValueError, match="timezone"):
        subscriber.clamp(datetime.now())

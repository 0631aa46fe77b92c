"""Subscriptions on a person's Outlook events: create, clamp, renew, delete, and the notifications Graph sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.microsoft import (
    GraphClient,
    OutlookCalendarWriter,
    OutlookEventSubscriptions,
    parse_notifications,
    secret_matches,
)
from connectors.push import Notification
from connectors.records import BookingEntry, ConnectorError
from tests.connectors.microsoft.conftest import CALENDAR_UPN, CALENDAR_USER, CLIENT_ID
from tests.fakes.graph import FakeGraph, NotificationReceiver

SECRET = "client-state-calendar-0123"


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


@pytest.fixture
def subscriber(calendar_graph: GraphClient) -> OutlookEventSubscriptions:
    return OutlookEventSubscriptions(calendar_graph, CALENDAR_USER)


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def changes(receiver: NotificationReceiver) -> list[Notification]:
    return [item for body in receiver.bodies.get("/graph/notifications", []) for item in parse_notifications(body)]


def test_subscribe_on_the_persons_events(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: OutlookEventSubscriptions
) -> None:
    (channel,) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))

    assert channel.resource == "users/u1/events"
    stored = fake.subscriptions.items[channel.provider_id]
    assert stored.change_type == "created,updated,deleted"
    assert (stored.notification_url, stored.lifecycle_url) == (receiver.url, receiver.lifecycle_url)
    assert stored.client_state == SECRET
    assert len(receiver.validations) == 2
    assert abs(channel.expires_at - in_days(1)) < timedelta(seconds=5)


def test_expiry_is_clamped_to_outlooks_limit(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: OutlookEventSubscriptions
) -> None:
    (channel,) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(29))

    assert channel.expires_at < datetime.now(UTC) + timedelta(minutes=4230)
    assert channel.expires_at > datetime.now(UTC) + timedelta(minutes=4200)

    renewed = subscriber.renew(channel, receiver.url, SECRET, in_days(29))
    assert renewed.expires_at < datetime.now(UTC) + timedelta(minutes=4230)
    assert fake.count(f"/v1.0/subscriptions/{channel.provider_id}", method="PATCH") == 1


def test_changes_to_the_calendar_send_notifications(
    fake: FakeGraph, receiver: NotificationReceiver, calendar_graph: GraphClient, subscriber: OutlookEventSubscriptions
) -> None:
    (channel,) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))
    start = datetime(2025, 3, 25, 9, tzinfo=UTC)
    event = fake.calendars.add_event(CALENDAR_USER, "Standup", start, start + timedelta(minutes=15))
    fake.calendars.update_event(CALENDAR_USER, event.id, subject="Stand-up")
    fake.calendars.delete_event(CALENDAR_USER, event.id)
    entry = BookingEntry(42, start, start + timedelta(hours=8), "Europe/Berlin", "Desk 1", "HQ", "HQ")
    OutlookCalendarWriter(calendar_graph, CALENDAR_UPN).put(entry, None)  # our own writes notify too

    received = changes(receiver)
    assert received == [Notification(channel_id=channel.provider_id, secret=SECRET, kind="change")] * 4
    assert all(secret_matches(SECRET, item.secret) for item in received)
    items = [json.loads(body)["value"][0] for body in receiver.bodies["/graph/notifications"]]
    assert [item["changeType"] for item in items] == ["created", "updated", "deleted", "created"]
    assert items[0]["resource"] == f"Users/{CALENDAR_USER}/Events/{event.id}"
    assert items[0]["resourceData"]["id"] == event.id


def test_another_persons_calendar_does_not_notify(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: OutlookEventSubscriptions
) -> None:
    subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))
    fake.calendars.add_calendar("u2", "bob@contoso.example")
    start = datetime(2025, 3, 25, 9, tzinfo=UTC)

    fake.calendars.add_event("u2", "Not Ada's", start, start + timedelta(hours=1))

    assert changes(receiver) == []


def test_missed_notifications_arrive_as_a_lifecycle_event(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: OutlookEventSubscriptions
) -> None:
    (channel,) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))

    assert fake.subscriptions.lifecycle(channel.provider_id, "missed") == 202

    (item,) = parse_notifications(receiver.bodies["/graph/lifecycle"][0])
    assert item == Notification(channel_id=channel.provider_id, secret=SECRET, kind="missed")


def test_unsubscribe_and_again(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: OutlookEventSubscriptions
) -> None:
    (channel,) = subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))

    subscriber.unsubscribe(channel)
    subscriber.unsubscribe(channel)

    assert fake.subscriptions.items == {}


def test_without_calendar_permission_the_admin_is_told_which(
    fake: FakeGraph, receiver: NotificationReceiver, subscriber: OutlookEventSubscriptions
) -> None:
    fake.identity.apps[CLIENT_ID].permissions = {"User.Read.All", "Group.Read.All"}

    with pytest.raises(ConnectorError) as caught:
        subscriber.subscribe(receiver.url, receiver.lifecycle_url, SECRET, in_days(1))
    assert caught.value.action_required
    assert "Calendars.ReadWrite" in caught.value.message
    assert fake.subscriptions.items == {}

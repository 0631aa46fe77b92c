"""users.watch channels: opened per event, renewed by replacing, stopped; real notifications to a receiver."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from connectors.google import DirectoryService, GoogleChannels, GoogleSettings, parse_notification, secret_matches
from connectors.google.channels import event_of, from_millis, to_millis
from connectors.push import PushChannel
from connectors.records import ConnectorError
from tests.connectors.google.conftest import Receiver, google_sample
from tests.fakes.google import FakeGoogle

SECRET = "s3cret-channel-token"


def channels(settings: GoogleSettings, **options: object) -> GoogleChannels:
    ids = itertools.count(1)
    return GoogleChannels(settings, new_id=lambda: f"chan-{next(ids)}", **options)  # type: ignore[arg-type]


def soon(hours: float = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def test_subscribe_opens_one_channel_per_event(fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver) -> None:
    expires = soon()

    opened = channels(settings).subscribe(receiver.url, "unused", SECRET, expires)

    assert [c.provider_id for c in opened] == ["chan-1", "chan-2", "chan-3", "chan-4"]
    assert [event_of(c) for c in opened] == ["add", "update", "delete", "undelete"]
    assert all(c.expires_at == expires for c in opened)
    assert all(c.resource_id for c in opened)
    watches = [r for r in fake.requests if r.path == "admin/directory/v1/users/watch"]
    assert [r.query["event"] for r in watches] == ["add", "update", "delete", "undelete"]
    assert all(r.query["customer"] == "my_customer" for r in watches)
    assert watches[0].body == {
        "id": "chan-1",
        "type": "web_hook",
        "address": receiver.url,
        "token": SECRET,
        "expiration": str(to_millis(expires)),
    }
    assert set(fake.channels) == {"chan-1", "chan-2", "chan-3", "chan-4"}


def test_google_may_shorten_the_channel(fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver) -> None:
    fake.channel_ttl = 3600

    (channel,) = channels(settings, events=["update"]).subscribe(receiver.url, "", SECRET, soon(hours=48))

    assert channel.expires_at <= datetime.now(UTC) + timedelta(hours=1, seconds=5)
    assert channel.expires_at == from_millis(int(fake.channels["chan-1"]["expiration"]))


def test_sync_message_then_changes_reach_the_receiver(
    fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver
) -> None:
    opened = channels(settings, events=["add", "delete"]).subscribe(receiver.url, "", SECRET, soon())
    fake.wait_for_deliveries(2)

    uid = fake.add_user("new@example.com", "New", "Person")
    fake.delete_user(uid)
    deliveries = fake.wait_for_deliveries(4)

    assert [d.status for d in deliveries] == [200] * 4
    parsed = [parse_notification(headers) for headers in receiver.received]
    assert sorted(n.kind for n in parsed[:2]) == ["sync", "sync"]
    assert [n.kind for n in parsed[2:]] == ["change", "change"]
    by_id = {c.provider_id: c for c in opened}
    for notification in parsed:
        channel = by_id[notification.channel_id]
        assert notification.resource_id == channel.resource_id
        assert secret_matches(SECRET, notification.secret)
    assert [headers["X-Goog-Resource-State"] for headers in receiver.received[2:]] == ["add", "delete"]
    assert b'"primaryEmail": "new@example.com"' in receiver.bodies[3]


def test_renew_opens_a_new_channel_then_stops_the_old(
    fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver
) -> None:
    subscriber = channels(settings, events=["update"])
    (old,) = subscriber.subscribe(receiver.url, "", SECRET, soon())
    later = soon(hours=5)

    new = subscriber.renew(old, receiver.url, "rotated-secret", later)

    assert (new.provider_id, event_of(new), new.expires_at) == ("chan-2", "update", later)
    assert new.resource_id == old.resource_id  # the same watched resource
    assert set(fake.channels) == {"chan-2"}
    assert fake.channels["chan-2"]["token"] == "rotated-secret"
    calls = [r.path for r in fake.requests if r.path.startswith("admin/")]
    assert calls[-2:] == ["admin/directory/v1/users/watch", "admin/directory_v1/channels/stop"]
    stop = fake.requests[-1]
    assert stop.body == {"id": "chan-1", "resourceId": old.resource_id}


def test_renew_when_the_old_channel_is_already_gone(
    fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver
) -> None:
    subscriber = channels(settings, events=["delete"])
    (old,) = subscriber.subscribe(receiver.url, "", SECRET, soon())
    fake.channels.clear()  # expired at Google's end

    new = subscriber.renew(old, receiver.url, SECRET, soon())

    assert set(fake.channels) == {new.provider_id}


def test_unsubscribe_stops_and_tolerates_unknown_channels(
    fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver
) -> None:
    subscriber = channels(settings, events=["add"])
    (channel,) = subscriber.subscribe(receiver.url, "", SECRET, soon())

    subscriber.unsubscribe(channel)
    subscriber.unsubscribe(channel)  # again: Google answers 404, which is what we want anyway
    subscriber.unsubscribe(PushChannel("never-opened", "users?event=add", soon(), resource_id="nope"))

    assert fake.channels == {}
    stops = [r for r in fake.requests if r.path == "admin/directory_v1/channels/stop"]
    assert len(stops) == 3


def test_failed_subscribe_leaves_no_channel_open(
    fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver
) -> None:
    # Reusing a channel id makes Google refuse the second watch (channelIdNotUnique).
    subscriber = GoogleChannels(settings, events=["add", "update"], new_id=lambda: "same-id")

    with pytest.raises(ConnectorError) as refused:
        subscriber.subscribe(receiver.url, "", SECRET, soon())

    assert "channelIdNotUnique" in refused.value.message
    assert fake.channels == {}  # the first channel was stopped again
    assert [r.path for r in fake.requests if r.path.startswith("admin/")][-1] == "admin/directory_v1/channels/stop"


def test_watch_throttled_then_opened(
    fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver, sleeps: list[float]
) -> None:
    fake.fail(429, retry_after="2", path="admin/directory/v1/users/watch")

    (channel,) = channels(settings, events=["add"]).subscribe(receiver.url, "", SECRET, soon())

    assert sleeps == [2.0]
    assert channel.provider_id in fake.channels


def test_event_of_needs_a_users_watch_resource() -> None:
    with pytest.raises(ValueError, match=r"not a Google users\.watch channel"):
        event_of(PushChannel("c", "https://www.googleapis.com/calendar/v3/calendars/x/events", soon()))


def test_naive_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_millis(datetime(2030, 1, 1))


def test_watch_samples(fake: FakeGoogle, settings: GoogleSettings, receiver: Receiver) -> None:
    sample = google_sample("directory_users_watch_response.json")
    response = {**sample, "resourceUri": sample["resourceUri"].replace("event=event", "event=update")}
    channel = PushChannel(
        provider_id=response["id"],
        resource=response["resourceUri"],
        expires_at=from_millis(int(response["expiration"])),
        resource_id=response["resourceId"],
    )
    assert event_of(channel) == "update"
    assert channel.expires_at == datetime(2013, 11, 19, 1, 13, 52, tzinfo=UTC)

    # The documented request, sent through the real client, gets an answer with the documented keys.
    request = {**google_sample("directory_users_watch_request.json"), "address": receiver.url}
    answer = DirectoryService(settings).call(
        lambda r: r.users().watch(customer="my_customer", event="update", body=request), "watching"
    )
    assert set(answer) == set(sample)
    assert (answer["id"], answer["token"]) == (request["id"], request["token"])
    lifetime = from_millis(int(answer["expiration"])) - datetime.now(UTC)
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)  # params.ttl: 3600 was honoured

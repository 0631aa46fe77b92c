"""events.watch channels on a person's calendar: opened, renewed by replacing, stopped; real notifications."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from connectors.google import GoogleCalendarChannels, GoogleSettings, parse_notification, secret_matches
from connectors.google.channels import from_millis, to_millis
from connectors.push import PushChannel
from tests.connectors.google.conftest import Receiver
from tests.fakes.google import FakeGoogle

SECRET = "calendar-channel-secret"
WATCH = "calendar/v3/calendars/primary/events/watch"
STOP = "calendar/v3/channels/stop"
NOW = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


def channels(settings: GoogleSettings, person: str) -> GoogleCalendarChannels:
    ids = itertools.count(1)
    return GoogleCalendarChannels(settings, person, new_id=lambda: f"cal-{next(ids)}", now=lambda: NOW)


def soon(hours: float = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def test_subscribe_watches_the_primary_calendar(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    expires = NOW + timedelta(hours=2)
    fake.channel_ttl = 10**9  # let our own ttl decide

    (channel,) = channels(settings, person).subscribe(receiver.url, "unused", SECRET, expires)

    (watch,) = [r for r in fake.requests if r.path == WATCH]
    assert watch.body == {
        "id": "cal-1",
        "type": "web_hook",
        "address": receiver.url,
        "token": SECRET,
        "expiration": str(to_millis(expires)),
        "params": {"ttl": "7200"},
    }
    assert channel.provider_id == "cal-1"
    assert channel.resource == "https://www.googleapis.com/calendar/v3/calendars/alex%40example.com/events"
    assert channel.resource_id == fake.channels["cal-1"]["resourceId"]
    assert fake.channels["cal-1"]["calendar"] == person
    assert fake.discovery_requests == 0


def test_google_decides_the_lifetime(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    fake.channel_ttl = 3600
    subscriber = GoogleCalendarChannels(settings, person)

    (channel,) = subscriber.subscribe(receiver.url, "", SECRET, soon(hours=48))

    assert channel.expires_at == from_millis(int(fake.channels[channel.provider_id]["expiration"]))
    assert channel.expires_at <= datetime.now(UTC) + timedelta(hours=1, seconds=5)


def test_sync_then_exists_for_each_change(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    (channel,) = GoogleCalendarChannels(settings, person).subscribe(receiver.url, "", SECRET, soon())
    fake.wait_for_deliveries(1)
    other = fake.add_user("sam@example.com", "Sam", "Okafor", notify=False)

    event_id = fake.add_event(person, NOW, NOW + timedelta(hours=1), "Stand-up")
    fake.add_event("sam@example.com", NOW, NOW + timedelta(hours=1))  # someone else's calendar: not ours
    fake.delete_event(person, event_id)
    fake.delete_user(other)  # a directory event: never sent to a calendar channel
    fake.wait_for_deliveries(3)
    deliveries = fake.wait_for_deliveries(4, timeout=0.3)  # and nothing more comes

    assert [(d.state, d.status) for d in deliveries] == [("sync", 200), ("exists", 200), ("exists", 200)]
    parsed = [parse_notification(headers) for headers in receiver.received]
    assert [n.kind for n in parsed] == ["sync", "change", "change"]
    assert all(n.channel_id == channel.provider_id and n.resource_id == channel.resource_id for n in parsed)
    assert all(secret_matches(SECRET, n.secret) for n in parsed)
    headers = {key.lower(): value for key, value in receiver.received[1].items()}
    assert headers["x-goog-resource-uri"] == channel.resource


def test_renew_opens_a_new_channel_then_stops_the_old(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    subscriber = channels(settings, person)
    (old,) = subscriber.subscribe(receiver.url, "", SECRET, soon())

    new = subscriber.renew(old, receiver.url, "rotated", soon(hours=5))

    assert new.provider_id == "cal-2"
    assert new.resource_id == old.resource_id  # the same calendar
    assert set(fake.channels) == {"cal-2"}
    assert fake.channels["cal-2"]["token"] == "rotated"
    calls = [r.path for r in fake.requests if r.path.startswith("calendar/")]
    assert calls[-2:] == [WATCH, STOP]
    assert fake.requests[-1].body == {"id": "cal-1", "resourceId": old.resource_id}


def test_renew_when_the_old_channel_is_gone(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    subscriber = channels(settings, person)
    (old,) = subscriber.subscribe(receiver.url, "", SECRET, soon())
    fake.channels.clear()

    new = subscriber.renew(old, receiver.url, SECRET, soon())

    assert set(fake.channels) == {new.provider_id}


def test_unsubscribe_tolerates_unknown_channels(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    subscriber = channels(settings, person)
    (channel,) = subscriber.subscribe(receiver.url, "", SECRET, soon())

    subscriber.unsubscribe(channel)
    subscriber.unsubscribe(channel)
    subscriber.unsubscribe(PushChannel("never", "calendars/primary/events", soon(), resource_id="nope"))

    assert fake.channels == {}
    assert len([r for r in fake.requests if r.path == STOP]) == 3


def test_throttled_watch_is_retried(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver, sleeps: list[float]
) -> None:
    fake.fail(429, retry_after="4", path=WATCH)

    (channel,) = channels(settings, person).subscribe(receiver.url, "", SECRET, soon())

    assert sleeps == [4.0]
    assert channel.provider_id in fake.channels

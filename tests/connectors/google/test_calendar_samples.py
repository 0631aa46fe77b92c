"""Google's documented (and schema-built) calendar payloads: mapped as the connector maps them, accepted
and answered by the fake as Google does; plus the delegation the calendar scope needs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from connectors.google import GoogleCalendar, GoogleCalendarChannels, GoogleSettings, parse_notification
from connectors.google.calendar_events import to_record
from connectors.google.calendar_service import CALENDAR_SCOPE
from connectors.google.errors import parse_error
from connectors.records import CalendarEvent, ConnectorError, RemovedEvent, Window
from tests.connectors.google.conftest import Receiver, google_sample
from tests.fakes.google import FakeGoogle, sync_token_gone_body

WINDOW = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC))


def records(name: str) -> dict[str, CalendarEvent | RemovedEvent]:
    body = google_sample(name)
    mapped = [to_record(item, body["timeZone"]) for item in body["items"]]
    return {r.event_id: r for r in mapped if r is not None}


def test_full_sync_sample_pages() -> None:
    first = records("events_list_full_sync_page1_nextPageToken_constructed.json")
    second = records("events_list_full_sync_page2_nextSyncToken_constructed.json")

    series = first["4mm2ak3in2j3pllqdk1ubtbp9p"]
    assert isinstance(series, CalendarEvent)
    assert (series.start, series.timezone) == (datetime(2024, 1, 8, 13, tzinfo=UTC), "Europe/Berlin")
    assert series.attendees == ("alex@example.com", "sam@example.com")
    holiday = first["6ep37v20d728v14rcgn17v9is6"]
    assert isinstance(holiday, CalendarEvent)
    assert (holiday.all_day, holiday.show_as) == (True, "free")
    assert holiday.start == datetime(2024, 3, 28, 23, tzinfo=UTC)  # midnight in the calendar's zone
    kinds = {
        key: (r.show_as, r.working_location, r.working_location_label)
        for key, r in second.items()
        if isinstance(r, CalendarEvent)
    }
    assert kinds == {
        "0s3a6f0sdh2bbt0q6lqkc3s5r8": ("workingElsewhere", "home", None),
        "1u9rm4e2vq7k3g8hqj1d8a0b6c": ("workingElsewhere", "office", "Berlin HQ"),
        "2f8k1n5p0h3j6l9r2t4v7b0d3e": ("workingElsewhere", "custom", "Client site"),
        "3c5e7g9i1k3m5o7q9s1u3a5c7e": ("oof", None, None),
    }


def test_incremental_sample_with_cancellations() -> None:
    mapped = records("events_list_incremental_sync_with_cancelled_constructed.json")

    assert mapped["6ep37v20d728v14rcgn17v9is6"] == RemovedEvent("6ep37v20d728v14rcgn17v9is6")
    assert mapped["4mm2ak3in2j3pllqdk1ubtbp9p_20240311T130000Z"] == RemovedEvent(
        "4mm2ak3in2j3pllqdk1ubtbp9p_20240311T130000Z"
    )
    moved = mapped["4mm2ak3in2j3pllqdk1ubtbp9p_20240318T130000Z"]
    assert isinstance(moved, CalendarEvent)
    assert moved.recurrence_id == "2024-03-18T13:00:00+00:00"
    assert moved.start == datetime(2024, 3, 18, 14, tzinfo=UTC)


def test_documented_410_bodies_are_what_the_fake_sends() -> None:
    for reason in ("fullSyncRequired", "updatedMinTooLongAgo"):
        assert sync_token_gone_body(reason) == google_sample(f"error_410_{reason}.json")
        failure = parse_error(410, json.dumps(google_sample(f"error_410_{reason}.json")))
        assert (failure.status, failure.reason) == (410, reason)


def test_documented_status_event_bodies_are_accepted(fake: FakeGoogle, settings: GoogleSettings, person: str) -> None:
    custom = fake.insert_event(person, google_sample("event_insert_body_workingLocation_customLocation_docs.json"))
    away = fake.insert_event(person, google_sample("event_insert_body_outOfOffice_docs.json"))
    window = Window(datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 12, 1, tzinfo=UTC))

    (page,) = GoogleCalendar(settings, person).read(None, window)

    events = {event.event_id: event for event in page.events}
    assert (events[custom["id"]].working_location, events[custom["id"]].working_location_label) == (
        "custom",
        "a custom location",
    )
    assert events[custom["id"]].all_day
    assert events[away["id"]].show_as == "oof"


def test_fake_refuses_what_google_refuses(fake: FakeGoogle, person: str) -> None:
    body = google_sample("event_insert_body_workingLocation_customLocation_docs.json")
    with pytest.raises(ValueError, match="exactly one day"):
        fake.insert_event(person, {**body, "end": {"date": "2023-06-03"}})
    with pytest.raises(ValueError, match="public and transparent"):
        fake.insert_event(person, {**body, "visibility": "default"})
    away = google_sample("event_insert_body_outOfOffice_docs.json")
    with pytest.raises(ValueError, match="all-day"):
        fake.insert_event(person, {**away, "start": {"date": "2023-11-15"}, "end": {"date": "2023-11-16"}})
    fake.calendar(person).working_location = False
    rest = {k: v for k, v in body.items() if k not in ("start", "end")}
    with pytest.raises(ValueError, match="not enabled"):
        fake.add_event(person, date(2023, 6, 1), date(2023, 6, 2), **rest)


def test_watch_sample_through_the_real_client(
    fake: FakeGoogle, settings: GoogleSettings, person: str, receiver: Receiver
) -> None:
    sample = google_sample("calendar_events_watch_response.json")
    request = google_sample("calendar_events_watch_request.json")
    subscriber = GoogleCalendarChannels(settings, person, new_id=lambda: request["id"])

    (channel,) = subscriber.subscribe(receiver.url, "", sample["token"], datetime(2099, 1, 1, tzinfo=UTC))

    answer = fake.channels[channel.provider_id]
    assert {k for k in answer if k in sample} == set(sample)
    assert channel.provider_id == sample["id"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("calendar_push_notification_sync_constructed.json", "sync"),
        ("calendar_push_notification_exists.json", "change"),
        ("calendar_push_notification_not_exists_constructed.json", "change"),
    ],
)
def test_calendar_notifications_parse(name: str, kind: str) -> None:
    headers = google_sample(name)["headers"]

    notification = parse_notification(headers)

    assert (notification.kind, notification.channel_id) == (kind, "4ba78bf0-6a47-11e2-bcfd-0800200c9a66")
    assert notification.resource_id == "ret08u3rv24htgh289g"


def test_missing_delegation_names_the_calendar_scope(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.add_user("alex@example.com", notify=False)  # the calendar scope was never authorised

    with pytest.raises(ConnectorError) as refused:
        list(GoogleCalendar(settings, "alex@example.com").read(None, WINDOW))

    assert refused.value.action_required
    assert CALENDAR_SCOPE in refused.value.message
    assert "alex@example.com" in refused.value.message
    assert fake.grants == []


def test_person_who_is_no_user(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.delegated_scopes.add(CALENDAR_SCOPE)

    with pytest.raises(ConnectorError) as refused:
        list(GoogleCalendar(settings, "gone@example.com").read(None, WINDOW))

    assert "invalid_grant" in refused.value.message
    assert "gone@example.com" in refused.value.message


def test_token_acts_as_the_person_with_the_calendar_scope_only(
    fake: FakeGoogle, settings: GoogleSettings, person: str
) -> None:
    list(GoogleCalendar(settings, person).read(None, WINDOW))

    (claims,) = fake.grants
    assert (claims["sub"], claims["scope"]) == (person, CALENDAR_SCOPE)
    assert fake.discovery_requests == 0

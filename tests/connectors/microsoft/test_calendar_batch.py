"""Graph JSON batching for calendar reads: the first requests of many mailboxes in one `POST /$batch`,
against the fake Graph (which answers each request as if sent alone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.microsoft import GraphClient, OutlookCalendar
from connectors.microsoft.calendar_events import CALENDARS_PERMISSION
from connectors.microsoft.graph_batch import MAX_REQUESTS, get_many
from connectors.records import ConnectorError, Window
from tests.connectors.microsoft.conftest import CALENDAR_UPN, CALENDAR_USER
from tests.fakes.graph import FakeGraph

WINDOW = Window(datetime(2025, 3, 24, tzinfo=UTC), datetime(2025, 4, 14, tzinfo=UTC))
START = datetime(2025, 3, 25, 9, tzinfo=UTC)


def mailboxes(fake: FakeGraph, count: int) -> list[str]:
    """`count` more mailboxes with an event each; their sign-in names."""
    names = []
    for number in range(count):
        user, upn = f"m{number}", f"person{number}@contoso.example"
        fake.calendars.add_calendar(user, upn)
        fake.calendars.add_event(user, f"Meeting {number}", START, START + timedelta(hours=1))
        names.append(upn)
    return names


def test_first_pages_of_many_mailboxes_come_in_batches_of_twenty(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    names = mailboxes(fake, MAX_REQUESTS + 5)
    readers = [OutlookCalendar(calendar_graph, name) for name in names]

    answers = get_many(
        calendar_graph, [reader.first_request(None, WINDOW) for reader in readers], permission=CALENDARS_PERMISSION
    )

    assert fake.count("/v1.0/$batch", "POST") == 2
    assert fake.count("/v1.0/users/", "GET in $batch") == MAX_REQUESTS + 5
    assert [[item["subject"] for item in answer["value"]] for answer in answers if answer] == [
        [f"Meeting {number}"] for number in range(MAX_REQUESTS + 5)
    ]
    # A round started from its batched answer is the round read alone, and goes on from its deltaLink.
    pages = list(readers[0].read(None, WINDOW, first=answers[0]))
    assert [event.title for page in pages for event in page.events] == ["Meeting 0"]
    assert pages[-1].last
    assert pages[-1].cursor
    cursor = pages[-1].cursor
    fake.calendars.add_event("m0", "Later", START + timedelta(days=1), START + timedelta(days=1, hours=1))
    again, _ = get_many(
        calendar_graph,
        [readers[0].first_request(cursor, WINDOW), readers[1].first_request(None, WINDOW)],
        permission=CALENDARS_PERMISSION,
    )
    assert again is not None
    assert [item["subject"] for item in again["value"]] == ["Later"]


def test_a_refused_or_throttled_request_is_left_to_the_reader(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    [known] = mailboxes(fake, 1)
    fake.calendars.add_event(CALENDAR_USER, "Standup", START, START + timedelta(minutes=15))
    requests = [
        OutlookCalendar(calendar_graph, "nobody@contoso.example").first_request(None, WINDOW),  # no mailbox: 404
        OutlookCalendar(calendar_graph, known).first_request(None, WINDOW),
        ("https://elsewhere.example/v1.0/users/x/calendarView/delta", ()),  # not Graph's: never sent
    ]
    fake.throttle(1, "0")  # the batch's first request is throttled inside it

    answers = get_many(calendar_graph, [*requests[:1], *requests], permission=CALENDARS_PERMISSION)

    assert answers[0] is None  # throttled
    assert answers[1] is None  # refused (404)
    assert answers[2] is not None
    assert answers[3] is None
    # The reader asks alone and says why: the mailbox is missing.
    with pytest.raises(ConnectorError, match="Exchange Online mailbox"):
        list(OutlookCalendar(calendar_graph, "nobody@contoso.example").read(None, WINDOW, first=answers[1]))
    pages = list(OutlookCalendar(calendar_graph, CALENDAR_UPN).read(None, WINDOW))
    assert [event.title for page in pages for event in page.events] == ["Standup"]


def test_the_fake_refuses_a_batch_graph_would(fake: FakeGraph, calendar_graph: GraphClient) -> None:
    too_many = {"requests": [{"id": str(n), "method": "GET", "url": "/users"} for n in range(MAX_REQUESTS + 1)]}
    twice = {"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]}

    payloads: list[dict[str, list[dict[str, str]]]] = [too_many, twice, {"requests": []}]
    for payload in payloads:
        response = calendar_graph.request("POST", "$batch", permission="x", json=payload, ok_statuses=frozenset({400}))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadRequest"

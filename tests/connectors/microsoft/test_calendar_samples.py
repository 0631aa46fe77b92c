"""The calendar reader on Microsoft's own sample payloads, served in place through an httpx mock transport."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.microsoft import GraphClient, OutlookCalendar
from connectors.microsoft.calendar_events import event_from_graph
from connectors.records import CalendarPage, Window
from tests.connectors.microsoft.conftest import Sleeps, reference

WINDOW = Window(datetime(2016, 12, 1, tzinfo=UTC), datetime(2016, 12, 30, tzinfo=UTC))
PAGES = [
    "calendarview_delta_01_initial_page_nextLink.json",
    "calendarview_delta_02_second_page_nextLink.json",
    "calendarview_delta_03_final_page_deltaLink.json",
]


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reference(name).read_text())
    return data


class Token:
    def token(self) -> str:
        return "token"


class Samples:
    """Answers by URL: the first request gets page 1, each link the page it leads to; `gone` answers 410 first."""

    def __init__(self, names: list[str], first: str, gone: str | None = None) -> None:
        self.pages = {first: sample(names[0])}
        for name, following in itertools.pairwise(names):
            self.pages[sample(name)["@odata.nextLink"]] = sample(following)
        self.gone = gone
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.gone is not None:
            body, self.gone = sample(self.gone), None
            return httpx.Response(410, json=body)
        url = str(request.url)
        for prefix, page in self.pages.items():
            if url == prefix or (prefix.endswith("?") and url.startswith(prefix)):
                return httpx.Response(200, json=page)
        return httpx.Response(404, json={"error": {"code": "ErrorItemNotFound", "message": url}})


def read(samples: Samples, cursor: str | None = None) -> list[CalendarPage]:
    graph = GraphClient(
        Token(), base_url="https://graph.microsoft.com/v1.0", http=httpx.Client(transport=httpx.MockTransport(samples)),
        sleep=Sleeps(),
    )  # fmt: skip
    return list(OutlookCalendar(graph, "samanthab@contoso.onmicrosoft.com", page_size=2).read(cursor, WINDOW))


FIRST = "https://graph.microsoft.com/v1.0/users/samanthab@contoso.onmicrosoft.com/calendarView/delta?"


def test_the_docs_initial_round_over_three_pages() -> None:
    samples = Samples(PAGES, FIRST)

    pages = read(samples)

    assert [len(page.events) for page in pages] == [2, 2, 1]
    assert all(page.full for page in pages)
    assert pages[-1].last
    events = {event.event_id: event for page in pages for event in page.events}
    plan = events["AAMkADNVxRAAA="]
    assert plan.title == "Plan shopping list"
    assert (plan.start, plan.end) == (datetime(2016, 12, 9, 20, 30, tzinfo=UTC), datetime(2016, 12, 9, 22, tzinfo=UTC))
    assert plan.etag == 'W/"EZ9r3czxY0m2jz8c45czkwAAFXcvIQ=="'  # no changeKey in delta samples: the etag
    assert events["AAMkADj1HuAAA="].location == "Home"
    request = samples.seen[0]
    assert request.url.params["startDateTime"] == "2016-12-01T00:00:00Z"
    assert request.url.params["endDateTime"] == "2016-12-30T00:00:00Z"
    assert request.headers.get_list("Prefer") == ['outlook.timezone="UTC"', "odata.maxpagesize=2"]
    assert all(seen.headers.get_list("Prefer") for seen in samples.seen)  # on the nextLinks too


def test_the_docs_next_round_with_a_removed_event() -> None:
    cursor = read(Samples(PAGES, FIRST))[-1].cursor
    assert cursor is not None
    next_round = sample("calendarview_delta_03_final_page_deltaLink.json")["@odata.deltaLink"]

    (page,) = read(Samples(["calendarview_delta_04_next_round_with_removed.json"], next_round), cursor)

    assert not page.full
    assert [removed.event_id for removed in page.removed] == [
        "AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA="
    ]
    (event,) = page.events
    assert (event.title, event.location) == ("Attend service", "Chapel of Saint Ignatius")


def test_the_docs_410_bodies_restart_the_round() -> None:
    cursor = read(Samples(PAGES, FIRST))[-1].cursor
    for gone in ("error_410_syncStateNotFound_constructed.json", "error_410_resyncRequired_constructed.json"):
        pages = read(Samples(PAGES, FIRST, gone=gone), cursor)

        assert all(page.full for page in pages)
        assert len([event for page in pages for event in page.events]) == 5
        code = sample(gone)["error"]["code"]
        assert any(code in note for note in pages[0].notes)


def test_the_docs_single_event_in_pacific_time() -> None:
    event = event_from_graph(sample("event_created_single_instance_pst.json"))

    # 11:00 Pacific Daylight Time on 15 April 2017 is 18:00 UTC.
    assert (event.start, event.end) == (datetime(2017, 4, 15, 18, tzinfo=UTC), datetime(2017, 4, 15, 19, tzinfo=UTC))
    assert event.timezone == "America/Los_Angeles"
    assert event.etag == "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="
    assert event.attendees == ("samanthab@contoso.onmicrosoft.com",)
    assert (event.title, event.location, event.show_as, event.recurrence_id) == (
        "Let's go brunch",
        "Harry's Bar",
        "busy",
        None,
    )
    assert event.ical_uid is not None
    assert event.ical_uid.startswith("040000008200E00074C5B7101A82E008")
    assert event.updated == datetime(2017, 4, 15, 3, 0, 51, 245372, tzinfo=UTC)
    assert event.booking_id is None


def test_the_docs_series_master_is_not_a_slot_in_time() -> None:
    master = sample("event_created_series_master_weekly_recurrence.json")
    page = {"value": [master], "@odata.deltaLink": "https://graph.microsoft.com/v1.0/x?$deltatoken=1"}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page)

    graph = GraphClient(Token(), http=httpx.Client(transport=httpx.MockTransport(answer)))
    (read_page,) = OutlookCalendar(graph, "u").read(None, WINDOW)

    assert read_page.events == ()
    assert event_from_graph(master).start == datetime(2017, 9, 4, 19, tzinfo=UTC)  # PDT

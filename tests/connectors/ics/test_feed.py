"""IcsFeed over real HTTP against the fake feed host: conditional requests, redirects, limits and errors.

Feed addresses carry secrets, so every failure is also checked for the token: not in the message, not
anywhere in the formatted traceback.
"""

from __future__ import annotations

import gzip
import socket
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.ics import IcsFeed
from connectors.records import CalendarPage, ConnectorError
from tests.conftest import shared_data
from tests.connectors.ics.conftest import at, calendar, day, titles, window
from tests.fakes.ics import FakeIcsServer, http_date
from tests.fakes.tls import TestTLS, make_tls

SECRET = "s3cr3t-t0ken"
PATH = f"/calendars/{SECRET}/basic.ics?key={SECRET}"
JUNE = window(at(2024, 6, 1), at(2024, 7, 1))
FIRST = calendar("UID:a\nDTSTART:20240610T090000Z\nDURATION:PT1H\nSUMMARY:Planning")
SECOND = calendar("UID:a\nDTSTART:20240610T100000Z\nDURATION:PT1H\nSUMMARY:Planning (moved)")


def one_page(feed: IcsFeed, cursor: str | None = None, span: object = JUNE) -> CalendarPage:
    (page,) = list(feed.read(cursor, span))  # type: ignore[arg-type]
    assert page.last
    assert page.cursor
    return page


def failure(feed: IcsFeed, span: object = JUNE) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        list(feed.read(None, span))  # type: ignore[arg-type]
    error = caught.value
    assert SECRET not in error.message
    assert SECRET not in "".join(traceback.format_exception(error))
    assert "://127.0.0.1/…" in error.message or "://localhost/…" in error.message
    return error


def test_full_read(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST)
    page = one_page(IcsFeed(server.url(PATH), http=http))
    assert page.full
    assert titles(page.events) == ["Planning"]
    assert page.notes == ()
    assert server.requests[0].headers["accept"].startswith("text/calendar")


def test_not_modified_by_etag(server: FakeIcsServer, http: httpx.Client) -> None:
    route = server.serve(PATH, FIRST)
    feed = IcsFeed(server.url(PATH), http=http)
    first = one_page(feed)
    second = one_page(feed, first.cursor)
    assert server.requests[1].headers["if-none-match"] == route.etag
    assert (second.full, second.events) == (False, ())  # nothing changed
    route.body, route.etag = SECOND, '"v2"'
    third = one_page(feed, second.cursor)
    assert third.full
    assert titles(third.events) == ["Planning (moved)"]
    assert server.hits(PATH) == 3


def test_not_modified_by_last_modified(server: FakeIcsServer, http: httpx.Client) -> None:
    stamp = http_date(datetime(2024, 5, 1, tzinfo=UTC))
    server.serve(PATH, FIRST, etag=None, modified=stamp)
    feed = IcsFeed(server.url(PATH), http=http)
    second = one_page(feed, one_page(feed).cursor)
    assert server.requests[1].headers["if-modified-since"] == stamp
    assert "if-none-match" not in server.requests[1].headers
    assert (second.full, second.events) == (False, ())


def test_same_bytes_from_a_server_without_validators(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST, etag=None, conditional=False)
    feed = IcsFeed(server.url(PATH), http=http)
    second = one_page(feed, one_page(feed).cursor)
    assert (second.full, second.events) == (False, ())
    assert server.hits(PATH) == 2


def test_a_moved_window_reads_everything_again(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST)
    feed = IcsFeed(server.url(PATH), http=http)
    cursor = one_page(feed).cursor
    later = one_page(feed, cursor, window(at(2024, 6, 2), at(2024, 7, 2)))
    assert "if-none-match" not in server.requests[1].headers
    assert later.full
    assert titles(later.events) == ["Planning"]


def test_an_unreadable_cursor_reads_from_scratch(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST)
    page = one_page(IcsFeed(server.url(PATH), http=http), "{not json")
    assert page.full
    assert page.notes == ("the saved position could not be read; the feed was read from scratch",)


def test_redirects_are_followed_with_the_validators(server: FakeIcsServer, http: httpx.Client) -> None:
    server.redirect("/old", "/moved", 301)
    server.redirect("/moved", server.url(PATH), 302)
    server.serve(PATH, FIRST)
    feed = IcsFeed(server.url("/old"), http=http)
    second = one_page(feed, one_page(feed).cursor)
    assert second.events == ()
    assert not second.full
    assert [r.path for r in server.requests] == ["/old", "/moved", PATH] * 2
    assert "if-none-match" in server.requests[5].headers


def test_redirect_loops_are_cut(server: FakeIcsServer, http: httpx.Client) -> None:
    server.redirect(PATH, PATH)
    error = failure(IcsFeed(server.url(PATH), http=http, max_redirects=3))
    assert "more than 3 redirects" in error.message
    assert server.hits(PATH) == 4


def test_redirect_to_another_scheme_is_refused(server: FakeIcsServer, http: httpx.Client) -> None:
    server.redirect(PATH, f"file:///etc/{SECRET}")
    error = failure(IcsFeed(server.url(PATH), http=http))
    assert error.action_required
    assert "not an http(s) or webcal address" in error.message


@pytest.mark.parametrize(
    ("status", "action_required", "words"),
    [
        (401, True, "needs signing in or a token"),
        (403, True, "needs signing in or a token"),
        (404, True, "the feed was removed"),
        (410, True, "the feed was removed"),
        (400, True, "check the feed's address"),
        (500, False, "will try again"),
        (503, False, "will try again"),
        (429, False, "will try again"),
    ],
)
def test_error_statuses(
    server: FakeIcsServer, http: httpx.Client, status: int, action_required: bool, words: str
) -> None:
    server.fail(PATH, status, headers={"retry-after": "120"})
    error = failure(IcsFeed(server.url(PATH), http=http))
    assert error.action_required is action_required
    assert f"answered {status}" in error.message
    assert words in error.message
    assert error.retry_after == (None if action_required else 120.0)


def test_slow_server_times_out(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST, delay=2.0)
    started = datetime.now(UTC)
    error = failure(IcsFeed(server.url(PATH), http=http, timeout=0.3))
    assert "did not answer in time" in error.message
    assert not error.action_required
    assert datetime.now(UTC) - started < timedelta(seconds=1.5)


def test_a_trickling_body_is_cut_at_the_deadline(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST, trickle=0.05)  # ~15 pieces of 10 bytes: ~0.8 s in all, each within the read timeout
    error = failure(IcsFeed(server.url(PATH), http=http, timeout=0.3))
    assert "did not answer in time" in error.message


def test_unreachable_host(http: httpx.Client) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = failure(IcsFeed(f"http://127.0.0.1:{port}{PATH}", http=http))
    assert "unreachable" in error.message
    assert not error.action_required


def test_html_sign_in_page(server: FakeIcsServer, http: httpx.Client) -> None:
    page = b"<!DOCTYPE html>\n<html><body><form action='/login'>Sign in</form></body></html>"
    server.serve(PATH, page, content_type="text/html")
    error = failure(IcsFeed(server.url(PATH), http=http))
    assert error.action_required
    assert "web page (HTML), not a calendar" in error.message


def test_not_a_calendar_at_all(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, b'{"events": []}', content_type="application/json")
    error = failure(IcsFeed(server.url(PATH), http=http))
    assert "not an iCalendar feed" in error.message


def test_unparseable_calendar_names_the_line(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nGARBAGE LINE\r\nEND:VCALENDAR\r\n")
    error = failure(IcsFeed(server.url(PATH), http=http))
    assert error.action_required
    assert "not valid iCalendar" in error.message
    assert "GARBAGE LINE" in error.message


def test_too_large_by_its_content_length(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve(PATH, FIRST)
    error = failure(IcsFeed(server.url(PATH), http=http, max_bytes=100))
    assert "larger than the 100-byte limit" in error.message


def test_too_large_once_decompressed(server: FakeIcsServer, http: httpx.Client) -> None:
    big = calendar(*[f"UID:{n}\nDTSTART:20240610T090000Z\nSUMMARY:{'x' * 200}" for n in range(200)])
    packed = gzip.compress(big)
    assert len(packed) < 10_000 < len(big)
    server.serve(PATH, packed, headers={"content-encoding": "gzip"})
    error = failure(IcsFeed(server.url(PATH), http=http, max_bytes=10_000))
    assert "larger than the 10,000-byte limit" in error.message
    assert len(one_page(IcsFeed(server.url(PATH), http=http)).events) == 200  # within the default limit


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return make_tls(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def tls_server(tls: TestTLS) -> Iterator[FakeIcsServer]:
    with FakeIcsServer(tls) as fake:
        yield fake


def test_webcal_means_https(tls_server: FakeIcsServer, tls: TestTLS) -> None:
    tls_server.serve(PATH, FIRST)
    webcal = tls_server.url(PATH).replace("https://", "webcal://")
    with httpx.Client(verify=tls.client_context(), trust_env=False) as trusting:
        page = one_page(IcsFeed(webcal, http=trusting))
    assert titles(page.events) == ["Planning"]


def test_untrusted_certificate(tls_server: FakeIcsServer, http: httpx.Client) -> None:
    tls_server.serve(PATH, FIRST)
    error = failure(IcsFeed(tls_server.url(PATH).replace("https://", "webcals://"), http=http))
    assert error.action_required
    assert "TLS error" in error.message
    assert "certificate" in error.message
    assert error.message.startswith("ICS feed https://127.0.0.1/…")


def test_without_a_client_of_its_own(server: FakeIcsServer) -> None:
    server.serve(PATH, FIRST)
    feed = IcsFeed(server.url(PATH))
    assert titles(one_page(feed).events) == ["Planning"]
    assert SECRET not in repr(feed)


def test_a_real_feed_through_http(server: FakeIcsServer, http: httpx.Client) -> None:
    server.serve("/germany.ics", shared_data("ics", "rie__Germany.ics").read_bytes())
    page = one_page(IcsFeed(server.url("/germany.ics"), http=http), span=day(2014, 5, 11))
    assert titles(page.events) == ["Germany: Mother's Day [Not a public holiday]"]
    assert page.full

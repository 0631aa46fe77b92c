"""`IcsFeed`: one ICS feed as a CalendarReader.

A feed is always the whole truth, so a round is one page: `full`, `last`, every occurrence in the
window. The cursor remembers the server's validators (ETag, Last-Modified), a hash of the body and a
fingerprint of what the page was made for (window, default zone): a 304, or the same bytes again,
for the same window gives one empty page that is not full, meaning "nothing changed". A window that
moved makes the reader fetch and expand anew, since the same bytes then give other occurrences.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from connectors.ics.expand import expand
from connectors.ics.fetch import Fetched, Validators, fetch, redact
from connectors.ics.parse import parse
from connectors.records import CalendarPage, ConnectorError, Window

CURSOR_VERSION = 2  # bump when the translation changes, so that every feed is read anew once
MAX_BYTES = 10_000_000  # large real feeds are a few MB (a busy Exchange calendar ≈ 3 MB for years)
TIMEOUT = 30.0
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class _Cursor:
    validators: Validators
    body_hash: str
    basis: str  # what the page was made for


class IcsFeed:
    """Reads an ICS feed (http, https or webcal URL) as a CalendarReader.

    `http`: the client to use (the worker passes one with its SSRF checks; one made here otherwise,
    closed after each read). `timeout` bounds a whole fetch in seconds, `max_bytes` the decoded body.
    `default_timezone` (IANA or Windows name) places all-day dates and floating times when the feed
    names no zone of its own (X-WR-TIMEZONE); UTC when neither does.
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = TIMEOUT,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        default_timezone: str | None = None,
    ) -> None:
        self._url = url
        self._http = http
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._default_timezone = default_timezone

    def __repr__(self) -> str:
        return f"IcsFeed({redact(self._url)!r})"  # never the secret part of the address

    def read(self, cursor: str | None, window: Window) -> Iterator[CalendarPage]:
        """One round: a single page, full and last; raises ConnectorError with a message for the admin."""
        basis = self._basis(window)
        previous = _load(cursor)
        notes: list[str] = []
        if cursor is not None and previous is None:
            notes.append("the saved position could not be read; the feed was read from scratch")
        usable = previous if previous is not None and previous.basis == basis else None
        fetched = self._fetch(usable.validators if usable else None)
        if fetched.body is None:
            if usable is None:
                raise ConnectorError(f"ICS feed {redact(self._url)}: answered 304 Not Modified to a plain request")
            yield CalendarPage(cursor=_dump(_Cursor(fetched.validators, usable.body_hash, basis)), last=True)
            return
        body_hash = hashlib.sha256(fetched.body).hexdigest()
        next_cursor = _dump(_Cursor(fetched.validators, body_hash, basis))
        if usable is not None and usable.body_hash == body_hash:
            yield CalendarPage(cursor=next_cursor, last=True)  # a server that ignores validators
            return
        calendar, parse_notes = parse(fetched.body, where=redact(self._url))
        expansion = expand(calendar, window, default_timezone=self._default_timezone)
        yield CalendarPage(
            events=expansion.events,
            full=True,
            cursor=next_cursor,
            last=True,
            notes=(*notes, *parse_notes, *expansion.notes),
        )

    def _fetch(self, validators: Validators | None) -> Fetched:
        if self._http is not None:
            return self._fetch_with(self._http, validators)
        with httpx.Client(trust_env=False) as http:
            return self._fetch_with(http, validators)

    def _fetch_with(self, http: httpx.Client, validators: Validators | None) -> Fetched:
        return fetch(
            http,
            self._url,
            validators,
            timeout=self._timeout,
            max_bytes=self._max_bytes,
            max_redirects=self._max_redirects,
        )

    def _basis(self, window: Window) -> str:
        text = f"{CURSOR_VERSION}|{window.start.isoformat()}|{window.end.isoformat()}|{self._default_timezone}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dump(cursor: _Cursor) -> str:
    return json.dumps(
        {
            "etag": cursor.validators.etag,
            "last_modified": cursor.validators.last_modified,
            "sha256": cursor.body_hash,
            "basis": cursor.basis,
        },
        separators=(",", ":"),
    )


def _load(cursor: str | None) -> _Cursor | None:
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
        validators = Validators(etag=_text(data.get("etag")), last_modified=_text(data.get("last_modified")))
        return _Cursor(validators, str(data["sha256"]), str(data["basis"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None

"""Fetching a feed over HTTP: conditional requests, redirects, a size cap and a deadline, readable errors.

Feed URLs are secrets more often than not (Google's "secret address", Outlook's published calendars
and most booking tools put a token in the path or query), so nothing here ever puts the URL into a
message: `redact` keeps the scheme and host only, and errors are raised `from None` so that no httpx
exception (whose request carries the URL) hangs off them into a logged traceback.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from connectors.outbound import UnsafeURL
from connectors.records import ConnectorError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/calendar, text/plain;q=0.5, */*;q=0.1"
FEED_URL = "the calendar feed URL"
USER_AGENT = "deskbridge (calendar feed reader)"  # some hosts turn away the default python-httpx agent


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server said the last time, sent back so it can answer 304 Not Modified."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """The answer: the body (None after a 304) and the validators to send next time."""

    body: bytes | None
    validators: Validators


def normalise(url: str) -> str:
    """`webcal://` and `webcals://` are https in disguise (the scheme only tells the OS to open a calendar app)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in {"webcal", "webcals"}:
        return "https://" + rest
    return url


def redact(url: str) -> str:
    """The URL as messages may show it: scheme and host only, never path, query or credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "(an unreadable address)"
    return f"{parts.scheme or '?'}://{host}/…"


def fetch(
    http: httpx.Client,
    url: str,
    validators: Validators | None,
    *,
    timeout: float,
    max_bytes: int,
    max_redirects: int,
) -> Fetched:
    """GET the feed, following up to `max_redirects` redirects; raises ConnectorError for anything but a calendar body.

    `timeout` bounds the whole fetch, redirects and a slowly trickling body included.
    """
    current = _checked(normalise(url), url)
    headers = {"accept": ACCEPT, "user-agent": USER_AGENT}
    if validators and validators.etag:
        headers["if-none-match"] = validators.etag
    if validators and validators.last_modified:
        headers["if-modified-since"] = validators.last_modified
    deadline = time.monotonic() + timeout
    for _ in range(max_redirects + 1):
        response = _send(http, current, headers, deadline)
        try:
            if response.status_code in REDIRECTS and "location" in response.headers:
                current = _checked(normalise(urljoin(current, response.headers["location"])), current)
                continue
            if response.status_code == 304:
                return Fetched(None, _validators(response, validators))
            _raise_for_status(response, current)
            body = _read(response, current, max_bytes, deadline)
            return Fetched(body, _validators(response, None))
        finally:
            response.close()
    raise ConnectorError(f"ICS feed {redact(url)}: more than {max_redirects} redirects; check the feed's address")


def _checked(url: str, shown: str) -> str:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in {"http", "https"}:
        raise ConnectorError(
            f"ICS feed {redact(shown)}: not an http(s) or webcal address (or redirected to one)", action_required=True
        )
    return url


def _send(http: httpx.Client, url: str, headers: dict[str, str], deadline: float) -> httpx.Response:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout(url)
    try:
        request = http.build_request("GET", url, headers=headers, timeout=httpx.Timeout(left))
        return http.send(request, stream=True, follow_redirects=False)
    except UnsafeURL as refused:  # the guard under `http` refused the feed's (or a redirect's) address
        raise refused.about(FEED_URL) from None
    except httpx.TimeoutException:
        raise _timeout(url) from None
    except httpx.HTTPError as error:
        raise _unreachable(url, error) from None


def _timeout(url: str) -> ConnectorError:
    return ConnectorError(f"ICS feed {redact(url)}: the server did not answer in time; will try again")


def _unreachable(url: str, error: Exception) -> ConnectorError:
    # The cause chain holds what really went wrong (DNS, refused, certificate); its text names no URL.
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "the certificate could not be verified"
            return ConnectorError(
                f"ICS feed {redact(url)}: TLS error: {reason}; the server's certificate is not trusted",
                action_required=True,
            )
        if isinstance(cause, ssl.SSLError):
            return ConnectorError(f"ICS feed {redact(url)}: TLS error: {cause.reason or cause}; will try again")
        cause = cause.__cause__ or cause.__context__
    detail = str(error).strip() or type(error).__name__
    detail = detail.replace(url, redact(url))
    return ConnectorError(f"ICS feed {redact(url)}: unreachable ({detail}); will try again")


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    where = f"ICS feed {redact(url)}: the server answered {status} {response.reason_phrase}".rstrip()
    if status in {401, 403}:
        raise ConnectorError(
            f"{where}: the feed needs signing in or a token; use the feed's secret (private) address",
            action_required=True,
        )
    if status in {404, 410}:
        raise ConnectorError(
            f"{where}: the feed was removed or its address changed; publish it again and enter the new address",
            action_required=True,
        )
    if status == 429 or status >= 500:
        raise ConnectorError(f"{where}; will try again", retry_after=_retry_after(response.headers.get("retry-after")))
    raise ConnectorError(f"{where}; check the feed's address", action_required=True)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the next poll comes soon enough


def _read(response: httpx.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    too_large = ConnectorError(
        f"ICS feed {redact(url)}: the feed is larger than the {max_bytes:,}-byte limit", action_required=True
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        # iter_bytes decodes gzip/deflate: the cap applies to what we would parse, so a small bomb cannot pass.
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            if time.monotonic() > deadline:
                raise _timeout(url)
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise _timeout(url) from None
    except httpx.HTTPError as error:
        raise _unreachable(url, error) from None
    return b"".join(chunks)


def _validators(response: httpx.Response, previous: Validators | None) -> Validators:
    # A 304 may omit the validators: the ones we sent still hold.
    etag = response.headers.get("etag") or (previous.etag if previous else None)
    modified = response.headers.get("last-modified") or (previous.last_modified if previous else None)
    return Validators(etag=etag, last_modified=modified)

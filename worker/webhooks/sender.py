"""Webhook requests: the body, its Standard Webhooks signature, the POST and what came of it.

Every webhook POST goes through `Poster` (aiohttp on an event loop thread of its own, reached from
any thread): the delivery jobs post a batch at once (`Poster.post_all`), the API's test send one
request (`post`). The SSRF guard runs after DNS resolution, at connect time, in aiohttp's resolver
(`CheckedResolver`, with the rules of `connectors.outbound`); a URL naming an IP address, which
aiohttp connects to without resolving, is checked before the request. No redirects are followed,
no cookies kept, no proxy taken from the environment; each request may take TIMEOUT_SECONDS in all.

Nothing here touches the store; the delivery jobs decide what to send and record the `Outcome`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from math import floor
from typing import Any, TypedDict, TypeVar

import aiohttp
import httpx
import uvloop
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from connectors.outbound import CheckedTransport, UnsafeURL, check_address, resolve_safe, warn_if_private_allowed
from store.services.webhook_endpoints import WEBHOOK_URL
from store.times import iso
from worker.webhooks.schedule import retry_after_seconds
from worker.webhooks.signing import Signer, signer_for

T = TypeVar("T")

logger = logging.getLogger(__name__)

PAYLOAD_FORMATS = ("event", "array")
EXCERPT_BYTES = 1024
TIMEOUT_SECONDS = 15.0
# Deliveries to one endpoint are capped by worker.webhooks.limits; this caps all of a process's sockets.
MAX_CONNECTIONS = 200
KEEPALIVE_SECONDS = 30.0
# Seconds a batch may overrun the longest it can take (its budget, then a request's timeout) before
# its caller stops waiting for the poster's loop (see PosterStuck).
STUCK_MARGIN = 5.0
POOL_LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_SECONDS
)


def _user_agent() -> str:
    try:
        return f"deskbridge-webhooks/{version('deskbridge')}"
    except PackageNotFoundError:
        return "deskbridge-webhooks/0"


USER_AGENT = _user_agent()


class EventPayload(TypedDict):
    """One event as receivers see it."""

    id: str
    type: str
    timestamp: str
    data: dict[str, Any]


def event_payload(event_id: str, event_type: str, timestamp: datetime, data: dict[str, Any]) -> EventPayload:
    """The payload of one event, its (aware) timestamp as ISO 8601 in UTC."""
    if timestamp.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    return EventPayload(id=event_id, type=event_type, timestamp=iso(timestamp), data=data)


def build_body(events: Sequence[EventPayload], payload_format: str) -> bytes:
    """The request body: format "event" is one JSON object (exactly one event), "array" a JSON array."""
    if payload_format == "event":
        if len(events) != 1:
            raise ValueError(f'the "event" format sends exactly one event, not {len(events)}')
        document: object = events[0]
    elif payload_format == "array":
        document = list(events)
    else:
        raise ValueError(f"unknown payload format {payload_format!r}; expected one of {PAYLOAD_FORMATS}")
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sign_headers(event_id: str, body: bytes, secrets: Sequence[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed with every secret (old and new during a rotation):
    `v1` for a `whsec_` secret, `v1a` for a `whsk_` ed25519 key.

    `event_id` is the `webhook-id`: the same on every retry, so receivers can drop duplicates.
    """
    return sign_headers_with(event_id, body, [signer_for(secret) for secret in secrets], at)


def sign_headers_with(event_id: str, body: bytes, signers: Sequence[Signer], at: datetime) -> dict[str, str]:
    """`sign_headers` with the secrets made into signers already (a worker keeps them)."""
    if not signers:
        raise ValueError("at least one signing secret is needed")
    if at.tzinfo is None:
        raise ValueError("the signing time must be timezone-aware")
    at = at.astimezone(UTC)  # Webhook.sign replaces tzinfo with UTC: give it UTC wall time
    data = body.decode()
    signatures = " ".join(signer.sign(event_id, at, data) for signer in signers)
    return {"webhook-id": event_id, "webhook-timestamp": str(floor(at.timestamp())), "webhook-signature": signatures}


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to. Exactly one of `status_code` and `error` tells the story, except for a 3xx."""

    status_code: int | None
    duration_ms: int
    response_excerpt: str = ""
    error: str | None = None
    retry_after: float | None = None  # seconds asked for by Retry-After on a 429 or 503
    gone: bool = False  # 410: the receiver wants no more deliveries
    refused: bool = False  # the SSRF guard refused the address at connect time: nothing was sent

    @property
    def success(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class SignedPost:
    """One request ready to go: where, the body, and its Standard Webhooks headers."""

    url: str
    body: bytes
    headers: Mapping[str, str]


Prepare = Callable[[], SignedPost]  # builds and signs a request just before it is sent


def post(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = TIMEOUT_SECONDS
) -> Outcome:
    """POST `body` to `url` once, never following redirects and never raising for network trouble.

    `client` is one from `make_client`; the request goes out through its `Poster`. Timeouts,
    connection errors and SSRF refusals come back as an `Outcome` with `error` set.
    """
    if not isinstance(client, WebhookClient):
        raise TypeError("post needs a client made by worker.webhooks.sender.make_client")
    request = SignedPost(url, body, headers)
    [outcome] = client.poster.post_all([lambda: request], timeout=timeout)
    return outcome


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver for webhooks: `connectors.outbound.resolve_safe` (getaddrinfo on the default executor, every
    address checked) refuses a name that resolves to an address webhooks may not call."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of `host`; UnsafeURL when one is refused, OSError when it does not resolve."""
        loop = asyncio.get_running_loop()
        check = partial(resolve_safe, host, port, self.allow_private, what=WEBHOOK_URL)
        addresses = await loop.run_in_executor(None, check)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release: the executor is the loop's."""


class PosterStuck(RuntimeError):
    """The poster's event loop did not answer in time; it was dropped and the next request starts a new one."""


class Poster:
    """aiohttp on an event loop of its own (a daemon thread, uvloop), shared by every thread of the process.

    The loop and its session start with the first request (after a fork, too: a worker process
    forked from a parent that posted starts its own), and pool keep-alive connections across jobs.
    """

    def __init__(
        self, *, allow_private: bool, max_connections: int = MAX_CONNECTIONS, stuck_margin: float = STUCK_MARGIN
    ) -> None:
        self.allow_private = allow_private
        self.max_connections = max_connections
        self.stuck_margin = stuck_margin
        self._lock = threading.RLock()  # a loop found stuck while starting is dropped under it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def post_all(
        self,
        requests: Sequence[Prepare],
        *,
        lanes: int = 1,
        budget: float | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> list[Outcome]:
        """Post the requests in order, the first alone, then `lanes` at a time; the outcomes of those
        sent, in the same order.

        Those sent are always the first ones: no request starts after one answered 410 (the receiver
        wants no more), nor, but for the first, once `budget` seconds have passed. Each request is
        prepared (built and signed) just before it is sent, and may take `timeout` seconds in all.
        """
        return self.submit_all(requests, lanes=lanes, budget=budget, timeout=timeout).outcomes()

    def submit_all(
        self,
        requests: Sequence[Prepare],
        *,
        lanes: int = 1,
        budget: float | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> Posting:
        """`post_all` without waiting for it: the requests start on the loop now, and the `Posting`
        returned gives their outcomes (`Posting.outcomes` waits as `post_all` does)."""
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        if not requests:
            return Posting(self, None, 0.0)
        session, loop, thread = self._session_now()
        # The first request alone, then each lane's last one, may each take `timeout`: the batch cannot
        # take longer than this unless the loop is stuck.
        longest = (budget if budget is not None else timeout * len(requests)) + 2 * timeout + self.stuck_margin
        future = asyncio.run_coroutine_threadsafe(
            _post_all(session, requests, lanes, budget, timeout, self.allow_private), loop
        )
        return Posting(self, future, longest, loop, thread)

    def close(self) -> None:
        """Close the session and stop the loop (a later request starts them again)."""
        with self._lock:
            loop, session, thread = self._loop, self._session, self._thread
            self._loop = self._session = self._thread = None
        if loop is None or self._pid != os.getpid():
            return
        atexit.unregister(self.close)
        if session is not None:
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()

    def _session_now(self) -> tuple[aiohttp.ClientSession, asyncio.AbstractEventLoop, threading.Thread | None]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._start()
            assert self._session is not None
            assert self._loop is not None
            return self._session, self._loop, self._thread

    def _start(self) -> None:
        loop = uvloop.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="webhook-poster", daemon=True)
        thread.start()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()
        self._session = self._run(_open_session(self.allow_private, self.max_connections), wait=self.stuck_margin)
        atexit.register(self.close)  # the loop is a daemon thread: close the session while it still runs

    def _run(self, coroutine: Coroutine[Any, Any, T], *, wait: float | None = None) -> T:
        loop, thread = self._loop, self._thread
        assert loop is not None
        return self._wait(asyncio.run_coroutine_threadsafe(coroutine, loop), wait, loop, thread)

    def _wait(
        self,
        future: concurrent.futures.Future[T],
        wait: float | None,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread | None,
    ) -> T:
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self._drop(loop, thread)
            raise PosterStuck(f"the webhook poster's loop did not answer within {wait:g} s") from None
        except BaseException:
            future.cancel()  # interrupted (a worker's time limit): the requests in flight stop too
            raise

    def _drop(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread | None) -> None:
        """Forget a stuck loop (its thread is left to itself), saying where it is stuck."""
        with self._lock:
            if self._loop is loop:
                self._loop = self._session = self._thread = None
                atexit.unregister(self.close)
        frame = sys._current_frames().get(thread.ident) if thread is not None and thread.ident else None
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(its thread is gone)\n"
        logger.error("the webhook poster's loop is stuck; a new one takes over. It is at:\n%s", where)


class Posting:
    """Requests under way on a `Poster`'s loop (`Poster.submit_all`)."""

    def __init__(
        self,
        poster: Poster,
        future: concurrent.futures.Future[list[Outcome]] | None,
        longest: float,
        loop: asyncio.AbstractEventLoop | None = None,
        thread: threading.Thread | None = None,
    ) -> None:
        self._poster, self.future, self._longest, self._loop, self._thread = poster, future, longest, loop, thread
        self._started = time.monotonic()

    def done(self) -> bool:
        """Whether every request started was answered (or failed), so that `outcomes` returns at once."""
        return self.future is None or self.future.done()

    def outcomes(self) -> list[Outcome]:
        """The outcomes of the requests sent, in order (as `Poster.post_all`), waiting for them as long as
        the batch can take from its start; PosterStuck when the loop does not answer by then."""
        if self.future is None or self._loop is None:
            return []
        wait = max(0.0, self._started + self._longest - time.monotonic())
        return self._poster._wait(self.future, wait, self._loop, self._thread)


async def _open_session(allow_private: bool, max_connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=0,  # worker.webhooks.limits caps each endpoint, across processes
        resolver=CheckedResolver(allow_private=allow_private),
        keepalive_timeout=KEEPALIVE_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # one client serves every organisation's endpoints
        trust_env=False,  # no proxy from the environment
        headers={"user-agent": USER_AGENT},
        raise_for_status=False,
    )


async def _post_all(
    session: aiohttp.ClientSession,
    requests: Sequence[Prepare],
    lanes: int,
    budget: float | None,
    timeout: float,
    allow_private: bool,
) -> list[Outcome]:
    deadline = None if budget is None else time.monotonic() + budget
    outcomes: list[Outcome | None] = [None] * len(requests)
    taken = 0
    stopped = False

    async def post_next() -> None:
        nonlocal taken, stopped
        index = taken
        if index and deadline is not None and time.monotonic() > deadline:
            stopped = True
            return
        taken += 1
        outcome = await _post_one(session, requests[index](), timeout, allow_private)
        outcomes[index] = outcome
        if outcome.gone:
            stopped = True

    async def lane() -> None:
        while not stopped and taken < len(requests):
            await post_next()

    await post_next()  # the first request goes alone: an endpoint that answers it 410 gets nothing more
    await asyncio.gather(*(lane() for _ in range(min(lanes, len(requests) - taken))))
    sent = [outcome for outcome in outcomes[:taken] if outcome is not None]
    assert len(sent) == taken  # every request started was awaited to its end
    return sent


async def _post_one(
    session: aiohttp.ClientSession, request: SignedPost, timeout: float, allow_private: bool
) -> Outcome:
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        target = URL(request.url)
        if target.raw_host is not None:
            check_address(target.raw_host, allow_private, what=WEBHOOK_URL)  # an IP address is not resolved
        async with session.post(
            target,
            data=request.body,
            headers={**request.headers, "content-type": "application/json"},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            excerpt = await _read_excerpt(response.content)
            status, answered = response.status, response.headers
    except UnsafeURL as error:
        return Outcome(None, elapsed(), error=f"refused: {error}", refused=True)
    except TimeoutError as error:
        return Outcome(None, elapsed(), error=f"timed out after {timeout:g} s ({type(error).__name__})")
    except aiohttp.ClientConnectorDNSError as error:
        return Outcome(None, elapsed(), error=f"ConnectError: cannot resolve {error.host}: {error.os_error}")
    except aiohttp.ClientConnectorError as error:
        return Outcome(None, elapsed(), error=f"ConnectError: {error}")
    except (aiohttp.ClientError, ValueError) as error:  # ValueError: a URL yarl cannot parse
        return Outcome(None, elapsed(), error=f"{type(error).__name__}: {error}")
    retry_after = None
    if status in (429, 503):
        retry_after = retry_after_seconds(answered.get("retry-after"), datetime.now(UTC))
    error_text = None
    if status in (301, 302, 303, 307, 308):
        error_text = f"redirect to {answered.get('location', '?')} not followed"
    return Outcome(status, elapsed(), excerpt, error_text, retry_after, gone=status == 410)


async def _read_excerpt(content: aiohttp.StreamReader) -> str:
    """The first KiB of the body: a receiver's huge or endless answer costs us no more than that
    (the connection of a body not read to its end is closed, not reused)."""
    kept = b""
    while len(kept) < EXCERPT_BYTES:
        chunk = await content.read(EXCERPT_BYTES - len(kept))
        if not chunk:
            break
        kept += chunk
    return kept[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def make_client(*, allow_private: bool) -> httpx.Client:
    """An HTTP client for webhooks and other customer-chosen URLs (ICS feeds): SSRF-checked at connect
    time, no redirects, no proxies from the environment. Its `poster` sends the webhook POSTs.

    Share one per process (it is thread-safe and pools connections); close it on shutdown.
    """
    warn_if_private_allowed(allow_private)
    transport = CheckedTransport(allow_private=allow_private, limits=POOL_LIMITS)
    return WebhookClient(transport, Poster(allow_private=allow_private))


class WebhookClient(httpx.Client):
    """An httpx client on a `CheckedTransport` (for GETs of feeds), with the `Poster` that `post` uses."""

    def __init__(self, transport: CheckedTransport, poster: Poster) -> None:
        super().__init__(
            transport=transport,
            headers={"user-agent": USER_AGENT},
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            trust_env=False,
        )
        self.checked_transport = transport
        self.poster = poster

    def close(self) -> None:
        """Close the connection pool and the poster."""
        self.poster.close()
        super().close()

"""The ceiling for `bench.webhooks`: a bare event loop posting the same signed payloads to the same receiver.

No store, no queue: each request's body is built and signed exactly as the worker does it
(`worker.webhooks.sender.event_payload`, `build_body`, `sign_headers`, at send time), then POSTed.
Three clients:

- `post_raw`: raw asyncio streams, HTTP/1.1 with keep-alive, one task per connection (the ceiling);
- `post_worker_client`: the worker's own HTTP client, `worker.webhooks.sender.Poster` (aiohttp on an
  event loop thread, SSRF-checked), as many requests at once as the ceiling has connections: what the
  client itself costs beside the ceiling;
- `post_httpx`: `httpx.AsyncClient` with a pool of the same size (a reference: what a common client costs).

Both stop at the end of their list or at their time limit, whichever comes first.

And the durable ceiling (`durable_share`, one process of it): the least a service keeping deskbridge's
promise must do, with nothing else, on the same database: each batch of events' deliveries inserted
(one statement, as the relay's) and committed before anything is posted, posted over raw keep-alive
streams, then marked delivered and their attempts logged in one transaction.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.webhooks_receiver import run_loop
from worker.webhooks.sender import (
    USER_AGENT,
    EventPayload,
    Poster,
    SignedPost,
    build_body,
    event_payload,
    sign_headers,
    sign_headers_with,
)


@dataclass(frozen=True)
class Post:
    """One delivery to make: the receiver's path, the endpoint's signing secret, the event."""

    path: str
    secret: str
    event: EventPayload


@dataclass(frozen=True)
class Posted:
    """What a client managed: 2xx answers, other outcomes, and the seconds from its first to its last request."""

    client: str
    ok: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def signed(post: Post) -> tuple[bytes, dict[str, str]]:
    """The body and Standard Webhooks headers of `post`, signed now (as the worker signs at send time)."""
    body = build_body([post.event], "event")
    return body, sign_headers(post.event["id"], body, [post.secret], datetime.now(UTC))


def post_raw(host: str, port: int, posts: Sequence[Post], concurrency: int, time_limit: float) -> Posted:
    """POST every item of `posts` over `concurrency` keep-alive connections of raw asyncio streams."""
    return run_loop(_post_raw(host, port, posts, concurrency, time_limit))


async def _post_raw(host: str, port: int, posts: Sequence[Post], concurrency: int, time_limit: float) -> Posted:
    items = iter(posts)
    counts = {"ok": 0, "failed": 0}
    deadline = time.monotonic() + time_limit
    prefix = f"host: {host}:{port}\r\nuser-agent: {USER_AGENT}\r\ncontent-type: application/json\r\n"

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for post in _until(items, deadline):
                body, headers = signed(post)
                head = (
                    f"POST {post.path} HTTP/1.1\r\n{prefix}content-length: {len(body)}\r\n"
                    + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                    + "\r\n"
                )
                writer.write(head.encode() + body)
                status = await read_response(reader)
                counts["ok" if 200 <= status < 300 else "failed"] += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Posted("raw asyncio streams", counts["ok"], counts["failed"], time.monotonic() - started)


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (status line, headers, a content-length body); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def post_worker_client(base_url: str, posts: Sequence[Post], concurrency: int, time_limit: float) -> Posted:
    """POST every item of `posts` through the worker's `Poster`, `concurrency` at once (its lanes)."""
    poster = Poster(allow_private=True)  # the receiver is on loopback, as the bench's workers allow

    def prepare(post: Post) -> SignedPost:
        body, headers = signed(post)
        return SignedPost(base_url + post.path, body, headers)

    try:
        poster.post_all([lambda: prepare(posts[0])])  # the loop and its session started before the clock
        started = time.monotonic()
        outcomes = poster.post_all(
            [functools.partial(prepare, post) for post in posts], lanes=concurrency, budget=time_limit
        )
        seconds = time.monotonic() - started
    finally:
        poster.close()
    ok = sum(1 for outcome in outcomes if outcome.success)
    return Posted("the worker's client: aiohttp Poster", ok, len(outcomes) - ok, seconds)


def post_httpx(base_url: str, posts: Sequence[Post], concurrency: int, time_limit: float) -> Posted:
    """POST every item of `posts` with one `httpx.AsyncClient` and `concurrency` tasks."""
    return run_loop(_post_httpx(base_url, posts, concurrency, time_limit))


async def _post_httpx(base_url: str, posts: Sequence[Post], concurrency: int, time_limit: float) -> Posted:
    items = iter(posts)
    counts = {"ok": 0, "failed": 0}
    deadline = time.monotonic() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client_options: dict[str, Any] = {"base_url": base_url, "limits": limits, "trust_env": False, "timeout": 15.0}
    async with httpx.AsyncClient(headers={"user-agent": USER_AGENT}, **client_options) as client:

        async def task() -> None:
            for post in _until(items, deadline):
                body, headers = signed(post)
                response = await client.post(post.path, content=body, headers=headers)
                counts["ok" if response.is_success else "failed"] += 1

        started = time.monotonic()
        await asyncio.gather(*(task() for _ in range(concurrency)))
        return Posted("httpx.AsyncClient", counts["ok"], counts["failed"], time.monotonic() - started)


def _until(items: Iterator[Post], deadline: float) -> Iterator[Post]:
    """The next items of a shared iterator, until it runs out or `deadline` (monotonic) passes."""
    for item in items:
        yield item
        if time.monotonic() > deadline:
            return


# --- the durable ceiling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One endpoint of the durable ceiling: its row's id, the receiver's path, its signing secret."""

    endpoint_id: int
    path: str
    secret: str


@dataclass(frozen=True)
class DurableShare:
    """What one process of the durable ceiling did: deliveries delivered (2xx and marked so), failed,
    its first and last monotonic instants, and the CPU seconds it used in between."""

    ok: int
    failed: int
    started: float
    ended: float
    cpu_seconds: float


# The deliveries of a batch of events, written as the relay writes them (one statement of arrays).
_INSERT = """
INSERT INTO deliveries
    (organisation_id, endpoint_id, event_id, event_seq, status, attempts, next_attempt_at, due_at, created_at)
SELECT e.organisation_id, t.endpoint_id, e.id, e.seq, 'pending', 0, %(lease)s, %(now)s, %(now)s
FROM outbox_events AS e CROSS JOIN unnest(%(endpoint_ids)s::bigint[]) AS t (endpoint_id)
WHERE e.seq >= %(low)s AND e.seq <= %(high)s AND e.organisation_id = %(organisation_id)s AND e.type = %(type)s
ORDER BY e.seq, t.endpoint_id
RETURNING id, endpoint_id, event_id, event_seq
"""
_EVENTS = """
SELECT id, type, created_at, data FROM outbox_events
WHERE seq >= %(low)s AND seq <= %(high)s AND organisation_id = %(organisation_id)s AND type = %(type)s
"""
# Delivered: the deliveries succeeded and their attempts logged, in one transaction per batch.
_DELIVERED = """
UPDATE deliveries SET status = 'succeeded', attempts = attempts + 1, last_attempt_at = %(now)s,
    last_status_code = 200, delivered_at = %(now)s, next_attempt_at = NULL, due_at = NULL
WHERE id = ANY(%(ids)s) AND status = 'pending'
"""
_ATTEMPTS = """
INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, response_excerpt, error, succeeded)
SELECT unnest(%(ids)s::bigint[]), %(now)s, 200, unnest(%(durations)s::int[]), '', NULL, true
"""


def durable_share(
    database_url: str,
    host: str,
    port: int,
    organisation_id: int,
    event_type: str,
    targets: Sequence[Target],
    ranges: Sequence[tuple[int, int]],
    connections: int,
    batches_at_once: int,
    go: Any,
    release: Any,
    results: Any,
) -> None:
    """One process of the durable ceiling (a `multiprocessing` target): its `ranges` of event seqs,
    each a batch; puts a DurableShare on `results` once every batch is done (`go`: a barrier that
    starts every process and the bench's clock together), then
    waits for `release` before closing its database connections (so their backends are still there
    when the bench reads their CPU)."""
    go.wait()
    started, cpu_before = time.monotonic(), time.process_time()

    def report(ok: int, failed: int) -> None:
        results.put(DurableShare(ok, failed, started, time.monotonic(), time.process_time() - cpu_before))

    run_loop(
        _durable(
            database_url, host, port, organisation_id, event_type, targets, ranges, connections, batches_at_once,
            report, release,
        )
    )  # fmt: skip


async def _durable(
    database_url: str,
    host: str,
    port: int,
    organisation_id: int,
    event_type: str,
    targets: Sequence[Target],
    ranges: Sequence[tuple[int, int]],
    connections: int,
    batches_at_once: int,
    report: Callable[[int, int], None],
    release: Any,
) -> None:
    import psycopg  # only the ceiling's processes need the async driver

    from worker.webhooks.signing import signer_for

    by_endpoint = {target.endpoint_id: target for target in targets}
    signers = {target.endpoint_id: [signer_for(target.secret)] for target in targets}
    endpoint_ids = [target.endpoint_id for target in targets]
    prefix = f"host: {host}:{port}\r\nuser-agent: {USER_AGENT}\r\ncontent-type: application/json\r\n"
    wanted: asyncio.Queue[tuple[bytes, asyncio.Future[tuple[int, int]]] | None] = asyncio.Queue()
    counts = {"ok": 0, "failed": 0}
    pending = iter(ranges)
    finished = asyncio.Event()
    left = batches_at_once

    async def http_connection() -> None:
        # One keep-alive connection posting what the batches put on `wanted`.
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await wanted.get()) is not None:
                request, answered = item
                began = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                answered.set_result((status, round((time.perf_counter() - began) * 1000)))
        finally:
            writer.close()

    def request(delivery_target: Target, event_id: str, event: EventPayload) -> bytes:
        body = build_body([event], "event")
        headers = sign_headers_with(event_id, body, signers[delivery_target.endpoint_id], datetime.now(UTC))
        return (
            f"POST {delivery_target.path} HTTP/1.1\r\n{prefix}content-length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode() + body

    async def batches() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as db:
            for low, high in pending:
                now = datetime.now(UTC)
                where = {"low": low, "high": high, "organisation_id": organisation_id, "type": event_type}
                async with db.transaction():  # written (and committed) before anything is posted
                    rows = await (
                        await db.execute(_INSERT, where | {"endpoint_ids": endpoint_ids, "lease": now, "now": now})
                    ).fetchall()
                    events = {
                        event_id: event_payload(event_id, type_, created_at, data)
                        for event_id, type_, created_at, data in await (await db.execute(_EVENTS, where)).fetchall()
                    }
                loop = asyncio.get_running_loop()
                answers = []
                for _, endpoint_id, event_id, _ in rows:
                    answered: asyncio.Future[tuple[int, int]] = loop.create_future()
                    await wanted.put((request(by_endpoint[endpoint_id], event_id, events[event_id]), answered))
                    answers.append(answered)
                outcomes = await asyncio.gather(*answers)
                delivered = [row[0] for row, (status, _) in zip(rows, outcomes, strict=True) if 200 <= status < 300]
                durations = [ms for status, ms in outcomes if 200 <= status < 300]
                counts["ok"] += len(delivered)
                counts["failed"] += len(rows) - len(delivered)
                done = datetime.now(UTC)
                async with db.transaction():
                    await db.execute(_DELIVERED, {"ids": delivered, "now": done})
                    await db.execute(_ATTEMPTS, {"ids": delivered, "durations": durations, "now": done})
            nonlocal left
            left -= 1
            if not left:
                report(counts["ok"], counts["failed"])
                finished.set()
            await finished.wait()
            await asyncio.to_thread(release.wait)  # the bench reads the backends' CPU before they go

    posting = [asyncio.create_task(http_connection()) for _ in range(connections)]
    await asyncio.gather(*(batches() for _ in range(batches_at_once)))
    for _ in posting:
        await wanted.put(None)
    await asyncio.gather(*posting)

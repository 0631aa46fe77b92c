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
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.webhooks_receiver import run_loop
from worker.webhooks.sender import USER_AGENT, EventPayload, Poster, SignedPost, build_body, sign_headers


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

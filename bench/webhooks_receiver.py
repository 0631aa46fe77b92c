"""A fast loopback webhook receiver for `bench.webhooks`: `python -m bench.webhooks_receiver --port P`.

One process, one event loop (uvloop when installed), HTTP/1.1 with keep-alive parsed by httptools.
Every POST under `/hooks/` is answered `200` with an empty body as soon as its body has arrived, and
recorded as (receipt time, path, `webhook-id`). The receipt time is `time.monotonic()`, which on Linux
is CLOCK_MONOTONIC: one clock for every process of the machine, so the benchmark compares it with the
commit times its producer takes. Every `--verify-every`th request's Standard Webhooks signature is
checked with the `standardwebhooks` library against the secret of its path (from `--secrets`, a JSON
object `{path: secret}`); the counts come back with the figures.

Control routes for the benchmark (never recorded):

- `GET /_count`: `{"requests", "distinct", "verified", "bad_signatures", "unsigned"}` as JSON;
- `GET /_dump`: one line per recorded request, `<receipt time> <path> <webhook-id>`, in arrival order;
- `POST /_reset`: forget everything recorded so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import httptools
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

T = TypeVar("T")

HOOKS_PREFIX = "/hooks/"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class Recorder:
    """What the receiver saw, kept in columns (cheap to append, cheap to dump)."""

    def __init__(self, secrets: dict[str, str], verify_every: int) -> None:
        self.verifiers = {path: Webhook(secret) for path, secret in secrets.items()}
        self.verify_every = verify_every
        self.reset()

    def reset(self) -> None:
        """Forget every request recorded so far."""
        self.times: list[float] = []
        self.paths: list[str] = []
        self.ids: list[str] = []
        self.distinct: set[tuple[str, str]] = set()
        self.verified = 0
        self.bad_signatures = 0
        self.unsigned = 0

    def record(self, at: float, path: str, headers: dict[str, str], body: bytes) -> None:
        """Keep one webhook request; verify its signature if it is one of the sampled ones."""
        webhook_id = headers.get("webhook-id", "")
        if not webhook_id:
            self.unsigned += 1
        self.times.append(at)
        self.paths.append(path)
        self.ids.append(webhook_id)
        self.distinct.add((path, webhook_id))
        if self.verify_every and len(self.times) % self.verify_every == 1:
            self.verify(path, headers, body)

    def verify(self, path: str, headers: dict[str, str], body: bytes) -> None:
        verifier = self.verifiers.get(path)
        if verifier is None:
            return
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError:
            self.bad_signatures += 1
        else:
            self.verified += 1

    def counts(self) -> bytes:
        return json.dumps(
            {
                "requests": len(self.times),
                "distinct": len(self.distinct),
                "verified": self.verified,
                "bad_signatures": self.bad_signatures,
                "unsigned": self.unsigned,
            }
        ).encode()

    def dump(self) -> bytes:
        return "".join(
            f"{at:.6f} {path} {webhook_id}\n"
            for at, path, webhook_id in zip(self.times, self.paths, self.ids, strict=True)
        ).encode()


class ReceiverProtocol(asyncio.Protocol):
    """One client connection; httptools calls the `on_*` methods as it parses the requests."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered.startswith(b"webhook-"):
            self.headers[lowered.decode()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        received = time.monotonic()
        transport = self.transport
        if transport is None:
            return
        path = self.url.decode()
        if path.startswith(HOOKS_PREFIX):
            transport.write(OK)
            self.recorder.record(received, path, self.headers, b"".join(self.body))
        elif path == "/_count":
            transport.write(_answer(self.recorder.counts(), "application/json"))
        elif path == "/_dump":
            transport.write(_answer(self.recorder.dump(), "text/plain"))
        elif path == "/_reset":
            self.recorder.reset()
            transport.write(OK)
        else:
            transport.write(NOT_FOUND)
        if not self.parser.should_keep_alive():
            transport.close()


def _answer(body: bytes, content_type: str) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def serve(host: str, port: int, recorder: Recorder) -> None:
    """Serve until cancelled (SIGTERM or SIGINT end the process)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(recorder), host, port, backlog=1024)
    print(f"receiver listening on http://{host}:{port}{HOOKS_PREFIX}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_receiver", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--secrets", type=Path, help="JSON object {path: signing secret}")
    parser.add_argument("--verify-every", type=int, default=100, help="verify one request in this many (0: none)")
    args = parser.parse_args(argv)
    secrets = json.loads(args.secrets.read_text()) if args.secrets else {}
    recorder = Recorder(secrets, args.verify_every)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve(args.host, args.port, recorder))


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop when it is installed (uvicorn's standard extra brings it), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


if __name__ == "__main__":
    main()

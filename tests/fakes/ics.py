"""A fake ICS feed host: real HTTP (or HTTPS) on loopback serving given bytes.

Each path is a `Route`: a body with its ETag and Last-Modified (answering If-None-Match and
If-Modified-Since with 304 unless told to ignore them), a redirect, or a bare status. Routes can be
slow (a delay before answering, or a body trickled out), and every request is logged with its headers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.tls import TestTLS


@dataclass
class Route:
    """What one path answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/calendar; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None  # for redirects
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True  # False: a server that ignores If-None-Match / If-Modified-Since
    delay: float = 0.0  # seconds before answering
    trickle: float = 0.0  # seconds between 10-byte pieces of the body
    declared_length: int | None = None  # a Content-Length that differs from the body


@dataclass(frozen=True)
class Request:
    """A request as the fake saw it."""

    path: str
    headers: dict[str, str]


class FakeIcsServer:
    """Serves routes on 127.0.0.1; use as a context manager."""

    def __init__(self, tls: TestTLS | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._tls = tls
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """`http(s)://127.0.0.1:<port>`."""
        assert self._server is not None, "not started"
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        """The full URL of a path (which may carry a query)."""
        return self.base_url + path

    def serve(
        self, path: str, body: bytes, *, etag: str | None = "auto", modified: str | None = None, **options: Any
    ) -> Route:
        """Serve `body` at `path`; the ETag defaults to a hash of the body, Last-Modified to none."""
        if etag == "auto":
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        route = Route(body=body, etag=etag, last_modified=modified, **options)
        self.routes[path] = route
        return route

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer `path` with a redirect to `location`."""
        self.routes[path] = Route(status=status, location=location, content_type="text/plain")

    def fail(self, path: str, status: int, body: bytes = b"", **options: Any) -> None:
        """Answer `path` with a status (and an optional body)."""
        options.setdefault("content_type", "text/plain")
        self.routes[path] = Route(status=status, body=body, **options)

    def hits(self, path: str) -> int:
        """How many requests reached `path` (query included as requested)."""
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def __enter__(self) -> FakeIcsServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if self._tls:
            context = self._tls.server_context()
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-ics", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet tests

            def do_GET(self) -> None:
                with fake._lock:
                    fake.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = fake.routes.get(self.path)
                if route is None:
                    route = Route(status=404, body=b"not found", content_type="text/plain")
                time.sleep(route.delay)
                if route.status == 200 and route.conditional and self._not_modified(route):
                    self.send_response(304)
                    self._validators(route)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("content-type", route.content_type)
                length = route.declared_length if route.declared_length is not None else len(route.body)
                self.send_header("content-length", str(length))
                if route.location:
                    self.send_header("location", route.location)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self._validators(route)
                self.end_headers()
                self._write(route)

            def _write(self, route: Route) -> None:
                try:
                    if not route.trickle:
                        self.wfile.write(route.body)
                        return
                    for offset in range(0, len(route.body), 10):
                        self.wfile.write(route.body[offset : offset + 10])
                        self.wfile.flush()
                        time.sleep(route.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def _validators(self, route: Route) -> None:
                if route.etag:
                    self.send_header("etag", route.etag)
                if route.last_modified:
                    self.send_header("last-modified", route.last_modified)

            def _not_modified(self, route: Route) -> bool:
                tags = self.headers.get("if-none-match")
                if tags is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
                    return route.etag is not None and route.etag in [tag.strip() for tag in tags.split(",")]
                since = self.headers.get("if-modified-since")
                if since and route.last_modified:
                    try:
                        return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(since)
                    except (TypeError, ValueError):
                        return False
                return False

        return Handler


def http_date(when: Any) -> str:
    """An HTTP date (for Last-Modified) from an aware datetime."""
    return format_datetime(when, usegmt=True)

"""A notification receiver for tests: answers Graph's validation handshake and keeps what was POSTed.

Plain HTTP on 127.0.0.1 (Graph would require HTTPS; the fake does not). `answer_validation=False`
makes the handshake fail, as an unreachable or misconfigured endpoint would.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


class NotificationReceiver:
    """Serves `url` (notifications) and `lifecycle_url`; `bodies[path]` lists the raw bodies received."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = {}
        self.validations: list[str] = []
        self.answer_validation = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                token = parse_qs(parts.query).get("validationToken")
                if token is not None:
                    receiver.validations.append(token[0])
                    data = token[0].encode() if receiver.answer_validation else b"no"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                else:
                    receiver.bodies.setdefault(parts.path, []).append(body)
                    data = b""
                    self.send_response(202)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = f"{base}/graph/notifications"
        self.lifecycle_url = f"{base}/graph/lifecycle"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="notification-receiver", daemon=True
        )

    def __enter__(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

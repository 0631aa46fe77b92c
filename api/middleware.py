"""Small ASGI middleware: body size limit, JSON-only bodies, rate-limit headers on every response."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class Guard:
    """Refuses oversized and non-JSON bodies before any route runs, in the route family's error
    shape, and stamps `X-RateLimit-*` headers on every response of an authenticated request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        compat = scope["path"].startswith("/api/")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _refuse(scope, send, 413, f"The request body is larger than {self.max_body_bytes} bytes.", compat)
            return
        if scope["method"] in _BODY_METHODS and _has_body(headers) and not _is_json(headers, scope["path"]):
            await _refuse(scope, send, 415, "Send the request body as JSON (Content-Type: application/json).", compat)
            return

        if scope["method"] in _BODY_METHODS:
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await _refuse(scope, send, 413, f"The request body is larger than {self.max_body_bytes} bytes.", compat)
                return
            receive = _replay(body, receive)

        async def stamped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                limit = scope.get("state", {}).get("ratelimit")
                if limit is not None:
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-ratelimit-limit", str(limit[0]).encode()),
                        (b"x-ratelimit-remaining", str(limit[1]).encode()),
                        (b"x-ratelimit-reset", str(limit[2]).encode()),
                    ]
            await send(message)

        await self.app(scope, receive, stamped_send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past `limit` (a chunked body has no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read ahead, in one message; then the connection's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _is_json(headers: dict[str, str], path: str) -> bool:
    if path.startswith("/invitations/"):  # the accept page posts an HTML form
        return True
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def _refuse(scope: Scope, send: Send, status: int, detail: str, compat: bool) -> None:
    body: dict[str, Any] = {"detail": detail}
    media_type = "application/json"
    if not compat:
        code = "body_too_large" if status == 413 else "unsupported_media_type"
        title = "Request body too large" if status == 413 else "Unsupported media type"
        body = {
            "type": f"https://deskbridge.dev/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
        }
        media_type = "application/problem+json"
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media_type.encode()), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})

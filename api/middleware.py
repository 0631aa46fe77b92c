"""The API's edge, as ASGI middleware: what every request is checked for before any route runs, and
the answer to an error no route expected.

Bodies: a size limit per route (SCIM and CSV imports take large files, everything else a small
body), JSON only, nested no deeper than `json_checks.MAX_DEPTH`, with no NUL or lone surrogate in
any text; the path and query string hold no NUL either. An unhandled exception answers 500 with an
error id that is logged beside the traceback. Every refusal is in the route family's shape:
problem+json (`/v1`, pushes, the rest), a SCIM error (`/scim/v2`), or `{"detail": …}` (`/api/`).
`X-RateLimit-*` headers are stamped on every response of an authenticated request.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import json_checks, secret_urls
from api.compat.wiggledesk import MEDIA_TYPES as COMPAT_BODIES
from api.deps import RateLimit, count_refused_request
from api.errors import PROBLEM_JSON, problem_body
from api.methods import Allowed, MethodTable
from api.scim.errors import ERROR_SCHEMA, SCIM_JSON

_BODY_METHODS = {"POST", "PUT", "PATCH"}
# Routes that take whole directories at once: SCIM (a large group's PUT) and CSV imports.
_IMPORT_ROUTE = re.compile(r"^/scim/v2(/|$)|^/(v1|console/admin)/connections/[^/]+/import/?$")
_FORM = "application/x-www-form-urlencoded"
_COMPAT_WORDS = "Send the request body as JSON, a form (application/x-www-form-urlencoded) or multipart/form-data."
# The WiggleDesk document's security headers, on every answer.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"same-origin"),
)

logger = logging.getLogger(__name__)


class Family(Enum):
    """The error shape a path's routes speak."""

    PROBLEM = "problem"  # RFC 9457, /v1 and everything not named below
    SCIM = "scim"  # RFC 7644 §3.12
    COMPAT = "compat"  # Django REST framework, as WiggleDesk's API answers

    @classmethod
    def of(cls, path: str) -> Family:
        """The family of the routes under `path`."""
        if path.startswith("/api/"):
            return cls.COMPAT
        if path == "/scim/v2" or path.startswith("/scim/v2/"):
            return cls.SCIM
        return cls.PROBLEM


class Guard:
    """Refuses what no route can take (see the module's docstring), in the route family's error shape."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_import_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_import_bytes = max(max_import_bytes or 0, max_body_bytes)
        self._table: MethodTable | None = None

    def limit_for(self, path: str) -> int:
        """The largest body the route at `path` takes."""
        return self.max_import_bytes if _IMPORT_ROUTE.match(path) else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        family = Family.of(path)
        answer = _Answer(scope, send, family, self._methods(scope))
        refusal = await self._check(scope, path, receive)
        if isinstance(refusal, Refusal):
            await refusal.send(scope, answer.send, family)
            return
        if refusal is not None:
            receive = _replay(refusal, receive)
        allowed = answer.allowed() if scope["method"] in ("OPTIONS", "HEAD") else None
        if allowed is not None and scope["method"] == "OPTIONS" and "OPTIONS" not in allowed.native:
            await _options(allowed, family, answer.send)
            return
        if (
            allowed is not None
            and scope["method"] == "HEAD"
            and "HEAD" not in allowed.native
            and "GET" in allowed.native
        ):
            # Answered as the GET it asks about, its body left out (the length stays, as RFC 9110 allows).
            scope = {**scope, "method": "GET"}
            answer.head = True
        try:
            await self.app(scope, receive, answer.send)
        except Exception:
            if answer.started:  # the answer is on its way: nothing left to say, only to log
                raise
            error_id = uuid.uuid4().hex[:16]
            logger.exception("unhandled error %s on %s %s", error_id, scope["method"], secret_urls.mask(path))
            detail = f"An internal error occurred; quote error id {error_id} to the operator."
            refusal = Refusal(500, detail, code="internal_error", extra={"error_id": error_id})
            await refusal.send(scope, answer.send, family)

    def _methods(self, scope: Scope) -> MethodTable:
        # Built on the first request: routes are all added by then (the app is in scope from Starlette).
        if self._table is None:
            self._table = MethodTable(scope["app"].router.routes)
        return self._table

    async def _check(self, scope: Scope, path: str, receive: Receive) -> Refusal | bytes | None:
        """A refusal, or the body read ahead (to replay to the route), or None when there is no body to read."""
        if "\x00" in path:
            return Refusal(404, "Not found: the path holds a NUL character.", code="not_found")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        bad = json_checks.bad_text_in_pairs(query)
        if bad:
            return Refusal(422, bad[1], code="invalid_input", field=bad[0])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.limit_for(path)
        too_large = Refusal(413, f"The request body is larger than {limit} bytes.", code="body_too_large")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return too_large
        sends_body = scope["method"] in _BODY_METHODS
        if not sends_body and not _has_body(headers):
            return None
        # A GET may carry a body too (httpie sends `team_name=…` as JSON): read and checked the same way.
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if sends_body and _has_body(headers) and not _accepted(media_type, path):
            words = (
                _COMPAT_WORDS
                if path.startswith("/api/")
                else "Send the request body as JSON (Content-Type: application/json)."
            )
            return Refusal(415, words, code="unsupported_media_type")
        body = await _read_body(receive, limit)
        if body is None:
            return too_large
        return _check_body(body, media_type) or body


class _Answer:
    """The request's `send`, stamping every answer's headers in one place: the security headers, the
    caller's `X-RateLimit-*` figures, and `Allow` (on a 405, and on every WiggleDesk-compatible answer,
    as Django REST framework sends it); leaving the body out of a HEAD answered as a GET."""

    def __init__(self, scope: Scope, send: Send, family: Family, table: MethodTable) -> None:
        self.scope = scope
        self._send = send
        self.family = family
        self.table = table
        self.started = False
        self.head = False

    def allowed(self) -> Allowed | None:
        """The methods the request's path answers; None when no route has the path, and under SCIM, whose
        catch-all route (api/scim) answers every method with its own 404 or 405 and `Allow`."""
        if self.family is Family.SCIM:
            return None
        return self.table.allowed(self.scope["path"])

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            status: int = message["status"]
            headers = list(message.get("headers", []))
            named = {name.lower() for name, _ in headers}
            headers += [header for header in SECURITY_HEADERS if header[0] not in named]  # a page's own stand
            figures = await self._ratelimit(status)
            if figures is not None:
                headers += [
                    (b"x-ratelimit-limit", str(figures[0]).encode()),
                    (b"x-ratelimit-remaining", str(figures[1]).encode()),
                    (b"x-ratelimit-reset", str(figures[2]).encode()),
                ]
            if status == 405 or self.family is Family.COMPAT:
                allowed = self.allowed()
                if allowed is not None:
                    headers = [(k, v) for k, v in headers if k.lower() != b"allow"]
                    headers.append((b"allow", allowed.header.encode()))
            message = {**message, "headers": headers}
        elif message["type"] == "http.response.body" and self.head:
            message = {**message, "body": b""}
        await self._send(message)

    async def _ratelimit(self, status: int) -> RateLimit | tuple[int, int, int] | None:
        figures: RateLimit | None = self.scope.get("state", {}).get("ratelimit")
        if figures is not None or status < 400 or status == 401 or self.family is Family.SCIM:
            return figures  # SCIM callers hold a connection's token, which no daily limit counts
        # Answered before a route counted it (an edge refusal, an unrouted path or method, a body that
        # is not JSON): counted here, for a caller with a valid token. Such answers are rare.
        authorization = next((v for k, v in self.scope["headers"] if k.lower() == b"authorization"), None)
        if authorization is None:
            return None
        ctx = self.scope["app"].state.context
        return await run_in_threadpool(count_refused_request, ctx, authorization.decode("latin-1"))


async def _options(allowed: Allowed, family: Family, send: Send) -> None:
    """Answer OPTIONS as Django REST framework does: 200, `Allow`, and what the route is and takes."""
    parses = list(COMPAT_BODIES) if family is Family.COMPAT else ["application/json"]
    body = {"name": allowed.name, "description": allowed.description, "renders": ["application/json"], "parses": parses}
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"allow", allowed.header.encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class Refusal:
    """An answer made at the edge, rendered in the route family's shape."""

    def __init__(
        self, status: int, detail: str, *, code: str, field: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        self.field = field
        self.extra = extra or {}

    def render(self, path: str, family: Family) -> tuple[int, str, dict[str, Any]]:
        """The status, media type and body of this refusal on `path`."""
        if family is Family.SCIM:
            # SCIM has no 422: bad input is 400 with a scimType (RFC 7644 §3.12).
            status = 400 if self.status == 422 else self.status
            detail = f"{self.field}: {self.detail}" if self.field else self.detail
            body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
            if status == 400:
                body["scimType"] = "invalidSyntax" if self.code == "json_too_deep" else "invalidValue"
            return status, SCIM_JSON, body
        if family is Family.COMPAT:
            if self.field and self.status in (400, 422):
                return 400, "application/json", {self.field: [self.detail]}
            return self.status, "application/json", {"detail": self.detail}
        errors = [{"field": self.field, "detail": self.detail}] if self.field else None
        return self.status, PROBLEM_JSON, problem_body(path, self.status, self.detail, self.code, errors) | self.extra

    async def send(self, scope: Scope, send: Send, family: Family) -> None:
        """Answer the request with this refusal."""
        status, media_type, body = self.render(scope["path"], family)
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", media_type.encode()), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _check_body(body: bytes, media_type: str) -> Refusal | None:
    """Why the body read ahead cannot be taken, or None."""
    if media_type == _FORM:
        bad = json_checks.bad_text_in_pairs(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return Refusal(422, bad[1], code="invalid_input", field=bad[0]) if bad else None
    if media_type and not _is_json_type(media_type):  # a multipart upload: its parts are the page's to read
        return None
    if json_checks.too_deep(body):
        detail = f"The JSON body is nested more than {json_checks.MAX_DEPTH} levels deep."
        return Refusal(400, detail, code="json_too_deep")
    bad = json_checks.bad_text(body)
    return Refusal(422, bad[1], code="invalid_input", field=bad[0]) if bad else None


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


def _accepted(media_type: str, path: str) -> bool:
    if path.startswith(("/invitations/", "/console/")):  # these pages post HTML forms
        return True
    if path.startswith("/api/"):  # as Django REST framework parses them (WiggleDesk's API)
        return media_type in COMPAT_BODIES or _is_json_type(media_type)
    return _is_json_type(media_type)


def _is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")

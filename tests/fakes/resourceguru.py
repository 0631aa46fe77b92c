"""A fake Resource Guru (OAuth token endpoint + account API) on 127.0.0.1, and its webhooks, signed.

    with FakeResourceGuru(clock=clock.now) as fake:
        ada = fake.add_resource("Ada", "Lovelace", "ada@example.com", timezone="London")
        fake.add_booking([ada["id"]], "2025-03-03", "2025-03-03", duration=60, start_time=540)
        code = fake.issue_code()  # what the redirect would bring back
        # base URL: fake.base_url; account: fake.account; client: fake.client_id / fake.client_secret

It follows the document: `POST /oauth/token` (form; `authorization_code` and `refresh_token`, a refresh
expiring the old pair at once), `/v1/{account}/…` with a bearer token, `limit`/`offset` paging (50 by
default for resources, `limit=0` for all; no limit for bookings and downtimes), the date filters
(`start_date`/`end_date` for bookings, `from`/`to` for downtimes: starting on or after, ending on or
before), `X-RateLimit-Limit`/`-Remaining` on every answer and 429 + `Retry-After` once the minute's
budget is spent (the minute runs on the injectable `clock`), and `{"errors": [...]}` bodies.
Test hooks: `fail(n, status, retry_after)`, `revoke_grant()`, `expire_access_tokens()`, `requests`.

`WebhookSender` POSTs deliveries as Resource Guru does (envelope, `X-ResourceGuru-Signature`), and
forged, tampered, unsigned or replayed ones; `WebhookReceiver` keeps what reaches it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

KINDS = ("resources", "bookings", "downtimes")
TYPE_OF = {"resources": "resource", "bookings": "booking", "downtimes": "downtime"}


@dataclass
class ManualClock:
    """A monotonic clock tests move by hand; `sleep` moves it (and remembers the waits)."""

    at: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.at += seconds


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


class FakeResourceGuru:
    """Token endpoint and account API in one server; see the module docstring."""

    def __init__(
        self,
        *,
        account: str = "example-corp",
        client_id: str = "rg-client",
        client_secret: str = "rg-secret",
        redirect_uri: str = "http://localhost/oauth",
        rate_limit: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account, self.client_id, self.client_secret = account, client_id, client_secret
        self.redirect_uri = redirect_uri
        self.rate_limit = rate_limit
        self.clock = clock
        self.resource_types: dict[int, dict[str, Any]] = {
            1: {"id": 1, "human": True, "name": "Person"},
            2: {"id": 2, "human": False, "name": "Meeting Room"},
        }
        self.objects: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.requests: list[Request] = []
        self.token_requests: list[dict[str, str]] = []
        self.throttled = 0
        self._codes: set[str] = set()
        self._access: set[str] = set()
        self._refresh: set[str] = set()
        self._faults: deque[tuple[int, str | None]] = deque()
        self._window: tuple[float, int] | None = None  # (minute started, requests used)
        self._next_id = 1
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-rg", daemon=True
        )

    def __enter__(self) -> FakeResourceGuru:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- state ---------------------------------------------------------------------------------

    def add_resource(
        self, first: str, last: str, email: str | None = None, *, type_id: int = 1, **fields: Any
    ) -> dict[str, Any]:
        kind = self.resource_types[type_id]
        item: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}".strip(),
            "email": email,
        }
        item |= {"archived": False, "bookable": True, "timezone": {"name": "UTC", "offset": 0}}
        item |= {"resource_type": {"id": type_id, "name": kind["name"]}, "job_title": None}
        if isinstance(fields.get("timezone"), str):
            fields["timezone"] = {"name": fields["timezone"], "offset": 0}
        return self._add("resources", item | fields)

    def add_booking(
        self, resource_ids: list[int], start: str, end: str, *, duration: int = 480, **fields: Any
    ) -> dict[str, Any]:
        item = {"resource_id": resource_ids[0], "resource_ids": resource_ids, "start_date": start, "end_date": end}
        item |= {"duration": duration, "start_time": None, "details": "", "notes": "", "billable": False}
        item |= {"project_id": None, "client_id": None, "booker": {"id": 1, "email": "boss@example.com"}}
        item |= {"rrule": None, "group_id": None, "sequence_no": 0, "timezone": None, "tentative": False}
        item |= {"refreshable": True, "approval_state": {}, "aggregated_approval_state": {}}
        return self._add("bookings", item | fields)

    def add_downtime(
        self, resource_ids: list[int], start: str, end: str, *, start_time: int = 0, end_time: int = 1440, **fields: Any
    ) -> dict[str, Any]:
        item = {"resource_ids": resource_ids, "from": start, "to": end, "start_time": start_time}
        item |= {"end_time": end_time, "timezone": None, "downtime_type_id": 1, "details": None, "booker_id": 1}
        item |= {"account_id": 1, "leave": "holiday", "state": "approved", "deleted": False}
        return self._add("downtimes", item | fields)

    def update(self, kind: str, object_id: int, **fields: Any) -> dict[str, Any]:
        with self.lock:
            item = self.objects[kind][object_id]
            item.update(fields, updated_at=_stamp())
            return item

    def delete(self, kind: str, object_id: int) -> dict[str, Any]:
        with self.lock:
            return self.objects[kind].pop(object_id)

    def payload(self, kind: str, object_id: int, action: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
        """The webhook payload for an object: the object (or `item`), with `action` and `type` added."""
        with self.lock:
            body = dict(item if item is not None else self.objects[kind][object_id])
        return body | {"action": action, "type": TYPE_OF[kind]}

    def _add(self, kind: str, item: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            item = {"id": self._next_id} | item | {"created_at": _stamp(), "updated_at": _stamp()}
            self._next_id += 1
            self.objects[kind][item["id"]] = item
            return item

    # --- auth and test hooks -------------------------------------------------------------------

    def issue_code(self) -> str:
        """A code, as the authorize redirect would bring back (single use)."""
        with self.lock:
            code = secrets.token_urlsafe(12)
            self._codes.add(code)
            return code

    def revoke_grant(self) -> None:
        """The user revoked the app: every access and refresh token stops working."""
        with self.lock:
            self._access.clear()
            self._refresh.clear()

    def expire_access_tokens(self) -> None:
        """Access tokens expire (refresh tokens still work)."""
        with self.lock:
            self._access.clear()

    def exhaust(self) -> None:
        """Spend the rest of this minute's budget, as the application's other connections would."""
        with self.lock:
            self._spend()
            assert self._window is not None
            self._window = (self._window[0], self.rate_limit)

    def fail(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next `count` API requests with `status` (and `Retry-After` when given)."""
        with self.lock:
            self._faults.extend((status, retry_after) for _ in range(count))

    def count(self, path_suffix: str) -> int:
        """How many API requests went to `/v1/{account}/<path_suffix>`."""
        with self.lock:
            return sum(1 for r in self.requests if r.path == f"/v1/{self.account}/{path_suffix}")

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.token_requests.append(form)
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            grant = form.get("grant_type")
            if grant == "authorization_code":
                if form.get("code") not in self._codes or form.get("redirect_uri") != self.redirect_uri:
                    return 400, _invalid_grant()
                self._codes.discard(form["code"])
            elif grant == "refresh_token":
                if form.get("refresh_token") not in self._refresh:
                    return 400, _invalid_grant()
                # The document: the old access token is expired immediately.
                self._refresh.discard(form["refresh_token"])
                self._access.clear()
            else:
                return 400, {"error": "unsupported_grant_type", "error_description": "The grant type is unknown."}
            access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
            self._access.add(access)
            self._refresh.add(refresh)
            return 200, {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": 604800}

    def api(self, path: str, query: dict[str, list[str]], authorization: str | None) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(Request("GET", path, query, authorization))
            if not authorization or authorization.removeprefix("Bearer ") not in self._access:
                return 401, {"errors": ["Unauthorized"]}, {}
            headers = self._spend()
            if headers.get("X-RateLimit-Remaining") == "0" and "Retry-After" in headers:
                self.throttled += 1
                return 429, {"errors": ["Rate Limit Exceeded"]}, headers
            if self._faults:
                status, retry_after = self._faults.popleft()
                return (
                    status,
                    {"errors": ["Resource Guru is having trouble"]},
                    headers | ({"Retry-After": retry_after} if retry_after else {}),
                )
            prefix = f"/v1/{self.account}/"
            if not path.startswith(prefix):
                return 404, {"errors": ["Not found"]}, headers
            try:
                status, body = self._route(path.removeprefix(prefix), query)
            except ValueError as error:
                return 400, {"errors": [str(error)]}, headers
            return status, body, headers

    def _spend(self) -> dict[str, str]:
        now = self.clock()
        if self._window is None or now >= self._window[0] + 60:
            self._window = (now, 0)
        started, used = self._window
        limit = {"X-RateLimit-Limit": str(self.rate_limit)}
        if used >= self.rate_limit:
            return limit | {"X-RateLimit-Remaining": "0", "Retry-After": str(math.ceil(started + 60 - now))}
        self._window = (started, used + 1)
        return limit | {"X-RateLimit-Remaining": str(self.rate_limit - used - 1)}

    def _route(self, route: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if route == "resource_types":
            return 200, list(self.resource_types.values())
        if route in ("resources", "resources/archived"):
            archived = route.endswith("archived")
            items = [r for r in self.objects["resources"].values() if r["archived"] == archived]
            return 200, _page(items, query, default_limit=50)
        if route in ("bookings", "downtimes"):
            first, last = ("start_date", "end_date") if route == "bookings" else ("from", "to")
            begin, end = (_day(query, name) for name in (first, last))
            items = [
                item
                for item in self.objects[route].values()
                if (begin is None or date.fromisoformat(item[first]) >= begin)
                and (end is None or date.fromisoformat(item[last]) <= end)
                and self._resources_allowed(item, query)
            ]
            return 200, _page(items, query, default_limit=None)
        return 404, {"errors": [f"No route {route}"]}

    def _resources_allowed(self, item: dict[str, Any], query: dict[str, list[str]]) -> bool:
        ids = set(item.get("resource_ids") or [item.get("resource_id")])
        if "resource_ids" in query and not ids & {int(value) for value in query["resource_ids"]}:
            return False
        resources = self.objects["resources"]
        if query.get("include_deleted_resources") == ["0"] and any(rid not in resources for rid in ids):
            return False
        archived = any(resources[rid]["archived"] for rid in ids if rid in resources)
        return not (query.get("include_archived_resources") == ["0"] and archived)


def _page(items: list[dict[str, Any]], query: dict[str, list[str]], *, default_limit: int | None) -> list[Any]:
    limit_text = query.get("limit", [None])[0]
    offset_text = query.get("offset", ["0"])[0]
    for name, text in (("limit", limit_text), ("offset", offset_text)):
        if text is not None and not text.isdigit():
            raise ValueError(f"{name} must be digits")
    limit = default_limit if limit_text is None else int(limit_text)
    offset = int(offset_text)
    ordered = sorted(items, key=lambda item: item["id"])
    return ordered[offset:] if not limit else ordered[offset : offset + limit]


def _day(query: dict[str, list[str]], name: str) -> date | None:
    if name not in query:
        return None
    try:
        return date.fromisoformat(query[name][0])
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 date") from None


def _invalid_grant() -> dict[str, str]:
    return {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid or revoked."}


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(UTC).microsecond // 1000:03d}Z"


def _handler(fake: FakeResourceGuru) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so paging reuses one connection
        # One buffered write per response and no Nagle: otherwise delayed ACKs add ~40 ms a request.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body, headers = fake.api(parts.path, parse_qs(parts.query), self.headers.get("Authorization"))
            self._send(status, body, headers)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if urlsplit(self.path).path != "/oauth/token":
                self._send(404, {"errors": ["Not found"]}, {})
                return
            form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
            self._send(*fake.token(form), {})

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# --- webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str]
    status: int


class WebhookSender:
    """Sends deliveries as Resource Guru does: `{id, timestamp, payload}`, ids incrementing, signed."""

    def __init__(self, secret: str, *, send_secret_header: bool = False, now: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.send_secret_header = send_secret_header
        self.now = now
        self.next_id = 1
        self.sent: list[Delivery] = []

    def envelope(self, payload: dict[str, Any]) -> bytes:
        body = {"id": self.next_id, "timestamp": int(self.now()), "payload": payload}
        self.next_id += 1
        return json.dumps(body).encode()

    def deliver(self, url: str, payload: dict[str, Any]) -> Delivery:
        """A genuine delivery."""
        body = self.envelope(payload)
        return self.post(url, body, self._headers(_sign(self.secret, body)))

    def forge(self, url: str, payload: dict[str, Any], secret: str = "not-the-secret") -> Delivery:
        """Signed with another secret."""
        body = self.envelope(payload)
        return self.post(url, body, self._headers(_sign(secret, body)))

    def tamper(self, url: str, payload: dict[str, Any], change: Callable[[bytes], bytes]) -> Delivery:
        """Signed, then changed on the way."""
        body = self.envelope(payload)
        return self.post(url, change(body), self._headers(_sign(self.secret, body)))

    def unsigned(self, url: str, payload: dict[str, Any], signature: str | None = None) -> Delivery:
        """No signature header (or `signature` as given, e.g. not hex)."""
        headers = self._headers(signature)
        return self.post(url, self.envelope(payload), headers)

    def replay(self, url: str, delivery: Delivery) -> Delivery:
        """The same bytes and headers again, as an eavesdropper (or a Resource Guru retry) would send."""
        return self.post(url, delivery.body, delivery.headers)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        response = httpx.post(url, content=body, headers=headers, timeout=10)
        delivery = Delivery(body, headers, response.status_code)
        self.sent.append(delivery)
        return delivery

    def _headers(self, signature: str | None) -> dict[str, str]:
        headers = {"User-Agent": "ResourceGuru/Webhooks", "Content-Type": "application/json"}
        if signature is not None:
            headers["X-ResourceGuru-Signature"] = signature
        if self.send_secret_header:
            headers["X-ResourceGuru-Key"] = self.secret
        return headers


def _sign(secret: str, body: bytes) -> str:
    # The document's OpenSSL::HMAC.hexdigest(OpenSSL::Digest.new('sha256'), webhook_secret, request_body).
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    """A payload URL on 127.0.0.1 that keeps (headers lower-cased, raw body) of every POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/resourceguru/1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

"""A fake When I Work API (v2) over HTTP on 127.0.0.1, following its document.

    with FakeWhenIWork() as fake:
        fake.add_login("boss@example.com", "pw", user_id=1)
        fake.add_location(136, "Downtown")
        fake.add_user(1, "Goldie", "Wilson", "goldie@example.com", role=2, locations=[136])
        fake.add_shift(10000, user_id=1, location_id=136, start=datetime(...), end=datetime(...))
        fake.add_request(54, user_id=1, status=2, start=..., end=...)
        # base URL: fake.base_url ("http://127.0.0.1:<port>/2")

What the document says, the fake does: `POST /2/login` takes the developer key (`W-Key` header or
`key` in the body) and `{username, password}` and answers `{"users": [{…, "token"}], "accounts": []}`;
every other request needs `W-Token` (header, cookie or query string). Lists are wrapped by their
plural name, single objects by the singular one; `GET /2/shifts` takes `start_time`/`end_time`
(plain dates or datetimes, read in the account's zone), `user_id`, `location_id` and the batch
example's `unpublished`, and echoes the window as `start`/`end`; `GET /2/requests` takes
`start`/`end`, `status` (comma list), `since_id`/`max_id`, and sideloads `users` and `messages`.
Datetimes are written `Fri, 07 Mar 2014 08:30:00 -0600` in the account's zone (America/Chicago
unless told otherwise), so offsets change with DST. Objects are kept as wire JSON: a test can break one.
Only reads are served (single GETs too); writes answer 405, since the connector never writes.

The document gives error codes but no error body; the fake answers `{"error": "…", "code": N}`.
Test hooks: `expire_tokens()` (every token issued so far stops working, 401), `throttle(n)` /
`fail(n, status)` (the next n requests), `answer_next(path, status, body)` (one raw answer), and
`log` (every request with its query and headers).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

DEVELOPER_KEY = "iworksoharditsnotfunny"  # the document's placeholder
Json = dict[str, Any]


@dataclass(frozen=True)
class Logged:
    """A request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeWhenIWork:
    """The fake API; see the module docstring. Use as a context manager."""

    def __init__(self, *, developer_key: str = DEVELOPER_KEY, zone: str = "America/Chicago") -> None:
        self.developer_key = developer_key
        self.zone = ZoneInfo(zone)
        self.logins: dict[str, tuple[str, int]] = {}  # username -> (password, user id)
        self.users: dict[int, Json] = {}
        self.locations: dict[int, Json] = {}
        self.shifts: dict[int, Json] = {}
        self.requests: dict[int, Json] = {}
        self.log: list[Logged] = []
        self.clock = datetime(2014, 3, 1, 9, 0, tzinfo=self.zone)  # updated_at of the next change
        self._tokens: set[str] = set()
        self._faults: deque[tuple[int, str | None]] = deque()
        self._canned: dict[str, deque[tuple[int, bytes]]] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/2"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeWhenIWork:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- data ----------------------------------------------------------------------------------

    def date(self, moment: datetime) -> str:
        """`moment` as the API writes it, in the account's zone (naive: already local)."""
        local = moment.replace(tzinfo=self.zone) if moment.tzinfo is None else moment.astimezone(self.zone)
        return local.strftime("%a, %d %b %Y %H:%M:%S %z")

    def _stamp(self) -> str:
        self.clock += timedelta(minutes=1)
        return self.date(self.clock)

    def add_login(self, username: str, password: str, *, user_id: int) -> None:
        """Credentials that log in as user `user_id`."""
        self.logins[username] = (password, user_id)

    def add_location(self, location_id: int, name: str, address: str = "") -> Json:
        """A location, as the Location Object."""
        obj: Json = {"id": location_id, "name": name, "address": address, "coordinates": ["0", "0"]}
        obj |= {"created_at": self._stamp(), "updated_at": self._stamp()}
        self.locations[location_id] = obj
        return obj

    def add_user(
        self, user_id: int, first: str, last: str, email: str, *, role: int = 3, locations: tuple[int, ...] = ()
    ) -> Json:
        """A user, as the User Object (without the write-only password)."""
        obj: Json = {"id": user_id, "first_name": first, "last_name": last, "email": email, "phone_number": ""}
        obj |= {"role": role, "positions": [], "locations": list(locations), "notes": "", "activated": 1}
        self.users[user_id] = obj
        return obj

    def add_shift(
        self, shift_id: int, *, user_id: int, location_id: int, start: datetime, end: datetime, published: bool = True
    ) -> Json:
        """A shift, as the Shift Object (`user_id` 0: an open shift)."""
        stamp = self._stamp()
        obj: Json = {"id": shift_id, "user_id": user_id, "location_id": location_id, "position_id": 0, "site_id": 0}
        obj |= {"start_time": self.date(start), "end_time": self.date(end), "break_time": 0.5, "color": "cc0000"}
        obj |= {"notes": "", "published": published, "published_date": stamp if published else None}
        obj |= {"notified_at": None, "created_at": stamp, "updated_at": stamp}
        self.shifts[shift_id] = obj
        return obj

    def update_shift(self, shift_id: int, **fields: Any) -> None:
        """Change a shift (datetimes are written in the API's format) and bump its `updated_at`."""
        for key, value in fields.items():
            self.shifts[shift_id][key] = self.date(value) if isinstance(value, datetime) else value
        self.shifts[shift_id]["updated_at"] = self._stamp()

    def add_request(self, request_id: int, *, user_id: int, status: int, start: datetime, end: datetime) -> Json:
        """A time-off request, as the Request Object."""
        stamp = self._stamp()
        obj: Json = {"id": request_id, "account_id": 1, "user_id": user_id, "creator_id": user_id, "status": status}
        obj |= {"type": 0, "start_time": self.date(start), "end_time": self.date(end)}
        obj |= {"created_at": stamp, "updated_at": stamp}
        self.requests[request_id] = obj
        return obj

    # --- test hooks ----------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (401), as an expired one would."""
        with self._lock:
            self._tokens.clear()

    def throttle(self, count: int, retry_after: str | None = None) -> None:
        """Answer the next `count` requests with 429 (the document documents no Retry-After; pass one to send it)."""
        with self._lock:
            self._faults.extend((429, retry_after) for _ in range(count))

    def fail(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with `status`."""
        with self._lock:
            self._faults.extend((status, None) for _ in range(count))

    def answer_next(self, path: str, status: int, body: bytes) -> None:
        """Answer the next request to `path` (e.g. "/2/shifts") with this raw body, before any check.

        Calls queue up: two calls answer the next two requests to that path.
        """
        with self._lock:
            self._canned.setdefault(path.rstrip("/"), deque()).append((status, body))

    def paths(self, method: str = "GET") -> list[str]:
        """The paths requested with `method`, in order."""
        return [entry.path for entry in self.log if entry.method == method]

    # --- serving -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> _Answer:
        """Answer one request (called from the server's threads)."""
        with self._lock:
            self.log.append(Logged(method, path, query, headers))
            fault = self._faults.popleft() if self._faults else None
            waiting = self._canned.get(path.rstrip("/"))
            canned = waiting.popleft() if waiting else None
        if fault is not None:
            status, retry_after = fault
            return _Answer(status, _error(status), {"Retry-After": retry_after} if retry_after else {})
        if canned is not None:
            return _Answer(canned[0], canned[1])
        if path.rstrip("/") == "/2/login":
            return self._login(headers, body) if method == "POST" else _Answer(405, _error(405))
        if not self._token_ok(query, headers):
            return _Answer(401, _error(401, "Invalid or expired token"))
        if method != "GET":
            return _Answer(405, _error(405))
        return self._get(path.strip("/").split("/")[1:], query)

    def _login(self, headers: dict[str, str], body: bytes) -> _Answer:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _Answer(400, _error(400, "Request body is not JSON"))
        if not isinstance(data, dict):
            return _Answer(400, _error(400, "Request body is not an object"))
        key = headers.get("w-key") or data.get("key")
        if key != self.developer_key:
            return _Answer(401, _error(401, "Invalid developer key"))
        login = self.logins.get(str(data.get("username")))
        if login is None or login[0] != data.get("password"):
            return _Answer(401, _error(401, "Incorrect username or password"))
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens.add(token)
        user = dict(self.users.get(login[1], {"id": login[1]}), token=token)
        return _Answer(200, {"users": [user], "accounts": []})

    def _token_ok(self, query: dict[str, str], headers: dict[str, str]) -> bool:
        cookie = SimpleCookie(headers.get("cookie", "")).get("W-Token")
        token = headers.get("w-token") or query.get("W-Token") or (cookie.value if cookie else None)
        with self._lock:
            return token in self._tokens

    def _get(self, parts: list[str], query: dict[str, str]) -> _Answer:
        collections = {"users": self.users, "locations": self.locations, "shifts": self.shifts}
        collections["requests"] = self.requests
        if not parts or parts[0] not in collections:
            return _Answer(404, _error(404))
        name, objects = parts[0], collections[parts[0]]
        if len(parts) == 2:
            obj = objects.get(int(parts[1])) if parts[1].isdigit() else None
            return _Answer(200, {name[:-1]: obj}) if obj else _Answer(404, _error(404))
        if len(parts) > 2:
            return _Answer(404, _error(404))
        if name == "shifts":
            return self._list_shifts(query)
        if name == "requests":
            return self._list_requests(query)
        listed = list(objects.values())
        if name == "users" and "location_id" in query:
            wanted = _ids(query["location_id"])
            listed = [user for user in listed if wanted & set(user.get("locations", []))]
        return _Answer(200, {name: listed})

    def _list_shifts(self, query: dict[str, str]) -> _Answer:
        today = self.clock.replace(hour=0, minute=0, second=0, microsecond=0)
        start = self._when(query.get("start_time") or query.get("start"), today)
        # Only a start: the window runs to the end of that week (Saturday 23:59:59), as the example echoes.
        saturday = start + timedelta(days=(5 - start.weekday()) % 7)
        end = self._when(query.get("end_time") or query.get("end"), datetime.combine(saturday, time(23, 59, 59)))
        shifts = [s for s in self.shifts.values() if self._overlaps(s, start, end)]
        if query.get("unpublished") not in ("true", "1"):
            shifts = [s for s in shifts if s.get("published") is not False]
        for key in ("user_id", "location_id"):
            if key in query:
                shifts = [s for s in shifts if s.get(key) in _ids(query[key])]
        return _Answer(200, {"start": self.date(start), "end": self.date(end), "shifts": shifts})

    def _list_requests(self, query: dict[str, str]) -> _Answer:
        start = self._when(query.get("start"), datetime(1970, 1, 1))
        end = self._when(query.get("end"), datetime(2100, 1, 1))
        found = [r for r in self.requests.values() if self._overlaps(r, start, end)]
        if "status" in query:
            found = [r for r in found if r.get("status") in _ids(query["status"])]
        if query.get("since_id", "").isdigit():
            found = [r for r in found if int(r["id"]) > int(query["since_id"])]
        if query.get("max_id", "").isdigit():
            found = [r for r in found if int(r["id"]) < int(query["max_id"])]
        user_ids = {r.get("user_id") for r in found}
        users = [user for uid, user in sorted(self.users.items()) if uid in user_ids]
        return _Answer(200, {"requests": found, "messages": [], "users": users})

    def _when(self, text: str | None, default: datetime) -> datetime:
        """A query date or datetime in the account's zone (`2014-03-05`, `2014-03-05 08:00`, RFC 2822)."""
        if not text:
            return default.replace(tzinfo=self.zone) if default.tzinfo is None else default
        for pattern in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%a, %d %b %Y %H:%M:%S %z", "%a, %d %b %Y %H:%M:%S"):
            try:
                parsed = datetime.strptime(text, pattern)
            except ValueError:
                continue
            return parsed.replace(tzinfo=self.zone) if parsed.tzinfo is None else parsed
        return default

    def _overlaps(self, obj: Json, start: datetime, end: datetime) -> bool:
        try:
            begins = datetime.strptime(obj["start_time"], "%a, %d %b %Y %H:%M:%S %z")
            ends = datetime.strptime(obj["end_time"], "%a, %d %b %Y %H:%M:%S %z")
        except (KeyError, TypeError, ValueError):
            return True  # a broken object (a test's doing) is listed, so the client sees it
        return begins <= end and ends >= start


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] | None = None


def _error(status: int, message: str | None = None) -> Json:
    meanings = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
    meanings |= {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    return {"error": message or meanings.get(status, "Error"), "code": status}


def _ids(text: str) -> set[int]:
    return {int(part) for part in text.split(",") if part.strip().isdigit()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], fake: FakeWhenIWork) -> None:
        super().__init__(address, handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-request are normal in tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    # One buffered write per response and no Nagle: headers and body in two segments would meet
    # delayed ACKs and add ~40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.server.fake.handle(method, parts.path, query, headers, body)
        data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in (answer.headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

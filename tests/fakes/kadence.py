"""A fake Kadence: the OAuth token endpoint and the public API's users, buildings, spaces and bookings.

Real HTTP on 127.0.0.1 from a background thread, following the API document: JSON-LD resources
(`@id` IRIs, `@type`), Hydra collections paged by `page`/`itemsPerPage` with `hydra:totalItems`
(and `hydra:view` links when `hydra_view` is set, as API Platform adds them), the booking date
filters in the documented UTC `YYYY-MM-DDThh:mm:ss` form, dates answered as ISO 8601 with an offset
(`offset` picks which). Errors as API Platform sends them (Hydra errors, OAuth errors on the token
endpoint, `{"code", "message"}` for a bad bearer token).

    with FakeKadence() as fake:
        ada = fake.add_user("ada@example.com", "Ada", "Lovelace")
        desk = fake.add_space("Desk 01", building=fake.add_building("London"), floor="Floor 1")
        fake.add_booking(ada, desk, start, end)

Test hooks: `throttle`/`fail` answer the next API requests with an error, `answer_next` with a raw
body, `listeners` see each API request first (to change data mid-read), `refuse_tokens` makes the
API refuse every token, `expire_tokens` ends every
token issued so far, `override` puts raw fields into a record (malformed payloads), `change_booking`
and `cancel_booking` change bookings as Kadence would, `check_in`/`check_out`/`release` (auto-release:
noCheckIn)/`complete` move them through the document's statuses; `requests` logs every request served.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

PREFIX = "/v1/public"
OPERATORS = ("before", "strictly_before", "after", "strictly_after")


@dataclass
class Booking:
    """A booking as the fake keeps it; `fields` are put over its JSON as they are (malformed ones too)."""

    ulid: str
    user: str
    space: str | None
    building: str
    start: datetime
    end: datetime
    type: str
    status: str = "booked"
    updated: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    cancellation_reason: str | None = None
    checked_in: datetime | None = None
    checked_out: datetime | None = None
    released: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """A request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)  # a token request's form (the secret included)


class FakeKadence:
    """Token endpoint and public API in one server; see the module docstring."""

    def __init__(
        self,
        *,
        client_id: str = "kadence-client",
        secret: str = "kadence-secret",
        token_lifetime: int = 3600,
        hydra_view: bool = False,
        offset: timedelta = timedelta(0),
    ) -> None:
        self.client_id, self.secret, self.token_lifetime = client_id, secret, token_lifetime
        self.hydra_view = hydra_view
        self.offset = offset
        self.users: dict[str, dict[str, Any]] = {}
        self.buildings: dict[str, dict[str, Any]] = {}
        self.spaces: dict[str, dict[str, Any]] = {}
        self.space_building: dict[str, str] = {}
        self.floors: dict[tuple[str, str], str] = {}  # (building, name) -> ULID
        self.bookings: dict[str, Booking] = {}
        self.requests: list[Request] = []
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.refuse_tokens = False  # True: the API refuses every token (the API client lost its access)
        self.clock = datetime(2024, 1, 1, tzinfo=UTC)  # updatedAt of the next change
        self._faults: deque[tuple[int, str | None]] = deque()
        self._canned: dict[str, deque[tuple[int, Any]]] = {}
        self.listeners: list[Callable[[Request], None]] = []  # called with each API request before it is answered
        self._ids = 0
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.token_url = f"{self.base_url}/oauth2/token"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeKadence:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- data ------------------------------------------------------------------------------------

    def _ulid(self) -> str:
        self._ids += 1
        return f"01HK{self._ids:022d}"

    def _tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def add_user(self, email: str, first: str = "", last: str = "") -> str:
        """A user; returns their ULID."""
        with self._lock:
            ulid = self._ulid()
            self.users[ulid] = {
                "@id": f"{PREFIX}/users/{ulid}",
                "@type": "User",
                "id": ulid,
                "email": email,
                "firstName": first,
                "lastName": last,
                "jobTitle": None,
                "invitationPending": False,
                "locale": "en-GB",
                "timePreference": "default",
                "monogram": (first[:1] + last[:1]).upper() or email[:2].upper(),
            }
            return ulid

    def add_building(self, name: str, time_zone: str = "Europe/London") -> str:
        """A building; returns its ULID."""
        with self._lock:
            ulid = self._ulid()
            self.buildings[ulid] = {
                "@id": f"{PREFIX}/buildings/{ulid}",
                "@type": "Building",
                "id": ulid,
                "name": name,
                "timeZone": time_zone,
                "countryCode": "GB",
            }
            return ulid

    def add_space(self, name: str, *, building: str, floor: str | None = "Floor 1", type: str = "desk") -> str:
        """A space of `type` (desk, room, …) in `building` on `floor`; returns its ULID."""
        with self._lock:
            ulid = self._ulid()
            floor_id = self.floors.setdefault((building, floor or ""), self._ulid())
            self.spaces[ulid] = {
                "@id": f"{PREFIX}/spaces/{ulid}",
                "@type": "Space",
                "id": ulid,
                "name": name,
                "type": type,
                "floor": {"@id": f"{PREFIX}/floors/{floor_id}", "@type": "Floor", "id": floor_id, "name": floor}
                if floor
                else None,
                "neighborhood": None,
                "photo": None,
            }
            self.space_building[ulid] = building
            return ulid

    def add_booking(
        self,
        user: str,
        space: str | None,
        start: datetime,
        end: datetime,
        *,
        building: str | None = None,
        status: str = "booked",
    ) -> str:
        """A booking of `space` (or, with no space, an onsite pass for `building`); returns its ULID."""
        with self._lock:
            ulid = self._ulid()
            kind = str(self.spaces[space]["type"]) if space else "onsite"
            where = self.space_building[space] if space else building
            assert where is not None, "an onsite booking needs its building"
            self.bookings[ulid] = Booking(ulid, user, space, where, start, end, kind, status, self._tick())
            return ulid

    def change_booking(self, ulid: str, **changes: Any) -> None:
        """Change a booking's attributes (start, end, space, status) as an edit in Kadence would."""
        with self._lock:
            booking = self.bookings[ulid]
            for name, value in changes.items():
                setattr(booking, name, value)
            booking.updated = self._tick()

    def cancel_booking(self, ulid: str, reason: str = "byUser") -> None:
        """Cancel a booking: still listed, with status cancelled and a reason."""
        self.change_booking(ulid, status="cancelled", cancellation_reason=reason)

    def check_in(self, ulid: str, at: datetime) -> None:
        """Check in (booked → checkedIn), as the check-in action or a door sensor would, at `at`."""
        self.change_booking(ulid, status="checkedIn", checked_in=at)

    def check_out(self, ulid: str, at: datetime) -> None:
        """Check out (checkedIn → checkedOut) at `at`."""
        self.change_booking(ulid, status="checkedOut", checked_out=at)

    def release(self, ulid: str, at: datetime) -> None:
        """Auto-release a booking nobody checked in to: noCheckIn, autoReleasedDate, reason autoSpaceRelease."""
        self.change_booking(ulid, status="noCheckIn", released=at, cancellation_reason="autoSpaceRelease")

    def complete(self, ulid: str) -> None:
        """The booking's end passed: completed (its check-in and check-out stay as they were)."""
        self.change_booking(ulid, status="completed")

    def override(self, kind: str, ulid: str, **fields: Any) -> None:
        """Put raw JSON fields over a user or booking (malformed payloads); `kind` is users or bookings."""
        with self._lock:
            if kind == "bookings":
                self.bookings[ulid].fields.update(fields)
            else:
                self.users[ulid].update(fields)

    def throttle(self, count: int, retry_after: str | None = "1", status: int = 429) -> None:
        """Answer the next `count` API requests with `status` and `Retry-After` (as sent)."""
        with self._lock:
            self._faults.extend((status, retry_after) for _ in range(count))

    def fail(self, count: int, status: int = 503) -> None:
        """Answer the next `count` API requests with `status` and no Retry-After."""
        self.throttle(count, None, status)

    def answer_next(self, path: str, body: Any, status: int = 200) -> None:
        """Answer the next API request to `path` with `body` as it is (malformed envelopes)."""
        with self._lock:
            self._canned.setdefault(path, deque()).append((status, body))

    def expire_tokens(self) -> None:
        """End every token issued so far (as their expiry would)."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def count(self, path: str, method: str = "GET") -> int:
        """How many requests went to `path` exactly."""
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    # --- rendering -------------------------------------------------------------------------------

    def time(self, value: datetime) -> str:
        """A date-time as the API answers it: ISO 8601 in the fake's offset."""
        return value.astimezone(timezone(self.offset)).isoformat()

    def booking_json(self, booking: Booking) -> dict[str, Any]:
        space = dict(self.spaces[booking.space]) if booking.space else None
        body: dict[str, Any] = {
            "@id": f"{PREFIX}/bookings/{booking.ulid}",
            "@type": "Booking",
            "id": booking.ulid,
            "createdUserId": f"{PREFIX}/users/{booking.user}",
            "userId": f"{PREFIX}/users/{booking.user}",
            "space": space,
            "startDate": self.time(booking.start),
            "endDate": self.time(booking.end),
            "createdAt": self.time(datetime(2024, 1, 1, tzinfo=UTC)),
            "updatedAt": self.time(booking.updated),
            "checkedInUserId": f"{PREFIX}/users/{booking.user}" if booking.checked_in else None,
            "checkedInDate": self.time(booking.checked_in) if booking.checked_in else None,
            "checkedInSource": "web" if booking.checked_in else None,
            "checkedOutUser": f"{PREFIX}/users/{booking.user}" if booking.checked_out else None,
            "checkedOutDate": self.time(booking.checked_out) if booking.checked_out else None,
            "checkOutSource": "web" if booking.checked_out else None,
            "autoReleasedDate": self.time(booking.released) if booking.released else None,
            "status": booking.status,
            "type": booking.type,
            "cancellationReason": booking.cancellation_reason,
            "cancelledDate": self.time(booking.updated) if booking.status == "cancelled" else None,
            "permanent": False,
            "recurringBooking": False,
            "source": "web",
            "title": None,
            "building": {"@id": f"{PREFIX}/buildings/{booking.building}", "@type": "Building"},
        }
        body.update(booking.fields)
        return body


def _hydra_error(status: int, description: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "@context": "/contexts/Error",
        "@type": "hydra:Error",
        "hydra:title": "An error occurred",
        "hydra:description": description,
    }


def _parse_filter(value: str) -> datetime | None:
    """A filter date-time in the documented form (UTC, no offset); None for anything else."""
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")  # naive: UTC by the document's definition
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


def _matches(when: datetime, operator: str, bound: datetime) -> bool:
    return {
        "before": when <= bound,
        "strictly_before": when < bound,
        "after": when >= bound,
        "strictly_after": when > bound,
    }[operator]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the connector's client expects
    # One buffered write per response and no Nagle: otherwise headers and body leave as two segments
    # and delayed ACKs add ~40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeKadence:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        kind = "application/json" if self.path.startswith("/oauth2/") else "application/ld+json"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.fake
        form = {key: values[-1] for key, values in parse_qs(raw.decode()).items()} if method == "POST" else {}
        with fake._lock:
            fake.requests.append(Request(method, parts.path, query, form))
        if method == "POST" and parts.path == "/oauth2/token":
            self._send(*self._token(form))
            return
        header = self.headers.get("Authorization") or ""
        with fake._lock:
            expiry = fake.tokens.get(header.removeprefix("Bearer "))
        if expiry is None or expiry <= time.monotonic() or fake.refuse_tokens:
            message = "JWT Token not found" if expiry is None else "Invalid JWT Token"
            self._send(401, {"code": 401, "message": message})
            return
        for listener in list(fake.listeners):
            listener(fake.requests[-1])
        with fake._lock:
            fault = fake._faults.popleft() if fake._faults else None
            canned = fake._canned.get(parts.path)
            answer = canned.popleft() if canned else None
        if answer is not None:
            self._send(*answer)
            return
        if fault is not None:
            status, retry_after = fault
            self._send(
                *_hydra_error(status, "Too Many Requests"), {"Retry-After": retry_after} if retry_after else None
            )
            return
        if method != "GET" or not parts.path.startswith(PREFIX + "/"):
            self._send(*_hydra_error(404, f'No route found for "{method} {parts.path}"'))
            return
        with fake._lock:
            self._send(*self._api(parts.path.removeprefix(PREFIX + "/").split("/"), query))

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        fake = self.fake
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "Only client_credentials."}
        if form.get("client_id") != fake.client_id or form.get("client_secret") != fake.secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        if form.get("scope", "public") != "public":
            return 400, {"error": "invalid_scope", "error_description": "The requested scope is invalid."}
        token = secrets.token_urlsafe(16)
        with fake._lock:
            fake.tokens[token] = time.monotonic() + fake.token_lifetime
        return 200, {"token_type": "Bearer", "expires_in": fake.token_lifetime, "access_token": token}

    def _api(self, parts: list[str], query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        fake = self.fake
        resource = parts[0]
        if resource == "bookings":
            items = {ulid: fake.booking_json(booking) for ulid, booking in fake.bookings.items()}
        else:
            items = {"users": fake.users, "buildings": fake.buildings, "spaces": fake.spaces}.get(resource, {})
        if len(parts) == 2:
            found = items.get(parts[1])
            return (200, found) if found is not None else _hydra_error(404, "Not Found")
        if len(parts) != 1 or resource not in ("users", "buildings", "spaces", "bookings"):
            return _hydra_error(404, f'No route found for "GET {PREFIX}/{"/".join(parts)}"')
        try:
            members = self._filtered(resource, query)
        except ValueError as error:
            return _hydra_error(400, str(error))
        return self._page(resource, [items[ulid] for ulid in members], query)

    def _filtered(self, resource: str, query: dict[str, str]) -> list[str]:
        """The ULIDs of a collection the query's filters keep, in order; ValueError for a bad filter."""
        fake = self.fake
        if resource == "users":
            email = query.get("email")
            return [ulid for ulid, user in fake.users.items() if email in (None, user["email"])]
        if resource == "spaces":
            building = query.get("buildingId")
            return [ulid for ulid in fake.spaces if building in (None, fake.space_building[ulid])]
        if resource != "bookings":
            return list(fake.buildings)
        kept = list(fake.bookings.values())
        for name, value in query.items():
            edge, _, operator = name.partition("[")
            operator = operator.rstrip("]")
            if edge in ("startDateTime", "endDateTime"):
                bound = _parse_filter(value)
                if operator not in OPERATORS or bound is None:
                    raise ValueError(f"{name}: expected YYYY-MM-DDThh:mm:ss, got {value!r}")
                kept = [b for b in kept if _matches(b.start if edge == "startDateTime" else b.end, operator, bound)]
            elif name in ("status", "type", "spaceId"):
                kept = [b for b in kept if {"status": b.status, "type": b.type, "spaceId": b.space}[name] == value]
        if query.get("order[startDate]") in ("asc", "desc"):
            kept.sort(key=lambda b: (b.start, b.ulid), reverse=query["order[startDate]"] == "desc")
        return [b.ulid for b in kept]

    def _page(self, resource: str, members: list[Any], query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("itemsPerPage", "50" if resource == "bookings" else "30"))
        except ValueError:
            return _hydra_error(400, "page and itemsPerPage must be integers")
        if page < 1 or not (0 if resource == "bookings" else 1) <= size <= 500:
            return _hydra_error(400, "page must be >= 1 and itemsPerPage within [1 .. 500]")
        body: dict[str, Any] = {
            "@context": f"/v1/public/contexts/{resource}",
            "@id": f"{PREFIX}/{resource}",
            "@type": "hydra:Collection",
            "hydra:member": members[(page - 1) * size : page * size],
            "hydra:totalItems": len(members),
        }
        if self.fake.hydra_view:
            last = max(1, -(-len(members) // size)) if size else 1

            def link(number: int) -> str:
                return f"{PREFIX}/{resource}?" + urlencode({**query, "page": number})

            view = {"@id": link(page), "@type": "hydra:PartialCollectionView", "hydra:first": link(1)}
            view["hydra:last"] = link(last)
            if page < last:
                view["hydra:next"] = link(page + 1)
            body["hydra:view"] = view
        return 200, body

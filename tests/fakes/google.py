"""A fake Google: the OAuth token endpoint and the Admin SDK Directory API, over real HTTP on loopback.

It follows the real protocol closely enough for the real google-auth and google-api-python-client to
talk to it unchanged:

- `POST /token`: the JWT bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`). The
  assertion's RS256 signature is checked against the service account's public key, and `iss`, `aud`,
  `iat`/`exp`, `scope` and `sub` are checked as Google does: a scope the admin has not delegated gives
  401 `unauthorized_client`, a subject who is no user of the domain 400 `invalid_grant`.
- `admin/directory/v1/users` (customer, domain, maxResults ≤ 500, pageToken, showDeleted, projection),
  `groups` and `groups/{key}` (maxResults ≤ 200), `groups/{key}/members` (includeDerivedMembership),
  `users/watch` and `admin/directory_v1/channels/stop`, one user alone (`users/{userKey}`: id, primary
  address or alias; deleted users are 404), a user's groups (`groups?userKey=`: direct memberships,
  no customer needed) and `groups/{key}/hasMember/{memberKey}` (nested membership counts, as Google's
  does), with Google's response and error shapes; each
  checks the bearer token, its scopes and that the delegated subject is an admin.
- Watch channels get the `sync` message on opening and a notification per change made through the
  test API (POSTs with the X-Goog-* headers to the channel's address, from a delivery thread).
- The Calendar API v3 for every user's primary calendar (acting as the token's delegated subject):
  events list/get/insert/update/patch/delete/watch and channels/stop, with recurring events expanded,
  sync tokens, 410 on expired tokens and working-location rules (see `CalendarFakeMixin`); a test API
  to add, move, cancel and delete events and to expire sync tokens.
- Error injection (`fail`, `stall`), a request log, and a count of discovery-document requests (the
  connectors use the bundled documents, so it must stay 0).

Listings page by id (keyset), so that large directories page in O(page) per request.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import json
import queue
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from email.utils import format_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user"
USER_READONLY = USER_SCOPE + ".readonly"
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group"
GROUP_READONLY = GROUP_SCOPE + ".readonly"
MEMBER_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.member"
MEMBER_READONLY = MEMBER_SCOPE + ".readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google expects in the assertion, wherever the grant is posted (google-auth always puts it).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
WATCH_EVENTS = ("add", "delete", "makeAdmin", "undelete", "update")

# Which scopes each route accepts (from the discovery document's `scopes` per method).
USERS_SCOPES = frozenset({USER_SCOPE, USER_READONLY})
GROUPS_SCOPES = frozenset({GROUP_SCOPE, GROUP_READONLY})
MEMBERS_SCOPES = frozenset({GROUP_SCOPE, GROUP_READONLY, MEMBER_SCOPE, MEMBER_READONLY})

UNAUTHORIZED_CLIENT = (
    "Client is unauthorized to retrieve access tokens using this method, "
    "or client not authorized for any of the scopes requested."
)


@cache
def _private_key() -> rsa.RSAPrivateKey:
    # One key per test session: generating RSA keys is the slow part.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def google_error(status: int, message: str, reason: str, *, domain: str = "global", **extra: str) -> dict[str, Any]:
    """Google's JSON error body (the shape of the error_*.json samples)."""
    detail: dict[str, str] = {"domain": domain, "reason": reason, "message": message, **extra}
    return {"error": {"errors": [detail], "code": status, "message": message}}


def throttle_body(status: int, reason: str = "rateLimitExceeded") -> dict[str, Any]:
    """The 429 / 403 rate-limit body Google sends (usageLimits domain)."""
    return google_error(status, "Rate Limit Exceeded", reason, domain="usageLimits")


@dataclass
class Fault:
    """An injected answer for the next `times` matching API requests."""

    status: int
    times: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None  # only requests whose path starts with this
    method: str | None = None  # only requests with this method
    stall: float = 0.0  # sleep before answering (or instead of answering, for timeouts)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class Delivery:
    """One notification the fake posted to a channel's address."""

    channel_id: str
    state: str
    number: int
    status: int | None
    error: str | None = None


@dataclass
class _Token:
    subject: str | None
    scopes: frozenset[str]
    expires: float


# -- Calendar API v3 ------------------------------------------------------------------------------------

CALENDAR_FULL = "https://www.googleapis.com/auth/calendar"
CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
CALENDAR_EVENTS_OWNED = "https://www.googleapis.com/auth/calendar.events.owned"
CALENDAR_APP_CREATED = "https://www.googleapis.com/auth/calendar.app.created"
# Which scopes the event methods accept (from calendar.v3.json): writing needs one of these four ...
CALENDAR_WRITE_SCOPES = frozenset({CALENDAR_FULL, CALENDAR_EVENTS, CALENDAR_EVENTS_OWNED, CALENDAR_APP_CREATED})
# ... reading and watching accept the read-only ones too.
CALENDAR_READ_SCOPES = CALENDAR_WRITE_SCOPES | {
    CALENDAR_FULL + ".readonly",
    CALENDAR_EVENTS + ".readonly",
    CALENDAR_EVENTS_OWNED + ".readonly",
    CALENDAR_EVENTS + ".freebusy",
    CALENDAR_EVENTS + ".public.readonly",
}
# Parameters Google refuses beside a syncToken (the events.list reference).
SYNC_TOKEN_RESTRICTIONS = (
    *("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty"),
    *("timeMin", "timeMax", "updatedMin"),
)
EXPANSION_LIMIT = 730  # instances per series, as a bound for open-ended rules
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def sync_token_gone_body(reason: str = "fullSyncRequired") -> dict[str, Any]:
    """Google's 410 body for a sync token it no longer honours (the errors guide's samples)."""
    if reason == "updatedMinTooLongAgo":
        message = "The requested minimum modification time lies too far in the past."
        return google_error(410, message, reason, domain="calendar", locationType="parameter", location="updatedMin")
    message = "Sync token is no longer valid, a full sync is required."
    return google_error(410, message, reason, domain="calendar", locationType="parameter", location="syncToken")


@dataclass
class FakeCalendar:
    """One person's primary calendar: stored items (single events, recurring series, and instance
    exceptions keyed `<series id>_<original start>`), and a change log that sync tokens point into."""

    owner: str
    time_zone: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (position, item id), in order
    position: int = 0
    generation: int = 0  # bumped to make every token issued so far answer 410
    gone_reason: str = "fullSyncRequired"
    working_location: bool = True  # the admin turned working locations on for this user

    def live(self) -> list[dict[str, Any]]:
        """Stored items that are not cancelled (series masters, single events, moved instances)."""
        return [item for item in self.items.values() if item.get("status") != "cancelled"]


class CalendarFakeMixin:
    """The Calendar API v3 part of FakeGoogle: `calendar/v3/calendars/primary/events` (list, get, insert,
    update, patch, delete, watch) and `calendar/v3/channels/stop`, acting for the token's subject.

    Supported: single and all-day events; `singleEvents` expansion of FREQ=DAILY/WEEKLY rules with
    INTERVAL, COUNT, UNTIL and BYDAY, EXDATE, and per-instance exceptions (moved or cancelled);
    timeMin/timeMax (exclusive, as Google's), keyset paging by id (maxResults ≤ 2,500), sync tokens
    (a position in the calendar's change log; incremental answers include cancelled items, and with
    singleEvents a changed series' instances), expired tokens (410 with Google's body),
    privateExtendedProperty filters, status events (workingLocation, outOfOffice) with the guide's
    rules, and watch channels that get `sync` on opening and `exists` after each change. Not
    supported: monthly/yearly rules, RDATE, orderBy, q, iCalUID, updatedMin, attendees' calendars.
    """

    # Provided by FakeGoogle.
    lock: threading.RLock
    users: dict[str, dict[str, Any]]
    tokens: dict[str, _Token]
    channels: dict[str, dict[str, Any]]
    _ids: Any

    def _init_calendars(self, time_zone: str) -> None:
        self.calendars: dict[str, FakeCalendar] = {}
        self.calendar_time_zone = time_zone

    # -- test API --------------------------------------------------------------------------------------

    def calendar(self, email: str) -> FakeCalendar:
        """The primary calendar of `email` (made on first use, in the fake's default zone)."""
        with self.lock:
            if email not in self.calendars:
                self.calendars[email] = FakeCalendar(email, self.calendar_time_zone)
            return self.calendars[email]

    def add_event(
        self,
        email: str,
        start: datetime | date,
        end: datetime | date,
        summary: str = "",
        *,
        time_zone: str | None = None,
        **fields: Any,
    ) -> str:
        """Create an event (aware datetimes: timed; dates: all day); `fields` are more resource fields."""
        calendar = self.calendar(email)
        zone = time_zone or calendar.time_zone
        body = {"summary": summary, "start": _time_field(start, zone), "end": _time_field(end, zone), **fields}
        return str(self.insert_event(email, body)["id"])

    def insert_event(self, email: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an event from a resource body as events.insert would (raises ValueError where it answers 400)."""
        with self.lock:
            status, _, answer = self._insert_event(self.calendar(email), body)
        if status != 200:
            raise ValueError(answer["error"]["message"])
        return dict(answer)

    def update_event(self, email: str, event_id: str, **fields: Any) -> None:
        """Change fields of a stored event (`start`/`end` may be datetimes or dates)."""
        calendar = self.calendar(email)
        with self.lock:
            item = calendar.items[event_id]
            zone = (item.get("start") or {}).get("timeZone") or calendar.time_zone
            for key in ("start", "end"):
                if isinstance(fields.get(key), date):
                    fields[key] = _time_field(fields[key], zone)
            self._store(calendar, {**item, **fields})

    def delete_event(self, email: str, event_id: str) -> None:
        """Delete an event (kept as cancelled, so that sync tokens report it)."""
        calendar = self.calendar(email)
        with self.lock:
            self._store(calendar, {**calendar.items[event_id], "status": "cancelled"})

    def move_instance(
        self, email: str, series_id: str, original_start: datetime | date, start: datetime, end: datetime, **fields: Any
    ) -> str:
        """Move one instance of a recurring event (an exception); returns the instance id."""
        return self._except(email, series_id, original_start, {"start": start, "end": end, **fields})

    def cancel_instance(self, email: str, series_id: str, original_start: datetime | date) -> str:
        """Cancel one instance of a recurring event; returns the instance id."""
        return self._except(email, series_id, original_start, {"status": "cancelled"})

    def expire_sync_tokens(self, email: str, reason: str = "fullSyncRequired") -> None:
        """Every sync token issued so far for this calendar now answers 410 (`reason` in the body)."""
        calendar = self.calendar(email)
        with self.lock:
            calendar.generation += 1
            calendar.gone_reason = reason

    def _except(self, email: str, series_id: str, original_start: datetime | date, changes: dict[str, Any]) -> str:
        calendar = self.calendar(email)
        with self.lock:
            series = calendar.items[series_id]
            zone = ZoneInfo(series["start"].get("timeZone") or calendar.time_zone)
            instance = _instance(series, _as_local(original_start, zone), zone)
            for key in ("start", "end"):
                if isinstance(changes.get(key), date):
                    changes[key] = _time_field(changes[key], str(zone))
            if instance["id"] in calendar.items:
                instance = calendar.items[instance["id"]]
            self._store(calendar, {**instance, **changes})
            return str(instance["id"])

    # -- request handling ------------------------------------------------------------------------------

    def _calendar_api(
        self, method: str, path: str, query: dict[str, str], body: Any, token: _Token | None
    ) -> tuple[int, dict[str, str], Any]:
        parts = path.split("/")  # calendar v3 calendars primary events [id | watch]
        write = method in ("POST", "PUT", "PATCH", "DELETE") and path != "calendar/v3/channels/stop"
        if parts[-1] == "watch":
            write = False
        needed = CALENDAR_WRITE_SCOPES if write else CALENDAR_READ_SCOPES
        if token is None or token.expires < time.time():
            return 401, {}, _unauthenticated()
        if not token.scopes & needed:
            return (
                403,
                {},
                google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions"),
            )
        if path == "calendar/v3/channels/stop" and method == "POST":
            return self._stop(body)  # type: ignore[attr-defined,no-any-return]
        owner = token.subject
        if owner is None or not any(u["primaryEmail"] == owner for u in self.users.values()):
            return 404, {}, google_error(404, "Not Found", "notFound")
        if len(parts) < 5 or parts[2] != "calendars" or parts[3] not in ("primary", owner) or parts[4] != "events":
            return 404, {}, google_error(404, "Not Found", "notFound")
        calendar = self.calendar(owner)
        if len(parts) == 5:
            if method == "GET":
                return self._list_events(calendar, query)
            if method == "POST":
                return self._insert_event(calendar, body)
        elif len(parts) == 6 and parts[5] == "watch" and method == "POST":
            return self._watch_calendar(calendar, body)
        elif len(parts) == 6:
            return self._one_event(calendar, method, parts[5], body)
        return 404, {}, google_error(404, "Not Found", "notFound")

    def _list_events(self, calendar: FakeCalendar, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        sync_token = query.get("syncToken")
        single = query.get("singleEvents") == "true"
        if sync_token:
            if any(name in query for name in SYNC_TOKEN_RESTRICTIONS) or query.get("showDeleted") == "false":
                message = "Sync token cannot be used with other request restrictions."
                return 400, {}, google_error(400, message, "invalid")
            try:
                owner, generation, position = json.loads(_b64decode(sync_token))
            except ValueError:
                return 400, {}, google_error(400, "Invalid sync token value.", "invalid")
            if owner != calendar.owner or generation != calendar.generation:
                return 410, {}, sync_token_gone_body(calendar.gone_reason)
            changed = {item_id for at, item_id in calendar.log if at > position}
            items = self._changed_items(calendar, changed, single)
        else:
            shown = query.get("showDeleted") == "true"
            low, high = _query_time(query.get("timeMin")), _query_time(query.get("timeMax"))
            items = self._all_items(calendar, single, low, high)
            items = [i for i in items if shown or i.get("status") != "cancelled"]
            items = [i for i in items if _overlaps(i, calendar.time_zone, low, high)]
        wanted = query.get("privateExtendedProperty")
        if wanted:
            name, _, value = wanted.partition("=")
            items = [i for i in items if ((i.get("extendedProperties") or {}).get("private") or {}).get(name) == value]
        items.sort(key=lambda item: str(item["id"]))
        limit = _limit(query, default=250, most=2500)
        page_token = query.get("pageToken")
        after, position = json.loads(_b64decode(page_token)) if page_token else ("", calendar.position)
        page = [item for item in items if str(item["id"]) > after][:limit]
        more = len([item for item in items if str(item["id"]) > after]) > limit
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": _etag(calendar.owner, calendar.position),
            "summary": calendar.owner,
            "description": "",
            "updated": _rfc3339(time.time()),
            "timeZone": calendar.time_zone,
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 10}],
            "items": page,
        }
        if more:
            answer["nextPageToken"] = _b64encode(json.dumps([page[-1]["id"], position]))
        elif not wanted:
            # The token names where the listing started: changes made while paging come again next time.
            answer["nextSyncToken"] = _b64encode(json.dumps([calendar.owner, calendar.generation, position]))
        return 200, {}, answer

    def _all_items(
        self, calendar: FakeCalendar, single: bool, low: datetime | None, high: datetime | None
    ) -> list[dict[str, Any]]:
        if not single:
            return [dict(item) for item in calendar.items.values()]
        items: list[dict[str, Any]] = []
        for item in calendar.items.values():
            if item.get("recurrence"):
                items.extend(_expand(item, calendar, high))
            elif not item.get("recurringEventId"):
                items.append(dict(item))
        return items

    def _changed_items(self, calendar: FakeCalendar, changed: set[str], single: bool) -> list[dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        for item_id in changed:
            item = calendar.items[item_id]
            if single and item.get("recurrence"):
                # A changed series comes as its instances; a deleted one as cancelled instances only.
                for instance in _expand(item, calendar, None, with_cancelled=True):
                    items[instance["id"]] = instance
            else:
                items[item_id] = dict(item)
        return list(items.values())

    def _insert_event(self, calendar: FakeCalendar, body: Any) -> tuple[int, dict[str, str], Any]:
        if not isinstance(body, dict):
            return 400, {}, google_error(400, "Required", "required")
        refused = self._refuse_event(calendar, body)
        if refused is not None:
            return refused
        event_id = str(body.get("id") or secrets.token_hex(13))
        if not (5 <= len(event_id) <= 1024 and set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")):
            return 400, {}, google_error(400, "Invalid resource id value.", "invalid")
        if event_id in calendar.items:
            return 409, {}, google_error(409, "The requested identifier already exists.", "duplicate")
        now = _rfc3339(time.time())
        item = {
            "kind": "calendar#event",
            **body,
            "id": event_id,
            "status": body.get("status") or "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "creator": {"email": calendar.owner, "self": True},
            "organizer": {"email": calendar.owner, "self": True},
            "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
            "sequence": 0,
            "reminders": body.get("reminders") or {"useDefault": True},
            "eventType": body.get("eventType") or "default",
        }
        return 200, {}, self._store(calendar, item)

    def _one_event(
        self, calendar: FakeCalendar, method: str, event_id: str, body: Any
    ) -> tuple[int, dict[str, str], Any]:
        item = calendar.items.get(event_id)
        if item is None and method == "GET":
            found = next((i for i in self._all_items(calendar, True, None, None) if i["id"] == event_id), None)
            return (200, {}, found) if found else (404, {}, google_error(404, "Not Found", "notFound"))
        if item is None:
            return 404, {}, google_error(404, "Not Found", "notFound")
        if method == "GET":
            return 200, {}, item
        deleted = item.get("status") == "cancelled"
        if method == "DELETE":
            if deleted:
                return 410, {}, google_error(410, "Resource has been deleted", "deleted")
            self._store(calendar, {**item, "status": "cancelled"})
            return 204, {}, None
        if not isinstance(body, dict):
            return 400, {}, google_error(400, "Required", "required")
        if deleted and body.get("status") != "confirmed":  # setting it confirmed again brings it back
            return 410, {}, google_error(410, "Resource has been deleted", "deleted")
        kept = {k: item[k] for k in ("kind", "id", "htmlLink", "created", "creator", "organizer", "iCalUID")}
        for key in ("recurringEventId", "originalStartTime", "sequence"):
            if key in item:
                kept[key] = item[key]
        merged = {**item, **body, **kept} if method == "PATCH" else {**body, **kept}
        merged["eventType"] = body.get("eventType") or item.get("eventType") or "default"
        if merged["eventType"] != item.get("eventType", "default"):
            return 400, {}, google_error(400, "The event type cannot be changed.", "eventTypeRestriction")
        merged["status"] = merged.get("status") or "confirmed"
        refused = self._refuse_event(calendar, merged)
        if refused is not None:
            return refused
        merged["sequence"] = int(item.get("sequence", 0)) + 1
        return 200, {}, self._store(calendar, merged)

    def _refuse_event(self, calendar: FakeCalendar, body: dict[str, Any]) -> tuple[int, dict[str, str], Any] | None:
        start, end = body.get("start") or {}, body.get("end") or {}
        if not (start.get("dateTime") or start.get("date")):
            return 400, {}, google_error(400, "Missing start time.", "required")
        if not (end.get("dateTime") or end.get("date")):
            return 400, {}, google_error(400, "Missing end time.", "required")
        begins, ends = _bounds(body, calendar.time_zone)
        if ends <= begins:
            return 400, {}, google_error(400, "The specified time range is empty.", "timeRangeEmpty")
        kind = body.get("eventType") or "default"
        if kind == "workingLocation":
            # The calendar-status guide's rules; a user without working locations gets a 400 (our wording).
            if not calendar.working_location:
                return 400, {}, google_error(400, "Working locations are not enabled for this user.", "invalid")
            properties = body.get("workingLocationProperties") or {}
            if properties.get("type") not in ("homeOffice", "officeLocation", "customLocation"):
                return 400, {}, google_error(400, "Invalid working location properties.", "invalid")
            if body.get("visibility") != "public" or body.get("transparency") != "transparent":
                message = "Working location events must be public and transparent."
                return 400, {}, google_error(400, message, "invalid")
            if start.get("date") and ends - begins != timedelta(days=1):
                message = "All-day working location events must span exactly one day."
                return 400, {}, google_error(400, message, "invalid")
        if kind in ("outOfOffice", "focusTime"):
            if start.get("date"):
                return 400, {}, google_error(400, f"{kind} events cannot be all-day events.", "invalid")
            if body.get("transparency", "opaque") != "opaque":
                return 400, {}, google_error(400, f"{kind} events must be opaque.", "invalid")
        return None

    def _store(self, calendar: FakeCalendar, item: dict[str, Any]) -> dict[str, Any]:
        calendar.position += 1
        item["etag"] = '"' + str(3_400_000_000_000_000 + next(self._ids)) + '"'
        item["updated"] = _rfc3339(time.time())
        calendar.items[item["id"]] = item
        calendar.log.append((calendar.position, item["id"]))
        now = time.time() * 1000
        for channel in list(self.channels.values()):
            if channel.get("calendar") == calendar.owner and channel["expires"] > now:
                self._enqueue(channel, "exists", next(self._messages), b"")  # type: ignore[attr-defined]
        return item

    def _watch_calendar(self, calendar: FakeCalendar, body: Any) -> tuple[int, dict[str, str], Any]:
        if (refused := self._refuse_channel(body)) is not None:  # type: ignore[attr-defined]
            return refused  # type: ignore[no-any-return]
        resource = f"calendar/v3/calendars/{quote(calendar.owner)}/events"
        uri = "https://www.googleapis.com/" + resource  # Google names the calendar, not "primary"
        return self._open_channel(body, resource, uri, event=None, calendar=calendar.owner)  # type: ignore[attr-defined,no-any-return]


def _unauthenticated() -> dict[str, Any]:
    return google_error(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential.",
        "authError",
        location="Authorization",
        locationType="header",
    )


def _time_field(when: datetime | date, zone: str) -> dict[str, str]:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("use aware datetimes")
        return {"dateTime": when.astimezone(ZoneInfo(zone)).isoformat(), "timeZone": zone}
    return {"date": when.isoformat()}


def _bounds(item: dict[str, Any], calendar_zone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo((item.get("start") or {}).get("timeZone") or calendar_zone)

    def one(part: dict[str, Any]) -> datetime:
        if part.get("dateTime"):
            return datetime.fromisoformat(part["dateTime"]).astimezone(UTC)
        return datetime.combine(date.fromisoformat(part["date"]), dt_time(), zone).astimezone(UTC)

    return one(item.get("start") or {}), one(item.get("end") or {})


def _overlaps(item: dict[str, Any], calendar_zone: str, low: datetime | None, high: datetime | None) -> bool:
    if item.get("status") == "cancelled" and not item.get("start"):
        return True  # a deleted event has no times left to filter by
    begins, ends = _bounds(item, calendar_zone)
    return (low is None or ends > low) and (high is None or begins < high)


def _query_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def _as_local(when: datetime | date, zone: ZoneInfo) -> datetime | date:
    return when.astimezone(zone) if isinstance(when, datetime) else when


def _instance(series: dict[str, Any], original: datetime | date, zone: ZoneInfo) -> dict[str, Any]:
    """The instance of `series` that starts at `original` (a local datetime, or a date for all-day series)."""
    begins, ends = _bounds(series, str(zone))
    instance = {k: v for k, v in series.items() if k != "recurrence"}
    instance["recurringEventId"] = series["id"]
    if isinstance(original, datetime):
        instance["id"] = f"{series['id']}_{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        field_ = {"dateTime": original.isoformat(), "timeZone": str(zone)}
        instance["start"], instance["originalStartTime"] = field_, dict(field_)
        finish = (original.astimezone(UTC) + (ends - begins)).astimezone(zone)
        instance["end"] = {"dateTime": finish.isoformat(), "timeZone": str(zone)}
    else:
        instance["id"] = f"{series['id']}_{original:%Y%m%d}"
        instance["start"] = instance["originalStartTime"] = {"date": original.isoformat()}
        days = (ends - begins).days or 1
        instance["end"] = {"date": (original + timedelta(days=days)).isoformat()}
    return instance


def _expand(
    series: dict[str, Any], calendar: FakeCalendar, high: datetime | None, *, with_cancelled: bool = False
) -> list[dict[str, Any]]:
    """The instances of a series up to `high` (or the rule's end), exceptions applied."""
    zone = ZoneInfo(series["start"].get("timeZone") or calendar.time_zone)
    cancelled = series.get("status") == "cancelled"
    instances: list[dict[str, Any]] = []
    for original in _occurrences(series, zone, high):
        instance = _instance(series, original, zone)
        exception = calendar.items.get(instance["id"])
        if exception is not None:
            instance = dict(exception)
        if cancelled:
            keep = ("kind", "id", "etag", "recurringEventId", "originalStartTime")
            instance = {**{k: instance[k] for k in keep}, "status": "cancelled"}
        if instance.get("status") == "cancelled" and not with_cancelled:
            continue
        instances.append(instance)
    return instances


def _occurrences(series: dict[str, Any], zone: ZoneInfo, high: datetime | None) -> list[datetime | date]:
    start = series["start"]
    all_day = "date" in start and "dateTime" not in start
    first: datetime = (
        datetime.combine(date.fromisoformat(start["date"]), dt_time())
        if all_day
        else datetime.fromisoformat(start["dateTime"]).astimezone(zone).replace(tzinfo=None)
    )
    rule: dict[str, str] = {}
    excluded: set[datetime] = set()
    for line in series.get("recurrence") or ():
        name, _, value = line.partition(":")
        if name == "RRULE":
            rule = dict(part.split("=", 1) for part in value.split(";"))
        elif name.startswith("EXDATE"):
            excluded.update(_exdate(name, item, zone) for item in value.split(","))
    freq = rule.get("FREQ", "WEEKLY")
    if freq not in ("DAILY", "WEEKLY"):
        raise NotImplementedError(f"the fake expands DAILY and WEEKLY rules only, not {freq}")
    interval = int(rule.get("INTERVAL", "1"))
    count = int(rule["COUNT"]) if "COUNT" in rule else None
    until = _until(rule["UNTIL"], zone) if "UNTIL" in rule else None
    days = sorted(WEEKDAYS.index(d[-2:]) for d in rule.get("BYDAY", WEEKDAYS[first.weekday()]).split(","))
    step = timedelta(days=interval) if freq == "DAILY" else timedelta(weeks=interval)
    week = first - timedelta(days=first.weekday() if freq == "WEEKLY" else 0)
    found: list[datetime | date] = []
    produced = 0
    while produced < EXPANSION_LIMIT:
        candidates = [week] if freq == "DAILY" else [week + timedelta(days=d) for d in days]
        for local in candidates:
            if local < first:
                continue
            aware = local.replace(tzinfo=zone)
            if (until is not None and local > until) or (count is not None and produced >= count):
                return found
            if high is not None and aware >= high:
                return found
            produced += 1
            if local not in excluded:
                found.append(local.date() if all_day else aware)
        week += step
    return found


def _exdate(name: str, value: str, zone: ZoneInfo) -> datetime:
    if "VALUE=DATE" in name and "T" not in value:
        return datetime.strptime(value, "%Y%m%d")
    if value.endswith("Z"):
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    return datetime.strptime(value, "%Y%m%dT%H%M%S")  # TZID= the series' zone (the only one we support)


def _until(value: str, zone: ZoneInfo) -> datetime:
    if "T" not in value:
        return datetime.strptime(value, "%Y%m%d") + timedelta(days=1) - timedelta(seconds=1)
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _b64encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class FakeGoogle(CalendarFakeMixin):
    """Google's token endpoint and Directory API for one Workspace customer, on 127.0.0.1.

    Use as a context manager. `service_account_info()` is a key whose `token_uri` points here;
    `base_url` is the API root to give the connector.
    """

    def __init__(
        self,
        *,
        domain: str = "example.com",
        customer_id: str = "C03az79cb",
        admin_email: str | None = None,
        project: str = "deskbridge-test",
        token_ttl: int = 3600,
        channel_ttl: int = 6 * 3600,
        time_zone: str = "Europe/Berlin",
    ) -> None:
        """An empty directory with one super admin (`admin_email`, default admin@<domain>); calendars in `time_zone`."""
        self.domain = domain
        self.customer_id = customer_id
        self.project = project
        self.token_ttl = token_ttl
        self.channel_ttl = channel_ttl
        self.client_email = f"deskbridge@{project}.iam.gserviceaccount.com"
        self.client_id = "104857600000000000042"
        self.private_key_id = hashlib.sha1(self.client_email.encode()).hexdigest()
        self.public_key = _private_key().public_key()
        # What a super admin authorised for this client ID under domain-wide delegation.
        self.delegated_scopes: set[str] = {USER_READONLY, GROUP_READONLY}
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.user_order: list[str] = []  # sorted ids, for keyset paging
        self.deleted: dict[str, dict[str, Any]] = {}
        self.deleted_order: list[str] = []
        self.groups: dict[str, dict[str, Any]] = {}
        self.group_order: list[str] = []
        self.members: dict[str, dict[str, str]] = {}  # group id -> member id -> type
        self.channels: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, _Token] = {}
        self.grants: list[dict[str, Any]] = []  # the claims of every assertion that got a token
        self.token_requests = 0
        self.discovery_requests = 0
        self.requests: list[LoggedRequest] = []
        self.deliveries: list[Delivery] = []
        self._faults: deque[Fault] = deque()
        self._ids = itertools.count(1)
        self._messages = itertools.count(2)  # 1 is every channel's sync message
        self._outbox: queue.Queue[tuple[str, dict[str, str], bytes, str, str, int] | None] = queue.Queue()
        self._delivered = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._init_calendars(time_zone)
        self.admin_email = admin_email or f"admin@{domain}"
        self.admin_id = self.add_user(self.admin_email, "Ada", "Admin", admin=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeGoogle:
        """Listen on a free loopback port and start the delivery thread."""
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-google", daemon=True)
        deliver = threading.Thread(target=self._deliver_loop, name="fake-google-push", daemon=True)
        self._threads = [serve, deliver]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API root, with a trailing slash (what the connector's base_url takes)."""
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def token_uri(self) -> str:
        """Where the JWT bearer grant goes."""
        return self.base_url + "token"

    def service_account_info(self) -> dict[str, str]:
        """A service-account key as Google issues it, signed with the session's test key, token_uri here."""
        pem = _private_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": self.private_key_id,
            "private_key": pem.decode(),
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + quote(self.client_email),
            "universe_domain": "googleapis.com",
        }

    def rotate_key(self) -> None:
        """Google now only knows another key: assertions signed with the issued one fail (invalid_grant)."""
        self.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()

    # -- test API: users ----------------------------------------------------------------------------

    def _new_user_id(self) -> str:
        # Google user ids are 21-digit numbers; same length keeps string order = numeric order.
        return str(100_000_000_000_000_000_000 + next(self._ids))

    def add_user(
        self,
        email: str,
        given: str = "",
        family: str = "",
        *,
        org_unit: str = "/",
        suspended: bool = False,
        archived: bool = False,
        admin: bool = False,
        user_id: str | None = None,
        notify: bool = True,
    ) -> str:
        """Create a user (an `add` notification to watching channels); returns its id."""
        with self.lock:
            uid = user_id or self._new_user_id()
            self.users[uid] = {
                "kind": "admin#directory#user",
                "id": uid,
                "etag": _etag(uid, 0),
                "primaryEmail": email,
                "name": {"givenName": given, "familyName": family, "fullName": f"{given} {family}".strip()},
                "isAdmin": admin,
                "isDelegatedAdmin": False,
                "lastLoginTime": "1970-01-01T00:00:00.000Z",
                "creationTime": _rfc3339(time.time()),
                "agreedToTerms": True,
                "suspended": suspended,
                "archived": archived,
                "changePasswordAtNextLogin": False,
                "ipWhitelisted": False,
                "emails": [{"address": email, "primary": True}],
                "customerId": self.customer_id,
                "orgUnitPath": org_unit,
                "isMailboxSetup": True,
                "includeInGlobalAddressList": True,
            }
            if suspended:
                self.users[uid]["suspensionReason"] = "ADMIN"
            if self.user_order and uid < self.user_order[-1]:
                bisect.insort(self.user_order, uid)
            else:
                self.user_order.append(uid)
        if notify:
            self.notify("add", uid)
        return uid

    def add_users(self, count: int, *, prefix: str = "user") -> list[str]:
        """Create many plain users quickly (no notifications); returns their ids in order."""
        return [self.add_user(f"{prefix}{n}@{self.domain}", "User", str(n), notify=False) for n in range(1, count + 1)]

    def update_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        given: str | None = None,
        family: str | None = None,
        org_unit: str | None = None,
        suspended: bool | None = None,
        archived: bool | None = None,
    ) -> None:
        """Change a user (an `update` notification)."""
        with self.lock:
            user = self.users[user_id]
            if email is not None:
                user["primaryEmail"] = email
                user["emails"] = [{"address": email, "primary": True}]
            name = user["name"]
            if given is not None:
                name["givenName"] = given
            if family is not None:
                name["familyName"] = family
            name["fullName"] = f"{name['givenName']} {name['familyName']}".strip()
            if org_unit is not None:
                user["orgUnitPath"] = org_unit
            if suspended is not None:
                user["suspended"] = suspended
                if suspended:
                    user["suspensionReason"] = "ADMIN"
                else:
                    user.pop("suspensionReason", None)
            if archived is not None:
                user["archived"] = archived
                if archived:
                    user["archivalTime"] = _rfc3339(time.time())
            user["etag"] = _etag(user_id, next(self._ids))
        self.notify("update", user_id)

    def suspend_user(self, user_id: str, suspended: bool = True) -> None:
        """Suspend (or unsuspend) a user."""
        self.update_user(user_id, suspended=suspended)

    def archive_user(self, user_id: str, archived: bool = True) -> None:
        """Archive (or unarchive) a user."""
        self.update_user(user_id, archived=archived)

    def make_admin(self, user_id: str, admin: bool = True) -> None:
        """Grant or revoke super admin (a `makeAdmin` notification)."""
        with self.lock:
            self.users[user_id]["isAdmin"] = admin
        self.notify("makeAdmin", user_id)

    def delete_user(self, user_id: str) -> None:
        """Delete a user: listed with showDeleted=true from now on, gone from its groups (a `delete`)."""
        with self.lock:
            user = self.users.pop(user_id)
            self.user_order.remove(user_id)
            user["deletionTime"] = _rfc3339(time.time())
            self.deleted[user_id] = user
            bisect.insort(self.deleted_order, user_id)
            for members in self.members.values():
                members.pop(user_id, None)
        self.notify("delete", user_id, user)

    def undelete_user(self, user_id: str) -> None:
        """Restore a deleted user (an `undelete`)."""
        with self.lock:
            user = self.deleted.pop(user_id)
            self.deleted_order.remove(user_id)
            user.pop("deletionTime", None)
            self.users[user_id] = user
            bisect.insort(self.user_order, user_id)
        self.notify("undelete", user_id)

    # -- test API: groups ---------------------------------------------------------------------------

    def add_group(self, email: str, name: str | None = None, *, group_id: str | None = None) -> str:
        """Create a group; returns its id."""
        with self.lock:
            gid = group_id or f"0{next(self._ids):014x}"
            self.groups[gid] = {
                "kind": "admin#directory#group",
                "id": gid,
                "etag": _etag(gid, 0),
                "email": email,
                "name": name if name is not None else email.split("@")[0],
                "directMembersCount": "0",
                "description": "",
                "adminCreated": True,
                "nonEditableAliases": [],
            }
            self.members[gid] = {}
            bisect.insort(self.group_order, gid)
        return gid

    def add_members(self, group_id: str, member_ids: list[str] | tuple[str, ...], kind: str = "USER") -> None:
        """Add users (or, with kind="GROUP", nested groups) to a group."""
        with self.lock:
            for member_id in member_ids:
                self.members[group_id][member_id] = kind
            self.groups[group_id]["directMembersCount"] = str(len(self.members[group_id]))

    def remove_member(self, group_id: str, member_id: str) -> None:
        """Take a member out of a group."""
        with self.lock:
            del self.members[group_id][member_id]
            self.groups[group_id]["directMembersCount"] = str(len(self.members[group_id]))

    def delete_group(self, group_id: str) -> None:
        """Delete a group."""
        with self.lock:
            del self.groups[group_id]
            del self.members[group_id]
            self.group_order.remove(group_id)
            for members in self.members.values():
                members.pop(group_id, None)

    # -- test API: faults and channels --------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        reason: str | None = None,
        body: dict[str, Any] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` API requests (optionally only under `path`) with an error.

        429 and 403 default to Google's rate-limit bodies (403 with `reason`, default rateLimitExceeded);
        5xx to a backendError body.
        """
        if body is None:
            if status in (403, 429):
                body = throttle_body(status, reason or "rateLimitExceeded")
            elif status >= 500:
                body = google_error(status, "Backend Error", reason or "backendError")
            else:
                body = google_error(status, "Error", reason or "error")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self.lock:
            self._faults.append(Fault(status, times, body, headers, path))

    def stall(self, seconds: float, *, times: int = 1, path: str | None = None, method: str | None = None) -> None:
        """Hold the next `times` API requests for `seconds` before answering them normally."""
        with self.lock:
            self._faults.append(Fault(0, times, path=path, method=method, stall=seconds))

    def notify(self, event: str, user_id: str, user: dict[str, Any] | None = None) -> None:
        """Post a change notification to every live channel watching `event`."""
        with self.lock:
            user = user or self.users.get(user_id) or self.deleted.get(user_id) or {"id": user_id}
            body = {k: user[k] for k in ("kind", "id", "etag", "primaryEmail") if k in user}
            now = time.time() * 1000
            targets = [
                c
                for c in self.channels.values()
                if c.get("calendar") is None and c["event"] in (event, None) and c["expires"] > now
            ]
            for channel in targets:
                self._enqueue(channel, event, next(self._messages), json.dumps(body).encode())

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until at least `count` notifications were posted (or the timeout); returns them all."""
        deadline = time.monotonic() + timeout
        with self._delivered:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._delivered.wait(left)
            return list(self.deliveries)

    def _enqueue(self, channel: dict[str, Any], state: str, number: int, body: bytes) -> None:
        headers = {
            "X-Goog-Channel-ID": channel["id"],
            "X-Goog-Channel-Expiration": format_datetime(datetime.fromtimestamp(channel["expires"] / 1000, UTC), True),
            "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-URI": channel["resourceUri"],
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(number),
        }
        if channel.get("token"):
            headers["X-Goog-Channel-Token"] = channel["token"]
        if body:
            headers["Content-Type"] = "application/json; utf-8"
        self._outbox.put((channel["address"], headers, body, channel["id"], state, number))

    def _deliver_loop(self) -> None:
        # Plain HTTP to loopback receivers; no proxies, whatever the environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while (item := self._outbox.get()) is not None:
            address, headers, body, channel_id, state, number = item
            request = urllib.request.Request(address, data=body, headers=headers, method="POST")
            try:
                with opener.open(request, timeout=5) as answer:
                    delivery = Delivery(channel_id, state, number, answer.status)
            except urllib.error.HTTPError as error:
                delivery = Delivery(channel_id, state, number, error.code)
            except OSError as error:
                delivery = Delivery(channel_id, state, number, None, str(error))
            with self._delivered:
                self.deliveries.append(delivery)
                self._delivered.notify_all()

    # -- request handling ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        """Answer one request: (status, headers, JSON body or None)."""
        split = urlsplit(target)
        path = unquote(split.path).lstrip("/")
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body: Any = None
        if raw and headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
        with self.lock:
            self.requests.append(LoggedRequest(method, path, query, body))
        if "discovery" in path:
            with self.lock:
                self.discovery_requests += 1
            return 404, {}, google_error(404, "Not Found", "notFound")
        if path == "token" and method == "POST":
            with self.lock:
                self.token_requests += 1
                return self._token(parse_qs(raw.decode()))
        fault = self._take_fault(path, method)
        if fault is not None:
            if fault.stall:
                time.sleep(fault.stall)
            if fault.status:
                return fault.status, fault.headers, fault.body
        with self.lock:
            return self._api(method, path, query, body, headers.get("authorization", ""))

    def _take_fault(self, path: str, method: str = "GET") -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if (fault.path is None or path.startswith(fault.path)) and fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        def refuse(status: int, error: str, description: str) -> tuple[int, dict[str, str], Any]:
            return status, {}, {"error": error, "error_description": description}

        if form.get("grant_type", [""])[0] != JWT_BEARER:
            return refuse(400, "unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", [""])[0])
        assertion = form.get("assertion", [""])[0]
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(claims_b64))
            signature = _b64decode(signature_b64)
        except ValueError:
            return refuse(400, "invalid_grant", "Invalid JWT: not a JWT")
        if header.get("alg") != "RS256":
            return refuse(400, "invalid_grant", "Invalid JWT: unsupported algorithm")
        try:
            self.public_key.verify(
                signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return refuse(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != self.client_email:
            return refuse(401, "invalid_client", "The OAuth client was not found.")
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            return refuse(400, "invalid_grant", "Invalid JWT: audience is not the token endpoint")
        now = time.time()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
            return refuse(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim.",
            )
        scopes = frozenset(str(claims.get("scope", "")).split())
        subject = claims.get("sub")
        if subject is not None:
            if not scopes or not scopes <= self.delegated_scopes:
                return refuse(401, "unauthorized_client", UNAUTHORIZED_CLIENT)
            if not any(u["primaryEmail"] == subject for u in self.users.values()):
                return refuse(400, "invalid_grant", "Invalid email or User ID")
        elif not scopes:
            return refuse(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = _Token(subject, scopes, now + self.token_ttl)
        self.grants.append(claims)
        return 200, {}, {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}

    def _api(
        self, method: str, path: str, query: dict[str, str], body: Any, authorization: str
    ) -> tuple[int, dict[str, str], Any]:
        if path.startswith("calendar/v3/"):
            token = self.tokens.get(authorization.removeprefix("Bearer ").strip())
            return self._calendar_api(method, path, query, body, token)
        routes: list[tuple[str, str, frozenset[str]]] = [
            ("GET", "admin/directory/v1/users", USERS_SCOPES),
            ("POST", "admin/directory/v1/users/watch", USERS_SCOPES),
            ("POST", "admin/directory_v1/channels/stop", USERS_SCOPES),
            ("GET", "admin/directory/v1/groups", GROUPS_SCOPES),
        ]
        parts = path.split("/")
        scopes_needed: frozenset[str] | None = None
        for route_method, route_path, needed in routes:
            if method == route_method and path == route_path:
                scopes_needed = needed
        if path.startswith("admin/directory/v1/groups/") and method == "GET":
            scopes_needed = (
                MEMBERS_SCOPES if len(parts) >= 6 and parts[5] in ("members", "hasMember") else GROUPS_SCOPES
            )
        if path.startswith("admin/directory/v1/users/") and len(parts) == 5 and method == "GET" and parts[4] != "watch":
            scopes_needed = USERS_SCOPES
        if scopes_needed is None:
            return 404, {}, google_error(404, "Not Found", "notFound")
        token = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if token is None or token.expires < time.time():
            return (
                401,
                {},
                google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential.",
                    "authError",
                    location="Authorization",
                    locationType="header",
                ),
            )
        if not token.scopes & scopes_needed:
            return (
                403,
                {},
                google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions"),
            )
        subject = next((u for u in self.users.values() if u["primaryEmail"] == token.subject), None)
        if subject is None or not subject["isAdmin"]:
            return 403, {}, google_error(403, "Not Authorized to access this resource/api", "forbidden")
        if path == "admin/directory/v1/users":
            return self._list_users(query)
        if path.startswith("admin/directory/v1/users/") and len(parts) == 5 and parts[4] != "watch":
            return self._get_user(unquote(parts[4]))
        if path == "admin/directory/v1/users/watch":
            return self._watch(query, body)
        if path == "admin/directory_v1/channels/stop":
            return self._stop(body)
        if path == "admin/directory/v1/groups":
            return self._list_groups(query)
        group = self._group(unquote(parts[4]))
        if group is None:
            return 404, {}, google_error(404, "Resource Not Found: groupKey", "notFound")
        if len(parts) == 5:
            return 200, {}, group
        if len(parts) == 7 and parts[5] == "hasMember":
            return self._has_member(group["id"], unquote(parts[6]))
        return self._list_members(group["id"], query)

    def _check_customer(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any] | None:
        customer, domain = query.get("customer"), query.get("domain")
        if customer in ("my_customer", self.customer_id) or (customer is None and domain == self.domain):
            return None
        return 400, {}, google_error(400, "Bad Request", "badRequest")

    def _list_users(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if (refused := self._check_customer(query)) is not None:
            return refused
        deleted = query.get("showDeleted") == "true"
        store, order = (self.deleted, self.deleted_order) if deleted else (self.users, self.user_order)
        limit = _limit(query, default=100, most=500)
        page, token = _keyset_page(order, query.get("pageToken"), limit)
        answer: dict[str, Any] = {"kind": "admin#directory#users", "etag": _etag("users", len(order))}
        if page:
            answer["users"] = [store[uid] for uid in page]
        if token:
            answer["nextPageToken"] = token
        return 200, {}, answer

    def _user_by_key(self, key: str) -> dict[str, Any] | None:
        if key in self.users:
            return self.users[key]
        wanted = key.lower()
        return next(
            (
                user
                for user in self.users.values()
                if user["primaryEmail"].lower() == wanted or wanted in (a.lower() for a in user.get("aliases", ()))
            ),
            None,
        )

    def _get_user(self, key: str) -> tuple[int, dict[str, str], Any]:
        user = self._user_by_key(key)
        if user is None:
            return 404, {}, google_error(404, "Resource Not Found: userKey", "notFound")
        return 200, {}, user

    def _has_member(self, group_id: str, member_key: str) -> tuple[int, dict[str, str], Any]:
        user = self._user_by_key(member_key)
        if user is None:
            return 404, {}, google_error(404, "Resource Not Found: memberKey", "notFound")
        pending, seen = [group_id], set()
        while pending:  # nested groups' members are members too
            current = pending.pop()
            if current in seen or current not in self.members:
                continue
            seen.add(current)
            for member_id, kind in self.members[current].items():
                if kind == "USER" and member_id == user["id"]:
                    return 200, {}, {"isMember": True}
                if kind == "GROUP":
                    pending.append(member_id)
        return 200, {}, {"isMember": False}

    def _list_groups(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if "userKey" in query:  # the groups a user is a direct member of: no customer needed
            user = self._user_by_key(query["userKey"])
            if user is None:
                return 404, {}, google_error(404, "Resource Not Found: userKey", "notFound")
            mine = [gid for gid in self.group_order if self.members.get(gid, {}).get(user["id"]) == "USER"]
            return 200, {}, {"kind": "admin#directory#groups", "groups": [self.groups[gid] for gid in mine]}
        if (refused := self._check_customer(query)) is not None:
            return refused
        limit = _limit(query, default=200, most=200)
        page, token = _keyset_page(self.group_order, query.get("pageToken"), limit)
        answer: dict[str, Any] = {"kind": "admin#directory#groups", "etag": _etag("groups", len(page))}
        if page:
            answer["groups"] = [self.groups[gid] for gid in page]
        if token:
            answer["nextPageToken"] = token
        return 200, {}, answer

    def _group(self, key: str) -> dict[str, Any] | None:
        if key in self.groups:
            return self.groups[key]
        return next((g for g in self.groups.values() if g["email"].lower() == key.lower()), None)

    def _list_members(self, group_id: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        entries = dict(self.members[group_id])
        if query.get("includeDerivedMembership") == "true":
            # Nested groups' members count too (the nested group itself stays listed, as type GROUP).
            pending, seen = [m for m, kind in entries.items() if kind == "GROUP"], {group_id}
            while pending:
                nested = pending.pop()
                if nested in seen or nested not in self.members:
                    continue
                seen.add(nested)
                for member_id, kind in self.members[nested].items():
                    entries.setdefault(member_id, kind)
                    if kind == "GROUP":
                        pending.append(member_id)
        order = sorted(entries)
        limit = _limit(query, default=200, most=200)
        page, token = _keyset_page(order, query.get("pageToken"), limit)
        answer: dict[str, Any] = {"kind": "admin#directory#members", "etag": _etag(group_id, len(order))}
        if page:
            answer["members"] = [self._member(member_id, entries[member_id]) for member_id in page]
        if token:
            answer["nextPageToken"] = token
        return 200, {}, answer

    def _member(self, member_id: str, kind: str) -> dict[str, Any]:
        if kind == "GROUP":
            email, status = self.groups[member_id]["email"], None
        elif kind != "USER":  # CUSTOMER (everyone in the account) or EXTERNAL: no user behind it
            email, status = (member_id if "@" in member_id else None), None
        else:
            user = self.users[member_id]
            email, status = user["primaryEmail"], "SUSPENDED" if user["suspended"] else "ACTIVE"
        member = {
            "kind": "admin#directory#member",
            "etag": _etag(member_id, 0),
            "id": member_id,
            "role": "MEMBER",
            "type": kind,
        }
        if email:
            member["email"] = email
        if status:
            member["status"] = status
        return member

    def _watch(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        if (refused := self._check_customer(query)) is not None:
            return refused
        if (refused := self._refuse_channel(body)) is not None:
            return refused
        event = query.get("event")
        if event is not None and event not in WATCH_EVENTS:
            return 400, {}, google_error(400, f"Invalid value for event: {event}", "invalidParameter")
        resource = "admin/directory/v1/users?" + "&".join(
            f"{k}={quote(v)}" for k, v in (("customer", query.get("customer")), ("event", event)) if v
        )
        return self._open_channel(body, resource, self.base_url + resource + "&alt=json", event=event)

    def _refuse_channel(self, body: Any) -> tuple[int, dict[str, str], Any] | None:
        if not isinstance(body, dict) or not body.get("id") or not body.get("address"):
            return 400, {}, google_error(400, "Required: id and address", "required")
        if body.get("type") not in ("web_hook", "webhook"):
            return 400, {}, google_error(400, "Invalid channel type", "invalid")
        if body["id"] in self.channels:
            return 400, {}, google_error(400, f"Channel id {body['id']} not unique", "channelIdNotUnique")
        return None

    def _open_channel(
        self, body: dict[str, Any], resource: str, resource_uri: str, **extra: Any
    ) -> tuple[int, dict[str, str], Any]:
        now = time.time() * 1000
        most = now + self.channel_ttl * 1000
        asked = body.get("expiration")
        expires = min(int(asked), most) if asked else most
        ttl = (body.get("params") or {}).get("ttl")
        if ttl is not None:  # params.ttl (seconds) also bounds the lifetime
            expires = min(expires, now + int(ttl) * 1000)
        channel = {
            "kind": "api#channel",
            "id": body["id"],
            # Stable per watched resource (the users of this customer, for this event), as Google's is.
            "resourceId": base64.urlsafe_b64encode(hashlib.sha1(resource.encode()).digest()).decode().rstrip("="),
            "resourceUri": resource_uri,
            "token": body.get("token"),
            "expiration": str(int(expires)),
        }
        self.channels[body["id"]] = {**channel, "address": body["address"], "expires": expires, **extra}
        self._enqueue(self.channels[body["id"]], "sync", 1, b"")
        return 200, {}, {k: v for k, v in channel.items() if v is not None}

    def _stop(self, body: Any) -> tuple[int, dict[str, str], Any]:
        channel_id = body.get("id") if isinstance(body, dict) else None
        channel = self.channels.get(channel_id or "")
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            message = f"Channel '{channel_id}' not found for project '{self.project}'"
            return 404, {}, google_error(404, message, "notFound")
        del self.channels[channel["id"]]
        return 204, {}, None


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of new connections (the workers of a benchmark each
    # opening their own) overflows it, and the kernel drops the SYNs, which clients resend only after a
    # second. Google takes them all.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: nothing worth printing.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_for(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 expects of Google
        disable_nagle_algorithm = True  # headers and body go out as two writes: don't wait for the ACK between

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = fake.handle(self.command, self.path, headers, raw)
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keyset_page(order: list[str], token: str | None, limit: int) -> tuple[list[str], str | None]:
    # The token holds the last id served: the next page starts after it, even if ids came or went since.
    start = 0
    if token:
        start = bisect.bisect_right(order, _b64decode(token).decode())
    page = order[start : start + limit]
    more = start + limit < len(order)
    return page, (base64.urlsafe_b64encode(page[-1].encode()).decode().rstrip("=") if more and page else None)


def _limit(query: dict[str, str], *, default: int, most: int) -> int:
    try:
        asked = int(query.get("maxResults", default))
    except ValueError:
        return default
    return max(1, min(asked, most))


def _etag(key: str, version: int) -> str:
    return '"' + hashlib.sha1(f"{key}/{version}".encode()).hexdigest()[:27] + '"'


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

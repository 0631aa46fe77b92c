"""Graph's calendar HTTP semantics over the fake's calendars: calendarView delta and event writes.

calendarView delta: a full listing of the window, paged by `Prefer: odata.maxpagesize` (each
request's own; nextLinks do not carry it), ends with a deltaLink. A deltaLink remembers the window
and what it held (id → changeKey); its next use lists what changed, appeared or moved in, and
`@removed` (reason `deleted`) for what is gone or moved out, as Graph does. Times are written in
the zone of `Prefer: outlook.timezone` (UTC without it), Windows names as given. Tokens from
before `expire_tokens` answer 410 with Graph's error body. `$expand`/`$filter` are refused there,
as the docs say delta does not support them.

Events: POST (a repeated transactionId returns the event already made), PATCH (transactionId
cannot change), DELETE, GET by id (with `$expand=singleValueExtendedProperties(...)`) and the
list filtered on a single-value extended property.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tests.fakes.graph.calendars import Calendar, Calendars, Event, zone

Answer = tuple[int, Any]
_FILTER = re.compile(
    r"^singleValueExtendedProperties/Any\(ep:\s*ep/id eq '([^']+)' and ep/value eq '([^']*)'\)$", re.IGNORECASE
)
_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=id eq '([^']+)'\)$", re.IGNORECASE)
MAX_LISTINGS = 20_000  # listings in progress kept (a benchmark pages many calendars at once)
SHOW_AS = {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}


def error(status: int, code: str, message: str) -> Answer:
    """Graph's error body."""
    return status, {"error": {"code": code, "message": message, "innerError": {"request-id": "fake", "date": "now"}}}


@dataclass
class Listing:
    user: str  # as addressed (id or UPN), for the links
    entries: list[Event | str]  # an event to show, or the id of one removed
    snapshot: dict[str, str]  # the window's content when the listing started: id -> changeKey
    start: datetime
    end: datetime
    epoch: int


class CalendarApi:
    """Answers `/users/{user}/calendarView/delta` and `/users/{user}/events[/{id}]`."""

    def __init__(self, calendars: Calendars, graph_url: str) -> None:
        self.calendars = calendars
        self.graph_url = graph_url
        self.listings: dict[str, Listing] = {}
        self.tokens: dict[str, tuple[int, datetime, datetime, dict[str, str]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(
        self, method: str, user: str, collection: str, event_id: str | None, query: dict[str, str], body: Any,
        prefer: dict[str, str],
    ) -> Answer:  # fmt: skip
        """One request; `prefer` holds the Prefer preferences (outlook.timezone, odata.maxpagesize)."""
        calendar = self.calendars.calendar(user)
        if calendar is None:
            return error(404, "ResourceNotFound", f"User '{user}' has no mailbox.")
        out_zone = prefer.get("outlook.timezone", "UTC")
        if collection == "calendarView/delta" and method == "GET" and event_id is None:
            return self._delta(calendar, user, query, prefer)
        if collection != "events":
            return error(400, "BadRequest", f"Unsupported request {method} {collection}")
        if event_id is None and method == "POST":
            return self._create(calendar, body, out_zone)
        if event_id is None and method == "GET":
            return self._list(calendar, query, out_zone)
        if event_id is not None and method == "GET":
            return self._get(calendar, event_id, query, out_zone)
        if event_id is not None and method == "PATCH":
            return self._update(calendar, event_id, body, out_zone)
        if event_id is not None and method == "DELETE":
            gone = self.calendars.delete_event(calendar.user_id, event_id)
            return (204, None) if gone else error(404, "ErrorItemNotFound", "The specified object was not found.")
        return error(405, "ErrorInvalidRequest", f"{method} is not supported here.")

    # --- calendarView delta --------------------------------------------------------------------

    def _delta(self, calendar: Calendar, user: str, query: dict[str, str], prefer: dict[str, str]) -> Answer:
        if "$expand" in query or "$filter" in query:
            return error(400, "ErrorInvalidUrlQuery", "The query parameter is not supported with delta.")
        epoch = self.calendars.epoch
        if "$skiptoken" in query:
            listing_id = query["$skiptoken"].split(".")
            with self._lock:
                listing = self.listings.get(listing_id[0])
            if listing is None or listing.epoch != epoch or len(listing_id) != 2:
                return self._gone()
            offset = int(listing_id[1])
        else:
            if "$deltatoken" in query:
                with self._lock:
                    token = self.tokens.get(query["$deltatoken"])
                if token is None or token[0] != epoch:
                    return self._gone()
                _, start, end, before = token
            else:
                bounds = _instant(query.get("startDateTime")), _instant(query.get("endDateTime"))
                if bounds[0] is None or bounds[1] is None:
                    return error(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required.")
                start, end, before = bounds[0], bounds[1], None
            listing = self._start(calendar, user, start, end, before, epoch)
            with self._lock:
                listing_id = [str(next(self._ids))]
                self.listings[listing_id[0]] = listing
                while len(self.listings) > MAX_LISTINGS:  # the oldest are abandoned ones (or long finished)
                    del self.listings[next(iter(self.listings))]
            offset = 0
        size = int(prefer.get("odata.maxpagesize") or self.calendars.page_size)
        chunk = listing.entries[offset : offset + size]
        out_zone = prefer.get("outlook.timezone", "UTC")
        value = [
            {"@odata.type": "#microsoft.graph.event", "id": entry, "@removed": {"reason": "deleted"}}
            if isinstance(entry, str)
            else render(entry, out_zone)
            for entry in chunk
        ]
        base = f"{self.graph_url}/users/{quote(listing.user, safe='@')}/calendarView/delta"
        body: dict[str, Any] = {"@odata.context": f"{self.graph_url}/$metadata#Collection(event)", "value": value}
        if offset + size < len(listing.entries):
            body["@odata.nextLink"] = f"{base}?$skiptoken={listing_id[0]}.{offset + size}"
        else:
            with self._lock:
                token_id = f"{epoch}-{next(self._ids)}"
                self.tokens[token_id] = (epoch, listing.start, listing.end, listing.snapshot)
            body["@odata.deltaLink"] = f"{base}?$deltatoken={token_id}"
        return 200, body

    def _start(
        self, calendar: Calendar, user: str, start: datetime, end: datetime, before: dict[str, str] | None, epoch: int
    ) -> Listing:
        now = self.calendars.view(calendar, start, end)
        snapshot = {event_id: event.change_key for event_id, event in now.items()}
        if before is None:
            entries: list[Event | str] = list(now.values())
        else:
            entries = [event for event_id, event in now.items() if before.get(event_id) != event.change_key]
            entries += [event_id for event_id in before if event_id not in now]
        return Listing(user, entries, snapshot, start, end, epoch)

    def _gone(self) -> Answer:
        code = self.calendars.resync_code
        message = (
            "The sync state generation is not found. The delta token is expired and data must be synchronized again."
            if code == "syncStateNotFound"
            else "The delta token is no longer valid, and the app must reset the sync state."
        )
        return error(410, code, message)

    # --- events --------------------------------------------------------------------------------

    def _create(self, calendar: Calendar, body: Any, out_zone: str) -> Answer:
        if not isinstance(body, dict):
            return error(400, "ErrorInvalidRequest", "The request body must be an event.")
        transaction = body.get("transactionId")
        with self.calendars.lock:
            known = calendar.transactions.get(transaction) if isinstance(transaction, str) else None
            if known is not None and known in calendar.events:
                return 201, render(calendar.events[known], out_zone)  # a retried create: the same event
        try:
            fields = _fields(body)
            start, end = fields.pop("start"), fields.pop("end")
            properties = {
                str(prop["id"]): str(prop["value"]) for prop in body.get("singleValueExtendedProperties") or ()
            }
        except (KeyError, ValueError, TypeError) as problem:
            return error(400, "ErrorInvalidRequest", f"Invalid event: {problem!r}")
        event = self.calendars.add_event(
            calendar.user_id, fields.pop("subject", ""), start, end,
            transaction_id=transaction, properties=properties, **fields,
        )  # fmt: skip
        if isinstance(transaction, str):
            with self.calendars.lock:
                calendar.transactions[transaction] = event.id
        return 201, render(event, out_zone)

    def _update(self, calendar: Calendar, event_id: str, body: Any, out_zone: str) -> Answer:
        event = calendar.events.get(event_id)
        if event is None:
            return error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if not isinstance(body, dict):
            return error(400, "ErrorInvalidRequest", "The request body must be an event.")
        if "transactionId" in body and body["transactionId"] != event.transaction_id:
            return error(400, "ErrorInvalidRequest", "transactionId cannot be changed.")
        try:
            fields = _fields(body)
        except (KeyError, ValueError, TypeError) as problem:
            return error(400, "ErrorInvalidRequest", f"Invalid event: {problem}")
        return 200, render(self.calendars.update_event(calendar.user_id, event_id, **fields), out_zone)

    def _get(self, calendar: Calendar, event_id: str, query: dict[str, str], out_zone: str) -> Answer:
        event = calendar.events.get(event_id)
        if event is None:
            return error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        body = render(event, out_zone)
        if (match := _EXPAND.match(query.get("$expand", ""))) is not None:
            wanted = match.group(1).lower()
            body["singleValueExtendedProperties"] = [
                {"id": key, "value": value} for key, value in event.properties.items() if key.lower() == wanted
            ]
        return 200, body

    def _list(self, calendar: Calendar, query: dict[str, str], out_zone: str) -> Answer:
        events = list(calendar.events.values())
        if "$filter" in query:
            match = _FILTER.match(query["$filter"].strip())
            if match is None:
                return error(400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported by this fake.")
            wanted, value = match.group(1).lower(), match.group(2)
            events = [
                event
                for event in events
                if any(key.lower() == wanted and stored == value for key, stored in event.properties.items())
            ]
        top = int(query.get("$top") or 10)
        return 200, {"value": [render(event, out_zone) for event in events[:top]]}


def render(event: Event, out_zone: str) -> dict[str, Any]:
    """The event as Graph shows it, times in `out_zone` (all-day: midnight of its days in any zone)."""
    try:
        local = zone(out_zone)
    except KeyError:
        local, out_zone = zone("UTC"), "UTC"
    if event.all_day and event.start_day and event.end_day:
        start = {"dateTime": f"{event.start_day:%Y-%m-%d}T00:00:00.0000000", "timeZone": out_zone}
        end = {"dateTime": f"{event.end_day:%Y-%m-%d}T00:00:00.0000000", "timeZone": out_zone}
    else:
        start = {"dateTime": event.start.astimezone(local).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": out_zone}
        end = {"dateTime": event.end.astimezone(local).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": out_zone}
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": f'W/"{event.change_key}"',
        "id": event.id,
        "lastModifiedDateTime": event.modified.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
        "changeKey": event.change_key,
        "categories": list(event.categories),
        "originalStartTimeZone": event.zone,
        "originalEndTimeZone": event.zone,
        "iCalUId": event.ical_uid,
        "subject": event.subject,
        "isAllDay": event.all_day,
        "isCancelled": event.is_cancelled,
        "showAs": event.show_as,
        "type": event.kind,
        "seriesMasterId": event.series_id,
        "start": start,
        "end": end,
        "location": {"displayName": event.location, "locationType": "default"},
        "attendees": [
            {"type": "required", "emailAddress": {"name": address.split("@")[0], "address": address}}
            for address in event.attendees
        ],
    }
    if event.original_start is not None:
        body["originalStart"] = event.original_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    if event.transaction_id is not None:  # "only returned in a response payload if an app has set it"
        body["transactionId"] = event.transaction_id
    return body


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    """Test-API fields from a POST/PATCH body (only what is present)."""
    out: dict[str, Any] = {}
    all_day = body.get("isAllDay") is True
    for name in ("start", "end"):
        if name in body:
            value = body[name]
            wall = datetime.fromisoformat(str(value["dateTime"])[:26])
            zone_name = str(value.get("timeZone") or "UTC")
            out[name] = wall.date() if all_day else wall.replace(tzinfo=zone(zone_name)).astimezone(UTC)
            if name == "start":
                out["zone"] = zone_name
    if "subject" in body:
        out["subject"] = str(body["subject"] or "")
    if "showAs" in body:
        if body["showAs"] not in SHOW_AS:
            raise ValueError(f"showAs {body['showAs']!r}")
        out["show_as"] = body["showAs"]
    if isinstance(body.get("location"), dict):
        out["location"] = str(body["location"].get("displayName") or "")
    if isinstance(body.get("categories"), list):
        out["categories"] = [str(category) for category in body["categories"]]
    return out


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")[:32])
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

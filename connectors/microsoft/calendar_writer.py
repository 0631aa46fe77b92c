"""Bookings written into a person's Outlook calendar (a CalendarWriter), idempotent by booking id.

Create is `POST /users/{id}/events` with a `transactionId` and our extended property (see
calendar_events). Graph documents transactionId only as "for the server to avoid redundant POST
operations in case of client retries to create the same event": it dedupes a create that is sent
again (our GraphClient resends on a timeout, a 5xx or a throttle) and it cannot be changed later.
It states no time limit and no shape for the answer to a duplicate, and it does not help a worker
that crashed between the POST and storing the id and comes back with a changed booking (a new
sequence, so a new transactionId). So, before creating, the writer looks the booking up by the
extended property, which Graph can filter on; both together make "never twice".

Update is a PATCH of the stored id; a 404 (the person deleted the event) creates it again, with a
transactionId of its own so Graph cannot take it for the deleted one. Delete tolerates 404.

Show-as: `workingElsewhere` by default, not `busy`. A desk booking says where someone works, not
that they are in a meeting: `busy` would block their whole working day in free/busy and the
scheduling assistant, while `workingElsewhere` keeps them bookable and still shows the day as
an office day. The constructor takes another value for organisations that want `busy`.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from connectors.microsoft.calendar_events import BOOKING_PROPERTY, CALENDARS_PERMISSION, CATEGORY, transaction_id
from connectors.microsoft.calendar_times import write_time
from connectors.microsoft.graph import GraphClient
from connectors.records import BookingEntry, ConnectorError

_NOT_FOUND = frozenset({404})


class OutlookCalendarWriter:
    """Writes one person's bookings into their primary Outlook calendar; `user` is an id or userPrincipalName."""

    def __init__(self, graph: GraphClient, user: str, *, show_as: str = "workingElsewhere") -> None:
        self._graph = graph
        self.user = user
        self._events = f"users/{quote(user, safe='@')}/events"
        self._show_as = show_as

    def put(self, entry: BookingEntry, event_id: str | None) -> str:
        """Create or update the booking's event; returns Graph's event id."""
        if event_id is None:
            event_id = self.find(entry.booking_id)
            if event_id is None:
                return self._create(entry, transaction_id(entry.booking_id, entry.sequence))
        response = self._graph.request(
            "PATCH",
            f"{self._events}/{quote(event_id, safe='')}",
            permission=CALENDARS_PERMISSION,
            json=self._fields(entry),
            ok_statuses=_NOT_FOUND,
        )
        if response.status_code != 404:
            return event_id
        # Deleted in Outlook since. A copy of ours may exist (an earlier create we never heard back from).
        found = self.find(entry.booking_id)
        if found is not None and found != event_id:
            return self.put(entry, found)
        return self._create(entry, transaction_id(entry.booking_id, entry.sequence, f"-{uuid.uuid4().hex[:8]}"))

    def delete(self, event_id: str) -> None:
        """Remove the booking's event; one already gone is fine."""
        self._graph.request(
            "DELETE",
            f"{self._events}/{quote(event_id, safe='')}",
            permission=CALENDARS_PERMISSION,
            ok_statuses=_NOT_FOUND,
        )

    def find(self, booking_id: int) -> str | None:
        """The id of an event carrying `booking_id` in our extended property, if there is one."""
        condition = f"ep/id eq '{BOOKING_PROPERTY}' and ep/value eq '{booking_id}'"
        query = quote(f"singleValueExtendedProperties/Any(ep: {condition})", safe="/:'")
        body = self._graph.get_json(
            f"{self._events}?$filter={query}&$select=id&$top=2", permission=CALENDARS_PERMISSION
        )
        found = [item["id"] for item in body.get("value") or () if isinstance(item, dict) and item.get("id")]
        return str(found[0]) if found else None

    def _create(self, entry: BookingEntry, transaction: str) -> str:
        body: dict[str, Any] = {
            **self._fields(entry),
            "transactionId": transaction,
            "singleValueExtendedProperties": [{"id": BOOKING_PROPERTY, "value": str(entry.booking_id)}],
        }
        response = self._graph.request("POST", self._events, permission=CALENDARS_PERMISSION, json=body)
        created = response.json()
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise ConnectorError("Graph answered an event create without an event id")
        return str(created["id"])

    def _fields(self, entry: BookingEntry) -> dict[str, Any]:
        """What PATCH may change (transactionId cannot be)."""
        return {
            "subject": entry.title,
            "start": write_time(entry.start, entry.timezone),
            "end": write_time(entry.end, entry.timezone),
            "isAllDay": False,
            "location": {"displayName": entry.location},
            "showAs": self._show_as,
            "categories": [CATEGORY],
            "isReminderOn": False,  # a desk needs no pop-up fifteen minutes before
            "body": {"contentType": "text", "content": f"Booked with deskbridge ({entry.office_label})."},
        }

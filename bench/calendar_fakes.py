"""The fake calendar servers of `bench.calendar`, each in a process of its own.

    python -m bench.calendar_fakes --provider google --members 500 --events 200 --today 2026-11-21
    python -m bench.calendar_fakes --provider microsoft --members 500 --events 200 --today 2026-11-21

The fakes (tests/fakes/google.py, tests/fakes/graph) answer in Python; inside the bench they would
share its GIL and their CPU would be counted as the sync's. Here one runs alone on 127.0.0.1 (the
fake Graph over TLS with a fresh test CA, the fake Google over plain HTTP as in the tests), filled
with `members` people, each with `events` events in the calendar window that starts the day before
`today` (what `store.services.calendars.window` computes), and is driven by one JSON command per
line on stdin, each answered by one JSON line on stdout:

- on start (no command): where it listens and how to sign in (see `main`);
- {"op": "changes", "share": 0.01}: that share of every calendar's events changed (at least one per
  calendar), a third each moved an hour later, renamed, deleted; answers
  {"moved": [[address, event id], ...], "renamed": [...], "deleted": [...]};
- {"op": "record", "calendars": K, "path": P}: the response bodies of a full listing of the first K
  calendars, exactly as the HTTP API would send them (same page size as the connector asks for),
  written to P one JSON document a line; answers {"bodies": n, "bytes": b}. The bench decodes and
  maps them with the connectors' own translation functions: the ceiling, no HTTP, no database;
- {"op": "requests"}: how many API requests were served;
- {"op": "quit"}.

Each person's events: single timed events with three attendees (most), a few all-day events, a
weekly series (its instances are what the connectors read) and, on Google, working-location entries
(home office, so no office day: the bench measures the events path, not booking). Every event lies
inside the window, so every one is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.google.calendar import PAGE_SIZE as GOOGLE_PAGE_SIZE
from connectors.google.calendar_service import CALENDAR_SCOPE
from connectors.microsoft.calendar import graph_instant, whole_days
from connectors.records import Window
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import make_tls

TENANT_ID = "bench-tenant"
CLIENT_ID = "bench-app"
SECRET = "bench~secret"  # the fake Graph's own app registration
GRAPH_DOMAIN = "contoso.example"
GOOGLE_DOMAIN = "example.com"
GRAPH_PAGE_SIZE = 100  # what OutlookCalendar asks for (`Prefer: odata.maxpagesize`) by default
ZONE = "Europe/Berlin"
WINDOW_DAYS = 60  # the organisation's calendar_window_days (the default)
SERIES_WEEKS = 8  # instances of each person's weekly series
ALL_DAY = 6  # all-day events per person
WORKING_LOCATIONS = 6  # Google only: home-office working-location entries per person


def graph_user(number: int) -> tuple[str, str]:
    """(object id, userPrincipalName) of the fake Graph's person `number`."""
    return f"{number:08x}-0000-4000-8000-{number:012x}", f"user{number:06d}@{GRAPH_DOMAIN}"


def window(today: date) -> Window:
    """The organisation's window, as `calendars.window` computes it for `today`."""
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return Window(start, start + timedelta(days=WINDOW_DAYS + 1))


def slot(today: date, index: int) -> datetime:
    """The start of a person's timed event `index`: spread over the window's days, 07:00 to 17:30 Berlin time."""
    day = today + timedelta(days=index % (WINDOW_DAYS - 2))
    minutes = 7 * 60 + 30 * ((index // (WINDOW_DAYS - 2)) % 21)
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(ZONE)) + timedelta(minutes=minutes)


def attendees(number: int, domain: str) -> list[str]:
    return [f"user{(number + step) % 997:06d}@{domain}" for step in (1, 2, 3)]


class GoogleSide:
    """The fake Google with its people (the directory for the directory sync) and their calendars."""

    def __init__(self, members: int, events: int, today: date) -> None:
        self.fake = FakeGoogle(domain=GOOGLE_DOMAIN, time_zone=ZONE, token_ttl=24 * 3600)
        self.fake.delegated_scopes.add(CALENDAR_SCOPE)
        self.today = today
        self.addresses = [f"user{n}@{GOOGLE_DOMAIN}" for n in range(1, members + 1)]
        self.fake.add_users(members)
        for number, address in enumerate(self.addresses, start=1):
            self._fill(number, address, events)

    def _fill(self, number: int, address: str, events: int) -> None:
        fake, today = self.fake, self.today
        singles = events - SERIES_WEEKS - ALL_DAY - WORKING_LOCATIONS
        for index in range(singles):
            begins = slot(today, index)
            fake.add_event(
                address,
                begins,
                begins + timedelta(minutes=30),
                f"Meeting {index} of {number}",
                location=f"Room {index % 12}",
                attendees=[{"email": who, "responseStatus": "accepted"} for who in attendees(number, GOOGLE_DOMAIN)],
            )
        for index in range(ALL_DAY):
            day = today + timedelta(days=3 + 7 * index)
            fake.add_event(address, day, day + timedelta(days=1), f"All day {index}")
        for index in range(WORKING_LOCATIONS):
            day = today + timedelta(days=2 + 7 * index)
            fake.add_event(
                address, day, day + timedelta(days=1), "Home",
                eventType="workingLocation", visibility="public", transparency="transparent",
                workingLocationProperties={"type": "homeOffice", "homeOffice": {}},
            )  # fmt: skip
        first = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(ZONE)).replace(hour=18)
        fake.add_event(
            address,
            first,
            first + timedelta(minutes=45),
            "Weekly",
            recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={SERIES_WEEKS}"],
        )

    def info(self) -> dict[str, Any]:
        return {
            "base_url": self.fake.base_url,
            "admin_email": self.fake.admin_email,
            "service_account_key": self.fake.service_account_info(),
            "addresses": self.addresses,
        }

    def changes(self, share: float) -> dict[str, list[list[str]]]:
        """Change `share` of each calendar's events (single events only, so one change is one event)."""
        made: dict[str, list[list[str]]] = {"moved": [], "renamed": [], "deleted": []}
        kinds = ("moved", "renamed", "deleted")
        turn = 0
        for address in self.addresses:
            calendar = self.fake.calendar(address)
            with self.fake.lock:
                singles = sorted(
                    item["id"]
                    for item in calendar.items.values()
                    if item.get("status") != "cancelled" and not item.get("recurrence") and "dateTime" in item["start"]
                )
            wanted = max(1, round(share * (len(singles) + SERIES_WEEKS + ALL_DAY + WORKING_LOCATIONS)))
            for event_id in singles[: wanted * 7 : 7]:  # spread over the calendar
                kind = kinds[turn % 3]
                turn += 1
                if kind == "moved":
                    item = calendar.items[event_id]
                    begins = datetime.fromisoformat(item["start"]["dateTime"]) + timedelta(hours=1)
                    ends = datetime.fromisoformat(item["end"]["dateTime"]) + timedelta(hours=1)
                    self.fake.update_event(
                        address, event_id,
                        start={"dateTime": begins.isoformat(), "timeZone": ZONE},
                        end={"dateTime": ends.isoformat(), "timeZone": ZONE},
                    )  # fmt: skip
                elif kind == "renamed":
                    self.fake.update_event(address, event_id, summary=f"Renamed {event_id}")
                else:
                    self.fake.delete_event(address, event_id)
                made[kind].append([address, event_id])
        return made

    def record(self, calendars: int) -> list[str]:
        """The bodies of a full listing of the first `calendars` calendars, as `GoogleCalendar._full` asks."""
        span = window(self.today)
        bodies: list[str] = []
        for address in self.addresses[:calendars]:
            query = {
                "singleEvents": "true",
                "maxResults": str(GOOGLE_PAGE_SIZE),
                "timeMin": span.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "timeMax": span.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            while True:
                with self.fake.lock:
                    status, _, body = self.fake._list_events(self.fake.calendar(address), query)
                assert status == 200, body
                bodies.append(json.dumps(body))  # as the server's handler encodes it
                if not body.get("nextPageToken"):
                    break
                query["pageToken"] = body["nextPageToken"]
        return bodies

    def requests(self) -> int:
        return len(self.fake.requests)


class GraphSide:
    """The fake Graph (over TLS) with its people (the directory) and their Outlook calendars."""

    def __init__(self, members: int, events: int, today: date) -> None:
        self.tls = make_tls(Path(tempfile.mkdtemp(prefix="bench-calendar-graph-")))
        self.fake = FakeGraph(self.tls, tenant_id=TENANT_ID)
        self.fake.identity.apps[CLIENT_ID] = App(
            CLIENT_ID, secret=SECRET, permissions={"User.Read.All", "Group.Read.All", "Calendars.ReadWrite"}
        )
        self.fake.subscriptions.validate_urls = False
        self.today = today
        people = [graph_user(n) for n in range(1, members + 1)]
        self.fake.directory.add_users([(object_id, upn, upn) for object_id, upn in people])
        self.users = {upn: object_id for object_id, upn in people}
        self.addresses = [upn for _, upn in people]
        for number, (object_id, upn) in enumerate(people, start=1):
            self.fake.calendars.add_calendar(object_id, upn)
            self._fill(number, object_id, events)

    def _fill(self, number: int, user: str, events: int) -> None:
        calendars, today = self.fake.calendars, self.today
        singles = events - SERIES_WEEKS - ALL_DAY
        for index in range(singles):
            begins = slot(today, index)
            calendars.add_event(
                user,
                f"Meeting {index} of {number}",
                begins,
                begins + timedelta(minutes=30),
                zone="W. Europe Standard Time",
                location=f"Room {index % 12}",
                attendees=attendees(number, GRAPH_DOMAIN),
                categories=["Blue category"] if index % 5 == 0 else [],
            )
        for index in range(ALL_DAY):
            day = today + timedelta(days=3 + 7 * index)
            calendars.add_event(user, f"All day {index}", day, day + timedelta(days=1), zone="W. Europe Standard Time")
        first = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(ZONE)).replace(hour=18)
        calendars.add_series(
            user, "Weekly", first, timedelta(minutes=45), weeks=SERIES_WEEKS, zone_name="W. Europe Standard Time"
        )

    def info(self) -> dict[str, Any]:
        return {
            "authority": self.fake.authority_host,
            "graph_url": self.fake.graph_url,
            "ca_bundle": str(self.tls.ca_bundle),
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "secret": SECRET,
            "addresses": self.addresses,
        }

    def changes(self, share: float) -> dict[str, list[list[str]]]:
        """Change `share` of each calendar's events (single events only, so one change is one event)."""
        made: dict[str, list[list[str]]] = {"moved": [], "renamed": [], "deleted": []}
        kinds = ("moved", "renamed", "deleted")
        turn = 0
        calendars = self.fake.calendars
        for upn in self.addresses:
            user = self.users[upn]
            with calendars.lock:
                calendar = calendars.calendars[user]
                singles = sorted(event.id for event in calendar.events.values() if not event.all_day)
                total = len(calendar.events) + sum(series.weeks for series in calendar.series.values())
            wanted = max(1, round(share * total))
            for event_id in singles[: wanted * 7 : 7]:
                kind = kinds[turn % 3]
                turn += 1
                if kind == "moved":
                    event = calendar.events[event_id]
                    calendars.update_event(
                        user, event_id, start=event.start + timedelta(hours=1), end=event.end + timedelta(hours=1)
                    )
                elif kind == "renamed":
                    calendars.update_event(user, event_id, subject=f"Renamed {event_id}")
                else:
                    calendars.delete_event(user, event_id)
                made[kind].append([upn, event_id])
        return made

    def record(self, calendars: int) -> list[str]:
        """The bodies of a full listing of the first `calendars` calendars, as `OutlookCalendar` asks."""
        span = whole_days(window(self.today))
        prefer = {"outlook.timezone": "UTC", "odata.maxpagesize": str(GRAPH_PAGE_SIZE)}
        api = self.fake.calendar_api
        bodies: list[str] = []
        for upn in self.addresses[:calendars]:
            calendar = self.fake.calendars.calendar(upn)
            assert calendar is not None
            query = {"startDateTime": graph_instant(span.start), "endDateTime": graph_instant(span.end)}
            while True:
                status, body = api._delta(calendar, upn, query, prefer)
                assert status == 200, body
                bodies.append(json.dumps(body))  # as the server's `_send` encodes it
                link = body.get("@odata.nextLink")
                if not link:
                    break
                query = {"$skiptoken": link.split("$skiptoken=", 1)[1]}
        return bodies

    def requests(self) -> int:
        return len(self.fake.requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calendar_fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=("google", "microsoft"), required=True)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--events", type=int, default=200, help="events per person")
    parser.add_argument("--today", type=date.fromisoformat, default=datetime.now(UTC).date())
    args = parser.parse_args(argv)
    side: GoogleSide | GraphSide
    if args.provider == "google":
        side = GoogleSide(args.members, args.events, args.today)
    else:
        side = GraphSide(args.members, args.events, args.today)
    side.fake.start()

    def say(answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    say(side.info())
    for line in sys.stdin:
        command = json.loads(line)
        op = command.get("op")
        if op == "changes":
            say(side.changes(float(command["share"])))
        elif op == "record":
            bodies = side.record(int(command["calendars"]))
            with Path(command["path"]).open("w") as out:
                for body in bodies:
                    out.write(body + "\n")
            say({"bodies": len(bodies), "bytes": sum(len(body) for body in bodies)})
        elif op == "requests":
            say({"requests": side.requests()})
        elif op == "quit":
            break
        else:
            say({"error": f"unknown op {op!r}"})
    side.fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What connectors hand the worker: directory and calendar records in one shape, whatever the source.

A connector reads one *round* of a directory: pages of users, removals and groups. A round is
either a complete listing (`full`: whoever is not in it is gone) or the changes since the cursor
the previous round ended with. The worker's sync engine applies pages as they come and keeps the
cursor only once the round is complete, so a round cut short is simply read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A person as the directory describes them now."""

    external_id: str  # the provider's stable id: Graph object id, Google user id, SCIM id, CSV address
    username: str  # the sign-in name: userPrincipalName, primaryEmail, SCIM userName
    email: str | None  # the mailbox address; None for an account without a mailbox
    display_name: str = ""
    active: bool = True  # False: disabled, suspended or archived
    guest: bool = False  # an external (B2B) account
    org_unit: str | None = None  # Google's orgUnitPath


@dataclass(frozen=True, slots=True)
class RemovedUser:
    """A person the directory no longer lists (Graph `@removed`, Google `deletionTime`, SCIM DELETE)."""

    external_id: str


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    """A group and what changed in its membership (member ids are user `external_id`s).

    `members` replaces the whole membership when given; `added`/`removed` change it. In a full
    round the members announced are all the members: anyone not announced by the round's end is
    no longer one, so a connector may announce a large group's members in slices over several pages.
    """

    external_id: str
    name: str
    email: str | None = None  # Google groups are named by address in scopes
    members: frozenset[str] | None = None
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    """One page of a round.

    `full_users`/`full_groups`: this page belongs to a complete listing of users/groups (set on
    every page of such a listing; a round can turn full part-way, after a 410). `cursor` is set on
    the round's last page only: where the next round starts.
    """

    users: tuple[DirectoryUser, ...] = ()
    removed: tuple[RemovedUser, ...] = ()
    groups: tuple[DirectoryGroup, ...] = ()
    full_users: bool = False
    full_groups: bool = False
    cursor: str | None = None
    last: bool = False
    notes: tuple[str, ...] = field(default=())  # what happened on the way (throttled, resynced), for the admin


class DirectoryReader(Protocol):
    """A directory connector: reads a round starting at `cursor` (None: from scratch, a full listing)."""

    def read(self, cursor: str | None) -> Iterator[DirectoryPage]: ...


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One person as the directory describes them now, read alone (`POST /v1/connections/{id}/sync` with
    an address). `groups`: every group they are a member of, when the connection's scope or teams name
    groups; None when none was read (the scope needs none), so their memberships are left as they are."""

    user: DirectoryUser
    groups: tuple[DirectoryGroup, ...] | None = None


class PersonReader(Protocol):
    """Reads one person of a directory: by the id it knows them by (`known_id`, from an earlier sync) or
    else their address (a sign-in name or mailbox); None when the directory has no such person."""

    def person(self, address: str, known_id: str | None) -> PersonRecord | None: ...


class ConnectorError(Exception):
    """The outside system refused or failed; `message` is for an admin, `action_required` when only they can fix it."""

    def __init__(self, message: str, *, action_required: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.action_required = action_required
        self.retry_after = retry_after


# Calendars --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """An event (or one instance of a recurring event) as a calendar shows it now.

    Times are aware and in UTC; `timezone` is the zone the organiser wrote it in (IANA name, Windows
    names already translated). All-day events run from midnight to midnight in that zone (UTC when
    unknown). `booking_id` is set when the event is one deskbridge wrote itself (found in its private
    extended property or transaction id): the sync never takes such an event in as the person's own.
    """

    event_id: str  # the provider's id of this event or instance; the ICS UID (+ instance) for feeds
    start: datetime
    end: datetime
    ical_uid: str | None = None
    recurrence_id: str | None = None  # the instance's original start (ISO 8601, UTC) in a series
    timezone: str | None = None
    all_day: bool = False
    show_as: str = "busy"  # free, tentative, busy, oof, workingElsewhere, unknown
    status: str = "confirmed"  # confirmed, tentative, cancelled
    title: str = ""
    location: str = ""
    categories: tuple[str, ...] = ()
    attendees: tuple[str, ...] = ()  # addresses
    working_location: str | None = None  # home, office, custom (Google working-location entries)
    working_location_label: str | None = None  # the office's, building's or desk's name
    etag: str | None = None  # etag / changeKey, to skip what did not change
    updated: datetime | None = None
    booking_id: int | None = None


@dataclass(frozen=True, slots=True)
class RemovedEvent:
    """An event gone from the calendar (deleted, or cancelled where the provider reports it so)."""

    event_id: str


@dataclass(frozen=True, slots=True)
class CalendarPage:
    """One page of a calendar round; as DirectoryPage: `full` pages list the whole window (whatever
    they leave out is gone), `cursor` is set on the last page only (sync token, delta link, ETag)."""

    events: tuple[CalendarEvent, ...] = ()
    removed: tuple[RemovedEvent, ...] = ()
    full: bool = False
    cursor: str | None = None
    last: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Window:
    """The stretch of time calendars are read for: from a day back to N days ahead, moving with time."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class BookingEntry:
    """A booking as it is written into its person's calendar."""

    booking_id: int
    start: datetime  # aware
    end: datetime
    timezone: str  # the organisation's IANA zone
    title: str  # e.g. "Desk 4.12 (deskbridge)"
    location: str  # the desk, building and floor
    office_label: str  # for working-location entries: the office or building
    sequence: int = 0  # bumped on every change


class CalendarReader(Protocol):
    """Reads one calendar: a round starting at `cursor` (None: the whole window, from scratch).

    A cursor that no longer fits (a 410, a moved window) makes the reader start from scratch and say
    so in the notes; the worker keeps the cursor only when the round completes.
    """

    def read(self, cursor: str | None, window: Window) -> Iterator[CalendarPage]: ...


class CalendarWriter(Protocol):
    """Writes bookings into one person's calendar; idempotent by booking id."""

    def put(self, entry: BookingEntry, event_id: str | None) -> str:
        """Create or update the booking's event; returns the provider's event id.

        With no `event_id` the writer first looks for an event carrying the booking id (a retried
        create after a crash), so an event is never made twice.
        """
        ...

    def delete(self, event_id: str) -> None:
        """Remove the booking's event; one already gone is fine."""
        ...


# Peer platforms ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonEvent:
    """An event of one person on a platform that lists everyone's at once (When I Work, Kadence,
    Resource Guru). `person` is their address, which names the member.

    `booking_reason` set: the event is a booking in its own right (a shift: "shift"; a Kadence desk
    booking: "WFO") at the office or desk `event.working_location_label` names; unset: an ordinary
    calendar entry (time off as show_as "oof", a project booking as "busy").
    """

    person: str
    event: CalendarEvent
    booking_reason: str | None = None


@dataclass(frozen=True, slots=True)
class PeoplePage:
    """One page of people's events; as CalendarPage, `full` pages list the whole window."""

    events: tuple[PersonEvent, ...] = ()
    removed: tuple[RemovedEvent, ...] = ()
    full: bool = False
    cursor: str | None = None
    last: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PeerDesk:
    """A desk a peer platform knows (Kadence spaces of type desk), for organisations that import them."""

    external_id: str
    label: str
    building: str = ""
    floor: str = ""


class PeopleReader(Protocol):
    """A peer platform: its people as a directory round, and everyone's events in a window."""

    def people(self, cursor: str | None) -> Iterator[DirectoryPage]: ...

    def events(self, cursor: str | None, window: Window) -> Iterator[PeoplePage]: ...

"""Which calendar events are office days, by the organisation's rules (`organisations.office_rules`).

Google working-location entries say it outright (`officeLocation`). For Outlook and ICS events an
organisation picks what counts: a category (e.g. "Office"), show-as `workingElsewhere` with a
location, or a keyword in the subject ("WFO", "in office"). Rules read the event as the calendar
sent it, before the privacy setting strips titles, so they work whatever is kept; they also read a
stored event (`ExternalEvent`) when the rules change later (worker/calendar/reevaluate.py), which is
the same thing while details are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from store.errors import Invalid

RULE_KEYS = frozenset({"categories", "keywords", "working_elsewhere_with_location"})


class EventFacts(Protocol):
    """What the rules read of an event: a `connectors.records.CalendarEvent` as read, or a stored
    `store.models.ExternalEvent` (whose enums are strings too)."""

    @property
    def status(self) -> str: ...
    @property
    def working_location(self) -> str | None: ...
    @property
    def working_location_label(self) -> str | None: ...
    @property
    def categories(self) -> Iterable[str]: ...
    @property
    def show_as(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def title(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OfficeRules:
    categories: frozenset[str] = frozenset()  # case-insensitive
    keywords: tuple[str, ...] = ()  # case-insensitive, anywhere in the subject
    working_elsewhere_with_location: bool = False

    @classmethod
    def from_settings(cls, rules: dict[str, Any]) -> OfficeRules:
        """The rules kept on the organisation (validated with `validate`)."""
        return cls(
            categories=frozenset(item.casefold() for item in rules.get("categories", ())),
            keywords=tuple(item.casefold() for item in rules.get("keywords", ())),
            working_elsewhere_with_location=bool(rules.get("working_elsewhere_with_location", False)),
        )


def validate(rules: dict[str, Any]) -> dict[str, Any]:
    """A clean copy of office rules, or Invalid naming what is wrong."""
    unknown = sorted(set(rules) - RULE_KEYS)
    if unknown:
        raise Invalid(f"unknown office rule {unknown[0]!r}", field="office_rules")
    clean: dict[str, Any] = {}
    for key in ("categories", "keywords"):
        value = rules.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise Invalid(f"office_rules.{key} must be a list of non-empty strings", field=f"office_rules.{key}")
        clean[key] = [item.strip() for item in value]
    flag = rules.get("working_elsewhere_with_location", False)
    if not isinstance(flag, bool):
        raise Invalid("office_rules.working_elsewhere_with_location must be true or false", field="office_rules")
    clean["working_elsewhere_with_location"] = flag
    return clean


def follows_rules(event: EventFacts) -> bool:
    """Whether the organisation's rules decide this event (a Google working-location entry decides itself)."""
    return event.working_location is None


def office_day(event: EventFacts, rules: OfficeRules) -> str | None:
    """The office (or desk) the event places its person in, "" when unnamed; None if it is no office day."""
    if event.status == "cancelled":
        return None
    if not follows_rules(event):  # Google says where the person works: nothing else counts
        return (event.working_location_label or "") if event.working_location == "office" else None
    if rules.categories & {category.casefold() for category in event.categories}:
        return event.location
    if rules.working_elsewhere_with_location and event.show_as == "workingElsewhere" and event.location.strip():
        return event.location
    subject = event.title.casefold()
    if any(keyword in subject for keyword in rules.keywords):
        return event.location
    return None


# Absence: a whole day out of office releases that day's desk bookings (organisations.release_on_absence).

ABSENT = "out_of_office"  # the reason a booking released by an absence is cancelled with


class AbsenceFacts(Protocol):
    """What `absent_days` reads of an event as a calendar or peer platform sent it (`CalendarEvent`)."""

    @property
    def status(self) -> str: ...
    @property
    def show_as(self) -> str: ...
    @property
    def all_day(self) -> bool: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def timezone(self) -> str | None: ...


def absent_days(event: AbsenceFacts, fallback_zone: str) -> tuple[datetime, datetime] | None:
    """The whole days an out-of-office entry covers, from the first midnight to the last (UTC), or None.

    Out of office is show-as `oof` as every connector reads it: Outlook's showAs, Google's `outOfOffice`
    entries, ICS/CalDAV `X-MICROSOFT-CDO-BUSYSTATUS:OOF`, When I Work time off, Resource Guru downtime.
    An all-day entry covers its days; a timed one (Google's out-of-office entries are never all-day)
    only the days it spans from midnight to midnight in its zone (the organisation's when it names
    none or one unknown here), so an afternoon off covers no day and releases nothing.
    """
    if event.status == "cancelled" or event.show_as != "oof":
        return None
    if event.all_day:
        return (event.start, event.end) if event.end > event.start else None
    zone = _zone(event.timezone) or _zone(fallback_zone) or ZoneInfo("UTC")
    local_start = event.start.astimezone(zone)
    first_day = (
        local_start.date()
        if local_start.timetz().replace(tzinfo=None) == time(0)
        else local_start.date() + timedelta(days=1)
    )
    last_day = event.end.astimezone(zone).date()  # the midnight starting the day the entry ends in
    if first_day >= last_day:
        return None
    return (
        datetime.combine(first_day, time(0), zone).astimezone(UTC),
        datetime.combine(last_day, time(0), zone).astimezone(UTC),
    )


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None

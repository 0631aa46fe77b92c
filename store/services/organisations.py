"""Organisations and their settings."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store import outbox
from store.errors import Conflict, Invalid, NotFound
from store.models import DirectoryPolicy, ExternalEvent, Organisation
from store.services import follow_ups, removals

MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 1, 365


def validate_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone, else raise Invalid."""
    if name not in _zones():
        raise Invalid(f"unknown time zone {name!r}; use an IANA name such as Europe/London", field="timezone")
    return name


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    """The IANA zone names this machine knows (scanning them takes tens of milliseconds: once)."""
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"} | {"UTC"})


def slugify(name: str) -> str:
    """A URL-safe identifier derived from a name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:80] or "organisation"


def create(session: Session, name: str, *, slug: str | None = None, timezone: str = "UTC") -> Organisation:
    """Create an organisation; its API stays off until an admin turns it on."""
    name = name.strip()
    if not name:
        raise Invalid("an organisation needs a name", field="name")
    slug = slugify(slug or name)
    if session.scalar(select(Organisation.id).where(Organisation.slug == slug)) is not None:
        raise Conflict(f"an organisation with slug {slug!r} exists", code="slug_taken", field="slug")
    organisation = Organisation(name=name, slug=slug, timezone=validate_timezone(timezone))
    session.add(organisation)
    session.flush()
    outbox.record(session, organisation.id, "organisation.created", {"organisation_id": organisation.id})
    return organisation


def get(session: Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("no such organisation")
    return organisation


def get_by_slug(session: Session, slug: str) -> Organisation:
    organisation = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        raise NotFound(f"no organisation with slug {slug!r}")
    return organisation


def list_all(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).order_by(Organisation.id)))


def update_settings(
    session: Session,
    organisation: Organisation,
    *,
    timezone: str | None = None,
    api_enabled: bool | None = None,
    directory_policy: DirectoryPolicy | str | None = None,
    calendar_busy_only: bool | None = None,
    calendar_window_days: int | None = None,
    office_rules: dict[str, Any] | None = None,
    offboarding_undo_days: int | None = None,
    release_on_absence: bool | None = None,
) -> Organisation:
    """Change the timezone, the API switch, what directories do with newcomers (invite them, or
    make them members at once), the calendar settings, how many days a removal can be undone or
    whether whole days out of office release desk bookings (`release_on_absence`, applied to absences
    read from then on); records `organisation.updated` with what changed.

    `office_rules` must already be clean (sync.calendar.rules.validate: the store knows no rules).
    Turning `calendar_busy_only` on also blanks what calendars already told (titles, locations,
    attendees, categories): the setting promises that only when people are busy is kept. A change
    of a calendar setting owes its follow-up (store.services.follow_ups), in this transaction.
    """
    changes: dict[str, object] = {}
    if timezone is not None and timezone != organisation.timezone:
        organisation.timezone = validate_timezone(timezone)
        changes["timezone"] = timezone
    if api_enabled is not None and api_enabled != organisation.api_enabled:
        organisation.api_enabled = api_enabled
        changes["api_enabled"] = api_enabled
    if directory_policy is not None:
        try:
            policy = DirectoryPolicy(directory_policy)
        except ValueError:
            choices = ", ".join(item.value for item in DirectoryPolicy)
            raise Invalid(f"directory_policy must be one of {choices}", field="directory_policy") from None
        if policy is not organisation.directory_policy:
            organisation.directory_policy = changes["directory_policy"] = policy
    if calendar_window_days is not None and calendar_window_days != organisation.calendar_window_days:
        if not MIN_WINDOW_DAYS <= calendar_window_days <= MAX_WINDOW_DAYS:
            raise Invalid(
                f"calendar_window_days must be from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}",
                field="calendar_window_days",
            )
        organisation.calendar_window_days = changes["calendar_window_days"] = calendar_window_days
    if offboarding_undo_days is not None and offboarding_undo_days != organisation.offboarding_undo_days:
        if not removals.MIN_UNDO_DAYS <= offboarding_undo_days <= removals.MAX_UNDO_DAYS:
            raise Invalid(
                f"offboarding_undo_days must be from {removals.MIN_UNDO_DAYS} (removals cannot be undone) "
                f"to {removals.MAX_UNDO_DAYS}",
                field="offboarding_undo_days",
            )
        organisation.offboarding_undo_days = changes["offboarding_undo_days"] = offboarding_undo_days
    if office_rules is not None and office_rules != organisation.office_rules:
        organisation.office_rules = changes["office_rules"] = office_rules
    if calendar_busy_only is not None and calendar_busy_only != organisation.calendar_busy_only:
        organisation.calendar_busy_only = changes["calendar_busy_only"] = calendar_busy_only
        if calendar_busy_only:
            _forget_details(session, organisation.id)
    if release_on_absence is not None and release_on_absence != organisation.release_on_absence:
        organisation.release_on_absence = changes["release_on_absence"] = release_on_absence
    if changes:
        outbox.record(session, organisation.id, "organisation.updated", {"organisation_id": organisation.id, **changes})
    for name in follow_ups.CALENDAR_SETTINGS:
        if name in changes:  # stored calendar events are owed being brought in line (worker.calendar.reevaluate)
            follow_ups.record(session, name, organisation.id, organisation.id)
    return organisation


def _forget_details(session: Session, organisation_id: int) -> None:
    """Blank the private parts of the organisation's stored calendar events (one statement)."""
    session.execute(
        update(ExternalEvent)
        .where(ExternalEvent.organisation_id == organisation_id)
        .values(title="", location="", categories=[], attendees=[], working_location_label=None),
        execution_options={"synchronize_session": False},
    )

"""Organisations and their settings."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import outbox
from store.errors import Conflict, Invalid, NotFound
from store.models import DirectoryPolicy, Organisation


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
) -> Organisation:
    """Change the timezone, the API switch or what directories do with newcomers (invite them, or
    make them members at once); records `organisation.updated` with what changed."""
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
    if changes:
        outbox.record(session, organisation.id, "organisation.updated", {"organisation_id": organisation.id, **changes})
    return organisation

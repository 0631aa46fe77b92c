"""First start of the embedded mode: an organisation, an admin and a token, made once; and the welcome."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Member, MemberStatus, Organisation, Role
from store.services import members, organisations, tokens

ORGANISATION_NAME = "My Organisation"
ORGANISATION_SLUG = "default"
ADMIN_EMAIL = "admin@example.com"


@dataclass(frozen=True)
class Bootstrap:
    """What `serve` tells the person starting it."""

    organisation: str
    slug: str
    admin_email: str | None  # None when the organisation has no active admin
    token: str | None  # the secret, only on the start that created it


def ensure_first_organisation(factory: sessionmaker[Session], timezone: str) -> Bootstrap:
    """Create the first organisation (API on), its admin and a token if the store has no organisation yet.

    Idempotent: once any organisation exists nothing is created and no secret is returned.
    """
    with transaction(factory) as session:
        existing = session.scalar(select(Organisation).order_by(Organisation.id).limit(1))
        if existing is not None:
            return Bootstrap(existing.name, existing.slug, _an_admin(session, existing), None)
        organisation = organisations.create(session, ORGANISATION_NAME, slug=ORGANISATION_SLUG, timezone=timezone)
        organisations.update_settings(session, organisation, api_enabled=True)
        admin = members.add(
            session, organisation.id, ADMIN_EMAIL, role=Role.ADMIN, display_name="Admin", api_access=True, source="cli"
        )
        _, secret = tokens.create(session, admin, name="first start")
        return Bootstrap(organisation.name, organisation.slug, admin.email, secret)


def _an_admin(session: Session, organisation: Organisation) -> str | None:
    return session.scalar(
        select(Member.email)
        .where(
            Member.organisation_id == organisation.id,
            Member.role == Role.ADMIN,
            Member.status == MemberStatus.ACTIVE,
        )
        .order_by(Member.id)
        .limit(1)
    )


def welcome(first: Bootstrap, base_url: str) -> list[str]:
    """The lines `serve` prints: the token and a ready-to-paste httpie example on the first start only."""
    base = base_url.rstrip("/")
    lines = [f"deskbridge is serving {first.organisation!r} on {base} (API docs: {base}/docs)."]
    if first.token is None:
        return [*lines, *_returning(first)]
    auth = f'"Authorization: token {first.token}"'
    return [
        *lines,
        f"First start: created the organisation {first.organisation!r} (slug {first.slug}) with its API on,",
        f"the admin {first.admin_email} and this API token. It is shown only now: keep it safe.",
        "",
        f"    {first.token}",
        "",
        "Try it with httpie (installed in .venv/bin):",
        f"    http {base}/api/my_upcoming_bookings/ {auth}",
        f"    http POST {base}/api/create_membership_invitation/ {auth} email_invited=someone@example.com",
        "",
    ]


def _returning(first: Bootstrap) -> list[str]:
    if first.admin_email is None:
        return [f"{first.slug} has no active admin: `deskbridge member add EMAIL --org {first.slug} --admin --api`."]
    return [
        f"Admin: {first.admin_email}. Its API token was shown on the first start; "
        f"`deskbridge token create {first.admin_email} --org {first.slug}` makes another."
    ]

"""First start of the embedded mode: an organisation, an admin and a token, made once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Member, Organisation, Role
from store.services import members, organisations, tokens

ADMIN_EMAIL = "admin@example.com"


@dataclass(frozen=True)
class Bootstrap:
    organisation: str
    admin_email: str
    token: str | None  # the secret, only on the start that created it


def ensure_first_organisation(factory: sessionmaker[Session], timezone: str) -> Bootstrap:
    """Create the first organisation, admin and token if the store has no organisation yet."""
    with transaction(factory) as session:
        existing = session.scalar(select(Organisation).order_by(Organisation.id).limit(1))
        if existing is not None:
            admin = session.scalar(
                select(Member).where(Member.organisation_id == existing.id, Member.role == Role.ADMIN).limit(1)
            )
            return Bootstrap(existing.name, admin.email if admin else "", None)
        organisation = organisations.create(session, "My Organisation", slug="default", timezone=timezone)
        organisations.update_settings(session, organisation, api_enabled=True)
        admin = members.add(
            session, organisation.id, ADMIN_EMAIL, role=Role.ADMIN, display_name="Admin", api_access=True, source="cli"
        )
        _, secret = tokens.create(session, admin, name="first start")
        return Bootstrap(organisation.name, admin.email, secret)

"""Emailed console sign-in links: asked for by address, mailed by the worker, used once.

Asking never says whether the address belongs to anyone (the page answers alike). The worker
makes the token when it sends the email (as for invitations) and only its hash is kept; a link
works once, for LINK_LIFETIME, and only while its member is active. Using it is one conditional
UPDATE, so two tabs racing with one link sign in once.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.errors import Invalid, NotAllowed, NotFound
from store.models import Member, MemberStatus, SignInLink
from store.services.members import hash_secret, normalise_email

LINK_LIFETIME = timedelta(minutes=15)
# One email a member per this long: asking again in a loop does not fill someone's inbox.
RESEND_AFTER = timedelta(minutes=1)


def request(session: Session, email: str, *, now: datetime | None = None) -> list[int]:
    """Make a link for each active membership of `email` (one a organisation); returns their ids."""
    now = now or utcnow()
    try:
        address = normalise_email(email)
    except Invalid:  # an address that is not one has no member: answered like an unknown one
        return []
    people = session.scalars(
        select(Member).where(Member.email == address, Member.status == MemberStatus.ACTIVE).order_by(Member.id)
    ).all()
    made: list[SignInLink] = []
    for member in people:
        recent = session.scalar(
            select(SignInLink.id).where(SignInLink.member_id == member.id, SignInLink.created_at > now - RESEND_AFTER)
        )
        if recent is None:
            made.append(
                SignInLink(
                    organisation_id=member.organisation_id,
                    member_id=member.id,
                    created_at=now,
                    expires_at=now + LINK_LIFETIME,
                )
            )
    session.add_all(made)
    session.flush()
    return [link.id for link in made]


def issue_token(session: Session, link: SignInLink, *, now: datetime | None = None) -> str | None:
    """A fresh token for a link about to be mailed, or None when it needs no email (sent, used, expired)."""
    if link.sent_at is not None or link.used_at is not None or link.expires_at <= (now or utcnow()):
        return None
    token = secrets.token_urlsafe(32)
    link.token_hash = hash_secret(token)
    return token


def mark_sent(link: SignInLink, *, now: datetime | None = None) -> None:
    """Note the email went out, so a redelivered job does not send a second one."""
    link.sent_at = now or utcnow()


def find(session: Session, token: str) -> SignInLink | None:
    """The link a token belongs to (used or not), or None."""
    if not token or len(token) > 100:
        return None
    return session.scalar(select(SignInLink).where(SignInLink.token_hash == hash_secret(token)))


def redeem(session: Session, token: str, *, now: datetime | None = None) -> Member:
    """Use a link: its member, once. NotFound for an unknown token; NotAllowed once used or expired,
    or when the member is no longer active."""
    now = now or utcnow()
    link = find(session, token)
    if link is None:
        raise NotFound("This sign-in link is not valid.")
    if link.expires_at <= now:
        raise NotAllowed("This sign-in link has expired. Ask for a new one.")
    used = session.execute(
        update(SignInLink)
        .where(SignInLink.id == link.id, SignInLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(used, "rowcount", 0) != 1:
        raise NotAllowed("This sign-in link was used already. Ask for a new one.")
    member = session.get_one(Member, link.member_id)
    if member.status is not MemberStatus.ACTIVE:
        raise NotAllowed("This account is no longer active.")
    return member


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete links past their lifetime (used or not: a used one is spent); returns how many went."""
    result = session.execute(delete(SignInLink).where(SignInLink.expires_at <= (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)

"""Web console sessions: started by a sign-in, read on every request, ended by signing out.

The cookie holds a random secret; only its hash is stored. A session is valid while it has not
expired, its member is active and was not removed since it started (a restored member signs in
again) and, when it was started with an API token, that token is live and its member still has API
access: removing a member or revoking their access ends their sessions at their next request, with
nothing to clean up first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.models import ApiToken, ConsoleSession, Member, MemberRemoval, MemberStatus, Organisation
from store.services.members import hash_secret

SESSION_LIFETIME = timedelta(hours=12)
SECRET_PREFIX = "dcs_"  # noqa: S105 - a marker, not a secret


@dataclass(frozen=True)
class SignedIn:
    """Who a valid session belongs to (rows of the request's store session)."""

    session_id: int
    member: Member
    organisation: Organisation


def start(session: Session, member: Member, *, api_token_id: int | None = None, now: datetime | None = None) -> str:
    """Start a session for an active member; returns the cookie's secret (never stored)."""
    if member.status is not MemberStatus.ACTIVE:
        raise ValueError("only active members sign in")  # the callers check first; a bug otherwise
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    started = now or utcnow()
    session.add(
        ConsoleSession(
            organisation_id=member.organisation_id,
            member_id=member.id,
            api_token_id=api_token_id,
            token_hash=hash_secret(secret),
            created_at=started,
            expires_at=started + SESSION_LIFETIME,
        )
    )
    session.flush()
    return secret


# A removal made after the session started ends it, even once undone (a restore makes the member
# active again, and their old sessions must not come back with them).
_removed_since_started = exists().where(
    MemberRemoval.member_id == ConsoleSession.member_id, MemberRemoval.removed_at >= ConsoleSession.created_at
)


def resolve(session: Session, secret: str, *, now: datetime | None = None) -> SignedIn | None:
    """The member behind a cookie's secret, or None when the session is unknown, expired or ended."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
        return None
    found = session.execute(
        select(ConsoleSession, Member, Organisation, ApiToken)
        .join(Member, Member.id == ConsoleSession.member_id)
        .join(Organisation, Organisation.id == ConsoleSession.organisation_id)
        .outerjoin(ApiToken, ApiToken.id == ConsoleSession.api_token_id)
        .where(ConsoleSession.token_hash == hash_secret(secret))
        .where(~_removed_since_started)
    ).one_or_none()
    if found is None:
        return None
    row, member, organisation, token = found
    if row.expires_at <= (now or utcnow()) or member.status is not MemberStatus.ACTIVE:
        return None
    if row.api_token_id is not None and (token is None or token.revoked_at is not None or not member.api_access):
        return None
    return SignedIn(row.id, member, organisation)


def end(session: Session, secret: str) -> None:
    """Sign out: the session's row goes (an unknown secret changes nothing)."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_secret(secret)))


def csrf_token(secret: str) -> str:
    """The session's CSRF token: derived from the cookie's secret, so a page can carry it while the
    secret stays in the HTTP-only cookie, and one session's token is no good for another."""
    return hash_secret("csrf:" + secret)


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete expired sessions; returns how many went."""
    result = session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)

"""Secret ICS feed URLs of a member's or a team's bookings.

The secret is the whole credential (calendar apps cannot send headers), so only its hash is kept;
rotating makes a new one and the old URL stops working at once.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import Invalid, NotFound
from store.models import Feed
from store.services.members import hash_secret

PREFIX = "dbfeed_"


def _new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(24)


def create(
    session: Session, organisation_id: int, *, member_id: int | None = None, team_id: int | None = None
) -> tuple[Feed, str]:
    """A feed of one member's or one team's bookings; returns it and its secret (shown once)."""
    if (member_id is None) == (team_id is None):
        raise Invalid("a feed is of one member or of one team", field="member_id")
    secret = _new_secret()
    feed = Feed(organisation_id=organisation_id, member_id=member_id, team_id=team_id, secret_hash=hash_secret(secret))
    session.add(feed)
    session.flush()
    outbox.record(session, organisation_id, "feed.created", _describe(feed))
    return feed, secret


def rotate(session: Session, feed: Feed) -> str:
    """A new secret for the feed; the old URL stops working."""
    secret = _new_secret()
    feed.secret_hash = hash_secret(secret)
    feed.rotated_at = utcnow()
    outbox.record(session, feed.organisation_id, "feed.rotated", _describe(feed))
    return secret


def delete(session: Session, feed: Feed) -> None:
    outbox.record(session, feed.organisation_id, "feed.deleted", _describe(feed))
    session.delete(feed)


def get(session: Session, organisation_id: int, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None or feed.organisation_id != organisation_id:
        raise NotFound(f"no feed {feed_id}")
    return feed


def by_secret(session: Session, secret: str) -> Feed | None:
    """The feed a URL's secret opens, or None."""
    if not secret.startswith(PREFIX):
        return None
    return session.scalar(select(Feed).where(Feed.secret_hash == hash_secret(secret)))


def _describe(feed: Feed) -> dict[str, int | None]:
    return {"feed_id": feed.id, "member_id": feed.member_id, "team_id": feed.team_id}

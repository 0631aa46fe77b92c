"""Every member's pages: my bookings (cancel, check in and out), my API tokens, my calendar feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.console.auth import Posted, Refused, Signed, Viewer
from api.console.pages import ConsoleRoute, done, render
from api.deps import DB, context
from api.v1.common import ResourceId
from api.v1.endpoints.feeds import feed_url
from store.columns import utcnow
from store.errors import NotFound
from store.models import LIVE_STATUSES, Booking, Desk, Feed
from store.services import bookings, feeds, tokens

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PAST_DAYS = 90
PAST_SHOWN = 50


@router.get("/")
def home(viewer: Signed) -> RedirectResponse:
    """The console opens on the member's bookings."""
    return RedirectResponse("/console/bookings", status_code=303)


# --- bookings ----------------------------------------------------------------------------------


def _desks(db: Session, rows: list[Booking]) -> dict[int, Desk]:
    ids = {row.desk_id for row in rows if row.desk_id is not None}
    return {desk.id: desk for desk in db.scalars(select(Desk).where(Desk.id.in_(ids)))} if ids else {}


@router.get("/bookings")
def my_bookings(request: Request, viewer: Signed, db: DB) -> HTMLResponse:
    """Upcoming bookings (live, not yet ended) and the past ones of the last 90 days."""
    now = utcnow()
    mine = bookings.BookingFilter(member_id=viewer.member.id)
    upcoming = list(
        db.scalars(
            bookings.select_bookings(
                viewer.organisation.id,
                bookings.BookingFilter(member_id=viewer.member.id, statuses=LIVE_STATUSES, ends_after=now),
            ).order_by(Booking.start_at)
        )
    )
    shown = {row.id for row in upcoming}
    past = [
        row
        for row in db.scalars(
            bookings.select_bookings(viewer.organisation.id, mine)
            .where(Booking.start_at > now - timedelta(days=PAST_DAYS))
            .order_by(Booking.start_at.desc())
            .limit(PAST_SHOWN + len(shown))
        )
        if row.id not in shown
    ][:PAST_SHOWN]
    return render(
        request,
        "bookings.html",
        viewer,
        upcoming=upcoming,
        past=past,
        desks=_desks(db, upcoming + past),
        now=now,
        check_in_from=now + timedelta(minutes=30),
    )


def _own_booking(db: Session, viewer: Viewer, booking_id: int) -> Booking:
    booking = bookings.get(db, viewer.organisation.id, booking_id)
    if booking.member_id != viewer.member.id:
        raise NotFound(f"no booking {booking_id}")  # others' bookings are not on this page
    return booking


@router.post("/bookings/{booking_id}/cancel")
def cancel_booking(request: Request, booking_id: ResourceId, viewer: Posted, db: DB) -> Response:
    """Cancel one of my bookings."""
    bookings.cancel(db, _own_booking(db, viewer, booking_id), reason="cancelled_by_member")
    db.commit()
    return done(request, "/console/bookings", "Booking cancelled.")


@router.post("/bookings/{booking_id}/check-in")
def check_in(request: Request, booking_id: ResourceId, viewer: Posted, db: DB) -> Response:
    """Check in (from 30 minutes before the start until the end)."""
    bookings.check_in(db, _own_booking(db, viewer, booking_id))
    db.commit()
    return done(request, "/console/bookings", "Checked in.")


@router.post("/bookings/{booking_id}/check-out")
def check_out(request: Request, booking_id: ResourceId, viewer: Posted, db: DB) -> Response:
    """Check out: the desk is free for the rest of the slot."""
    bookings.check_out(db, _own_booking(db, viewer, booking_id))
    db.commit()
    return done(request, "/console/bookings", "Checked out.")


# --- API tokens --------------------------------------------------------------------------------


def _tokens_page(request: Request, viewer: Viewer, db: Session, **extra: Any) -> HTMLResponse:
    rows = list(db.scalars(tokens.select_tokens(viewer.organisation.id, member_id=viewer.member.id)))
    return render(request, "tokens.html", viewer, tokens=rows, no_store="new_secret" in extra, **extra)


@router.get("/tokens")
def my_tokens(request: Request, viewer: Signed, db: DB) -> HTMLResponse:
    """My live API tokens; making one only when the organisation and an admin allow it."""
    return _tokens_page(request, viewer, db)


@router.post("/tokens")
def create_token(
    request: Request, viewer: Posted, db: DB, name: Annotated[str, Form(max_length=100)] = ""
) -> HTMLResponse:
    """A new token: its secret is on this answer only."""
    if not viewer.may_use_api:
        raise Refused("Tokens need the organisation's API turned on and API access given to you by an admin.")
    token, secret = tokens.create(db, viewer.member, name=name)
    db.commit()
    return _tokens_page(request, viewer, db, new_secret=secret, new_name=token.name or token.prefix)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: ResourceId, viewer: Posted, db: DB) -> Response:
    """Revoke one of my tokens at once (a console session signed in with it ends too)."""
    token = tokens.get(db, viewer.organisation.id, token_id)
    if token.member_id != viewer.member.id or token.revoked_at is not None:
        raise NotFound(f"no token {token_id}")
    tokens.revoke(db, token)
    db.commit()
    return done(request, "/console/tokens", f"Token {token.prefix}… revoked.")


# --- calendar feed -----------------------------------------------------------------------------


def _my_feeds(db: Session, viewer: Viewer) -> list[Feed]:
    query = select(Feed).where(Feed.organisation_id == viewer.organisation.id, Feed.member_id == viewer.member.id)
    return list(db.scalars(query.order_by(Feed.id)))


def _feed_page(request: Request, viewer: Viewer, db: Session, **extra: Any) -> HTMLResponse:
    return render(request, "feed.html", viewer, feeds=_my_feeds(db, viewer), no_store="feed_url" in extra, **extra)


@router.get("/feed")
def my_feed(request: Request, viewer: Signed, db: DB) -> HTMLResponse:
    """My calendar feeds. Their URLs are secrets, shown when made or rotated."""
    return _feed_page(request, viewer, db)


@router.post("/feed")
def create_feed(request: Request, viewer: Posted, db: DB) -> HTMLResponse:
    """A new feed URL of my bookings."""
    feed, secret = feeds.create(db, viewer.organisation.id, member_id=viewer.member.id)
    db.commit()
    return _feed_page(request, viewer, db, feed_url=feed_url(context(request), secret), feed_id=feed.id)


@router.post("/feed/{feed_id}/rotate")
def rotate_feed(request: Request, feed_id: ResourceId, viewer: Posted, db: DB) -> HTMLResponse:
    """A new URL for a feed; the old one stops working."""
    feed = feeds.get(db, viewer.organisation.id, feed_id)
    if feed.member_id != viewer.member.id:
        raise NotFound(f"no feed {feed_id}")
    secret = feeds.rotate(db, feed)
    db.commit()
    return _feed_page(request, viewer, db, feed_url=feed_url(context(request), secret), feed_id=feed.id)

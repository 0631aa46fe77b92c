"""ICS feeds of bookings: secret URLs a calendar app subscribes to.

A member makes feeds of their own bookings; admins make them for any member or for a team. The URL
holds the secret (calendar apps cannot send a token), so it is shown when a feed is made or rotated
and never again: only the secret's hash is kept. The URL itself (`public_router`) needs no token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.deps import DB, ApiCaller, context
from api.errors import ApiError
from api.ratelimit import day_window
from api.v1 import feed_calendar
from api.v1.common import RequestBody, Resource, ResourceId, Timestamp, is_admin, path_id, problems
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.errors import NotFound
from store.models import Feed, MemberStatus
from store.services import feeds, members, teams
from store.services.tokens import Caller

router = APIRouter(prefix="/feeds", tags=["feeds"])
# The feed's URL: no API token, the secret in the path is the credential.
public_router = APIRouter(prefix="/feeds", tags=["feeds"])

Context = Annotated[ApiContext, Depends(context)]
KEYSET = Keyset("feeds", (Feed.id,))
FeedId = Annotated[int, path_id("The feed's id.")]
NO_STORE = {"Cache-Control": "no-store"}
CALENDAR = "text/calendar; charset=utf-8"
FEED_LIMIT_FACTOR = 10  # a feed's daily requests, in members' daily limits
MAX_SECRET = 100  # longer than any secret made (dbfeed_ + 32 characters); longer ones are unknown


class FeedOut(Resource):
    """A secret ICS feed of a member's or a team's bookings. Its URL is never part of it."""

    id: int
    member_id: int | None = Field(description="Whose bookings; null for a team's feed.")
    team_id: int | None = Field(description="The team whose members' bookings it holds; null for a member's.")
    rotated_at: Timestamp | None = Field(description="When the URL last changed.")
    created_at: Timestamp


class FeedCreated(FeedOut):
    """A feed with its URL: shown only now (rotate the feed for a new one)."""

    url: str = Field(description="Subscribe to this URL in a calendar app; keep it secret.")


class FeedIn(RequestBody):
    """Whose bookings the feed holds: leave both out for your own."""

    member_id: ResourceId | None = Field(default=None, description="A member's bookings (admins, for anyone).")
    team_id: ResourceId | None = Field(default=None, description="A team's members' bookings (admins only).")


def feed_url(ctx: ApiContext, secret: str) -> str:
    """The feed's secret URL, shown once when it is made or rotated (here and in the console)."""
    return f"{ctx.public_base_url.rstrip('/')}/v1/feeds/{secret}.ics"


def _created(ctx: ApiContext, feed: Feed, secret: str) -> FeedCreated:
    return FeedCreated.model_validate({**FeedOut.model_validate(feed).model_dump(), "url": feed_url(ctx, secret)})


def _visible(caller: Caller, feed: Feed) -> bool:
    return is_admin(caller) or feed.member_id == caller.member.id


def get_feed(db: DB, caller: ApiCaller, feed_id: FeedId) -> Feed:
    """The caller's feed from the path (any of the organisation's for an admin); others' are unknown."""
    feed = feeds.get(db, caller.organisation.id, feed_id)
    if not _visible(caller, feed):
        raise NotFound(f"no feed {feed_id}")  # the same answer as an unknown id: feeds are private
    return feed


Chosen = Annotated[Feed, Depends(get_feed)]


def _owner(db: Session, caller: Caller, body: FeedIn) -> tuple[int | None, int | None]:
    """The member or team the feed is of, once the caller may have it."""
    organisation_id = caller.organisation.id
    if body.member_id is not None and body.team_id is not None:
        raise ApiError(422, "A feed is of one member or of one team, not both.", field="team_id")
    if body.team_id is not None:
        if not is_admin(caller):
            raise ApiError(403, "Only admins can make a team's feed.", code="admin_only")
        return None, teams.get(db, organisation_id, body.team_id).id
    member_id = body.member_id if body.member_id is not None else caller.member.id
    if member_id != caller.member.id and not is_admin(caller):
        raise ApiError(403, "Only admins can make a feed of someone else's bookings.", code="admin_only")
    if members.get(db, organisation_id, member_id).status is MemberStatus.REMOVED:
        raise ApiError(409, "This member was removed; their bookings have no feed.", code="member_removed")
    return member_id, None


@router.post("", status_code=201, summary="Make a feed", responses=problems(400, 404, 409, 413, 415, 422))
def create_feed(response: Response, caller: ApiCaller, db: DB, ctx: Context, body: FeedIn | None = None) -> FeedCreated:
    """Make a secret ICS feed of your bookings; admins, of any member's (`member_id`) or a team's
    (`team_id`). The answer holds the URL, shown only now. The feed holds bookings from 30 days back
    to the organisation's calendar window ahead; cancelled ones stay 30 days, marked cancelled. The
    body is optional: none is the same as `{}` (a feed of your own bookings)."""
    member_id, team_id = _owner(db, caller, body or FeedIn())
    feed, secret = feeds.create(db, caller.organisation.id, member_id=member_id, team_id=team_id)
    db.commit()
    response.headers.update(NO_STORE)
    return _created(ctx, feed, secret)


@router.get("", summary="List feeds", responses=problems(422))
def list_feeds(caller: ApiCaller, db: DB, paging: Paging) -> Page[FeedOut]:
    """Your feeds; an admin sees every feed of the organisation. URLs are never listed."""
    query = select(Feed).where(Feed.organisation_id == caller.organisation.id)
    if not is_admin(caller):
        query = query.where(Feed.member_id == caller.member.id)
    rows, cursor = fetch(db, query, KEYSET, paging)
    return page_of([FeedOut.model_validate(row) for row in rows], cursor)


@router.post("/{feed_id}/rotate", summary="Rotate a feed's URL", responses=problems(404))
def rotate_feed(feed: Chosen, response: Response, db: DB, ctx: Context) -> FeedCreated:
    """A new URL for the feed, shown only now; the old one stops working at once (a leaked URL)."""
    secret = feeds.rotate(db, feed)
    db.commit()
    response.headers.update(NO_STORE)
    return _created(ctx, feed, secret)


@router.delete("/{feed_id}", status_code=204, summary="Delete a feed", responses=problems(404))
def delete_feed(feed: Chosen, db: DB) -> Response:
    """Delete the feed; its URL stops working."""
    feeds.delete(db, feed)
    db.commit()
    return Response(status_code=204)


# Left out of the OpenAPI document: it answers a calendar app, not an API client, and its URL is
# only ever handed out whole by the routes above.
@public_router.api_route("/{secret}.ics", methods=["GET", "HEAD"], include_in_schema=False)
def feed_calendar_file(secret: str, request: Request, db: DB, ctx: Context) -> Response:
    """The feed as text/calendar; 304 when `If-None-Match` holds its current ETag. An unknown,
    rotated or deleted secret is a 404 that says nothing more. HEAD answers as GET does, without
    the body (calendar apps and link checkers ask it before subscribing)."""
    feed = feeds.by_secret(db, secret) if len(secret) <= MAX_SECRET else None
    if feed is None or feed_calendar.owner_gone(db, feed):
        raise ApiError(404, "No such feed.", code="not_found")
    _count(ctx, feed.id)
    served = feed_calendar.serve(db, feed, ctx.public_base_url)
    headers = {"ETag": served.etag, "Cache-Control": "private, no-cache"}
    tags = _tags(request.headers.get("if-none-match", ""))
    if served.etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(media_type=CALENDAR, headers={**headers, "Content-Length": str(len(served.body))})
    return Response(served.body, media_type=CALENDAR, headers=headers)


def _tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compare equal, RFC 9110 §13.1.2)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _count(ctx: ApiContext, feed_id: int) -> None:
    # Per feed: one subscriber polls a few times an hour at most, but a team's feed has many (fifty
    # phones every 15 minutes make 4,800 a day), so a feed may take ten members' worth of requests.
    # Only a runaway client or a leaked URL meets that.
    limit = ctx.rate_limit_per_day * FEED_LIMIT_FACTOR
    if limit <= 0:
        return
    day, reset = day_window()
    if ctx.counter.hit(f"ratelimit:feed:{feed_id}:{day}", reset) > limit:
        raise ApiError(
            429, "This feed was fetched too often today.", code="rate_limited", headers={"Retry-After": str(reset)}
        )

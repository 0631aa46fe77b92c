"""/v1/feeds: secret ICS feeds of bookings; the URL's calendar read back through icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Booking, Feed, Member, Organisation
from store.services import bookings, members, teams
from tests.api.v1.conftest import World, add_member, assert_problem, error_fields, hours_from_now, nothing_written
from tests.conftest import auth, events, make_client


def create(client: TestClient, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/feeds", json=body or {}, headers=auth(token))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created: dict[str, Any] = response.json()
    return created


def path(url: str) -> str:
    assert url.startswith("http://testserver/v1/feeds/dbfeed_"), url
    assert url.endswith(".ics")
    return url.removeprefix("http://testserver")


def calendar(client: TestClient, url: str) -> icalendar.Calendar:
    response = client.get(path(url))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    parsed = icalendar.Calendar.from_ical(response.content)
    # The round trip: icalendar writes back exactly the bytes served (folding, escaping, CRLF).
    assert parsed.to_ical() == response.content
    return parsed


def vevents(cal: icalendar.Calendar) -> dict[str, icalendar.Component]:
    return {str(event["UID"]): event for event in cal.walk("VEVENT")}


def sequence(event: icalendar.Component) -> int:
    value = event.decoded("SEQUENCE")
    assert isinstance(value, int)
    return value


def stamp(event: icalendar.Component) -> datetime:
    value = event.decoded("DTSTAMP")
    assert isinstance(value, datetime)
    return value


def book(factory: sessionmaker[Session], member_id: int, start_hours: float, **fields: Any) -> int:
    with transaction(factory) as session:
        member = session.get_one(Member, member_id)
        booking = bookings.create(
            session, member, start=hours_from_now(start_hours), end=hours_from_now(start_hours + 2), **fields
        )
        return booking.id


def test_a_member_makes_a_feed_of_their_bookings(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    org = world.org
    created = create(client, org.member_token)
    assert (created["member_id"], created["team_id"], created["rotated_at"]) == (org.member.id, None, None)
    assert set(created) == {"id", "member_id", "team_id", "rotated_at", "created_at", "url"}

    cal = calendar(client, created["url"])
    assert str(cal["X-WR-CALNAME"]) == "William: desk bookings"
    (event,) = vevents(cal).values()
    assert str(event["UID"]) == f"booking-{world.booking_id}@testserver"
    assert (str(event["SUMMARY"]), str(event["LOCATION"])) == ("Desk 11", "Desk 11, HQ")
    assert (str(event["STATUS"]), str(event["TRANSP"])) == ("CONFIRMED", "TRANSPARENT")
    assert str(event["X-DESKBRIDGE-BOOKING-ID"]) == str(world.booking_id)
    with api_factory() as session:
        booking = session.get_one(Booking, world.booking_id)
        assert event.decoded("DTSTART") == booking.start_at
        assert event.decoded("DTEND") == booking.end_at
        # DTSTAMP is the latest change among the bookings, not the time of the request.
        assert event.decoded("DTSTAMP") == booking.updated_at.replace(microsecond=0)
    assert events(api_factory, org.organisation.id)[-1].data == {
        "feed_id": created["id"],
        "member_id": org.member.id,
        "team_id": None,
    }


def test_the_url_is_shown_once(client: TestClient, world: World) -> None:
    created = create(client, world.org.member_token)
    secret = path(created["url"]).rsplit("/", 1)[1]
    listed = client.get("/v1/feeds", headers=auth(world.org.member_token))
    assert listed.status_code == 200
    assert secret not in listed.text
    assert {item["id"] for item in listed.json()["data"]} == {world.feed_id, created["id"]}
    assert all("url" not in item for item in listed.json()["data"])


def test_unchanged_feeds_answer_304(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    url = path(create(client, world.org.member_token)["url"])
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get(url)
    assert (again.content, again.headers["etag"]) == (first.content, etag)  # the same bytes on every poll

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        not_modified = client.get(url, headers={"If-None-Match": header})
        assert not_modified.status_code == 304, header
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200

    book(api_factory, world.member_id, 30)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert len(vevents(icalendar.Calendar.from_ical(changed.content))) == 2


def test_changes_bump_the_sequence_and_cancellations_stay(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    url = create(client, world.org.member_token)["url"]
    uid = f"booking-{world.booking_id}@testserver"
    before = vevents(calendar(client, url))[uid]

    moved = client.patch(
        f"/v1/bookings/{world.booking_id}", json={"details": "Moved"}, headers=auth(world.org.member_token)
    )
    assert moved.status_code == 200
    after_move = vevents(calendar(client, url))[uid]
    assert sequence(after_move) == sequence(before) + 1
    assert stamp(after_move) >= stamp(before)

    cancelled = client.post(f"/v1/bookings/{world.booking_id}/cancel", headers=auth(world.org.member_token))
    assert cancelled.status_code == 200
    gone = vevents(calendar(client, url))[uid]
    assert str(gone["STATUS"]) == "CANCELLED"
    assert sequence(gone) == sequence(after_move) + 1


def test_two_changes_within_one_second_are_two_sequences(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    url = create(client, world.org.member_token)["url"]
    uid = f"booking-{world.booking_id}@testserver"
    # Whatever the clock says, each change is one more: here both land on the same updated_at.
    frozen = datetime(2030, 1, 1, tzinfo=UTC)
    seen = [sequence(vevents(calendar(client, url))[uid])]
    for details in ("First", "Second"):
        with transaction(api_factory) as session:
            session.execute(
                update(Booking).where(Booking.id == world.booking_id).values(details=details, updated_at=frozen)
            )
        seen.append(sequence(vevents(calendar(client, url))[uid]))
    assert seen == [seen[0], seen[0] + 1, seen[0] + 2]


def test_head_answers_like_get_without_a_body(client: TestClient, world: World) -> None:
    url = path(create(client, world.org.member_token)["url"])
    got = client.get(url)

    head = client.head(url)

    assert head.status_code == 200
    assert head.content == b""
    for name in ("etag", "content-type", "cache-control", "content-length"):
        assert head.headers[name] == got.headers[name], name
    assert client.head(url, headers={"If-None-Match": got.headers["etag"]}).status_code == 304
    missing = client.head("/v1/feeds/dbfeed_unknown.ics")
    assert (missing.status_code, missing.content) == (404, b"")


def test_what_the_feed_spans(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    member_id = world.member_id
    recent = book(api_factory, member_id, -24 * 20)  # 20 days ago: in
    old = book(api_factory, member_id, -24 * 40)  # 40 days ago: out
    ahead = book(api_factory, member_id, 24 * 50)  # within the 60-day window: in
    beyond = book(api_factory, member_id, 24 * 70)  # past it: out
    long_cancelled = book(api_factory, member_id, 24 * 10)
    with transaction(api_factory) as session:
        booking = session.get_one(Booking, long_cancelled)
        bookings.cancel(session, booking, now=datetime.now(UTC) - timedelta(days=31))
    others = book(api_factory, world.org.admin.id, 30)  # someone else's: out

    uids = set(vevents(calendar(client, create(client, world.org.member_token)["url"])))
    expected = {world.booking_id, recent, ahead}
    assert uids == {f"booking-{booking_id}@testserver" for booking_id in expected}
    assert not {old, beyond, long_cancelled, others} & expected

    with transaction(api_factory) as session:
        session.get_one(Organisation, world.org.organisation.id).calendar_window_days = 90
    assert f"booking-{beyond}@testserver" in vevents(calendar(client, create(client, world.org.member_token)["url"]))


def test_a_team_feed_says_whose_bookings(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    org = world.org
    created = create(client, org.admin_token, {"team_id": world.team_id})
    assert (created["member_id"], created["team_id"]) == (None, world.team_id)
    # The admin is not in the team: their booking stays out.
    book(api_factory, org.admin.id, 30, desk_id=None)
    cal = calendar(client, created["url"])
    assert str(cal["X-WR-CALNAME"]) == "Platform: desk bookings"
    assert [str(event["SUMMARY"]) for event in vevents(cal).values()] == ["William: Desk 11"]

    with transaction(api_factory) as session:
        team = teams.get(session, org.organisation.id, world.team_id)
        teams.add_member(session, team, members.get(session, org.organisation.id, org.admin.id))
    summaries = sorted(str(event["SUMMARY"]) for event in vevents(calendar(client, created["url"])).values())
    assert summaries == ["Ada: Office day", "William: Desk 11"]


def test_who_may_make_which_feed(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    org = world.org
    with nothing_written(api_factory):
        assert_problem(
            client.post("/v1/feeds", json={"team_id": world.team_id}, headers=auth(org.member_token)), 403, "admin_only"
        )
        assert_problem(
            client.post("/v1/feeds", json={"member_id": org.admin.id}, headers=auth(org.member_token)),
            403,
            "admin_only",
        )
        for body, field in [
            ({"member_id": org.member.id, "team_id": world.team_id}, "team_id"),
            ({"member_id": 0}, "member_id"),
            ({"team_id": "platform"}, "team_id"),
            ({"url": "https://x.example"}, "url"),
        ]:
            response = client.post("/v1/feeds", json=body, headers=auth(org.admin_token))
            assert error_fields(assert_problem(response, 422)) == {field}, body
        for body in ({"member_id": 987654}, {"team_id": 987654}):
            assert_problem(client.post("/v1/feeds", json=body, headers=auth(org.admin_token)), 404, "not_found")
    # A member may name themselves; an admin anyone.
    assert create(client, org.member_token, {"member_id": org.member.id})["member_id"] == org.member.id
    assert create(client, org.admin_token, {"member_id": org.member.id})["member_id"] == org.member.id


def test_other_organisations_members_and_teams_are_unknown(
    client: TestClient, api_factory: sessionmaker[Session], world: World, other_world: World
) -> None:
    intruder = other_world.org.admin_token
    with nothing_written(api_factory):
        for body in ({"member_id": world.member_id}, {"team_id": world.team_id}):
            assert_problem(client.post("/v1/feeds", json=body, headers=auth(intruder)), 404, "not_found")
    listed = client.get("/v1/feeds", headers=auth(intruder)).json()["data"]
    assert [item["id"] for item in listed] == [other_world.feed_id]


def test_members_see_and_change_only_their_own_feeds(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    org = world.org
    admins = create(client, org.admin_token)
    assert [item["id"] for item in client.get("/v1/feeds", headers=auth(org.member_token)).json()["data"]] == [
        world.feed_id
    ]
    assert {item["id"] for item in client.get("/v1/feeds", headers=auth(org.admin_token)).json()["data"]} == {
        world.feed_id,
        admins["id"],
    }
    with nothing_written(api_factory):
        for method, suffix in (("POST", "/rotate"), ("DELETE", "")):
            response = client.request(method, f"/v1/feeds/{admins['id']}{suffix}", headers=auth(org.member_token))
            assert_problem(response, 404, "not_found")
    # Admins manage anyone's.
    assert client.post(f"/v1/feeds/{world.feed_id}/rotate", headers=auth(org.admin_token)).status_code == 200
    assert client.delete(f"/v1/feeds/{world.feed_id}", headers=auth(org.admin_token)).status_code == 204


def test_rotation_kills_the_old_url(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    created = create(client, world.org.member_token)
    old = path(created["url"])
    assert client.get(old).status_code == 200

    response = client.post(f"/v1/feeds/{created['id']}/rotate", headers=auth(world.org.member_token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    rotated = response.json()
    assert rotated["id"] == created["id"]
    assert rotated["rotated_at"] is not None
    assert rotated["url"] != created["url"]
    assert calendar(client, rotated["url"])
    body = assert_problem(client.get(old), 404, "not_found")
    assert body["detail"] == "No such feed."
    assert [e.type for e in events(api_factory, world.org.organisation.id)][-1] == "feed.rotated"


def test_deleted_unknown_and_removed_members_feeds_are_404(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    org = world.org
    deleted = create(client, org.member_token)
    assert client.delete(f"/v1/feeds/{deleted['id']}", headers=auth(org.member_token)).status_code == 204
    leaver_id, leaver_token = add_member(api_factory, org, "leaver@acme.example")
    leavers = create(client, leaver_token)
    assert client.get(path(leavers["url"])).status_code == 200
    with transaction(api_factory) as session:
        members.remove(session, members.get(session, org.organisation.id, leaver_id))

    answers = [
        client.get(path(deleted["url"])),
        client.get(path(leavers["url"])),
        client.get("/v1/feeds/dbfeed_unknown.ics"),
        client.get("/v1/feeds/not-a-feed.ics"),
        client.get("/v1/feeds/dbfeed_" + "x" * 5000 + ".ics"),
    ]
    for response in answers:
        body = assert_problem(response, 404, "not_found")
        # Nothing tells a deleted feed from one that never was, or whose it was.
        assert (body["detail"], set(body)) == ("No such feed.", {"type", "title", "status", "detail", "instance"})
    with nothing_written(api_factory):
        response = client.post("/v1/feeds", json={"member_id": leaver_id}, headers=auth(org.admin_token))
    assert_problem(response, 409, "member_removed")


def test_the_url_needs_no_token_and_ignores_the_api_switch(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    url = path(create(client, world.org.member_token)["url"])
    assert "x-ratelimit-limit" not in client.get(url).headers
    assert client.get(url, headers=auth("dsk_not-a-real-token")).status_code == 200
    with transaction(api_factory) as session:
        session.get_one(Organisation, world.org.organisation.id).api_enabled = False
    # A subscription is a calendar's, not an API client's: it keeps working until rotated or deleted.
    assert client.get(url).status_code == 200


def test_a_feed_fetched_too_often_is_429(api_factory: sessionmaker[Session], world: World) -> None:
    # Ten members' daily limit: a team's feed is polled by many subscribers.
    limited = make_client(api_factory, rate_limit=3)
    url = path(create(limited, world.org.member_token)["url"])
    other = path(create(limited, world.org.admin_token)["url"])
    for _ in range(30):
        assert limited.get(url).status_code == 200
    response = limited.get(url)
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) > 0
    assert limited.get(other).status_code == 200  # counted per feed


def test_feeds_are_kept_hashed(api_factory: sessionmaker[Session], client: TestClient, world: World) -> None:
    created = create(client, world.org.member_token)
    secret = path(created["url"]).rsplit("/", 1)[1].removesuffix(".ics")
    with api_factory() as session:
        stored = session.get_one(Feed, created["id"])
        assert secret not in stored.secret_hash
    assert not any(secret in str(event.data) for event in events(api_factory, world.org.organisation.id))


def test_no_body_is_an_empty_one(client: TestClient, world: World) -> None:
    # Every field is optional, so no body at all (or an empty one sent as JSON) is the same as `{}`.
    headers = auth(world.org.member_token)
    bare = client.post("/v1/feeds", headers=headers)
    empty = client.post("/v1/feeds", content=b"", headers={**headers, "Content-Type": "application/json"})

    for response in (bare, empty):
        assert response.status_code == 201, response.text
        assert (response.json()["member_id"], response.json()["team_id"]) == (world.org.member.id, None)

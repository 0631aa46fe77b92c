"""The console over HTTP (TestClient): sign-in, sessions, CSRF and the refusals every form makes.
The same flows in a real browser are in test_browser.py."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.console.admin_connections import STATUS_WORDS
from api.jobs import Answered
from store.columns import utcnow
from store.db import transaction
from store.models import (
    Booking,
    BookingStatus,
    ConnectionStatus,
    ConsoleSession,
    DirectoryPolicy,
    MemberStatus,
    OutboxEvent,
    SignInLink,
)
from store.secret_box import SecretBox
from store.services import (
    bookings,
    desks,
    members,
    organisations,
    outbox_relay,
    sign_in_links,
    teams,
    tokens,
    webhook_endpoints,
)
from tests.conftest import Org, RecordedJobs, api_context

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def jobs() -> RecordedJobs:
    """What the pages asked of the worker. A test send finds nothing listening (port 9)."""
    return RecordedJobs(answer=Answered(success=False, status_code=None, error="Cannot connect to host 127.0.0.1:9"))


def links(jobs: RecordedJobs) -> list[object]:
    """The sign-in links whose email was asked for."""
    return [link_id for (link_id,) in jobs.of("email_sign_in_link")]


@pytest.fixture
def console(api_factory: sessionmaker[Session], jobs: RecordedJobs) -> TestClient:
    return TestClient(create_app(api_context(api_factory, jobs=jobs)), follow_redirects=False)


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, page
    return found.group(1)


def sign_in_with_token(client: TestClient, token: str) -> None:
    page = client.get("/console/sign-in")
    answer = client.post("/console/sign-in/token", data={"token": token, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/"


def test_pages_need_a_session(console: TestClient) -> None:
    answer = console.get("/console/bookings")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


def test_token_sign_in_sets_a_strict_cookie_and_shows_my_pages(console: TestClient, org: Org) -> None:
    page = console.get("/console/sign-in")
    answer = console.post("/console/sign-in/token", data={"token": org.member_token, "csrf_token": csrf_of(page.text)})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # served over http here
    assert "Path=/console" in cookie
    bookings_page = console.get("/console/bookings")
    assert bookings_page.status_code == 200
    assert "will@acme.example" in bookings_page.text
    assert bookings_page.headers["cache-control"] == "no-store"
    assert console.get("/console/admin/users").status_code == 403  # a member is no admin


def test_a_wrong_token_is_refused_and_starts_nothing(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    page = console.get("/console/sign-in")
    answer = console.post("/console/sign-in/token", data={"token": "dsk_nope", "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 401
    assert "not valid" in answer.text
    with api_factory() as db:
        assert db.scalars(select(ConsoleSession)).all() == []


def test_sign_in_forms_need_their_csrf_cookie(console: TestClient, org: Org) -> None:
    answer = console.post("/console/sign-in/token", data={"token": org.member_token, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert "SESSION" not in answer.headers.get("set-cookie", "").upper()


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    sign_in_with_token(console, org.member_token)
    with transaction(api_factory) as db:
        member = members.get(db, org.organisation.id, org.member.id)
        booking = bookings.create(
            db, member, start=utcnow() + timedelta(days=1), end=utcnow() + timedelta(days=1, hours=8)
        )
        booking_id = booking.id
    for data in ({}, {"csrf_token": "x" * 64}):
        answer = console.post(f"/console/bookings/{booking_id}/cancel", data=data)
        assert answer.status_code == 403
        assert "did not come from the console" in answer.text
    with api_factory() as db:
        assert db.get_one(Booking, booking_id).status is BookingStatus.BOOKED
    page = console.get("/console/bookings")
    assert (
        console.post(f"/console/bookings/{booking_id}/cancel", data={"csrf_token": csrf_of(page.text)}).status_code
        == 303
    )
    with api_factory() as db:
        assert db.get_one(Booking, booking_id).status is BookingStatus.CANCELLED


def test_a_refused_change_comes_back_with_the_reason(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/users")
    answer = console.post(
        "/console/admin/users/invite",
        data={"email": "not an address", "csrf_token": csrf_of(page.text)},
        headers={"referer": "http://testserver/console/admin/users"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/admin/users"
    shown = console.get("/console/admin/users")
    assert "is not an email address" in shown.text
    assert 'role="alert"' in shown.text


def test_the_last_admin_cannot_be_removed(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/users")
    console.post(
        f"/console/admin/users/{org.admin.id}/remove",
        data={"csrf_token": csrf_of(page.text)},
        headers={"referer": "http://testserver/console/admin/users"},
    )
    assert "admin" in console.get("/console/admin/users").text.lower()
    assert console.get("/console/bookings").status_code == 200  # still signed in: nothing changed


def test_removal_and_revoked_access_end_sessions(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    sign_in_with_token(console, org.member_token)
    assert console.get("/console/bookings").status_code == 200
    with transaction(api_factory) as db:
        members.update(db, members.get(db, org.organisation.id, org.member.id), api_access=False)
    assert console.get("/console/bookings").status_code == 303  # signed in by a token: access is needed

    with transaction(api_factory) as db:
        member = members.get(db, org.organisation.id, org.member.id)
        members.update(db, member, api_access=True)
        _, token = tokens.create(db, member)
    sign_in_with_token(console, token)
    assert console.get("/console/bookings").status_code == 200
    with transaction(api_factory) as db:
        members.remove(db, members.get(db, org.organisation.id, org.member.id))
    answer = console.get("/console/bookings")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


def test_magic_link_signs_in_once(
    console: TestClient, org: Org, jobs: RecordedJobs, api_factory: sessionmaker[Session]
) -> None:
    page = console.get("/console/sign-in")
    asked = console.post(
        "/console/sign-in/email", data={"email": "Will@Acme.example", "csrf_token": csrf_of(page.text)}
    )
    assert asked.status_code == 200
    assert "a sign-in link is on its way" in asked.text
    [link_id] = links(jobs)
    with transaction(api_factory) as db:
        token = sign_in_links.issue_token(db, db.get_one(SignInLink, link_id))
        assert token is not None
    with api_factory() as db:
        stored = db.get_one(SignInLink, link_id)
        assert stored.token_hash == members.hash_secret(token)  # the token itself is not stored

    opened = console.get(f"/console/sign-in/link/{token}")
    assert opened.status_code == 200  # opening changes nothing: a button signs in
    assert console.get("/console/bookings").status_code == 303
    used = console.post(f"/console/sign-in/link/{token}", data={"csrf_token": csrf_of(opened.text)})
    assert used.status_code == 303
    assert console.get("/console/bookings").status_code == 200

    console.cookies.clear()
    again_page = console.get("/console/sign-in")
    again = console.post(f"/console/sign-in/link/{token}", data={"csrf_token": csrf_of(again_page.text)})
    assert again.status_code == 410
    assert "used already" in again.text


def test_an_unknown_address_is_answered_alike_and_mails_nothing(
    console: TestClient, org: Org, jobs: RecordedJobs
) -> None:
    page = console.get("/console/sign-in")
    for email in ("nobody@acme.example", "not an address"):
        asked = console.post("/console/sign-in/email", data={"email": email, "csrf_token": csrf_of(page.text)})
        assert asked.status_code == 200
        assert "a sign-in link is on its way" in asked.text
    assert links(jobs) == []


def test_an_expired_link_does_not_sign_in(console: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    with transaction(api_factory) as db:
        [link_id] = sign_in_links.request(db, org.member.email, now=utcnow() - timedelta(hours=1))
        token = sign_in_links.issue_token(db, db.get_one(SignInLink, link_id), now=utcnow() - timedelta(hours=1))
    assert token is not None
    page = console.get(f"/console/sign-in/link/{token}")
    answer = console.post(f"/console/sign-in/link/{token}", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 410
    assert "expired" in answer.text
    assert console.get("/console/bookings").status_code == 303


def test_sign_out_ends_the_session(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.member_token)
    page = console.get("/console/bookings")
    cookie = console.cookies.get("deskbridge_console")
    assert console.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)}).status_code == 303
    console.cookies.set("deskbridge_console", cookie or "", path="/console")
    assert console.get("/console/bookings").status_code == 303  # the old cookie is dead too


def test_accepting_an_invitation_signs_in(console: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    with transaction(api_factory) as db:
        invitation = members.invite(db, org.organisation.id, "newcomer@acme.example")
        token = members.issue_invitation_token(db, invitation)
    assert token is not None
    accepted = console.post(f"/invitations/{token}", data={"display_name": "Nia"})
    assert accepted.status_code == 200
    assert "is now a member" in accepted.text
    page = console.get("/console/bookings")
    assert page.status_code == 200
    assert "newcomer@acme.example" in page.text


def test_cookies_are_secure_behind_https(api_factory: sessionmaker[Session], org: Org) -> None:
    app = create_app(api_context(api_factory, public_base_url="https://desks.example.com"))
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    page = client.get("/console/sign-in")
    assert "Secure" in page.headers["set-cookie"]
    answer = client.post("/console/sign-in/token", data={"token": org.member_token, "csrf_token": csrf_of(page.text)})
    assert "Secure" in answer.headers["set-cookie"]


ADMIN_PAGES = (
    "/console/admin/organisation",
    "/console/admin/users",
    "/console/admin/desks",
    "/console/admin/connections",
    "/console/admin/webhooks",
    "/console/admin/events",
    "/console/bookings",
    "/console/tokens",
    "/console/feed",
)


def test_every_page_opens_for_an_admin_and_admin_pages_not_for_members(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    for path in ADMIN_PAGES:
        page = console.get(path)
        assert page.status_code == 200, path
        assert 'aria-current="page"' in page.text, path  # the navigation marks where you are
    console.cookies.clear()
    sign_in_with_token(console, org.member_token)
    for path in ADMIN_PAGES[:6]:
        assert console.get(path).status_code == 403, path


def test_organisation_settings_are_saved_and_times_follow_the_zone(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/organisation")
    form = {
        "csrf_token": csrf_of(page.text),
        "timezone": "Asia/Tokyo",
        "directory_policy": "auto_accept",
        "calendar_window_days": "30",
        "offboarding_undo_days": "7",
        "keywords": "WFO, office",
        "api_enabled": "true",
        "release_on_absence": "true",
    }
    assert console.post("/console/admin/organisation", data=form).status_code == 303
    with api_factory() as db:
        organisation = db.get_one(type(org.organisation), org.organisation.id)
        assert organisation.timezone == "Asia/Tokyo"
        assert organisation.directory_policy.value == "auto_accept"
        assert organisation.calendar_window_days == 30
        assert organisation.offboarding_undo_days == 7
        assert organisation.release_on_absence
        assert organisation.office_rules["keywords"] == ["WFO", "office"]
    assert "times in Asia/Tokyo" in console.get("/console/bookings").text

    refused = console.post(
        "/console/admin/organisation",
        data={**form, "timezone": "Mars/Olympus", "calendar_window_days": "30"},
        headers={"referer": "http://testserver/console/admin/organisation"},
    )
    assert refused.status_code == 303
    assert "Mars/Olympus" in console.get("/console/admin/organisation").text  # the reason names it
    with api_factory() as db:
        assert db.get_one(type(org.organisation), org.organisation.id).timezone == "Asia/Tokyo"
    refused = console.post(
        "/console/admin/organisation",
        data={**form, "offboarding_undo_days": "400"},
        headers={"referer": "http://testserver/console/admin/organisation"},
    )
    assert refused.status_code == 303
    assert "offboarding_undo_days" in console.get("/console/admin/organisation").text  # the reason names it
    with api_factory() as db:
        assert db.get_one(type(org.organisation), org.organisation.id).offboarding_undo_days == 7


def test_tokens_need_the_switch_and_access(console: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    with transaction(api_factory) as db:
        member = members.get(db, org.organisation.id, org.member.id)
        _, token = tokens.create(db, member)
    sign_in_with_token(console, token)
    with transaction(api_factory) as db:
        organisation = db.get_one(type(org.organisation), org.organisation.id)
        organisation.api_enabled = False
    page = console.get("/console/tokens")
    assert "The API is turned off" in page.text
    assert console.post("/console/tokens", data={"csrf_token": csrf_of(page.text), "name": "x"}).status_code == 403


def test_the_feed_url_is_shown_once_and_rotates(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.member_token)
    page = console.get("/console/feed")
    made = console.post("/console/feed", data={"csrf_token": csrf_of(page.text)})
    url = re.search(r"http://testserver/v1/feeds/\S+\.ics", made.text)
    assert url
    assert made.headers["cache-control"] == "no-store"
    assert console.get(url.group(0)).status_code == 200
    again = console.get("/console/feed")
    assert url.group(0) not in again.text
    feed_id = re.search(r"/console/feed/(\d+)/rotate", again.text)
    assert feed_id
    rotated = console.post(f"/console/feed/{feed_id.group(1)}/rotate", data={"csrf_token": csrf_of(again.text)})
    new_url = re.search(r"http://testserver/v1/feeds/\S+\.ics", rotated.text)
    assert new_url
    assert new_url.group(0) != url.group(0)
    assert console.get(url.group(0)).status_code == 404


def test_connection_settings_go_through_the_api_validation(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/connections")
    referer = {"referer": "http://testserver/console/admin/connections"}
    for settings, reason in (("{not json", "not valid JSON"), ('{"scope": 3}', "scope")):
        console.post(
            "/console/admin/connections",
            data={"csrf_token": csrf_of(page.text), "kind": "csv", "name": "HR", "settings": settings},
            headers=referer,
        )
        shown = console.get("/console/admin/connections")
        assert reason in shown.text
        assert "No connections yet." in shown.text
    made = console.post(
        "/console/admin/connections", data={"csrf_token": csrf_of(page.text), "kind": "scim", "name": "Okta"}
    )
    assert made.status_code == 200
    assert "The SCIM bearer token" in made.text  # shown once, on the answer itself
    assert made.headers["cache-control"] == "no-store"


def test_webhook_secret_test_send_pause_and_events(console: TestClient, org: Org, jobs: RecordedJobs) -> None:
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/webhooks")
    referer = {"referer": "http://testserver/console/admin/webhooks"}
    console.post(
        "/console/admin/webhooks",
        data={"csrf_token": csrf_of(page.text), "url": "http://169.254.169.254/latest"},
        headers=referer,
    )
    assert "cannot receive webhooks" in console.get("/console/admin/webhooks").text
    made = console.post(
        "/console/admin/webhooks",
        data={"csrf_token": csrf_of(page.text), "url": "http://127.0.0.1:9/hooks", "event_types": ["booking.*"]},
    )
    secret = re.search(r'value="(whsec_[^"]+)"', made.text)
    assert secret
    endpoint_id = re.search(r"/console/admin/webhooks/(\d+)/secret", made.text)
    assert endpoint_id
    base = f"/console/admin/webhooks/{endpoint_id.group(1)}"
    token = {"csrf_token": csrf_of(made.text)}
    assert secret.group(1) in console.post(f"{base}/secret", data=token).text
    rotated = console.post(f"{base}/secret/rotate", data=token)
    assert "The new signing secret" in rotated.text
    assert secret.group(1) not in rotated.text
    tested = console.post(f"{base}/test", data=token)
    assert "Test event: no answer" in tested.text  # nothing listens on port 9
    assert jobs.of("send_test_event") == [("http://127.0.0.1:9/hooks", "event", int(endpoint_id.group(1)))]
    assert console.post(f"{base}/pause", data={**token, "paused": "true"}).status_code == 303
    assert "paused: events wait" in console.get(base).text
    console.post(f"{base}/pause", data=token)
    assert "paused: events wait" not in console.get(base).text
    bad = console.post(f"{base}/replay-failed", data={**token, "since": "yesterday"}, headers={"referer": base})
    assert bad.status_code == 303
    assert "date and time" in console.get(base).text

    log = console.get("/console/admin/events", params={"type": "endpoint.*"})
    assert "<td>endpoint.created<br>" in log.text
    assert "<td>endpoint.secret_rotated<br>" in log.text
    assert "<td>api_token.created<br>" not in log.text
    assert console.get("/console/admin/events", params={"since": "soon"}).status_code == 422


def test_pages_use_only_the_apps_own_assets_and_cannot_be_framed(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/webhooks")
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert assets
    assert all(asset.startswith("/console/") for asset in assets), assets
    for asset in ("/console/static/console.css", "/console/static/console.js"):
        assert console.get(asset).status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"


def test_sync_now_asks_what_the_api_asks(console: TestClient, org: Org, jobs: RecordedJobs) -> None:
    """A CalDAV account is one calendar: the button asks the calendar worker, as POST /v1/connections/{id}/sync
    does, never a directory sync (which a CalDAV connection has not got); a CSV directory is decided again."""
    sign_in_with_token(console, org.admin_token)
    made = {}
    for kind, body in (
        ("caldav", {"settings": {"member_email": org.member.email}, "credentials": CALDAV_CREDENTIALS}),
        ("csv", {}),
    ):
        answer = console.post("/v1/connections", json={"kind": kind, "name": kind, **body}, headers=token(org))
        assert answer.status_code == 201, answer.text
        made[kind] = answer.json()["id"]
    jobs.asked.clear()  # making a calendar connection asks for its calendars already
    for kind, connection_id in made.items():
        page = console.get(f"/console/admin/connections/{connection_id}")
        answer = console.post(
            f"/console/admin/connections/{connection_id}/sync", data={"csrf_token": csrf_of(page.text)}
        )
        assert answer.status_code == 303, (kind, answer.text)
    assert jobs.asked == [("follow_calendars", (made["caldav"],)), ("sync_directory", (made["csv"],))]
    caldav = console.get(f"/v1/connections/{made['caldav']}", headers=token(org)).json()
    assert caldav["status"] != "error"


def test_ids_past_the_key_range_are_refused_not_a_500(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    for path in ("/console/admin/connections/{}", "/console/admin/webhooks/{}"):
        answer = console.get(path.format(2**70))
        assert 400 <= answer.status_code < 500, (path, answer.status_code)


CALDAV_CREDENTIALS = {"url": "https://dav.example/", "username": "will", "password": "app-password"}


def token(org: Org) -> dict[str, str]:
    return {"Authorization": f"Token {org.admin_token}"}


def _desks_with_deliveries(api_factory: sessionmaker[Session], org: Org, count: int) -> tuple[int, list[str]]:
    """An endpoint for desk events and `count` desks made, their events relayed to it: (endpoint id, event ids)."""
    box = SecretBox([SecretBox.generate_key()])
    with transaction(api_factory) as db:
        endpoint, _ = webhook_endpoints.create_endpoint(
            db, org.organisation.id, "http://127.0.0.1:9/hooks", box=box, event_types=["desk.*"]
        )
        for number in range(count):
            desks.create(db, org.organisation.id, f"D{number:03}")
    with transaction(api_factory) as db:
        outbox_relay.relay_due(db, now=utcnow())
        made = db.scalars(select(OutboxEvent.id).where(OutboxEvent.type == "desk.created").order_by(OutboxEvent.seq))
        return endpoint.id, list(made)


def test_the_deliveries_log_pages_back_and_forth_and_filters(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    """The log is the API's own listing: 50 a page, newest first, older and newer by cursor, by status or event."""
    endpoint_id, made = _desks_with_deliveries(api_factory, org, 53)
    sign_in_with_token(console, org.admin_token)
    base = f"/console/admin/webhooks/{endpoint_id}"
    first = console.get(base)
    shown = re.findall(r"<code>(evt_\w+)</code>", first.text)
    assert shown == made[::-1][:50]
    assert "Newer deliveries" not in first.text
    older = re.search(r'href="(\?before=\d+)#deliveries">Older deliveries', first.text)
    assert older
    second = console.get(base + older.group(1))
    assert re.findall(r"<code>(evt_\w+)</code>", second.text) == made[::-1][50:]
    assert "Older deliveries" not in second.text
    newer = re.search(r'href="(\?after=\d+)#deliveries">Newer deliveries', second.text)
    assert newer
    assert re.findall(r"<code>(evt_\w+)</code>", console.get(base + newer.group(1)).text) == made[::-1][:50]

    one = console.get(base, params={"event_id": made[7]})
    assert re.findall(r"<code>(evt_\w+)</code>", one.text) == [made[7]]
    assert "No deliveries of this kind" in console.get(base, params={"status": "succeeded"}).text
    assert len(re.findall(r"<code>evt_", console.get(base, params={"status": "pending"}).text)) == 50
    bad = console.get(base, params={"status": "lost"})
    assert bad.status_code == 422
    assert "Status must be one of" in bad.text
    assert console.get(base, params={"before": "x"}).status_code == 422  # the page's query is checked: never a 500


def test_the_event_log_filters_by_catalog_patterns_and_pages(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    _, made = _desks_with_deliveries(api_factory, org, 105)
    sign_in_with_token(console, org.admin_token)
    log = console.get("/console/admin/events", params={"type": "desk.*"})
    shown = re.findall(r'<code class="small">(evt_\w+)</code>', log.text)
    assert shown == made[::-1][:100]
    older = re.search(r'href="\?(before=\d+&amp;type=desk.%2A)">Older events', log.text)
    assert older, log.text[-2000:]
    rest = console.get("/console/admin/events?" + older.group(1).replace("&amp;", "&"))
    assert re.findall(r'<code class="small">(evt_\w+)</code>', rest.text) == made[::-1][100:]
    assert "Older events" not in rest.text
    assert "Newest events" in rest.text

    assert "<td>desk.created<br>" in console.get("/console/admin/events", params={"type": "desk.created"}).text
    for pattern, hint in (("desk.create", "did you mean desk.created?"), ("desks.*", "did you mean desk.*?")):
        refused = console.get("/console/admin/events", params={"type": pattern})
        assert refused.status_code == 422
        assert hint in refused.text
    zoned = console.get("/console/admin/events", params={"since": "2999-01-01T00:00"})
    assert "No events match." in zoned.text
    assert "(Europe/London time)" in zoned.text


def test_an_admin_restores_a_removed_member_and_reads_what_did_not_come_back(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    later = start + timedelta(days=1)
    with transaction(api_factory) as db:
        member = members.get(db, org.organisation.id, org.member.id)
        kept, taken = desks.create(db, org.organisation.id, "K1"), desks.create(db, org.organisation.id, "T1")
        team = teams.create(db, org.organisation.id, "Night shift")
        teams.add_member(db, team, member)
        bookings.create(db, member, desk_id=kept.id, start=start, end=start + timedelta(hours=8))
        bookings.create(db, member, desk_id=taken.id, start=later, end=later + timedelta(hours=8))
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/users")
    assert f"/console/admin/users/{org.member.id}/restore" not in page.text  # not removed: nothing to restore
    refused = console.post(
        f"/console/admin/users/{org.member.id}/restore",
        data={"csrf_token": csrf_of(page.text)},
        headers={"referer": "http://testserver/console/admin/users"},
    )
    assert refused.status_code == 303
    assert "not removed: nothing to restore" in console.get("/console/admin/users").text
    assert (
        console.post(
            f"/console/admin/users/{org.member.id}/remove", data={"csrf_token": csrf_of(page.text)}
        ).status_code
        == 303
    )
    with transaction(api_factory) as db:  # someone else takes the second desk meanwhile
        admin = members.get(db, org.organisation.id, org.admin.id)
        bookings.create(
            db, admin, desk_id=taken.id, start=start + timedelta(days=1), end=start + timedelta(days=1, hours=8)
        )

    page = console.get("/console/admin/users")
    assert f"/console/admin/users/{org.member.id}/restore" in page.text
    done = console.post(f"/console/admin/users/{org.member.id}/restore", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    assert "will@acme.example is a member again, with API access" in done.text
    secret = re.search(r'value="(dsk_[^"]+)"', done.text)
    assert secret  # a new token for the revoked one, shown this once
    assert console.get("/v1/organisation", headers={"Authorization": f"token {secret.group(1)}"}).status_code == 200
    assert "Teams: Night shift" in done.text
    london = ZoneInfo("Europe/London")
    assert f"{start.astimezone(london):%a %d %b %Y, %H:%M}" in done.text
    assert f"The booking of {later.astimezone(london):%a %d %b %Y, %H:%M}" in done.text
    assert "on desk T1: someone else booked the desk for that time meanwhile." in done.text
    with api_factory() as db:
        assert members.get(db, org.organisation.id, org.member.id).status is MemberStatus.ACTIVE


def test_a_removal_past_the_undo_window_shows_no_restore(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    with transaction(api_factory) as db:
        members.remove(db, members.get(db, org.organisation.id, org.member.id))
        organisations.update_settings(db, organisations.get(db, org.organisation.id), offboarding_undo_days=0)
    sign_in_with_token(console, org.admin_token)
    page = console.get("/console/admin/users")
    assert f"/console/admin/users/{org.member.id}/restore" not in page.text
    refused = console.post(
        f"/console/admin/users/{org.member.id}/restore",
        data={"csrf_token": csrf_of(page.text)},
        headers={"referer": "http://testserver/console/admin/users"},
    )
    assert refused.status_code == 303
    assert "Invite or add them again instead." in console.get("/console/admin/users").text
    with api_factory() as db:
        assert members.get(db, org.organisation.id, org.member.id).status is MemberStatus.REMOVED


def test_every_connection_status_is_said_in_plain_words() -> None:
    assert set(STATUS_WORDS) == set(ConnectionStatus)


def test_removal_limits_are_set_from_the_connection_or_the_organisation_page(console: TestClient, org: Org) -> None:
    sign_in_with_token(console, org.admin_token)
    made = console.post("/v1/connections", json={"kind": "csv", "name": "HR"}, headers=token(org))
    connection_id = made.json()["id"]
    settings = console.get("/console/admin/organisation")
    assert (
        f'id="limit-people-{connection_id}" name="people" type="number" min="0" max="1000000" step="1" value="10"'
        in settings.text
    )  # the defaults, where the settings name none
    referer = {"referer": "http://testserver/console/admin/organisation"}
    form = {"csrf_token": csrf_of(settings.text), "people": "25", "percent": "2.5"}
    saved = console.post(f"/console/admin/connections/{connection_id}/removal-limit", data=form, headers=referer)
    assert saved.headers["location"] == "/console/admin/organisation"
    assert "HR: up to 25 people or 2.5% may leave in an hour" in console.get("/console/admin/organisation").text
    stored = console.get(f"/v1/connections/{connection_id}", headers=token(org)).json()["settings"]
    assert stored["removal_limit"] == {"people": 25, "percent": 2.5}
    assert stored["team_groups"] == made.json()["settings"]["team_groups"]  # merged key by key: the rest kept

    here = {"referer": f"http://testserver/console/admin/connections/{connection_id}"}
    for people, percent, reason in (
        ("-1", "5", "from 0 to 1000000"),
        ("5", "120", "from 0 to 100"),
        ("x", "5", "Check the form: people"),
    ):
        form = {"csrf_token": csrf_of(settings.text), "people": people, "percent": percent}
        refused = console.post(f"/console/admin/connections/{connection_id}/removal-limit", data=form, headers=here)
        assert refused.status_code == 303
        assert reason in console.get(f"/console/admin/connections/{connection_id}").text
    stored = console.get(f"/v1/connections/{connection_id}", headers=token(org)).json()["settings"]
    assert stored["removal_limit"] == {"people": 25, "percent": 2.5}


HELD_FILE = "email,name\nada@acme.example,Ada\nbob@acme.example,Bob\n"


def _held(console: TestClient, org: Org, api_factory: sessionmaker[Session]) -> tuple[int, str, int]:
    """A csv connection whose last import held bob's removal (a limit of none): (connection, plan id, booking)."""
    with transaction(api_factory) as db:  # people join at once, so bob can book
        organisation = organisations.get(db, org.organisation.id)
        organisations.update_settings(db, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
    made = console.post(
        "/v1/connections",
        json={"kind": "csv", "name": "HR", "settings": {"removal_limit": {"people": 0, "percent": 0}}},
        headers=token(org),
    )
    connection_id = made.json()["id"]

    def imported(text: str) -> None:
        answer = console.post(f"/v1/connections/{connection_id}/import", json={"csv": text}, headers=token(org))
        assert answer.status_code == 200, answer.text

    imported(HELD_FILE)
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    with transaction(api_factory) as db:
        bob = members.get_by_email(db, org.organisation.id, "bob@acme.example")
        desk = desks.create(db, org.organisation.id, "B7")
        booking = bookings.create(db, bob, desk_id=desk.id, start=start, end=start + timedelta(hours=8))
    imported("email,name\nada@acme.example,Ada\n")
    plan_id = console.get(f"/v1/connections/{connection_id}", headers=token(org)).json()["held_plan_id"]
    assert plan_id
    return connection_id, plan_id, booking.id


def test_held_removals_are_shown_and_approved(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    connection_id, plan_id, booking_id = _held(console, org, api_factory)
    sign_in_with_token(console, org.admin_token)
    page = console.get(f"/console/admin/connections/{connection_id}")
    assert "removals held" in page.text
    assert f"/console/admin/connections/{connection_id}/plans/{plan_id}" in page.text
    plan = console.get(f"/console/admin/connections/{connection_id}/plans/{plan_id}")
    assert "1 person leave the organisation" in plan.text
    assert "bob@acme.example" in plan.text
    assert "desk B7" in plan.text
    approved = console.post(
        f"/console/admin/connections/{connection_id}/plans/{plan_id}/apply", data={"csrf_token": csrf_of(plan.text)}
    )
    assert approved.status_code == 303
    assert "Approved: removed 1." in console.get(approved.headers["location"]).text
    with api_factory() as db:
        assert members.get_by_email(db, org.organisation.id, "bob@acme.example").status is MemberStatus.REMOVED
        assert db.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
    again = console.post(
        f"/console/admin/connections/{connection_id}/plans/{plan_id}/reject",
        data={"csrf_token": csrf_of(plan.text)},
        headers={"referer": f"http://testserver/console/admin/connections/{connection_id}/plans/{plan_id}"},
    )
    assert again.status_code == 303  # decided already: refused with the reason, nothing changes
    assert "was applied" in console.get(again.headers["location"]).text


def test_held_removals_are_rejected_and_the_people_stay(
    console: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    connection_id, plan_id, booking_id = _held(console, org, api_factory)
    sign_in_with_token(console, org.admin_token)
    plan = console.get(f"/console/admin/connections/{connection_id}/plans/{plan_id}")
    rejected = console.post(
        f"/console/admin/connections/{connection_id}/plans/{plan_id}/reject", data={"csrf_token": csrf_of(plan.text)}
    )
    assert rejected.status_code == 303
    assert "Rejected: 1 people stay" in console.get(rejected.headers["location"]).text
    with api_factory() as db:
        assert members.get_by_email(db, org.organisation.id, "bob@acme.example").status is not MemberStatus.REMOVED
        assert db.get_one(Booking, booking_id).status is BookingStatus.BOOKED
    assert console.get(f"/console/admin/connections/{connection_id}/plans/plan_nope").status_code == 404

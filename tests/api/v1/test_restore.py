"""POST /v1/members/{id}/restore and the undo window in /v1/organisation (issue 16, item 3), on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from store.db import transaction
from store.models import LIVE_STATUSES, Booking, MemberRemoval
from store.services import desks, members
from tests.api.served import serve
from tests.api.v1.conftest import add_member, assert_problem, error_fields, hours_from_now, iso, nothing_written
from tests.api.v1.test_races import at_once
from tests.conftest import Org, api_context, auth, events, make_org


@pytest.fixture
def api_factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Every test here on SQLite and on PostgreSQL."""
    return session_factory


def _desk(factory: sessionmaker[Session], org: Org, label: str) -> int:
    with transaction(factory) as session:
        return desks.create(session, org.organisation.id, label).id


def _book(client: TestClient, token: str, desk_id: int, start_in: float, **extra: object) -> int:
    body = {"start": iso(hours_from_now(start_in)), "end": iso(hours_from_now(start_in + 2)), "desk_id": desk_id}
    response = client.post("/v1/bookings", json={**body, **extra}, headers=auth(token))
    assert response.status_code == 201, response.text
    booking_id: int = response.json()["id"]
    return booking_id


def _remove(client: TestClient, org: Org, member_id: int) -> None:
    assert client.delete(f"/v1/members/{member_id}", headers=auth(org.admin_token)).status_code == 204


def test_an_admin_restores_a_removed_member(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    desk = _desk(api_factory, org, "11")
    booking = _book(client, org.member_token, desk, 24)
    team = client.post("/v1/teams", json={"name": "Ops"}, headers=auth(org.admin_token)).json()["id"]
    client.post(f"/v1/teams/{team}/members", json={"member_ids": [org.member.id]}, headers=auth(org.admin_token))
    _remove(client, org, org.member.id)
    assert client.get("/v1/bookings", headers=auth(org.member_token)).status_code == 401

    response = client.post(f"/v1/members/{org.member.id}/restore", headers=auth(org.admin_token))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["member"]["status"] == "active"
    assert body["member"]["api_access"] is True
    assert body["member"]["removed_at"] is None
    assert body["removed_at"].endswith("Z")
    assert (body["teams"], body["bookings"], body["not_restored"]) == ([team], [booking], [])
    [token] = body["tokens"]
    assert token["member_id"] == org.member.id
    assert token["secret"].startswith("dsk_")
    assert client.get("/v1/bookings", headers=auth(org.member_token)).status_code == 401  # the old one stays revoked
    mine = client.get("/v1/bookings", headers=auth(token["secret"]))
    assert mine.status_code == 200
    assert [(b["id"], b["status"]) for b in mine.json()["data"]] == [(booking, "booked")]
    types = [event.type for event in events(api_factory, org.organisation.id)]
    assert types[-3:] == ["api_token.created", "booking.restored", "membership.restored"]
    assert token["secret"] not in str([event.data for event in events(api_factory, org.organisation.id)])


def test_a_partial_restore_says_what_did_not_come_back_and_why(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    taken, kept = _desk(api_factory, org, "taken"), _desk(api_factory, org, "kept")
    lost = _book(client, org.member_token, taken, 24)
    back = _book(client, org.member_token, kept, 48)
    _remove(client, org, org.member.id)
    _book(client, org.admin_token, taken, 25)  # overlaps the first

    response = client.post(f"/v1/members/{org.member.id}/restore", headers=auth(org.admin_token))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bookings"] == [back]
    [missing] = body["not_restored"]
    assert (missing["kind"], missing["id"], missing["reason"]) == ("booking", lost, "desk_taken")
    assert "someone else booked the desk" in missing["detail"]


def test_past_the_window_the_answer_is_a_conflict_and_nothing_changes(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    _book(client, org.member_token, _desk(api_factory, org, "11"), 24)
    _remove(client, org, org.member.id)
    with transaction(api_factory) as session:  # removed 31 days ago
        removal = session.scalars(select(MemberRemoval).where(MemberRemoval.member_id == org.member.id)).one()
        removal.removed_at -= timedelta(days=31)

    with nothing_written(api_factory):
        response = client.post(f"/v1/members/{org.member.id}/restore", headers=auth(org.admin_token))

    body = assert_problem(response, 409, "undo_expired")
    assert "can be undone for 30 days" in body["detail"]
    assert "Invite or add them again" in body["detail"]


def test_the_undo_window_is_an_organisation_setting(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    headers = auth(org.admin_token)
    assert client.get("/v1/organisation", headers=headers).json()["offboarding_undo_days"] == 30
    for bad in (-1, 366, "many", None):
        with nothing_written(api_factory):
            response = client.patch("/v1/organisation", json={"offboarding_undo_days": bad}, headers=headers)
        assert error_fields(assert_problem(response, 422, "invalid_input")) == {"offboarding_undo_days"}
    changed = client.patch("/v1/organisation", json={"offboarding_undo_days": 0}, headers=headers)
    assert changed.status_code == 200
    assert changed.json()["offboarding_undo_days"] == 0
    assert events(api_factory, org.organisation.id)[-1].data == {
        "organisation_id": org.organisation.id,
        "offboarding_undo_days": 0,
    }

    _remove(client, org, org.member.id)
    response = client.post(f"/v1/members/{org.member.id}/restore", headers=headers)
    assert "can be undone for 0 days" in assert_problem(response, 409, "undo_expired")["detail"]


def test_restoring_a_member_who_is_not_removed_is_a_conflict(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    with nothing_written(api_factory):
        response = client.post(f"/v1/members/{org.member.id}/restore", headers=auth(org.admin_token))
    assert "not removed" in assert_problem(response, 409, "not_removed")["detail"]
    _remove(client, org, org.member.id)
    assert client.post(f"/v1/members/{org.member.id}/restore", headers=auth(org.admin_token)).status_code == 200
    again = client.post(f"/v1/members/{org.member.id}/restore", headers=auth(org.admin_token))
    assert_problem(again, 409, "not_removed")


def test_a_removal_from_before_undo_cannot_be_restored(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    invited = client.post("/v1/invitations", json={"email": "maybe@acme.example"}, headers=auth(org.admin_token))
    assert invited.status_code == 201, invited.text
    revoked = client.post(f"/v1/invitations/{invited.json()['id']}/revoke", headers=auth(org.admin_token))
    assert revoked.status_code == 200, revoked.text
    with api_factory() as session:
        member_id = members.get_by_email(session, org.organisation.id, "maybe@acme.example").id
    with nothing_written(api_factory):
        response = client.post(f"/v1/members/{member_id}/restore", headers=auth(org.admin_token))
    assert_problem(response, 409, "nothing_to_undo")


def test_another_organisations_member_is_not_found(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    other = make_org(api_factory, "Globex")
    _remove(client, other, other.member.id)
    with nothing_written(api_factory):
        response = client.post(f"/v1/members/{other.member.id}/restore", headers=auth(org.admin_token))
    assert_problem(response, 404, "not_found")


def test_only_admins_restore(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    colleague, _ = add_member(api_factory, org, "eve@acme.example")
    _remove(client, org, colleague)
    with nothing_written(api_factory):
        response = client.post(f"/v1/members/{colleague}/restore", headers=auth(org.member_token))
    assert_problem(response, 403)


def test_bad_ids_are_refused(client: TestClient, org: Org) -> None:
    for member_id in ("0", "abc", str(2**70)):
        response = client.post(f"/v1/members/{member_id}/restore", headers=auth(org.admin_token))
        assert_problem(response, 422, "invalid_input")
    assert_problem(client.post("/v1/members/999999/restore", headers=auth(org.admin_token)), 404, "not_found")


# --- real concurrent requests ----------------------------------------------------------------------------

PAIRS = 6


@pytest.fixture
def base_url(session_factory: sessionmaker[Session]) -> Iterator[str]:
    app = create_app(api_context(session_factory, public_base_url="http://127.0.0.1", rate_limit_per_day=0))
    with serve(app) as url:
        yield url


def test_a_restore_racing_a_booking_of_its_desk_never_double_books(
    session_factory: sessionmaker[Session], base_url: str
) -> None:
    """PAIRS removed members each had a desk booked; each restore is sent at once with another member's
    booking of that desk and time. One of each pair wins: the booking (201) and the restore lists
    `desk_taken`, or the restore books it again and the booking is a 409; never both."""
    org = make_org(session_factory)
    start, end = hours_from_now(24), hours_from_now(32)
    leavers = [add_member(session_factory, org, f"leaver{n}@acme.example")[0] for n in range(PAIRS)]
    rivals = [add_member(session_factory, org, f"rival{n}@acme.example")[1] for n in range(PAIRS)]
    desk_ids = [_desk(session_factory, org, f"R{n}") for n in range(PAIRS)]
    slot = {"start": iso(start), "end": iso(end)}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for member_id, desk_id in zip(leavers, desk_ids, strict=True):
            made = client.post(
                "/v1/bookings", json={**slot, "desk_id": desk_id, "member_id": member_id}, headers=auth(org.admin_token)
            )
            assert made.status_code == 201, made.text
            assert client.delete(f"/v1/members/{member_id}", headers=auth(org.admin_token)).status_code == 204

    def restore(member_id: int, client: httpx.Client) -> httpx.Response:
        return client.post(f"/v1/members/{member_id}/restore", headers=auth(org.admin_token))

    def book(token: str, desk_id: int, client: httpx.Client) -> httpx.Response:
        return client.post("/v1/bookings", json={**slot, "desk_id": desk_id}, headers=auth(token))

    calls = [partial(restore, member_id) for member_id in leavers]
    calls += [partial(book, token, desk_id) for token, desk_id in zip(rivals, desk_ids, strict=True)]
    answers = at_once(calls, base_url)

    restored, booked = answers[:PAIRS], answers[PAIRS:]
    for restore_answer, booking_answer in zip(restored, booked, strict=True):
        assert restore_answer.status_code == 200, restore_answer.text
        won = restore_answer.json()["bookings"] != []
        if won:
            assert_problem(booking_answer, 409, "desk_unavailable")
        else:
            assert booking_answer.status_code == 201, booking_answer.text
            assert [item["reason"] for item in restore_answer.json()["not_restored"]] == ["desk_taken"]
    with session_factory() as session:
        for desk_id in desk_ids:
            live = select(func.count()).where(Booking.desk_id == desk_id, Booking.status.in_(LIVE_STATUSES))
            assert session.scalar(live) == 1

"""/v1/bookings: book, list with filters, read, move/edit, cancel, check in and out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Role
from tests.api.v1.conftest import World, add_member, assert_problem, error_fields, hours_from_now, iso, nothing_written
from tests.conftest import auth, events

PARIS_SUMMER = timezone(timedelta(hours=2))


def slot(start_hours: float, end_hours: float, **extra: Any) -> dict[str, Any]:
    return {"start": iso(hours_from_now(start_hours)), "end": iso(hours_from_now(end_hours)), **extra}


def aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, value
    return parsed


def test_book_for_oneself(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    start = datetime(2031, 6, 2, 9, 0, tzinfo=PARIS_SUMMER)
    body = {"start": start.isoformat(), "end": (start + timedelta(hours=8)).isoformat(), "desk_id": world.desk_id}
    response = client.post(
        "/v1/bookings", json={**body, "details": "Sprint", "reason": "Other"}, headers=auth(world.org.member_token)
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    assert response.headers["location"] == f"/v1/bookings/{booking['id']}"
    assert booking["member_id"] == world.member_id
    assert booking["desk_id"] == world.desk_id
    assert booking["start"] == "2031-06-02T07:00:00Z"
    assert aware(booking["end"]) == start + timedelta(hours=8)
    assert (booking["status"], booking["details"], booking["reason"], booking["source"]) == (
        "booked",
        "Sprint",
        "Other",
        "api",
    )
    event = events(api_factory, world.org.organisation.id)[-1]
    assert (event.type, event.data["booking_id"]) == ("booking.created", booking["id"])


def test_book_without_desk(client: TestClient, world: World) -> None:
    response = client.post("/v1/bookings", json=slot(48, 56), headers=auth(world.org.member_token))
    assert response.status_code == 201
    assert response.json()["desk_id"] is None
    assert response.json()["reason"] == "WFO"


def test_admin_books_for_someone_else(client: TestClient, world: World) -> None:
    response = client.post(
        "/v1/bookings", json=slot(48, 50, member_id=world.member_id), headers=auth(world.org.admin_token)
    )
    assert response.status_code == 201
    assert response.json()["member_id"] == world.member_id


def test_member_books_only_for_themselves(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    own = client.post(
        "/v1/bookings", json=slot(48, 50, member_id=world.member_id), headers=auth(world.org.member_token)
    )
    assert own.status_code == 201
    with nothing_written(api_factory):
        response = client.post(
            "/v1/bookings", json=slot(60, 62, member_id=world.org.admin.id), headers=auth(world.org.member_token)
        )
    assert_problem(response, 403, "admin_only")


def test_booking_for_unknown_or_unable_members(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    headers = auth(world.org.admin_token)
    invited = client.get("/v1/members", params={"status": "invited"}, headers=headers).json()["data"][0]["id"]
    removed, _ = add_member(api_factory, world.org, "gone@acme.example")
    assert client.delete(f"/v1/members/{removed}", headers=headers).status_code == 204
    with nothing_written(api_factory):
        assert_problem(client.post("/v1/bookings", json=slot(48, 50, member_id=99999), headers=headers), 404)
        assert_problem(client.post("/v1/bookings", json=slot(48, 50, member_id=invited), headers=headers), 409)
        assert_problem(client.post("/v1/bookings", json=slot(48, 50, member_id=removed), headers=headers), 409)
        assert_problem(client.post("/v1/bookings", json=slot(48, 50, desk_id=99999), headers=headers), 404)


def test_overlapping_bookings_conflict(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    _, colleague = add_member(api_factory, world.org, "colleague@acme.example")
    with nothing_written(api_factory):
        desk_taken = client.post("/v1/bookings", json=slot(1, 2, desk_id=world.desk_id), headers=auth(colleague))
        assert_problem(desk_taken, 409, "desk_unavailable")
        busy = client.post("/v1/bookings", json=slot(2, 5), headers=auth(world.org.member_token))
        assert_problem(busy, 409, "member_busy")
    after = client.post("/v1/bookings", json=slot(3, 4, desk_id=world.desk_id), headers=auth(colleague))
    assert after.status_code == 201


def test_booking_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    start, end = hours_from_now(48), hours_from_now(50)
    naive = start.replace(tzinfo=None).isoformat()
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"start": naive, "end": iso(end)}, {"start"}),
        ({"start": iso(start), "end": end.replace(tzinfo=None).isoformat()}, {"end"}),
        ({"start": iso(end), "end": iso(start)}, {"end"}),
        ({"start": iso(start), "end": iso(start)}, {"end"}),
        ({"start": "tomorrow", "end": iso(end)}, {"start"}),
        ({"start": "2031-02-30T09:00:00Z", "end": iso(end)}, {"start"}),
        ({"start": start.timestamp(), "end": iso(end)}, {"start"}),
        ({"start": str(int(start.timestamp())), "end": iso(end)}, {"start"}),  # a Unix time, even as text
        ({"start": start.date().isoformat(), "end": iso(end)}, {"start"}),
        ({"start": "0001-01-01T00:00:00+14:00", "end": iso(end)}, {"start"}),  # in UTC before year 1
        ({"start": iso(start), "end": "9999-12-31T23:59:59-14:00"}, {"end"}),  # in UTC after 9999
        ({"end": iso(end)}, {"start"}),
        ({**slot(48, 50), "room": "A"}, {"room"}),
        ({**slot(48, 50), "details": "x" * 2001}, {"details"}),
        ({**slot(48, 50), "reason": ""}, {"reason"}),
        ({**slot(48, 50), "desk_id": 0}, {"desk_id"}),
        ({**slot(48, 50), "desk_id": "eleven"}, {"desk_id"}),
    ]
    with nothing_written(api_factory):
        for body, fields in cases:
            response = client.post("/v1/bookings", json=body, headers=auth(world.org.member_token))
            problem = assert_problem(response, 422, "invalid_input")
            assert error_fields(problem) == fields, (body, problem)
    naive_problem = client.post("/v1/bookings", json=cases[0][0], headers=auth(world.org.member_token)).json()
    assert "timezone" in naive_problem["errors"][0]["detail"]


def test_get_booking(client: TestClient, world: World) -> None:
    response = client.get(f"/v1/bookings/{world.booking_id}", headers=auth(world.org.admin_token))
    assert response.status_code == 200
    booking = response.json()
    assert (booking["member_id"], booking["desk_id"], booking["details"]) == (world.member_id, world.desk_id, "Focus")
    for name in ("start", "end", "created_at", "updated_at"):
        aware(booking[name])
    assert_problem(client.get("/v1/bookings/123456", headers=auth(world.org.admin_token)), 404)


def test_list_bookings_filters(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    admin = auth(world.org.admin_token)
    mine = client.post("/v1/bookings", json=slot(48, 50), headers=admin).json()
    later = client.post("/v1/bookings", json=slot(72, 74, member_id=world.member_id), headers=admin).json()
    client.post(f"/v1/bookings/{later['id']}/cancel", headers=admin)

    def ids(params: Any) -> list[int]:
        response = client.get("/v1/bookings", params=params, headers=auth(world.org.member_token))
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["data"]]

    assert ids({}) == [world.booking_id, mine["id"], later["id"]]
    assert ids({"member_id": world.member_id}) == [world.booking_id, later["id"]]
    assert ids({"team_id": world.team_id}) == [world.booking_id, later["id"]]
    assert ids({"desk_id": world.desk_id}) == [world.booking_id]
    assert ids({"status": "cancelled"}) == [later["id"]]
    assert ids([("status", "booked"), ("status", "cancelled")]) == [world.booking_id, mine["id"], later["id"]]
    assert ids({"from": iso(hours_from_now(24)), "to": iso(hours_from_now(60))}) == [mine["id"]]
    assert ids({"from": iso(hours_from_now(49))}) == [mine["id"], later["id"]]
    assert ids({"to": iso(hours_from_now(1))}) == [world.booking_id]
    local = hours_from_now(24).astimezone(PARIS_SUMMER).isoformat()
    assert ids({"from": local, "to": iso(hours_from_now(60))}) == [mine["id"]]
    # A '+' left unescaped in the query string arrives as a space; it still means an offset.
    raw = f"/v1/bookings?from={local}"
    assert "+" in raw
    response = client.get(raw, headers=admin)
    assert [b["id"] for b in response.json()["data"]] == [mine["id"], later["id"]]


def test_list_bookings_refuses_bad_filters(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    headers = auth(world.org.member_token)
    naive = hours_from_now(1).replace(tzinfo=None).isoformat()
    for params, field in [
        ({"from": naive}, "from"),
        ({"to": "soon"}, "to"),
        ({"from": iso(hours_from_now(5)), "to": iso(hours_from_now(1))}, "to"),
        ({"from": "0001-01-01T00:00:00+14:00"}, "from"),  # in UTC before year 1
        ({"to": "9999-12-31T23:59:59-14:00"}, "to"),  # in UTC after 9999
        ({"from": "1700000000"}, "from"),  # a Unix time: ISO 8601 only, as in a body
        ({"to": "-1"}, "to"),
        ({"status": "lost"}, "status.0"),
        ({"member_id": "me"}, "member_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
    ]:
        assert error_fields(assert_problem(client.get("/v1/bookings", params=params, headers=headers), 422)) == {field}
    for name in ("member_id", "team_id", "desk_id"):
        assert_problem(client.get("/v1/bookings", params={name: 99999}, headers=headers), 404)


def test_move_booking(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    path = f"/v1/bookings/{world.booking_id}"
    start = hours_from_now(48).astimezone(PARIS_SUMMER)
    body = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(), "details": "Moved"}
    response = client.patch(path, json=body, headers=auth(world.org.member_token))
    assert response.status_code == 200, response.text
    booking = response.json()
    assert aware(booking["start"]) == start
    assert booking["details"] == "Moved"
    assert booking["desk_id"] == world.desk_id
    event = events(api_factory, world.org.organisation.id)[-1]
    assert event.type == "booking.updated"
    assert set(event.data["changes"]) == {"start", "end", "details"}
    dropped = client.patch(path, json={"desk_id": None}, headers=auth(world.org.member_token))
    assert dropped.json()["desk_id"] is None


def test_move_booking_refuses_bad_input(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    path = f"/v1/bookings/{world.booking_id}"
    headers = auth(world.org.member_token)
    naive = hours_from_now(48).replace(tzinfo=None).isoformat()
    other_desk = client.post("/v1/desks", json={"label": "12"}, headers=auth(world.org.admin_token)).json()["id"]
    _, colleague = add_member(api_factory, world.org, "colleague@acme.example")
    client.post("/v1/bookings", json=slot(10, 12, desk_id=other_desk), headers=auth(colleague))
    with nothing_written(api_factory):
        for body, fields in [
            ({"start": naive}, {"start"}),
            ({"start": None}, {"start"}),
            ({"status": "cancelled"}, {"status"}),
            ({"start": iso(hours_from_now(5)), "end": iso(hours_from_now(4))}, {"end"}),
            ({"end": iso(hours_from_now(-1))}, {"end"}),  # before the booking's current start
        ]:
            problem = assert_problem(client.patch(path, json=body, headers=headers), 422)
            assert error_fields(problem) == fields, (body, problem)
        taken = client.patch(path, json={"desk_id": other_desk, **slot(11, 13)}, headers=headers)
        assert_problem(taken, 409, "desk_unavailable")
        assert_problem(client.patch(path, json={"desk_id": 99999}, headers=headers), 404)
        assert_problem(client.patch("/v1/bookings/99999", json={"details": "x"}, headers=headers), 404)


def test_only_owner_or_admin_changes_a_booking(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    _, colleague = add_member(api_factory, world.org, "colleague@acme.example")
    path = f"/v1/bookings/{world.booking_id}"
    with nothing_written(api_factory):
        for method, suffix, body in [
            ("PATCH", "", {"details": "Mine now"}),
            ("POST", "/cancel", None),
            ("POST", "/check-in", None),
            ("POST", "/check-out", None),
        ]:
            response = client.request(method, path + suffix, json=body, headers=auth(colleague))
            assert_problem(response, 403, "not_your_booking")
    # The colleague can still read it.
    assert client.get(path, headers=auth(colleague)).status_code == 200
    edited = client.patch(path, json={"details": "By admin"}, headers=auth(world.org.admin_token))
    assert edited.json()["details"] == "By admin"


def test_cancel_booking(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    path = f"/v1/bookings/{world.booking_id}"
    response = client.post(f"{path}/cancel", headers=auth(world.org.member_token))
    assert response.status_code == 200, response.text
    booking = response.json()
    assert (booking["status"], booking["cancellation_reason"]) == ("cancelled", "cancelled_by_member")
    assert booking["cancelled_at"] is not None
    assert events(api_factory, world.org.organisation.id)[-1].type == "booking.cancelled"
    with nothing_written(api_factory):
        assert_problem(client.post(f"{path}/cancel", headers=auth(world.org.member_token)), 409, "not_allowed")
        assert_problem(client.patch(path, json={"details": "x"}, headers=auth(world.org.member_token)), 409)
        assert_problem(client.post("/v1/bookings/99999/cancel", headers=auth(world.org.member_token)), 404)


def test_cancel_with_reason_and_by_admin(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    admin = auth(world.org.admin_token)
    other = client.post("/v1/bookings", json=slot(48, 50, member_id=world.member_id), headers=admin).json()
    by_admin = client.post(f"/v1/bookings/{other['id']}/cancel", headers=admin).json()
    assert by_admin["cancellation_reason"] == "cancelled_by_admin"
    with nothing_written(api_factory):
        response = client.post(
            f"/v1/bookings/{world.booking_id}/cancel", json={"why": "ill"}, headers=auth(world.org.member_token)
        )
        assert error_fields(assert_problem(response, 422)) == {"why"}
    response = client.post(
        f"/v1/bookings/{world.booking_id}/cancel", json={"reason": "ill"}, headers=auth(world.org.member_token)
    )
    assert response.json()["cancellation_reason"] == "ill"


def test_check_in_and_out(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    path = f"/v1/bookings/{world.booking_id}"
    headers = auth(world.org.member_token)
    checked_in = client.post(f"{path}/check-in", headers=headers)
    assert checked_in.status_code == 200, checked_in.text
    assert checked_in.json()["status"] == "checked_in"
    aware(checked_in.json()["checked_in_at"])
    with nothing_written(api_factory):
        assert_problem(client.post(f"{path}/check-in", headers=headers), 409, "not_allowed")
    checked_out = client.post(f"{path}/check-out", headers=headers)
    assert checked_out.json()["status"] == "checked_out"
    aware(checked_out.json()["checked_out_at"])
    types = [e.type for e in events(api_factory, world.org.organisation.id)[-2:]]
    assert types == ["booking.checked_in", "booking.checked_out"]
    with nothing_written(api_factory):
        assert_problem(client.post(f"{path}/check-out", headers=headers), 409, "not_allowed")
        assert_problem(client.post(f"{path}/cancel", headers=headers), 409, "not_allowed")


def test_check_in_outside_the_window(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    later = client.post("/v1/bookings", json=slot(48, 50), headers=auth(world.org.member_token)).json()
    with nothing_written(api_factory):
        body = assert_problem(
            client.post(f"/v1/bookings/{later['id']}/check-in", headers=auth(world.org.member_token)), 409
        )
        assert "30 minutes" in body["detail"]
        not_in = client.post(f"/v1/bookings/{later['id']}/check-out", headers=auth(world.org.member_token))
        assert_problem(not_in, 409)


def test_admin_checks_in_for_a_member(client: TestClient, world: World) -> None:
    response = client.post(f"/v1/bookings/{world.booking_id}/check-in", headers=auth(world.org.admin_token))
    assert response.json()["status"] == "checked_in"


def test_any_member_reads_every_booking(client: TestClient, api_factory: sessionmaker[Session], world: World) -> None:
    _, reader = add_member(api_factory, world.org, "reader@acme.example", role=Role.MEMBER)
    page = client.get("/v1/bookings", headers=auth(reader)).json()
    assert [b["id"] for b in page["data"]] == [world.booking_id]

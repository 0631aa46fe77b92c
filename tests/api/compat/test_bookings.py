from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.services import bookings, members, teams
from tests.api.compat.conftest import Office
from tests.conftest import Org, auth

FIELDS = ["event_id", "event_desk", "start_date", "end_date", "user", "event_details", "booking_reason"]


def ids(response_json: dict[str, object]) -> list[str]:
    results = response_json["results"]
    assert isinstance(results, list)
    return [row["event_id"] for row in results]


def test_bookings_lists_past_present_and_future_but_not_cancelled(client: TestClient, office: Office) -> None:
    response = client.get("/api/bookings/", headers=auth(office.org.member_token))

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 3
    assert ids(body) == [str(office.past_id), str(office.today_id), str(office.future_id)]
    assert all(list(row) == FIELDS for row in body["results"])


def test_booking_rows_have_the_documented_values(
    client: TestClient, office: Office, api_factory: sessionmaker[Session]
) -> None:
    from zoneinfo import ZoneInfo

    row = client.get("/api/my_upcoming_bookings/", headers=auth(office.org.member_token)).json()["results"][0]
    with api_factory() as session:
        booking = bookings.get(session, office.org.organisation.id, office.today_id)
    local = booking.start_at.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%d %H:%M")

    assert row == {
        "event_id": str(office.today_id),
        "event_desk": "11",
        "start_date": local,
        "end_date": booking.end_at.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%d %H:%M"),
        "user": "William",
        "event_details": "Client meeting",
        "booking_reason": "Other",
    }


def test_my_upcoming_bookings_are_those_ending_after_now(client: TestClient, office: Office) -> None:
    body = client.get("/api/my_upcoming_bookings/", headers=auth(office.org.member_token)).json()

    assert ids(body) == [str(office.today_id), str(office.future_id)]


def test_an_admin_sees_only_their_own_bookings(client: TestClient, office: Office) -> None:
    body = client.get("/api/bookings/", headers=auth(office.org.admin_token)).json()

    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_team_bookings_as_httpie_sends_them_in_a_get_body(client: TestClient, office: Office) -> None:
    headers = {**auth(office.org.admin_token), "Content-Type": "application/json"}
    in_body = client.request("GET", "/api/teams_upcoming_bookings/", json={"team_name": "platform"}, headers=headers)
    in_query = client.get("/api/teams_upcoming_bookings/", params={"team_name": "Platform"}, headers=headers)

    assert in_body.status_code == 200
    assert ids(in_body.json()) == [str(office.today_id), str(office.future_id)]
    assert in_query.json() == in_body.json()


def test_team_bookings_errors(client: TestClient, office: Office, other_org: Org) -> None:
    route = "/api/teams_upcoming_bookings/"
    missing = client.get(route, headers=auth(office.org.member_token))
    unknown = client.get(route, params={"team_name": "Nope"}, headers=auth(office.org.member_token))
    foreign = client.get(route, params={"team_name": office.team_name}, headers=auth(other_org.member_token))
    broken = client.request(
        "GET", route, content=b"{", headers={**auth(office.org.member_token), "Content-Type": "application/json"}
    )

    assert missing.status_code == 400
    assert missing.json() == {"team_name": ["This field is required."]}
    assert unknown.status_code == 404
    assert foreign.status_code == 404
    assert broken.status_code == 400


def test_users_in_office_today(client: TestClient, office: Office) -> None:
    body = client.get("/api/users_in_office/", headers=auth(office.org.admin_token)).json()

    assert body == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [{"email": office.org.member.email, "username": "William"}],
    }


def test_another_organisation_sees_none_of_it(client: TestClient, office: Office, other_org: Org) -> None:
    headers = auth(other_org.member_token)
    for route in ("/api/bookings/", "/api/my_upcoming_bookings/", "/api/users_in_office/"):
        assert client.get(route, headers=headers).json()["count"] == 0, route


def test_pages_follow_django_rest_framework(client: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    start = utcnow() + timedelta(days=1)
    with transaction(api_factory) as session:
        member = session.merge(org.member)
        for day in range(150):
            slot = start + timedelta(days=day)
            bookings.create(session, member, start=slot, end=slot + timedelta(hours=8))
    headers = auth(org.member_token)

    first = client.get("/api/my_upcoming_bookings/", headers=headers).json()
    second = client.get(first["next"], headers=headers).json()

    assert (first["count"], len(first["results"]), first["previous"]) == (150, 100, None)
    assert first["next"] == "http://testserver/api/my_upcoming_bookings/?page=2"
    assert (len(second["results"]), second["next"]) == (50, None)
    assert second["previous"] == "http://testserver/api/my_upcoming_bookings/"
    assert len(set(ids(first) + ids(second))) == 150
    for page in ("3", "0", "abc"):
        response = client.get("/api/my_upcoming_bookings/", params={"page": page}, headers=headers)
        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid page."}


def test_team_members_of_a_renamed_team(client: TestClient, office: Office, api_factory: sessionmaker[Session]) -> None:
    with transaction(api_factory) as session:
        team = teams.get_by_name(session, office.org.organisation.id, office.team_name)
        teams.rename(session, team, "Core Platform")
        admin = members.get(session, office.org.organisation.id, office.org.admin.id)
        teams.add_member(session, team, admin)
    response = client.get(
        "/api/teams_upcoming_bookings/", params={"team_name": "core platform"}, headers=auth(office.org.member_token)
    )

    assert response.json()["count"] == 2

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import BookingStatus, Member, MemberStatus
from store.services import bookings
from tests.api.compat.conftest import Office
from tests.conftest import Org, auth, events

INVITE = "/api/create_membership_invitation/"
REMOVE = "/api/remove_membership/"


def test_invitation_is_created_as_documented(client: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    response = client.post(INVITE, json={"email_invited": "EXAMPLE@EXAMPLE.COM"}, headers=auth(org.admin_token))

    assert response.status_code == 201
    body = response.json()
    assert body["email_invited"] == "example@example.com"
    assert body["url"].startswith("http://testserver/api/create_membership_invitation/")
    assert response.headers["location"] == body["url"]
    invited = [e for e in events(api_factory, org.organisation.id) if e.type == "membership.invited"]
    assert [e.data["email"] for e in invited] == ["example@example.com"]


def test_the_returned_url_answers_a_get(client: TestClient, org: Org) -> None:
    url = client.post(INVITE, json={"email_invited": "new@example.com"}, headers=auth(org.admin_token)).json()["url"]

    response = client.get(url, headers=auth(org.admin_token))

    assert response.status_code == 200
    assert response.json() == {"email_invited": "new@example.com", "url": url, "status": "invited"}


def test_only_admins_invite(client: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    before = len(events(api_factory, org.organisation.id))

    response = client.post(INVITE, json={"email_invited": "x@example.com"}, headers=auth(org.member_token))

    assert response.status_code == 403
    assert response.json() == {"detail": "Only admins can do this."}
    assert len(events(api_factory, org.organisation.id)) == before


def test_bad_input_gets_field_errors_and_changes_nothing(
    client: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    before = len(events(api_factory, org.organisation.id))
    cases = [
        ({"email_invited": "not-an-email"}, "email_invited"),
        ({}, "email_invited"),
        ({"email_invited": "a@example.com", "role": "admin"}, "role"),
        ({"email_invited": org.member.email}, "email_invited"),
    ]
    for body, field in cases:
        response = client.post(INVITE, json=body, headers=auth(org.admin_token))
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
        assert isinstance(response.json()[field], list)
    assert len(events(api_factory, org.organisation.id)) == before


def test_malformed_json_and_unparsed_content_type(client: TestClient, org: Org) -> None:
    headers = auth(org.admin_token)
    malformed = client.post(
        INVITE, content=b'{"email_invited": ', headers={**headers, "Content-Type": "application/json"}
    )
    text = client.post(INVITE, content=b"a@example.com", headers={**headers, "Content-Type": "text/plain"})

    assert malformed.status_code == 400
    assert "JSON" in malformed.json()["detail"]
    assert text.status_code == 415
    assert "application/x-www-form-urlencoded" in text.json()["detail"]


def test_oversized_body_is_refused(api_factory: sessionmaker[Session], org: Org) -> None:
    from tests.conftest import make_client

    small = make_client(api_factory, max_body=100)
    response = small.post(INVITE, json={"email_invited": "a" * 200 + "@example.com"}, headers=auth(org.admin_token))

    assert response.status_code == 413
    assert "larger than 100 bytes" in response.json()["detail"]


def test_remove_membership_cancels_future_bookings_and_keeps_history(
    client: TestClient, office: Office, api_factory: sessionmaker[Session]
) -> None:
    org = office.org

    response = client.post(REMOVE, json={"email_invited": org.member.email}, headers=auth(org.admin_token))

    assert response.status_code == 201
    assert response.json()["email_invited"] == org.member.email
    assert response.json()["url"].startswith("http://testserver/api/remove_membership/")
    with api_factory() as session:
        assert session.get_one(Member, org.member.id).status is MemberStatus.REMOVED
        statuses = {b: bookings.get(session, org.organisation.id, b).status for b in (office.past_id, office.future_id)}
    assert statuses == {office.past_id: BookingStatus.BOOKED, office.future_id: BookingStatus.CANCELLED}
    removed_member = client.get("/api/bookings/", headers=auth(org.member_token))
    assert removed_member.status_code == 401
    status = client.get(response.json()["url"], headers=auth(org.admin_token)).json()["status"]
    assert status == "removed"


def test_remove_unknown_or_foreign_member_is_404(client: TestClient, org: Org, other_org: Org) -> None:
    for email in ("nobody@example.com", other_org.member.email):
        response = client.post(REMOVE, json={"email_invited": email}, headers=auth(org.admin_token))
        assert response.status_code == 404
        assert "detail" in response.json()


def test_membership_urls_of_another_organisation_are_404(client: TestClient, org: Org, other_org: Org) -> None:
    url = f"/api/create_membership_invitation/{org.member.id}/"

    assert client.get(url, headers=auth(other_org.admin_token)).status_code == 404
    assert client.get(url, headers=auth(org.admin_token)).status_code == 200


def test_the_last_admin_cannot_be_removed(client: TestClient, org: Org) -> None:
    response = client.post(REMOVE, json={"email_invited": org.admin.email}, headers=auth(org.admin_token))

    assert response.status_code == 409
    assert "admin" in response.json()["detail"]

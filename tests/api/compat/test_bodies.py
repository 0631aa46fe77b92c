"""The POST routes take what Django REST framework's default parsers take (item 2 of the integrator's
issue): JSON, a form (`application/x-www-form-urlencoded`, Zapier's "form" mode) and multipart form
data, with the same answers and the same errors; the edge's NUL check still holds for forms."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from store.models import Member, MemberStatus
from tests.conftest import Org, auth, events

INVITE = "/api/create_membership_invitation/"
REMOVE = "/api/remove_membership/"


def _send(client: TestClient, path: str, kind: str, fields: dict[str, str], token: str) -> httpx.Response:
    if kind == "json":
        return client.post(path, json=fields, headers=auth(token))
    if kind == "form":
        return client.post(path, data=fields, headers=auth(token))
    # multipart: each field a part without a file name, as `curl -F` and DRF's MultiPartParser read them
    parts = {name: (None, value) for name, value in fields.items()}
    return client.post(path, files=parts, headers=auth(token))


@pytest.mark.parametrize("kind", ["json", "form", "multipart"])
def test_an_invitation_in_each_body_kind(
    kind: str, client: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    response = _send(client, INVITE, kind, {"email_invited": f"{kind}@EXAMPLE.COM"}, org.admin_token)

    assert response.status_code == 201, response.text
    assert response.json()["email_invited"] == f"{kind}@example.com"
    invited = [e.data["email"] for e in events(api_factory, org.organisation.id) if e.type == "membership.invited"]
    assert invited == [f"{kind}@example.com"]


@pytest.mark.parametrize("kind", ["form", "multipart"])
def test_a_removal_by_form(kind: str, client: TestClient, org: Org, api_factory: sessionmaker[Session]) -> None:
    response = _send(client, REMOVE, kind, {"email_invited": org.member.email}, org.admin_token)

    assert response.status_code == 201, response.text
    with api_factory() as session:
        assert session.get_one(Member, org.member.id).status is MemberStatus.REMOVED


@pytest.mark.parametrize("kind", ["form", "multipart"])
def test_bad_forms_get_field_errors_and_change_nothing(
    kind: str, client: TestClient, org: Org, api_factory: sessionmaker[Session]
) -> None:
    before = len(events(api_factory, org.organisation.id))
    cases = [
        ({"email_invited": "not-an-email"}, "email_invited"),
        ({}, "email_invited"),
        ({"email_invited": "a@example.com", "role": "admin"}, "role"),
    ]
    for fields, field in cases:
        response = _send(client, INVITE, kind, fields, org.admin_token)
        assert response.status_code == 400, (fields, response.text)
        assert isinstance(response.json()[field], list), response.json()
    assert len(events(api_factory, org.organisation.id)) == before


def test_a_multipart_file_is_no_field(client: TestClient, org: Org) -> None:
    files = {"email_invited": ("who.txt", b"a@example.com", "text/plain")}

    response = client.post(INVITE, files=files, headers=auth(org.admin_token))

    assert response.status_code == 400
    assert response.json() == {"email_invited": ["This field is required."]}


def test_a_nul_in_a_form_is_refused_at_the_edge(client: TestClient, org: Org) -> None:
    response = client.post(INVITE, data={"email_invited": "a\x00@example.com"}, headers=auth(org.admin_token))

    assert response.status_code == 400
    assert "NUL" in response.json()["email_invited"][0]


def test_an_empty_body_is_a_missing_field(client: TestClient, org: Org) -> None:
    response = client.post(INVITE, headers=auth(org.admin_token))

    assert response.status_code == 400
    assert response.json() == {"email_invited": ["This field is required."]}


def test_the_caller_is_checked_before_the_body_is_read(client: TestClient, org: Org) -> None:
    malformed = {"Content-Type": "application/json"}
    member = client.post(INVITE, content=b"{", headers={**auth(org.member_token), **malformed})
    nobody = client.post(INVITE, data={"email_invited": "not-an-email"})

    assert (member.status_code, member.json()) == (403, {"detail": "Only admins can do this."})
    assert nobody.status_code == 401

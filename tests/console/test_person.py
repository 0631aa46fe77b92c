"""The console reads one person now from a Microsoft connection's page, through the API's own flow
(`sync_person`), against the fake Graph (TLS, msal), on SQLite and PostgreSQL; what it refuses comes back
to the page with the reason and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from connectors.kind import Endpoints
from store.models import Member, MemberStatus
from tests.api.v1.test_connections_person import BOX, graph, microsoft, tls  # noqa: F401 (fixtures)
from tests.conftest import Org, api_context, auth
from tests.console.test_pages import csrf_of, sign_in_with_token
from tests.fakes.graph import FakeGraph
from tests.fakes.tls import TestTLS


@pytest.fixture
def api_factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Every test here on SQLite and on PostgreSQL."""
    return session_factory


@pytest.fixture
def console(api_factory: sessionmaker[Session], graph: FakeGraph, tls: TestTLS) -> TestClient:  # noqa: F811
    directory = Endpoints(
        microsoft_authority=graph.authority_host,
        graph_url=graph.graph_url,
        ca_bundle=str(tls.ca_bundle),
        allow_private=True,
    )
    context = api_context(api_factory, secret_box=BOX, directory=directory)
    return TestClient(create_app(context), follow_redirects=False)


def member(factory: sessionmaker[Session], org: Org, email: str) -> Member | None:
    with factory() as session:
        return session.scalars(
            select(Member).where(Member.organisation_id == org.organisation.id, Member.email == email)
        ).first()


def read_one(console: TestClient, connection_id: int, email: str) -> str:
    where = f"/console/admin/connections/{connection_id}"
    page = console.get(where)
    assert f'action="{where}/person"' in page.text
    form: dict[str, Any] = {"csrf_token": csrf_of(page.text), "email": email}
    answer = console.post(f"{where}/person", data=form, headers={"referer": f"http://testserver{where}"})
    assert answer.status_code == 303, answer.text
    return console.get(answer.headers["location"]).text


def test_an_admin_reads_one_person_now(
    console: TestClient,
    api_factory: sessionmaker[Session],
    org: Org,
    graph: FakeGraph,  # noqa: F811
) -> None:
    connection_id = microsoft(console, org, graph)
    sign_in_with_token(console, org.admin_token)

    shown = read_one(console, connection_id, "ada@contoso.example")

    assert "ada@contoso.example read from the directory" in shown
    found = member(api_factory, org, "ada@contoso.example")
    assert found is not None
    assert found.status is MemberStatus.ACTIVE  # the organisation takes directory people in at once


def test_a_bad_address_or_a_refusing_directory_comes_back_with_the_reason(
    console: TestClient,
    api_factory: sessionmaker[Session],
    org: Org,
    graph: FakeGraph,  # noqa: F811
) -> None:
    connection_id = microsoft(console, org, graph)
    sign_in_with_token(console, org.admin_token)

    assert "Check the form: email: String should match pattern" in read_one(console, connection_id, "not-an-address")
    graph.identity.apps.clear()  # the app's secret no longer signs in
    shown = read_one(console, connection_id, "ada@contoso.example")

    assert 'role="alert">Entra ID: ' in shown  # the directory's refusal, in words
    assert member(api_factory, org, "ada@contoso.example") is None


def test_kinds_that_cannot_read_one_person_have_no_form(console: TestClient, org: Org) -> None:
    answer = console.post(
        "/v1/connections",
        json={"kind": "csv", "name": "HR export", "settings": {}, "credentials": {}},
        headers=auth(org.admin_token),
    )
    assert answer.status_code == 201, answer.text
    sign_in_with_token(console, org.admin_token)
    page = console.get(f"/console/admin/connections/{answer.json()['id']}")
    assert page.status_code == 200
    assert "/person" not in page.text

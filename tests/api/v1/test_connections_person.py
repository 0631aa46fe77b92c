"""One person now (issue 16, item 5): `POST /v1/connections/{id}/sync` with `{"email": …}` reads just that
person from the directory and applies it at once, against the fake Graph (TLS, msal) and the fake Google
(google-auth, the Admin SDK client), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from connectors.kind import Endpoints
from store.models import Member, MemberStatus, Team, TeamMembership
from store.secret_box import SecretBox
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import Org, api_context, auth, events
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import TestTLS, make_tls

BOX = SecretBox([SecretBox.generate_key()])
CLIENT_ID, SECRET = "app-person", "graph~person~secret"


@pytest.fixture
def api_factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Every test here on SQLite and on PostgreSQL."""
    return session_factory


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def graph(tls: TestTLS) -> Iterator[FakeGraph]:
    with FakeGraph(tls) as fake:
        fake.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
        fake.directory.add_user("u1", "ada@contoso.example", display_name="Ada", mail="ada@contoso.example")
        fake.directory.add_user("u2", "bob.b@contoso.onmicrosoft.com", display_name="Bob", mail="bob@contoso.example")
        fake.directory.add_group("g1", "Engineering")
        fake.directory.add_member("g1", "u1")
        yield fake


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


@pytest.fixture
def api(api_factory: sessionmaker[Session], graph: FakeGraph, google: FakeGoogle, tls: TestTLS) -> TestClient:
    directory = Endpoints(
        microsoft_authority=graph.authority_host,
        graph_url=graph.graph_url,
        google_api_url=google.base_url,
        ca_bundle=str(tls.ca_bundle),
        allow_private=True,
    )
    return TestClient(create_app(api_context(api_factory, secret_box=BOX, directory=directory)))


def connect(api: TestClient, org: Org, body: dict[str, Any]) -> int:
    api.patch("/v1/organisation", json={"directory_policy": "auto_accept"}, headers=auth(org.admin_token))
    response = api.post("/v1/connections", json=body, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def microsoft(api: TestClient, org: Org, graph: FakeGraph, **settings: Any) -> int:
    return connect(
        api,
        org,
        {
            "kind": "microsoft",
            "name": "Entra ID",
            "settings": {"tenant_id": graph.tenant_id, "client_id": CLIENT_ID, **settings},
            "credentials": {"client_secret": SECRET},
        },
    )


def one(api: TestClient, org: Org, connection_id: int, email: str, status: int = 202) -> dict[str, Any]:
    response = api.post(f"/v1/connections/{connection_id}/sync", json={"email": email}, headers=auth(org.admin_token))
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def member(factory: sessionmaker[Session], org: Org, email: str) -> Member | None:
    with factory() as session:
        return session.scalars(
            select(Member).where(Member.organisation_id == org.organisation.id, Member.email == email)
        ).first()


def team_members(session: Session, team_id: int) -> list[int]:
    return list(session.scalars(select(TeamMembership.member_id).where(TeamMembership.team_id == team_id)))


def test_a_microsoft_person_comes_and_goes_at_once(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, graph: FakeGraph
) -> None:
    connection_id = microsoft(api, org, graph, team_groups=["g1"])

    answer = one(api, org, connection_id, "ADA@contoso.example")

    assert (answer["found"], answer["in_scope"], answer["member_status"]) == (True, True, "active")
    assert answer["counts"]["added"] == 1
    ada = member(api_factory, org, "ada@contoso.example")
    assert ada is not None
    with api_factory() as session:
        team = session.scalars(select(Team).where(Team.organisation_id == org.organisation.id)).one()
        assert team.name == "Engineering"
        assert team_members(session, team.id) == [ada.id]
    assert graph.count("/v1.0/users/delta") == 0  # one person read, not the directory

    # Left the group, renamed: their team and name follow, nobody else is touched.
    graph.directory.remove_member("g1", "u1")
    graph.directory.update_user("u1", displayName="Ada Lovelace")
    answer = one(api, org, connection_id, "ada@contoso.example")
    assert answer["counts"].get("updated") == 1
    with api_factory() as session:
        assert team_members(session, session.scalars(select(Team.id)).one()) == []

    # Disabled in Entra ID: removed now.
    graph.directory.update_user("u1", accountEnabled=False)
    answer = one(api, org, connection_id, "ada@contoso.example")
    assert (answer["in_scope"], answer["member_status"], answer["counts"]["removed"]) == (False, "removed", 1)
    assert events(api_factory, org.organisation.id)[-1].type in {"membership.removed", "team.updated"}


def test_a_person_gone_from_the_directory_is_removed_and_a_stranger_is_not_found(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, graph: FakeGraph
) -> None:
    connection_id = microsoft(api, org, graph)
    one(api, org, connection_id, "ada@contoso.example")
    graph.directory.hard_delete_user("u1")

    answer = one(api, org, connection_id, "ada@contoso.example")

    assert (answer["found"], answer["member_status"], answer["counts"]) == (False, "removed", {"removed": 1})
    removed = [event for event in events(api_factory, org.organisation.id) if event.type == "membership.removed"]
    assert [event.data["email"] for event in removed] == ["ada@contoso.example"]

    with nothing_written(api_factory):
        body = assert_problem(
            api.post(
                f"/v1/connections/{connection_id}/sync",
                json={"email": "nobody@contoso.example"},
                headers=auth(org.admin_token),
            ),
            404,
        )
    assert "nobody@contoso.example" in body["detail"]


def test_an_address_that_is_only_a_mailbox_is_found_by_mail(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, graph: FakeGraph
) -> None:
    connection_id = microsoft(api, org, graph)
    answer = one(api, org, connection_id, "bob@contoso.example")
    assert (answer["found"], answer["member_status"]) == (True, "active")
    assert member(api_factory, org, "bob@contoso.example") is not None
    assert graph.count("/v1.0/users?") == 1


def test_a_directory_that_fails_changes_nothing(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, graph: FakeGraph
) -> None:
    connection_id = microsoft(api, org, graph)
    graph.throttle(5, retry_after="0.001", status=503)
    with nothing_written(api_factory):
        body = assert_problem(
            api.post(
                f"/v1/connections/{connection_id}/sync",
                json={"email": "ada@contoso.example"},
                headers=auth(org.admin_token),
            ),
            502,
            "directory_failed",
        )
    assert "503" in body["detail"]
    graph.identity.apps.clear()
    with nothing_written(api_factory):
        assert_problem(
            api.post(
                f"/v1/connections/{connection_id}/sync",
                json={"email": "ada@contoso.example"},
                headers=auth(org.admin_token),
            ),
            502,
            "directory_refused",
        )
    assert member(api_factory, org, "ada@contoso.example") is None


def test_kinds_that_cannot_read_one_person_say_which_can(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, graph: FakeGraph
) -> None:
    csv_id = connect(api, org, {"kind": "csv", "name": "HR"})
    microsoft_id = microsoft(api, org, graph)
    with nothing_written(api_factory):
        body = assert_problem(
            api.post(f"/v1/connections/{csv_id}/sync", json={"email": "a@b.example"}, headers=auth(org.admin_token)),
            422,
        )
        assert "google and microsoft connections can" in body["detail"]
        assert error_fields(body) == {"email"}
        for bad in ({"email": "not an address"}, {"email": ""}, {"email": 5}, {"mail": "a@b.example"}):
            response = api.post(f"/v1/connections/{microsoft_id}/sync", json=bad, headers=auth(org.admin_token))
            assert_problem(response, 422)
        member_only = api.post(
            f"/v1/connections/{microsoft_id}/sync", json={"email": "a@b.example"}, headers=auth(org.member_token)
        )
        assert_problem(member_only, 403)
    # Without a body it is the whole connection's sync, queued as before (the first, asked for when the
    # connection was made, covers it).
    queued = api.post(f"/v1/connections/{microsoft_id}/sync", headers=auth(org.admin_token))
    assert (queued.status_code, queued.json()) == (202, {"queued": False})


def test_a_google_person_in_a_scope_group_directly_or_nested(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, google: FakeGoogle
) -> None:
    staff = google.add_group("staff@acme.example", "Staff")
    nested = google.add_group("platform@acme.example", "Platform")
    google.add_members(staff, [nested], kind="GROUP")
    cy = google.add_user("cy@acme.example", "Cy", notify=False)
    google.add_user("di@acme.example", "Di", notify=False)
    google.add_members(nested, [cy])
    connection_id = connect(
        api,
        org,
        {
            "kind": "google",
            "name": "Workspace",
            "settings": {"admin_email": google.admin_email, "scope": {"groups": ["staff@acme.example"]}},
            "credentials": {"service_account_key": google.service_account_info()},
        },
    )

    cy_answer = one(api, org, connection_id, "cy@acme.example")
    di_answer = one(api, org, connection_id, "di@acme.example")

    assert (cy_answer["in_scope"], cy_answer["member_status"]) == (True, "active")  # through the nested group
    assert (di_answer["found"], di_answer["in_scope"], di_answer["member_id"]) == (True, False, None)

    google.delete_user(cy)
    gone = one(api, org, connection_id, "cy@acme.example")
    assert (gone["found"], gone["member_status"]) == (False, "removed")
    cy_member = member(api_factory, org, "cy@acme.example")
    assert cy_member is not None
    assert cy_member.status is MemberStatus.REMOVED

"""/scim/v2/Groups: CRUD, member patches as Entra ID and Okta send them, and groups mirrored as teams."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.models import Member, Team
from store.services import teams
from tests.api.scim.conftest import Scim, connect, user_body
from tests.api.scim.test_users import assert_scim_error
from tests.conftest import Org, make_client


def group_body(name: str = "Engineering", *member_ids: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": [{"value": member_id} for member_id in member_ids],
    }


def member_values(body: dict[str, Any]) -> set[str]:
    return {item["value"] for item in body.get("members", [])}


def team_members(factory: sessionmaker[Session], org: Org, name: str) -> set[str] | None:
    with factory() as session:
        team = session.scalar(select(Team).where(Team.organisation_id == org.organisation.id, Team.name == name))
        if team is None:
            return None
        ids = teams.member_ids(session, team)
        return set(session.scalars(select(Member.email).where(Member.id.in_(ids))))


@pytest.fixture
def people(scim: Scim) -> list[str]:
    return [scim.post("/Users", user_body(name)).json()["id"] for name in ("alice", "bob", "carol")]


@pytest.fixture
def teamed(api_factory: sessionmaker[Session], org: Org) -> Scim:
    """A connection that mirrors every group as a team."""
    connection_id, token = connect(api_factory, org, team_groups=["*"])
    return Scim(make_client(api_factory), token, connection_id, org)


def test_create_get_and_list(scim: Scim, people: list[str]) -> None:
    response = scim.post("/Groups", group_body("Engineering", people[0]))
    created = response.json()

    assert response.status_code == 201
    assert response.headers["location"] == created["meta"]["location"]
    assert created["meta"]["resourceType"] == "Group"
    assert member_values(created) == {people[0]}
    assert scim.get(f"/Groups/{created['id']}").json() == created
    listed = scim.get("/Groups", filter='displayName eq "engineering"').json()
    assert [item["id"] for item in listed["Resources"]] == [created["id"]]
    # Entra ID checks a membership this way, without the member list
    check = scim.get(
        "/Groups", filter=f'id eq "{created["id"]}" and members[value eq "{people[0]}"]', excludedAttributes="members"
    ).json()
    assert check["totalResults"] == 1
    assert "members" not in check["Resources"][0]
    assert scim.get("/Groups", filter=f'members[value eq "{people[1]}"]').json()["totalResults"] == 0


def test_a_group_becomes_a_team_and_follows_member_patches(
    teamed: Scim, api_factory: sessionmaker[Session], org: Org
) -> None:
    ids = [teamed.post("/Users", user_body(name)).json()["id"] for name in ("alice", "bob", "carol")]
    group = teamed.post("/Groups", group_body("Engineering", ids[0], ids[1])).json()
    assert team_members(api_factory, org, "Engineering") == {"alice@acme.example", "bob@acme.example"}

    url = f"/Groups/{group['id']}"
    teamed.patch(url, {"op": "Add", "path": "members", "value": [{"value": ids[2]}]})  # Entra ID
    teamed.patch(url, {"op": "Remove", "path": f'members[value eq "{ids[0]}"]'})  # Entra ID
    assert team_members(api_factory, org, "Engineering") == {"bob@acme.example", "carol@acme.example"}

    teamed.patch(url, {"op": "remove", "path": "members", "value": [{"value": ids[1]}]})  # Okta
    body = teamed.patch(url, {"op": "replace", "value": {"id": group["id"], "displayName": "Platform"}}).json()  # Okta
    assert body["displayName"] == "Platform"
    assert member_values(body) == {ids[2]}
    assert team_members(api_factory, org, "Platform") == {"carol@acme.example"}

    teamed.patch(f"/Users/{ids[2]}", {"op": "replace", "value": {"active": False}})
    assert team_members(api_factory, org, "Platform") == set()


def test_without_team_groups_no_team_is_made(scim: Scim, api_factory: sessionmaker[Session], people: list[str]) -> None:
    scim.post("/Groups", group_body("Engineering", *people))
    assert team_members(api_factory, scim.org, "Engineering") is None


def test_put_replaces_name_and_members(teamed: Scim, api_factory: sessionmaker[Session], org: Org) -> None:
    ids = [teamed.post("/Users", user_body(name)).json()["id"] for name in ("alice", "bob")]
    group = teamed.post("/Groups", group_body("Engineering", ids[0])).json()

    body = teamed.put(f"/Groups/{group['id']}", group_body("Engineering", ids[1])).json()

    assert member_values(body) == {ids[1]}
    assert team_members(api_factory, org, "Engineering") == {"bob@acme.example"}


def test_removing_a_member_twice_changes_nothing(scim: Scim, people: list[str]) -> None:
    group = scim.post("/Groups", group_body("Engineering", people[0])).json()
    removal = {"op": "Remove", "path": f'members[value eq "{people[0]}"]'}

    first = scim.patch(f"/Groups/{group['id']}", removal)
    second = scim.patch(f"/Groups/{group['id']}", removal)

    assert first.status_code == second.status_code == 200
    assert "members" not in second.json()


def test_deleting_a_user_takes_them_out_of_groups(scim: Scim, people: list[str]) -> None:
    group = scim.post("/Groups", group_body("Engineering", people[0], people[1])).json()

    scim.delete(f"/Users/{people[0]}")

    assert member_values(scim.get(f"/Groups/{group['id']}").json()) == {people[1]}


def test_delete(scim: Scim, people: list[str]) -> None:
    group = scim.post("/Groups", group_body("Engineering", people[0])).json()

    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert_scim_error(scim.get(f"/Groups/{group['id']}"), 404)
    assert_scim_error(scim.delete(f"/Groups/{group['id']}"), 404)
    assert scim.get("/Groups").json()["totalResults"] == 0


def test_group_errors(scim: Scim, people: list[str]) -> None:
    group = scim.post("/Groups", group_body("Engineering", people[0])).json()
    url = f"/Groups/{group['id']}"

    assert_scim_error(scim.post("/Groups", {"members": []}), 400, "invalidValue")
    assert_scim_error(scim.post("/Groups", group_body("x" * 201)), 400, "invalidValue")
    assert_scim_error(scim.put("/Groups/nobody", group_body()), 404)
    assert_scim_error(scim.patch("/Groups/nobody", {"op": "add", "path": "members", "value": []}), 404)
    assert_scim_error(scim.patch(url, {"op": "replace", "path": "members.value", "value": "x"}), 400, "mutability")
    assert_scim_error(scim.patch(url, {"op": "remove", "path": "displayName"}), 400, "invalidValue")
    assert_scim_error(scim.get("/Groups", filter='members[display eq "x"]'), 400, "invalidFilter")
    assert scim.get(url).json() == group

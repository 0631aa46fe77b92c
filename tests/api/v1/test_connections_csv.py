"""POST /v1/connections/{id}/import: a CSV file reconciles a csv connection end to end; a dry run plans only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, Connection, Member, MemberStatus, Team
from store.services import bookings, connections, desks, directory, members, teams
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth, events

FIRST = "email,name,teams,active\nada@acme.example,Ada,Ops,true\nbob@acme.example,Bob,Ops;Design,yes\n"
WITHOUT_BOB = "email,name,teams\nada@acme.example,Ada,Ops\n"


def connect(client: TestClient, org: Org, kind: str = "csv") -> int:
    response = client.post("/v1/connections", json={"kind": kind, "name": "HR export"}, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    connection_id: int = response.json()["id"]
    return connection_id


def send(client: TestClient, org: Org, connection_id: int, text: str, *, dry_run: bool = False) -> dict[str, Any]:
    response = client.post(
        f"/v1/connections/{connection_id}/import",
        params={"dry_run": "true"} if dry_run else None,
        json={"csv": text},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def states(factory: sessionmaker[Session], org: Org) -> dict[str, MemberStatus]:
    with factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == org.organisation.id))
        return {row.email: row.status for row in rows}


def team_members(factory: sessionmaker[Session], org: Org, name: str) -> set[str]:
    with factory() as session:
        team = teams.get_by_name(session, org.organisation.id, name)
        return {session.get_one(Member, member_id).email for member_id in teams.member_ids(session, team)}


def use_auto_accept(client: TestClient, org: Org) -> None:
    response = client.patch("/v1/organisation", json={"directory_policy": "auto_accept"}, headers=auth(org.admin_token))
    assert response.status_code == 200, response.text


def test_an_import_invites_and_makes_teams(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = connect(client, org)

    body = send(client, org, connection_id, FIRST)

    assert (body["dry_run"], body["applied"], body["rows"], body["errors"]) == (False, True, 2, [])
    assert body["counts"]["invited"] == 2
    assert body["people"]["invited"] == ["ada@acme.example", "bob@acme.example"]
    found = states(api_factory, org)
    assert (found["ada@acme.example"], found["bob@acme.example"]) == (MemberStatus.INVITED, MemberStatus.INVITED)
    assert team_members(api_factory, org, "Ops") == {"ada@acme.example", "bob@acme.example"}
    assert team_members(api_factory, org, "Design") == {"bob@acme.example"}
    connection = client.get(f"/v1/connections/{connection_id}", headers=auth(org.admin_token)).json()
    assert connection["status"] == "active"
    assert connection["last_synced_at"] is not None
    assert connection["last_counts"] == body["counts"]
    types = [event.type for event in events(api_factory, org.organisation.id)]
    assert types.count("membership.invited") == 2
    assert types[-1] == "connection.synced"


def test_leaving_the_file_removes_and_cancels_future_bookings(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    assert send(client, org, connection_id, FIRST)["people"]["added"] == ["ada@acme.example", "bob@acme.example"]
    start = utcnow() + timedelta(days=2)
    with transaction(api_factory) as session:
        bob = members.get_by_email(session, org.organisation.id, "bob@acme.example")
        desk = desks.create(session, org.organisation.id, "D1")
        booking_id = bookings.create(session, bob, start=start, end=start + timedelta(hours=8), desk_id=desk.id).id

    body = send(client, org, connection_id, WITHOUT_BOB)

    assert body["people"]["removed"] == ["bob@acme.example"]
    assert body["counts"]["removed"] == 1
    assert states(api_factory, org)["bob@acme.example"] is MemberStatus.REMOVED
    assert states(api_factory, org)["ada@acme.example"] is MemberStatus.ACTIVE
    with api_factory() as session:
        assert session.get_one(Booking, booking_id).status is BookingStatus.CANCELLED
    removed = [e for e in events(api_factory, org.organisation.id) if e.type == "membership.removed"]
    assert (removed[-1].data["reason"], removed[-1].data["cancelled_bookings"]) == ("directory_offboarded", 1)
    assert team_members(api_factory, org, "Ops") == {"ada@acme.example"}


def test_a_team_left_out_of_the_file_loses_its_members_from_the_directory(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    send(client, org, connection_id, FIRST)

    send(client, org, connection_id, "email,teams\nada@acme.example,Ops\nbob@acme.example,Ops\n")

    assert team_members(api_factory, org, "Ops") == {"ada@acme.example", "bob@acme.example"}
    with api_factory() as session:
        assert {group.external_id for group in directory.live_groups(session, connection_id)} == {"ops"}
    assert team_members(api_factory, org, "Design") == set()  # emptied, and kept with its history


def test_inactive_rows_are_removed_and_coming_back_restores(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    send(client, org, connection_id, FIRST)

    inactive = send(client, org, connection_id, FIRST.replace("Ops;Design,yes", "Ops;Design,no"))
    assert inactive["people"]["removed"] == ["bob@acme.example"]

    back = send(client, org, connection_id, FIRST)
    assert back["people"]["restored"] == ["bob@acme.example"]
    assert states(api_factory, org)["bob@acme.example"] is MemberStatus.ACTIVE


def test_renames_are_updates_and_the_same_file_twice_changes_nothing(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(client, org)
    send(client, org, connection_id, FIRST)

    renamed = send(client, org, connection_id, FIRST.replace("Ada,Ops", "Ada Lovelace,Ops"))
    assert renamed["people"]["updated"] == ["ada@acme.example"]
    before = [event.type for event in events(api_factory, org.organisation.id)]

    again = send(client, org, connection_id, FIRST.replace("Ada,Ops", "Ada Lovelace,Ops"))

    assert (again["people"], {name for name, count in again["counts"].items() if count}) == ({}, set())
    after = [event.type for event in events(api_factory, org.organisation.id)]
    assert after == [*before, "connection.synced"]  # only the record of the import itself


def test_a_dry_run_plans_and_changes_nothing(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    send(client, org, connection_id, FIRST)
    text = "email,name,teams\nada@acme.example,Ada L.,Ops\ncarol@acme.example,Carol,\n"

    with nothing_written(api_factory, but={"sync_plans"}):
        plan = send(client, org, connection_id, text, dry_run=True)

    assert (plan["dry_run"], plan["applied"], plan["rows"], plan["errors"]) == (True, False, 2, [])
    assert plan["people"] == {
        "added": ["carol@acme.example"],
        "updated": ["ada@acme.example"],
        "removed": ["bob@acme.example"],
    }
    assert (plan["counts"]["added"], plan["counts"]["updated"], plan["counts"]["removed"]) == (1, 1, 1)
    # The same file for real does what the plan said.
    done = send(client, org, connection_id, text)
    assert done["people"] == plan["people"]


def test_a_dry_run_under_the_invite_policy_sends_nothing(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(client, org)
    with nothing_written(api_factory, but={"sync_plans"}):
        plan = send(client, org, connection_id, FIRST, dry_run=True)
    assert plan["people"]["invited"] == ["ada@acme.example", "bob@acme.example"]
    with api_factory() as session:
        assert session.scalars(select(Team)).all() == []


def test_a_file_with_bad_rows_changes_nothing_and_names_every_line(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(client, org)
    send(client, org, connection_id, FIRST)
    text = "email,active\nada@acme.example,true\nnot-an-address,true\nbob@acme.example,perhaps\nADA@acme.example,\n"

    with nothing_written(api_factory):
        response = client.post(
            f"/v1/connections/{connection_id}/import", json={"csv": text}, headers=auth(org.admin_token)
        )
        plan = send(client, org, connection_id, text, dry_run=True)

    problem = assert_problem(response, 422, "invalid_csv")
    assert "nothing was imported" in problem["detail"]
    assert [(item["field"], item["line"]) for item in problem["errors"]] == [("csv", 3), ("csv", 4), ("csv", 5)]
    assert problem["errors"][0]["detail"] == "line 3: 'not-an-address' is not an email address"
    assert (plan["applied"], plan["counts"], plan["people"]) == (False, {}, {})
    assert [(item["line"], item["message"]) for item in plan["errors"]] == [
        (3, "'not-an-address' is not an email address"),
        (4, "active must be true/false, yes/no, 1/0 or Active/Suspended, not 'perhaps'"),
        (5, "ada@acme.example is already on line 2"),
    ]


@pytest.mark.parametrize(
    ("body", "field"), [({}, "csv"), ({"csv": 3}, "csv"), ({"csv": "email\n", "extra": 1}, "extra")]
)
def test_the_body_is_checked(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, body: dict[str, Any], field: str
) -> None:
    connection_id = connect(client, org)
    with nothing_written(api_factory):
        response = client.post(f"/v1/connections/{connection_id}/import", json=body, headers=auth(org.admin_token))
    assert error_fields(assert_problem(response, 422)) == {field}


def test_a_raw_csv_body_is_refused_with_the_way_to_send_it(client: TestClient, org: Org) -> None:
    connection_id = connect(client, org)
    response = client.post(
        f"/v1/connections/{connection_id}/import",
        content=FIRST.encode(),
        headers={**auth(org.admin_token), "Content-Type": "text/csv"},
    )
    assert_problem(response, 415)


def test_a_dry_run_query_must_be_a_boolean(client: TestClient, org: Org) -> None:
    connection_id = connect(client, org)
    response = client.post(
        f"/v1/connections/{connection_id}/import",
        params={"dry_run": "maybe"},
        json={"csv": FIRST},
        headers=auth(org.admin_token),
    )
    assert error_fields(assert_problem(response, 422)) == {"dry_run"}


@pytest.mark.parametrize("kind", ["scim", "microsoft"])
def test_only_csv_connections_take_files(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, kind: str
) -> None:
    if kind == "microsoft":
        body = {
            "kind": "microsoft",
            "name": "Entra",
            "settings": {"tenant_id": "t", "client_id": "c"},
            "credentials": {"client_secret": "s"},
        }
        connection_id = client.post("/v1/connections", json=body, headers=auth(org.admin_token)).json()["id"]
    else:
        connection_id = connect(client, org, kind)
    for dry_run in (False, True):
        with nothing_written(api_factory):
            response = client.post(
                f"/v1/connections/{connection_id}/import",
                params={"dry_run": str(dry_run).lower()},
                json={"csv": FIRST},
                headers=auth(org.admin_token),
            )
        assert f"a {kind} connection" in assert_problem(response, 409, "conflict")["detail"]


def test_an_import_waits_for_a_running_sync(client: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = connect(client, org)
    with transaction(api_factory) as session:
        assert connections.claim(session, connection_id)

    with nothing_written(api_factory):
        response = client.post(
            f"/v1/connections/{connection_id}/import", json={"csv": FIRST}, headers=auth(org.admin_token)
        )
    assert_problem(response, 409, "sync_running")
    with api_factory() as session:
        assert session.get_one(Connection, connection_id).status.value == "syncing"

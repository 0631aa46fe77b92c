"""/v1/connections/{id}/plan and …/plans/{plan_id}: plans made, read, applied, stale; removals held over
the removal limit through SCIM, approved and rejected; every error path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from store.columns import utcnow
from store.db import transaction
from store.models import ConnectionKind, Member, MemberStatus, SyncPlan
from store.secret_box import SecretBox
from store.services import connections
from tests.api.v1.conftest import assert_problem, error_fields, nothing_written
from tests.conftest import QUEUE, Org, api_context, auth, events, make_org
from worker import runtime
from worker.api_jobs import QueuedJobs
from worker.mailers.folder import FolderMailer
from worker.webhooks.sender import make_client

BOX = SecretBox([SecretBox.generate_key()])
FILE = "email,name\nada@acme.example,Ada\nbob@acme.example,Bob\n"
SCIM_JSON = "application/scim+json"


@pytest.fixture
def api(api_factory: sessionmaker[Session], tmp_path: Path) -> TestClient:
    """The API whose jobs are the worker's own (QueuedJobs): plans read directories as in production."""
    worker_runtime = runtime.Runtime(
        api_factory,
        FolderMailer(tmp_path / "mail"),
        "http://testserver",
        "deskbridge <no-reply@deskbridge.test>",
        secret_box=BOX,
        webhook_client=make_client(allow_private=True),
        queue=QUEUE,
    )
    return TestClient(create_app(api_context(api_factory, secret_box=BOX, jobs=QueuedJobs(worker_runtime))))


def connect(api: TestClient, org: Org, kind: str = "csv", **settings: Any) -> int:
    response = api.post(
        "/v1/connections", json={"kind": kind, "name": "HR", "settings": settings}, headers=auth(org.admin_token)
    )
    assert response.status_code == 201, response.text
    connection_id: int = response.json()["id"]
    return connection_id


def dry_run(api: TestClient, org: Org, connection_id: int, text: str) -> dict[str, Any]:
    response = api.post(
        f"/v1/connections/{connection_id}/import",
        params={"dry_run": "true"},
        json={"csv": text},
        headers=auth(org.admin_token),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def apply(api: TestClient, org: Org, connection_id: int, plan_id: str, token: str | None = None) -> Any:
    return api.post(f"/v1/connections/{connection_id}/plans/{plan_id}/apply", headers=auth(token or org.admin_token))


def states(factory: sessionmaker[Session], org: Org) -> dict[str, MemberStatus]:
    with factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == org.organisation.id))
        return {row.email: row.status for row in rows}


def emails(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {action: [item["email"] for item in items] for action, items in plan["people"].items()}


def test_a_csv_dry_run_is_a_plan_that_applies_the_file_as_planned(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(api, org)
    with nothing_written(api_factory, but={"sync_plans"}):
        planned = dry_run(api, org, connection_id, FILE)
    plan_id = planned["plan_id"]
    assert plan_id.startswith("plan_")
    assert planned["people"] == {"invited": ["ada@acme.example", "bob@acme.example"]}

    read = api.get(f"/v1/connections/{connection_id}/plans/{plan_id}", headers=auth(org.admin_token))
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["id"], body["status"], emails(body)) == (plan_id, "open", planned["people"])
    assert body["people"]["invited"][0] == {
        "user": "ada@acme.example",
        "email": "ada@acme.example",
        "name": "Ada",
        "member_id": None,
        "was": None,
        "reason": None,
        "bookings": None,
    }

    applied = apply(api, org, connection_id, plan_id)

    assert applied.status_code == 200, applied.text
    assert (applied.json()["status"], applied.json()["result"]) == ("applied", {"invited": 2})
    assert states(api_factory, org)["bob@acme.example"] is MemberStatus.INVITED
    types = [event.type for event in events(api_factory, org.organisation.id)]
    assert types.count("membership.invited") == 2
    assert types[-1] == "connection.synced"
    again = apply(api, org, connection_id, plan_id)
    assert_problem(again, 409, "plan_applied")


def test_a_plan_of_a_directory_that_moved_on_answers_409_with_the_fresh_plan(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(api, org)
    response = api.post(f"/v1/connections/{connection_id}/import", json={"csv": FILE}, headers=auth(org.admin_token))
    assert response.status_code == 200, response.text
    plan = api.post(f"/v1/connections/{connection_id}/plan", headers=auth(org.admin_token))
    assert plan.status_code == 201, plan.text
    assert plan.headers["location"] == f"/v1/connections/{connection_id}/plans/{plan.json()['id']}"
    assert plan.json()["people"] == {}
    # The directory moves on: a new scope leaves Bob out.
    patched = api.patch(
        f"/v1/connections/{connection_id}",
        json={"settings": {"scope": {"domains": ["else.example"]}, "removal_limit": {"people": 5}}},
        headers=auth(org.admin_token),
    )
    assert patched.status_code == 200, patched.text

    with nothing_written(api_factory, but={"sync_plans", "connections"}):
        stale = apply(api, org, connection_id, plan.json()["id"])

    problem = assert_problem(stale, 409, "plan_stale")
    fresh = problem["plan"]
    assert emails(fresh) == {"removed": ["ada@acme.example", "bob@acme.example"]}
    assert fresh["status"] == "open"
    assert fresh["id"] in problem["detail"]
    assert (
        api.get(f"/v1/connections/{connection_id}/plans/{plan.json()['id']}", headers=auth(org.admin_token)).json()[
            "replaced_by"
        ]
        == fresh["id"]
    )
    assert states(api_factory, org)["ada@acme.example"] is MemberStatus.INVITED

    applied = apply(api, org, connection_id, fresh["id"])
    assert applied.status_code == 200, applied.text
    assert states(api_factory, org)["ada@acme.example"] is MemberStatus.REMOVED


def scim_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}


def scim_user(name: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"{name}@acme.example",
        "emails": [{"primary": True, "value": f"{name}@acme.example", "type": "work"}],
        "active": True,
    }


def test_scim_deletes_one_by_one_are_held_past_the_limit_then_approved_or_rejected(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    with transaction(api_factory) as session:
        connection, token = connections.create(
            session,
            BOX,
            org.organisation.id,
            ConnectionKind.SCIM,
            "Entra provisioning",
            settings={"removal_limit": {"people": 2, "percent": 0}},
        )
        connection_id = connection.id
    assert token is not None
    ids = []
    for name in ("u1", "u2", "u3", "u4", "u5"):
        created = api.post("/scim/v2/Users", json=scim_user(name), headers=scim_headers(token))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])

    # Entra deletes one at a time: each answer is the plain SCIM 204, held or not.
    for user_id in ids[:4]:
        deleted = api.delete(f"/scim/v2/Users/{user_id}", headers=scim_headers(token))
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert api.get(f"/scim/v2/Users/{user_id}", headers=scim_headers(token)).status_code == 404
    # Or disables: a valid SCIM answer too, the user inactive as asked.
    disable = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    patched = api.patch(f"/scim/v2/Users/{ids[4]}", json=disable, headers=scim_headers(token))
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False

    now = states(api_factory, org)
    assert [now[f"u{i}@acme.example"] for i in range(1, 6)] == [MemberStatus.REMOVED] * 2 + [MemberStatus.INVITED] * 3
    shown = api.get(f"/v1/connections/{connection_id}", headers=auth(org.admin_token)).json()
    assert shown["status"] == "removals_held"
    plan_id = shown["held_plan_id"]
    held = api.get(f"/v1/connections/{connection_id}/plans/{plan_id}", headers=auth(org.admin_token)).json()
    assert (held["status"], held["expires_at"]) == ("held", None)
    assert sorted(emails(held)["removed"]) == ["u3@acme.example", "u4@acme.example", "u5@acme.example"]

    # A member may not decide; an admin rejects: they stay, and the connection is active again.
    assert_problem(apply(api, org, connection_id, plan_id, token=org.member_token), 403)
    rejected = api.post(f"/v1/connections/{connection_id}/plans/{plan_id}/reject", headers=auth(org.admin_token))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert_problem(apply(api, org, connection_id, plan_id), 409, "plan_rejected")
    assert states(api_factory, org)["u5@acme.example"] is MemberStatus.INVITED
    shown = api.get(f"/v1/connections/{connection_id}", headers=auth(org.admin_token)).json()
    assert (shown["status"], shown["held_plan_id"]) == ("active", None)


def test_approving_held_removals_applies_them(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = connect(api, org, removal_limit={"people": 0, "percent": 0})
    imported = api.post(f"/v1/connections/{connection_id}/import", json={"csv": FILE}, headers=auth(org.admin_token))
    assert imported.status_code == 200, imported.text
    leaving = api.post(
        f"/v1/connections/{connection_id}/import",
        json={"csv": "email,name\nada@acme.example,Ada\ncarol@acme.example,Carol\n"},
        headers=auth(org.admin_token),
    )
    assert leaving.status_code == 200, leaving.text
    assert (leaving.json()["counts"]["held"], leaving.json()["counts"]["invited"]) == (1, 1)
    plan_id = api.get(f"/v1/connections/{connection_id}", headers=auth(org.admin_token)).json()["held_plan_id"]
    reject_open = dry_run(api, org, connection_id, FILE)["plan_id"]
    not_held = api.post(f"/v1/connections/{connection_id}/plans/{reject_open}/reject", headers=auth(org.admin_token))
    assert_problem(not_held, 409, "plan_not_held")

    approved = apply(api, org, connection_id, plan_id)

    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["result"]) == ("applied", {"removed": 1})
    assert states(api_factory, org)["bob@acme.example"] is MemberStatus.REMOVED
    types = [event.type for event in events(api_factory, org.organisation.id)]
    assert "connection.removals_held" in types


def test_plan_errors(api: TestClient, api_factory: sessionmaker[Session], org: Org) -> None:
    connection_id = connect(api, org)
    plan_id = dry_run(api, org, connection_id, FILE)["plan_id"]
    other = make_org(api_factory, "Other")
    other_connection = connect(api, other)
    other_plan = dry_run(api, other, other_connection, FILE)["plan_id"]
    admin = auth(org.admin_token)
    for path in (
        f"/v1/connections/{connection_id}/plans/plan_unknown",
        f"/v1/connections/{connection_id}/plans/{other_plan}",  # another organisation's plan
        f"/v1/connections/{other_connection}/plans/{other_plan}",  # and connection
        f"/v1/connections/{other_connection}/plans/{plan_id}",
    ):
        assert_problem(api.get(path, headers=admin), 404)
        assert_problem(api.post(f"{path}/apply", headers=admin), 404)
        assert_problem(api.post(f"{path}/reject", headers=admin), 404)
    assert_problem(api.post(f"/v1/connections/{other_connection}/plan", headers=admin), 404)
    member = auth(org.member_token)
    assert_problem(api.get(f"/v1/connections/{connection_id}/plans/{plan_id}", headers=member), 403)
    assert_problem(api.post(f"/v1/connections/{connection_id}/plan", headers=member), 403)
    assert_problem(api.post(f"/v1/connections/{connection_id}/plans/{plan_id}/reject", headers=member), 403)
    with transaction(api_factory) as session:  # the hour passes
        session.execute(update(SyncPlan).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = api.get(f"/v1/connections/{connection_id}/plans/{plan_id}", headers=admin)
    assert "expired" in assert_problem(expired, 404)["detail"]
    assert_problem(apply(api, org, connection_id, plan_id), 404)
    assert_problem(api.get(f"/v1/connections/{connection_id}/plans/{'x' * 41}", headers=admin), 422)


@pytest.mark.parametrize(
    ("limit", "field"),
    [
        ({"people": -1}, "settings.removal_limit.people"),
        ({"people": 1.5}, "settings.removal_limit.people"),
        ({"percent": 101}, "settings.removal_limit.percent"),
        ({"percent": "5"}, "settings.removal_limit.percent"),
        ({"share": 5}, "settings.removal_limit"),
        (10, "settings.removal_limit"),
    ],
)
def test_a_bad_removal_limit_is_refused(
    api: TestClient, api_factory: sessionmaker[Session], org: Org, limit: Any, field: str
) -> None:
    connection_id = connect(api, org)
    with nothing_written(api_factory):
        made = api.post(
            "/v1/connections",
            json={"kind": "scim", "name": "Okta", "settings": {"removal_limit": limit}},
            headers=auth(org.admin_token),
        )
        patched = api.patch(
            f"/v1/connections/{connection_id}",
            json={"settings": {"removal_limit": limit}},
            headers=auth(org.admin_token),
        )
    for response in (made, patched):
        assert field in error_fields(assert_problem(response, 422))


def test_a_calendar_connection_has_no_directory_to_plan(
    api: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    with transaction(api_factory) as session:
        connection, _ = connections.create(
            session,
            BOX,
            org.organisation.id,
            ConnectionKind.ICS,
            "Rooms",
            credentials={"url": "https://a.example/x.ics"},
        )
        ics_id = connection.id
    assert_problem(api.post(f"/v1/connections/{ics_id}/plan", headers=auth(org.admin_token)), 409, "no_directory")

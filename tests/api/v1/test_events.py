"""/v1/events: the organisation's outbox in sequence order, for admins to catch up without webhooks."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.v1.conftest import World, assert_problem, error_fields
from tests.conftest import Org, auth, make_client, make_org


def read_all(client: TestClient, token: str, limit: int) -> list[dict[str, object]]:
    after, seen = "0", []
    while True:
        page = client.get("/v1/events", params={"after": after, "limit": limit}, headers=auth(token)).json()
        seen.extend(page["data"])
        after = page["next_cursor"]
        if not page["has_more"]:
            return seen


def test_events_in_order(client: TestClient, org: Org) -> None:
    page = client.get("/v1/events", headers=auth(org.admin_token)).json()
    types = [e["type"] for e in page["data"]]
    assert types[:2] == ["organisation.created", "organisation.updated"]
    assert "membership.added" in types
    assert [e["seq"] for e in page["data"]] == list(range(1, len(types) + 1))
    first = page["data"][0]
    assert set(first) == {"id", "seq", "type", "timestamp", "data"}
    assert first["id"].startswith("evt_")
    assert first["timestamp"].endswith(("Z", "+00:00"))
    assert page["has_more"] is False
    assert page["next_cursor"] == str(len(types))


def test_catching_up_page_by_page(client: TestClient, world: World) -> None:
    everything = client.get("/v1/events", params={"limit": 200}, headers=auth(world.org.admin_token)).json()["data"]
    walked = read_all(client, world.org.admin_token, limit=3)
    assert walked == everything
    assert len({e["id"] for e in walked}) == len(walked)
    # Caught up: the cursor stays put until something happens, then the new event follows.
    last = everything[-1]["seq"]
    idle = client.get("/v1/events", params={"after": last}, headers=auth(world.org.admin_token)).json()
    assert (idle["data"], idle["next_cursor"], idle["has_more"]) == ([], str(last), False)
    client.post("/v1/teams", json={"name": "Ops"}, headers=auth(world.org.admin_token))
    new = client.get("/v1/events", params={"after": last}, headers=auth(world.org.admin_token)).json()
    assert [(e["seq"], e["type"]) for e in new["data"]] == [(last + 1, "team.created")]
    assert new["data"][0]["data"]["name"] == "Ops"


def test_events_refuse_bad_parameters(client: TestClient, org: Org) -> None:
    for params, field in [
        ({"after": -1}, "after"),
        ({"after": "x"}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 500}, "limit"),
    ]:
        response = client.get("/v1/events", params=params, headers=auth(org.admin_token))
        assert error_fields(assert_problem(response, 422)) == {field}


def test_events_are_for_admins(client: TestClient, org: Org) -> None:
    assert_problem(client.get("/v1/events", headers=auth(org.member_token)), 403, "admin_only")


def test_a_cursor_no_page_gave_is_400(client: TestClient, world: World) -> None:
    admin = auth(world.org.admin_token)
    last = int(client.get("/v1/events", params={"limit": 200}, headers=admin).json()["next_cursor"])
    assert client.get("/v1/events", params={"after": last}, headers=admin).json()["data"] == []
    body = assert_problem(client.get("/v1/events", params={"after": last + 1}, headers=admin), 400, "bad_cursor")
    assert str(last) in body["detail"]
    assert_problem(client.get("/v1/events", params={"after": 10**12}, headers=admin), 400, "bad_cursor")


def test_the_organisations_updated_at_changes_only_when_it_does(session_factory: sessionmaker[Session]) -> None:
    # Every event bumps the organisation's event counter: that is no change of the organisation.
    client, org = make_client(session_factory), make_org(session_factory)
    admin = auth(org.admin_token)

    def updated_at() -> str:
        body = client.get("/v1/organisation", headers=admin).json()
        stamp: str = body["updated_at"]
        return stamp

    before = updated_at()
    assert client.post("/v1/desks", json={"label": "D1"}, headers=admin).status_code == 201
    assert client.post("/v1/teams", json={"name": "Platform"}, headers=admin).status_code == 201
    same = client.patch("/v1/organisation", json={"timezone": "Europe/London"}, headers=admin)
    assert same.status_code == 200, same.text
    assert updated_at() == before
    assert client.patch("/v1/organisation", json={"timezone": "Europe/Paris"}, headers=admin).status_code == 200
    assert updated_at() > before

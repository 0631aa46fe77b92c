"""The event catalog (issue 14, item 3): GET /v1/event-types, one source of truth with the code that
records events, and endpoints and hooks refusing types it does not declare (naming the nearest)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store import outbox
from store.event_types import CATALOG, UnknownEventType, check_pattern, matching
from store.models import OutboxEvent
from tests.api.v1.conftest import World, assert_problem, error_fields, nothing_written
from tests.conftest import Org, auth

ROOT = Path(__file__).resolve().parents[3]
PUBLIC_URL = "https://1.1.1.1/hook"  # a public address literal: passes the SSRF check without DNS


@pytest.fixture
def api_factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Every test here on SQLite and on PostgreSQL."""
    return session_factory


def recorded_types() -> dict[str, list[str]]:
    """Every `outbox.record(session, organisation, "type", …)` of the code: the type and where."""
    found: dict[str, list[str]] = {}
    for folder in ("store", "sync", "worker", "api", "connectors", "deskbridge"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr != "record" or not isinstance(node.func.value, ast.Name):
                    continue
                if node.func.value.id != "outbox":
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                type_arg = node.args[2] if len(node.args) > 2 else None
                # A type that is not a literal could be anything: the catalog could not vouch for it.
                assert isinstance(type_arg, ast.Constant), where
                assert isinstance(type_arg.value, str), where
                found.setdefault(type_arg.value, []).append(where)
    return found


def test_every_recorded_type_is_declared_and_every_declared_type_is_recorded() -> None:
    recorded = recorded_types()
    assert len(recorded) > 30
    assert set(recorded) - set(CATALOG) == set()  # emitted but undocumented
    assert set(CATALOG) - set(recorded) == set()  # documented but never emitted


def test_the_outbox_refuses_an_undeclared_type(api_factory: sessionmaker[Session], org: Org) -> None:
    with api_factory() as session, pytest.raises(UnknownEventType, match=r"bookings\.created"):
        outbox.record(session, org.organisation.id, "bookings.created", {})


def test_every_example_fits_its_schema() -> None:
    for kind in CATALOG.values():
        jsonschema.validate(kind.example, kind.schema())
        kind.data.model_validate(kind.example)


def test_event_types_lists_the_catalog(client: TestClient, org: Org) -> None:
    response = client.get("/v1/event-types", headers=auth(org.member_token))
    assert response.status_code == 200, response.text
    listed = response.json()["data"]
    assert [item["type"] for item in listed] == list(CATALOG)
    by_type = {item["type"]: item for item in listed}
    booking = by_type["booking.created"]
    assert booking["description"]
    assert booking["example"] == CATALOG["booking.created"].example
    assert booking["data_schema"]["properties"]["start"]["format"] == "date-time"
    assert set(booking["data_schema"]["required"]) >= {"booking_id", "member_id", "start", "end", "status"}
    for item in listed:
        jsonschema.validate(item["example"], item["data_schema"])


def test_event_types_need_a_token(client: TestClient) -> None:
    assert_problem(client.get("/v1/event-types"), 401)


def test_what_the_api_records_fits_the_catalog(
    client: TestClient, api_factory: sessionmaker[Session], world: World
) -> None:
    # The shapes are declared beside the code, not derived from it: run the services and hold every
    # stored event against its declared model (extra fields are refused by the models).
    admin = auth(world.org.admin_token)
    client.post(f"/v1/bookings/{world.booking_id}/check-in", headers=admin)
    client.patch(f"/v1/webhooks/{world.webhook_id}", json={"paused": True}, headers=admin)
    client.post(f"/v1/webhooks/{world.webhook_id}/secret/rotate", headers=admin)
    client.patch("/v1/organisation", json={"timezone": "Europe/Paris"}, headers=admin)
    client.delete(f"/v1/teams/{world.team_id}", headers=admin)
    client.delete(f"/v1/members/{world.member_id}", headers=admin)
    with api_factory() as session:
        stored = list(session.execute(select(OutboxEvent.type, OutboxEvent.data)))
    assert len({type_ for type_, _ in stored}) > 10
    for type_, data in stored:
        CATALOG[type_].data.model_validate(data)
        jsonschema.validate(data, CATALOG[type_].schema())


# --- subscribing ---------------------------------------------------------------------------------


def test_the_nearest_type_is_named() -> None:
    assert check_pattern("booking.created") is None
    assert check_pattern("booking.*") is None
    assert check_pattern("*") is None
    assert "'booking.created'" in (check_pattern("bookings.created") or "")
    assert "'booking.*'" in (check_pattern("bookings.*") or "")
    assert "did you mean" not in (check_pattern("xyzzy.*") or "did you mean")
    assert "GET /v1/event-types" in (check_pattern("xyzzy.*") or "")
    assert matching("team.*") == ["team.created", "team.updated", "team.deleted"]


@pytest.mark.parametrize(
    ("types", "nearest"),
    [(["bookings.created"], "booking.created"), (["desk.*", "bookng.*"], "booking.*"), (["membership.remove"], None)],
)
def test_webhooks_refuse_unknown_types_naming_the_nearest(
    client: TestClient, api_factory: sessionmaker[Session], org: Org, types: list[str], nearest: str | None
) -> None:
    admin = auth(org.admin_token)
    with nothing_written(api_factory):
        response = client.post("/v1/webhooks", json={"url": PUBLIC_URL, "event_types": types}, headers=admin)
    body = assert_problem(response, 422)
    assert error_fields(body) == {"event_types"}
    detail = body["errors"][0]["detail"]
    assert types[-1] in detail
    assert (nearest or "membership.removed") in detail

    made = client.post("/v1/webhooks", json={"url": PUBLIC_URL, "event_types": ["desk.*"]}, headers=admin).json()
    with nothing_written(api_factory):
        response = client.patch(f"/v1/webhooks/{made['id']}", json={"event_types": types}, headers=admin)
    assert error_fields(assert_problem(response, 422)) == {"event_types"}


def test_hooks_refuse_unknown_types_naming_the_nearest(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    with nothing_written(api_factory):
        response = client.post(
            "/v1/hooks", json={"target_url": PUBLIC_URL, "event": "bookings.created"}, headers=auth(org.admin_token)
        )
    body = assert_problem(response, 422, "unknown_event")
    assert error_fields(body) == {"event"}
    assert "'booking.created'" in body["errors"][0]["detail"]


def test_hook_samples_are_the_catalogs_examples(client: TestClient, org: Org) -> None:
    for name in ("booking.created", "endpoint.disabled", "connection.failed"):
        response = client.get(f"/v1/hooks/samples/{name}", headers=auth(org.admin_token))
        [sample] = response.json()
        example: dict[str, Any] = CATALOG[name].example
        assert (sample["type"], sample["data"]) == (name, example)

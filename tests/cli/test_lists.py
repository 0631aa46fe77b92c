"""`member list`, `token list|revoke`, `connection list|show|set`, `webhook list`: tables for people,
`--json` for scripts, never a secret, and bad input refused with the reason (nothing changed)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from deskbridge.wiring import make_secret_box
from store.db import transaction
from store.models import ApiToken, Connection, OutboxEvent
from store.services import organisations, tokens, webhook_endpoints
from tests.cli.conftest import failed, ok, table_rows


@pytest.fixture
def acme(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    ok("org", "create", "Acme")
    ok("member", "add", "ada@acme.example", "--name", "Ada", "--admin", "--api")
    ok("member", "add", "bob@acme.example")
    ok("member", "add", "cy@acme.example")
    ok("member", "remove", "cy@acme.example")
    return factory


def test_member_list_shows_the_live_members_and_json_has_every_field(acme: sessionmaker[Session]) -> None:
    rows = table_rows(ok("member", "list").stdout)
    assert [(row[1], row[3], row[4], row[5]) for row in rows] == [
        ("ada@acme.example", "admin", "active", "yes"),
        ("bob@acme.example", "member", "active", "no"),
    ]
    listed = json.loads(ok("member", "list", "--json").stdout)
    assert [(member["email"], member["api_access"]) for member in listed] == [
        ("ada@acme.example", True),
        ("bob@acme.example", False),
    ]
    assert set(listed[0]) == {"id", "email", "name", "role", "status", "api_access", "joined"}
    removed = json.loads(ok("member", "list", "--status", "removed", "--json").stdout)
    assert [member["email"] for member in removed] == ["cy@acme.example"]
    failed("member", "list", "--status", "gone", code=2)


def test_token_list_shows_prefixes_never_secrets_and_revoke_stops_the_token(acme: sessionmaker[Session]) -> None:
    secret = ok("token", "create", "ada@acme.example", "--name", "zapier").stdout.strip()
    ok("token", "create", "bob@acme.example")
    listing = ok("token", "list").stdout
    assert secret not in listing
    listed = json.loads(ok("token", "list", "--json").stdout)
    assert [(token["member"], token["name"]) for token in listed] == [
        ("ada@acme.example", "zapier"),
        ("bob@acme.example", ""),
    ]
    assert secret.startswith(listed[0]["prefix"])
    assert secret not in json.dumps(listed)
    assert [
        token["member"] for token in json.loads(ok("token", "list", "--email", "bob@acme.example", "--json").stdout)
    ] == ["bob@acme.example"]

    result = ok("token", "revoke", listed[0]["prefix"])

    assert "Revoked" in result.stdout
    with acme() as session:
        assert tokens.authenticate(session, secret) is None
        assert session.scalars(select(OutboxEvent.type).where(OutboxEvent.type == "api_token.revoked")).all()
    assert [token["member"] for token in json.loads(ok("token", "list", "--json").stdout)] == ["bob@acme.example"]
    assert "already revoked" in ok("token", "revoke", str(listed[0]["id"])).stdout
    assert "no token" in failed("token", "revoke", "dsk_nosuch").stderr


def test_token_revoke_does_not_reach_into_another_organisation(acme: sessionmaker[Session]) -> None:
    ok("org", "create", "Other")
    ok("member", "add", "eve@other.example", "--org", "other")
    ok("token", "create", "eve@other.example", "--org", "other")
    with acme() as session:
        theirs = session.scalars(select(ApiToken)).one()
    failed("token", "revoke", str(theirs.id), "--org", "acme")
    failed("token", "revoke", theirs.prefix, "--org", "acme")
    with acme() as session:
        assert session.get_one(ApiToken, theirs.id).revoked_at is None


def test_connection_list_show_and_set_through_the_apis_validation(acme: sessionmaker[Session]) -> None:
    ok("connect", "csv", "--name", "HR export")
    [listed] = json.loads(ok("connection", "list", "--json").stdout)
    assert (listed["kind"], listed["name"], listed["status"], listed["last_synced"]) == (
        "csv",
        "HR export",
        "active",
        None,
    )
    assert table_rows(ok("connections").stdout)[0][4] == "never"  # the older command still lists them
    connection_id = str(listed["id"])

    changed = ok("connection", "set", connection_id, "--name", "People", "--set", 'scope={"domains": ["acme.example"]}')

    assert "acme.example" in changed.stdout
    shown = json.loads(ok("connection", "show", connection_id, "--json").stdout)
    assert shown["name"] == "People"
    assert shown["settings"]["scope"]["domains"] == ["acme.example"]
    assert "credentials" not in json.dumps(shown)
    assert "Settings:" in ok("connection", "show", connection_id).stdout
    with acme() as session:
        event = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "connection.updated")).one()
        assert event.data["changed"] == ["name", "settings"]


def test_connection_set_refuses_what_the_api_refuses_and_changes_nothing(acme: sessionmaker[Session]) -> None:
    ok("connect", "csv")
    connection_id = str(json.loads(ok("connection", "list", "--json").stdout)[0]["id"])
    before = json.loads(ok("connection", "show", connection_id, "--json").stdout)

    assert "scope" in failed("connection", "set", connection_id, "--set", "scope=7").stderr
    failed("connection", "set", connection_id, "--set", "nonsense")
    failed("connection", "set", connection_id)
    failed("connection", "set", "9999", "--name", "x")

    assert json.loads(ok("connection", "show", connection_id, "--json").stdout) == before


def test_webhook_list_hides_credentials_in_urls_and_never_shows_secrets(acme: sessionmaker[Session]) -> None:
    assert "no webhooks" in ok("webhook", "list").stdout
    box = make_secret_box(get_settings())
    with transaction(acme) as session:
        organisation = organisations.get_by_slug(session, "acme")
        _, secret = webhook_endpoints.create_endpoint(
            session, organisation.id, "https://user:pw@hooks.example/in", box=box, event_types=["booking.*"]
        )
    listing = ok("webhook", "list").stdout
    assert "hooks.example" in listing
    assert "pw" not in listing
    [endpoint] = json.loads(ok("webhook", "list", "--json").stdout)
    assert endpoint["url"] == "https://***@hooks.example/in"
    assert (endpoint["event_types"], endpoint["state"]) == (["booking.*"], "active")
    assert secret not in json.dumps(endpoint)


def test_every_list_takes_json_on_an_empty_organisation(factory: sessionmaker[Session]) -> None:
    assert json.loads(ok("org", "list", "--json").stdout) == []
    ok("org", "create", "Empty")
    lists = (["member", "list"], ["token", "list"], ["connection", "list"], ["webhook", "list"], ["desk", "list"])
    for command in lists:
        assert json.loads(ok(*command, "--json").stdout) == [], command
    [listed] = json.loads(ok("org", "list", "--json").stdout)
    assert listed == {"slug": "empty", "name": "Empty", "time_zone": "UTC", "api": False, "active_members": 0}
    ok("desk", "add", "D1", "--floor", "2")
    [desk] = json.loads(ok("desk", "list", "--json").stdout)
    assert (desk["label"], desk["floor"], desk["active"]) == ("D1", "2", True)
    with factory() as session:
        assert session.scalars(select(Connection)).all() == []

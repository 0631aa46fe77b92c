"""`deskbridge token create` and `deskbridge desk …`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.models import ApiToken, Desk
from store.services import tokens
from tests.cli.conftest import count, failed, ok, run, table_rows
from tests.conftest import auth, make_client, make_org


def test_token_create_prints_only_the_secret_on_stdout_and_it_works(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)

    result = ok("token", "create", acme.member.email, "--name", "zapier")

    secret = result.stdout.strip()
    assert secret.startswith(tokens.TOKEN_PREFIX)
    assert "shown only now" in result.stderr
    with factory() as session:
        caller = tokens.authenticate(session, secret)
        assert caller is not None
        assert caller.member.id == acme.member.id
        stored = session.scalars(select(ApiToken).where(ApiToken.name == "zapier")).one()
        assert secret not in (stored.token_hash, stored.prefix)
    response = make_client(factory).get("/api/my_upcoming_bookings/", headers=auth(secret))
    assert response.status_code == 200


def test_token_create_notes_missing_api_access(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("member", "add", "grace@example.com")

    result = ok("token", "create", "grace@example.com")

    assert "grace@example.com has no API access" in result.stderr
    assert "API of acme is off" in result.stderr
    assert result.stdout.strip().startswith(tokens.TOKEN_PREFIX)


def test_token_create_for_an_unknown_or_removed_member(factory: sessionmaker[Session]) -> None:
    acme = make_org(factory)
    tokens_before = count(factory, ApiToken)

    assert "no member" in failed("token", "create", "ghost@acme.example").stderr
    ok("member", "remove", acme.member.email)
    result = failed("token", "create", acme.member.email)

    assert "removed" in result.stderr
    assert result.stdout == ""
    assert count(factory, ApiToken) == tokens_before


def test_desk_add_with_every_detail(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")

    ok("desk", "add", "11", "--building", "HQ", "--floor", "2", "--zone", "North", "--kind", "room")

    with factory() as session:
        desk = session.scalars(select(Desk)).one()
        assert (desk.label, desk.building, desk.floor, desk.zone, desk.kind, desk.active) == (
            "11",
            "HQ",
            "2",
            "North",
            "room",
            True,
        )


def test_desk_labels_are_unique_within_a_building(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("desk", "add", "11", "--building", "HQ")

    assert "desk '11' in HQ exists" in failed("desk", "add", "11", "--building", "HQ").stderr
    ok("desk", "add", "11", "--building", "Annex")
    assert count(factory, Desk) == 2


def test_desk_add_refuses_bad_input(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")

    assert "kind must be one of" in failed("desk", "add", "12", "--kind", "sofa").stderr
    assert "needs a label" in failed("desk", "add", " ").stderr
    assert run("desk", "add").exit_code == 2
    assert count(factory, Desk) == 0


def test_desk_add_and_list_need_org_when_there_are_several(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("org", "create", "Globex")

    assert "--org" in failed("desk", "add", "1").stderr
    assert "--org" in failed("desk", "list").stderr
    assert count(factory, Desk) == 0


def test_desk_list(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("org", "create", "Globex")
    assert "no desks yet" in ok("desk", "list", "--org", "acme").stdout
    ok("desk", "add", "2", "--org", "acme", "--building", "HQ", "--floor", "1")
    ok("desk", "add", "[P1]", "--org", "acme", "--kind", "parking")
    ok("desk", "add", "99", "--org", "globex")

    rows = table_rows(ok("desk", "list", "--org", "acme").stdout)

    assert [row[1:] for row in rows] == [
        ["[P1]", "", "", "", "parking", "yes"],
        ["2", "HQ", "1", "", "desk", "yes"],
    ]


def test_desk_list_in_an_unknown_organisation(factory: sessionmaker[Session]) -> None:
    assert "no organisation yet" in failed("desk", "list").stderr
    ok("org", "create", "Acme")
    assert "no organisation with slug 'globex'" in failed("desk", "list", "--org", "globex").stderr

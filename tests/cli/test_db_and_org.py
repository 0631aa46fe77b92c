"""`deskbridge db upgrade` and `deskbridge org …`."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import get_settings
from store.db import make_engine
from store.models import Organisation, OutboxEvent
from store.services import organisations
from tests.cli.conftest import count, failed, ok, run, table_rows
from tests.conftest import make_org


def org(factory: sessionmaker[Session], slug: str) -> Organisation:
    with factory() as session:
        return organisations.get_by_slug(session, slug)


def test_db_upgrade_creates_the_schema_and_can_run_again(database_url: str) -> None:
    assert "up to date" in ok("db", "upgrade").stdout
    ok("db", "upgrade")
    engine = make_engine(database_url)
    assert {"organisations", "members", "desks", "api_tokens"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_commands_on_an_unmigrated_database_say_what_to_do(database_url: str) -> None:
    result = failed("org", "list")
    assert "deskbridge db upgrade" in result.stderr
    assert "Traceback" not in result.output


def test_org_create_uses_the_default_time_zone_and_leaves_the_api_off(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKBRIDGE_DEFAULT_TIMEZONE", "Europe/Paris")
    get_settings.cache_clear()

    result = ok("org", "create", "Acme Ltd")

    assert "acme-ltd" in result.stdout
    created = org(factory, "acme-ltd")
    assert (created.name, created.timezone, created.api_enabled) == ("Acme Ltd", "Europe/Paris", False)


def test_org_create_with_slug_and_time_zone(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Globex Corporation", "--slug", "globex", "--timezone", "America/New_York")
    assert org(factory, "globex").timezone == "America/New_York"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   "], "needs a name"),
        (["Acme", "--timezone", "Mars/Olympus_Mons"], "unknown time zone"),
    ],
)
def test_org_create_refuses_bad_input_and_writes_nothing(
    factory: sessionmaker[Session], args: list[str], message: str
) -> None:
    assert message in failed("org", "create", *args).stderr
    assert count(factory, Organisation) == 0
    assert count(factory, OutboxEvent) == 0


def test_org_create_refuses_a_taken_slug(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    assert "slug 'acme' exists" in failed("org", "create", "ACME!").stderr
    assert count(factory, Organisation) == 1


def test_org_create_without_a_name_is_a_usage_error(factory: sessionmaker[Session]) -> None:
    result = run("org", "create")
    assert result.exit_code == 2
    assert count(factory, Organisation) == 0


def test_org_list_when_empty_says_how_to_start(factory: sessionmaker[Session]) -> None:
    assert "deskbridge org create" in ok("org", "list").stdout


def test_org_list_shows_each_organisation_its_api_switch_and_active_members(factory: sessionmaker[Session]) -> None:
    make_org(factory, "Acme")  # API on, two active members
    ok("org", "create", "Globex", "--timezone", "Asia/Tokyo")

    rows = table_rows(ok("org", "list").stdout)

    assert rows == [
        ["acme", "Acme", "Europe/London", "on", "2"],
        ["globex", "Globex", "Asia/Tokyo", "off", "0"],
    ]


def test_org_api_enable_and_disable_the_only_organisation(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")

    assert "is on" in ok("org", "api", "enable").stdout
    assert org(factory, "acme").api_enabled
    assert "already" in ok("org", "api", "enable").stdout
    ok("org", "api", "disable", "--org", "acme")
    assert not org(factory, "acme").api_enabled


def test_org_api_needs_org_when_there_are_several(factory: sessionmaker[Session]) -> None:
    ok("org", "create", "Acme")
    ok("org", "create", "Globex")

    result = failed("org", "api", "enable")

    assert "--org" in result.stderr
    assert "acme, globex" in result.stderr
    assert not org(factory, "acme").api_enabled
    ok("org", "api", "enable", "--org", "globex")
    assert org(factory, "globex").api_enabled
    assert not org(factory, "acme").api_enabled


def test_org_api_with_an_unknown_or_no_organisation(factory: sessionmaker[Session]) -> None:
    assert "no organisation yet" in failed("org", "api", "enable").stderr
    ok("org", "create", "Acme")
    assert "no organisation with slug 'nope'" in failed("org", "api", "enable", "--org", "nope").stderr


def test_org_api_without_a_verb_is_a_usage_error(factory: sessionmaker[Session]) -> None:
    assert run("org", "api", "toggle").exit_code == 2

"""Migrating an empty database gives exactly the schema the models describe, on both backends.

Alembic's compare_metadata compares tables, columns and their types, indexes, unique and foreign
keys, but neither check constraints, exclusion constraints nor triggers: it reports "no
differences" whether the booking guards exist or not. So those are checked on their own: by name
in the catalog on both backends, and on PostgreSQL by comparing the migration's raw-SQL exclusion
constraints with what the models' ExcludeConstraint creates.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.models import Base
from store.models.booking import DESK_OVERLAP, MEMBER_OVERLAP
from tests.conftest import postgres_database

CHECK = "ck_bookings_end_after_start"
PG_GUARDS = "FROM pg_constraint WHERE conrelid = 'bookings'::regclass AND contype IN ('c', 'x')"
GUARDS = {
    "postgresql": {CHECK, DESK_OVERLAP, MEMBER_OVERLAP},
    "sqlite": {CHECK, "bookings_no_overlap_insert", "bookings_no_overlap_update"},
}


@pytest.fixture(params=["sqlite", "postgres"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    with postgres_database(f"deskbridge_migrations_{os.getpid()}") as engine:
        yield engine


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, Base.metadata))


def guards(engine: Engine) -> set[str]:
    """Names of the bookings table's check constraint and overlap guards, as the database has them."""
    if "bookings" not in inspect(engine).get_table_names():
        return set()
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return set(connection.scalars(text(f"SELECT conname {PG_GUARDS}")))
        names = set(
            connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'bookings'"))
        )
        table_sql = connection.scalar(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bookings'"))
        if f"CONSTRAINT {CHECK} CHECK" in str(table_sql):
            names.add(CHECK)
        return names


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def downgrade(engine: Engine, target: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, target)


def test_upgrade_from_empty_matches_the_models(empty: Engine) -> None:
    upgrade(empty)
    assert differences(empty) == []
    assert guards(empty) == GUARDS[empty.dialect.name]
    assert revision(empty) == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_comparison_notices_drift(empty: Engine) -> None:
    upgrade(empty)
    with empty.begin() as connection:
        connection.execute(text("DROP INDEX ix_bookings_org_start_id"))
    assert [(kind, index.name) for kind, index in differences(empty)] == [("add_index", "ix_bookings_org_start_id")]


def test_upgrade_twice_changes_nothing(empty: Engine) -> None:
    upgrade(empty)
    upgrade(empty)
    assert differences(empty) == []


def test_downgrade_to_base_and_back(empty: Engine) -> None:
    upgrade(empty)
    downgrade(empty, "base")
    assert set(inspect(empty).get_table_names()) == {"alembic_version"}
    assert guards(empty) == set()
    upgrade(empty)
    assert differences(empty) == []
    assert guards(empty) == GUARDS[empty.dialect.name]


def test_postgres_guards_match_the_models() -> None:
    def definitions(engine: Engine) -> dict[str, str]:
        with engine.connect() as connection:
            rows = connection.execute(text(f"SELECT conname, pg_get_constraintdef(oid) {PG_GUARDS}"))
            return {name: definition for name, definition in rows}

    with postgres_database(f"deskbridge_models_{os.getpid()}") as from_models:
        with from_models.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            Base.metadata.create_all(connection)
        with postgres_database(f"deskbridge_migrated_{os.getpid()}") as migrated:
            upgrade(migrated)
            expected = definitions(from_models)
            assert set(expected) == GUARDS["postgresql"]
            assert definitions(migrated) == expected

"""The CLI against a SQLite file of its own, named by DESKBRIDGE_DATABASE_URL as a user would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from deskbridge.cli import app
from deskbridge.settings import get_settings
from store.db import make_engine, make_session_factory


def run(*args: str) -> Result:
    """Invoke `deskbridge ARGS…` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> Result:
    """Invoke a command that must succeed."""
    result = run(*args)
    assert result.exit_code == 0, f"deskbridge {' '.join(args)}: {result.output}"
    return result


def failed(*args: str, code: int = 1) -> Result:
    """Invoke a command that must fail with `code`, saying why on stderr."""
    result = run(*args)
    assert result.exit_code == code, f"deskbridge {' '.join(args)} exited {result.exit_code}: {result.output}"
    assert result.stderr.strip(), "a failure must explain itself on stderr"
    return result


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table, as lists of stripped cells."""
    body = output.split("┡", 1)[1].splitlines()[1:]
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in body if line.startswith("│")]


def count(factory: sessionmaker[Session], model: type[object]) -> int:
    """How many rows of `model` the store holds."""
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings pointing at an empty SQLite file; no .env, colours or narrow terminal to blur the output."""
    url = f"sqlite:///{tmp_path / 'var' / 'cli.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DESKBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("DESKBRIDGE_DEFAULT_TIMEZONE", "DESKBRIDGE_REDIS_URL", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def cli_engine(database_url: str) -> Iterator[Engine]:
    """The CLI's store, migrated by `deskbridge db upgrade` itself."""
    ok("db", "upgrade")
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(cli_engine: Engine) -> sessionmaker[Session]:
    """Sessions on the CLI's store, to check what the commands really changed."""
    return make_session_factory(cli_engine)

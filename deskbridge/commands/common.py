"""What every store command shares: output, failing cleanly, a transaction, and the --org choice."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from deskbridge.settings import get_settings
from store.db import make_engine, make_session_factory, transaction
from store.errors import StoreError
from store.models import Organisation
from store.services import organisations

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (a list of objects) instead of a table.")]

OrgOption = Annotated[
    str | None,
    typer.Option("--org", help="Slug of the organisation; may be left out while there is only one."),
]


def out() -> Console:
    """Standard output (made per call, so it follows the current stream and terminal)."""
    return Console(highlight=False)


def err() -> Console:
    """Standard error, for failures and notes around machine-readable output."""
    return Console(stderr=True, highlight=False)


def fail(message: str) -> NoReturn:
    """Print `message` on stderr and end the command with exit status 1."""
    err().print(f"Error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def store() -> Iterator[Session]:
    """A transaction on the configured store; a store or database error ends the command with status 1.

    Print results after the block: only then is the change committed.
    """
    url = get_settings().database_url
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            yield session
    except StoreError as error:
        fail(error.message)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        where = make_url(url).render_as_string(hide_password=True)
        fail(f"the database at {where} cannot be used ({reason}). Is it running, and was `deskbridge db upgrade` run?")
    finally:
        engine.dispose()


def organisation(session: Session, slug: str | None) -> Organisation:
    """The organisation named by --org, or the only one there is."""
    if slug is not None:
        return organisations.get_by_slug(session, slug.strip().lower())
    found = organisations.list_all(session)
    if len(found) == 1:
        return found[0]
    if not found:
        fail("there is no organisation yet: create one with `deskbridge org create NAME`.")
    fail(f"there are {len(found)} organisations; choose one with --org ({', '.join(o.slug for o in found)}).")


def print_rows(
    rows: Sequence[dict[str, Any]], *, as_json: bool, empty: str, missing: dict[str, str] | None = None
) -> None:
    """A listing: JSON on stdout (`--json`: every field, typed), else a table of the same rows
    (`empty` when there is none; `missing`: what a column shows for None, blank otherwise)."""
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=_json_value))
        return
    if not rows:
        out().print(empty, markup=False, soft_wrap=True)
        return
    table = Table(*(name.replace("_", " ").capitalize() for name in rows[0]))
    for row in rows:
        table.add_row(
            *(Text((missing or {}).get(key, "") if value is None else _cell(value)) for key, value in row.items())
        )
    out().print(table)


def _json_value(value: Any) -> str:
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M UTC"))
    return str(value)

"""What every store command shares: output, failing cleanly, a transaction, and the --org choice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from deskbridge.settings import get_settings
from store.db import make_engine, make_session_factory, transaction
from store.errors import StoreError
from store.models import Organisation
from store.services import organisations

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

"""The `deskbridge` command: serve, migrate, and administer organisations, members, tokens and desks."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.bootstrap import ensure_first_organisation, welcome
from deskbridge.commands import connect, desk, member, org, sync, token
from deskbridge.commands.common import err, fail, out
from deskbridge.settings import Settings, get_settings
from store.errors import StoreError

app = typer.Typer(help="deskbridge: desk booking in step with your directories and calendars.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(org.app, name="org")
app.add_typer(member.app, name="member")
app.add_typer(token.app, name="token")
app.add_typer(desk.app, name="desk")
app.add_typer(connect.app, name="connect")
app.command("connections")(connect.list_connections)
app.command("sync")(sync.sync)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to the configured database."""
    from store.db import make_engine
    from store.migrate import upgrade

    settings = get_settings()
    _ensure_sqlite_folder(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except SQLAlchemyError as error:
        fail(f"could not migrate the database: {str(getattr(error, 'orig', None) or error).splitlines()[0]}")
    finally:
        engine.dispose()
    out().print("Database is up to date.")


def _ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@app.command()
def serve() -> None:
    """Run the API; without a Redis URL, the broker, worker threads and scheduler run in this process too.

    The first start creates an organisation, an admin and an API token, and prints the token once.
    """
    import uvicorn

    from deskbridge.wiring import build, make_app
    from worker import runtime
    from worker.broker import start_in_process_workers
    from worker.scheduler import default_jobs, start_in_process

    settings = get_settings()
    _ensure_sqlite_folder(settings.database_url)
    components = build(settings)
    greet(components.session_factory, settings)
    embedded = not settings.redis_url
    workers = start_in_process_workers(components.broker, settings.worker_threads) if embedded else None
    scheduler = start_in_process(default_jobs(runtime.current())) if embedded else None
    try:
        uvicorn.run(make_app(components), host=settings.host, port=settings.port, log_level="info")
    finally:
        if scheduler is not None:
            scheduler.stop()
        if workers is not None:
            workers.stop()


def greet(factory: sessionmaker[Session], settings: Settings) -> None:
    """Make sure the first organisation exists and print the welcome (the token on the first start only)."""
    try:
        first = ensure_first_organisation(factory, settings.default_timezone)
    except StoreError as error:
        fail(f"could not create the first organisation: {error.message}")
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        fail(f"the database is not ready ({reason}); run `deskbridge db upgrade` first.")
    for line in welcome(first, settings.public_base_url):
        out().print(line, markup=False, soft_wrap=True)
    if not settings.smtp_host:
        out().print(f"No SMTP server set: emails are written to {settings.mail_dir}/ and the log.", markup=False)
    sys.stdout.flush()  # before uvicorn's logs, even when the output is a pipe or a file


@app.command()
def worker(processes: int = 1, threads: int = 4) -> None:
    """Run Dramatiq workers on the Redis broker (needs DESKBRIDGE_REDIS_URL)."""
    import subprocess

    if not get_settings().redis_url:
        err().print("DESKBRIDGE_REDIS_URL is not set: `deskbridge serve` runs the workers in-process.")
        raise typer.Exit(2)
    command = [sys.executable, "-m", "dramatiq", "deskbridge.worker_main", "-p", str(processes), "-t", str(threads)]
    raise typer.Exit(subprocess.call(command))  # noqa: S603 - our own interpreter and module


if __name__ == "__main__":
    app()

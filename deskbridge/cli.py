"""The `deskbridge` command: serve, migrate, and administer organisations, members, tokens and desks."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.bootstrap import ensure_first_organisation, welcome
from deskbridge.commands import connect, connection, desk, key, member, org, plan, sync, token, webhook
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
app.add_typer(connection.app, name="connection")
app.add_typer(plan.app, name="plan")
app.add_typer(webhook.app, name="webhook")
app.add_typer(key.app, name="key")
app.command("connections", help="The same as `deskbridge connection list`.")(connection.list_connections)
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
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: DESKBRIDGE_HOST or 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: DESKBRIDGE_PORT, 8000].")] = None,
) -> None:
    """Run the API; without a Redis URL, the broker, worker threads and scheduler run in this process too.

    The first start creates an organisation, an admin and an API token, and prints the token once.
    Links (invitations, Location headers, the commands printed) use DESKBRIDGE_PUBLIC_BASE_URL, or
    http://HOST:PORT when it is unset.
    """
    import uvicorn

    from deskbridge.wiring import build, make_app
    from worker import runtime
    from worker.broker import start_in_process_workers
    from worker.scheduler import default_jobs, start_in_process

    chosen = {name: value for name, value in (("host", host), ("port", port)) if value is not None}
    settings = get_settings().model_copy(update=chosen)
    _ensure_sqlite_folder(settings.database_url)
    components = build(settings)
    greet(components.session_factory, settings)
    embedded = not settings.redis_url
    workers = start_in_process_workers(components.broker, settings.worker_threads) if embedded else None
    scheduler = start_in_process(default_jobs(runtime.current())) if embedded else None
    try:
        uvicorn.run(make_app(components), host=settings.host, port=settings.port, log_level=settings.log_level.lower())
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
    for line in welcome(first, settings.base_url):
        out().print(line, markup=False, soft_wrap=True)
    if not settings.smtp_host:
        out().print(f"No SMTP server set: emails are written to {settings.mail_dir}/ and the log.", markup=False)
    sys.stdout.flush()  # before uvicorn's logs, even when the output is a pipe or a file


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default DESKBRIDGE_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default DESKBRIDGE_PORT, 8000).")] = None,
) -> None:
    """Run the API alone, as production does: uvicorn with WEB_CONCURRENCY processes (default 1).

    The settings are checked here, before uvicorn starts its processes: outside the embedded mode a
    missing DESKBRIDGE_SECRET_KEY stops it at once (uvicorn would start each process again and again).
    This process becomes uvicorn's (exec), so SIGTERM reaches it for a graceful stop.
    """
    settings = get_settings()
    settings.require_secret_key()
    command = [sys.executable, "-m", "uvicorn", "deskbridge.asgi:app"]
    command += ["--host", host or settings.host, "--port", str(port or settings.port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter and module


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes (one a container is best: see the README).")] = 1,
    threads: Annotated[int, typer.Option(help="Worker threads per process.")] = 8,
) -> None:
    """Run Dramatiq workers on the Redis broker (needs DESKBRIDGE_REDIS_URL and DESKBRIDGE_SECRET_KEY).

    This process becomes Dramatiq's (exec): SIGTERM or SIGINT stops it and its worker processes,
    each finishing the messages in hand first.
    """
    settings = get_settings()
    if not settings.redis_url:
        err().print("DESKBRIDGE_REDIS_URL is not set: `deskbridge serve` runs the workers in-process.")
        raise typer.Exit(2)
    settings.require_secret_key()  # refuse here, before Dramatiq starts its processes
    command = [sys.executable, "-m", "dramatiq", "deskbridge.worker_main", "-p", str(processes), "-t", str(threads)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter and module


if __name__ == "__main__":
    app()

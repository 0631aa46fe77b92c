"""The `deskbridge` command: serve, migrate, and administer organisations, members, tokens and desks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from deskbridge.settings import get_settings

app = typer.Typer(help="deskbridge: desk booking in step with your directories and calendars.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to the configured database."""
    from store.db import make_engine
    from store.migrate import upgrade

    settings = get_settings()
    _ensure_sqlite_folder(settings.database_url)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    console.print("Database is up to date.")


def _ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@app.command()
def serve() -> None:
    """Run the API; without a Redis URL, the broker and worker threads run in this process too."""
    import uvicorn

    from deskbridge.bootstrap import ensure_first_organisation
    from deskbridge.wiring import build, make_app
    from worker.broker import start_in_process_workers

    settings = get_settings()
    _ensure_sqlite_folder(settings.database_url)
    components = build(settings)
    first = ensure_first_organisation(components.session_factory, settings.default_timezone)
    _print_welcome(first.organisation, first.admin_email, first.token, settings.public_base_url)
    workers = None if settings.redis_url else start_in_process_workers(components.broker, settings.worker_threads)
    try:
        uvicorn.run(make_app(components), host=settings.host, port=settings.port, log_level="info")
    finally:
        if workers is not None:
            workers.stop()


def _print_welcome(organisation: str, admin_email: str, token: str | None, base_url: str) -> None:
    base = base_url.rstrip("/")
    console.print(f"[bold]deskbridge[/bold] serving {organisation!r} on {base} (API docs: {base}/docs)")
    if token is None:
        console.print(
            f"Admin: {admin_email}. Its token was printed on the first start; make another with "
            f"`deskbridge token create {admin_email}`."
        )
        return
    console.print(
        f"First start: created the organisation, the admin {admin_email} and this API token (shown once, keep it safe):"
    )
    console.print(f"\n    [bold green]{token}[/bold green]\n", soft_wrap=True)
    console.print("Try it:")
    console.print(f'    http {base}/api/my_upcoming_bookings/ "Authorization: token {token}"', soft_wrap=True)
    console.print(
        f'    http POST {base}/api/create_membership_invitation/ "Authorization: token {token}" '
        "email_invited=someone@example.com\n",
        soft_wrap=True,
    )


@app.command()
def worker(processes: int = 1, threads: int = 4) -> None:
    """Run Dramatiq workers on the Redis broker (needs DESKBRIDGE_REDIS_URL)."""
    import subprocess
    import sys

    if not get_settings().redis_url:
        errors.print("DESKBRIDGE_REDIS_URL is not set: `deskbridge serve` runs the workers in-process.")
        raise typer.Exit(2)
    command = [sys.executable, "-m", "dramatiq", "deskbridge.worker_main", "-p", str(processes), "-t", str(threads)]
    raise typer.Exit(subprocess.call(command))  # noqa: S603 - our own interpreter and module


if __name__ == "__main__":
    app()

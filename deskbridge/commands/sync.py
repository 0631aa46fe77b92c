"""`deskbridge sync`: sync a connection now, in this process, or import a CSV file into one.

A CSV file can be previewed with `--dry-run`: the import runs and is rolled back, so the plan
printed is exactly what the import would do. A long import shows its progress (on stderr) and ends
with a summary; the table of everyone it touched is printed when short, with `--details`, or written
to a file with `--output`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from connectors.csv import parse_bytes
from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.records import ConnectorError
from deskbridge.commands import plan as plan_command
from deskbridge.commands.common import OrgOption, err, fail, organisation, out, store
from deskbridge.settings import get_settings
from store.models import ConnectionStatus
from store.secret_box import UndecryptableSecret
from store.services import connections
from sync.directory import person
from sync.directory.imports import import_page, plan_file

# The order a plan is shown in: arrivals, changes, departures, then who was left alone.
ACTIONS = ("invited", "added", "restored", "linked", "updated", "removed", "skipped")
TABLE_ROWS = 25  # a longer list is summed up unless --details asks for it


def sync(
    connection_id: Annotated[int, typer.Argument(help="The connection's id (see `deskbridge connections`).")],
    org: OrgOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A CSV export (email,name,teams,active) for a csv connection.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --file: print the plan and change nothing.")] = False,
    details: Annotated[
        bool, typer.Option("--details", help="With --file: print everyone the import touched, however many.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="With --file: write everyone it touched to this CSV file.")
    ] = None,
    plan: Annotated[
        bool,
        typer.Option("--plan", help="Read the directory and print what a sync would do, changing nothing (kept 1 h)."),
    ] = False,
    email: Annotated[
        str | None,
        typer.Option("--email", help="Read just this person (Microsoft, Google) from the directory and apply it now."),
    ] = None,
) -> None:
    """Sync a connection now and show what changed; with --file, import a CSV file into a csv connection;
    with --plan, only show what a sync would do (apply it with `deskbridge plan apply`); with --email, read
    one person now."""
    if plan:
        if file is not None or dry_run or details or output is not None or email is not None:
            fail("--plan reads the directory; for a CSV file's plan use --file with --dry-run.")
        plan_command.make(connection_id, org)
    elif email is not None:
        if file is not None or dry_run or details or output is not None:
            fail("--email reads one person: it goes with none of --file, --dry-run, --details and --output.")
        _sync_person(connection_id, org, email)
    elif file is not None:
        _import(connection_id, org, file, dry_run=dry_run, details=details, output=output)
    elif dry_run or details or output is not None:
        fail("--dry-run, --details and --output need --file: they are about a CSV import.")
    else:
        _sync_now(connection_id, org)


def _import(
    connection_id: int, org: str | None, file: Path, *, dry_run: bool, details: bool, output: Path | None
) -> None:
    try:
        parsed = parse_bytes(file.read_bytes())
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}.")
    if parsed.page is None:
        for problem in parsed.errors:
            err().print(f"{file}: {problem}", markup=False, soft_wrap=True)
        fail(f"{len(parsed.errors)} bad row(s) in {file}; nothing was imported.")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    # On stderr, and gone when done: stdout keeps only the result.
    with Progress(*columns, TimeElapsedColumn(), console=err(), transient=True) as bar:
        task = bar.add_task(f"Staging {parsed.rows} rows…", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, description="Deciding who joins, changes and leaves", completed=done, total=total)

        with store() as session:
            connection = connections.get(session, organisation(session, org).id, connection_id)
            plan_id = None
            if dry_run:
                tally, plan = plan_file(session, connection, parsed.page, progress)
                plan_id = plan.public_id
            else:
                tally = import_page(session, connection, parsed.page, dry_run=False, progress=progress)
            name = connection.name
            bar.update(task, description="Committing…")
    heading = (
        f"Dry run of {file} into {name!r}: nothing was changed. The import would do this:"
        if dry_run
        else f"Imported {file} into {name!r} ({parsed.rows} rows):"
    )
    out().print(heading, markup=False, soft_wrap=True)
    rows = [(action, address) for action in ACTIONS for address in tally.people.get(action, [])]
    if output is not None:
        _write_people(output, rows)
    if details or len(rows) <= TABLE_ROWS:
        _print_people(tally.people, dry_run=dry_run)
    else:
        _print_summary(tally.people, output)
    _print_counts(tally.counts, tally.notes)
    if plan_id is not None:
        out().print(
            f"Plan {plan_id}: import the file as planned within the hour with "
            f"`deskbridge plan apply {connection_id} {plan_id}`.",
            markup=False,
            soft_wrap=True,
        )


def _write_people(path: Path, rows: list[tuple[str, str]]) -> None:
    """Everyone the import touched, as a CSV file of `action,person` rows."""
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("action", "person"))
            writer.writerows(rows)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror}.")
    out().print(f"Wrote {len(rows)} row(s) to {path}.", markup=False, soft_wrap=True)


def _print_summary(people: dict[str, list[str]], output: Path | None) -> None:
    """How many people each action touched, with the first few of each (the full list is long)."""
    table = Table("Action", "People", "First of them")
    for action in ACTIONS:
        names = people.get(action, [])
        if names:
            more = f", … ({len(names) - 3} more)" if len(names) > 3 else ""
            table.add_row(Text(action), Text(str(len(names))), Text(", ".join(names[:3]) + more))
    out().print(table)
    if output is None:
        out().print("For everyone: --details prints the full table, --output FILE writes it.", markup=False)


def _print_people(people: dict[str, list[str]], *, dry_run: bool) -> None:
    rows = [(action, address) for action in ACTIONS for address in people.get(action, [])]
    if not rows:
        out().print("Nobody would change." if dry_run else "Nobody changed.", markup=False)
        return
    table = Table("Action", "Person")
    for action, address in rows:
        table.add_row(Text(action), Text(address))
    out().print(table)


def _print_counts(counts: dict[str, int], notes: list[str]) -> None:
    done = ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in counts.items() if count)
    out().print(f"Counts: {done or 'nothing to do'}.", markup=False, soft_wrap=True)
    for note in notes:
        out().print(f"Note: {note}", markup=False, soft_wrap=True)


def _sync_now(connection_id: int, org: str | None) -> None:
    from deskbridge.wiring import build
    from worker import runtime
    from worker.directory.sync import run

    with store() as session:
        kind = connections.get(session, organisation(session, org).id, connection_id).kind
    components = build(get_settings())
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
            reading = "Deciding everyone again" if REGISTRY.can(kind, Capability.DIRECTORY_PUSHED) else "Reading"
            task = bar.add_task(f"{reading}…", total=None)

            def progress(users: int) -> None:
                bar.update(task, description=f"Read {users} users…")

            if REGISTRY.can(kind, Capability.ONE_CALENDAR):  # an ICS feed, a CalDAV account
                tally = None
                _read_feed(connection_id)
            else:
                tally = run(runtime.current(), connection_id, progress=progress)
    except Exception as error:
        # The sync recorded what it could on the connection; the report below shows it.
        err().print(f"The sync stopped: {type(error).__name__}.", markup=False)
        tally = None
    finally:
        components.engine.dispose()
    with store() as session:
        connection = connections.get(session, organisation(session, org).id, connection_id)
        status, error_text, name = connection.status, connection.last_error, connection.name
        counts, notes = dict(connection.last_counts), list(connection.last_notes)
    if REGISTRY.can(kind, Capability.ONE_CALENDAR) and status is ConnectionStatus.ACTIVE:
        out().print(f"Read the feed {name!r}; status {status.value}.", markup=False, soft_wrap=True)
        _print_counts(counts, notes)
        return
    if tally is None:
        if status in (ConnectionStatus.ERROR, ConnectionStatus.ACTION_REQUIRED):
            fail(f"the sync of {name!r} failed (status {status.value}): {error_text}")
        fail(f"another sync of {name!r} is running; try again when it is done.")
    out().print(f"Synced {name!r} ({kind.value}); status {status.value}.", markup=False, soft_wrap=True)
    _print_people(tally.people, dry_run=False)
    _print_counts(counts, notes)


def _sync_person(connection_id: int, org: str | None, email: str) -> None:
    """One person read from the directory and applied at once, as `POST /v1/connections/{id}/sync` does."""
    from deskbridge.wiring import build
    from worker import runtime

    components = build(get_settings())
    try:
        worker_runtime = runtime.current()
        with store() as session:
            connection = connections.get(session, organisation(session, org).id, connection_id)
            name = connection.name
            try:
                done = person.sync_person(
                    session, worker_runtime.secret_box, worker_runtime.directory, connection, email
                )
            except ConnectorError as error:
                fail(f"{name}: {error.message}; nothing was changed.")
            except UndecryptableSecret:
                fail(UndecryptableSecret.reason("the connection's credentials"))
            status = done.member.status.value if done.member is not None else None
    finally:
        components.engine.dispose()
    where = "in" if done.found else "no longer in"
    scope = "in scope" if done.in_scope else "out of scope"
    line = f"{done.address} is {where} the directory of {name!r}, {scope}"
    out().print(f"{line}; member: {status or 'none'}.", markup=False, soft_wrap=True)
    _print_counts(done.tally.counts, done.tally.notes)


def _read_feed(connection_id: int) -> None:
    """An ICS connection is a calendar, not a directory: read its feed now (its connection shows how it went)."""
    from worker import runtime
    from worker.calendar import sync as calendar_sync
    from worker.calendar.jobs import follow

    worker_runtime = runtime.current()
    for calendar_id in follow(worker_runtime, connection_id):
        calendar_sync.run(worker_runtime, calendar_id)

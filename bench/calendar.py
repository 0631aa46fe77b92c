"""Calendar sync benchmark: `make bench-calendar` (`python -m bench.calendar --help` for the knobs).

1,000 people with 200 events each: by default 500 on the fake Google and 500 on the fake Graph,
each fake in a process of its own (`bench.calendar_fakes`, so its CPU is not ours and it does not
share our GIL), read over loopback HTTP (Graph over TLS) by the real connectors — google-api-python-
client acting as each person through the service account, msal + httpx for Graph's calendarView
delta — into PostgreSQL (a database of the bench's own, dropped and migrated), with the production
wiring in each worker process (sessions whose commits feed the relay and the outbound calendar
writer; the in-process stub broker, no workers, so what is queued stays queued). The people come in
through each connection's directory sync (setup, not measured), which makes their calendars. Then,
in one run:

1. initial sync, per provider: every calendar synced as the poll queues them, jobs of up to
   `--batch` calendars of one connection (`jobs.BATCH`, 50), run by `--processes` worker processes
   of `--threads` threads each (2 x 4, as `dramatiq -p 2 -t 4` would) taking jobs from one queue:
   each job is `jobs.sync_calendars`'s body, `worker.calendar.batch.run` (one sign-in and
   connection pool per job, its calendars read on a few threads and stored several to a
   transaction);
2. incremental round: 1% of every calendar's events changed in the fakes (a third each moved,
   renamed, deleted), then every calendar synced again the same way, each getting only its changes
   back;
3. the ceiling: the full listings' response bodies of `--ceiling-calendars` calendars per provider,
   recorded by the fakes as they send them, decoded (`json.loads`) and mapped with the connectors'
   own translation functions, one thread, no HTTP and no database.

Then, unless `--no-hooks`:

4. the Resource Guru webhook burst (`bench.resourceguru_hooks`, in a process of its own: the real API
   under uvicorn and busy dramatiq workers on Redis): `--hooks-deliveries` signed deliveries to
   `POST /hooks/resourceguru/{id}` over 32 connections; acknowledgements/s and the acknowledgement
   time (target p99 <= 50 ms), every delivery stored once. `--hooks-only` runs this phase alone.

Checks: every event stored exactly once with one `external_event.upserted` each; the incremental round
changed exactly the events changed in the fakes (and emitted for the moved ones only: a title is not in
the payload) and removed exactly the deleted ones. Targets: initial >= 5,000 events/s, incremental round
(all calendars) <= 2 s. Beside the figures, the CPU seconds each side used (the worker processes with
this one, PostgreSQL, each fake, and everything else on the machine: the machine's load). `--profile`
records each worker process with py-spy during the syncs
(bench/results/calendar-profile-<provider>[-incremental]-<n>.txt, raw stacks).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from pydantic import SecretStr
from sqlalchemy import func, select

from bench import cpu
from bench.api import database_pids
from bench.calendar_fakes import window
from bench.directory import stop_profiler
from bench.fake_process import FakeProcess
from bench.webhooks import prepare_database
from connectors.google.calendar_events import overlaps, to_record
from connectors.microsoft.calendar import OutlookCalendar
from connectors.records import CalendarEvent, RemovedEvent, Window
from deskbridge.settings import Settings
from deskbridge.wiring import build
from store.db import transaction
from store.models import Calendar, ConnectionKind, DirectoryPolicy, ExternalEvent, OutboxEvent
from store.secret_box import SecretBox
from store.services import connections, organisations
from sync.calendar import readers
from worker import runtime
from worker.calendar import batch, jobs
from worker.directory import sync as directory_sync

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
INITIAL_TARGET = 5_000.0  # events per second
INCREMENTAL_TARGET = 2.0  # seconds for the round over every calendar
PROVIDERS = {"google": ConnectionKind.GOOGLE, "microsoft": ConnectionKind.MICROSOFT}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calendar", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL URL")
    parser.add_argument("--database", default="deskbridge_bench_calendar", help="the database to (re)create there")
    parser.add_argument("--members", type=int, default=1_000, help="people in all (split evenly between providers)")
    parser.add_argument("--events", type=int, default=200, help="events per person (at least 30)")
    parser.add_argument("--providers", default="google,microsoft", help="which fakes: google, microsoft or both")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (dramatiq -p)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads per process (dramatiq -t)")
    parser.add_argument("--batch", type=int, default=0, help="calendars per job (default: the poll's, jobs.BATCH)")
    parser.add_argument("--change", type=float, default=0.01, help="share of each calendar's events changed")
    parser.add_argument(
        "--ceiling-calendars", type=int, default=50, help="calendars per provider decoded for the ceiling"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the worker processes during the syncs")
    parser.add_argument("--hooks-deliveries", type=int, default=10_000, help="the Resource Guru webhook burst's size")
    hooks = parser.add_mutually_exclusive_group()
    hooks.add_argument("--hooks-only", action="store_true", help="only the Resource Guru webhook burst (phase 4)")
    hooks.add_argument("--no-hooks", action="store_true", help="leave the Resource Guru webhook burst out")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed or a check fails")
    args = parser.parse_args(argv)
    args.providers = [name.strip() for name in args.providers.split(",") if name.strip()]
    if not args.providers or any(name not in PROVIDERS for name in args.providers):
        parser.error("--providers takes google, microsoft or both")
    if args.members < len(args.providers) or args.events < 30 or args.threads < 1 or not 0 < args.change <= 0.1:
        parser.error("need a member per provider, --events >= 30, --threads >= 1 and 0 < --change <= 0.1")
    if args.processes < 1 or args.batch < 0:
        parser.error("need --processes >= 1 and --batch >= 0")
    args.batch = args.batch or jobs.BATCH
    return args


# --- the fakes' processes ---------------------------------------------------------------------------


def fake_calendars(provider: str, members: int, events: int, today: date, log_path: Path) -> FakeProcess:
    """`bench.calendar_fakes` for one provider in its own process."""
    args = [f"--provider={provider}", f"--members={members}", f"--events={events}", f"--today={today.isoformat()}"]
    return FakeProcess(provider, "bench.calendar_fakes", args, log_path)


# --- phases -----------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase: what it handled (events), how long it took, and what it did."""

    name: str
    events: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    target: str = ""  # as printed
    met: bool | None = None  # None: no target
    checks: list[str] = field(default_factory=list)  # what did not come out as expected

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def expect(checks: list[str], what: str, got: object, wanted: object) -> None:
    if got != wanted:
        checks.append(f"{what}: {got!r}, expected {wanted!r}")


# --- the workers ------------------------------------------------------------------------------------
#
# `--processes` processes of `--threads` threads each, as `dramatiq -p P -t T` runs the calendar
# queue: every thread takes the next job (a batch of up to jobs.BATCH calendars of one connection)
# from a queue shared by the processes and runs `jobs.sync_calendars`'s body, `batch.run`, which
# reads the batch's calendars on threads of its own (`batch.READ_THREADS`).

_jobs: Any = None  # in a worker process: the queue of jobs, set by `_start_worker`


def _start_worker(settings: dict[str, Any], jobs_queue: Any) -> None:
    """A worker process's start: the production wiring on the bench's database and fakes."""
    global _jobs
    _jobs = jobs_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops its workers itself
    build(Settings(**settings))


def _worker_pid(_: float) -> int:
    time.sleep(0.2)  # held a moment, so every process of the pool answers once
    return os.getpid()


def _work(threads: int) -> tuple[dict[str, int], list[int], list[str]]:
    """In a worker process: run jobs on `threads` threads until the queue says stop; the summed
    counts, the calendars that did not sync, and the jobs that raised."""
    worker_runtime = runtime.current()
    counts: dict[str, int] = {}
    failed: list[int] = []
    raised: list[str] = []

    def loop() -> None:
        while (job := _jobs.get()) is not None:
            connection_id, ids = job
            try:
                tallies = batch.run(worker_runtime, connection_id, ids)
            except Exception as error:  # as Dramatiq would: the job fails, the next one runs
                raised.append(f"{type(error).__name__}: {error}")
                continue
            for calendar_id, tally in tallies.items():
                if tally is None:
                    failed.append(calendar_id)
                    continue
                for name, value in tally.counts.items():
                    counts[name] = counts.get(name, 0) + value

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dramatiq-worker") as pool:
        for future in [pool.submit(loop) for _ in range(threads)]:
            future.result()
    return counts, failed, raised


@dataclass
class Workers:
    """The worker processes and the queue they take jobs from."""

    pool: ProcessPoolExecutor
    jobs: Any
    processes: int
    threads: int
    pids: list[int]

    @classmethod
    def start(cls, settings: dict[str, Any], processes: int, threads: int) -> Workers:
        context = multiprocessing.get_context("spawn")
        jobs_queue = context.Queue()
        pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=context, initializer=_start_worker, initargs=(settings, jobs_queue)
        )
        pids = sorted(set(pool.map(_worker_pid, [0.0] * processes * 2)))  # started and wired before timing
        return cls(pool, jobs_queue, processes, threads, pids)

    def sync(self, connection_id: int, calendar_ids: list[int], size: int) -> tuple[dict[str, int], list[int], float]:
        """Sync the calendars as the poll queues them (jobs of `size`); summed counts, the calendars that
        did not sync, and the seconds it took."""
        started = time.perf_counter()
        runs = [self.pool.submit(_work, self.threads) for _ in range(self.processes)]
        for start in range(0, len(calendar_ids), size):
            self.jobs.put((connection_id, calendar_ids[start : start + size]))
        for _ in range(self.processes * self.threads):
            self.jobs.put(None)
        counts: dict[str, int] = {}
        failed: list[int] = []
        raised: list[str] = []
        for run in runs:
            part, missing, errors = run.result()
            for name, value in part.items():
                counts[name] = counts.get(name, 0) + value
            failed += missing
            raised += errors
        seconds = time.perf_counter() - started
        if raised:
            print(f"  {len(raised)} jobs raised: {raised[:3]}", flush=True)
        return counts, failed, seconds

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def failures(calendar_ids: list[int]) -> list[str]:
    """The errors kept on calendars whose sync did not run (a few)."""
    with runtime.current().session_factory() as session:
        rows = session.execute(select(Calendar.id, Calendar.last_error).where(Calendar.id.in_(calendar_ids[:5])))
        return [f"calendar {calendar_id}: {error}" for calendar_id, error in rows]


@dataclass(frozen=True)
class Stored:
    """What the store holds for one connection's calendars."""

    events: int
    distinct: int
    per_calendar: tuple[int, int]  # fewest, most
    emitted: dict[str, int]  # outbox events by type (the organisation's)


def stored(organisation_id: int, connection_id: int) -> Stored:
    """The connection's stored events (calendars never synced, the fake Google admin's, left out)."""
    with runtime.current().session_factory() as session:
        of_connection = select(Calendar.id).where(
            Calendar.connection_id == connection_id, Calendar.last_synced_at.is_not(None)
        )
        events, distinct = session.execute(
            select(func.count(), func.count(func.distinct(ExternalEvent.calendar_id.concat(ExternalEvent.event_id))))
            .select_from(ExternalEvent)
            .where(ExternalEvent.calendar_id.in_(of_connection))
        ).one()
        counted = (
            select(func.count(ExternalEvent.id).label("n"))
            .select_from(Calendar)
            .outerjoin(ExternalEvent, ExternalEvent.calendar_id == Calendar.id)
            .where(Calendar.connection_id == connection_id, Calendar.last_synced_at.is_not(None))
            .group_by(Calendar.id)
            .subquery()
        )
        fewest, most = session.execute(select(func.min(counted.c.n), func.max(counted.c.n))).one()
        emitted = session.execute(
            select(OutboxEvent.type, func.count())
            .where(OutboxEvent.organisation_id == organisation_id, OutboxEvent.type.like("external_event.%"))
            .group_by(OutboxEvent.type)
        ).all()
    return Stored(events, distinct, (fewest or 0, most or 0), {type_: count for type_, count in emitted})


def changed_since(connection_id: int, moment: datetime) -> set[tuple[str, str]]:
    """(address, event id) of the connection's stored events changed at or after `moment`."""
    with runtime.current().session_factory() as session:
        rows = session.execute(
            select(Calendar.address, ExternalEvent.event_id)
            .join(Calendar, Calendar.id == ExternalEvent.calendar_id)
            .where(Calendar.connection_id == connection_id, ExternalEvent.changed_at >= moment)
        )
        return {(address, event_id) for address, event_id in rows}


def present(connection_id: int, wanted: set[tuple[str, str]]) -> int:
    """How many of these (address, event id) the connection's calendars still hold."""
    with runtime.current().session_factory() as session:
        rows = session.execute(
            select(Calendar.address, ExternalEvent.event_id)
            .join(Calendar, Calendar.id == ExternalEvent.calendar_id)
            .where(Calendar.connection_id == connection_id, ExternalEvent.event_id.in_([e for _, e in wanted]))
        )
        return len({(address, event_id) for address, event_id in rows} & wanted)


# --- the ceiling ------------------------------------------------------------------------------------


def google_records(body: dict[str, Any], span: Window) -> tuple[list[CalendarEvent], list[RemovedEvent]]:
    """What `GoogleCalendar._records` does with a listing's body: `to_record` and the window filter."""
    zone = body.get("timeZone")
    events: list[CalendarEvent] = []
    removed: list[RemovedEvent] = []
    for item in body.get("items") or ():
        record = to_record(item, zone)
        if isinstance(record, CalendarEvent):
            if overlaps(record, span):
                events.append(record)
            else:
                removed.append(RemovedEvent(record.event_id))
        elif isinstance(record, RemovedEvent):
            removed.append(record)
    return events, removed


def decode(provider: str, bodies: list[bytes], span: Window) -> tuple[int, float]:
    """Decode and map recorded bodies as the connector does; (events, seconds)."""
    count = 0
    started = time.perf_counter()
    for raw in bodies:
        body = json.loads(raw)
        if provider == "google":
            events, _ = google_records(body, span)
        else:
            items = [item for item in body["value"] if isinstance(item, dict)]
            events_, _ = OutlookCalendar._translate(items)
            events = list(events_)
        count += len(events)
    return count, time.perf_counter() - started


def reader_setup(calendar_ids: list[int]) -> tuple[int, float]:
    """Build the readers of these calendars as `sync.run` does, without reading: (readers, seconds).
    For Google that is the service account's key loaded and the discovery document turned into a
    service, for every calendar, before its first request."""
    worker_runtime = runtime.current()
    with worker_runtime.session_factory() as session:
        sources = [
            readers.source_of(session, worker_runtime.secret_box, session.get_one(Calendar, calendar_id))
            for calendar_id in calendar_ids
        ]
    started = time.perf_counter()
    for source in sources:
        readers.make_reader(source, worker_runtime.directory, worker_runtime.webhook_client)
    return len(sources), time.perf_counter() - started


# --- the Resource Guru webhook burst ----------------------------------------------------------------


def resourceguru_burst(server: str, deliveries: int) -> list[Phase]:
    """Phase 4 in a process of its own (it starts the API, workers and Redis broker of its own; its
    output goes straight through): the table's rows from the figures it leaves."""
    print(f"\n4. Resource Guru webhook burst ({deliveries:,} deliveries), python -m bench.resourceguru_hooks...")
    figures_path = RESULTS / "calendar-resourceguru-hooks.json"
    figures_path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "bench.resourceguru_hooks", f"--server={server}", f"--deliveries={deliveries}",
        f"--json-out={figures_path}",
    ]  # fmt: skip
    code = subprocess.run(command, cwd=ROOT, check=False).returncode
    if not figures_path.exists():
        failed = Phase("4. Resource Guru webhook burst", 0, 0.0, target="p99 <= 50 ms", met=False)
        failed.checks.append(f"bench.resourceguru_hooks exited with {code} and left no figures")
        return [failed]
    figures = json.loads(figures_path.read_text())
    burst = Phase(
        f"4. Resource Guru webhook burst, acks ({figures['connections']} conns)",
        figures["acknowledged"], figures["seconds"], target=figures["target"], met=figures["met"],
        checks=list(figures["checks"]),
    )  # fmt: skip
    times = Phase(f"   ack time p50 {figures['p50_ms']:,.1f} ms, p99 {figures['p99_ms']:,.1f} ms", 0, 0.0)
    return [burst, times]


# --- report -----------------------------------------------------------------------------------------


def print_table(phases: list[Phase]) -> None:
    rows: list[tuple[str, str, str, str, str, str]] = []
    for phase in phases:
        met = "" if phase.met is None else ("met" if phase.met else "MISSED")
        if phase.checks:
            met = (met + " CHECK FAILED").strip()
        rows.append(
            (phase.name, f"{phase.events:,}", f"{phase.seconds:,.2f}", f"{phase.per_second:,.0f}", phase.target, met)
        )
    width = max(len(row[0]) for row in rows)
    header = f"{'figure':{width}}  {'events':>9}  {'seconds':>9}  {'events/s':>9}  {'target':>14}  met"
    print()
    print(header)
    print("-" * len(header))
    for name, events, seconds, rate, target, met in rows:
        print(f"{name:{width}}  {events:>9}  {seconds:>9}  {rate:>9}  {target:>14}  {met}")


def print_cpu(phases: list[Phase], sides: list[str]) -> None:
    header = f"{'CPU seconds':34} " + " ".join(f"{side:>9}" for side in sides) + f" {'cores busy':>10}"
    print()
    print(header)
    print("-" * len(header))
    for phase in phases:
        if not phase.cpu:
            continue
        used = phase.cpu
        seconds = used.get("machine total", 0.0) / max(1, os.cpu_count() or 1)
        busy = used.get("machine busy", 0.0) / seconds if seconds else 0.0
        print(f"{phase.name[:34]:34} " + " ".join(f"{used.get(side, 0.0):9.2f}" for side in sides) + f" {busy:10.2f}")
    print(
        "bench: the worker processes and this one (connectors, sync engine, outbox). google/microsoft: each fake's "
        f"process. others: everything else on the machine ({os.cpu_count()} cores), other people's work included."
    )


# --- main -------------------------------------------------------------------------------------------


def start_profilers(output: str, pids: list[int]) -> list[subprocess.Popen[bytes]]:
    """py-spy on each worker process (`output` with the process's number), without pausing it to sample
    (`--nonblocking`): blocking samples at this rate would slow the threads down several times and skew
    what is measured."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("  py-spy is missing: no profile", flush=True)
        return []
    started = []
    for number, pid in enumerate(pids, start=1):
        command = [
            py_spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking", "--format", "raw",
            "--output", str(RESULTS / f"{output}-{number}.txt"),
        ]  # fmt: skip
        started.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # py-spy attaches
    return started


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        stop_profiler(profiler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def connect(provider: str, organisation_id: int, info: dict[str, Any]) -> int:
    """A connection reading calendars for `provider`'s fake; returns its id."""
    if provider == "google":
        settings: dict[str, Any] = {"admin_email": info["admin_email"], "calendars": True}
        credentials: dict[str, Any] = {"service_account_key": info["service_account_key"]}
    else:
        settings = {"tenant_id": info["tenant_id"], "client_id": info["client_id"], "calendars": True}
        credentials = {"client_secret": info["secret"]}
    with transaction(runtime.current().session_factory) as session:
        connection, _ = connections.create(
            session, runtime.current().secret_box, organisation_id, PROVIDERS[provider], provider,
            settings=settings, credentials=credentials,
        )  # fmt: skip
        return connection.id


def _pids(pid: int) -> Callable[[], list[int]]:
    return lambda: [pid]


def calendar_ids(connection_id: int, addresses: list[str]) -> list[int]:
    """The connection's calendars of the fake's people (the fake Google's admin has one too: left out)."""
    with runtime.current().session_factory() as session:
        return list(
            session.scalars(
                select(Calendar.id)
                .where(Calendar.connection_id == connection_id, Calendar.address.in_(addresses))
                .order_by(Calendar.id)
            )
        )


def main(argv: list[str] | None = None) -> int:
    """Prepare, run the phases, print. Returns 0 once the figures are printed (with --strict, only if
    every target is met and every check passed), 2 when PostgreSQL cannot be reached."""
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.hooks_only:
        try:
            burst = resourceguru_burst(args.server, args.hooks_deliveries)
        except KeyboardInterrupt:
            return 130
        print_table(burst)
        met = all(phase.met is not False and not phase.checks for phase in burst)
        return 1 if args.strict and not met else 0
    try:
        database_url = prepare_database(args.server, args.database)
    except psycopg.OperationalError as error:
        print(f"PostgreSQL is not reachable at {args.server}: {error}", file=sys.stderr)
        return 2
    libpq_url = psycopg.conninfo.make_conninfo(args.server, dbname=args.database)
    today = datetime.now(UTC).date()
    span = window(today)
    members = {name: args.members // len(args.providers) for name in args.providers}
    members[args.providers[0]] += args.members - sum(members.values())
    print(
        f"Starting the fakes: {', '.join(f'{count:,} people on {name}' for name, count in members.items())}, "
        f"{args.events} events each...",
        flush=True,
    )
    fakes = {
        name: fake_calendars(name, count, args.events, today, RESULTS / f"calendar-{name}.log")
        for name, count in members.items()
    }
    phases: list[Phase] = []
    profilers: list[subprocess.Popen[bytes]] = []
    workers: Workers | None = None
    try:
        started = time.perf_counter()
        infos = {name: fake.info for name, fake in fakes.items()}
        print(f"  filled and listening in {time.perf_counter() - started:.1f}s", flush=True)
        graph = infos.get("microsoft", {})
        google = infos.get("google", {})
        wiring: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": None,
            "secret_key": SecretBox.generate_key(),
            "microsoft_authority": graph.get("authority", "https://login.microsoftonline.com"),
            "graph_url": graph.get("graph_url", "https://graph.microsoft.com/v1.0"),
            "ca_bundle": graph.get("ca_bundle"),
            "google_api_url": google.get("base_url", "https://admin.googleapis.com/"),
            "log_level": "WARNING",
            "allow_private_webhooks": True,  # the fakes (a Google key's token_uri) are on loopback
        }
        components = build(Settings(**{**wiring, "secret_key": SecretStr(wiring["secret_key"])}))
        factory = components.session_factory
        with transaction(factory) as session:
            organisation = organisations.create(
                session, "Calendar bench", slug="calendar-bench", timezone="Europe/Berlin"
            )
            organisations.update_settings(session, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
            organisation_id = organisation.id
        connection_ids = {name: connect(name, organisation_id, infos[name]) for name in fakes}

        print("\nSetup: each directory synced (people in, a calendar each)...", flush=True)
        started = time.perf_counter()
        for name, connection_id in connection_ids.items():
            if directory_sync.run(runtime.current(), connection_id) is None:
                raise RuntimeError(f"the {name} directory sync did not run")
        calendars = {
            name: calendar_ids(connection_id, infos[name]["addresses"])
            for name, connection_id in connection_ids.items()
        }
        print(
            f"  {', '.join(f'{len(ids):,} {name} calendars' for name, ids in calendars.items())} "
            f"in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        workers = Workers.start(wiring, args.processes, args.threads)
        worker_pids = workers.pids
        sides: dict[str, Callable[[], list[int]]] = {
            "bench": lambda: [os.getpid(), *worker_pids],
            "postgres": lambda: database_pids(libpq_url),
        }
        for name, fake in fakes.items():
            sides[name] = _pids(fake.process.pid)
        watch = cpu.Watch(sides)
        print(
            f"PostgreSQL {args.server.rsplit('@', 1)[-1].rsplit('/', 1)[0]}/{args.database}, {os.cpu_count()} cores, "
            f"{args.processes} worker processes x {args.threads} threads, jobs of {args.batch} calendars "
            f"(each read on {batch.READ_THREADS} threads), window {span.start:%Y-%m-%d} to {span.end:%Y-%m-%d}.",
            flush=True,
        )

        # 1. initial syncs
        initial: list[Phase] = []
        for name, ids in calendars.items():
            expected = len(ids) * args.events
            print(f"\n1. initial sync of {len(ids):,} {name} calendars ({expected:,} events)...", flush=True)
            if args.profile:
                profilers = start_profilers(f"calendar-profile-{name}", worker_pids)
            with watch.phase() as used:
                counts, failed, seconds = workers.sync(connection_ids[name], ids, args.batch)
            stop_profilers(profilers)
            profilers = []
            state = stored(organisation_id, connection_ids[name])
            phase = Phase(f"1. initial sync, {name}", counts.get("seen", 0), seconds, counts, used)
            expect(phase.checks, "calendars not synced", failures(failed), [])
            expect(phase.checks, "events seen", counts.get("seen", 0), expected)
            expect(phase.checks, "events changed", counts.get("changed", 0), expected)
            expect(phase.checks, "events stored", state.events, expected)
            expect(phase.checks, "distinct events stored", state.distinct, expected)
            expect(phase.checks, "events per calendar (fewest, most)", state.per_calendar, (args.events, args.events))
            initial.append(phase)
            print(f"  {seconds:.2f}s, {phase.per_second:,.0f} events/s; {counts}", flush=True)
        phases.extend(initial)
        total = Phase(
            "1. initial sync, all", sum(p.events for p in initial), sum(p.seconds for p in initial),
            target=f">= {INITIAL_TARGET:,.0f}/s",
        )  # fmt: skip
        total.met = total.per_second >= INITIAL_TARGET and not any(p.checks for p in initial)
        emitted = stored(organisation_id, next(iter(connection_ids.values()))).emitted
        expect(total.checks, "external_event.upserted emitted", emitted.get("external_event.upserted"), total.events)
        phases.append(total)

        # 2. incremental round
        made = {name: fake.ask(op="changes", share=args.change) for name, fake in fakes.items()}
        summary = {name: {kind: len(items) for kind, items in changes.items()} for name, changes in made.items()}
        print(f"\n2. incremental round: changed in the fakes {summary}...", flush=True)
        before = stored(organisation_id, next(iter(connection_ids.values()))).emitted
        incremental: list[Phase] = []
        for name, ids in calendars.items():
            changes = {kind: {(address, event_id) for address, event_id in items} for kind, items in made[name].items()}
            updated = changes["moved"] | changes["renamed"]
            mark = datetime.now(UTC)
            if args.profile:
                profilers = start_profilers(f"calendar-profile-{name}-incremental", worker_pids)
            with watch.phase() as used:
                counts, failed, seconds = workers.sync(connection_ids[name], ids, args.batch)
            stop_profilers(profilers)
            profilers = []
            events = len(updated) + len(changes["deleted"])
            phase = Phase(f"2. incremental, {name} ({len(ids):,} calendars)", events, seconds, counts, used)
            state = stored(organisation_id, connection_ids[name])
            expect(phase.checks, "calendars not synced", failures(failed), [])
            expect(phase.checks, "events changed", counts.get("changed", 0), len(updated))
            expect(phase.checks, "events removed", counts.get("removed", 0), len(changes["deleted"]))
            expect(phase.checks, "stored events changed", changed_since(connection_ids[name], mark), updated)
            expect(phase.checks, "deleted events still stored", present(connection_ids[name], changes["deleted"]), 0)
            expect(phase.checks, "events stored", state.events, len(ids) * args.events - len(changes["deleted"]))
            incremental.append(phase)
            print(f"  {seconds:.2f}s; {counts}", flush=True)
        phases.extend(incremental)
        round_ = Phase(
            f"2. incremental round, all ({sum(len(ids) for ids in calendars.values()):,} calendars)",
            sum(p.events for p in incremental), sum(p.seconds for p in incremental),
            target=f"<= {INCREMENTAL_TARGET:g} s",
        )  # fmt: skip
        round_.met = round_.seconds <= INCREMENTAL_TARGET and not any(p.checks for p in incremental)
        after = stored(organisation_id, next(iter(connection_ids.values()))).emitted
        for type_, kinds in (
            ("external_event.upserted", ("moved",)),  # a rename is stored, not emitted: the payload has no title
            ("external_event.deleted", ("deleted",)),
        ):
            wanted = sum(len(made[name][kind]) for name in made for kind in kinds)
            expect(round_.checks, f"{type_} emitted", after.get(type_, 0) - before.get(type_, 0), wanted)
        phases.append(round_)

        # 3. the ceiling
        print(
            f"\n3. ceiling: decoding and mapping {args.ceiling_calendars} recorded listings per provider...", flush=True
        )
        ceilings: list[Phase] = []
        for name, fake in fakes.items():
            path = RESULTS / f"calendar-bodies-{name}.jsonl"
            fake.ask(op="record", calendars=args.ceiling_calendars, path=str(path))
            bodies = path.read_bytes().splitlines()
            path.unlink()
            count, seconds = decode(name, bodies, span)
            listed = min(args.ceiling_calendars, len(calendars[name]))
            phase = Phase(f"3. ceiling: decode + map, {name}", count, seconds)
            # The listings were recorded after the changes: the deleted events are gone from them.
            deleted = sum(1 for address, _ in made[name]["deleted"] if address in set(fake.info["addresses"][:listed]))
            expect(phase.checks, "events decoded", count, listed * args.events - deleted)
            ceilings.append(phase)
            print(f"  {name}: {count:,} events from {len(bodies)} bodies in {seconds:.3f}s", flush=True)
        phases.extend(ceilings)
        if "google" in calendars:
            built, seconds = reader_setup(calendars["google"][: args.ceiling_calendars])
            phases.append(Phase(f"   google reader built (no network), {built} calendars", built, seconds))
            print(
                f"  google: {seconds / built * 1000:.1f} ms to build a calendar's reader (key, discovery)", flush=True
            )
        for phase, ceiling in zip(initial, ceilings, strict=True):
            ratio = ceiling.per_second / phase.per_second if phase.per_second else float("nan")
            phases.append(Phase(f"   ceiling / initial, {phase.name.rsplit(', ', 1)[1]}: {ratio:,.1f}x", 0, 0.0))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the fakes", file=sys.stderr)
        return 130
    finally:
        stop_profilers(profilers)
        if workers is not None:
            workers.stop()
        for fake in fakes.values():
            fake.stop()

    components.engine.dispose()
    if not args.no_hooks:
        try:
            phases.extend(resourceguru_burst(args.server, args.hooks_deliveries))
        except KeyboardInterrupt:
            return 130
    print_table(phases)
    print_cpu(phases, ["bench", "postgres", *fakes, "others"])
    print(
        f"Concurrency: {args.processes} worker processes x {args.threads} threads take jobs of up to {args.batch} "
        f"calendars of one connection (as `dramatiq -p {args.processes} -t {args.threads}` runs sync_calendars); "
        f"a job reads its calendars on {batch.READ_THREADS} threads, one sign-in and connection pool per job, and "
        "applies them several to a transaction."
    )
    failed_checks = [f"{phase.name}: {check}" for phase in phases for check in phase.checks]
    for line in failed_checks:
        print(f"CHECK FAILED {line}")
    if not failed_checks:
        print(
            "Checks: every event stored exactly once with one external_event.upserted each; the incremental round "
            "changed exactly the events changed in the fakes, removed exactly the deleted ones, "
            "emitted for the moved ones only."
        )
    all_met = all(phase.met is not False for phase in phases) and not failed_checks
    record = {
        "when": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "members": members,
        "events_per_member": args.events,
        "processes": args.processes,
        "threads": args.threads,
        "batch": args.batch,
        "phases": [
            {
                "name": p.name,
                "events": p.events,
                "seconds": p.seconds,
                "per_second": p.per_second,
                "counts": p.counts,
                "cpu": p.cpu,
                "target": p.target,
                "met": p.met,
                "checks": p.checks,
            }
            for p in phases
        ],
        "targets_met": all_met,
    }
    saved = RESULTS / f"calendar-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    saved.write_text(json.dumps(record, indent=2))
    print(f"Figures saved to {saved.relative_to(ROOT)}.")
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Resource Guru webhook burst: part of `make bench-calendar`; alone `python -m bench.resourceguru_hooks`
(`--help` for the knobs).

Production shape: PostgreSQL (a database of the bench's own, dropped and migrated), Redis as the
broker (a db number of its own, flushed), `uvicorn deskbridge.asgi:app --workers 2` (docker-compose's
WEB_CONCURRENCY) and `dramatiq -p 2 -t 4` workers (docker-compose's worker command) through
`bench.resourceguru_worker` (deskbridge.worker_main with Resource Guru at the bench's fake: the
settings have no variable for it), all with DESKBRIDGE_* settings; no scheduler. The fake Resource
Guru (`bench.resourceguru_fake`) and the load generator (`bench.resourceguru_load`) run in processes
of their own.

Setup (not measured): an organisation (auto-accept) with a Resource Guru connection holding a
webhook secret and a token pair from the fake, whose `--people` human resources come in through
the connection's sync (members, a calendar each). Then the burst: `--deliveries` signed deliveries
(distinct envelope ids; bookings created, moved, deleted and days off, per the document: see
bench/resourceguru_fake.py) posted to `POST /hooks/resourceguru/{connection_id}` over
`--connections` keep-alive connections, after `--warmup` unmeasured ones. The worker is busy
meanwhile with what the route queues: `apply_envelopes` jobs draining the connection's kept deliveries
(parsed against the roster, applied to the people's calendars, 100 to a transaction), so the API and
the workers share the machine and PostgreSQL as in production.

Figures: acknowledgements/s (first request sent to last response read), acknowledgement time
(request written to response read, per delivery) p50/p99/max, how many deliveries were stored (once
each, by envelope id), how many the worker applied during the burst and how long it took to apply
them all; the CPU seconds each side used. Target: p99 <= 50 ms. `--profile` records the uvicorn
workers with py-spy during the burst (bench/results/resourceguru-hooks-profile.txt) and prints where
their CPU went.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
import redis
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench import cpu
from bench.api import database_pids
from bench.fake_process import FakeProcess
from bench.webhooks import descendants, prepare_database, stop_process
from deskbridge.settings import Settings
from deskbridge.wiring import build
from store.db import transaction
from store.models import Calendar, Connection, ConnectionKind, DirectoryPolicy, PeerEnvelope
from store.secret_box import SecretBox
from store.services import connections, organisations
from worker import runtime
from worker.directory import sync as directory_sync

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
P99_TARGET_MS = 50.0
WEBHOOK_SECRET = "bench-resourceguru-webhook-secret"  # the bench's own
SIDES = ["api", "workers", "postgres", "redis", "load", "fake", "bench", "others"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.resourceguru_hooks", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL URL")
    parser.add_argument("--database", default="deskbridge_bench_resourceguru", help="the database to (re)create there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11", help="Redis URL (this database is flushed)")
    parser.add_argument("--port", type=int, default=8093, help="the API's port on 127.0.0.1")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--processes", type=int, default=2, help="dramatiq worker processes (-p)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process (-t)")
    parser.add_argument("--people", type=int, default=20, help="human resources (members with a calendar)")
    parser.add_argument("--deliveries", type=int, default=10_000, help="signed deliveries in the burst")
    parser.add_argument("--warmup", type=int, default=200, help="deliveries posted first, unmeasured")
    parser.add_argument("--connections", type=int, default=32, help="the load generator's keep-alive connections")
    parser.add_argument("--drain", type=float, default=600.0, help="seconds to wait for the worker to apply them all")
    parser.add_argument("--profile", action="store_true", help="py-spy the uvicorn workers during the burst")
    parser.add_argument("--json-out", type=Path, help="also write the figures here (bench.calendar reads them)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed or a check fails")
    args = parser.parse_args(argv)
    if args.deliveries < 1 or args.connections < 1 or args.people < 2 or args.warmup < 0:
        parser.error("need --deliveries >= 1, --connections >= 1, --people >= 2, --warmup >= 0")
    return args


# --- processes --------------------------------------------------------------------------------------


def fake_resourceguru(people: int, log_path: Path) -> FakeProcess:
    """`bench.resourceguru_fake` in its own process."""
    return FakeProcess("Resource Guru", "bench.resourceguru_fake", [f"--people={people}"], log_path)


def start_api(env: dict[str, str], workers: int, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """uvicorn with the production app, as docker-compose runs it (access log off, as bench.api)."""
    command = [
        sys.executable, "-m", "uvicorn", "deskbridge.asgi:app", "--host=127.0.0.1", f"--port={port}",
        f"--workers={workers}", "--no-access-log", "--log-level=warning",
    ]  # fmt: skip
    log = log_path.open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_api(server: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"uvicorn did not answer within {timeout:.0f}s:\n{log_path.read_text()[-3000:]}")


def start_workers(env: dict[str, str], processes: int, threads: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`dramatiq bench.resourceguru_worker -p P -t T`, once every process logged that it is ready."""
    dramatiq = shutil.which("dramatiq", path=str(Path(sys.executable).parent)) or "dramatiq"
    command = [dramatiq, "bench.resourceguru_worker", "-p", str(processes), "-t", str(threads)]
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dramatiq exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if log_path.read_text().count("is ready for action") >= processes:
            return process
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(f"the workers were not ready within 60s:\n{log_path.read_text()[-3000:]}")


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on uvicorn's processes, samples of threads holding the GIL only (where their Python CPU goes)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("  py-spy is missing: no profile", flush=True)
        return None
    command = [
        py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "100", "--nonblocking", "--gil",
        "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


# Where the API's CPU can go: a sample counts for a part when its stack holds every one of the part's
# frames (by name and file); the parts nest as indented.
ROUTE = ("deliver (api/push/resourceguru.py", "_write_batch (api/push/kept_deliveries.py")
PROFILE_PARTS = {
    "the route (deliver)": (),
    "  Secrets.check: kept secret, HMAC-SHA256": ("check (api/push/kept_secrets",),
    "  a batch written (thread pool)": ("_write_batch (api/push/kept_deliveries",),
    "    peer_envelopes.receive_many: INSERT ... ON CONFLICT": ("receive_many (store/services/peer_envelopes",),
    "    _enqueue: SET NX, apply_envelopes.send to Redis": ("_enqueue (api/push/resourceguru",),
    "    in psycopg (holding the GIL)": ("_write_batch (", "psycopg/"),
    "outside the route: HTTP, middleware, event loop": (),
}


def summarise_profile(path: Path) -> list[tuple[str, float]]:
    """Share of the GIL-holding samples in each of PROFILE_PARTS, from py-spy's raw (collapsed) output."""
    total = 0
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        in_route = any(frame in stack for frame in ROUTE)
        counts["the route (deliver)" if in_route else "outside the route: HTTP, middleware, event loop"] += count
        for part, frames in PROFILE_PARTS.items():
            if frames and all(frame in stack for frame in frames):
                counts[part] += count
    return [(part, counts[part] / total if total else 0.0) for part in PROFILE_PARTS]


# --- the store ----------------------------------------------------------------------------------------


def kept(factory: sessionmaker[Session], connection_id: int, first: int, last: int) -> dict[str, int]:
    """The burst's deliveries as the store holds them: rows, distinct envelope ids, applied, and by outcome."""
    with factory() as session:
        of_burst = (PeerEnvelope.connection_id == connection_id, PeerEnvelope.envelope_id.between(first, last))
        rows, distinct, applied = session.execute(
            select(
                func.count(),
                func.count(func.distinct(PeerEnvelope.envelope_id)),
                func.count(PeerEnvelope.applied_at),
            ).where(*of_burst)
        ).one()
        errors = Counter(
            (error or "").split(":", 1)[0]
            for error in session.scalars(select(PeerEnvelope.error).where(*of_burst, PeerEnvelope.error.is_not(None)))
        )
    return {"rows": rows, "distinct": distinct, "applied": applied} | {f"error {e}": n for e, n in errors.items()}


def connection_state(factory: sessionmaker[Session], connection_id: int) -> tuple[str, str | None]:
    with factory() as session:
        connection = session.get_one(Connection, connection_id)
        return connection.status.value, connection.last_error


# --- report -------------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(row[0]) for row in rows)
    header = f"{'figure':{width}}  {'measured':>12}  {'target':>10}  met"
    print()
    print(header)
    print("-" * len(header))
    for name, value, target, met in rows:
        print(f"{name:{width}}  {value:>12}  {target:>10}  {met}")


def print_cpu(used: dict[str, float], deliveries: int, seconds: float) -> None:
    header = f"{'CPU during the burst':22} " + " ".join(f"{side:>8}" for side in SIDES) + f" {'cores busy':>10}"
    print()
    print(header)
    print("-" * len(header))
    per_core = used.get("machine total", 0.0) / max(1, os.cpu_count() or 1)
    busy = used.get("machine busy", 0.0) / per_core if per_core else 0.0
    print(f"{'seconds':22} " + " ".join(f"{used.get(side, 0.0):8.2f}" for side in SIDES) + f" {busy:10.2f}")
    per = [1000 * used.get(side, 0.0) / max(1, deliveries) for side in SIDES]
    print(f"{'ms per delivery':22} " + " ".join(f"{value:8.3f}" for value in per))
    print(
        f"api: uvicorn's processes; workers: dramatiq's (applying the deliveries); load: the load generator; "
        f"fake: the fake Resource Guru; bench: this process (idle but for the CPU sampling); others: everything "
        f"else on the machine ({os.cpu_count()} cores, other people's work included). Burst wall time "
        f"{seconds:.1f}s = {seconds * (os.cpu_count() or 1):.1f} core-seconds available."
    )


# --- main ---------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def setup(settings: Settings, info: dict[str, Any]) -> tuple[sessionmaker[Session], int]:
    """(session factory, connection id): the organisation, its Resource Guru connection (webhook secret,
    the fake's tokens) and its people."""
    components = build(settings)
    current = runtime.current()  # as bench.resourceguru_worker: Resource Guru is the fake
    runtime.configure(replace(current, directory=replace(current.directory, resourceguru_url=info["base_url"])))
    factory = components.session_factory
    expires = datetime.now(UTC) + timedelta(seconds=int(info["expires_in"]))
    with transaction(factory) as session:
        organisation = organisations.create(session, "Resource Guru bench", slug="resourceguru-bench")
        organisations.update_settings(session, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
        connection, _ = connections.create(
            session, runtime.current().secret_box, organisation.id, ConnectionKind.RESOURCEGURU, "Resource Guru",
            settings={"account": info["account"]},
            credentials={
                "client_id": info["client_id"], "client_secret": info["client_secret"],
                "redirect_uri": info["redirect_uri"], "access_token": info["access_token"],
                "refresh_token": info["refresh_token"], "expires_at": expires.isoformat(),
                "webhook_secret": WEBHOOK_SECRET,
            },
        )  # fmt: skip
        connection_id = connection.id
    if directory_sync.run(runtime.current(), connection_id) is None:
        raise RuntimeError("the Resource Guru connection's sync did not run")
    return factory, connection_id


def main(argv: list[str] | None = None) -> int:
    """Prepare, burst, print. 0 once the figures are printed (with --strict, only if the target is met and
    every check passed), 2 when PostgreSQL or Redis cannot be reached."""
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        database_url = prepare_database(args.server, args.database)
    except psycopg.OperationalError as error:
        print(f"PostgreSQL is not reachable at {args.server}: {error}", file=sys.stderr)
        return 2
    try:
        redis_client = redis.Redis.from_url(args.redis)
        redis_client.flushdb()
        redis_pid = int(redis_client.info("server")["process_id"])
    except redis.RedisError as error:
        print(f"Redis is not reachable at {args.redis}: {error}", file=sys.stderr)
        return 2
    libpq_url = psycopg.conninfo.make_conninfo(args.server, dbname=args.database)
    secret_key = SecretBox.generate_key()
    base_url = f"http://127.0.0.1:{args.port}"
    env = {
        **os.environ,
        "DESKBRIDGE_DATABASE_URL": database_url,
        "DESKBRIDGE_REDIS_URL": args.redis,
        "DESKBRIDGE_SECRET_KEY": secret_key,
        "DESKBRIDGE_PUBLIC_BASE_URL": base_url,
        "DESKBRIDGE_LOG_LEVEL": "WARNING",
    }
    logs = {name: RESULTS / f"resourceguru-hooks-{name}.log" for name in ("fake", "api", "workers")}
    first_id, last_id = args.warmup + 1, args.warmup + args.deliveries
    fake: FakeProcess | None = None
    api: subprocess.Popen[bytes] | None = None
    workers: subprocess.Popen[bytes] | None = None
    load: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    try:
        fake = fake_resourceguru(args.people, logs["fake"])
        # The bench's own session factory: the in-process stub broker (what it queues stays queued).
        settings = Settings(
            database_url=database_url, redis_url=None, secret_key=SecretStr(secret_key), log_level="WARNING"
        )
        started = time.perf_counter()
        factory, connection_id = setup(settings, fake.info)
        with factory() as session:
            calendars = session.scalar(
                select(func.count()).select_from(Calendar).where(Calendar.connection_id == connection_id)
            )
        print(
            f"Setup: a Resource Guru connection with a webhook secret, {args.people} human resources synced "
            f"({calendars} calendars) in {time.perf_counter() - started:.1f}s.",
            flush=True,
        )
        payloads = RESULTS / "resourceguru-hooks-payloads.jsonl"
        fake.ask(op="payloads", count=args.warmup + args.deliveries, path=str(payloads))
        api = start_api(env, args.api_workers, args.port, logs["api"])
        wait_for_api(api, base_url, logs["api"])
        workers = start_workers(
            env | {"BENCH_RESOURCEGURU_URL": fake.info["base_url"]}, args.processes, args.threads, logs["workers"]
        )
        print(
            f"API: uvicorn deskbridge.asgi:app --workers {args.api_workers}; workers: dramatiq -p {args.processes} "
            f"-t {args.threads} (as docker-compose.yml); PostgreSQL {args.server.rsplit('@', 1)[-1].rsplit('/', 1)[0]}"
            f"/{args.database}, Redis {args.redis}; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} before the burst.",
            flush=True,
        )

        api_pid, workers_pid = api.pid, workers.pid
        watch = cpu.Watch(
            {
                "api": lambda: descendants(api_pid),
                "workers": lambda: descendants(workers_pid),
                "postgres": lambda: database_pids(libpq_url),
                "redis": lambda: [redis_pid],
                "load": lambda: [load.pid] if load is not None else [],
                "fake": lambda: [fake.process.pid] if fake is not None else [],
                "bench": lambda: [os.getpid()],
            }
        )
        job = RESULTS / "resourceguru-hooks-job.json"
        out = RESULTS / "resourceguru-hooks-load.json"
        job.write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "port": args.port,
                    "path": f"/hooks/resourceguru/{connection_id}",
                    "secret": WEBHOOK_SECRET,
                    "payloads": str(payloads),
                    "first_id": 1,
                    "warmup": args.warmup,
                    "connections": args.connections,
                    "out": str(out),
                }
            )
        )
        print(
            f"\n4. Resource Guru webhook burst: {args.deliveries:,} signed deliveries over {args.connections} "
            f"connections (after {args.warmup} unmeasured), the worker applying them meanwhile...",
            flush=True,
        )
        load = subprocess.Popen(
            [sys.executable, "-m", "bench.resourceguru_load", str(job)], cwd=ROOT, stdout=subprocess.PIPE
        )
        assert load.stdout is not None
        ready = json.loads(load.stdout.readline() or "{}")
        if "ready" not in ready:
            raise RuntimeError(f"the load generator exited with {load.wait()}")
        if args.profile:
            profiler = start_profiler(api_pid, RESULTS / "resourceguru-hooks-profile.txt")
        with watch.phase() as used:
            load.wait()
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
        during = kept(factory, connection_id, first_id, last_id)
        result = json.loads(out.read_text())
        burst_seconds = float(result["seconds"])
        latencies = [ms for ms in result["latencies_ms"] if ms > 0]
        acknowledged = int(result["statuses"].get("202", 0))
        print(f"  {burst_seconds:.1f}s, statuses {result['statuses']}; store: {during}", flush=True)

        drained_at: float | None = None
        drain_started = time.perf_counter()
        state = during
        while time.perf_counter() - drain_started < args.drain:
            state = kept(factory, connection_id, first_id, last_id)
            if state["applied"] >= state["rows"]:
                drained_at = time.perf_counter() - drain_started
                break
            time.sleep(0.5)
        status, last_error = connection_state(factory, connection_id)
        failed_jobs = Counter(
            line.rsplit("(", 1)[0].rsplit(" ", 1)[-1]
            for line in logs["workers"].read_text().splitlines()
            if "Failed to process message" in line
        )
        requests = fake.ask(op="requests")
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the API, the workers and the fake", file=sys.stderr)
        return 130
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        stop_process(workers)
        stop_process(api, grace=10)
        if fake is not None:
            fake.stop()

    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    per_second = acknowledged / burst_seconds if burst_seconds else 0.0
    checks: list[str] = []
    if acknowledged != args.deliveries:
        checks.append(f"acknowledged (202): {acknowledged:,} of {args.deliveries:,}; statuses {result['statuses']}")
    if during["rows"] != args.deliveries or during["distinct"] != args.deliveries:
        checks.append(f"stored: {during['rows']:,} rows, {during['distinct']:,} distinct of {args.deliveries:,}")
    if drained_at is None:
        checks.append(f"applied by the worker: {state['applied']:,} of {state['rows']:,} after {args.drain:.0f}s")
    if state.get("error a Resource Guru webhook could not be read", 0) or status == "error":
        checks.append(f"connection {status}: {last_error}")
    met = p99 <= P99_TARGET_MS and not checks
    applied_rate = state["rows"] / (burst_seconds + drained_at) if drained_at is not None else 0.0
    outcomes = {key.removeprefix("error "): n for key, n in state.items() if key.startswith("error ")}
    rows = [
        (
            f"acknowledgements/s ({args.deliveries:,} deliveries, {args.connections} conns)",
            f"{per_second:,.0f}",
            "",
            "",
        ),
        ("acknowledgement time p50", f"{p50:,.1f} ms", "", ""),
        ("acknowledgement time p99", f"{p99:,.1f} ms", f"<= {P99_TARGET_MS:.0f} ms", "met" if met else "MISSED"),
        ("acknowledgement time max", f"{max(latencies or [0.0]):,.1f} ms", "", ""),
        ("stored once (rows / distinct envelope ids)", f"{during['rows']:,} / {during['distinct']:,}", "", ""),
        ("applied by the worker during the burst", f"{during['applied']:,}", "", ""),
        (
            "all applied, seconds after the burst",
            f"{drained_at:,.1f}" if drained_at is not None else f"> {args.drain:.0f}",
            "",
            "",
        ),
    ]
    print_table(rows)
    print(
        f"Worker: {state['applied']:,} of {state['rows']:,} applied"
        + (f" ({applied_rate:,.0f}/s from the first acknowledgement to the last applied)" if drained_at else "")
        + f"{'; not applied, by reason: ' + str(outcomes) if outcomes else ''}; "
        f"{requests['requests']} requests to the fake Resource Guru (roster reads), {requests['throttled']} "
        f"throttled; connection {status}. Load generator: {result['error_count']} transport errors."
    )
    if failed_jobs:
        print(
            f"Worker jobs that raised and were retried (dramatiq backoff >= 5 s, which lengthens the drain): "
            f"{dict(failed_jobs)}; see {logs['workers'].relative_to(ROOT)}."
        )
    print(
        f"In flight: {args.connections} deliveries at a time, so the mean acknowledgement time is about "
        f"{args.connections} / acknowledgements/s = {1000 * args.connections / max(per_second, 1e-9):,.0f} ms "
        f"(measured mean {sum(latencies) / max(1, len(latencies)):,.0f} ms): a p99 of {P99_TARGET_MS:.0f} ms "
        f"at {args.connections} connections needs well over {1000 * args.connections / P99_TARGET_MS:,.0f} "
        f"acknowledgements/s."
    )
    print_cpu(used, args.deliveries, burst_seconds)
    if args.profile and (RESULTS / "resourceguru-hooks-profile.txt").exists():
        print("\nWhere the API's CPU went during the burst (py-spy, samples holding the GIL, inclusive):")
        for part, share in summarise_profile(RESULTS / "resourceguru-hooks-profile.txt"):
            print(f"  {part:55} {share:6.1%}")
    elif not met:
        print("Rerun with --profile (python -m bench.resourceguru_hooks --profile) for where the API's CPU goes.")
    for check in checks:
        print(f"CHECK FAILED {check}")
    record = {
        "when": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "deliveries": args.deliveries,
        "connections": args.connections,
        "api_workers": args.api_workers,
        "worker_processes": args.processes,
        "worker_threads": args.threads,
        "seconds": burst_seconds,
        "acknowledged": acknowledged,
        "per_second": per_second,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(latencies or [0.0]),
        "stored": during,
        "final": state,
        "drained_seconds": drained_at,
        "cpu": used,
        "target": f"p99 <= {P99_TARGET_MS:.0f} ms",
        "met": met,
        "checks": checks,
        "failed_jobs": dict(failed_jobs),
    }
    saved = RESULTS / f"resourceguru-hooks-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    saved.write_text(json.dumps(record, indent=2))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(record, indent=2))
    print(f"Figures saved to {saved.relative_to(ROOT)}.")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())

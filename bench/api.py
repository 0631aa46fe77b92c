"""API benchmark: `make bench-api` (`python -m bench.api --help` for the knobs).

Builds its own PostgreSQL database (10,000 members, 500 desks, 1,000,000 bookings), runs the
production ASGI app under uvicorn with production settings (PostgreSQL, Redis for the broker and the
rate-limit counters, access log off), and measures with wrk at 32 connections:

- the ceiling: `GET /healthz`, the same server's trivial route returning a constant JSON body
  (a plain `def` route like the real ones, behind the same middleware);
- `GET /api/my_upcoming_bookings/` (WiggleDesk-compatible);
- `GET /v1/bookings?member_id=<caller>&from=<now>`: the same question asked of the /v1 API;
- `GET /v1/bookings`: the first page of the organisation's million bookings.

Each request speaks for a member picked at random among the 10,000, with that member's token; the
tokens' `last_used_at` are spread over the past minute first, as on a server under steady load (see
`load.stagger_token_use`). Targets (issue 17): `my_upcoming_bookings` at >= 25% of the ceiling's
requests/s, the two /v1 listings at >= 20%, each with p99 <= 50 ms. Beside wrk's figures the table
gives the CPU milliseconds per request of the app and of PostgreSQL, the database connections the app
opened, and how much of the machine other processes took meanwhile (on a shared machine, requests/s
move with it; CPU per request much less).

`--reuse` keeps a complete bench database between runs; `--profile NAME` records the uvicorn workers
with py-spy (`pip install py-spy`) while NAME is measured, into bench/results/profile-N.txt
(collapsed stacks of the threads holding the GIL).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import redis
from cryptography.fernet import Fernet
from psycopg import sql

from bench import cpu, load, wrk

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
P99_TARGET_MS = 50.0


@dataclass(frozen=True)
class Endpoint:
    """One measured route: a short name and the path wrk requests (`{member}` is the caller's id)."""

    name: str
    path: str
    ceiling: bool = False
    target: float = 0.0  # the share of the ceiling's requests/s to reach


def endpoints(now: datetime) -> list[Endpoint]:
    """The ceiling and the real endpoints, in the order they are measured."""
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        Endpoint("ceiling GET /healthz", "/healthz", ceiling=True),
        Endpoint("GET /api/my_upcoming_bookings/", "/api/my_upcoming_bookings/", target=0.25),
        Endpoint("GET /v1/bookings?member_id&from", f"/v1/bookings?member_id={{member}}&from={since}", target=0.20),
        Endpoint("GET /v1/bookings", "/v1/bookings", target=0.20),
    ]


def default_workers() -> int:
    """One uvicorn process per core: the routes are CPU-bound Python, and wrk, PostgreSQL and Redis
    share the same cores, so more processes would only queue on them."""
    return max(1, os.cpu_count() or 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL URL")
    parser.add_argument("--database", default="deskbridge_bench", help="the database to (re)create on that server")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="Redis URL (this database is flushed)")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it already holds the data set")
    parser.add_argument("--workers", type=int, default=default_workers(), help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per endpoint")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    parser.add_argument("--only", action="append", default=[], help="measure only endpoints whose name has this")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--profile", metavar="NAME", help="also record the workers with py-spy while loading the endpoint named NAME"
    )
    return parser.parse_args(argv)


# --- database ---------------------------------------------------------------------------------------


def prepare_database(server_url: str, database: str, reuse: bool) -> str:
    """The URL of a migrated, loaded bench database, made from scratch unless `reuse` finds it complete."""
    from store.db import make_engine
    from store.migrate import upgrade

    url = psycopg.conninfo.make_conninfo(server_url, dbname=database)
    if reuse and load.is_loaded(url):
        print(f"Reusing database {database!r}: it already holds {load.DATA_VERSION}; migrating it to this schema.")
        engine = make_engine(sqlalchemy_url(url))
        upgrade(engine)
        engine.dispose()
        return url
    print(f"Creating database {database!r} and loading {load.DATA_VERSION}:", flush=True)
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    engine = make_engine(sqlalchemy_url(url))
    upgrade(engine)
    engine.dispose()
    seconds = load.load(url)
    print(f"Loaded in {seconds:.1f}s.")
    return url


def sqlalchemy_url(conninfo: str) -> str:
    """`postgresql://user@host:port/db` for the app's settings, from a libpq connection string."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    password = f":{info['password']}" if info.get("password") else ""
    return (
        f"postgresql://{info.get('user', 'postgres')}{password}@{info.get('host', '127.0.0.1')}:"
        f"{info.get('port', 5432)}/{info['dbname']}"
    )


# --- server -----------------------------------------------------------------------------------------


def start_server(database_url: str, redis_url: str, workers: int, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """uvicorn with the production app and settings, in its own process group."""
    env = {
        **os.environ,
        "DESKBRIDGE_DATABASE_URL": database_url,
        "DESKBRIDGE_REDIS_URL": redis_url,
        "DESKBRIDGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # Required outside the embedded mode; the bench stores no secret, so any key does.
        "DESKBRIDGE_SECRET_KEY": os.environ.get("DESKBRIDGE_SECRET_KEY") or Fernet.generate_key().decode(),
        "DESKBRIDGE_RATE_LIMIT_PER_DAY": "1000000000",  # counted as in production, never reached
        "DESKBRIDGE_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "deskbridge.asgi:app",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--workers={workers}",
        "--no-access-log",
        "--log-level=warning",
    ]
    log = log_path.open("wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(server: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"uvicorn did not answer within {timeout:.0f}s:\n{log_path.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to uvicorn (it stops its workers), then SIGKILL to its group if it lingers."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def database_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the bench database (the app's pooled connections)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def check_endpoint(base_url: str, endpoint: Endpoint, caller: load.Caller) -> str:
    """Ask once as `caller`; a one-line description of the answer, or an error if it is not a 200."""
    response = httpx.get(
        base_url + endpoint.path.replace("{member}", str(caller.member_id)),
        headers={"Authorization": f"token {caller.secret}"},
        timeout=10,
    )
    if response.status_code != 200:
        raise RuntimeError(f"{endpoint.name}: {response.status_code} {response.text[:300]}")
    body = response.json()
    size = len(response.content)
    if "results" in body:
        return f"200, {len(body['results'])} of count={body['count']}, {size} bytes"
    if "data" in body:
        return f"200, {len(body['data'])} items, has_more={body.get('has_more')}, {size} bytes"
    return f"200, {size} bytes"


# --- measuring --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One endpoint's run: wrk's figures, the CPU each side used, and the database sessions opened."""

    endpoint: Endpoint
    figures: wrk.Figures
    usage: cpu.Usage
    new_sessions: int  # PostgreSQL connections opened during the run: the app's pool churning

    def per_request_ms(self, seconds: float) -> float:
        return 1000 * seconds / max(1, self.figures.requests)


def database_sessions(url: str) -> int:
    """Connections ever opened to the bench database (pg_stat_database.sessions)."""
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def verdict(endpoint: Endpoint, figures: wrk.Figures, ceiling: wrk.Figures | None) -> tuple[str, bool]:
    """The ratio to the ceiling and whether the endpoint's targets are met."""
    if ceiling is None or not ceiling.rps:
        return "-", False
    ratio = figures.rps / ceiling.rps
    met = ratio >= endpoint.target and figures.p99_ms <= P99_TARGET_MS and figures.bad_status == 0
    return f"{ratio:.0%}", met


def print_table(rows: list[Measured], ceiling: wrk.Figures | None) -> None:
    """The figures side by side, then what the targets are and how busy the machine was."""
    header = (
        f"{'endpoint':32} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'vs ceiling':>10}  {'targets':9}"
        f" | {'CPU ms/req: app':>15} {'db':>5} | {'new db conns':>12}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        figures = row.figures
        if row.endpoint.ceiling:
            ratio, met_text = "100%", "(ceiling)"
        else:
            ratio, met = verdict(row.endpoint, figures, ceiling)
            met_text = "met" if met else "MISSED"
        print(
            f"{row.endpoint.name:32} {figures.rps:6.0f} {figures.p50_ms:7.1f} {figures.p99_ms:7.1f} "
            f"{figures.bad_status + figures.socket_errors:6d} {ratio:>10}  {met_text:9}"
            f" | {row.per_request_ms(row.usage.app):15.2f} {row.per_request_ms(row.usage.database):5.2f}"
            f" | {row.new_sessions:12d}"
        )
    print(
        "\nTargets (issue 17): of the ceiling's requests/s, "
        + ", ".join(f"{row.endpoint.name} >= {row.endpoint.target:.0%}" for row in rows if not row.endpoint.ceiling)
        + f"; p99 <= {P99_TARGET_MS:.0f} ms; no errors (non-2xx answers or socket errors).\n"
        "CPU ms/req: CPU the uvicorn processes (app) and the bench database's PostgreSQL backends (db; those alive "
        "at the end of the run) used per request. New db conns: connections the app opened during the run."
    )
    shares = [row.usage.others_share() for row in rows]
    if shares:
        print(
            f"Other processes on this machine took {sum(shares) / len(shares):.0%} of its {os.cpu_count()} cores "
            f"during the measurements (at most {max(shares):.0%} in one)"
            + ("; the figures above are lower than on a quiet machine." if max(shares) > 0.1 else ".")
        )


def measure(
    args: argparse.Namespace,
    server: subprocess.Popen[bytes],
    database: str,
    endpoint: Endpoint,
    number: int,
    callers_file: Path,
    redis_pid: int | None,
) -> Measured:
    """Warm up, then measure one endpoint (profiling it too if asked)."""
    wrk_path = wrk.ensure_wrk()
    base_url = f"http://127.0.0.1:{args.port}"
    script = RESULTS / f"wrk-{number}.lua"
    wrk.write_script(script, endpoint.path, callers_file, seed=number + 1)
    load.stagger_token_use(database)
    wrk.run(wrk_path, base_url, script, connections=args.connections, threads=args.threads, seconds=args.warmup)
    profiler = None
    if args.profile and args.profile in endpoint.name:
        profiler = start_profiler(server, args.duration, RESULTS / f"profile-{number}")
    app_pids = [server.pid, *cpu.children(server.pid)]
    backends = database_pids(database)
    sessions = database_sessions(database)
    before = cpu.snapshot(app_pids, backends, redis_pid)
    figures = wrk.run(
        wrk_path, base_url, script, connections=args.connections, threads=args.threads, seconds=args.duration
    )
    after = cpu.snapshot(app_pids, sorted({*backends, *database_pids(database)}), redis_pid)
    new_sessions = database_sessions(database) - sessions - 2  # less our own two look-ups
    if profiler is not None:
        profiler.wait()
    print(f"  measured {endpoint.name}: {figures.rps:.0f} req/s, p99 {figures.p99_ms:.1f} ms", flush=True)
    return Measured(endpoint, figures, cpu.used(before, after), max(0, new_sessions))


def main(argv: list[str] | None = None) -> int:
    """Prepare, serve, measure, print. Returns 0 once the figures are printed (with --strict, only if
    every target is met), 2 when PostgreSQL cannot be reached."""
    args = parse_args(argv)
    wrk.ensure_wrk()
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        database = prepare_database(args.server, args.database, args.reuse)
    except psycopg.OperationalError as error:
        print(f"PostgreSQL is not reachable at {args.server}: {error}", file=sys.stderr)
        return 2
    redis_client = redis.Redis.from_url(args.redis)
    redis_client.flushdb()
    redis_pid = int(redis_client.info("server")["process_id"])
    callers = load.read_callers(database)
    callers_file = RESULTS / "callers.txt"
    wrk.write_callers(callers, callers_file)

    base_url = f"http://127.0.0.1:{args.port}"
    log_path = RESULTS / "uvicorn.log"
    print(
        f"\nServer: uvicorn deskbridge.asgi:app, {args.workers} worker process(es) on {os.cpu_count()} cores "
        f"(one per core: CPU-bound routes; wrk, PostgreSQL and Redis share the cores), access log off, "
        f"log level warning, Redis {args.redis}. Load: wrk, {args.connections} connections, {args.threads} threads, "
        f"{args.warmup:.0f}s warm-up then {args.duration:.0f}s measured per endpoint, callers drawn at random "
        f"among {len(callers):,} members.",
        flush=True,
    )
    server = start_server(sqlalchemy_url(database), args.redis, args.workers, args.port, log_path)
    rows: list[Measured] = []
    try:
        wait_until_up(server, base_url, log_path)
        chosen = [e for e in endpoints(datetime.now(UTC)) if not args.only or any(o in e.name for o in args.only)]
        for endpoint in chosen:
            print(f"  check {endpoint.name}: {check_endpoint(base_url, endpoint, callers[len(callers) // 2])}")
        for number, endpoint in enumerate(chosen):
            rows.append(measure(args, server, database, endpoint, number, callers_file, redis_pid))
    finally:
        stop_server(server)

    ceiling = next((row.figures for row in rows if row.endpoint.ceiling), None)
    print_table(rows, ceiling)
    record = {
        "when": datetime.now(UTC).isoformat(),
        "workers": args.workers,
        "cores": os.cpu_count(),
        "connections": args.connections,
        "duration_s": args.duration,
        "results": [
            {
                "endpoint": row.endpoint.name,
                "path": row.endpoint.path,
                **asdict(row.figures),
                "rps": row.figures.rps,
                "cpu_seconds": asdict(row.usage),
                "new_db_connections": row.new_sessions,
            }
            for row in rows
        ],
    }
    saved = RESULTS / f"api-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    saved.write_text(json.dumps(record, indent=2))
    print(f"Figures saved to {saved.relative_to(ROOT)}.")
    real = [row for row in rows if not row.endpoint.ceiling]
    all_met = bool(real) and all(verdict(row.endpoint, row.figures, ceiling)[1] for row in real)
    return 1 if args.strict and not all_met else 0


def start_profiler(server: subprocess.Popen[bytes], seconds: float, stem: Path) -> subprocess.Popen[bytes]:
    """py-spy recording every uvicorn worker for `seconds`: a flame graph and the collapsed stacks."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise RuntimeError("py-spy is missing: pip install py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--subprocesses",
            "--duration",
            str(max(1, round(seconds) - 1)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            f"{stem}.txt",
            "--nonblocking",
            "--gil",  # only samples holding the GIL: where the Python CPU time goes
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    raise SystemExit(main())

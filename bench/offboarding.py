"""Offboarding latency benchmark: `make bench-offboarding` (`python -m bench.offboarding --help` for the knobs).

From a directory's change notification to the membership removed and the signed `membership.removed`
webhook received, for a Microsoft Entra ID connection (a Graph change notification on the users
subscription) and a Google Workspace one (a users watch channel's notification), each of `--people`
(200) people, through the production processes: the API (`uvicorn deskbridge.asgi:app`, as `deskbridge
api` runs it) receiving the notifications, Dramatiq workers (`dramatiq deskbridge.worker_main -p 2 -t 4`,
as docker-compose.yml runs them) syncing the directory and delivering the webhook, PostgreSQL and Redis;
no scheduler (nothing is left to its polls). The directories are the test fakes in a process of their
own (`bench.offboarding_fakes`: the fake Graph over TLS with real msal and httpx, the fake Google with
real google-auth and the Admin SDK client), the receiver `bench.webhooks_receiver` verifying every
request's Standard Webhooks signature.

Setup (not measured): a fresh database, an organisation (directory policy auto_accept) with an admin, a
webhook endpoint for `membership.removed`, both connections synced once (everyone a member with one
booking ahead) and their push channels opened (Graph's validation handshake reaches the API).

Then for each source, one person after the other every `--interval` seconds (a steady trickle, as people
leave, not one burst that a single sync would take in at once): the person is disabled in the directory
and the notification sent; the figure is from that moment (taken in the fakes' process) to
1. the membership removed: the `membership.removed` event's commit (its outbox row, in the same
   transaction as the removal), and
2. the webhook received: the receiver's first receipt of that event with a valid signature (both
   `time.monotonic()`, one clock for every process of the machine).
p50 and p99 of each, against the target p99 <= 5 s, and the CPU milliseconds each process used per
removal (API, workers, PostgreSQL, Redis, the fakes, the receiver, this process, and everything else
on the machine, beside the load average): CPU per removal stays meaningful on a busy machine, the
latencies much less so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import redis
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench import cpu
from bench.api import database_pids, start_server, stop_server, wait_until_up
from bench.fake_process import FakeProcess
from bench.offboarding_fakes import address
from bench.webhooks import Receiver, Workers, descendants, percentile, prepare_database, stop_process
from deskbridge.settings import Settings
from deskbridge.wiring import build
from store.columns import utcnow
from store.db import make_session_factory, transaction
from store.models import ConnectionKind, DirectoryPolicy, MemberStatus, OutboxEvent, Role
from store.services import bookings, connections, members, organisations, webhook_endpoints
from worker import after_commit, runtime

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
P99_TARGET = 5.0  # seconds, notification to webhook received
HOOK_PATH = "/hooks/offboarding"
SOURCES = ("graph", "google")
KIND = {"graph": ConnectionKind.MICROSOFT, "google": ConnectionKind.GOOGLE}
# Everyone of a connection leaves within minutes here: the removal limit (10 people or 5% an hour by
# default; a percentage of those still in scope, which shrinks as they leave) would rightly hold all but
# the first few for an admin. The bench measures the offboarding path itself, so its connections allow
# every removal.
OPEN_LIMIT = {"people": 1_000_000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.offboarding", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL URL")
    parser.add_argument("--database", default="deskbridge_bench_offboarding", help="the database to (re)create there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="Redis URL (this database is flushed)")
    parser.add_argument("--port", type=int, default=8095, help="the API's port on 127.0.0.1")
    parser.add_argument("--receiver-port", type=int, default=8096, help="the webhook receiver's port")
    parser.add_argument("--people", type=int, default=200, help="people offboarded per source (>= 200 for the figure)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between two people leaving")
    parser.add_argument("--processes", type=int, default=2, help="dramatiq worker processes (-p)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process (-t)")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the last webhook")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Setup:
    organisation_id: int
    connection_ids: dict[str, int]
    secret: str


def set_up(factory: sessionmaker[Session], directories: dict[str, Any], receiver_url: str, people: int) -> Setup:
    """The organisation, its endpoint and both connections, through store services."""
    box = runtime.current().secret_box
    graph, google = directories["graph"], directories["google"]
    with transaction(factory) as session:
        organisation = organisations.create(session, "Offboarding bench", slug="offboarding-bench")
        organisations.update_settings(session, organisation, directory_policy=DirectoryPolicy.AUTO_ACCEPT)
        members.add(session, organisation.id, "it@bench.example", role=Role.ADMIN)
        _, secret = webhook_endpoints.create_endpoint(
            session, organisation.id, receiver_url + HOOK_PATH, box=box, event_types=["membership.removed"]
        )
        microsoft, _ = connections.create(
            session,
            box,
            organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra ID",
            settings={"tenant_id": graph["tenant_id"], "client_id": graph["client_id"], "removal_limit": OPEN_LIMIT},
            credentials={"client_secret": graph["secret"]},
        )
        workspace, _ = connections.create(
            session,
            box,
            organisation.id,
            ConnectionKind.GOOGLE,
            "Workspace",
            settings={
                "admin_email": google["admin_email"],
                "scope": {"domains": ["acme.example"]},
                "removal_limit": OPEN_LIMIT,
            },
            credentials={"service_account_key": google["service_account_key"]},
        )
        return Setup(organisation.id, {"graph": microsoft.id, "google": workspace.id}, secret)


def first_syncs_and_channels(factory: sessionmaker[Session], setup: Setup, people: int) -> None:
    """Both connections synced (everyone a member), a booking each ahead, and the push channels open."""
    from worker import channels
    from worker.directory import sync

    worker_runtime = runtime.current()
    start = (utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    for source, connection_id in setup.connection_ids.items():
        tally = sync.run(worker_runtime, connection_id)
        if tally is None:
            raise RuntimeError(f"the first sync of the {source} connection failed; see its last_error")
        with transaction(factory) as session:
            for number in range(1, people + 1):
                member = members.get_by_email(session, setup.organisation_id, address(source, number))
                if member.status is not MemberStatus.ACTIVE:
                    raise RuntimeError(f"{member.email} is {member.status.value} after the first sync")
                bookings.create(session, member, start=start, end=start + timedelta(hours=8))
        opened = channels.ensure(worker_runtime, connection_id)
        if not opened:
            raise RuntimeError(f"no push channel of the {source} connection could be opened; see the logs")
        print(f"  {source}: {people} members, {opened} push channel(s) open", flush=True)


def removals(factory: sessionmaker[Session], organisation_id: int) -> dict[str, tuple[str, float]]:
    """email -> (event id, commit time in epoch seconds) of each `membership.removed` event."""
    with factory() as session:
        rows = session.execute(
            select(OutboxEvent.id, OutboxEvent.data, OutboxEvent.created_at).where(
                OutboxEvent.organisation_id == organisation_id, OutboxEvent.type == "membership.removed"
            )
        )
        return {data["email"]: (event_id, created.timestamp()) for event_id, data, created in rows}


@dataclass
class Figures:
    source: str
    people: int
    removed: list[float]
    received: list[float]
    missing: int
    seconds: float
    cpu: dict[str, float]

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "people": self.people,
            "missing": self.missing,
            "removed_p50_s": percentile(self.removed, 0.5),
            "removed_p99_s": percentile(self.removed, 0.99),
            "received_p50_s": percentile(self.received, 0.5),
            "received_p99_s": percentile(self.received, 0.99),
            "cpu_ms_per_removal": {name: 1000 * value / self.people for name, value in self.cpu.items()},
        }


def run_source(
    source: str,
    args: argparse.Namespace,
    fakes: FakeProcess,
    receiver: Receiver,
    factory: sessionmaker[Session],
    setup: Setup,
    watch: cpu.Watch,
) -> Figures:
    """Offboard `args.people` people of `source` one after the other; their latencies and the CPU used."""
    receiver.reset()
    sent: dict[str, dict[str, float]] = {}
    began = time.monotonic()
    with watch.phase() as used:
        for number in range(1, args.people + 1):
            due = began + (number - 1) * args.interval
            time.sleep(max(0.0, due - time.monotonic()))
            answer = fakes.ask(op="offboard", source=source, number=number)
            if "error" in answer:
                raise RuntimeError(f"the {source} fake: {answer['error']}")
            sent[address(source, number)] = answer
        complete = receiver.wait_for(args.people, args.timeout, args.timeout, source)
    seconds = time.monotonic() - began
    receipts, _ = receiver.first_receipts()
    by_event = {webhook_id: at for (path, webhook_id), at in receipts.items() if path == HOOK_PATH}
    committed = removals(factory, setup.organisation_id)
    removed, received = [], []
    for email, times in sent.items():
        event = committed.get(email)
        if event is None:
            continue
        removed.append(event[1] - times["wall"])
        if event[0] in by_event:
            received.append(by_event[event[0]] - times["at"])
    missing = args.people - len(received)
    if not complete or missing:
        print(f"  {source}: {missing} of {args.people} webhooks did not arrive", flush=True)
    counts = receiver.counts()
    if counts.get("bad_signatures") or counts.get("unsigned"):
        raise RuntimeError(f"the receiver saw requests without a valid signature: {counts}")
    return Figures(source, args.people, removed, received, missing, seconds, dict(used))


def print_figures(figures: Sequence[Figures], load: str) -> bool:
    """The table; True when every source met the target."""
    met = True
    print("\nOffboarding latency (notification posted -> membership removed / signed webhook received):")
    head = f"  {'source':<8} {'people':>6} {'removed p50':>12} {'p99':>8} {'webhook p50':>12} {'p99':>8}"
    print(f"{head}  target p99 <= 5 s")
    for item in figures:
        p99 = percentile(item.received, 0.99) if item.received else float("inf")
        ok = p99 <= P99_TARGET and not item.missing
        met &= ok
        print(
            f"  {item.source:<8} {item.people:>6} {percentile(item.removed, 0.5):>11.2f}s "
            f"{percentile(item.removed, 0.99):>7.2f}s {percentile(item.received, 0.5):>11.2f}s {p99:>7.2f}s  "
            f"{'met' if ok else 'MISSED'}"
        )
    print("\nCPU milliseconds per removal, by process (machine: 'others' is everything else running):")
    names = [name for name in figures[0].cpu if name != "machine total"]
    print("  " + f"{'':<8}" + "".join(f"{name:>14}" for name in names))
    for item in figures:
        row = "".join(f"{1000 * item.cpu.get(name, 0.0) / item.people:>14.1f}" for name in names)
        print(f"  {item.source:<8}{row}")
    print(f"\nLoad while measuring: {load}")
    return met


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Prepare, offboard each source's people, print. 0 once printed (with --strict, only if the target is
    met), 2 when PostgreSQL or Redis cannot be reached."""
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

    fakes = FakeProcess(
        "directories", "bench.offboarding_fakes", [f"--people={args.people}"], RESULTS / "offboarding-fakes.log"
    )
    server: subprocess.Popen[bytes] | None = None
    receiver_process: subprocess.Popen[bytes] | None = None
    workers: Workers | None = None
    try:
        directories = fakes.info
        graph, google = directories["graph"], directories["google"]
        secret_key = runtime_key()
        base_url = f"http://127.0.0.1:{args.port}"
        receiver_url = f"http://127.0.0.1:{args.receiver_port}"
        endpoints = {
            "DESKBRIDGE_MICROSOFT_AUTHORITY": graph["authority"],
            "DESKBRIDGE_GRAPH_URL": graph["graph_url"],
            "DESKBRIDGE_GOOGLE_API_URL": google["base_url"],
            "DESKBRIDGE_CA_BUNDLE": graph["ca_bundle"],
            "DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS": "true",  # the receiver and the fakes are on loopback
        }
        settings = Settings(
            database_url=database_url,
            redis_url=args.redis,
            secret_key=SecretStr(secret_key),
            public_base_url=base_url,
            allow_private_webhooks=True,
            log_level="WARNING",
            microsoft_authority=graph["authority"],
            graph_url=graph["graph_url"],
            google_api_url=google["base_url"],
            ca_bundle=graph["ca_bundle"],
        )
        components = build(settings)
        factory = make_session_factory(components.engine, listeners=[after_commit.on_commit])
        setup = set_up(factory, directories, receiver_url, args.people)
        secrets_file = RESULTS / "offboarding-secrets.json"
        secrets_file.write_text(json.dumps({HOOK_PATH: setup.secret}))

        receiver_log = RESULTS / "offboarding-receiver.log"
        receiver_process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.webhooks_receiver",
                f"--port={args.receiver_port}",
                f"--secrets={secrets_file}",
                "--verify-every=1",
            ],
            cwd=ROOT,
            stdout=receiver_log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        receiver = Receiver(receiver_url)
        receiver.wait_until_up(receiver_process, receiver_log)

        os.environ.update({"DESKBRIDGE_SECRET_KEY": secret_key, **endpoints})  # the API's, as the workers'
        server_log = RESULTS / "offboarding-api.log"
        server = start_server(database_url, args.redis, args.api_workers, args.port, server_log)
        wait_until_up(server, base_url, server_log)
        worker_env = {
            **os.environ,
            "DESKBRIDGE_DATABASE_URL": database_url,
            "DESKBRIDGE_REDIS_URL": args.redis,
            "DESKBRIDGE_PUBLIC_BASE_URL": base_url,
            "DESKBRIDGE_LOG_LEVEL": "WARNING",
        }
        workers = Workers(worker_env, args.processes, args.threads, RESULTS / "offboarding-workers.log")
        workers.start()
        print(
            f"API {base_url} ({args.api_workers} uvicorn process(es)), workers: dramatiq deskbridge.worker_main "
            f"-p {args.processes} -t {args.threads}, PostgreSQL {args.database}, Redis {args.redis}, receiver "
            f"{receiver_url}{HOOK_PATH} (every signature verified), the fakes in their own process; "
            f"{os.cpu_count()} cores.\nSetup:",
            flush=True,
        )
        first_syncs_and_channels(factory, setup, args.people)
        api_process = server

        def database() -> list[int]:
            try:
                return database_pids(psycopg.conninfo.make_conninfo(args.server, dbname=args.database))
            except psycopg.OperationalError:  # a server out of connections: this sample counts nobody new
                return []

        watch = cpu.Watch(
            {
                "api": lambda: descendants(api_process.pid),
                "workers": workers.pids,
                "postgres": database,
                "redis": lambda: [redis_pid],
                "fakes": lambda: [fakes.process.pid],
                "receiver": lambda: [receiver_process.pid] if receiver_process else [],
                "bench": lambda: [os.getpid()],
            }
        )
        figures = []
        for source in SOURCES:
            print(f"\n{source}: {args.people} people leave, one every {args.interval:g}s...", flush=True)
            figures.append(run_source(source, args, fakes, receiver, factory, setup, watch))
        load = Path("/proc/loadavg").read_text().split()[:3]
        met = print_figures(figures, f"load average {' '.join(load)} on {os.cpu_count()} cores")
        (RESULTS / "offboarding.json").write_text(
            json.dumps({"load": load, "sources": [item.summary() for item in figures]}, indent=2)
        )
        components.engine.dispose()
        return 1 if args.strict and not met else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if workers is not None:
            workers.stop()
        if server is not None:
            stop_server(server)
        stop_process(receiver_process, grace=5)
        with contextlib.suppress(Exception):
            fakes.stop()


def runtime_key() -> str:
    """The key every process of the run shares (credentials are encrypted with it)."""
    from store.secret_box import SecretBox

    return SecretBox.generate_key()


if __name__ == "__main__":
    raise SystemExit(main())

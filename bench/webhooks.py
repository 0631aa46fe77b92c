"""Webhook delivery benchmark: `make bench-webhooks` (`python -m bench.webhooks --help` for the knobs).

Builds its own PostgreSQL database (drops and migrates it) and flushes its own Redis database, makes
an organisation with 200 desks and 2 webhook endpoints (subscribed to `desk.updated`) pointing at a
fast loopback receiver in its own process (`bench.webhooks_receiver`), and starts production workers:
`dramatiq deskbridge.worker_main -p 2 -t 4` as docker-compose.yml runs them, settings from
DESKBRIDGE_* as in production, private targets allowed for the loopback receiver, no scheduler.
Events are real outbox events: `store.services.desks.update` calls committed through sessions whose
commits feed the relay (`worker.after_commit.on_commit`), as the API's do. Then, in one run:

1. throughput: 50,000 events committed as fast as the producer can (200 per transaction), fanned out
   to the 2 endpoints = 100,000 deliveries; deliveries/s from the first commit to the receipt that
   completed the set, and a check that every (endpoint, event) arrived at least once;
2. latency: a steady 100 events/s (one per transaction) for 25 s; commit-to-receipt p50/p99. The
   producer takes the commit time right after each commit, the receiver the receipt time: both
   `time.monotonic()`, one clock for every process of the machine. Each delivery's time is split by what
   the store wrote down (`timeline`): commit to the relay's pass, from there to the receipt, and from the
   receipt to the success being recorded;
3. the ceilings, workers stopped. The durable ceiling: as many bare processes as the workers have
   (`bench.webhooks_ceiling.durable_share`) doing what the promise takes and no more, on the same
   database, receiver and cores: for each batch of 200 events, the deliveries inserted and committed, posted
   over raw asyncio streams with keep-alive (as many connections as the workers have threads), then marked
   delivered with their attempts logged in one transaction. Beside it, the raw ceiling of earlier runs (a
   bare event loop posting the same signed payloads, no store: not the limit of a durable service, so
   its share is printed for reference only), and the same loop through the HTTP client the workers use
   (`worker.webhooks.sender.Poster`: aiohttp), so that what the client itself costs shows; and, for
   reference, the same with `httpx.AsyncClient`.

Targets: >= 3,000 deliveries/s and >= 50% of the durable ceiling; p99 commit-to-receipt <= 100 ms at 100
events/s. Beside the figures, the CPU milliseconds each side used per delivery in each phase (workers or
the ceiling's processes, PostgreSQL, Redis, receiver, this process, which plays the API's part as the
producer, and everything else on the machine), and the load average: on a shared machine CPU per
delivery is the figure to compare. `--phases` runs some of the phases only.

Every phase has a time limit and stops by itself; a throughput phase cut short has the rest of its
queue dropped (workers restarted on a flushed Redis) so that it does not weigh on the latency phase.
The receiver and workers are stopped on exit, also on Ctrl-C. `--profile [throughput|latency]` records the
workers with py-spy during that phase (bench/results/webhooks-profile.txt, collapsed stacks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench import cpu
from bench.api import database_pids, sqlalchemy_url
from bench.webhooks_ceiling import (
    DurableShare,
    Post,
    Posted,
    Target,
    durable_share,
    post_httpx,
    post_raw,
    post_worker_client,
)
from deskbridge.settings import Settings
from deskbridge.wiring import build
from store.db import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import Delivery, DeliveryAttempt, OutboxEvent
from store.secret_box import SecretBox
from store.services import desks, organisations, webhook_endpoints
from worker import after_commit, runtime
from worker.webhooks.delivery import LANES
from worker.webhooks.sender import event_payload

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DELIVERIES_TARGET = 3000.0  # deliveries/s
CEILING_TARGET = 0.5  # of the durable ceiling's deliveries/s
P99_TARGET_MS = 100.0
DESKS = 200
EVENT_TYPE = "desk.updated"
PATHS = ("/hooks/a", "/hooks/b")
PHASES = ("throughput", "latency", "ceiling")
# Events a batch of the durable ceiling writes, posts and marks delivered (the relay's jobs carry 200).
DURABLE_BATCH = 200
# Batches each durable ceiling process has in flight at once: one writes or marks while another posts.
DURABLE_BATCHES_AT_ONCE = 2
IDLE_SECONDS = 5.0  # measured with nothing to do, before the latency phase


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL URL")
    parser.add_argument("--database", default="deskbridge_bench_webhooks", help="the database to (re)create there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="Redis URL (this database is flushed)")
    parser.add_argument("--port", type=int, default=8091, help="the receiver's port on 127.0.0.1")
    parser.add_argument("--processes", type=int, default=2, help="dramatiq worker processes (-p)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process (-t)")
    parser.add_argument("--events", type=int, default=50_000, help="events of the throughput phase")
    parser.add_argument("--batch", type=int, default=DESKS, help=f"events per transaction there (<= {DESKS})")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s of the latency phase")
    parser.add_argument("--steady", type=float, default=25.0, help="seconds of the latency phase")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each phase may take at most")
    parser.add_argument("--stall", type=float, default=60.0, help="give a phase up after this long without progress")
    parser.add_argument("--connections", type=int, help="the ceiling's connections (default: processes x threads)")
    parser.add_argument("--reference-posts", type=int, default=20_000, help="posts of the httpx reference (0: none)")
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"which phases to run, comma-separated (of {','.join(PHASES)})"
    )
    parser.add_argument(
        "--profile", nargs="?", const="throughput", choices=PHASES[:2], help="py-spy the workers during this phase"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= DESKS:
        parser.error(f"--batch must be between 1 and {DESKS}")
    args.phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases {sorted(unknown)}; expected some of {PHASES}")
    return args


# --- database and organisation ---------------------------------------------------------------------


def prepare_database(server_url: str, database: str) -> str:
    """Drop and create `database`, migrate it; its SQLAlchemy URL."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = sqlalchemy_url(psycopg.conninfo.make_conninfo(server_url, dbname=database))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@dataclass(frozen=True)
class Organisation:
    """The bench organisation: its id, its desks, its endpoints' signing secrets and ids by receiver path."""

    id: int
    desk_ids: list[int]
    secrets: dict[str, str]
    endpoint_ids: dict[str, int]


def create_organisation(factory: sessionmaker[Session], box: SecretBox, base_url: str) -> Organisation:
    """An organisation with DESKS desks and one endpoint per receiver path, all through store services."""
    with transaction(factory) as session:
        organisation = organisations.create(session, "Webhooks bench", slug="webhooks-bench")
        desk_ids = [desks.create(session, organisation.id, f"D{n:03d}", building="HQ").id for n in range(DESKS)]
    secrets, endpoint_ids = {}, {}
    with transaction(factory) as session:
        for path in PATHS:
            endpoint, secret = webhook_endpoints.create_endpoint(
                session, organisation.id, base_url + path, box=box, event_types=[EVENT_TYPE], description=path
            )
            secrets[path], endpoint_ids[path] = secret, endpoint.id
    return Organisation(organisation.id, desk_ids, secrets, endpoint_ids)


class CommitClock:
    """A session listener: the monotonic time each event's transaction committed, by event id."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, events: list[OutboxEvent]) -> None:
        now = time.monotonic()
        with self._lock:
            for event in events:
                self.at[event.id] = now

    def take(self) -> dict[str, float]:
        """The commits heard since the last call."""
        with self._lock:
            taken, self.at = self.at, {}
        return taken


# --- processes ------------------------------------------------------------------------------------


def start_receiver(port: int, secrets_file: Path, log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.webhooks_receiver", f"--port={port}", f"--secrets={secrets_file}"]
    log = log_path.open("wb")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class Workers:
    """`dramatiq deskbridge.worker_main -p P -t T` in its own process group, started and stopped on demand."""

    def __init__(self, env: dict[str, str], processes: int, threads: int, log_path: Path) -> None:
        self.env, self.processes, self.threads, self.log_path = env, processes, threads, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the workers and wait until every process logged that it is ready."""
        dramatiq = shutil.which("dramatiq", path=str(Path(sys.executable).parent)) or "dramatiq"
        command = [dramatiq, "deskbridge.worker_main", "-p", str(self.processes), "-t", str(self.threads)]
        log = self.log_path.open("wb")
        self.process = process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"dramatiq exited with {process.returncode}:\n{self.log_path.read_text()[-3000:]}")
            if self.log_path.read_text().count("is ready for action") >= self.processes:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the workers were not ready within {timeout:.0f}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def pids(self) -> list[int]:
        """The dramatiq master and its worker processes."""
        return descendants(self.process.pid) if self.process is not None else []


def stop_process(process: subprocess.Popen[bytes] | None, grace: float = 20.0) -> None:
    """SIGTERM to the process (dramatiq stops its workers itself), then SIGKILL to its group if it lingers."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of its group is left (forked workers)
    process.wait()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found = [pid]
    for child in cpu.children(pid):
        found.extend(descendants(child))
    return found


# --- the receiver ---------------------------------------------------------------------------------


class Receiver:
    """Talks to the receiver's control routes."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60.0, trust_env=False)

    def wait_until_up(self, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the receiver exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                self.counts()
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the receiver did not answer within {timeout:.0f}s")

    def counts(self) -> dict[str, int]:
        answer: dict[str, int] = self.client.get("/_count").json()
        return answer

    def reset(self) -> None:
        self.client.post("/_reset").raise_for_status()

    def first_receipts(self) -> tuple[dict[tuple[str, str], float], int]:
        """The first receipt time of each (path, webhook-id), and how many requests there were in all."""
        first: dict[tuple[str, str], float] = {}
        total = 0
        for line in self.client.get("/_dump").text.splitlines():
            at, path, webhook_id = line.split(" ")
            total += 1
            key = (path, webhook_id)
            seen = first.get(key)
            if seen is None or float(at) < seen:
                first[key] = float(at)
        return first, total

    def wait_for(
        self, expected: int, timeout: float, stall: float, label: str, on_poll: Callable[[], None] | None = None
    ) -> bool:
        """Until `expected` distinct deliveries arrived (True), or the time limit or a stall (False).

        `on_poll` is called on every poll (a few times a second).
        """
        started = last_change = last_print = time.monotonic()
        seen = -1
        while True:
            if on_poll is not None:
                on_poll()
            distinct = self.counts()["distinct"]
            now = time.monotonic()
            if distinct >= expected:
                return True
            if distinct != seen:
                seen, last_change = distinct, now
            if now - started > timeout or now - last_change > stall:
                print(f"  {label}: gave up with {distinct:,} of {expected:,} after {now - started:.0f}s", flush=True)
                return False
            if now - last_print >= 5:
                print(f"  {label}: {distinct:,} of {expected:,} received", flush=True)
                last_print = now
            time.sleep(0.2)


# --- CPU ------------------------------------------------------------------------------------------


@dataclass
class CpuWatch:
    """CPU seconds used by each side of the run between `start` and `stop`."""

    workers: Callable[[], list[int]]
    receiver: int
    database: Callable[[], list[int]]
    redis: int | None
    used: dict[str, float] = field(default_factory=dict)
    _before: dict[str, dict[int, float]] = field(default_factory=dict)
    _latest: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _sampled_at: float = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        groups = {
            "workers": self.workers(),
            "receiver": [self.receiver],
            "postgres": self.database(),
            "redis": [self.redis] if self.redis else [],
            "bench": [os.getpid()],
        }
        return {name: {pid: cpu.process_seconds(pid) for pid in pids} for name, pids in groups.items()}

    def start(self) -> None:
        self._before = self._read()
        self._latest = {name: dict(pids) for name, pids in self._before.items()}
        self._machine = cpu.machine_seconds()

    def sample(self, every: float = 2.0) -> None:
        """Read again (at most once per `every` seconds), so processes that end before `stop` still count:
        the pool recycles database connections, and their backends with them."""
        if time.monotonic() - self._sampled_at < every:
            return
        self._sampled_at = time.monotonic()
        try:
            read = self._read()
        except psycopg.OperationalError:  # a busy server out of connections: the next sample counts
            return
        for name, pids in read.items():
            latest = self._latest.setdefault(name, {})
            for pid, seconds in pids.items():
                latest[pid] = max(seconds, latest.get(pid, 0.0))

    def stop(self, workers_extra: float = 0.0) -> dict[str, float]:
        """The CPU seconds used since `start`; `workers_extra`: seconds of pipeline processes measured
        by themselves (the durable ceiling's), counted as the workers'."""
        self.sample(every=0.0)
        busy, total = cpu.machine_seconds()
        self.used = {
            name: sum(max(0.0, s - self._before[name].get(pid, 0.0)) for pid, s in self._latest[name].items())
            for name in self._latest
        }
        self.used["workers"] += workers_extra
        self.used["machine busy"] = busy - self._machine[0]
        self.used["machine total"] = total - self._machine[1]
        ours = sum(v for k, v in self.used.items() if not k.startswith("machine"))
        self.used["others"] = max(0.0, self.used["machine busy"] - ours)
        return self.used


# --- phases ---------------------------------------------------------------------------------------


@dataclass
class Delivered:
    """One phase of deskbridge deliveries: what was committed, what arrived, and how fast."""

    events: int
    expected: int
    distinct: int
    requests: int
    complete: bool
    produce_seconds: float
    seconds: float  # first commit to the receipt that completed the set (or the last one)
    latencies_ms: list[float]
    per_endpoint: dict[str, int]
    missing: int
    unknown: int
    signatures: dict[str, int]
    cpu: dict[str, float] = field(default_factory=dict)
    receipts: dict[tuple[str, str], float] = field(default_factory=dict)  # first receipt by (path, event id)
    commits: dict[str, float] = field(default_factory=dict)  # commit time by event id

    @property
    def per_second(self) -> float:
        return self.distinct / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        return percentile(self.latencies_ms, share)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def collect(
    receiver: Receiver, commits: dict[str, float], complete: bool, produce_seconds: float, cpu_used: dict[str, float]
) -> Delivered:
    """Match what the receiver got with what was committed."""
    first, requests = receiver.first_receipts()
    counts = receiver.counts()
    latencies = []
    per_endpoint = dict.fromkeys(PATHS, 0)
    unknown = 0
    receipts = {}
    for (path, webhook_id), received in first.items():
        committed = commits.get(webhook_id)
        if committed is None or path not in per_endpoint:
            unknown += 1
            continue
        per_endpoint[path] += 1
        latencies.append(1000 * (received - committed))
        receipts[path, webhook_id] = received
    expected = len(commits) * len(PATHS)
    distinct = sum(per_endpoint.values())
    start = min(commits.values()) if commits else 0.0
    end = max((first[key] for key in first if key[1] in commits), default=start)
    return Delivered(
        events=len(commits),
        expected=expected,
        distinct=distinct,
        requests=requests,
        complete=complete and distinct == expected,
        produce_seconds=produce_seconds,
        seconds=end - start,
        latencies_ms=latencies,
        per_endpoint=per_endpoint,
        missing=expected - distinct,
        unknown=unknown,
        signatures={key: counts[key] for key in ("verified", "bad_signatures", "unsigned")},
        cpu=cpu_used,
        receipts=receipts,
        commits=commits,
    )


def timeline(factory: sessionmaker[Session], organisation: Organisation, phase: Delivered) -> dict[str, list[float]]:
    """Where each delivery's commit-to-receipt time went, in ms, from what the store wrote down: commit to
    the relay taking the event (`relayed_at`, the relay's clock as it began), from there to the receipt,
    and from the receipt to the success being written (`attempted_at`, once the job's posts are done).

    The store's times are wall-clock (UTC), the bench's monotonic: one offset, read here, joins them.
    """
    offset = time.time() - time.monotonic()
    path_of = {endpoint_id: path for path, endpoint_id in organisation.endpoint_ids.items()}
    rows: list[Any] = []
    event_ids = list(phase.commits)
    with factory() as session:
        for start in range(0, len(event_ids), 1000):
            rows += session.execute(
                select(OutboxEvent.id, OutboxEvent.relayed_at, Delivery.endpoint_id, DeliveryAttempt.attempted_at)
                .join(Delivery, Delivery.event_id == OutboxEvent.id)
                .join(DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id)
                .where(OutboxEvent.id.in_(event_ids[start : start + 1000]), DeliveryAttempt.succeeded.is_(True))
            ).all()
    segments: dict[str, list[float]] = {"commit -> relay": [], "relay -> receipt": [], "receipt -> recorded": []}
    for event_id, relayed_at, endpoint_id, attempted_at in rows:
        received = phase.receipts.get((path_of[endpoint_id], event_id))
        if received is None or relayed_at is None:
            continue
        relayed = relayed_at.timestamp() - offset
        segments["commit -> relay"].append(1000 * (relayed - phase.commits[event_id]))
        segments["relay -> receipt"].append(1000 * (received - relayed))
        segments["receipt -> recorded"].append(1000 * (attempted_at.timestamp() - offset - received))
    return segments


def produce_burst(factory: sessionmaker[Session], organisation: Organisation, events: int, batch: int) -> float:
    """Commit `events` desk updates, `batch` per transaction, as fast as possible; the seconds it took."""
    started = time.monotonic()
    made = round_number = 0
    while made < events:
        size = min(batch, events - made)
        with transaction(factory) as session:
            for desk in desks.list_all(session, organisation.id)[:size]:
                desks.update(session, desk, floor=f"b{round_number}")
        made += size
        round_number += 1
    return time.monotonic() - started


def produce_steady(
    factory: sessionmaker[Session], organisation: Organisation, rate: float, seconds: float
) -> tuple[float, float]:
    """One desk update per transaction at `rate` per second for `seconds`; (seconds taken, worst lateness)."""
    started = time.monotonic()
    worst = 0.0
    for number in range(round(rate * seconds)):
        due = started + number / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            worst = max(worst, -wait)
        with transaction(factory) as session:
            desk = desks.get(session, organisation.id, organisation.desk_ids[number % len(organisation.desk_ids)])
            desks.update(session, desk, floor=f"s{number}")
    return time.monotonic() - started, worst


def ceiling_posts(factory: sessionmaker[Session], organisation: Organisation, events: int) -> list[Post]:
    """The first `events` desk.updated events, each for every endpoint: the same payloads the workers sent."""
    with factory() as session:
        rows = session.execute(
            select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.created_at, OutboxEvent.data)
            .where(OutboxEvent.organisation_id == organisation.id, OutboxEvent.type == EVENT_TYPE)
            .order_by(OutboxEvent.seq)
            .limit(events)
        ).all()
    return [
        Post(path, organisation.secrets[path], event_payload(event_id, type_, created_at, data))
        for event_id, type_, created_at, data in rows
        for path in PATHS
    ]


def durable_ceiling(
    server_url: str,
    database: str,
    organisation: Organisation,
    port: int,
    processes: int,
    connections: int,
    events: int,
    watch: CpuWatch,
) -> tuple[Posted, dict[str, float]]:
    """The durable ceiling: `processes` bare processes delivering the first `events` events to every
    endpoint as the minimal durable pipeline would (bench.webhooks_ceiling.durable_share): each batch's
    deliveries inserted and committed, posted over raw keep-alive connections, then marked delivered
    with their attempts logged. Starts from empty delivery tables (the phases before filled them)."""
    url = psycopg.conninfo.make_conninfo(server_url, dbname=database)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("TRUNCATE deliveries, delivery_attempts")
        seqs = [
            seq
            for (seq,) in connection.execute(
                "SELECT seq FROM outbox_events WHERE organisation_id = %s AND type = %s ORDER BY seq LIMIT %s",
                (organisation.id, EVENT_TYPE, events),
            )
        ]
    ranges = [(seqs[at], seqs[min(at + DURABLE_BATCH, len(seqs)) - 1]) for at in range(0, len(seqs), DURABLE_BATCH)]
    targets = [Target(organisation.endpoint_ids[path], path, organisation.secrets[path]) for path in PATHS]
    context = multiprocessing.get_context("spawn")  # nothing of this process's threads and pools
    go, release, results = context.Barrier(processes + 1), context.Event(), context.Queue()
    per_process = max(1, connections // processes)
    shares = []
    for index in range(processes):
        share_args: tuple[object, ...] = (url, "127.0.0.1", port, organisation.id, EVENT_TYPE, targets)
        share_args += (ranges[index::processes], per_process, DURABLE_BATCHES_AT_ONCE, go, release, results)
        shares.append(context.Process(target=durable_share, args=share_args))
    for share in shares:
        share.start()
    try:
        watch.start()
        go.wait(timeout=120)  # the processes have imported what they need: they start together
        done: list[DurableShare] = []
        while len(done) < processes:
            done.append(results.get(timeout=600))
            watch.sample()
        cpu_used = watch.stop(workers_extra=sum(share.cpu_seconds for share in done))
    finally:
        release.set()
        for share in shares:
            share.join(timeout=30)
            if share.is_alive():
                share.kill()
    seconds = max(share.ended for share in done) - min(share.started for share in done)
    posted = Posted(
        "durable: PostgreSQL + raw asyncio streams",
        sum(share.ok for share in done),
        sum(share.failed for share in done),
        seconds,
    )
    return posted, cpu_used


def delivery_states(factory: sessionmaker[Session]) -> dict[str, int]:
    """Deliveries by status, and attempts in all (more attempts than deliveries means retries)."""
    with factory() as session:
        states = {
            str(status): count
            for status, count in session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
        }
        states["attempts"] = session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0
    return states


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the dramatiq master and its worker processes until `stop_profiler` (only samples holding
    the GIL: where the workers' Python CPU time goes)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("  py-spy is missing: no profile", flush=True)
        return None
    command = [
        py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "100",
        "--format", "raw", "--output", str(output), "--nonblocking", "--gil",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to py-spy: it writes what it recorded and exits."""
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


# --- report ---------------------------------------------------------------------------------------


def mark(met: bool) -> str:
    return "met" if met else "MISSED"


def print_table(burst: Delivered | None, steady: Delivered | None, rate: float, ceilings: Ceilings) -> bool:
    """The figures and targets side by side (`rate`: the latency phase's events/s); whether every target
    of the phases that ran was met."""
    durable = ceilings.durable[0] if ceilings.durable else None
    raw = ceilings.raw[0] if ceilings.raw else None
    client = ceilings.client[0] if ceilings.client else None
    rows: list[tuple[str, str, str, str]] = []
    met = True

    def share(part: float, whole: Posted | None) -> str:
        return f"{part / whole.per_second:.0%}" if whole and whole.per_second else "-"

    if burst is not None:
        rate_met = burst.complete and burst.per_second >= DELIVERIES_TARGET
        ratio = burst.per_second / durable.per_second if durable and durable.per_second else 0.0
        ratio_met = burst.complete and ratio >= CEILING_TARGET
        met = met and rate_met and (ratio_met or durable is None)
        rows += [
            (
                f"deskbridge deliveries/s ({burst.expected:,} deliveries)"
                if burst.complete
                else f"deskbridge deliveries/s (INCOMPLETE: {burst.distinct:,} of {burst.expected:,})",
                f"{burst.per_second:,.0f}",
                f">= {DELIVERIES_TARGET:,.0f}",
                mark(rate_met),
            ),
            ("deskbridge / durable ceiling", share(burst.per_second, durable), f">= {CEILING_TARGET:.0%}",
             mark(ratio_met) if durable else ""),
            (
                "the same by CPU per delivery (what a loaded machine cannot skew)",
                f"{cpu_per_delivery(ceilings.durable) / cpu_per_delivery((burst, burst.cpu)):.0%}"
                if ceilings.durable and burst.distinct
                else "-",
                "",
                "",
            ),
            ("deskbridge / raw ceiling (no store)", share(burst.per_second, raw), "", ""),
            ("deskbridge / worker's client alone", share(burst.per_second, client), "", ""),
        ]  # fmt: skip
    for posted in (durable, raw, client):
        if posted is not None:
            rows.append((f"ceiling deliveries/s ({posted.client})", f"{posted.per_second:,.0f}", "", ""))
    if durable is not None and raw is not None:
        rows.append(("durable ceiling / raw ceiling", share(durable.per_second, raw), "", ""))
    if steady is not None:
        made = steady.events / steady.produce_seconds if steady.produce_seconds else 0.0
        at = f"at {rate:g} events/s" + (f" (made {made:.0f}/s)" if made < 0.95 * rate else "")
        p99 = steady.percentile(0.99)
        p99_met = steady.complete and p99 <= P99_TARGET_MS
        met = met and p99_met
        rows += [
            (f"commit-to-receipt p50 {at}", f"{steady.percentile(0.50):,.1f} ms", "", ""),
            (f"commit-to-receipt p99 {at}", f"{p99:,.1f} ms", f"<= {P99_TARGET_MS:.0f} ms", mark(p99_met)),
        ]
    if ceilings.reference is not None and raw is not None:
        reference = ceilings.reference[0]
        rows.append(
            (f"reference deliveries/s ({reference.client})", f"{reference.per_second:,.0f}",
             f"{share(reference.per_second, raw)} of raw", "")
        )  # fmt: skip
    width = max(len(row[0]) for row in rows) if rows else 10
    header = f"{'figure':{width}}  {'measured':>10}  {'target':>14}  met"
    print()
    print(header)
    print("-" * len(header))
    for name, value, target, verdict in rows:
        print(f"{name:{width}}  {value:>10}  {target:>14}  {verdict}")
    print()
    if burst is not None:
        print(
            f"Throughput: {burst.events:,} events committed in {burst.produce_seconds:.1f}s "
            f"({burst.events / max(burst.produce_seconds, 1e-9):,.0f} events/s); {burst.distinct:,} of "
            f"{burst.expected:,} deliveries arrived in {burst.seconds:.1f}s after the first commit "
            f"({', '.join(f'{path}: {count:,}' for path, count in burst.per_endpoint.items())} distinct webhook-ids; "
            f"{burst.requests - burst.distinct - burst.unknown:,} duplicates, {burst.missing:,} missing, "
            f"{burst.unknown:,} unknown). Commit-to-receipt under this burst: p50 {burst.percentile(0.5):,.0f} ms, "
            f"p99 {burst.percentile(0.99):,.0f} ms."
        )
    if steady is not None:
        print(
            f"Latency: {steady.events:,} events over {steady.produce_seconds:.1f}s, {steady.distinct:,} of "
            f"{steady.expected:,} deliveries arrived ({steady.missing:,} missing); "
            f"max {max(steady.latencies_ms or [0]):.0f} ms."
        )
    phases = [phase for phase in (burst, steady) if phase is not None]
    for phase in phases:
        signatures = phase.signatures
        if signatures["bad_signatures"] or signatures["unsigned"]:
            print(f"SIGNATURES: {signatures['bad_signatures']} bad, {signatures['unsigned']} without webhook-id!")
    if phases:
        print(
            f"Signatures verified on a sample (1 in 100) with standardwebhooks: "
            f"{sum(phase.signatures['verified'] for phase in phases):,} good, "
            f"{sum(phase.signatures['bad_signatures'] for phase in phases)} bad."
        )
    for name, (posted, _) in ceilings.measured().items():
        print(f"{name}: {posted.ok:,} delivered in {posted.seconds:.1f}s ({posted.failed} failed).")
    return met


PIPELINE_SIDES = ("workers", "postgres", "redis", "receiver")  # what a delivery costs, producer aside


def cpu_per_delivery(measured: tuple[Posted | Delivered, dict[str, float]]) -> float:
    """CPU seconds per delivery of the pipeline's sides (workers or the ceiling's processes, PostgreSQL,
    Redis, the receiver)."""
    done, used = measured
    count = done.ok if isinstance(done, Posted) else done.distinct
    return sum(used.get(side, 0.0) for side in PIPELINE_SIDES) / max(1, count)


def print_segments(segments: dict[str, list[float]]) -> None:
    """Where the latency phase's commit-to-receipt time went (see `timeline`)."""
    print()
    print(f"{'latency phase, ms':22} {'p50':>8} {'p90':>8} {'p99':>8}")
    for name, values in segments.items():
        print(f"{name:22} " + " ".join(f"{percentile(values, share):8.1f}" for share in (0.5, 0.9, 0.99)))


def print_cpu(phases: dict[str, tuple[dict[str, float], int]]) -> None:
    """CPU milliseconds per delivery by side, for each phase."""
    sides = ["workers", "postgres", "redis", "receiver", "bench", "others"]
    header = f"{'CPU ms per delivery':28} " + " ".join(f"{side:>9}" for side in sides) + f" {'cores busy':>10}"
    print()
    print(header)
    print("-" * len(header))
    for name, (used, deliveries) in phases.items():
        per = [1000 * used.get(side, 0.0) / max(1, deliveries) for side in sides]
        seconds = used["machine total"] / max(1, os.cpu_count() or 1)
        busy = used["machine busy"] / seconds if seconds else 0.0
        print(f"{name:28} " + " ".join(f"{value:9.3f}" for value in per) + f" {busy:10.2f}")
    print(
        "bench: this process (the producer; the ceiling's and the worker's client). others: everything else on "
        "the machine (PostgreSQL's background writers among them)."
    )


# --- main -----------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Prepare, run the three phases, print. Returns 0 once the figures are printed (with --strict, only
    if every target is met), 2 when PostgreSQL or Redis cannot be reached."""
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (in the background)
        signal.signal(signum, _interrupt)
    RESULTS.mkdir(parents=True, exist_ok=True)
    connections = args.connections or args.processes * args.threads
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

    secret_key = SecretBox.generate_key()
    settings = Settings(
        database_url=database_url,
        redis_url=args.redis,
        secret_key=SecretStr(secret_key),
        allow_private_webhooks=True,
        log_level="WARNING",
    )
    components = build(settings)
    clock = CommitClock()
    # The producer's sessions: as the API's (the relay right after each commit), and the commit clock first.
    factory = make_session_factory(components.engine, listeners=[clock, after_commit.on_commit])
    quiet = make_session_factory(components.engine)  # the ceiling's own events: nobody relays them
    base_url = f"http://127.0.0.1:{args.port}"
    organisation = create_organisation(factory, runtime.current().secret_box, base_url)
    clock.take()
    secrets_file = RESULTS / "webhooks-secrets.json"
    secrets_file.write_text(json.dumps(organisation.secrets))
    worker_env = {
        **os.environ,
        "DESKBRIDGE_DATABASE_URL": database_url,
        "DESKBRIDGE_REDIS_URL": args.redis,
        "DESKBRIDGE_SECRET_KEY": secret_key,
        "DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS": "true",
        "DESKBRIDGE_LOG_LEVEL": "WARNING",
    }
    print(
        f"Workers: dramatiq deskbridge.worker_main -p {args.processes} -t {args.threads} on {os.cpu_count()} cores, "
        f"as docker-compose.yml runs them (a process per core for the GIL, threads to overlap the database, "
        f"Redis and HTTP waits; each job posts up to {LANES} requests at once in as many of its endpoint's "
        f"{len(PATHS)} x 10 slots); no scheduler. PostgreSQL "
        f"{args.server.rsplit('@', 1)[-1].rsplit('/', 1)[0]}/{args.database}, Redis {args.redis}, receiver "
        f"{base_url}/hooks/{{a,b}} (uvloop + httptools, one process).",
        flush=True,
    )

    receiver_log, workers_log = RESULTS / "webhooks-receiver.log", RESULTS / "webhooks-workers.log"
    receiver_process = None
    workers = Workers(worker_env, args.processes, args.threads, workers_log)
    receiver = Receiver(base_url)
    burst: Delivered | None = None
    steady: Delivered | None = None
    idle: dict[str, float] = {}
    segments: dict[str, list[float]] = {}
    ceilings = Ceilings()
    profiler: subprocess.Popen[bytes] | None = None
    load = os.getloadavg()
    try:
        receiver_process = start_receiver(args.port, secrets_file, receiver_log)
        receiver.wait_until_up(receiver_process, receiver_log)
        workers.start()

        def database() -> list[int]:
            return database_pids(psycopg.conninfo.make_conninfo(args.server, dbname=args.database))

        watch = CpuWatch(workers.pids, receiver_process.pid, database, redis_pid)

        if "throughput" in args.phases:
            receiver.reset()
            print(f"\n1. throughput: {args.events:,} events, {args.batch} per transaction...", flush=True)
            if args.profile == "throughput":
                profiler = start_profiler(workers.pids()[0], RESULTS / "webhooks-profile.txt")
            watch.start()
            produce_seconds = produce_burst(factory, organisation, args.events, args.batch)
            print(f"  committed in {produce_seconds:.1f}s", flush=True)
            complete = receiver.wait_for(args.events * len(PATHS), args.timeout, args.stall, "throughput", watch.sample)
            used = watch.stop()
            burst = collect(receiver, clock.take(), complete, produce_seconds, used)
            profiler = _profiled(profiler)
            print(f"  {burst.per_second:,.0f} deliveries/s; database: {delivery_states(factory)}", flush=True)
            if not complete:
                # What is left of the burst must not weigh on the latency phase: drop it from the queue
                # (no scheduler runs here to sweep it up again).
                print("  dropping the rest of the burst: workers restarted on a flushed Redis", flush=True)
                workers.stop()
                redis_client.flushdb()
                workers.start()

        if "latency" in args.phases:
            # What the workers cost doing nothing (Dramatiq's consumers polling their queues, heartbeats):
            # at a low rate a share of each delivery's CPU is this, spread over the deliveries of a second.
            watch.start()
            time.sleep(IDLE_SECONDS)
            idle = {side: seconds / IDLE_SECONDS for side, seconds in watch.stop().items()}
            receiver.reset()
            print(f"\n2. latency: {args.rate:g} events/s for {args.steady:g}s...", flush=True)
            if args.profile == "latency":
                profiler = start_profiler(workers.pids()[0], RESULTS / "webhooks-profile.txt")
            watch.start()
            steady_seconds, worst = produce_steady(factory, organisation, args.rate, args.steady)
            if worst > 0.05:
                print(f"  the producer fell up to {worst * 1000:.0f} ms behind its schedule", flush=True)
            complete = receiver.wait_for(
                round(args.rate * args.steady) * len(PATHS), min(args.timeout, 120), args.stall, "latency", watch.sample
            )
            used = watch.stop()
            steady = collect(receiver, clock.take(), complete, steady_seconds, used)
            profiler = _profiled(profiler)
            segments = timeline(factory, organisation, steady)
            print(f"  p50 {steady.percentile(0.5):.1f} ms, p99 {steady.percentile(0.99):.1f} ms", flush=True)

        workers.stop()
        if "ceiling" in args.phases:
            ceilings = run_ceilings(args, factory, organisation, receiver, watch, base_url, quiet)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the workers and the receiver", file=sys.stderr)
        return 130
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        workers.stop()
        stop_process(receiver_process, grace=5)
        receiver.client.close()
        components.engine.dispose()

    print(
        f"\nLoad average (1, 5, 15 min) at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())} ({os.cpu_count()} cores)."
    )
    all_met = print_table(burst, steady, args.rate, ceilings)
    if segments:
        print_segments(segments)
    cpu_rows: dict[str, tuple[dict[str, float], int]] = {}
    if burst is not None:
        cpu_rows["1. throughput"] = (burst.cpu, burst.distinct)
    if steady is not None:
        cpu_rows[f"2. latency ({args.rate:g}/s)"] = (steady.cpu, steady.distinct)
    for name, (posted, used) in ceilings.measured().items():
        cpu_rows[f"3. {name}"] = (used, posted.ok)
    print_cpu(cpu_rows)
    if idle and steady is not None and steady.produce_seconds:
        at = steady.distinct / steady.produce_seconds
        print(
            f"Idle, the workers used {1000 * idle['workers']:.1f} ms of CPU a second, PostgreSQL "
            f"{1000 * idle['postgres']:.1f}, Redis {1000 * idle['redis']:.1f}: at {at:.0f} deliveries/s that is "
            f"{1000 * idle['workers'] / max(at, 1e-9):.3f} ms of the workers' figure of each delivery in phase 2."
        )
    record = {
        "when": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "load": {"start": load, "end": os.getloadavg()},
        "processes": args.processes,
        "threads": args.threads,
        "connections": connections,
        "throughput": _summary(burst) if burst else None,
        "latency": _summary(steady) if steady else None,
        "idle_cpu_per_second": idle,
        "latency_segments_ms": {
            name: {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99)} for name, values in segments.items()
        },
        **{
            name.replace(" ", "_").replace("'", ""): asdict(posted) | {"per_second": posted.per_second, "cpu": used}
            for name, (posted, used) in ceilings.measured().items()
        },
        "targets_met": all_met,
    }
    saved = RESULTS / f"webhooks-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    saved.write_text(json.dumps(record, indent=2))
    print(f"Figures saved to {saved.relative_to(ROOT)}.")
    return 1 if args.strict and not all_met else 0


def _profiled(profiler: subprocess.Popen[bytes] | None) -> subprocess.Popen[bytes] | None:
    """Stop the profiler if one runs; None (no profiler runs any more)."""
    if profiler is not None:
        stop_profiler(profiler)
        print(f"  profile in {(RESULTS / 'webhooks-profile.txt').relative_to(ROOT)}", flush=True)
    return None


@dataclass
class Ceilings:
    """The ceiling phase's figures, each with the CPU it used: the durable ceiling, the raw one, the
    worker's client, and the httpx reference."""

    durable: tuple[Posted, dict[str, float]] | None = None
    raw: tuple[Posted, dict[str, float]] | None = None
    client: tuple[Posted, dict[str, float]] | None = None
    reference: tuple[Posted, dict[str, float]] | None = None

    def measured(self) -> dict[str, tuple[Posted, dict[str, float]]]:
        """The figures measured, by name."""
        named = {
            "durable ceiling": self.durable,
            "raw ceiling": self.raw,
            "worker's client": self.client,
            "httpx reference": self.reference,
        }
        return {name: figure for name, figure in named.items() if figure is not None}


def run_ceilings(
    args: argparse.Namespace,
    factory: sessionmaker[Session],
    organisation: Organisation,
    receiver: Receiver,
    watch: CpuWatch,
    base_url: str,
    quiet: sessionmaker[Session],
) -> Ceilings:
    """The ceiling phase, workers stopped: the durable ceiling, then the raw one and the clients."""
    connections = args.connections or args.processes * args.threads
    ceilings = Ceilings()
    with factory() as session:
        made = session.scalar(
            select(func.count()).where(OutboxEvent.organisation_id == organisation.id, OutboxEvent.type == EVENT_TYPE)
        )
    if (made or 0) < args.events:  # the throughput phase did not run: events that nobody relays
        produce_burst(quiet, organisation, args.events - (made or 0), DESKS)
    receiver.reset()
    print(
        f"\n3. durable ceiling: {args.events:,} events x {len(PATHS)} endpoints written, posted and marked "
        f"delivered in batches of {DURABLE_BATCH} events by {args.processes} processes over {connections} raw "
        f"keep-alive connections...",
        flush=True,
    )
    ceilings.durable = durable_ceiling(
        args.server, args.database, organisation, args.port, args.processes, connections, args.events, watch
    )
    arrived = receiver.counts()["distinct"]
    print(f"  {ceilings.durable[0].per_second:,.0f} deliveries/s; the receiver got {arrived:,} distinct", flush=True)
    posts = ceiling_posts(factory, organisation, args.events)
    receiver.reset()
    print(f"   raw ceiling: {len(posts):,} signed posts over {connections} raw keep-alive connections...", flush=True)
    watch.start()
    raw = post_raw("127.0.0.1", args.port, posts, connections, args.timeout)
    ceilings.raw = raw, watch.stop()
    print(f"  {raw.per_second:,.0f} deliveries/s; the receiver got {receiver.counts()['distinct']:,}", flush=True)
    receiver.reset()
    print(f"   the same through the worker's client ({connections} at once)...", flush=True)
    watch.start()
    client = post_worker_client(base_url, posts, connections, args.timeout)
    ceilings.client = client, watch.stop()
    print(f"  {client.per_second:,.0f} deliveries/s; the receiver got {receiver.counts()['distinct']:,}", flush=True)
    if args.reference_posts:
        receiver.reset()
        print(f"   reference: {args.reference_posts:,} posts with httpx.AsyncClient...", flush=True)
        watch.start()
        reference = post_httpx(base_url, posts[: args.reference_posts], connections, min(args.timeout, 120))
        ceilings.reference = reference, watch.stop()
        print(f"  {reference.per_second:,.0f} deliveries/s", flush=True)
    return ceilings


def _summary(phase: Delivered) -> dict[str, Any]:
    summary = {key: value for key, value in asdict(phase).items() if key not in ("latencies_ms", "receipts", "commits")}
    return summary | {
        "per_second": phase.per_second,
        "p50_ms": phase.percentile(0.5),
        "p99_ms": phase.percentile(0.99),
        "max_ms": max(phase.latencies_ms or [0.0]),
    }


if __name__ == "__main__":
    raise SystemExit(main())

"""Directory sync benchmark: `make bench-directory` (`python -m bench.directory --help` for the knobs).

A 100,000-user Entra ID tenant in the fake Graph (tests/fakes/graph), served over TLS on loopback by a
process of its own (`bench.directory_graph`, so its CPU is not ours and it does not share our GIL),
read by the real connector (msal for the token, httpx for Graph's `/users/delta`, 999 users a page as
Graph's largest), into PostgreSQL (a database of the bench's own, dropped and migrated) with the
production wiring: sessions whose commits feed `worker.after_commit.on_commit`, which queues the invitation
emails on the Redis broker (a database of the bench's own, flushed; no workers run, so every message
queued stays there to be counted). In one run:

0. read only: the same full listing through the connector, nothing stored (what reading costs);
1. initial sync (`worker.directory.sync.run`): every user invited, one `membership.invited` event
   and one queued email each;
2. incremental: 1,000 changes in the tenant (renames, disabled accounts, new users, deletions, a
   quarter each), then a sync through the delta link;
3. resync: every delta token expired (Graph's 410), then a sync: a full listing where nothing changed,
   which must change nothing (what a 410 costs);
4. the ceiling: the same users loaded into the same tables (members, invitations, outbox_events,
   directory_users) with psycopg `COPY`, for a second organisation, in one transaction.

Targets: initial <= 60 s, incremental <= 2 s. Beside the figures, the CPU seconds each side used in
each phase (this process, PostgreSQL, Redis, the fake Graph, and everything else on the machine).
`--profile` records this process with py-spy during the initial sync (bench/results/directory-profile.txt,
collapsed stacks; `pip install py-spy`).
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
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import redis
from pydantic import SecretStr
from sqlalchemy import func, select

from bench import cpu
from bench.api import database_pids
from bench.fake_process import FakeProcess
from bench.webhooks import prepare_database
from connectors.records import DirectoryUser as UserRecord
from deskbridge.settings import Settings
from deskbridge.wiring import build
from store.db import transaction
from store.models import ConnectionKind, Invitation, Member, OutboxEvent
from store.models import DirectoryUser as StagedUser
from store.services import connections, members, organisations
from sync.directory import engine, readers
from worker import runtime
from worker.directory import sync

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
INITIAL_TARGET = 60.0  # seconds
INCREMENTAL_TARGET = 2.0  # seconds
SOURCE = "directory:microsoft"
EMAIL_QUEUE = "dramatiq:email.msgs"  # the Redis broker's hash of the `email` queue's messages
RELAY_QUEUES = ("dramatiq:relay.msgs", "dramatiq:relay.DQ.msgs")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.directory", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL URL")
    parser.add_argument("--database", default="deskbridge_bench_directory", help="the database to (re)create there")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="Redis URL (this database is flushed)")
    parser.add_argument("--users", type=int, default=100_000, help="users in the tenant")
    parser.add_argument("--changes", type=int, default=1_000, help="changes of the incremental round (split in 4)")
    parser.add_argument("--page-size", type=int, default=999, help="users per Graph delta page")
    parser.add_argument("--profile", action="store_true", help="py-spy this process during the initial sync")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed or a check fails")
    args = parser.parse_args(argv)
    if args.users < 1 or args.changes < 0:
        parser.error("--users must be positive and --changes not negative")
    if args.changes * 3 // 4 > args.users:
        parser.error("--changes touches more users than the tenant has")
    return args


# --- the fake Graph's process -----------------------------------------------------------------------


def fake_graph(users: int, page_size: int, log_path: Path) -> FakeProcess:
    """`bench.directory_graph` in its own process."""
    return FakeProcess("Graph", "bench.directory_graph", [f"--users={users}", f"--page-size={page_size}"], log_path)


# --- phases -----------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase: its name, the users it handled, how long it took, and what it did."""

    name: str
    users: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    target: float | None = None
    checks: list[str] = field(default_factory=list)  # what did not come out as expected

    @property
    def per_second(self) -> float:
        return self.users / self.seconds if self.seconds else 0.0

    @property
    def met(self) -> bool:
        return not self.checks and (self.target is None or self.seconds <= self.target)


def read_only(settings: dict[str, Any], credentials: dict[str, Any]) -> tuple[list[UserRecord], float]:
    """A full listing through the connector, nothing stored: the users and the seconds it took."""
    reader = readers.make(ConnectionKind.MICROSOFT, settings, credentials, runtime.current().directory)
    started = time.perf_counter()
    users = [user for page in reader.read(None) for user in page.users]
    return users, time.perf_counter() - started


def run_sync(connection_id: int) -> tuple[engine.Tally, float]:
    started = time.perf_counter()
    tally = sync.run(runtime.current(), connection_id)
    seconds = time.perf_counter() - started
    if tally is None:
        raise RuntimeError("the sync did not run (the connection was busy or failed): see its last_error")
    return tally, seconds


@dataclass(frozen=True)
class Store:
    """What one organisation holds after a phase, and what waits in the broker."""

    members: dict[str, int]
    invitations: int
    events: dict[str, int]
    emails_queued: int
    relay_jobs: int
    directory_users: int


def store_state(organisation_id: int, connection_id: int, broker: redis.Redis) -> Store:
    factory = runtime.current().session_factory
    with factory() as session:
        by_status = session.execute(
            select(Member.status, func.count()).where(Member.organisation_id == organisation_id).group_by(Member.status)
        ).all()
        events = session.execute(
            select(OutboxEvent.type, func.count())
            .where(OutboxEvent.organisation_id == organisation_id)
            .group_by(OutboxEvent.type)
        ).all()
        invitations = session.scalar(
            select(func.count()).select_from(Invitation).where(Invitation.organisation_id == organisation_id)
        )
        staged = session.scalar(
            select(func.count()).select_from(StagedUser).where(StagedUser.connection_id == connection_id)
        )
    return Store(
        members={str(status): count for status, count in by_status},
        invitations=invitations or 0,
        events={type_: count for type_, count in events},
        emails_queued=emails_queued(broker),
        relay_jobs=sum(int(broker.hlen(key)) for key in RELAY_QUEUES),
        directory_users=staged or 0,
    )


def emails_queued(broker: redis.Redis) -> int:
    """Invitations whose email waits in the `email` queue: a message may carry one invitation id or
    a list of them (should the relay ever batch them), so the ids are counted, not the messages."""
    count = 0
    for raw in broker.hvals(EMAIL_QUEUE):
        args = json.loads(raw).get("args") or [None]
        count += len(args[0]) if isinstance(args[0], list) else 1
    return count


def expect(checks: list[str], what: str, got: object, wanted: object) -> None:
    if got != wanted:
        checks.append(f"{what}: {got!r}, expected {wanted!r}")


def copy_ceiling(url: str, users: list[UserRecord], organisation_id: int, connection_id: int) -> float:
    """COPY what the initial sync writes, for `users`, into the same tables: one member, invitation,
    outbox event and staged directory user each, in one transaction. The seconds it took."""
    now = datetime.now(UTC)
    expires = now + members.INVITATION_LIFETIME
    started = time.perf_counter()
    with psycopg.connect(url) as connection:
        count = len(users)
        # As the outbox does: take the organisation's sequence numbers first (and its row lock).
        last = connection.execute(
            "UPDATE organisations SET last_event_seq = last_event_seq + %s WHERE id = %s RETURNING last_event_seq",
            (count, organisation_id),
        ).fetchone()
        assert last is not None
        first_seq = last[0] - count + 1
        ids = connection.execute(
            "SELECT nextval('members_id_seq'), nextval('invitations_id_seq') FROM generate_series(1, %s)", (count,)
        ).fetchall()
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY members (id, organisation_id, email, display_name, role, status, api_access, created_at,"
                " updated_at) FROM STDIN"
            ) as copy:
                for (member_id, _), user in zip(ids, users, strict=True):
                    email = (user.email or "").lower()
                    copy.write_row(
                        (member_id, organisation_id, email, user.display_name, "member", "invited", False, now, now)
                    )
            with cursor.copy(
                "COPY invitations (id, organisation_id, member_id, email, status, source, expires_at, created_at,"
                " updated_at) FROM STDIN"
            ) as copy:
                for (member_id, invitation_id), user in zip(ids, users, strict=True):
                    email = (user.email or "").lower()
                    copy.write_row(
                        (invitation_id, organisation_id, member_id, email, "pending", SOURCE, expires, now, now)
                    )
            with cursor.copy(
                "COPY outbox_events (id, organisation_id, seq, type, data, created_at) FROM STDIN"
            ) as copy:
                for seq, ((member_id, invitation_id), user) in enumerate(zip(ids, users, strict=True), start=first_seq):
                    data = {
                        "member_id": member_id,
                        "email": (user.email or "").lower(),
                        "role": "member",
                        "status": "invited",
                        "invitation_id": invitation_id,
                        "source": SOURCE,
                    }
                    copy.write_row(
                        ("evt_" + uuid.uuid4().hex, organisation_id, seq, "membership.invited", json.dumps(data), now)
                    )
            with cursor.copy(
                "COPY directory_users (connection_id, external_id, username, email, display_name, active, guest,"
                " deleted, in_scope, member_id, seen_round, changed_at) FROM STDIN"
            ) as copy:
                for (member_id, _), user in zip(ids, users, strict=True):
                    copy.write_row(
                        (
                            connection_id,
                            user.external_id,
                            user.username.lower(),
                            (user.email or "").lower(),
                            user.display_name,
                            user.active,
                            user.guest,
                            False,
                            True,
                            member_id,
                            1,
                            now,
                        )
                    )
    return time.perf_counter() - started


# --- report -----------------------------------------------------------------------------------------


def print_table(phases: list[Phase], ceiling: Phase) -> None:
    initial = next(phase for phase in phases if phase.name.startswith("1."))
    rows: list[tuple[str, str, str, str, str]] = []
    for phase in [*phases, ceiling]:
        target = f"<= {phase.target:g} s" if phase.target is not None else ""
        met = ("met" if phase.met else "MISSED") if phase.target is not None or phase.checks else ""
        rows.append((phase.name, f"{phase.seconds:,.2f} s", f"{phase.per_second:,.0f}", target, met))
    ratio = initial.seconds / ceiling.seconds if ceiling.seconds else float("nan")
    rows.append(("initial sync / ceiling", f"{ratio:,.1f}x", "", "", ""))
    width = max(len(row[0]) for row in rows)
    header = f"{'figure':{width}}  {'seconds':>10}  {'users/s':>9}  {'target':>8}  met"
    print()
    print(header)
    print("-" * len(header))
    for name, seconds, rate, target, met in rows:
        print(f"{name:{width}}  {seconds:>10}  {rate:>9}  {target:>8}  {met}")


def print_cpu(phases: list[Phase]) -> None:
    sides = ["bench", "postgres", "redis", "graph", "others"]
    header = f"{'CPU seconds':28} " + " ".join(f"{side:>9}" for side in sides) + f" {'cores busy':>10}"
    print()
    print(header)
    print("-" * len(header))
    for phase in phases:
        used = phase.cpu
        seconds = used.get("machine total", 0.0) / max(1, os.cpu_count() or 1)
        busy = used.get("machine busy", 0.0) / seconds if seconds else 0.0
        print(f"{phase.name[:28]:28} " + " ".join(f"{used.get(side, 0.0):9.2f}" for side in sides) + f" {busy:10.2f}")
    print(
        "bench: this process (the connector, the sync engine, the relay's enqueueing). graph: the fake Graph's "
        "process. others: everything else on the machine (PostgreSQL's background writers among them)."
    )


# --- main -------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def start_profiler(output: Path) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("  py-spy is missing: no profile", flush=True)
        return None
    command = [py_spy, "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


def main(argv: list[str] | None = None) -> int:
    """Prepare, run the phases, print. Returns 0 once the figures are printed (with --strict, only if
    every target is met and every check passed), 2 when PostgreSQL or Redis cannot be reached."""
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
        broker_client = redis.Redis.from_url(args.redis)
        broker_client.flushdb()
        redis_pid = int(broker_client.info("server")["process_id"])
    except redis.RedisError as error:
        print(f"Redis is not reachable at {args.redis}: {error}", file=sys.stderr)
        return 2
    libpq_url = psycopg.conninfo.make_conninfo(args.server, dbname=args.database)

    print(f"Starting the fake Graph with {args.users:,} users ({args.page_size} a page)...", flush=True)
    graph = fake_graph(args.users, args.page_size, RESULTS / "directory-graph.log")
    phases: list[Phase] = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        info = graph.info
        settings = Settings(
            database_url=database_url,
            redis_url=args.redis,
            secret_key=SecretStr(_fernet_key()),
            microsoft_authority=info["authority"],
            graph_url=info["graph_url"],
            ca_bundle=info["ca_bundle"],
            log_level="WARNING",
        )
        components = build(settings)
        factory = components.session_factory
        box = runtime.current().secret_box
        connection_settings = {"tenant_id": info["tenant_id"], "client_id": info["client_id"]}
        credentials = {"client_secret": info["secret"]}
        with transaction(factory) as session:
            organisation = organisations.create(session, "Directory bench", slug="directory-bench")
            connection, _ = connections.create(
                session, box, organisation.id, ConnectionKind.MICROSOFT, "Entra ID",
                settings=connection_settings, credentials=credentials,
            )  # fmt: skip
            ceiling_org = organisations.create(session, "Directory bench (COPY)", slug="directory-bench-copy")
            ceiling_connection, _ = connections.create(
                session, box, ceiling_org.id, ConnectionKind.MICROSOFT, "Entra ID (COPY)",
                settings=connection_settings, credentials=credentials,
            )  # fmt: skip
        organisation_id, connection_id = organisation.id, connection.id
        before = store_state(organisation_id, connection_id, broker_client)
        watch = cpu.Watch(
            {
                "bench": lambda: [os.getpid()],
                "postgres": lambda: database_pids(libpq_url),
                "redis": lambda: [redis_pid] if redis_pid else [],
                "graph": lambda: [graph.process.pid],
            }
        )
        print(
            f"PostgreSQL {args.server.rsplit('@', 1)[-1].rsplit('/', 1)[0]}/{args.database}, Redis {args.redis}, "
            f"fake Graph {info['graph_url']} (pid {graph.process.pid}), {os.cpu_count()} cores.",
            flush=True,
        )

        # 0. read only
        print("\n0. read only: a full listing through the connector...", flush=True)
        with watch.phase() as used:
            records, seconds = read_only(connection_settings, credentials)
        phases.append(Phase("0. read only (connector)", len(records), seconds, cpu=used))
        expect(phases[-1].checks, "users read", len(records), args.users)
        print(f"  {len(records):,} users in {seconds:.2f}s", flush=True)

        # 1. initial sync
        print(f"\n1. initial sync of {args.users:,} users...", flush=True)
        if args.profile:
            profiler = start_profiler(RESULTS / "directory-profile.txt")
            time.sleep(1.0)  # py-spy attaches
        with watch.phase() as used:
            tally, seconds = run_sync(connection_id)
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
            print(f"  profile in {(RESULTS / 'directory-profile.txt').relative_to(ROOT)}", flush=True)
        state = store_state(organisation_id, connection_id, broker_client)
        initial = Phase(f"1. initial sync ({args.users:,} users)", args.users, seconds, tally.counts, used)
        initial.target = INITIAL_TARGET
        expect(initial.checks, "invited", tally.counts["invited"], args.users)
        expect(initial.checks, "members", state.members, {"invited": args.users})
        expect(initial.checks, "invitations", state.invitations, args.users)
        expect(initial.checks, "membership.invited events", state.events.get("membership.invited"), args.users)
        expect(initial.checks, "emails queued", state.emails_queued - before.emails_queued, args.users)
        phases.append(initial)
        print(
            f"  {seconds:.2f}s; {state.members} members, {state.invitations:,} invitations, events {state.events}, "
            f"{state.emails_queued:,} emails and {state.relay_jobs} relay jobs queued",
            flush=True,
        )

        # 2. incremental
        quarter = args.changes // 4
        asked = {"renames": quarter, "disables": quarter, "new": quarter, "deletions": args.changes - 3 * quarter}
        made = graph.ask(op="changes", **asked)
        print(f"\n2. incremental: {sum(made.values()):,} changes in the tenant {made}...", flush=True)
        before = state
        with watch.phase() as used:
            tally, seconds = run_sync(connection_id)
        state = store_state(organisation_id, connection_id, broker_client)
        changed = made["renames"] + made["disables"] + made["new"] + made["deletions"]
        incremental = Phase(f"2. incremental ({changed:,} changes)", changed, seconds, tally.counts, used)
        incremental.target = INCREMENTAL_TARGET
        expect(incremental.checks, "updated", tally.counts["updated"], made["renames"])
        expect(incremental.checks, "removed", tally.counts["removed"], made["disables"] + made["deletions"])
        expect(incremental.checks, "invited", tally.counts["invited"], made["new"])
        expect(incremental.checks, "emails queued", state.emails_queued - before.emails_queued, made["new"])
        phases.append(incremental)
        print(f"  {seconds:.2f}s; {tally.counts}", flush=True)

        # 3. resync after a 410
        graph.ask(op="expire")
        print("\n3. resync: every delta token expired (410), nothing else changed...", flush=True)
        before = state
        with watch.phase() as used:
            tally, seconds = run_sync(connection_id)
        state = store_state(organisation_id, connection_id, broker_client)
        listed = args.users - made["deletions"] + made["new"]
        resync = Phase(f"3. resync after 410 ({listed:,} users)", listed, seconds, tally.counts, used)
        for name in ("invited", "added", "restored", "updated", "removed"):
            expect(resync.checks, name, tally.counts[name], 0)
        expect(
            resync.checks,
            "events",
            state.events,
            before.events | {"connection.synced": before.events.get("connection.synced", 0) + 1},
        )
        expect(resync.checks, "emails queued", state.emails_queued, before.emails_queued)
        phases.append(resync)
        print(f"  {seconds:.2f}s; {tally.counts}", flush=True)

        # 4. the ceiling
        print(f"\n4. ceiling: COPY {len(records):,} users into the same 4 tables...", flush=True)
        with watch.phase() as used:
            seconds = copy_ceiling(libpq_url, records, ceiling_org.id, ceiling_connection.id)
        ceiling = Phase(f"4. ceiling: COPY ({len(records):,} users)", len(records), seconds, cpu=used)
        copied = store_state(ceiling_org.id, ceiling_connection.id, broker_client)
        expect(ceiling.checks, "members", copied.members, {"invited": len(records)})
        expect(ceiling.checks, "staged", copied.directory_users, len(records))
        print(f"  {seconds:.2f}s", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the fake Graph", file=sys.stderr)
        return 130
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        graph.stop()

    components.engine.dispose()
    print_table(phases, ceiling)
    print_cpu([*phases, ceiling])
    failed = [f"{phase.name}: {check}" for phase in [*phases, ceiling] for check in phase.checks]
    for line in failed:
        print(f"CHECK FAILED {line}")
    if not failed:
        print(
            "\nChecks: every user invited once (member, invitation, event, queued email); the incremental round "
            "updated, removed and invited exactly the changed users; the resync changed nothing."
        )
    all_met = all(phase.met for phase in phases) and not failed
    record = {
        "when": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "users": args.users,
        "page_size": args.page_size,
        "phases": [
            {
                "name": p.name,
                "users": p.users,
                "seconds": p.seconds,
                "per_second": p.per_second,
                "counts": p.counts,
                "cpu": p.cpu,
                "target": p.target,
                "checks": p.checks,
            }
            for p in [*phases, ceiling]
        ],
        "targets_met": all_met,
    }
    saved = RESULTS / f"directory-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    saved.write_text(json.dumps(record, indent=2))
    print(f"Figures saved to {saved.relative_to(ROOT)}.")
    return 1 if args.strict and not all_met else 0


def _fernet_key() -> str:
    from store.secret_box import SecretBox

    return SecretBox.generate_key()


if __name__ == "__main__":
    raise SystemExit(main())

"""The processes and settings around the CLI: the embedded mode's rule for private targets (a CLI sync
beside `make run` reads a loopback feed as the server would), the key outside the embedded mode,
`serve --host --port` driving every link, `deskbridge worker` stopping its Dramatiq processes on
SIGTERM and SIGINT, and a quiet default log."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from deskbridge.settings import MissingSecretKey, Settings, get_settings
from deskbridge.wiring import configure_logging
from store.columns import utcnow
from store.models import Connection, ConnectionStatus, ExternalEvent
from tests.cli.conftest import ok, run
from tests.conftest import REDIS_URL
from tests.fakes.ics import FakeIcsServer

BIN = Path(sys.executable).parent
TOKEN = re.compile(r"dsk_[A-Za-z0-9_-]{43}")
FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:standup@example.com\r\n"
    "DTSTAMP:20300101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


# --- the embedded mode's rule: what the server allows, the CLI beside it allows too ----------------


def test_private_targets_follow_the_mode_unless_set() -> None:
    embedded = Settings(_env_file=None, database_url="sqlite:///var/x.db")  # type: ignore[call-arg]
    production = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql://db/deskbridge",
        secret_key=Fernet.generate_key().decode(),
    )
    with_redis = Settings(_env_file=None, redis_url="redis://redis:6379/0")  # type: ignore[call-arg]
    assert (embedded.embedded, embedded.private_targets_allowed) == (True, True)
    assert (production.embedded, production.private_targets_allowed) == (False, False)
    assert (with_redis.embedded, with_redis.private_targets_allowed) == (False, False)
    assert embedded.model_copy(update={"allow_private_webhooks": False}).private_targets_allowed is False
    assert production.model_copy(update={"allow_private_webhooks": True}).private_targets_allowed is True


def feed_body() -> bytes:
    start = (utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=1)
    return FEED.format(start=f"{start:%Y%m%dT%H%M%SZ}", end=f"{end:%Y%m%dT%H%M%SZ}").encode()


def feed_connection(factory: sessionmaker[Session]) -> Connection:
    with factory() as session:
        return session.scalars(select(Connection)).one()


def test_a_cli_sync_beside_make_run_reads_a_feed_on_this_machine(factory: sessionmaker[Session]) -> None:
    """Nothing set but the database, as `make run` sets nothing: the embedded mode allows loopback."""
    assert "DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS" not in os.environ
    ok("org", "create", "Acme")
    with FakeIcsServer() as feeds:
        feeds.serve("/team.ics", feed_body())
        ok("connect", "ics", "--url", feeds.url("/team.ics"))
        result = ok("sync", "1")
    assert "status active" in result.stdout
    with factory() as session:
        assert session.scalars(select(ExternalEvent.title)).all() == ["Standup"]


def test_refusing_private_targets_names_the_feed_not_a_webhook(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS", "false")
    get_settings.cache_clear()
    ok("org", "create", "Acme")
    with FakeIcsServer() as feeds:
        feeds.serve("/team.ics", feed_body())
        ok("connect", "ics", "--url", feeds.url("/team.ics"))
        result = run("sync", "1")
    assert result.exit_code == 1
    connection = feed_connection(factory)
    assert connection.status is ConnectionStatus.ACTION_REQUIRED
    assert connection.last_error is not None
    assert "feed" in connection.last_error.lower()


# --- the key outside the embedded mode ------------------------------------------------------------


def test_outside_the_embedded_mode_a_command_touching_secrets_refuses_without_the_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("db", "upgrade")
    ok("org", "create", "Acme")
    monkeypatch.setenv("DESKBRIDGE_REDIS_URL", REDIS_URL)
    monkeypatch.delenv("DESKBRIDGE_SECRET_KEY", raising=False)
    get_settings.cache_clear()

    result = run("connect", "csv")

    assert result.exit_code == 1
    assert "DESKBRIDGE_SECRET_KEY is not set" in result.output
    assert "deskbridge key new" in result.output
    assert not Path("var/secret.key").exists()  # no key of its own made behind the operator's back
    with pytest.raises(MissingSecretKey):
        get_settings().require_secret_key()
    monkeypatch.delenv("DESKBRIDGE_REDIS_URL")
    get_settings.cache_clear()
    assert json.loads(ok("connection", "list", "--json").stdout) == []  # nothing was made


def test_the_embedded_mode_makes_its_key_once(database_url: str) -> None:
    ok("db", "upgrade")
    ok("org", "create", "Acme")
    ok("connect", "csv")
    key = Path("var/secret.key").read_text()
    ok("connect", "csv", "--name", "Second")
    assert Path("var/secret.key").read_text() == key
    Fernet(key.strip())


# --- serve --host --port: the port in use drives the banner, links and Location headers -------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DESKBRIDGE_")}
    return env | {"DESKBRIDGE_DATABASE_URL": f"sqlite:///{folder / 'var' / 'db.sqlite'}", "COLUMNS": "200"} | extra


def wait_for(condition: object, what: str, process: subprocess.Popen[bytes], log: Path, deadline: float = 60) -> None:
    assert callable(condition)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"{what}: the process ended ({process.returncode}):\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen:\n{log.read_text(errors='replace')}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`deskbridge serve --port P` with no DESKBRIDGE_PORT nor public base URL: (base URL, its token, log)."""
    port = free_port()
    env = clean_env(tmp_path)
    subprocess.run([str(BIN / "deskbridge"), "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "deskbridge"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz"), "serve answering", process, log)
        found = TOKEN.search(log.read_text())
        assert found, log.read_text()
        yield base, found.group(0), log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_serve_port_drives_the_banner_links_and_location_headers(served: tuple[str, str, Path], tmp_path: Path) -> None:
    base, token, log = served
    banner = log.read_text()
    assert f"on {base} (API docs: {base}/docs)" in banner
    assert f"http {base}/api/my_upcoming_bookings/" in banner
    assert ":8000" not in banner

    response = httpx.post(
        f"{base}/api/create_membership_invitation/",
        json={"email_invited": "grace@example.com"},
        headers={"Authorization": f"token {token}"},
    )

    assert response.status_code == 201
    assert response.headers["location"].startswith(f"{base}/api/")
    mail = tmp_path / "var" / "mail"
    wait_for(lambda: any(mail.glob("*")), "the invitation email", _Alive(), log)
    [email] = [path.read_text() for path in mail.glob("*")]
    assert f"{base}/invitations/" in email
    assert ":8000" not in email


class _Alive:
    """A stand-in process that never ends (the email is waited for while serve runs)."""

    returncode = None

    def poll(self) -> None:
        return None


# --- deskbridge worker: SIGTERM and SIGINT stop Dramatiq's processes too ----------------------------


def children(pid: int) -> set[int]:
    """Every descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_deskbridge_worker_stops_its_dramatiq_processes(tmp_path: Path, stop: signal.Signals) -> None:
    env = clean_env(
        tmp_path,
        DESKBRIDGE_REDIS_URL=REDIS_URL,
        DESKBRIDGE_SECRET_KEY=Fernet.generate_key().decode(),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "deskbridge"), "worker", "--threads", "1"],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the signal goes to this process alone, not a terminal's group
        )
    try:
        wait_for(lambda: "ready for action" in log.read_text(errors="replace"), "the worker booting", process, log)
        descendants = children(process.pid)
        assert descendants, "Dramatiq runs its workers in processes of their own"

        process.send_signal(stop)
        process.wait(60)

        assert [pid for pid in descendants if alive(pid)] == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_deskbridge_worker_without_the_key_refuses_before_starting_dramatiq(tmp_path: Path) -> None:
    env = clean_env(tmp_path, DESKBRIDGE_REDIS_URL=REDIS_URL)
    done = subprocess.run(
        [str(BIN / "deskbridge"), "worker"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "DESKBRIDGE_SECRET_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Dramatiq" not in done.stderr


# --- a quiet default log: no line per scheduler tick -----------------------------------------------


def ticks_logged(level: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run a real APScheduler job once under `configure_logging(level)`; what APScheduler logged."""
    configure_logging(level)
    ran = threading.Event()
    scheduler = BackgroundScheduler()
    scheduler.add_job(ran.set, "interval", seconds=3600, next_run_time=utcnow())
    with caplog.at_level(logging.DEBUG):
        scheduler.start()
        try:
            assert ran.wait(30)
        finally:
            scheduler.shutdown(wait=True)
    return [record.getMessage() for record in caplog.records if record.name.startswith("apscheduler")]


def test_the_default_log_has_no_line_per_scheduler_tick(caplog: pytest.LogCaptureFixture) -> None:
    try:
        quiet = ticks_logged("INFO", caplog)
        caplog.clear()
        chatty = ticks_logged("DEBUG", caplog)
    finally:
        configure_logging("INFO")
    assert not any("Running job" in line or "executed successfully" in line for line in quiet), quiet
    assert any("executed successfully" in line for line in chatty), chatty

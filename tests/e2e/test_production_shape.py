"""The production shape, run as docker-compose.yml runs it, without Docker.

The API (`deskbridge api`: uvicorn with its WEB_CONCURRENCY processes), two Dramatiq workers and the
scheduler are separate OS processes, each in a working folder of its own (as containers are), started
with the commands and the `environment` of their services in docker-compose.yml itself, interpolated
as Compose does. Only
what a container network would give is mapped: the hosts `postgres` and `redis` become 127.0.0.1 (a
fresh PostgreSQL database, the tests' Redis database), the `metrics` volume a shared folder, and the
listening port a free one. On top of the file's environment the test sets only what a `.env` would:
the key, the public URL, an SMTP server (a local aiosmtpd sink), and private targets allowed (the
webhook receiver is on loopback).

It checks, in order: a booking made through the API reaches a loopback receiver as a signed webhook
(verified with the standardwebhooks library); a SCIM push invites someone and the email reaches the
SMTP sink; the API's /metrics shows the workers' deliveries (one scrape, every process's files); a
worker stopped with SIGTERM exits cleanly; a worker killed with SIGKILL mid-delivery loses nothing
(its container restarts, as `restart: unless-stopped` does: every event arrives, every delivery
succeeded once, a request repeated only where the killed worker had it in flight); and processes
started without DESKBRIDGE_SECRET_KEY refuse to start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from store.columns import utcnow
from store.models import Delivery
from tests.conftest import REDIS_URL, postgres_database, unavailable

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent
HOSTS = {"postgres": "127.0.0.1", "redis": "127.0.0.1"}  # what the compose network resolves
DEADLINE = 60.0  # for anything to happen; a bound, not an expectation
KEY_MISSING = "DESKBRIDGE_SECRET_KEY is not set"


# --- docker-compose.yml, read as Compose reads it -------------------------------------------------

VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    """A required variable (`${NAME:?message}`) is unset: Compose refuses to start with this message."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """`${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}` as the Compose
    specification defines them."""

    def one(found: re.Match[str]) -> str:
        name, op, arg = found["name"], found["op"], found["arg"] or ""
        value = variables.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return VARIABLE.sub(one, text)


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def service_environment(name: str, variables: Mapping[str, str]) -> dict[str, str]:
    """The service's `environment`, interpolated."""
    environment = compose()["services"][name]["environment"]
    return {key: interpolate(str(value), variables) for key, value in environment.items()}


def service_command(name: str) -> list[str]:
    command = compose()["services"][name]["command"]
    return [str(word) for word in command]


# --- the machine's services, standing in for the compose network and volumes -------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], object], what: str, fleet: Fleet | None = None) -> None:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    logs = fleet.logs() if fleet is not None else ""
    pytest.fail(f"{what} did not happen within {DEADLINE} s\n{logs}")


@dataclass
class Received:
    webhook_id: str
    verified: bool
    payload: dict[str, Any]


@dataclass
class Receiver:
    """A webhook receiver on loopback that verifies every signature; `hold` keeps requests unanswered."""

    secret: str = ""
    received: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [item.webhook_id for item in self.received]

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


def start_receiver(receiver: Receiver) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                payload = Webhook(receiver.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                payload, verified = json.loads(body), False
            with receiver.lock:
                receiver.received.append(Received(headers.get("webhook-id", ""), verified, payload))
            hold = receiver.hold
            if hold is not None:
                hold.wait(DEADLINE)
            try:
                self.send_response(200)
                self.end_headers()
            except OSError:
                pass  # the sender is gone (killed): nobody hears this answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hooks"


class Mailbox:
    """An aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 2.0.0 Message accepted"


class Fleet:
    """The deployment's processes, each leading its own process group in its own folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        with (folder / "output.log").open("ab") as log:
            process = subprocess.Popen(
                argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.root / name / "output.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-4000:]}" for name in self.processes)

    def kill(self, name: str) -> None:
        """SIGKILL the process and everything it started (its group): no clean-up, no acknowledgement."""
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(name)


def run(argv: list[str], env: dict[str, str], folder: Path) -> str:
    """A one-shot command (as `docker compose run --rm api …`); its stdout."""
    folder.mkdir(exist_ok=True)
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout.strip()


def executable(word: str) -> str:
    """A command's program as the image's PATH finds it (the virtual environment's)."""
    return sys.executable if word == "python" else str(BIN / word)


# --- the deployment ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    fleet: Fleet
    base: str
    engine: Engine
    env: dict[str, dict[str, str]]  # by service: what each process was started with
    receiver: Receiver
    receiver_url: str
    mailbox: Mailbox
    admin_token: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"token {self.admin_token}"}, timeout=15)


def base_environment() -> dict[str, str]:
    """What the image provides besides the service's environment (PATH, and nothing of the host's settings)."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DESKBRIDGE_", "PROMETHEUS_", "WEB_CONCURRENCY"))
    }
    return inherited | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}


def mapped(environment: dict[str, str], database_url: str, metrics_dir: Path) -> dict[str, str]:
    """The compose network and volumes, mapped to this machine."""
    env = dict(environment)
    compose_db = make_url(env["DESKBRIDGE_DATABASE_URL"])
    ours = make_url(database_url)
    assert compose_db.host in HOSTS, compose_db
    env["DESKBRIDGE_DATABASE_URL"] = compose_db.set(
        host=HOSTS[compose_db.host], username=ours.username, password=ours.password, database=ours.database
    ).render_as_string(hide_password=False)
    compose_redis, test_redis = httpx.URL(env["DESKBRIDGE_REDIS_URL"]), httpx.URL(REDIS_URL)
    assert compose_redis.host in HOSTS, compose_redis
    env["DESKBRIDGE_REDIS_URL"] = str(compose_redis.copy_with(host=HOSTS[compose_redis.host], path=test_redis.path))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


def api_argv(port: int) -> list[str]:
    """The api service's command (`deskbridge api`, which execs uvicorn with WEB_CONCURRENCY processes)."""
    argv = service_command("api")
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return [executable(argv[0]), *argv[1:]]


def worker_argv(module: str | None = None) -> list[str]:
    """The worker service's command; `module` in place of deskbridge.worker_main (a replacement's quick upkeep)."""
    argv = service_command("worker")
    if module is not None:
        argv[argv.index("deskbridge.worker_main")] = module
    return [executable(argv[0]), *argv[1:], "--path", str(ROOT)]


def scheduler_argv(folder: Path) -> list[str]:
    argv = service_command("scheduler")
    # Its heartbeat in its own folder, as in its own container (the default is /tmp of the machine).
    return [executable(argv[0]), *argv[1:], "--heartbeat", str(folder / "heartbeat")]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("production")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable("Redis", str(error))
    client.flushdb()
    metrics_dir = root / "metrics-volume"
    metrics_dir.mkdir()
    smtp_port, port = free_port(), free_port()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    receiver = Receiver()
    http_server, receiver_url = start_receiver(receiver)
    variables = {  # a `.env` beside the compose file
        "DESKBRIDGE_SECRET_KEY": Fernet.generate_key().decode(),
        "DESKBRIDGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    extra = {
        "DESKBRIDGE_SMTP_HOST": "127.0.0.1",
        "DESKBRIDGE_SMTP_PORT": str(smtp_port),
        "DESKBRIDGE_SMTP_STARTTLS": "false",
        "DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS": "true",  # the receiver is on loopback
    }
    fleet = Fleet(root)
    with postgres_database(f"deskbridge_shape_{os.getpid()}") as engine:
        database_url = engine.url.render_as_string(hide_password=False)
        env = {
            name: base_environment() | mapped(service_environment(name, variables), database_url, metrics_dir) | extra
            for name in ("migrate", "api", "worker", "scheduler")
        }
        smtp.start()
        try:
            # docker compose up: migrate (one-shot), then the rest.
            run(["deskbridge", "db", "upgrade"], env["migrate"], root / "migrate")
            fleet.start("api", api_argv(port), env["api"])
            fleet.start("worker-1", worker_argv(), env["worker"])
            fleet.start("worker-2", worker_argv(), env["worker"])
            fleet.start("scheduler", scheduler_argv(root / "scheduler"), env["scheduler"])
            # The README's first steps: an organisation, its API on, an admin and a token.
            cli = root / "cli"
            run(["deskbridge", "org", "create", "Acme"], env["api"], cli)
            run(["deskbridge", "org", "api", "enable"], env["api"], cli)
            run(["deskbridge", "member", "add", "admin@acme.example", "--admin", "--api"], env["api"], cli)
            token = run(["deskbridge", "token", "create", "admin@acme.example"], env["api"], cli)
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ready(base), "the API to be ready", fleet)
            for name in ("worker-1", "worker-2"):
                wait_until(lambda name=name: "ready for action" in fleet.log(name), f"{name} to boot", fleet)
            yield Deployment(fleet, base, engine, env, receiver, receiver_url, mailbox, token)
        finally:
            if receiver.hold is not None:
                receiver.hold.set()
            fleet.stop_all()
            smtp.stop()
            http_server.shutdown()
            client.flushdb()
            client.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def book(api: httpx.Client, desk_id: int, days_ahead: int) -> int:
    start = (utcnow() + timedelta(days=days_ahead)).replace(hour=9, minute=0, second=0, microsecond=0)
    response = api.post(
        "/v1/bookings",
        json={"desk_id": desk_id, "start": start.isoformat(), "end": (start + timedelta(hours=8)).isoformat()},
    )
    assert response.status_code == 201, response.text
    booking_id: int = response.json()["id"]
    return booking_id


def booking_ids(receiver: Receiver) -> set[int]:
    return {
        item.payload["data"]["booking_id"]
        for item in receiver.snapshot()
        if item.payload.get("type") == "booking.created"
    }


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{base}/metrics", timeout=15)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


# --- the checks, in the order an operator meets them ---------------------------------------------------


@pytest.fixture(scope="module")
def endpoint(deployment: Deployment) -> int:
    with deployment.api() as api:
        created = api.post("/v1/webhooks", json={"url": deployment.receiver_url, "event_types": ["booking.*"]})
    assert created.status_code == 201, created.text
    deployment.receiver.secret = created.json()["secret"]
    endpoint_id: int = created.json()["id"]
    return endpoint_id


def test_a_booking_reaches_the_receiver_as_a_signed_webhook(deployment: Deployment, endpoint: int) -> None:
    with deployment.api() as api:
        desk = api.post("/v1/desks", json={"label": "D1"})
        assert desk.status_code == 201, desk.text
        booking_id = book(api, desk.json()["id"], 1)

    wait_until(lambda: booking_id in booking_ids(deployment.receiver), "the booking's webhook", deployment.fleet)
    [received] = [item for item in deployment.receiver.snapshot() if item.payload["type"] == "booking.created"]
    assert received.verified
    assert received.webhook_id.startswith("evt_")


def test_a_scim_push_invites_someone_and_the_email_goes_out(deployment: Deployment) -> None:
    with deployment.api() as api:
        connection = api.post("/v1/connections", json={"kind": "scim", "name": "Okta"})
    assert connection.status_code == 201, connection.text
    pushed = httpx.post(
        f"{deployment.base}/scim/v2/Users",
        headers={"Authorization": f"Bearer {connection.json()['token']}", "Content-Type": "application/scim+json"},
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "grace@acme.example",
            "name": {"givenName": "Grace", "familyName": "Hopper"},
            "emails": [{"value": "grace@acme.example", "primary": True}],
            "active": True,
        },
        timeout=15,
    )
    assert pushed.status_code == 201, pushed.text

    wait_until(lambda: deployment.mailbox.messages, "the invitation email", deployment.fleet)
    [message] = deployment.mailbox.messages
    assert message["To"] == "grace@acme.example"
    assert f"{deployment.base}/invitations/" in message.get_body(preferencelist=("plain",)).get_content()


def test_one_scrape_of_the_api_shows_the_workers_deliveries(deployment: Deployment, endpoint: int) -> None:
    wait_until(lambda: booking_ids(deployment.receiver), "a delivery", deployment.fleet)

    # The relay job posted the delivery itself (a small pass); it is counted as it ends, handing over to
    # a successor BUSY_SECONDS after it started.
    relay = ("deskbridge_actor_duration_seconds_count", (("actor", "relay_outbox"), ("queue", "relay")))
    wait_until(lambda: scrape(deployment.base).get(relay, 0) >= 1, "a relay job to end", deployment.fleet)
    samples = scrape(deployment.base)

    # The API process delivers nothing itself: these are the workers' files in the shared folder.
    assert samples[("deskbridge_webhook_deliveries_total", (("outcome", "succeeded"),))] >= 1
    assert samples[("deskbridge_webhook_request_duration_seconds_count", ())] >= 1
    assert samples[relay] >= 1
    assert ("deskbridge_queue_depth", (("queue", "webhooks"),)) in samples
    assert any(name == "deskbridge_api_requests_total" for name, _ in samples)


def test_a_worker_stopped_with_sigterm_exits_cleanly(deployment: Deployment) -> None:
    process = deployment.fleet.processes["worker-2"]
    process.send_signal(signal.SIGTERM)  # what `docker compose stop` sends the container's PID 1
    assert process.wait(30) == 0, deployment.fleet.log("worker-2")


def test_a_worker_killed_mid_delivery_loses_nothing(deployment: Deployment, endpoint: int) -> None:
    """worker-1 is the only worker left: it takes the jobs, and is killed while a request is in flight."""
    receiver, fleet = deployment.receiver, deployment.fleet
    assert fleet.processes["worker-2"].poll() is not None
    hold = threading.Event()
    receiver.hold = hold
    seen_before = len(receiver.snapshot())
    with deployment.api() as api:
        desk = api.post("/v1/desks", json={"label": "D2"})
        assert desk.status_code == 201, desk.text
        booked = {book(api, desk.json()["id"], days) for days in range(2, 7)}

    wait_until(lambda: len(receiver.snapshot()) > seen_before, "worker-1's first request", fleet)
    fleet.kill("worker-1")
    # No worker runs now: what arrived since the bookings is what the killed worker had in flight.
    in_flight = {item.webhook_id for item in receiver.snapshot()[seen_before:]}
    receiver.hold = None
    hold.set()
    # Its container restarts (restart: unless-stopped); the replacement's Dramatiq upkeep is made quick,
    # so that it puts the dead worker's unacknowledged job back on the queue within seconds.
    fleet.start("worker-3", worker_argv("tests.worker.delivery.worker_process"), deployment.env["worker"])

    wait_until(lambda: booked <= booking_ids(receiver), "every booking's webhook after the kill", fleet)
    wait_until(lambda: _all_succeeded(deployment.engine, endpoint), "every delivery to succeed", fleet)
    with deployment.engine.connect() as connection:
        rows = connection.execute(select(Delivery.status, Delivery.attempts).where(Delivery.endpoint_id == endpoint))
        assert {(str(status), attempts) for status, attempts in rows} == {("succeeded", 1)}
    received = receiver.ids()
    repeated = {webhook_id for webhook_id in received if received.count(webhook_id) > 1}
    # Sent again exactly where the killed worker had a request in flight (its attempt recorded nothing).
    assert repeated == in_flight
    assert all(item.verified for item in receiver.snapshot())


def _all_succeeded(engine: Engine, endpoint_id: int) -> bool:
    with engine.connect() as connection:
        statuses = connection.execute(select(Delivery.status).where(Delivery.endpoint_id == endpoint_id)).scalars()
        return {str(status) for status in statuses} == {"succeeded"}


@pytest.mark.parametrize("service", ["api", "worker", "scheduler"])
def test_a_process_without_the_key_refuses_to_start(deployment: Deployment, service: str, tmp_path: Path) -> None:
    env = {key: value for key, value in deployment.env[service].items() if key != "DESKBRIDGE_SECRET_KEY"}
    argv = {
        "api": api_argv(free_port()),
        "worker": worker_argv(),
        "scheduler": scheduler_argv(tmp_path),
    }[service]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode != 0
    assert KEY_MISSING in done.stdout + done.stderr
    assert not (tmp_path / "var" / "secret.key").exists()


def test_compose_itself_refuses_to_start_without_the_key() -> None:
    with pytest.raises(MissingVariable, match="deskbridge key new"):
        service_environment("worker", {})

"""The production API process (`uvicorn deskbridge.asgi:app`) through a Redis outage (issue 12, finding 1).

Its Redis (the broker and the rate-limit counters) is the real one behind a TCP proxy that the test
cuts: refusing connections (Redis down) or swallowing them (Redis hung). Throughout, real HTTP
requests are answered 2xx/4xx, never 500: rate limits are counted in the process, writes commit
(their work is enqueued once the scheduler's relay catches up), `/healthz` stays 200 and says what is
degraded, `/readyz` says the broker is down. One warning is logged per outage, not one per request,
and the outage is counted in `/metrics`. Once Redis is back, counting goes back to Redis.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis

from api.ratelimit import day_window
from store.db import make_engine, make_session_factory
from store.migrate import upgrade
from store.secret_box import SecretBox
from tests.conftest import REDIS_URL, Org, auth, make_org, unavailable
from tests.fakes.tcp_proxy import Cut, TcpProxy

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_WARNING = "rate limits: Redis is unreachable"
REQUESTS_PER_OUTAGE = 30


@dataclass
class Served:
    base: str
    org: Org
    log: Path
    proxy: TcpProxy

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until(condition: object, what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not callable(condition) or not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    real = urlsplit(REDIS_URL)
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        unavailable("Redis", str(error))
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    org = make_org(make_session_factory(engine))
    engine.dispose()
    with TcpProxy((real.hostname or "127.0.0.1", real.port or 6379)) as proxy:
        proxied = urlunsplit((real.scheme, f"127.0.0.1:{proxy.port}", real.path, real.query, ""))
        port = _free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DESKBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "DESKBRIDGE_REDIS_URL": proxied,
            "DESKBRIDGE_SECRET_KEY": SecretBox.generate_key(),
            "DESKBRIDGE_MAIL_DIR": str(tmp_path / "mail"),
            "DESKBRIDGE_LOG_LEVEL": "INFO",
        }
        log = tmp_path / "api.log"
        command = [sys.executable, "-m", "uvicorn", "deskbridge.asgi:app", "--port", str(port), "--no-access-log"]
        with log.open("wb") as output:
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until(lambda: process.poll() is None and _answers(base + "/healthz"), "the API to start")
            yield Served(base, org, log, proxy)
        finally:
            process.terminate()
            process.wait(timeout=20)
            print(log.read_text(errors="replace")[-4000:])


def _outage_requests(http: httpx.Client, served: Served, count: int) -> list[int]:
    """Reads and writes of a member and an admin while Redis is out: their status codes."""
    codes = []
    admin, member = auth(served.org.admin_token), auth(served.org.member_token)
    for n in range(count):
        codes.append(http.get("/v1/desks", headers=member).status_code)
        created = http.post("/v1/desks", headers=admin, json={"label": f"outage-{time.monotonic_ns()}-{n}"})
        codes.append(created.status_code)
    codes.append(http.get("/v1/desks/999999", headers=member).status_code)  # a 404 through the outage
    codes.append(http.get("/v1/desks", headers={"Authorization": "token wrong"}).status_code)  # a 401
    return codes


@pytest.mark.parametrize("how", ["refuse", "stall"])
def test_the_api_answers_through_a_redis_outage(served: Served, how: Cut) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as http:
        member = auth(served.org.member_token)
        before = http.get("/v1/desks", headers=member)
        assert before.status_code == 200
        assert http.get("/readyz").json()["checks"]["broker"] == "ok"

        served.proxy.cut(how)
        codes = _outage_requests(http, served, REQUESTS_PER_OUTAGE)
        assert all(code < 500 for code in codes), codes
        assert codes.count(201) == REQUESTS_PER_OUTAGE  # every write committed
        assert {401, 404} <= set(codes)

        health = http.get("/healthz")
        assert health.status_code == 200
        assert "Redis is unreachable" in health.json()["degraded"]["rate_limits"]
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"] == "down"
        assert "rate_limits" in ready.json()["degraded"]
        metrics = http.get("/metrics").text
        assert 'deskbridge_redis_outages_total{client="rate limits"} 1.0' in metrics
        assert 'deskbridge_redis_unreachable{client="rate limits"} 1.0' in metrics
        assert served.log_text().count(OUTAGE_WARNING) == 1  # one warning for the outage, not one a request

        served.proxy.restore()
        # Within a retry interval one request asks Redis again and counting goes back there.
        _wait_until(
            lambda: (
                http.get("/v1/desks", headers=member).status_code == 200
                and "degraded" not in http.get("/healthz").json()
            ),
            "the counter to use Redis again",
        )
        key = f"ratelimit:{served.org.member.id}:{day_window()[0]}"
        shared = redis.Redis.from_url(REDIS_URL)
        counted = int(shared.get(key) or 0)
        assert http.get("/v1/desks", headers=member).status_code == 200
        assert int(shared.get(key) or 0) == counted + 1  # counted in Redis again
        _wait_until(lambda: http.get("/readyz").status_code == 200, "the broker to use Redis again")
        assert "Redis answers again" in served.log_text()

"""The fuzzing gate: schemathesis over the served app's `/openapi.json`, on PostgreSQL.

The app is served by uvicorn on a loopback port, as in production; schemathesis (its own CLI, the
documented way to run it) reads the schema from it and sends every operation generated requests,
valid and invalid, as an admin. It fails on any 5xx and on any answer that breaks the declared
response schema. The seed is fixed and the budget bounded (examples per operation, no shrinking
rounds beyond the first failure), so the run is repeatable and takes a few minutes at most.

`FUZZ_EXAMPLES` (default 25) widens the run by hand.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine, text

from api.app import create_app
from api.context import ApiContext
from api.ratelimit import MemoryCounter
from store.db import make_session_factory
from store.migrate import upgrade
from store.secret_box import SecretBox
from tests.conftest import make_org, postgres_database
from worker.webhooks.sender import make_client as make_webhook_client

pytestmark = pytest.mark.postgres

SEED = 20261206
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Rows the fuzzer must not reach by guessing small ids: the admin it acts as, and their token. Were
# it to revoke the token or take the admin's API access away, the rest of the run would only see 401/403.
OUT_OF_REACH = 1_000_003


@pytest.fixture(scope="module")
def fuzz_engine() -> Iterator[Engine]:
    with postgres_database(f"deskbridge_fuzz_{os.getpid()}") as engine:
        upgrade(engine)
        with engine.begin() as connection:
            for sequence in ("members_id_seq", "api_tokens_id_seq"):
                connection.execute(text(f"ALTER SEQUENCE {sequence} RESTART WITH {OUT_OF_REACH}"))
        yield engine


@pytest.fixture(scope="module")
def served(fuzz_engine: Engine) -> Iterator[tuple[str, str]]:
    """The app on a loopback port, and an admin's token."""
    factory = make_session_factory(fuzz_engine)
    org = make_org(factory, "Fuzz")
    app = create_app(
        ApiContext(
            session_factory=factory,
            counter=MemoryCounter(),
            public_base_url="http://127.0.0.1",
            broker_ping=lambda: True,
            rate_limit_per_day=0,  # no daily limit: the fuzzer sends thousands of requests
            secret_box=SecretBox([SecretBox.generate_key()]),
            allow_private_webhooks=False,
            webhook_client=make_webhook_client(allow_private=False),
        )
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}", org.admin_token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def test_no_server_error_and_every_answer_as_documented(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, token = served
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: token {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)
    report = result.stdout + result.stderr
    print(report)  # the figures: operations, test cases, failures, time
    assert result.returncode == 0, report[-20000:]

"""The fuzzing gate: schemathesis over the served app's `/openapi.json`, on PostgreSQL.

The app is served by uvicorn on a loopback port, as in production, and furnished with a few rows of
each resource (so small ids name real rows); schemathesis (its own CLI, the documented way to run
it) reads the schema from it and sends every operation generated requests, valid and invalid, as an
admin, in its coverage, fuzzing and stateful phases. It fails on any 5xx, any status the operation
does not document, a wrong content type, or a body outside the declared response schema. The seed
is fixed and the budget bounded (examples per operation), so the run is repeatable and takes about
two minutes; the figures (operations, test cases, failures, time) are printed.

`FUZZ_EXAMPLES` (default 40) widens the run by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from api.app import create_app
from store.columns import utcnow
from store.db import make_session_factory
from store.migrate import upgrade
from store.secret_box import SecretBox
from tests.api.served import serve
from tests.conftest import api_context, make_org, postgres_database, sending_jobs

pytestmark = pytest.mark.postgres

SEED = 20261206
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Rows the fuzzer must not reach by guessing small ids: the admin it acts as, and their token. Were
# it to revoke the token or take the admin's API access away, the rest of the run would only see 401/403.
OUT_OF_REACH = 1_000_003


@pytest.fixture(scope="module")
def fuzz_engine() -> Iterator[Engine]:
    with postgres_database(f"deskbridge_fuzz_{os.getpid()}") as engine:
        upgrade(engine)
        yield engine


def restart_sequences(engine: Engine, start: int) -> None:
    with engine.begin() as connection:
        for sequence in ("members_id_seq", "api_tokens_id_seq"):
            connection.execute(text(f"ALTER SEQUENCE {sequence} RESTART WITH {start}"))


def furnish(base_url: str, token: str) -> None:
    """A few of everything, made through the API: the fuzzer's small ids (1, 2, 3) then name real rows."""
    start = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    with httpx.Client(base_url=base_url, headers={"Authorization": f"token {token}"}, timeout=30) as client:
        for n in range(1, 4):
            made = [
                client.post("/v1/invitations", json={"email": f"person{n}@fuzz.example"}),
                client.post("/v1/desks", json={"label": f"Desk {n}"}),
                client.post("/v1/teams", json={"name": f"Team {n}"}),
                client.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{n}"}),
                client.post("/v1/hooks", json={"target_url": f"http://127.0.0.1:9/zap{n}", "event": "*"}),
                client.post("/v1/connections", json={"kind": "csv", "name": f"HR {n}"}),
                client.post("/v1/feeds", json={}),
                client.post("/v1/tokens", json={"name": f"spare {n}"}),
                client.post(
                    "/v1/bookings",
                    json={
                        "start": (start + timedelta(days=n)).isoformat(),
                        "end": (start + timedelta(days=n, hours=8)).isoformat(),
                        "desk_id": n,
                    },
                ),
            ]
            for response in made:
                assert response.status_code == 201, (response.request.url, response.text)
            team = client.post(f"/v1/teams/{n}/members", json={"member_ids": [OUT_OF_REACH]})
            assert team.status_code < 300, team.text


@pytest.fixture(scope="module")
def served(fuzz_engine: Engine) -> Iterator[tuple[str, str]]:
    """The app on a loopback port, furnished, and an admin's token."""
    factory = make_session_factory(fuzz_engine)
    restart_sequences(fuzz_engine, OUT_OF_REACH)
    org = make_org(factory, "Fuzz")
    restart_sequences(fuzz_engine, 1)
    box = SecretBox([SecretBox.generate_key()])  # the API's and the worker's alike
    app = create_app(
        # Loopback targets allowed, so the endpoints made above (port 9, nothing listens) exist; a test
        # send to one is refused at once, through the worker's own client. No other name resolves here.
        api_context(
            factory,
            public_base_url="http://127.0.0.1",
            rate_limit_per_day=0,  # no daily limit: the fuzzer sends thousands of requests
            secret_box=box,
            jobs=sending_jobs(factory, box),
        )
    )
    with serve(app) as base_url:
        furnish(base_url, org.admin_token)
        yield base_url, org.admin_token


def test_no_server_error_and_every_answer_as_documented(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, token = served
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: token {token}",
        "--checks",
        CHECKS,
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing,stateful",
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

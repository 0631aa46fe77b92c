"""Every httpie command of the WiggleDesk API document, typed as written (only the host and the
token changed), against a real `deskbridge serve` in its embedded mode."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from store.columns import utcnow
from store.db import make_engine, make_session_factory, transaction
from store.services import bookings, desks, members, teams
from tests.conftest import SHARED_DATA

SEED = SHARED_DATA.parent / "seeds" / "wiggledesk-api.txt"
BIN = Path(sys.executable).parent
TOKEN = re.compile(r"dsk_[A-Za-z0-9_-]{43}")


@dataclass
class Server:
    base: str
    database_url: str
    env: dict[str, str]
    first_output: str
    token: str
    mail_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen([str(BIN / "deskbridge"), "serve"], env=env, stdout=handle, stderr=subprocess.STDOUT)
    base = env["DESKBRIDGE_PUBLIC_BASE_URL"]
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"deskbridge serve did not start:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("embedded")
    port = _free_port()
    database_url = f"sqlite:///{folder / 'deskbridge.db'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DESKBRIDGE_")} | {
        "DESKBRIDGE_DATABASE_URL": database_url,
        "DESKBRIDGE_PORT": str(port),
        "DESKBRIDGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DESKBRIDGE_MAIL_DIR": str(folder / "mail"),
        "COLUMNS": "200",
    }
    subprocess.run([str(BIN / "deskbridge"), "db", "upgrade"], env=env, check=True, capture_output=True)
    process = _start(env, folder / "first.log")
    output = (folder / "first.log").read_text()
    found = TOKEN.search(output)
    assert found, output
    yield Server(f"http://127.0.0.1:{port}", database_url, env, output, found.group(0), folder / "mail")
    _stop(process)


def _seed_commands() -> list[str]:
    if not SEED.exists():
        pytest.skip(f"the WiggleDesk document is not present: {SEED}")
    return [line.strip() for line in SEED.read_text().splitlines() if line.startswith("http ")]


def _httpie(command: str, server: Server, config_dir: Path) -> tuple[int, dict[str, str], object]:
    """Run one documented command; the user's httpie config asks it to print headers and body."""
    words = [
        word.replace("https://wiggledesk.com", server.base).replace("YOUR_SECRET_TOKEN", server.token)
        for word in shlex.split(command)
    ]
    assert words[0] == "http"
    primary, secondary = os.openpty()  # a terminal on stdin, as when typed: httpie reads no body from it
    try:
        done = subprocess.run(
            [str(BIN / "http"), *words[1:]],
            stdin=secondary,
            capture_output=True,
            env={**server.env, "HTTPIE_CONFIG_DIR": str(config_dir)},
            timeout=30,
            check=True,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    head, _, body = done.stdout.decode().replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def _prepare(server: Server) -> None:
    """The admin is in the team TEAM_NAME (as the document's command names it) and has bookings."""
    engine = make_engine(server.database_url)
    factory = make_session_factory(engine)
    now = utcnow()
    with transaction(factory) as session:
        admin = members.get_by_email(session, 1, "admin@example.com")
        desk = desks.create(session, admin.organisation_id, "11")
        team = teams.create(session, admin.organisation_id, "TEAM_NAME")
        teams.add_member(session, team, admin)
        bookings.create(session, admin, start=now - timedelta(days=3), end=now - timedelta(days=3, hours=-8))
        bookings.create(session, admin, start=now - timedelta(hours=1), end=now + timedelta(hours=7), desk_id=desk.id)
        bookings.create(session, admin, start=now + timedelta(days=1), end=now + timedelta(days=1, hours=8))
    engine.dispose()


EXPECTED = {
    "/api/create_membership_invitation/": (201, {"email_invited", "url"}),
    "/api/teams_upcoming_bookings/": (200, {"count", "next", "previous", "results"}),
    "/api/bookings/": (200, {"count", "next", "previous", "results"}),
    "/api/my_upcoming_bookings/": (200, {"count", "next", "previous", "results"}),
    "/api/users_in_office/": (200, {"count", "next", "previous", "results"}),
    "/api/remove_membership/": (201, {"email_invited", "url"}),
}
COUNTS = {
    "/api/teams_upcoming_bookings/": 2,
    "/api/bookings/": 3,
    "/api/my_upcoming_bookings/": 2,
    "/api/users_in_office/": 1,
}


def test_every_documented_command_works(server: Server, tmp_path: Path) -> None:
    commands = _seed_commands()
    (tmp_path / "config.json").write_text(json.dumps({"default_options": ["--print=hb"]}))
    _prepare(server)

    seen = []
    for command in commands:
        status, headers, body = _httpie(command, server, tmp_path)
        route = next(path for path in EXPECTED if path in command)
        seen.append(route)
        expected_status, expected_keys = EXPECTED[route]
        assert status == expected_status, (command, body)
        assert isinstance(body, dict)
        assert set(body) == expected_keys, (command, body)
        assert headers["content-type"] == "application/json"
        assert headers["x-ratelimit-limit"] == "1000"
        if route in COUNTS:
            assert body["count"] == COUNTS[route], (command, body)
        else:
            assert body["email_invited"] == "example@example.com"
            assert headers["location"] == body["url"]
    assert sorted(seen) == sorted(EXPECTED)


def test_the_welcome_commands_work(server: Server, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"default_options": ["--print=hb"]}))
    printed = [line.strip() for line in server.first_output.splitlines() if line.strip().startswith("http ")]

    results = [_httpie(command, server, tmp_path) for command in printed]

    assert [status for status, _, _ in results] == [200, 201]


def test_the_invitation_email_has_a_working_link(server: Server) -> None:
    response = httpx.post(
        f"{server.base}/api/create_membership_invitation/",
        json={"email_invited": "newcomer@example.com"},
        headers={"Authorization": f"token {server.token}"},
    )
    assert response.status_code == 201
    link = None
    for _ in range(100):
        mails = [path.read_text() for path in server.mail_dir.glob("*newcomer@example.com.eml")]
        found = re.search(rf"{re.escape(server.base)}/invitations/\S+", "".join(mails))
        if found:
            link = found.group(0)
            break
        time.sleep(0.1)
    assert link, "no invitation email was written"

    assert httpx.get(link).status_code == 200
    accepted = httpx.post(link, data={"display_name": "New Comer"})
    assert accepted.status_code == 200
    assert "is now a member" in accepted.text
    assert httpx.post(link, data={}).status_code == 410


def test_a_second_start_reuses_everything_and_prints_no_secret(server: Server, tmp_path: Path) -> None:
    port = _free_port()
    env = server.env | {"DESKBRIDGE_PORT": str(port), "DESKBRIDGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    process = _start(env, tmp_path / "second.log")
    _stop(process)
    output = (tmp_path / "second.log").read_text()

    assert TOKEN.search(output) is None
    assert "admin@example.com" in output
    assert (
        httpx.get(f"{server.base}/api/bookings/", headers={"Authorization": f"token {server.token}"}).status_code == 200
    )

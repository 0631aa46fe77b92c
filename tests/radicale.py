"""A real Radicale CalDAV server for the tests: started on a loopback port with a temporary folder and
plain htpasswd users, stopped (and its folder left to pytest's tmp_path) when the block ends."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import caldav

from tests.conftest import unavailable

USERS = {"alice": "secret", "bob": "hunter2"}


@dataclass(frozen=True)
class Radicale:
    url: str  # the server's root, e.g. http://127.0.0.1:PORT/

    def client(self, username: str = "alice") -> caldav.DAVClient:
        """A caldav client as `username`, for the test to arrange or inspect the server's data."""
        return caldav.DAVClient(url=self.url, username=username, password=USERS[username])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def radicale(folder: Path) -> Iterator[Radicale]:
    """Run `python -m radicale` on a free loopback port until the block ends."""
    if importlib.util.find_spec("radicale") is None:
        unavailable("radicale", "the package is not installed (pip install -e '.[dev]')")
    users = folder / "users"
    users.write_text("".join(f"{name}:{password}\n" for name, password in USERS.items()))
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "radicale",
        "--storage-filesystem-folder",
        str(folder / "collections"),
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(users),
        "--auth-htpasswd-encryption",
        "plain",
        "--logging-level",
        "warning",
    ]
    log = (folder / "radicale.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"radicale exited: {(folder / 'radicale.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("radicale did not start listening within 30 s") from None
                time.sleep(0.05)
        yield Radicale(f"http://127.0.0.1:{port}/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

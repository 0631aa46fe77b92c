"""A fake outside system in its own process (so its CPU does not share the bench's GIL), driven over
its stdin/stdout: one JSON command a line in, one JSON answer a line out; its first line says where
it listens. The fakes are `bench.directory_graph`, `bench.calendar_fakes`, `bench.resourceguru_fake`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


class FakeProcess:
    """`python -m <module> <args>`; stderr goes to `log_path`."""

    def __init__(self, name: str, module: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self._info: dict[str, Any] | None = None

    @property
    def info(self) -> dict[str, Any]:
        """What the fake said on start (waits until it is filled and listening)."""
        if self._info is None:
            self._info = self._answer()
        return self._info

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError(f"the fake {self.name} exited with {self.process.returncode}; see {self._log.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **command: Any) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        _ = self.info  # the start line comes first
        stdin: IO[bytes] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()
        return self._answer()

    def stop(self) -> None:
        """Ask it to quit (kill it if it does not), and close its log."""
        if self.process.poll() is None:
            try:
                self.ask(op="quit")
                self.process.wait(timeout=10)
            except (OSError, RuntimeError, subprocess.TimeoutExpired, ValueError):
                self.process.kill()
                self.process.wait()
        self._log.close()

"""Driving wrk: install it if missing, spread requests over many members' tokens, read its figures."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.load import Caller

MARKER = "WRKJSON "

# Each wrk thread reads the callers, then picks one at random per request. `{member}` in the path
# becomes that caller's member id. done() prints the figures as one JSON line.
SCRIPT = """\
local members, secrets = {}, {}
local path_template = %(path)s
local threads = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(%(callers)s) do
    local member, secret = line:match("^(%%d+) (%%S+)$")
    members[#members + 1] = member
    secrets[#secrets + 1] = secret
  end
  math.randomseed(%(seed)d + 7919 * thread_number)
end

function request()
  local i = math.random(#secrets)
  local path = path_template:gsub("{member}", members[i])
  return wrk.format("GET", path, {["Authorization"] = "token " .. secrets[i], ["Accept"] = "application/json"})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%d, "max_us": %%d, '
      .. '"bad_status": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency.mean), latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class Figures:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    bad_status: int  # responses that were not 2xx or 3xx
    socket_errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it from Debian's packages (apt-get update; apt-get install -y wrk)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install")
    return found


def write_callers(callers: list[Caller], path: Path) -> None:
    """One `member_id secret` line per caller, for the Lua script."""
    path.write_text("".join(f"{caller.member_id} {caller.secret}\n" for caller in callers))


def write_script(path: Path, url_path: str, callers_file: Path, seed: int = 1) -> None:
    """A wrk script requesting `url_path` (with `{member}` filled in) as randomly chosen callers."""
    path.write_text(
        SCRIPT
        % {"path": json.dumps(url_path), "callers": json.dumps(str(callers_file)), "seed": seed, "marker": MARKER}
    )


def run(
    wrk: str, base_url: str, script: Path, *, connections: int, threads: int, seconds: float, timeout: float = 5.0
) -> Figures:
    """Run wrk once and read the figures its script prints."""
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        f"--script={script}",
        base_url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data = json.loads(lines[-1].removeprefix(MARKER))
    return Figures(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        bad_status=data["bad_status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
    )

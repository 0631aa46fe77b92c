"""The load generator of `bench.resourceguru_hooks`, in a process of its own (its CPU and event loop
are not the bench's): `python -m bench.resourceguru_load JOB.json`.

The job file says where to post (`host`, `port`, `path`), with which webhook `secret`, the payloads
(`payloads`: a file of one JSON object a line), the first envelope id (`first_id`), how many
deliveries are warm-up (`warmup`: posted first over as many connections, not measured) and over
how many keep-alive connections the rest go (`connections`), and where the results go (`out`).

Every delivery is built and signed before the clock starts, as Resource Guru sends it: the envelope
`{"id", "timestamp", "payload"}` and `X-ResourceGuru-Signature`, the hex HMAC-SHA256 of the raw
body. Each connection (raw asyncio streams on uvloop, HTTP/1.1 keep-alive, one request at a time)
takes the next delivery and measures from just before the request is written to when its response
has been read whole: the acknowledgement time. Results: {"latencies_ms": [...], "statuses":
{code: count}, "seconds": ..., "errors": [...]} in order of sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bench.webhooks_ceiling import read_response
from connectors.resourceguru.webhooks import SIGNATURE_HEADER, sign

USER_AGENT = "ResourceGuru/Webhooks"
T = TypeVar("T")


def requests(job: dict[str, Any]) -> list[bytes]:
    """Every delivery's HTTP request, signed."""
    payloads = [json.loads(line) for line in Path(job["payloads"]).read_text().splitlines() if line]
    stamp = int(time.time())
    prefix = f"POST {job['path']} HTTP/1.1\r\nhost: {job['host']}:{job['port']}\r\nuser-agent: {USER_AGENT}\r\n"
    built = []
    for offset, payload in enumerate(payloads):
        body = json.dumps({"id": job["first_id"] + offset, "timestamp": stamp, "payload": payload}).encode()
        head = (
            f"{prefix}content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{SIGNATURE_HEADER}: {sign(job['secret'], body)}\r\n\r\n"
        )
        built.append(head.encode() + body)
    return built


async def post_all(
    host: str, port: int, items: list[bytes], connections: int
) -> tuple[list[float], Counter[int], list[str], float]:
    """POST every item over `connections` keep-alive connections; (ms per item, statuses, errors, seconds)."""
    latencies = [0.0] * len(items)
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    queue: Iterator[int] = iter(range(len(items)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in queue:
                sent = time.perf_counter()
                writer.write(items[index])
                try:
                    status = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError) as error:
                    errors.append(f"delivery {index}: {type(error).__name__}")
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies[index] = (time.perf_counter() - sent) * 1000
                statuses[status] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, statuses, errors, time.perf_counter() - started


def run(work: Coroutine[Any, Any, T]) -> T:
    """`work` on a uvloop event loop (asyncio's own when uvloop is missing)."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with contextlib.suppress(ImportError):  # uvloop comes with uvicorn[standard]
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(work)


def main(argv: list[str] | None = None) -> int:
    job = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    items = requests(job)
    warmup, measured = items[: job["warmup"]], items[job["warmup"] :]
    # Warmed over as many connections as the burst uses, so the API's pools hold as many database
    # connections as it will need (opening them is not what the burst measures).
    warming = run(post_all(job["host"], job["port"], warmup, job["connections"])) if warmup else None
    warm_statuses = warming[1] if warming else Counter()
    print(json.dumps({"ready": len(items), "warmup": dict(warm_statuses)}), flush=True)
    latencies, statuses, errors, seconds = run(post_all(job["host"], job["port"], measured, job["connections"]))
    result = {
        "latencies_ms": latencies,
        "statuses": {str(code): count for code, count in statuses.items()},
        "warmup_statuses": {str(code): count for code, count in warm_statuses.items()},
        "errors": errors[:20],
        "error_count": len(errors),
        "seconds": seconds,
    }
    Path(job["out"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

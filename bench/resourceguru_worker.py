"""Dramatiq entry point of `bench.resourceguru_hooks`: `dramatiq bench.resourceguru_worker`.

Exactly `deskbridge.worker_main` (settings from DESKBRIDGE_*), except that Resource Guru is the
bench's fake at BENCH_RESOURCEGURU_URL: the settings have no variable for it (the tests set
`DirectoryEndpoints.resourceguru_url` the same way), and a worker applying deliveries reads the
account's roster from there (once a minute per process, sync/peers/rosters.py).
"""

import os
from dataclasses import replace

from deskbridge.worker_main import broker, components
from worker import runtime

runtime.configure(
    replace(
        runtime.current(),
        directory=replace(runtime.current().directory, resourceguru_url=os.environ["BENCH_RESOURCEGURU_URL"]),
    )
)

__all__ = ["broker", "components"]

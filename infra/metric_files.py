"""Names this process's Prometheus files in multi-process mode, before any metric is made.

With PROMETHEUS_MULTIPROC_DIR set (the compose file's shared `metrics` volume), prometheus_client
writes each process's values into files named by its pid; containers reuse the same small pids, so
two workers would write into one file. Each process is named by host name and pid instead. Imported
by `infra/__init__.py`, so it runs before any module that makes a metric imports `infra` (the API's
and the worker's metrics both do): each metric takes its value class when it is created.
"""

from __future__ import annotations

import os
import socket

from prometheus_client import values


def process_identifier() -> str:
    """This process in the shared metrics folder: host name and pid (two containers may both be pid 7).

    prometheus_client splits file names on `_`, so the host name keeps none.
    """
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


def use_process_files() -> None:
    """Name this process's metric files by `process_identifier` when in multi-process mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        values.ValueClass = values.MultiProcessValue(process_identifier)  # type: ignore[no-untyped-call]


use_process_files()

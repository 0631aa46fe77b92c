"""The app served by uvicorn on a loopback port, for tests that need real HTTP: concurrent requests
from threads, and the fuzzer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI


@contextmanager
def serve(app: FastAPI, log_level: str = "warning") -> Iterator[str]:
    """Serve `app` on a free loopback port until the block ends; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        started.wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()

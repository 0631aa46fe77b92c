"""The third-party checker scim2-tester against a real server on a loopback port.

Every check it runs must pass, except those listed in EXPECTED_SKIPS with the reason.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from scim2_client import BaseSyncSCIMClient
from scim2_client.client import RawResponse
from scim2_tester import Status, check_server
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from tests.api.scim.conftest import BOX, connect
from tests.conftest import Org, api_context

# Checks that are skipped, and why; any other skip, or any failure, fails the test.
EXPECTED_SKIPS = {
    # POST /.search across resource types is optional (RFC 7644 §3.4.3); we answer 501, which the
    # checker reads as "not supported" (once for User, once for Group).
    "search_with_attributes": "searching several resource types at once is not supported",
}


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's network engine is written for httpx2; this is the same few lines over httpx."""

    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        url = self.client.build_request("GET", endpoint).url
        return url.scheme == base.scheme and url.netloc == base.netloc and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: RawResponse) -> Any:
        assert isinstance(response, httpx.Response)
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


@pytest.fixture
def server(api_factory: sessionmaker[Session]) -> Iterator[str]:
    """The API under uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(
        api_context(
            api_factory, public_base_url=base, secret_box=BOX, max_body_bytes=1024 * 1024, allow_private_webhooks=False
        )
    )
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield base
    runner.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_scim2_tester_finds_nothing_wrong(server: str, api_factory: sessionmaker[Session], org: Org) -> None:
    _, token = connect(api_factory, org)
    http = httpx.Client(base_url=f"{server}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    with http:
        results = check_server(HttpxSCIMClient(http))

    failed = [result for result in results if result.status in (Status.ERROR, Status.CRITICAL)]
    assert not failed, "\n".join(f"{r.title} [{r.resource_type}]: {r.reason}" for r in failed)
    skipped = {result.title: result.reason for result in results if result.status is Status.SKIPPED}
    assert set(skipped) == set(EXPECTED_SKIPS), skipped
    checked = [result for result in results if result.status is Status.SUCCESS]
    assert len(checked) > 50  # discovery, CRUD and a PATCH check per attribute of User and Group

"""Secrets in URLs are masked in the access log (item 5 of the integrator's issue): a feed's URL, an
invitation's link and a console sign-in link, as uvicorn's access log writes them in a served app,
and token-like query parameters."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient

from api.secret_urls import ACCESS_LOGGER, MaskSecretUrls, mask
from deskbridge.wiring import configure_logging
from tests.api.served import serve
from tests.conftest import Org, auth


@pytest.mark.parametrize(
    ("target", "masked"),
    [
        ("/v1/feeds/AbC-12_x.ics", "/v1/feeds/***.ics"),
        ("/v1/feeds/AbC-12_x.ics?x=1", "/v1/feeds/***.ics?x=1"),
        ("/invitations/tok3n", "/invitations/***"),
        ("/console/sign-in/link/tok3n", "/console/sign-in/link/***"),
        ("/push/microsoft/4?validationToken=abc&x=1", "/push/microsoft/4?validationToken=***&x=1"),
        ("/x?client_secret=s3&page=2", "/x?client_secret=***&page=2"),
        ("/v1/feeds", "/v1/feeds"),
        ("/v1/feeds/12/rotate", "/v1/feeds/12/rotate"),
        ("/v1/invitations/accept", "/v1/invitations/accept"),
        ("/api/bookings/?page=2", "/api/bookings/?page=2"),
    ],
)
def test_mask(target: str, masked: str) -> None:
    assert mask(target) == masked


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_served_apps_access_log_masks_secret_urls(client: TestClient, org: Org) -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    lines = _Lines()
    configure_logging("INFO")  # what the CLI and the ASGI entry do; uvicorn configures its loggers afterwards
    feed = client.post("/v1/feeds", headers=auth(org.member_token)).json()["url"]
    secret = feed.rsplit("/", 1)[1].removesuffix(".ics")
    try:
        with serve(client.app, log_level="info") as url:  # type: ignore[arg-type]
            access.addHandler(lines)  # after uvicorn's set-up, which replaces the logger's handlers
            assert httpx.get(url + feed.removeprefix("http://testserver")).status_code == 200
            assert httpx.get(f"{url}/invitations/inv1tat10n-t0ken").status_code in (200, 404)
            assert httpx.get(f"{url}/console/sign-in/link/s1gn-1n-t0ken").status_code in (200, 303, 404)
    finally:
        access.removeHandler(lines)
        access.filters = [f for f in access.filters if not isinstance(f, MaskSecretUrls)]
    logged = "\n".join(lines.lines)
    assert "/v1/feeds/***.ics" in logged
    assert "/invitations/***" in logged
    assert "/console/sign-in/link/***" in logged
    for leaked in (secret, "inv1tat10n-t0ken", "s1gn-1n-t0ken"):
        assert leaked not in logged

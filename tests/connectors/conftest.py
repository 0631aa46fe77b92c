"""Fixtures the connector tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.listener import Listener


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A loopback listener counting what reaches it, closed after the test."""
    listening = Listener()
    yield listening
    listening.socket.close()

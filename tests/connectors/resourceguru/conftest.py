"""The fake Resource Guru on a hand-moved clock, and the connector wired to it as the worker would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.resourceguru import OAuthApp, ResourceGuru, ResourceGuruClient, TokenKeeper, TokenPair, exchange_code
from tests.fakes.resourceguru import FakeResourceGuru, ManualClock

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)  # a Monday in British Summer Time


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeResourceGuru]:
    with FakeResourceGuru(clock=clock.now) as server:
        yield server


def app_of(fake: FakeResourceGuru) -> OAuthApp:
    return OAuthApp(fake.client_id, fake.client_secret, fake.redirect_uri)


@dataclass
class Vault:
    """The worker's side of `on_refresh`: keeps every pair it is handed (and can refuse to)."""

    pairs: list[TokenPair] = field(default_factory=list)
    fail: bool = False

    def __call__(self, pair: TokenPair) -> None:
        if self.fail:
            raise RuntimeError("the store is down")
        self.pairs.append(pair)


@dataclass
class Wired:
    fake: FakeResourceGuru
    clock: ManualClock
    vault: Vault
    first: TokenPair
    keeper: TokenKeeper
    client: ResourceGuruClient
    reader: ResourceGuru


def wire(
    fake: FakeResourceGuru,
    clock: ManualClock,
    *,
    page_size: int = 100,
    keeper_now: Callable[[], datetime] = lambda: NOW,
    on_refresh: Callable[[TokenPair], None] | None = None,
    **client: Any,
) -> Wired:
    """Connect as an admin would (a code exchanged for a pair) and build the reader on it.

    The keeper's clock is `keeper_now` (a week on, the pair is due for refresh); new pairs go to the
    returned vault, or to `on_refresh` when given.
    """
    first = exchange_code(app_of(fake), fake.issue_code(), base_url=fake.base_url, now=lambda: NOW)
    vault = Vault()
    keeper = TokenKeeper(app_of(fake), first, on_refresh=on_refresh or vault, base_url=fake.base_url, now=keeper_now)
    http = httpx.Client(timeout=10)
    rg = ResourceGuruClient(
        keeper, fake.account, base_url=fake.base_url, http=http, sleep=clock.sleep, clock=clock.now, **client
    )
    reader = ResourceGuru(rg, page_size=page_size, now=lambda: NOW)
    return Wired(fake, clock, vault, first, keeper, rg, reader)


@pytest.fixture
def wired(fake: FakeResourceGuru, clock: ManualClock) -> Iterator[Wired]:
    w = wire(fake, clock, page_size=2)
    yield w
    w.client.close()


def later(days: int) -> datetime:
    return NOW + timedelta(days=days)

"""The listings that run on the event loop (api.deps.api_caller_on_loop, store.reads), served by uvicorn
and asked by many clients at once, on SQLite and PostgreSQL: a burst is counted exactly against the daily
limit on Redis, a revoked token answers no request made after the revocation answered, and reads
backends that the server ends between and during requests cost no answer."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.ratelimit import RedisCounter
from store.db import transaction
from store.services import bookings, members, teams, tokens
from tests.api.served import serve
from tests.api.v1.conftest import hours_from_now
from tests.conftest import REDIS_URL, Org, api_context, auth, make_org

LISTINGS = (
    "/api/my_upcoming_bookings/",
    "/api/bookings/",
    "/api/users_in_office/",
    "/api/teams_upcoming_bookings/?team_name=Platform",
    "/v1/bookings",
    "/v1/bookings?limit=1",
)


def _furnished(factory: sessionmaker[Session]) -> Org:
    """An organisation whose member has a few upcoming bookings and a team."""
    org = make_org(factory)
    with transaction(factory) as session:
        member = members.get(session, org.organisation.id, org.member.id)
        for day in range(3):
            start = hours_from_now(24 * day + 1)
            bookings.create(session, member, start=start, end=start + timedelta(hours=1), source="api")
        teams.add_member(session, teams.create(session, org.organisation.id, "Platform"), member)
    return org


@pytest.fixture
def org(session_factory: sessionmaker[Session]) -> Org:
    return _furnished(session_factory)


@contextmanager
def _served(factory: sessionmaker[Session], rate_limit: int) -> Iterator[str]:
    """The API on `factory`'s store, served by uvicorn, counting on the test Redis; yields its base URL."""
    counter = RedisCounter.from_url(REDIS_URL)
    with serve(create_app(api_context(factory, rate_limit_per_day=rate_limit, counter=counter))) as base:
        yield base


@pytest.fixture
def base(session_factory: sessionmaker[Session], redis_client: redis.Redis) -> Iterator[str]:
    with _served(session_factory, rate_limit=100_000) as served:
        yield served


async def _burst(base: str, headers: dict[str, str], count: int) -> list[httpx.Response]:
    """`count` requests over the listings, all in flight at once."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        calls = (http.get(LISTINGS[n % len(LISTINGS)], headers=headers) for n in range(count))
        return list(await asyncio.gather(*calls))


def test_a_burst_is_counted_exactly_against_the_daily_limit(
    session_factory: sessionmaker[Session], org: Org, redis_client: redis.Redis
) -> None:
    # More requests at once than the asyncio Redis client has connections: each is counted on Redis,
    # none in the process as though Redis were unreachable.
    with _served(session_factory, rate_limit=40) as base:
        answers = asyncio.run(_burst(base, auth(org.member_token), 150))

    codes = collections.Counter(answer.status_code for answer in answers)
    assert codes == {200: 40, 429: 110}
    assert all(answer.headers["x-ratelimit-remaining"] == "0" for answer in answers if answer.status_code == 429)
    assert all("retry-after" in answer.headers for answer in answers if answer.status_code == 429)


def _member_token(factory: sessionmaker[Session], org: Org, name: str) -> tuple[int, int, str]:
    """A new member of `org` with API access and a token: (member id, token id, secret)."""
    with transaction(factory) as session:
        member = members.add(session, org.organisation.id, f"{name}@acme.example", api_access=True)
        token, secret = tokens.create(session, member)
        return member.id, token.id, secret


REVOCATIONS: dict[str, Callable[[httpx.AsyncClient, dict[str, str], int, int], object]] = {
    "token revoked": lambda http, admin, member_id, token_id: http.delete(f"/v1/tokens/{token_id}", headers=admin),
    "member removed": lambda http, admin, member_id, token_id: http.delete(f"/v1/members/{member_id}", headers=admin),
    "API access off": lambda http, admin, member_id, token_id: http.patch(
        f"/v1/members/{member_id}", headers=admin, json={"api_access": False}
    ),
    "organisation API off": lambda http, admin, member_id, token_id: http.patch(
        "/v1/organisation", headers=admin, json={"api_enabled": False}
    ),
}


@pytest.mark.parametrize("revocation", REVOCATIONS)
def test_no_request_made_after_a_revocation_answered_is_served(
    session_factory: sessionmaker[Session], org: Org, base: str, revocation: str
) -> None:
    member_id, token_id, secret = _member_token(session_factory, org, "leaving")
    answered: list[float] = []  # when the revocation answered (monotonic)
    late: list[str] = []  # listings served to requests made after that
    served = 0

    async def ask(http: httpx.AsyncClient, first: int) -> None:
        nonlocal served
        for n in range(first, first + 30):
            made = time.monotonic()
            answer = await http.get(LISTINGS[n % len(LISTINGS)], headers=auth(secret))
            if answer.status_code == 200:
                served += 1
                if answered and made > answered[0]:
                    late.append(answer.request.url.path)
            else:
                assert answer.status_code in (401, 403), answer.text

    async def revoke(http: httpx.AsyncClient) -> None:
        while served < 20:  # a burst under way
            await asyncio.sleep(0.01)
        response = await REVOCATIONS[revocation](http, auth(org.admin_token), member_id, token_id)  # type: ignore[misc]
        assert response.status_code in (200, 204), response.text
        answered.append(time.monotonic())

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=50)) as http:
            await asyncio.gather(revoke(http), *(ask(http, first) for first in range(20)))

    asyncio.run(scenario())
    assert answered
    assert not late


def _end_reads_backends(engine: Engine) -> int:
    """End the API's reads backends on this test's database, as an operator would; how many."""
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'deskbridge-api-reads' AND datname = current_database()"
            )
        )
        return int(ended.scalar() or 0)


def test_reads_backends_ended_between_and_during_requests_cost_no_answer(engine: Engine, org: Org, base: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the reads' own backends are PostgreSQL's")
    ended: list[int] = []
    codes: collections.Counter[int] = collections.Counter()
    for _ in range(3):
        ended.append(_end_reads_backends(engine))  # between requests: the pool's idle connections
        # and during them: those reading (or idle again) once the burst is under way
        ender = threading.Timer(0.05, lambda: ended.append(_end_reads_backends(engine)))
        ender.start()
        try:
            codes.update(answer.status_code for answer in asyncio.run(_burst(base, auth(org.member_token), 100)))
        finally:
            ender.join()

    assert sum(ended) > 0
    assert codes == {200: 300}

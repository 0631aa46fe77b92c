"""Concurrent requests against the served app, on both stores (issue 12, findings 7 and 8).

Each test sends real HTTP requests from threads at once (a barrier lines them up), then counts
what the store holds: racing requests may lose with a 404 or 409, never with a 500, and never
leave a duplicate behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from store.columns import utcnow
from store.db import make_session_factory
from store.models import Invitation, InvitationStatus, OutboxEvent
from store.services import members
from tests.api.served import serve
from tests.conftest import Org, api_context, auth, make_org

THREADS = 20


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def org(factory: sessionmaker[Session]) -> Org:
    return make_org(factory)


@pytest.fixture
def base_url(factory: sessionmaker[Session]) -> Iterator[str]:
    app = create_app(api_context(factory, public_base_url="http://127.0.0.1", rate_limit_per_day=0))
    with serve(app) as url:
        yield url


def at_once(calls: list[Callable[[httpx.Client], httpx.Response]], base_url: str) -> list[httpx.Response]:
    """Run `calls` on their own threads, released together, and return their answers in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            barrier.wait()
            return call(client)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def statuses(responses: list[httpx.Response]) -> list[int]:
    for response in responses:
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
    return sorted(response.status_code for response in responses)


# Finding 7: one pending invitation per address, however many arrive at once.


def invited_events(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        query = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "membership.invited")
        return session.scalar(query) or 0


@pytest.mark.parametrize("earlier", ["none", "sent"])
def test_concurrent_invitations_of_one_address_leave_one(
    base_url: str, factory: sessionmaker[Session], org: Org, earlier: str
) -> None:
    """20 at once, of a new address or of one whose invitation email went out (so each may replace
    it): one pending invitation (one email to send), one `membership.invited` event."""
    email = "newcomer@acme.example"
    if earlier == "sent":
        with factory.begin() as session:
            first = members.invite(session, org.organisation.id, email)
            members.issue_invitation_token(session, first)
            members.mark_invitation_sent(session, first)
    before = invited_events(factory)

    def invite(client: httpx.Client) -> httpx.Response:
        return client.post("/v1/invitations", json={"email": email}, headers=auth(org.admin_token))

    codes = statuses(at_once([invite] * THREADS, base_url))
    assert set(codes) <= {201, 409}, codes
    assert 201 in codes
    with factory() as session:
        pending = session.scalars(
            select(Invitation).where(Invitation.email == email, Invitation.status == InvitationStatus.PENDING)
        ).all()
        unsent = members.unsent_invitations(session, made_before=utcnow() + timedelta(minutes=1))
    assert len(pending) == 1
    assert pending[0].sent_at is None
    assert unsent == [pending[0].id]  # one email will go out, with the one valid link
    assert invited_events(factory) - before == 1


# Finding 8: an update racing a delete answers 404 or 409.

ROUNDS = 15


def _created(client: httpx.Client, org: Org, path: str, body: dict[str, Any]) -> int:
    response = client.post(path, json=body, headers=auth(org.admin_token))
    assert response.status_code == 201, response.text
    created: int = response.json()["id"]
    return created


RACES: dict[str, tuple[str, Callable[[int], dict[str, Any]], list[tuple[str, str, dict[str, Any] | None]]]] = {
    "desk": ("/v1/desks", lambda n: {"label": f"D{n}"}, [("PATCH", "/v1/desks/{id}", {"label": "renamed"})]),
    "team": ("/v1/teams", lambda n: {"name": f"T{n}"}, [("PATCH", "/v1/teams/{id}", {"name": "renamed"})]),
    "webhook": (
        "/v1/webhooks",
        lambda n: {"url": f"http://127.0.0.1:9/{n}"},
        [("PATCH", "/v1/webhooks/{id}", {"description": "renamed"}), ("POST", "/v1/webhooks/{id}/secret/rotate", None)],
    ),
    "feed": ("/v1/feeds", lambda n: {}, [("POST", "/v1/feeds/{id}/rotate", None)]),
}


@pytest.mark.parametrize("kind", list(RACES))
def test_an_update_racing_a_delete_is_404_or_409(base_url: str, org: Org, kind: str) -> None:
    create_path, body_of, updates = RACES[kind]
    with httpx.Client(base_url=base_url, timeout=60) as client:
        ids = [_created(client, org, create_path, body_of(n)) for n in range(ROUNDS)]
    calls: list[Callable[[httpx.Client], httpx.Response]] = []
    for resource_id in ids:
        path = f"{create_path}/{resource_id}"
        calls.append(lambda client, path=path: client.delete(path, headers=auth(org.admin_token)))
        for method, template, body in updates:
            url = template.format(id=resource_id)
            calls.append(
                lambda client, method=method, url=url, body=body: client.request(
                    method, url, json=body, headers=auth(org.admin_token)
                )
            )
    codes = statuses(at_once(calls, base_url))
    assert set(codes) <= {200, 204, 404, 409}, codes
    assert codes.count(204) == ROUNDS  # every delete went through

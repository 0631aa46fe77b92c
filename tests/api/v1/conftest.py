"""Helpers for the /v1 tests: problem+json checks, a whole-store snapshot, and a furnished organisation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import make_engine, transaction
from store.migrate import upgrade
from store.models import ApiToken, Base, ConnectionKind, OutboxEvent, Role
from store.secret_box import SecretBox
from store.services import bookings, connections, desks, feeds, members, teams, tokens, webhook_endpoints
from sync.directory import plans
from tests.conftest import Org

Snapshot = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_engine(migrated_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store, copied from one migrated once per run: migrating is most of a test's time."""
    path = tmp_path / "store.db"
    shutil.copyfile(migrated_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with `status` (and, if given, the problem `code`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if code is not None:
        assert body["type"].rsplit("/", 1)[-1] == code, body
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    """The fields a 422 problem names."""
    return {item["field"] for item in body.get("errors", [])}


# Authenticating stamps the token's last use (and so its updated_at): not a write of the request's.
_TOUCHED_BY_AUTH = {("api_tokens", "last_used_at"), ("api_tokens", "updated_at")}


def snapshot(factory: sessionmaker[Session], but: frozenset[str] | set[str] = frozenset()) -> Snapshot:
    """Every row of every table (but the tables named), but for the columns authentication touches."""
    with factory() as session:
        return {
            table.name: sorted(
                (
                    tuple(row)
                    for row in session.execute(
                        select(*[c for c in table.c if (table.name, c.name) not in _TOUCHED_BY_AUTH])
                    )
                ),
                key=repr,
            )
            for table in Base.metadata.sorted_tables
            if table.name not in but
        }


@contextmanager
def nothing_written(factory: sessionmaker[Session], but: frozenset[str] | set[str] = frozenset()) -> Iterator[None]:
    """The block leaves the store exactly as it found it (but the tables named: a plan kept, say)."""
    before = snapshot(factory, but)
    yield
    assert snapshot(factory, but) == before


def iso(value: datetime) -> str:
    return value.isoformat()


def hours_from_now(hours: float) -> datetime:
    return (utcnow() + timedelta(hours=hours)).replace(microsecond=0)


def add_member(
    factory: sessionmaker[Session],
    org: Org,
    email: str,
    *,
    role: Role = Role.MEMBER,
    api_access: bool = True,
) -> tuple[int, str]:
    """An active member of `org` and a token of theirs."""
    with transaction(factory) as session:
        member = members.add(session, org.organisation.id, email, role=role, api_access=api_access)
        _, secret = tokens.create(session, member)
        return member.id, secret


@dataclass
class World:
    """An organisation furnished with one of everything, and the ids every route needs."""

    org: Org
    member_id: int
    desk_id: int
    team_id: int
    booking_id: int
    invitation_id: int
    token_id: int
    webhook_id: int
    hook_id: int
    connection_id: int
    event_id: str  # the booking's booking.created
    feed_id: int  # an ICS feed of the member's bookings
    plan_id: str  # an open plan of the connection

    def ids(self) -> dict[str, int | str]:
        return {
            "member_id": self.member_id,
            "desk_id": self.desk_id,
            "team_id": self.team_id,
            "booking_id": self.booking_id,
            "invitation_id": self.invitation_id,
            "token_id": self.token_id,
            "webhook_id": self.webhook_id,
            "hook_id": self.hook_id,
            "connection_id": self.connection_id,
            "event_id": self.event_id,
            "event": "booking.created",
            "feed_id": self.feed_id,
            "plan_id": self.plan_id,
        }


# Signing secrets of furnished endpoints; the routes walked over them never need them in clear.
FURNISH_BOX = SecretBox([SecretBox.generate_key()])


def furnish(factory: sessionmaker[Session], org: Org) -> World:
    """A desk, a team with the member in it, a booking of the member's, a pending invitation, a
    webhook endpoint, a REST hook, a CSV connection and an ICS feed of the member's bookings."""
    with transaction(factory) as session:
        organisation_id = org.organisation.id
        member = members.get(session, organisation_id, org.member.id)
        desk = desks.create(session, organisation_id, "11", building="HQ")
        team = teams.create(session, organisation_id, "Platform")
        teams.add_member(session, team, member)
        booking = bookings.create(
            session, member, start=hours_from_now(0.25), end=hours_from_now(3), desk_id=desk.id, details="Focus"
        )
        invitation = members.invite(session, organisation_id, f"new@{org.organisation.slug}.example")
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.member_id == member.id))
        assert token_id is not None
        webhook, _ = webhook_endpoints.create_endpoint(
            session, organisation_id, "https://hooks.example.com/deskbridge", box=FURNISH_BOX, event_types=["booking.*"]
        )
        hook, _ = webhook_endpoints.create_endpoint(
            session,
            organisation_id,
            "https://hooks.example.com/zapier",
            box=FURNISH_BOX,
            event_types=["booking.created"],
            payload_format="array",
            kind="rest_hook",
        )
        connection, _ = connections.create(session, FURNISH_BOX, organisation_id, ConnectionKind.CSV, "HR export")
        feed, _ = feeds.create(session, organisation_id, member_id=member.id)
        ids = (member.id, desk.id, team.id, booking.id, invitation.id, token_id, webhook.id, hook.id, connection.id)
        feed_id = feed.id
        plan_id = plans.make(session, connection.id, plans.Source()).public_id
    with factory() as session:
        event_id = session.scalar(
            select(OutboxEvent.id).where(
                OutboxEvent.organisation_id == organisation_id, OutboxEvent.type == "booking.created"
            )
        )
    assert event_id is not None
    return World(org, *ids, event_id, feed_id, plan_id)


@pytest.fixture
def world(api_factory: sessionmaker[Session], org: Org) -> World:
    return furnish(api_factory, org)


@pytest.fixture
def other_world(api_factory: sessionmaker[Session], other_org: Org) -> World:
    return furnish(api_factory, other_org)


@dataclass(frozen=True)
class Call:
    """One /v1 route, called with a plausible request."""

    method: str
    template: str
    json: dict[str, Any] | None = None
    admin_only: bool = False

    def path(self, ids: dict[str, int | str]) -> str:
        return self.template.format(**ids)

    @property
    def has_ids(self) -> bool:
        return "_id}" in self.template  # "{event}" in the samples route is a type, not an id


def every_call() -> list[Call]:
    """Every authenticated /v1 route (the accept route needs no token and is tested on its own)."""
    start, end = iso(hours_from_now(30)), iso(hours_from_now(32))
    return [
        Call("GET", "/v1/organisation"),
        Call("PATCH", "/v1/organisation", {"timezone": "Europe/Paris"}, admin_only=True),
        Call("GET", "/v1/members"),
        Call("GET", "/v1/members/{member_id}"),
        Call("PATCH", "/v1/members/{member_id}", {"display_name": "Renamed"}, admin_only=True),
        Call("DELETE", "/v1/members/{member_id}", admin_only=True),
        Call("POST", "/v1/members/{member_id}/restore", admin_only=True),
        Call("POST", "/v1/invitations", {"email": "someone@new.example"}, admin_only=True),
        Call("GET", "/v1/invitations"),
        Call("GET", "/v1/invitations/{invitation_id}"),
        Call("POST", "/v1/invitations/{invitation_id}/revoke", admin_only=True),
        Call("POST", "/v1/teams", {"name": "Design"}, admin_only=True),
        Call("GET", "/v1/teams"),
        Call("GET", "/v1/teams/{team_id}"),
        Call("PATCH", "/v1/teams/{team_id}", {"name": "Renamed"}, admin_only=True),
        Call("DELETE", "/v1/teams/{team_id}", admin_only=True),
        Call("GET", "/v1/teams/{team_id}/members"),
        Call("POST", "/v1/teams/{team_id}/members", {"member_ids": [1]}, admin_only=True),
        Call("DELETE", "/v1/teams/{team_id}/members/{member_id}", admin_only=True),
        Call("POST", "/v1/desks", {"label": "42"}, admin_only=True),
        Call("GET", "/v1/desks"),
        Call("GET", "/v1/desks/{desk_id}"),
        Call("PATCH", "/v1/desks/{desk_id}", {"zone": "North"}, admin_only=True),
        Call("DELETE", "/v1/desks/{desk_id}", admin_only=True),
        Call("POST", "/v1/bookings", {"start": start, "end": end}),
        Call("GET", "/v1/bookings"),
        Call("GET", "/v1/bookings/{booking_id}"),
        Call("PATCH", "/v1/bookings/{booking_id}", {"details": "Moved"}),
        Call("POST", "/v1/bookings/{booking_id}/cancel"),
        Call("POST", "/v1/bookings/{booking_id}/check-in"),
        Call("POST", "/v1/bookings/{booking_id}/check-out"),
        Call("POST", "/v1/tokens", {"name": "laptop"}),
        Call("GET", "/v1/tokens"),
        Call("DELETE", "/v1/tokens/{token_id}"),
        Call("GET", "/v1/events", admin_only=True),
        Call("GET", "/v1/event-types"),
        Call("POST", "/v1/webhooks", {"url": "https://hooks.example.com/new"}, admin_only=True),
        Call("GET", "/v1/webhooks", admin_only=True),
        Call("GET", "/v1/webhooks/{webhook_id}", admin_only=True),
        Call("PATCH", "/v1/webhooks/{webhook_id}", {"description": "Renamed"}, admin_only=True),
        Call("DELETE", "/v1/webhooks/{webhook_id}", admin_only=True),
        Call("POST", "/v1/webhooks/{webhook_id}/enable", admin_only=True),
        Call("GET", "/v1/webhooks/{webhook_id}/secret", admin_only=True),
        Call("POST", "/v1/webhooks/{webhook_id}/secret/rotate", admin_only=True),
        Call("POST", "/v1/webhooks/{webhook_id}/test", admin_only=True),
        Call("GET", "/v1/webhooks/{webhook_id}/deliveries", admin_only=True),
        Call("POST", "/v1/webhooks/{webhook_id}/deliveries/replay", {"event_id": "evt_x"}, admin_only=True),
        Call("POST", "/v1/webhooks/{webhook_id}/deliveries/replay-failed", {"since": start}, admin_only=True),
        Call("GET", "/v1/events/{event_id}/deliveries", admin_only=True),
        Call("POST", "/v1/hooks", {"target_url": "https://hooks.example.com/z", "event": "booking.*"}, admin_only=True),
        Call("GET", "/v1/hooks", admin_only=True),
        Call("DELETE", "/v1/hooks/{hook_id}", admin_only=True),
        Call("GET", "/v1/hooks/samples/{event}", admin_only=True),
        Call("POST", "/v1/connections", {"kind": "csv", "name": "HR"}, admin_only=True),
        Call("GET", "/v1/connections", admin_only=True),
        Call("GET", "/v1/connections/{connection_id}", admin_only=True),
        Call("GET", "/v1/connections/{connection_id}/calendars", admin_only=True),
        Call("PATCH", "/v1/connections/{connection_id}", {"name": "Renamed"}, admin_only=True),
        Call("DELETE", "/v1/connections/{connection_id}", admin_only=True),
        Call("POST", "/v1/connections/{connection_id}/sync", admin_only=True),
        Call("POST", "/v1/connections/{connection_id}/token", admin_only=True),
        Call("POST", "/v1/connections/{connection_id}/import", {"csv": "email\na@x.example\n"}, admin_only=True),
        Call("POST", "/v1/connections/{connection_id}/plan", admin_only=True),
        Call("GET", "/v1/connections/{connection_id}/plans/{plan_id}", admin_only=True),
        Call("POST", "/v1/connections/{connection_id}/plans/{plan_id}/apply", admin_only=True),
        Call("POST", "/v1/connections/{connection_id}/plans/{plan_id}/reject", admin_only=True),
        Call("GET", "/v1/external-events"),
        Call("POST", "/v1/feeds", {}),
        Call("GET", "/v1/feeds"),
        Call("POST", "/v1/feeds/{feed_id}/rotate"),
        Call("DELETE", "/v1/feeds/{feed_id}"),
    ]


PUBLIC_CALLS = [Call("POST", "/v1/invitations/accept", {"token": "x"})]

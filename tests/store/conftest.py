"""Helpers for the store suite: an organisation per test, its new outbox events, and refused calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.errors import StoreError
from store.models import ApiToken, Base, Booking, Desk, Member, OutboxEvent
from store.services import bookings, desks, members, tokens
from tests.conftest import Org, make_org


@pytest.fixture
def acme(session_factory: sessionmaker[Session]) -> Org:
    return make_org(session_factory)


@dataclass
class Outbox:
    """An organisation's outbox from the moment it was watched."""

    factory: sessionmaker[Session]
    organisation_id: int
    mark: int = 0

    def skip(self) -> None:
        """Forget everything recorded so far."""
        self.mark = last_seq(self.factory, self.organisation_id)

    def new(self) -> list[OutboxEvent]:
        with self.factory() as session:
            return list(
                session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.organisation_id == self.organisation_id, OutboxEvent.seq > self.mark)
                    .order_by(OutboxEvent.seq)
                )
            )

    def types(self) -> list[str]:
        return [event.type for event in self.new()]

    def only(self, type_: str) -> dict[str, Any]:
        """The data of the single new event, which must be of `type_`."""
        new = self.new()
        assert [event.type for event in new] == [type_]
        return new[0].data


def last_seq(factory: sessionmaker[Session], organisation_id: int) -> int:
    with factory() as session:
        query = select(func.max(OutboxEvent.seq)).where(OutboxEvent.organisation_id == organisation_id)
        return session.scalar(query) or 0


@pytest.fixture
def outbox(session_factory: sessionmaker[Session], acme: Org) -> Outbox:
    """acme's outbox, watched after its set-up."""
    watched = Outbox(session_factory, acme.organisation.id)
    watched.skip()
    return watched


def dump(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with factory() as session:
        return {
            table.name: [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }


@dataclass
class Attempt:
    session: Session
    error: Any = field(default=None)


@contextmanager
def refused(factory: sessionmaker[Session], error: type[StoreError]) -> Iterator[Attempt]:
    """Run the block in a transaction that must raise `error`; afterwards nothing may have changed."""
    before = dump(factory)
    try:
        with transaction(factory) as session:
            attempt = Attempt(session)
            yield attempt
    except error as raised:
        attempt.error = raised
    else:
        pytest.fail(f"{error.__name__} was not raised")
    assert dump(factory) == before


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def slot(start_in_hours: float, length_hours: float = 1, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """A slot starting `start_in_hours` from now (or from `now`), rounded to the minute."""
    base = (now or utcnow()).replace(second=0, microsecond=0)
    start = base + hours(start_in_hours)
    return start, start + hours(length_hours)


def member_in(session: Session, org: Org, who: str = "member") -> Member:
    """acme's admin or member, loaded in `session`."""
    person: Member = getattr(org, who)
    return members.get(session, org.organisation.id, person.id)


def make_desk(factory: sessionmaker[Session], org: Org, label: str = "11", **options: Any) -> int:
    with transaction(factory) as session:
        return desks.create(session, org.organisation.id, label, **options).id


def book(
    factory: sessionmaker[Session],
    org: Org,
    start: datetime,
    end: datetime,
    *,
    desk_id: int | None = None,
    who: str = "member",
) -> int:
    with transaction(factory) as session:
        return bookings.create(session, member_in(session, org, who), start=start, end=end, desk_id=desk_id).id


def load_booking(factory: sessionmaker[Session], booking_id: int) -> Booking:
    with factory() as session:
        return session.get_one(Booking, booking_id)


def load_desk(factory: sessionmaker[Session], desk_id: int) -> Desk:
    with factory() as session:
        return session.get_one(Desk, desk_id)


def live_tokens(session: Session, organisation_id: int, member_id: int | None = None) -> list[ApiToken]:
    """The organisation's (or a member's) unrevoked tokens, oldest first."""
    return list(session.scalars(tokens.select_tokens(organisation_id, member_id=member_id).order_by(ApiToken.id)))

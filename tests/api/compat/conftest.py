"""An organisation with a team, desks and bookings around now, for the WiggleDesk routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.services import bookings, desks, teams
from tests.conftest import Org


@dataclass
class Office:
    org: Org
    past_id: int
    today_id: int
    future_id: int
    cancelled_id: int
    team_name: str


def _day(offset: int, hour: int) -> datetime:
    base = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=offset, hours=hour)


@pytest.fixture
def office(api_factory: sessionmaker[Session], org: Org) -> Office:
    with transaction(api_factory) as session:
        member = session.merge(org.member)
        desk_11 = desks.create(session, org.organisation.id, "11")
        desk_9 = desks.create(session, org.organisation.id, "9")
        team = teams.create(session, org.organisation.id, "Platform")
        teams.add_member(session, team, member)
        past = bookings.create(session, member, start=_day(-3, 9), end=_day(-3, 17), desk_id=desk_9.id)
        now = utcnow()
        today = bookings.create(
            session,
            member,
            start=now - timedelta(hours=1),
            end=now + timedelta(hours=1),
            desk_id=desk_11.id,
            details="Client meeting",
            reason="Other",
        )
        future = bookings.create(session, member, start=_day(2, 9), end=_day(3, 17), desk_id=desk_9.id)
        cancelled = bookings.create(session, member, start=_day(5, 9), end=_day(5, 17))
        bookings.cancel(session, cancelled)
        ids = (past.id, today.id, future.id, cancelled.id)
    return Office(org, *ids, team_name="Platform")


def london(value: datetime) -> str:
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%d %H:%M")

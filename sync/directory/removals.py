"""The removal limit: how many people a connection's syncs may remove within an hour before the
removals wait for an admin (`settings.removal_limit`, validated by the kind's settings model).

Counted over a rolling hour of what was applied (store.services.plans `removed_since`), so SCIM
deletes and push notifications arriving one by one add up as one big sync's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.kind import RemovalLimit
from store.columns import utcnow
from store.models import Connection
from store.services import directory, plans


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a sync's removals are held, and the figures that decided it."""

    hold: bool
    limit: int
    removed_last_hour: int


def limit_of(session: Session, connection: Connection) -> int:
    """The removals the connection may apply within an hour: the larger of its people and percent figures."""
    setting = RemovalLimit.model_validate(connection.settings.get("removal_limit") or {})
    people = directory.people_in_scope(session, connection.id)
    return max(setting.people, int(setting.percent * people / 100))


def judge(session: Session, connection: Connection, proposed: int, now: datetime | None = None) -> Verdict:
    """Whether `proposed` removals must wait for an admin: they would take the hour's removals past the
    limit, or the connection holds removals already (those that follow join them)."""
    if proposed <= 0:
        return Verdict(False, 0, 0)
    recent = plans.removed_since(session, connection.id, (now or utcnow()) - plans.REMOVAL_WINDOW)
    limit = limit_of(session, connection)
    return Verdict(connection.held_plan_id is not None or recent + proposed > limit, limit, recent)

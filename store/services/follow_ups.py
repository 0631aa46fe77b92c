"""Follow-ups: work a commit owes after it, recorded in that commit's transaction.

What happens after a commit goes to the queue, and a queue can be down when the commit ends. So
the change also records what it owes (`record`), in the same transaction: the queue does the work
at once when it can, and the scheduler's sweep (worker/follow_ups.py) queues what is still owed
`GRACE` later (the enqueue failed, the job was lost). The job deletes the row when it finished
(`seen` at its start, `done` at its end: a request made meanwhile stays owed). A kind's job must
be idempotent: the sweep may queue it beside a job still waiting in a busy queue.

The kinds, each with its target and the job that does it:

- `CALENDAR_WRITE` (booking): the booking written into its person's Outlook, Google or CalDAV calendars
  (worker/calendar/outbound.py). Recorded only when the person has such a calendar.
- `CONNECTION_CALENDARS` (connection): its calendars made, dropped, retried and synced after an
  admin changed it (worker/calendar/jobs.py `follow`).
- `office_rules`, `calendar_window_days`, `calendar_busy_only` (organisation): the setting of that
  name changed, stored events are brought in line (worker/calendar/reevaluate.py `plan`);
  `BLANK_AGAIN` (organisation): details blanked once more a sync's lease after privacy was turned on.
- `CALENDAR_JUDGE`, `CALENDAR_REREAD` (calendar): one calendar's stored events judged again by the
  office rules, or the calendar read again whole (`reevaluate_calendar`), as fanned out by `plan`.
- `REMOVALS_HELD_MAIL` (connection): the organisation's admins told that the connection holds removals
  for them (worker/directory/held_mail.py), recorded by `plans.hold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.models import FollowUp

CALENDAR_WRITE = "calendar_write"
CONNECTION_CALENDARS = "connection_calendars"
CALENDAR_SETTINGS = ("office_rules", "calendar_window_days", "calendar_busy_only")
BLANK_AGAIN = "blank_again"
CALENDAR_JUDGE = "calendar_judge"
CALENDAR_REREAD = "calendar_reread"
REMOVALS_HELD_MAIL = "removals_held_mail"
KINDS = frozenset(
    {
        CALENDAR_WRITE,
        CONNECTION_CALENDARS,
        *CALENDAR_SETTINGS,
        BLANK_AGAIN,
        CALENDAR_JUDGE,
        CALENDAR_REREAD,
        REMOVALS_HELD_MAIL,
    }
)

# How long the queue has to do the work before the sweep queues it again; then the delay doubles
# with each attempt, up to MAX_DELAY, and after MAX_ATTEMPTS (about a day and a half) it is given up.
GRACE = timedelta(minutes=2)
MAX_DELAY = timedelta(hours=6)
MAX_ATTEMPTS = 12


def record(
    session: Session,
    kind: str,
    target_id: int,
    organisation_id: int,
    *,
    due_in: timedelta = GRACE,
    now: datetime | None = None,
) -> None:
    """Owe `kind` of work on `target_id`, in the caller's transaction: one statement, a new row or
    the waiting one asked again (a new generation, due `due_in` from now, attempts counted afresh)."""
    if kind not in KINDS:
        raise ValueError(f"unknown follow-up kind {kind!r}")
    due = (now or utcnow()) + due_in
    session.execute(
        _upsert(session), {"kind": kind, "target_id": target_id, "organisation_id": organisation_id, "due_at": due}
    )


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(FollowUp)
    return sqlite.insert(FollowUp)


def _asked_again(statement: postgresql.Insert | sqlite.Insert) -> postgresql.Insert | sqlite.Insert:
    """A row already owed is asked again: a new generation, due as the new one, attempts afresh."""
    return statement.on_conflict_do_update(
        index_elements=["kind", "target_id"],
        # Named, not `statement.excluded.due_at`: building that column collection costs more than the insert.
        set_={"generation": FollowUp.generation + 1, "due_at": literal_column("excluded.due_at"), "attempts": 0},
    )


_UPSERTS: dict[str, postgresql.Insert | sqlite.Insert] = {}


def _upsert(session: Session) -> postgresql.Insert | sqlite.Insert:
    """`record`'s statement, built once per dialect: it runs with most bookings, so building it each
    time (half a millisecond) would cost more than running it."""
    dialect = session.get_bind().dialect.name
    if dialect not in _UPSERTS:
        _UPSERTS[dialect] = _asked_again(
            _insert(session).values(
                kind=bindparam("kind"),
                target_id=bindparam("target_id"),
                organisation_id=bindparam("organisation_id"),
                generation=1,
                due_at=bindparam("due_at", type_=FollowUp.due_at.type),
                attempts=0,
            )
        )
    return _UPSERTS[dialect]


def record_many(
    session: Session, kind: str, target_ids: Sequence[int], organisation_id: int, *, now: datetime | None = None
) -> None:
    """`record` for many targets of one organisation, in one statement."""
    if kind not in KINDS:
        raise ValueError(f"unknown follow-up kind {kind!r}")
    if not target_ids:
        return
    due = (now or utcnow()) + GRACE
    targets = sorted(set(target_ids))
    for start in range(0, len(targets), _CHUNK):
        statement = _insert(session).values(
            [
                {"kind": kind, "target_id": target, "organisation_id": organisation_id, "generation": 1, "due_at": due}
                for target in targets[start : start + _CHUNK]
            ]
        )
        session.execute(_asked_again(statement))


_CHUNK = 1000  # rows a statement: five parameters each, within SQLite's limit of 32,766


def seen(session: Session, kind: str, target_id: int) -> int | None:
    """The generation of `kind` owed on `target_id`, as a job starting its work sees it (None: none owed)."""
    return session.scalar(select(FollowUp.generation).where(FollowUp.kind == kind, FollowUp.target_id == target_id))


def done(session: Session, kind: str, target_id: int, generation: int | None) -> None:
    """The work seen as `generation` is done: forget it, unless it was asked for again meanwhile."""
    if generation is None:
        return
    session.execute(
        delete(FollowUp).where(
            FollowUp.kind == kind, FollowUp.target_id == target_id, FollowUp.generation == generation
        ),
        execution_options={"synchronize_session": False},
    )


def put_off(session: Session, kind: str, target_id: int, generation: int | None, until: datetime) -> None:
    """The job of `generation` failed and its queue retries it: the sweep leaves it alone until `until`
    (a request made meanwhile keeps its own due time)."""
    if generation is None:
        return
    session.execute(
        update(FollowUp)
        .where(
            FollowUp.kind == kind,
            FollowUp.target_id == target_id,
            FollowUp.generation == generation,
            FollowUp.due_at < until,
        )
        .values(due_at=until),
        execution_options={"synchronize_session": False},
    )


@dataclass(frozen=True, slots=True)
class Owed:
    """A follow-up the sweep found due."""

    kind: str
    target_id: int
    attempts: int


def due(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[FollowUp]:
    """Up to `limit` follow-ups due by `now`, oldest first, locked until the transaction ends (rows
    another sweep holds are skipped, PostgreSQL). One range scan of the `due_at` index."""
    return list(
        session.scalars(
            select(FollowUp)
            .where(FollowUp.due_at <= (now or utcnow()))
            .order_by(FollowUp.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def postpone(row: FollowUp, now: datetime | None = None) -> None:
    """The sweep queued `row` again: it is due next after a delay that doubles with each attempt."""
    row.due_at = (now or utcnow()) + min(GRACE * 2**row.attempts, MAX_DELAY)
    row.attempts += 1


def exhausted(row: FollowUp) -> bool:
    """Whether the sweep queued `row` as often as it will (its job kept failing)."""
    return row.attempts >= MAX_ATTEMPTS


def pending(session: Session, kind: str | None = None) -> list[Owed]:
    """What is owed (of one kind), by kind and target: for tests and an admin's look."""
    query = select(FollowUp.kind, FollowUp.target_id, FollowUp.attempts).order_by(FollowUp.kind, FollowUp.target_id)
    if kind is not None:
        query = query.where(FollowUp.kind == kind)
    return [Owed(*row) for row in session.execute(query)]

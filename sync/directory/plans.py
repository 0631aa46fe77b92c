"""Plans of a connection: what a sync would do, kept for an admin, and applied only as it was planned.

A plan is made the way a sync runs (engine: stage, then `plan_people`/`plan_teams`) inside a savepoint
that is rolled back, so nothing changes and the plan is what the sync would do. Applying one reads the
directory again and plans again in the applying transaction: when the connection has not synced since
(its cursor and round) and the new plan's fingerprint is the stored one, that plan is applied (the
same `apply_people`/`sync_teams` a sync uses); otherwise nothing changes and the fresh plan is kept and
returned instead. A held plan (the removals a sync held over the removal limit) is approved the same
way, from what is staged: its removals are applied if they all still stand, else a fresh held plan
replaces it; rejected, its people stay and are not proposed again until the directory changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser
from store.errors import Conflict
from store.models import Connection, PlanStatus, SyncPlan
from store.services import connections, directory, plans
from store.services.directory import Staged
from sync.directory import decisions, engine, removals
from sync.directory.decisions import Person, TeamChange


@dataclass(frozen=True)
class Source:
    """What a plan is made from: pages read from the directory, or a CSV file's page; none (`pages` is
    None) for a pushed directory, whose sync decides everyone again from what it was pushed."""

    pages: list[DirectoryPage] | None = None
    file: bool = False  # a CSV file: kept with the plan, and only its teams are brought in step

    @property
    def cursor(self) -> str | None:
        """Where a complete read ends (the connection keeps it once applied); None when nothing was read."""
        last = [page.cursor for page in self.pages or () if page.last]
        return last[-1] if last else None

    def stored(self) -> dict[str, Any] | None:
        """A file's page, kept with its plan so the file is applied as it was planned."""
        if not self.file or not self.pages:
            return None
        page = self.pages[0]
        groups = [{**asdict(group), "members": _listed(group.members)} for group in page.groups]
        return {
            "users": [asdict(user) for user in page.users],
            "groups": [{**group, "added": [], "removed": []} for group in groups],
            "full_users": page.full_users,
            "full_groups": page.full_groups,
        }

    @classmethod
    def of_stored(cls, stored: dict[str, Any] | None) -> Source:
        """The source a plan kept (a file's), or none (read again, or everyone decided again)."""
        if stored is None:
            return cls()
        users = tuple(DirectoryUser(**item) for item in stored["users"])
        groups = tuple(
            DirectoryGroup(
                item["external_id"],
                item["name"],
                item["email"],
                None if item["members"] is None else frozenset(item["members"]),
                deleted=item["deleted"],
            )
            for item in stored["groups"]
        )
        page = DirectoryPage(
            users=users, groups=groups, full_users=stored["full_users"], full_groups=stored["full_groups"], last=True
        )
        return cls([page], file=True)


Read = Callable[[int], Source]  # reads a connection's directory for a plan (worker/directory/plans.py)


@dataclass
class Outcome:
    """What applying (or approving) a plan came to: applied, or a fresh plan instead (the directory moved on)."""

    plan: SyncPlan
    applied: bool
    tally: engine.Tally = field(default_factory=engine.Tally)
    fresh: SyncPlan | None = None


@dataclass
class _Planned:
    context: engine.Context
    people: list[Person]
    teams: list[TeamChange]
    only: set[str] | None
    notes: list[str]


def make(session: Session, connection_id: int, source: Source, progress: engine.Progress | None = None) -> SyncPlan:
    """Plan a sync of the connection from `source` and keep the plan (open, for an hour), changing nothing
    else: staged in a savepoint that is rolled back. The caller commits."""
    connection = session.get_one(Connection, connection_id)
    cursor, round_ = connection.cursor, connection.round
    savepoint = session.begin_nested()
    try:
        planned = _plan(session, connection_id, source, progress)
        changes = decisions.describe(session, planned.people, planned.teams)
        notes = [*planned.notes, *_would_hold(session, planned.context.connection, changes)]
    finally:
        savepoint.rollback()
    return plans.create(
        session,
        connection,
        changes=changes,
        counts=decisions.counts_of(changes),
        notes=notes,
        fingerprint=decisions.fingerprint(changes),
        cursor=cursor,
        round_=round_,
        source=source.stored(),
    )


def apply(session: Session, plan: SyncPlan, source: Source) -> Outcome:
    """Apply an open plan exactly, when the directory (read again into `source`) has not moved on;
    otherwise change nothing but keep the fresh plan (the outcome's `fresh`). The caller commits."""
    plans.check_open(plan)
    if plan.status is PlanStatus.HELD:
        raise Conflict(f"plan {plan.public_id} holds removals: approve it instead", code="plan_held")
    connection = session.get_one(Connection, plan.connection_id)
    unmoved = (connection.cursor, connection.round) == (plan.cursor, plan.round)
    savepoint = session.begin_nested()
    try:
        planned = _plan(session, plan.connection_id, source)
        changes = decisions.describe(session, planned.people, planned.teams)
    except BaseException:
        savepoint.rollback()
        raise
    if not unmoved or decisions.fingerprint(changes) != plan.fingerprint:
        notes = [*planned.notes, *_would_hold(session, planned.context.connection, changes)]
        savepoint.rollback()
        fresh = plans.create(
            session,
            connection,
            changes=changes,
            counts=decisions.counts_of(changes),
            notes=notes,
            fingerprint=decisions.fingerprint(changes),
            cursor=connection.cursor,
            round_=connection.round,
            source=source.stored(),
        )
        plan.replaced_by = fresh.public_id
        plans.settle(session, connection, plan, PlanStatus.STALE)
        return Outcome(plan, False, fresh=fresh)
    tally = engine.Tally()
    for text in planned.notes:
        tally.note(text)
    # An admin applying a plan they read is its approval: nothing is held, and it is not counted
    # against the removal limit.
    engine.apply_people(session, planned.context, planned.people, tally)
    engine.sync_teams(session, planned.context, tally, only=planned.only)
    planned.context.connection.decide_everyone = False
    savepoint.commit()
    plans.settle(session, connection, plan, PlanStatus.APPLIED)
    return Outcome(plan, True, tally)


def approve(session: Session, plan: SyncPlan) -> Outcome:
    """Apply a held plan's removals if every one still stands (the directory as last staged); otherwise
    change nothing, and a fresh held plan of those that do stand replaces it. The caller commits."""
    plans.lock_connection(session, plan.connection_id)
    session.refresh(plan)  # as it stands now that no sync can change it
    plans.check_open(plan)
    if plan.status is not PlanStatus.HELD:
        raise Conflict(f"plan {plan.public_id} holds no removals", code="plan_not_held")
    context = engine.Context.load(session, plan.connection_id)
    users = _held_users(plan)
    people = [person for person in engine.plan_people(session, context, users, set()) if person.action == "removed"]
    changes = decisions.describe(session, people, [])
    if decisions.fingerprint(changes) != plan.fingerprint:
        if not people:
            plans.settle(session, context.connection, plan, PlanStatus.STALE)
            return Outcome(plan, False)
        fresh = plans.create(
            session,
            context.connection,
            changes=changes,
            counts=decisions.counts_of(changes),
            notes=[],
            fingerprint=decisions.fingerprint(changes),
            cursor=context.connection.cursor,
            round_=context.connection.round,
            status=PlanStatus.HELD,
        )
        verdict = removals.judge(session, context.connection, len(people))
        plans.hold(session, context.connection, fresh, limit=verdict.limit, removed_last_hour=verdict.removed_last_hour)
        return Outcome(plan, False, fresh=fresh)
    tally = engine.Tally()
    engine.apply_people(session, context, people, tally)
    engine.sync_teams(session, context, tally, only=directory.group_ids_of(session, context.connection.id, users))
    plans.settle(session, context.connection, plan, PlanStatus.APPLIED)
    return Outcome(plan, True, tally)


def reject(session: Session, plan: SyncPlan) -> SyncPlan:
    """Keep a held plan's people: their removal is not proposed again until the directory changes them."""
    connection = plans.lock_connection(session, plan.connection_id)
    session.refresh(plan)
    plans.check_open(plan)
    if plan.status is not PlanStatus.HELD:
        raise Conflict(f"plan {plan.public_id} holds no removals to reject", code="plan_not_held")
    directory.reject_removals(session, connection.id, _held_users(plan))
    plans.settle(session, connection, plan, PlanStatus.REJECTED)
    return plan


def make_now(session: Session, connection_id: int, read: Read) -> SyncPlan:
    """Read the connection's directory (`read`) and keep the plan of a sync of it; commits."""
    plan = make(session, connection_id, read(connection_id))
    session.commit()
    return plan


def apply_now(session: Session, organisation_id: int, connection_id: int, public_id: str, read: Read) -> Outcome:
    """Apply the connection's plan `public_id` (a held one: approve it), reading the directory again with
    `read` (a file's plan: its file); commits. An open plan claims the connection first, as a sync does,
    and ends as one (`connection.synced`, the cursor read kept) or, stale, lets it go unchanged."""
    plan = plans.get(session, organisation_id, connection_id, public_id)
    if plan.status is PlanStatus.HELD:
        outcome = approve(session, plan)
        session.commit()
        return outcome
    plans.check_open(plan)
    if not connections.claim(session, connection_id):
        raise Conflict("a sync of this connection is running; try again when it is done", code="sync_running")
    session.commit()
    try:
        source = Source.of_stored(plan.source) if plan.source is not None else read(connection_id)
        outcome = apply(session, plan, source)
        connection = session.get_one(Connection, connection_id)
        if outcome.applied:
            read_anew = source.pages is not None and not source.file
            cursor = source.cursor if read_anew else connection.cursor
            tally = outcome.tally
            connections.finish(session, connection, counts=tally.counts, notes=tally.notes, cursor=cursor)
        else:
            connections.release(session, connection)
        session.commit()
    except BaseException:
        session.rollback()
        connections.release(session, session.get_one(Connection, connection_id))
        session.commit()
        raise
    return outcome


def reject_now(session: Session, organisation_id: int, connection_id: int, public_id: str) -> SyncPlan:
    """Reject the connection's held plan `public_id`; commits."""
    plan = reject(session, plans.get(session, organisation_id, connection_id, public_id))
    session.commit()
    return plan


def _held_users(plan: SyncPlan) -> list[str]:
    return [item["user"] for item in plan.changes.get("people", {}).get("removed", [])]


def _plan(session: Session, connection_id: int, source: Source, progress: engine.Progress | None = None) -> _Planned:
    """Stage `source` as a sync would and plan for whoever it touched (everyone, for a pushed directory)."""
    context = engine.Context.load(session, connection_id)
    connection = context.connection
    staged = Staged()
    notes: list[str] = []
    if source.pages is None:
        staged.users.update(directory.all_user_ids(session, connection_id))
        only: set[str] | None = None
    else:
        round_ = connection.round + 1
        for page in source.pages:
            staged.add(engine.stage(session, context, page, round_))
            notes.extend(page.notes)
        if any(page.full_users for page in source.pages):
            staged.add(directory.end_full_users(session, connection_id, round_))
        if any(page.full_groups for page in source.pages):
            staged.add(directory.end_full_groups(session, connection_id, round_))
        connection.round = round_
        if connection.decide_everyone:
            staged.users.update(directory.all_user_ids(session, connection_id))
        only = None
        if source.file:  # as an import does (engine.apply_now): the teams of whom the file touched
            only = staged.groups | directory.group_ids_of(session, connection_id, sorted(staged.users))
    people = engine.plan_people(session, context, staged.users, staged.renamed, progress)
    return _Planned(context, people, engine.plan_teams(session, context, people, only), only, notes)


def _would_hold(session: Session, connection: Connection, changes: dict[str, Any]) -> list[str]:
    """A note when a sync doing this plan would hold its removals (applying the plan itself holds nothing)."""
    count = len(changes.get("people", {}).get("removed", []))
    verdict = removals.judge(session, connection, count)
    if not verdict.hold:
        return []
    return [
        f"a sync would hold these {count} removals for an admin: the connection may remove {verdict.limit} "
        f"people within an hour (settings.removal_limit) and removed {verdict.removed_last_hour} in the last; "
        "applying this plan applies them"
    ]


def _listed(members: frozenset[str] | None) -> list[str] | None:
    return None if members is None else sorted(members)


def people_of(plan: SyncPlan) -> dict[str, Sequence[dict[str, Any]]]:
    """A stored plan's people by action."""
    people: dict[str, Sequence[dict[str, Any]]] = plan.changes.get("people", {})
    return people

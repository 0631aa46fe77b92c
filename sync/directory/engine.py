"""The sync engine: directory records in, memberships, invitations and teams out.

Every connector (Graph, Google, SCIM, CSV, the peer platforms) feeds the same steps:
1. *stage* what the directory says (store.services.directory), which tells who is new or changed;
2. *plan* for those people, changing nothing (`plan_people`, `plan_teams`: sync/directory/decisions.py):
   in scope and not a member → invited (or added, by the organisation's policy); already a member →
   linked; out of scope and brought in by a directory → removed (future bookings cancelled, history
   kept); renamed → `member.updated`; groups opted in → teams kept in step;
3. *apply* that plan in the same transaction (`apply_people`, `sync_teams`). A sync is always plan then
   apply, so a plan an admin reads (sync/directory/plans.py) is what the sync does. Decisions compare
   with what was last decided, so the same input twice, or a replayed page, changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session, sessionmaker

from connectors.records import DirectoryPage
from store.db import transaction
from store.errors import Conflict, Invalid, StoreError
from store.models import (
    Connection,
    DirectoryPolicy,
    DirectoryUser,
    Member,
    MemberStatus,
    Organisation,
    PlanStatus,
    Role,
    Team,
)
from store.services import directory, members, plans, restores, teams
from store.services.connections import Scope
from store.services.directory import Staged
from sync import tally
from sync.directory import decisions, removals
from sync.directory.decisions import LAST_ADMIN, REJECTED, Person, TeamChange
from sync.directory.scope import address, in_scope, mirrors_as_team

logger = logging.getLogger(__name__)

DECIDE_CHUNK = 500
# Told after each chunk decided: (people decided so far, people to decide), for a progress bar.
Progress = Callable[[int, int], None]


class Tally(tally.Tally):
    """What a directory sync did, for the connection's status and the `connection.synced` event."""

    COUNTS = (
        "seen",
        "invited",
        "added",
        "restored",
        "linked",
        "updated",
        "removed",
        "held",
        "kept",
        "skipped",
        "teams_changed",
    )

    def note(self, text: str) -> None:
        super().note(text)
        logger.info("directory sync: %s", text)


@dataclass(frozen=True)
class Context:
    """The connection being synced, loaded once per transaction."""

    connection: Connection
    organisation: Organisation
    scope: Scope

    @classmethod
    def load(cls, session: Session, connection_id: int) -> Context:
        connection = session.get_one(Connection, connection_id)
        return cls(
            connection=connection,
            organisation=session.get_one(Organisation, connection.organisation_id),
            scope=Scope.from_settings(connection.settings),
        )

    @property
    def source(self) -> str:
        return f"directory:{self.connection.kind.value}"


def stage(session: Session, context: Context, page: DirectoryPage, round_: int) -> Staged:
    """Keep what one page says; returns who and which groups need deciding."""
    connection_id = context.connection.id
    staged = directory.stage_users(session, connection_id, page.users, round_)
    staged.add(directory.remove_users(session, connection_id, page.removed))
    staged.add(directory.stage_groups(session, connection_id, page.groups, round_, full=page.full_groups))
    return staged


def plan_people(
    session: Session, context: Context, user_ids: Iterable[str], renamed: set[str], progress: Progress | None = None
) -> list[Person]:
    """What deciding these users would do, changing nothing: the first half of every decision.

    `apply_people` is the other half, with a plan made in the same transaction; a sync is both, so a
    plan shown to an admin is what the sync does with the same directory and store.
    """
    ids = sorted(set(user_ids))
    people: list[Person] = []
    planned: set[str] = set()  # addresses earlier chunks bring in: later chunks find them as members
    for start in range(0, len(ids), DECIDE_CHUNK):
        people.extend(_plan_chunk(session, context, ids[start : start + DECIDE_CHUNK], renamed, planned))
        if progress is not None:
            progress(min(start + DECIDE_CHUNK, len(ids)), len(ids))
    return _plan_leaving(session, context, people)


def _plan_chunk(
    session: Session, context: Context, chunk: list[str], renamed: set[str], planned: set[str]
) -> list[Person]:
    connection_id = context.connection.id
    # In the directory's id order, whatever order the database answers in: one plan, one order.
    rows = sorted(directory.users(session, connection_id, chunk), key=lambda row: row.external_id)
    groups = directory.groups_of(session, connection_id, chunk) if context.scope.groups else {}
    members.load(session, [row.member_id for row in rows if row.member_id])
    people: list[Person] = []
    mails: dict[int, str | None] = {}
    for row in rows:
        if in_scope(row, context.scope, groups.get(row.external_id, set())):
            mails[row.id] = mail = _mail(row, context)
            if mail is None:
                shown = address(row, context.scope) or ""
                reason = f"skipped {row.external_id}: {shown!r} is not an email address"
                people.append(Person(row.external_id, row.id, "skipped", email=shown, reason=reason))
    known = members.find_by_emails(session, context.organisation.id, [mail for mail in mails.values() if mail])
    newcomer = "added" if context.organisation.directory_policy is DirectoryPolicy.AUTO_ACCEPT else "invited"
    here: set[str] = set()  # addresses this chunk brings in
    for row in rows:
        member = session.get(Member, row.member_id) if row.member_id else None
        user, name = row.external_id, row.display_name
        if row.id not in mails:  # out of scope
            if row.in_scope and member is not None and member.status is not MemberStatus.REMOVED:
                admin = member.role is Role.ADMIN and member.status is MemberStatus.ACTIVE
                if row.removal_rejected:
                    reason = f"kept {member.email}: {REJECTED}"
                    people.append(Person(user, row.id, "kept", member.email, name, member.id, reason=reason))
                else:
                    people.append(Person(user, row.id, "removed", member.email, name, member.id, admin=admin))
            elif row.in_scope:
                people.append(Person(user, row.id, member_id=row.member_id, in_scope=False))
            continue
        mail = mails[row.id]
        if mail is None:
            continue  # skipped above: decided again when it changes
        if member is None and mail not in known:
            if mail in planned:
                people.append(Person(user, row.id, "linked", mail, name, in_scope=True, newcomer=True))
            elif mail in here:
                people.append(Person(user, row.id, "", mail, name, in_scope=True, newcomer=True))
            else:
                here.add(mail)
                people.append(Person(user, row.id, newcomer, mail, name, in_scope=True, newcomer=True))
        elif member is None:
            found = known[mail]
            action = _coming_back(session, found, newcomer) if found.status is MemberStatus.REMOVED else "linked"
            people.append(Person(user, row.id, action, mail, name, found.id, in_scope=True))
        elif member.status is MemberStatus.REMOVED:
            people.append(
                Person(user, row.id, _coming_back(session, member, newcomer), mail, name, member.id, in_scope=True)
            )
        elif user in renamed:
            people.append(_plan_rename(session, context, row, member, mail))
        else:
            people.append(Person(user, row.id, "", member.email, name, member.id, in_scope=True))
    planned |= here
    return people


def _coming_back(session: Session, member: Member, newcomer: str) -> str:
    """A removed member the directory has in scope again: restored as they were while their removal can
    be undone (store.services.restores), else brought in as a newcomer is."""
    return "restored" if restores.undoable(session, member) is not None else newcomer


def _plan_rename(session: Session, context: Context, row: DirectoryUser, member: Member, mail: str) -> Person:
    """A linked member whose directory name or address changed: updated, or skipped when the address is taken."""
    name = row.display_name.strip()
    moves = mail != member.email
    if moves and members.find_by_email(session, context.organisation.id, mail) is not None:
        reason = f"could not change {member.email} to {mail}: {mail} belongs to another member"
        return Person(row.external_id, row.id, "skipped", mail, name, member.id, reason=reason, in_scope=True)
    if moves or (name and name != member.display_name):
        return Person(row.external_id, row.id, "updated", mail, name, member.id, was=member.email, in_scope=True)
    return Person(row.external_id, row.id, "", member.email, name, member.id, in_scope=True)


def _plan_leaving(session: Session, context: Context, people: list[Person]) -> list[Person]:
    """Of those leaving scope: who another directory user still has in scope stays (their row leaves
    scope), a member leaving by two rows goes once, and the organisation's last active admin stays."""
    leaving = [person for person in people if person.action == "removed"]
    if not leaving:
        return people
    claimed = directory.claimed_elsewhere(
        session, [person.member_id for person in leaving if person.member_id], [person.row_id for person in leaving]
    )
    claimed |= {person.member_id for person in people if person.in_scope and person.member_id}
    admins = [person for person in leaving if person.admin and person.member_id not in claimed]
    keep_admin = None
    if admins and members.active_admins(session, context.organisation.id) <= len({p.member_id for p in admins}):
        keep_admin = admins[-1].member_id
    going: set[int | None] = set()
    planned: list[Person] = []
    for person in people:
        if person.action != "removed":
            planned.append(person)
        elif person.member_id in claimed or person.member_id in going:
            planned.append(replace(person, action="", in_scope=False))
        elif person.member_id == keep_admin:
            reason = f"kept {person.email}: {LAST_ADMIN}"
            planned.append(replace(person, action="skipped", reason=reason, in_scope=False))
            going.add(person.member_id)
        else:
            planned.append(replace(person, in_scope=False))
            going.add(person.member_id)
    return planned


def apply_people(
    session: Session,
    context: Context,
    people: Sequence[Person],
    tally: Tally,
    held: frozenset[str] = frozenset(),
) -> None:
    """Do what `people` (planned by `plan_people` in this transaction) says; removals of users in
    `held` are held back: their member and row stay as they are, counted `held`."""
    for start in range(0, len(people), DECIDE_CHUNK):
        _apply_chunk(session, context, people[start : start + DECIDE_CHUNK], tally, held)


def _apply_chunk(
    session: Session, context: Context, people: Sequence[Person], tally: Tally, held: frozenset[str]
) -> None:
    rows = {row.external_id: row for row in directory.users(session, context.connection.id, [p.user for p in people])}
    members.load(session, [person.member_id for person in people if person.member_id])
    arriving = {p.email: p.name for p in people if p.newcomer and p.action in ("invited", "added")}
    brought = members.bring_in_many(
        session,
        context.organisation.id,
        list(arriving.items()),
        active=context.organisation.directory_policy is DirectoryPolicy.AUTO_ACCEPT,
        source=context.source,
    )
    for person in people:
        if person.newcomer and person.email in brought and person.action:
            tally.count(person.action, who=person.email)
    # The newcomers' rows are linked in one statement, not an update each.
    links = [(rows[p.user], brought[p.email]) for p in people if p.newcomer and p.email in brought]
    directory.link_members(session, [row for row, _ in links], [member_id for _, member_id in links])
    leaving: list[Member] = []
    for person in people:
        row = rows[person.user]
        if person.newcomer and person.email in brought:
            continue  # linked above
        member = session.get(Member, person.member_id) if person.member_id else None
        if person.action == "linked":
            member = member or members.get_by_email(session, context.organisation.id, person.email)
            _link(session, member, person.name, tally)
            row.member_id = member.id
        elif person.action == "restored" and member is not None:
            row.member_id = _restore(session, context, member, person, tally).id
        elif person.action in ("invited", "added") and member is not None:  # removed too long ago to restore
            row.member_id = _bring_in(session, context, person.email, person.name, restored=False, tally=tally).id
        elif person.action == "updated" and member is not None:
            _follow_rename(session, member, person.email, person.name, tally)
        elif person.action == "removed" and member is not None:
            if person.user in held:
                tally.count("held", who=person.email)
                continue  # nothing about them changes while an admin decides
            leaving.append(member)
        elif person.action in ("skipped", "kept"):
            tally.count(person.action, who=person.email)
            tally.note(person.reason)
        if person.in_scope is not None:
            row.in_scope = person.in_scope
    _offboard_many(session, leaving, tally)


def _mail(row: DirectoryUser, context: Context) -> str | None:
    """A user in scope's address, normalised; None when it is not an email address."""
    mail = address(row, context.scope)
    assert mail is not None  # in scope implies an address
    try:
        return members.normalise_email(mail)
    except Invalid:
        return None


def decide(
    session: Session,
    context: Context,
    user_ids: Iterable[str],
    renamed: set[str],
    tally: Tally,
    progress: Progress | None = None,
    held: frozenset[str] = frozenset(),
) -> None:
    """Bring each user's membership in line with the scope (only what changed is touched): plan, then
    apply, a chunk at a time (a first sync of a large tenant is mostly newcomers, brought in together).
    Removals of the users in `held` (`hold_over_limit`) wait for an admin."""
    ids = sorted(user_ids)
    for start in range(0, len(ids), DECIDE_CHUNK):
        chunk = ids[start : start + DECIDE_CHUNK]
        before = tally.counts.get("removed", 0)
        apply_people(session, context, plan_people(session, context, chunk, renamed), tally, held)
        # Counted for the removal limit's rolling hour (what an admin approved is not).
        plans.note_removed(session, context.connection.id, tally.counts.get("removed", 0) - before)
        session.flush()
        if progress is not None:
            progress(start + len(chunk), len(ids))


def hold_over_limit(session: Session, context: Context, user_ids: Iterable[str]) -> frozenset[str]:
    """The users among these whose removal must wait for an admin: all of the round's removals when they
    would take the connection past its removal limit within the hour, or when it holds removals already.

    Held removals are kept in the connection's held plan (with those it held before that still stand),
    which `connection.removals_held` carries and its admins are emailed about (store.services.plans).
    """
    connection = context.connection
    candidates = directory.in_scope_among(session, connection.id, sorted(set(user_ids)))
    if not candidates:
        return frozenset()  # only people in scope can leave it
    leaving = [person for person in plan_people(session, context, candidates, set()) if person.action == "removed"]
    if not leaving:
        return frozenset()
    connection = plans.lock_connection(session, connection.id)  # one decider of the held plan at a time
    verdict = removals.judge(session, connection, len(leaving))
    if not verdict.hold:
        return frozenset()
    held = {person.user: person for person in leaving}
    previous = plans.held_plan(session, connection)
    if previous is not None:
        earlier = [item["user"] for item in previous.changes.get("people", {}).get("removed", [])]
        for person in plan_people(session, context, [user for user in earlier if user not in held], set()):
            if person.action == "removed":
                held[person.user] = person
    changes = decisions.describe(session, [held[user] for user in sorted(held)], [])  # in plan_people's order
    plan = plans.create(
        session,
        connection,
        changes=changes,
        counts=decisions.counts_of(changes),
        notes=[],
        fingerprint=decisions.fingerprint(changes),
        cursor=connection.cursor,
        round_=connection.round,
        status=PlanStatus.HELD,
    )
    plans.hold(session, connection, plan, limit=verdict.limit, removed_last_hour=verdict.removed_last_hour)
    logger.warning(
        "connection %d: %d removals held for an admin (limit %d an hour)", connection.id, len(held), verdict.limit
    )
    return frozenset(held)


def _link(session: Session, member: Member, name: str, tally: Tally) -> None:
    """A member who was already here (added by hand, or by another directory) is now this directory's
    too: said in the plan and the result (`linked`), and named as the directory names them. From now on
    the directory decides: a later listing that leaves them out removes them, as for anyone it brought in.
    """
    tally.count("linked", who=member.email)
    name = " ".join(name.split())
    if name and name != member.display_name:
        members.update(session, member, display_name=name)


def _restore(session: Session, context: Context, member: Member, person: Person, tally: Tally) -> Member:
    """Undo the member's removal as an admin's restore does, but with no new token (no one would see
    it: the sync's notes say so); a removal no longer undoable by now (a stored plan applied late) is
    brought in as a newcomer is."""
    if restores.undoable(session, member) is None:
        return _bring_in(session, context, person.email, person.name, restored=False, tally=tally)
    done = restores.restore(session, member, source=context.source, issue_tokens=False)
    tally.count("restored", who=member.email)
    if done.unrestored:
        missing = ", ".join(f"{item.kind} {item.id} ({item.reason})" for item in done.unrestored)
        tally.note(f"restored {member.email} without {missing}")
    name = " ".join(person.name.split())
    if name and name != member.display_name:
        members.update(session, member, display_name=name)
    return member


def _bring_in(session: Session, context: Context, mail: str, name: str, *, restored: bool, tally: Tally) -> Member:
    if context.organisation.directory_policy is DirectoryPolicy.AUTO_ACCEPT:
        member = members.add(session, context.organisation.id, mail, display_name=name, source=context.source)
        tally.count("restored" if restored else "added", who=mail)
        return member
    invitation = members.invite(session, context.organisation.id, mail, display_name=name, source=context.source)
    tally.count("restored" if restored else "invited", who=mail)
    return session.get_one(Member, invitation.member_id)


def _follow_rename(session: Session, member: Member, mail: str, name: str, tally: Tally) -> None:
    before = (member.email, member.display_name)
    try:
        with session.begin_nested():
            members.update(session, member, display_name=name or None, email=mail)
    except Conflict as error:
        tally.count("skipped", who=mail)
        tally.note(f"could not change {member.email} to {mail}: {error.message}")
        return
    if (member.email, member.display_name) != before:
        tally.count("updated", who=member.email)


def _offboard_many(session: Session, leaving: list[Member], tally: Tally) -> None:
    """Remove the members a plan says leave, in a few statements for all (a round may offboard
    hundreds). Active admins go one by one through `_offboard`: the last-admin check may keep one."""
    if not leaving:
        return
    going = list(dict.fromkeys(leaving))
    admins = [member for member in going if member.role is Role.ADMIN and member.status is MemberStatus.ACTIVE]
    others = [member for member in going if member not in admins]
    for member in members.remove_many(session, others, reason="directory_offboarded"):
        tally.count("removed", who=member.email)
    for member in admins:
        _offboard(session, member, tally)


def _offboard(session: Session, member: Member, tally: Tally) -> None:
    try:
        with session.begin_nested():
            members.remove(session, member, reason="directory_offboarded")
    except Conflict as error:
        tally.count("skipped", who=member.email)
        tally.note(f"kept {member.email}: {error.message}")
        return
    tally.count("removed", who=member.email)


def plan_teams(
    session: Session, context: Context, people: Sequence[Person] = (), only: set[str] | None = None
) -> list[TeamChange]:
    """What mirroring opted-in groups as teams would do once `people` are applied (nothing given: as the
    store is now), changing nothing; a deleted group's team is emptied (and kept, with its history).
    `only`: just these group ids."""
    if not context.scope.team_groups:
        return []
    connection_id = context.connection.id
    after = {person.user: person for person in people}
    changes: list[TeamChange] = []
    for group in directory.mirrored_groups(session, connection_id, only):
        if not mirrors_as_team(context.scope, group.external_id, group.email):
            continue
        team = _team_of(session, context, group.team_id, group.name)
        name = " ".join(group.name.split()) if group.name else (team.name if team else group.external_id)
        wanted: set[int | str] = set()
        if not group.deleted:
            for user, row_in_scope, member_id in directory.group_rows(session, connection_id, group.external_id):
                person = after.get(user)
                if person is not None and person.in_scope is not None:
                    row_in_scope, member_id = person.in_scope, person.member_id or member_id
                    if row_in_scope and member_id is None and person.newcomer:
                        wanted.add(person.email)  # brought in by the plan: no member id yet
                        continue
                if row_in_scope and member_id is not None:
                    wanted.add(member_id)
        current: set[int | str] = set(teams.member_ids(session, team)) if team else set()
        renamed_from = team.name if team is not None and group.name and team.name != name else None
        changes.append(
            TeamChange(
                group.external_id,
                name,
                team.id if team else None,
                renamed_from,
                tuple(sorted(wanted - current, key=str)),
                tuple(sorted(current - wanted, key=str)),
            )
        )
    return changes


def _team_of(session: Session, context: Context, team_id: int | None, name: str) -> Team | None:
    """The team a group is mirrored as: the one it was, else the one of its name; None when there is none yet."""
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is not None:
            return team
    try:
        return teams.get_by_name(session, context.organisation.id, name)
    except StoreError:
        return None


def sync_teams(session: Session, context: Context, tally: Tally, only: set[str] | None = None) -> None:
    """Mirror opted-in groups as teams as `plan_teams` says, with the members of their in-scope users.
    `only`: just these group ids."""
    groups = {group.external_id: group for group in directory.mirrored_groups(session, context.connection.id, only)}
    for change in plan_teams(session, context, only=only):
        group = groups[change.group]
        try:
            with session.begin_nested():
                team = _team_for(session, context, group.team_id, group.name)
                group.team_id = team.id
                for member_id in change.added:
                    teams.add_member(session, team, session.get_one(Member, member_id))
                for member_id in change.removed:
                    teams.remove_member(session, team, session.get_one(Member, member_id))
        except StoreError as error:
            tally.note(f"could not mirror group {group.name!r} as a team: {error.message}")
            continue
        if change.added or change.removed:
            tally.count("teams_changed")


def _team_for(session: Session, context: Context, team_id: int | None, name: str) -> Team:
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is not None:
            if name and team.name != " ".join(name.split()):
                teams.rename(session, team, name)
            return team
    try:
        return teams.get_by_name(session, context.organisation.id, name)
    except StoreError:
        return teams.create(session, context.organisation.id, name)


def apply_round(
    factory: sessionmaker[Session], connection_id: int, pages: Iterable[DirectoryPage]
) -> tuple[Tally, str | None]:
    """Stage every page of a round, then decide for everyone it touched, then mirror teams.

    Each page is staged in its own transaction (a round cut short is read again and staging is
    idempotent); the connection's cursor is not touched here: the caller keeps it on success.
    """
    tally = Tally()
    touched = Staged()
    full_users = full_groups = False
    cursor: str | None = None
    with transaction(factory) as session:
        round_ = session.get_one(Connection, connection_id).round + 1
    for page in pages:
        with transaction(factory) as session:
            context = Context.load(session, connection_id)
            touched.add(stage(session, context, page, round_))
        full_users |= page.full_users
        full_groups |= page.full_groups
        tally.count("seen", len(page.users))
        for text in page.notes:
            tally.note(text)
        if page.last:
            cursor = page.cursor
    with transaction(factory) as session:
        if full_users:
            touched.add(directory.end_full_users(session, connection_id, round_))
        if full_groups:
            touched.add(directory.end_full_groups(session, connection_id, round_))
        connection = session.get_one(Connection, connection_id)
        connection.round = round_
        everyone = connection.decide_everyone
        if everyone:  # new settings: everyone is decided again, not only whom the directory changed
            touched.users.update(directory.all_user_ids(session, connection_id))
    ids = sorted(touched.users)
    with transaction(factory) as session:
        held = hold_over_limit(session, Context.load(session, connection_id), ids)
    for start in range(0, len(ids), DECIDE_CHUNK * 4):
        with transaction(factory) as session:
            context = Context.load(session, connection_id)
            decide(session, context, ids[start : start + DECIDE_CHUNK * 4], touched.renamed, tally, held=held)
    with transaction(factory) as session:
        context = Context.load(session, connection_id)
        sync_teams(session, context, tally)
        if everyone:
            context.connection.decide_everyone = False
    return tally, cursor


def apply_now(session: Session, connection_id: int, page: DirectoryPage, progress: Progress | None = None) -> Tally:
    """Stage and decide one page inside the caller's transaction (SCIM requests, CSV imports).

    A full page (a CSV file) is a whole round: whoever and whatever group it leaves out is gone.
    """
    tally = Tally()
    context = Context.load(session, connection_id)
    connection = context.connection
    round_ = connection.round + 1 if page.full_users or page.full_groups else connection.round
    staged = stage(session, context, page, round_)
    if page.full_users:
        staged.add(directory.end_full_users(session, connection_id, round_))
    if page.full_groups:
        staged.add(directory.end_full_groups(session, connection_id, round_))
    connection.round = round_
    held = hold_over_limit(session, context, staged.users)
    decide(session, context, staged.users, staged.renamed, tally, progress, held)
    if staged.groups or staged.users:
        touched = staged.groups | directory.group_ids_of(session, connection_id, sorted(staged.users))
        sync_teams(session, context, tally, only=touched)
    return tally


def redecide_everyone(session: Session, connection_id: int) -> Tally:
    """Decide again for every known user (a pushed directory's sync: after a scope change)."""
    tally = Tally()
    context = Context.load(session, connection_id)
    everyone = directory.all_user_ids(session, connection_id)
    decide(session, context, everyone, set(), tally, held=hold_over_limit(session, context, everyone))
    sync_teams(session, context, tally)
    context.connection.decide_everyone = False
    return tally

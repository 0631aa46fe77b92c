"""The sync engine: directory records in, memberships, invitations and teams out.

Every connector (Graph, Google, SCIM, CSV) feeds the same two steps:
1. *stage* what the directory says (store.services.directory), which tells who is new or changed;
2. *decide* for those people: in scope and not a member → invited (or added, by the organisation's
   policy); out of scope and brought in by a directory → removed (future bookings cancelled, history
   kept); renamed → `member.updated`. Decisions compare with what was last decided, so the same
   input twice, or a replayed page, changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    Role,
    Team,
)
from store.services import directory, members, teams
from store.services.connections import Scope
from store.services.directory import Staged
from sync import tally
from sync.directory.scope import address, in_scope, mirrors_as_team

logger = logging.getLogger(__name__)

DECIDE_CHUNK = 500
# Told after each chunk decided: (people decided so far, people to decide), for a progress bar.
Progress = Callable[[int, int], None]


class Tally(tally.Tally):
    """What a directory sync did, for the connection's status and the `connection.synced` event."""

    COUNTS = ("seen", "invited", "added", "restored", "linked", "updated", "removed", "skipped", "teams_changed")

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


def decide(
    session: Session,
    context: Context,
    user_ids: Iterable[str],
    renamed: set[str],
    tally: Tally,
    progress: Progress | None = None,
) -> None:
    """Bring each user's membership in line with the scope (only what changed is touched).

    Newcomers (in scope, no member with their address at all) are brought in together, a chunk
    at a time: a first sync of a large tenant is mostly newcomers.
    """
    ids = sorted(user_ids)
    connection_id = context.connection.id
    for start in range(0, len(ids), DECIDE_CHUNK):
        chunk = ids[start : start + DECIDE_CHUNK]
        rows = directory.users(session, connection_id, chunk)
        groups = directory.groups_of(session, connection_id, chunk) if context.scope.groups else {}
        wanted = {row.id: in_scope(row, context.scope, groups.get(row.external_id, set())) for row in rows}
        members.load(session, [row.member_id for row in rows if row.member_id])
        mails = {row.id: _mail(row, context, tally) for row in rows if wanted[row.id]}
        known = members.find_by_emails(session, context.organisation.id, [mail for mail in mails.values() if mail])
        newcomers = {
            mail: row.display_name
            for row in rows
            if (mail := mails.get(row.id)) and mail not in known and not _linked(session, row)
        }
        brought = members.bring_in_many(
            session,
            context.organisation.id,
            list(newcomers.items()),
            active=context.organisation.directory_policy is DirectoryPolicy.AUTO_ACCEPT,
            source=context.source,
        )
        action = "added" if context.organisation.directory_policy is DirectoryPolicy.AUTO_ACCEPT else "invited"
        for mail in brought:
            tally.count(action, who=mail)
        # The newcomers' rows are linked in one statement, not an update each.
        links = [(row, brought[mail]) for row in rows if (mail := mails.get(row.id)) is not None and mail in brought]
        directory.link_members(session, [row for row, _ in links], [member_id for _, member_id in links])
        leaving: list[tuple[Member, DirectoryUser]] = []
        for row in rows:
            mail = mails.get(row.id)
            if wanted[row.id] and mail is None:
                continue  # not a usable address: skipped and noted, decided again when it changes
            if mail in brought:
                continue  # linked above
            _apply(session, context, row, mail, row.external_id in renamed, tally, leaving)
        _offboard_many(session, leaving, tally)
        session.flush()
        if progress is not None:
            progress(start + len(chunk), len(ids))


def _mail(row: DirectoryUser, context: Context, tally: Tally) -> str | None:
    mail = address(row, context.scope)
    assert mail is not None  # in scope implies an address
    try:
        return members.normalise_email(mail)
    except Invalid:
        tally.count("skipped", who=mail)
        tally.note(f"skipped {row.external_id}: {mail!r} is not an email address")
        return None


def _linked(session: Session, row: DirectoryUser) -> bool:
    return row.member_id is not None and session.get(Member, row.member_id) is not None


def _apply(
    session: Session,
    context: Context,
    row: DirectoryUser,
    mail: str | None,
    renamed: bool,
    tally: Tally,
    leaving: list[tuple[Member, DirectoryUser]],
) -> None:
    """Decide for one user; `mail` is their address when they are in scope, None when they are not.

    A member who may have to leave goes to `leaving`, for `_offboard_many` once the chunk is decided.
    """
    member = session.get(Member, row.member_id) if row.member_id else None
    if mail is not None:
        if member is None:
            member = members.find_by_email(session, context.organisation.id, mail)
            if member is not None and member.status is not MemberStatus.REMOVED:
                _link(session, member, row.display_name, tally)
        if member is None or member.status is MemberStatus.REMOVED:
            member = _bring_in(session, context, mail, row.display_name, restored=member is not None, tally=tally)
        elif row.member_id == member.id and renamed:
            _follow_rename(session, member, mail, row.display_name, tally)
        row.member_id = member.id
    elif row.in_scope and member is not None and member.status is not MemberStatus.REMOVED:
        leaving.append((member, row))
    row.in_scope = mail is not None


def _link(session: Session, member: Member, name: str, tally: Tally) -> None:
    """A member who was already here (added by hand, or by another directory) is now this directory's
    too: said in the plan and the result (`linked`), and named as the directory names them. From now on
    the directory decides: a later listing that leaves them out removes them, as for anyone it brought in.
    """
    tally.count("linked", who=member.email)
    name = " ".join(name.split())
    if name and name != member.display_name:
        members.update(session, member, display_name=name)


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


def _offboard_many(session: Session, leaving: list[tuple[Member, DirectoryUser]], tally: Tally) -> None:
    """Remove the members whose users left scope, unless another directory user still has them in
    scope, in a few statements for all (a round may offboard hundreds). Active admins go one by one
    through `_offboard`: the last-admin check may keep one, and only that one."""
    if not leaving:
        return
    claimed = directory.claimed_elsewhere(session, [member.id for member, _ in leaving], [row.id for _, row in leaving])
    going = list(dict.fromkeys(member for member, _ in leaving if member.id not in claimed))
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


def sync_teams(session: Session, context: Context, tally: Tally, only: set[str] | None = None) -> None:
    """Mirror opted-in groups as teams, with the members of their in-scope users; a deleted group's
    team is emptied (and kept, with its history). `only`: just these group ids."""
    if not context.scope.team_groups:
        return
    connection_id = context.connection.id
    for group in directory.mirrored_groups(session, connection_id, only):
        if not mirrors_as_team(context.scope, group.external_id, group.email):
            continue
        try:
            with session.begin_nested():
                team = _team_for(session, context, group.team_id, group.name)
                group.team_id = team.id
                wanted = (
                    set() if group.deleted else directory.in_scope_member_ids(session, connection_id, group.external_id)
                )
                current = set(teams.member_ids(session, team))
                for member_id in sorted(wanted - current):
                    teams.add_member(session, team, session.get_one(Member, member_id))
                for member_id in sorted(current - wanted):
                    teams.remove_member(session, team, session.get_one(Member, member_id))
        except StoreError as error:
            tally.note(f"could not mirror group {group.name!r} as a team: {error.message}")
            continue
        if wanted != current:
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
        session.get_one(Connection, connection_id).round = round_
    ids = sorted(touched.users)
    for start in range(0, len(ids), DECIDE_CHUNK * 4):
        with transaction(factory) as session:
            context = Context.load(session, connection_id)
            decide(session, context, ids[start : start + DECIDE_CHUNK * 4], touched.renamed, tally)
    with transaction(factory) as session:
        sync_teams(session, Context.load(session, connection_id), tally)
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
    decide(session, context, staged.users, staged.renamed, tally, progress)
    if staged.groups or staged.users:
        touched = staged.groups | directory.group_ids_of(session, connection_id, sorted(staged.users))
        sync_teams(session, context, tally, only=touched)
    return tally


def redecide_everyone(session: Session, connection_id: int) -> Tally:
    """Decide again for every known user (after a scope change)."""
    tally = Tally()
    context = Context.load(session, connection_id)
    decide(session, context, directory.all_user_ids(session, connection_id), set(), tally)
    sync_teams(session, context, tally)
    return tally

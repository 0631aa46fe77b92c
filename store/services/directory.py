"""What each connection's directory last said: its users, groups and group memberships.

The sync engine stages every page here before deciding anything, so a decision always rests on
the whole picture, and staging the same page twice changes nothing (and reports nothing changed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store.columns import utcnow
from store.models import DirectoryGroup, DirectoryMembership, DirectoryUser
from store.sql import among

CHUNK = 1000  # rows per statement: keeps IN lists and parameter counts well inside every backend's limits

_USER_FIELDS = ("username", "email", "display_name", "active", "guest", "org_unit")
_USER_COLUMNS = tuple(getattr(DirectoryUser, name) for name in _USER_FIELDS)
# The table itself, for statements that write rows past the ORM (bulk staging).
_USERS: Table = DirectoryUser.__table__  # type: ignore[assignment]


# The shapes of connectors.records, described here because the store imports nothing of ours.
class UserRecord(Protocol):
    @property
    def external_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def display_name(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def guest(self) -> bool: ...
    @property
    def org_unit(self) -> str | None: ...


class RemovedRecord(Protocol):
    @property
    def external_id(self) -> str: ...


class GroupRecord(Protocol):
    @property
    def external_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def members(self) -> frozenset[str] | None: ...
    @property
    def added(self) -> frozenset[str]: ...
    @property
    def removed(self) -> frozenset[str]: ...
    @property
    def deleted(self) -> bool: ...


@dataclass
class Staged:
    """What staging a page changed: the users to decide again and the groups whose membership moved."""

    users: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    # Users whose name or address changed (their member is updated, not only re-decided).
    renamed: set[str] = field(default_factory=set)

    def add(self, other: Staged) -> None:
        self.users |= other.users
        self.groups |= other.groups
        self.renamed |= other.renamed


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _normalised_email(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


def _forget_loaded(session: Session, connection_id: int, external_ids: set[str]) -> None:
    """Expire rows of these users the session holds: they were just written past the ORM."""
    if not external_ids:
        return
    for item in list(session.identity_map.values()):
        if isinstance(item, DirectoryUser) and item.connection_id == connection_id and item.external_id in external_ids:
            session.expire(item)


_INSERT_USERS = text(
    """
    INSERT INTO directory_users
        (connection_id, external_id, username, email, display_name, active, guest, org_unit, deleted,
         in_scope, seen_round, changed_at)
    SELECT :connection_id, external_id, username, email, display_name, active, guest, org_unit, false,
           false, :seen_round, :changed_at
    FROM unnest(
        CAST(:external_ids AS varchar[]), CAST(:usernames AS varchar[]), CAST(:emails AS varchar[]),
        CAST(:display_names AS varchar[]), CAST(:actives AS boolean[]), CAST(:guests AS boolean[]),
        CAST(:org_units AS varchar[])
    ) AS new (external_id, username, email, display_name, active, guest, org_unit)
    """
)


def _insert_users(session: Session, connection_id: int, rows: list[dict[str, Any]], round_: int, now: datetime) -> None:
    """Insert new users: on PostgreSQL one statement with an array a column (a page of 999 users is
    one short statement), elsewhere one executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _INSERT_USERS,
            {
                "connection_id": connection_id,
                "seen_round": round_,
                "changed_at": now,
                "external_ids": [row["external_id"] for row in rows],
                **{f"{name}s": [row[name] for row in rows] for name in _USER_FIELDS},
            },
        )
        return
    session.execute(
        insert(_USERS),
        [
            {
                **row,
                "connection_id": connection_id,
                "deleted": False,
                "in_scope": False,
                "seen_round": round_,
                "changed_at": now,
            }
            for row in rows
        ],
    )


def stage_users(session: Session, connection_id: int, users: Sequence[UserRecord], round_: int) -> Staged:
    """Upsert users as the directory describes them; returns who is new or different.

    Plain rows and statements rather than ORM objects: a first sync stages 100,000 users. Per chunk:
    one query for what is staged, one insert of the newcomers, one update of the changed (as many
    as changed), one update of `seen_round` for the unchanged (what closes a full listing).
    """
    staged = Staged()
    latest = {user.external_id: user for user in users}  # a page may repeat a user: the last word wins
    now = utcnow()
    table = _USERS
    for chunk in _chunks(list(latest)):
        existing = {
            row.external_id: row
            for row in session.execute(
                select(DirectoryUser.id, DirectoryUser.external_id, DirectoryUser.deleted, *_USER_COLUMNS).where(
                    DirectoryUser.connection_id == connection_id, among(session, DirectoryUser.external_id, chunk)
                )
            )
        }
        new_rows: list[dict[str, Any]] = []
        changed_rows: list[dict[str, Any]] = []
        unchanged: list[int] = []
        for external_id in chunk:
            user = latest[external_id]
            values: dict[str, Any] = {
                "username": user.username.strip().lower(),
                "email": _normalised_email(user.email),
                "display_name": " ".join(user.display_name.split())[:200],
                "active": user.active,
                "guest": user.guest,
                "org_unit": user.org_unit,
            }
            row = existing.get(external_id)
            if row is None:
                new_rows.append({"external_id": external_id, **values})
                staged.users.add(external_id)
            elif row.deleted or any(getattr(row, name) != values[name] for name in _USER_FIELDS):
                if row.email != values["email"] or row.display_name != values["display_name"]:
                    staged.renamed.add(external_id)
                changed_rows.append({"row_id": row.id, **values})
                staged.users.add(external_id)
            else:
                unchanged.append(row.id)
        _insert_users(session, connection_id, new_rows, round_, now)
        if changed_rows:
            session.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(
                    {name: bindparam(name) for name in _USER_FIELDS}
                    | {"deleted": False, "seen_round": round_, "changed_at": now, "removal_rejected": False}
                ),
                changed_rows,
            )
        if unchanged:
            session.execute(update(table).where(among(session, table.c.id, unchanged)).values(seen_round=round_))
    _forget_loaded(session, connection_id, set(latest))
    return staged


def remove_users(session: Session, connection_id: int, removed: Sequence[RemovedRecord]) -> Staged:
    """Mark users the directory no longer lists; a user never seen is noted so a late create stays gone."""
    staged = Staged()
    ids = list(dict.fromkeys(item.external_id for item in removed))
    for chunk in _chunks(ids):
        known = set(
            session.scalars(
                select(DirectoryUser.external_id).where(
                    DirectoryUser.connection_id == connection_id, DirectoryUser.external_id.in_(chunk)
                )
            )
        )
        session.add_all(
            DirectoryUser(connection_id=connection_id, external_id=external_id, deleted=True, email=None)
            for external_id in chunk
            if external_id not in known
        )
        changed = session.scalars(
            update(DirectoryUser)
            .where(
                DirectoryUser.connection_id == connection_id,
                DirectoryUser.external_id.in_(chunk),
                DirectoryUser.deleted.is_(False),
            )
            .values(deleted=True, changed_at=utcnow(), removal_rejected=False)
            .returning(DirectoryUser.external_id)
        )
        staged.users.update(changed)
    session.flush()
    return staged


def stage_groups(
    session: Session, connection_id: int, groups: Sequence[GroupRecord], round_: int, *, full: bool
) -> Staged:
    """Upsert groups and apply their membership changes; in a full round, mark what was announced."""
    staged = Staged()
    for group in groups:
        row = session.scalar(
            select(DirectoryGroup).where(
                DirectoryGroup.connection_id == connection_id, DirectoryGroup.external_id == group.external_id
            )
        )
        if row is None:
            row = DirectoryGroup(connection_id=connection_id, external_id=group.external_id)
            session.add(row)
            staged.groups.add(group.external_id)
        if (row.name, row.email, row.deleted) != (
            group.name or row.name,
            _normalised_email(group.email),
            group.deleted,
        ):
            staged.groups.add(group.external_id)
        row.name = group.name or row.name
        row.email = _normalised_email(group.email)
        row.deleted = group.deleted
        row.seen_round = round_
        current = set(
            session.scalars(
                select(DirectoryMembership.user_external_id).where(
                    DirectoryMembership.connection_id == connection_id,
                    DirectoryMembership.group_external_id == group.external_id,
                )
            )
        )
        if group.deleted:
            wanted: set[str] = set()
        elif group.members is not None:
            wanted = set(group.members)
        else:
            wanted = (current | group.added) - group.removed
        gone, new = current - wanted, wanted - current
        _drop_memberships(session, connection_id, group.external_id, gone)
        session.add_all(
            DirectoryMembership(
                connection_id=connection_id,
                group_external_id=group.external_id,
                user_external_id=user_id,
                seen_round=round_,
            )
            for user_id in new
        )
        if full:
            announced = sorted((wanted & current) & (group.added | (group.members or frozenset())))
            for chunk in _chunks(announced):
                session.execute(
                    update(DirectoryMembership)
                    .where(
                        DirectoryMembership.connection_id == connection_id,
                        DirectoryMembership.group_external_id == group.external_id,
                        DirectoryMembership.user_external_id.in_(chunk),
                    )
                    .values(seen_round=round_)
                )
        if gone or new:
            staged.groups.add(group.external_id)
            staged.users |= gone | new
    session.flush()
    return staged


def _drop_memberships(session: Session, connection_id: int, group_id: str, user_ids: set[str]) -> None:
    for chunk in _chunks(sorted(user_ids)):
        session.execute(
            delete(DirectoryMembership).where(
                DirectoryMembership.connection_id == connection_id,
                DirectoryMembership.group_external_id == group_id,
                DirectoryMembership.user_external_id.in_(chunk),
            )
        )


def end_full_users(session: Session, connection_id: int, round_: int) -> Staged:
    """After a complete user listing: whoever it did not list is gone."""
    gone = session.scalars(
        update(DirectoryUser)
        .where(
            DirectoryUser.connection_id == connection_id,
            DirectoryUser.seen_round < round_,
            DirectoryUser.deleted.is_(False),
        )
        .values(deleted=True, changed_at=utcnow(), removal_rejected=False)
        .returning(DirectoryUser.external_id)
    )
    return Staged(users=set(gone))


def end_full_groups(session: Session, connection_id: int, round_: int) -> Staged:
    """After a complete group listing: groups and memberships it did not announce are gone."""
    staged = Staged()
    stale = session.execute(
        select(DirectoryMembership.group_external_id, DirectoryMembership.user_external_id).where(
            DirectoryMembership.connection_id == connection_id, DirectoryMembership.seen_round < round_
        )
    ).all()
    for group_id, user_id in stale:
        staged.groups.add(group_id)
        staged.users.add(user_id)
    for start in range(0, len(stale), CHUNK):
        keys = [tuple(pair) for pair in stale[start : start + CHUNK]]
        session.execute(
            delete(DirectoryMembership).where(
                DirectoryMembership.connection_id == connection_id,
                tuple_(DirectoryMembership.group_external_id, DirectoryMembership.user_external_id).in_(keys),
            )
        )
    gone_groups = session.scalars(
        update(DirectoryGroup)
        .where(
            DirectoryGroup.connection_id == connection_id,
            DirectoryGroup.seen_round < round_,
            DirectoryGroup.deleted.is_(False),
        )
        .values(deleted=True)
        .returning(DirectoryGroup.external_id)
    )
    staged.groups.update(gone_groups)
    return staged


def users(session: Session, connection_id: int, external_ids: Sequence[str]) -> list[DirectoryUser]:
    """The staged rows of these users (ids never staged are left out)."""
    return list(
        session.scalars(
            select(DirectoryUser).where(
                DirectoryUser.connection_id == connection_id, among(session, DirectoryUser.external_id, external_ids)
            )
        )
    )


def find_user(session: Session, connection_id: int, address: str) -> DirectoryUser | None:
    """The staged user a directory knows by this address (mailbox or sign-in name, any case), if any: the
    one not deleted first, then the one it last saw."""
    wanted = address.strip().lower()
    return session.scalars(
        select(DirectoryUser)
        .where(
            DirectoryUser.connection_id == connection_id,
            or_(func.lower(DirectoryUser.email) == wanted, func.lower(DirectoryUser.username) == wanted),
        )
        .order_by(DirectoryUser.deleted, DirectoryUser.seen_round.desc(), DirectoryUser.id.desc())
        .limit(1)
    ).first()


def groups_with(session: Session, connection_id: int, user_id: str) -> list[DirectoryGroup]:
    """The live groups the directory last said this user is a member of."""
    return list(
        session.scalars(
            select(DirectoryGroup)
            .join(
                DirectoryMembership,
                and_(
                    DirectoryMembership.connection_id == DirectoryGroup.connection_id,
                    DirectoryMembership.group_external_id == DirectoryGroup.external_id,
                ),
            )
            .where(
                DirectoryGroup.connection_id == connection_id,
                DirectoryMembership.user_external_id == user_id,
                DirectoryGroup.deleted.is_(False),
            )
            .order_by(DirectoryGroup.id)
        )
    )


_LINK_MEMBERS = text(
    """
    UPDATE directory_users SET member_id = link.member_id, in_scope = true
    FROM unnest(CAST(:row_ids AS integer[]), CAST(:member_ids AS integer[])) AS link (row_id, member_id)
    WHERE directory_users.id = link.row_id
    """
)


def link_members(session: Session, rows: Sequence[DirectoryUser], member_ids: Sequence[int]) -> None:
    """Note that these staged users are in scope and feed these members (newcomers just brought in),
    in one statement rather than an update a row; the loaded rows are told so and stay clean."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LINK_MEMBERS, {"row_ids": [row.id for row in rows], "member_ids": list(member_ids)})
    else:
        session.execute(
            update(_USERS)
            .where(_USERS.c.id == bindparam("row_id"))
            .values(member_id=bindparam("member"), in_scope=True),
            [{"row_id": row.id, "member": member_id} for row, member_id in zip(rows, member_ids, strict=True)],
        )
    for row, member_id in zip(rows, member_ids, strict=True):
        set_committed_value(row, "member_id", member_id)
        set_committed_value(row, "in_scope", True)


def all_user_ids(session: Session, connection_id: int) -> list[str]:
    """Every user the connection knows, for re-deciding everyone (a scope change)."""
    return list(
        session.scalars(
            select(DirectoryUser.external_id)
            .where(DirectoryUser.connection_id == connection_id)
            .order_by(DirectoryUser.external_id)
        )
    )


def groups_of(session: Session, connection_id: int, user_ids: Sequence[str]) -> dict[str, set[str]]:
    """For each user, the ids and addresses of the live groups they belong to (lower-cased)."""
    found: dict[str, set[str]] = {}
    rows = session.execute(
        select(DirectoryMembership.user_external_id, DirectoryGroup.external_id, DirectoryGroup.email)
        .join(
            DirectoryGroup,
            and_(
                DirectoryGroup.connection_id == DirectoryMembership.connection_id,
                DirectoryGroup.external_id == DirectoryMembership.group_external_id,
            ),
        )
        .where(
            DirectoryMembership.connection_id == connection_id,
            DirectoryMembership.user_external_id.in_(user_ids),
            DirectoryGroup.deleted.is_(False),
        )
    )
    for user_id, group_id, email in rows:
        names = found.setdefault(user_id, set())
        names.add(group_id.lower())
        if email:
            names.add(email)
    return found


def live_groups(session: Session, connection_id: int) -> list[DirectoryGroup]:
    """The groups the directory lists now."""
    return list(
        session.scalars(
            select(DirectoryGroup)
            .where(DirectoryGroup.connection_id == connection_id, DirectoryGroup.deleted.is_(False))
            .order_by(DirectoryGroup.id)
        )
    )


def mirrored_groups(session: Session, connection_id: int, only: set[str] | None = None) -> list[DirectoryGroup]:
    """Groups whose team needs bringing in step: live ones, and deleted ones still holding a team
    (it is emptied). `only`: just these group ids."""
    query = (
        select(DirectoryGroup)
        .where(
            DirectoryGroup.connection_id == connection_id,
            or_(DirectoryGroup.deleted.is_(False), DirectoryGroup.team_id.is_not(None)),
        )
        .order_by(DirectoryGroup.id)
    )
    if only is not None:
        query = query.where(DirectoryGroup.external_id.in_(sorted(only)))
    return list(session.scalars(query))


def group_ids_of(session: Session, connection_id: int, user_ids: Sequence[str]) -> set[str]:
    """The ids of the groups these users belong to."""
    found: set[str] = set()
    for chunk in _chunks(list(user_ids)):
        found.update(
            session.scalars(
                select(DirectoryMembership.group_external_id).where(
                    DirectoryMembership.connection_id == connection_id,
                    DirectoryMembership.user_external_id.in_(chunk),
                )
            )
        )
    return found


def in_scope_among(session: Session, connection_id: int, external_ids: Sequence[str]) -> list[str]:
    """Which of these users are in scope now: the only ones a round can remove."""
    found: list[str] = []
    for chunk in _chunks(list(external_ids)):
        found.extend(
            session.scalars(
                select(DirectoryUser.external_id).where(
                    DirectoryUser.connection_id == connection_id,
                    among(session, DirectoryUser.external_id, chunk),
                    DirectoryUser.in_scope.is_(True),
                )
            )
        )
    return found


def reject_removals(session: Session, connection_id: int, external_ids: Sequence[str]) -> None:
    """An admin kept these users: their removal is not proposed again until staging changes them."""
    for chunk in _chunks(list(external_ids)):
        session.execute(
            update(DirectoryUser)
            .where(DirectoryUser.connection_id == connection_id, among(session, DirectoryUser.external_id, chunk))
            .values(removal_rejected=True)
            .execution_options(synchronize_session="fetch")
        )


def people_in_scope(session: Session, connection_id: int) -> int:
    """How many members the connection has in scope (what a percentage of its people is of)."""
    return (
        session.scalar(
            select(func.count(func.distinct(DirectoryUser.member_id))).where(
                DirectoryUser.connection_id == connection_id,
                DirectoryUser.in_scope.is_(True),
                DirectoryUser.member_id.is_not(None),
            )
        )
        or 0
    )


def group_rows(session: Session, connection_id: int, group_id: str) -> list[tuple[str, bool, int | None]]:
    """The users a group lists, as (external id, in scope, member id): who its mirrored team holds."""
    return [
        (user_id, in_scope, member_id)
        for user_id, in_scope, member_id in session.execute(
            select(DirectoryUser.external_id, DirectoryUser.in_scope, DirectoryUser.member_id)
            .join(
                DirectoryMembership,
                and_(
                    DirectoryMembership.connection_id == DirectoryUser.connection_id,
                    DirectoryMembership.user_external_id == DirectoryUser.external_id,
                ),
            )
            .where(DirectoryUser.connection_id == connection_id, DirectoryMembership.group_external_id == group_id)
        )
    ]


def in_scope_member_ids(session: Session, connection_id: int, group_id: str) -> set[int]:
    """The members behind a group's in-scope users (who its mirrored team should hold)."""
    return set(
        session.scalars(
            select(DirectoryUser.member_id)
            .join(
                DirectoryMembership,
                and_(
                    DirectoryMembership.connection_id == DirectoryUser.connection_id,
                    DirectoryMembership.user_external_id == DirectoryUser.external_id,
                ),
            )
            .where(
                DirectoryUser.connection_id == connection_id,
                DirectoryMembership.group_external_id == group_id,
                DirectoryUser.in_scope.is_(True),
                DirectoryUser.member_id.is_not(None),
            )
        )
    )


def other_claims(session: Session, member_id: int, row_id: int) -> bool:
    """Whether another directory still has this member in scope (then leaving one directory keeps them)."""
    return (
        session.scalar(
            select(DirectoryUser.id).where(
                DirectoryUser.member_id == member_id, DirectoryUser.in_scope.is_(True), DirectoryUser.id != row_id
            )
        )
        is not None
    )


def claimed_elsewhere(session: Session, member_ids: Sequence[int], row_ids: Sequence[int]) -> set[int]:
    """Which of these members a directory user other than `row_ids` (those leaving) still has in
    scope: `other_claims` for many at once."""
    if not member_ids:
        return set()
    return set(
        session.scalars(
            select(DirectoryUser.member_id).where(
                among(session, DirectoryUser.member_id, member_ids),
                DirectoryUser.in_scope.is_(True),
                ~among(session, DirectoryUser.id, row_ids),
            )
        )
    )


# Pushed directories (SCIM): the rows a client reads back, found by the ids and names it knows.


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a SCIM listing may narrow by; every term given must hold (`and`). Names ignore case."""

    ids: frozenset[str] | None = None  # our SCIM ids (the rows' external_id)
    name: str | None = None  # userName for users, displayName for groups
    client_id: str | None = None  # the client's own `externalId`, kept in the document
    member: str | None = None  # groups only: has this user as a member


def scim_users(
    session: Session, connection_id: int, lookup: Lookup, *, offset: int, limit: int
) -> tuple[list[DirectoryUser], int]:
    """A page of the connection's live users that `lookup` selects, in creation order, and how many there are."""
    query = select(DirectoryUser).where(DirectoryUser.connection_id == connection_id, DirectoryUser.deleted.is_(False))
    if lookup.ids is not None:
        query = query.where(DirectoryUser.external_id.in_(sorted(lookup.ids)))
    if lookup.name is not None:
        query = query.where(DirectoryUser.username == lookup.name.strip().lower())  # stored lower-cased
    if lookup.client_id is not None:
        query = query.where(DirectoryUser.document["externalId"].as_string() == lookup.client_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if not limit:  # count=0 asks only how many there are
        return [], total
    return list(session.scalars(query.order_by(DirectoryUser.id).offset(offset).limit(limit))), total


def scim_user(
    session: Session, connection_id: int, external_id: str, *, for_update: bool = False
) -> DirectoryUser | None:
    """A live user by our SCIM id (a deleted one is gone for SCIM: 404).

    `for_update`: locked until the transaction ends, so a write that reads the kept document and
    writes it back is never interleaved with another one's (see `hold_writes`).
    """
    query = select(DirectoryUser).where(
        DirectoryUser.connection_id == connection_id,
        DirectoryUser.external_id == external_id,
        DirectoryUser.deleted.is_(False),
    )
    if for_update:
        hold_writes(session)
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def hold_writes(session: Session) -> None:
    """On SQLite, take the database's write lock now rather than at the first write.

    SQLite locks the whole database for a writer, but only from its first write on: a read before it
    sees what another request is about to change (a member list, a userName). Holding the lock
    first makes the read and the write one step, as PostgreSQL's row locks do. A no-op elsewhere.
    """
    if session.get_bind().dialect.name == "sqlite":
        # An update that matches nothing still begins the write transaction (and waits its turn).
        session.execute(update(_USERS).where(false()).values(seen_round=_USERS.c.seen_round))


def hold_username(session: Session, connection_id: int, username: str) -> None:
    """Until the transaction ends, no other request of this connection checks or takes `username`.

    PostgreSQL: a transaction-scoped advisory lock on the connection and the lower-cased name (two
    creates of one userName queue up; the second then sees the first and answers 409). SQLite: the
    database's write lock (`hold_writes`), which serialises every writer anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = f"scim-username:{connection_id}:{username.strip().lower()}"
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
    else:
        hold_writes(session)


def username_taken(session: Session, connection_id: int, username: str, *, other_than: str | None = None) -> bool:
    """Whether another live user of the connection has this userName (ignoring case)."""
    query = select(DirectoryUser.id).where(
        DirectoryUser.connection_id == connection_id,
        DirectoryUser.username == username.strip().lower(),
        DirectoryUser.deleted.is_(False),
    )
    if other_than is not None:
        query = query.where(DirectoryUser.external_id != other_than)
    return session.scalar(query.limit(1)) is not None


def scim_groups(
    session: Session, connection_id: int, lookup: Lookup, *, offset: int, limit: int
) -> tuple[list[DirectoryGroup], int]:
    """A page of the connection's live groups that `lookup` selects, in creation order, and how many there are."""
    query = select(DirectoryGroup).where(
        DirectoryGroup.connection_id == connection_id, DirectoryGroup.deleted.is_(False)
    )
    if lookup.ids is not None:
        query = query.where(DirectoryGroup.external_id.in_(sorted(lookup.ids)))
    if lookup.name is not None:
        query = query.where(func.lower(DirectoryGroup.name) == lookup.name.strip().lower())
    if lookup.client_id is not None:
        query = query.where(DirectoryGroup.document["externalId"].as_string() == lookup.client_id)
    if lookup.member is not None:
        query = query.where(
            DirectoryGroup.external_id.in_(
                select(DirectoryMembership.group_external_id).where(
                    DirectoryMembership.connection_id == connection_id,
                    DirectoryMembership.user_external_id == lookup.member,
                )
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if not limit:
        return [], total
    return list(session.scalars(query.order_by(DirectoryGroup.id).offset(offset).limit(limit))), total


def scim_group(
    session: Session, connection_id: int, external_id: str, *, for_update: bool = False
) -> DirectoryGroup | None:
    """A live group by our SCIM id.

    `for_update`: the group's row locked until the transaction ends (SQLite: the database's write
    lock), so concurrent PATCHes of one group each apply to the membership the one before left:
    identity providers send membership changes of a group in parallel.
    """
    query = select(DirectoryGroup).where(
        DirectoryGroup.connection_id == connection_id,
        DirectoryGroup.external_id == external_id,
        DirectoryGroup.deleted.is_(False),
    )
    if for_update:
        hold_writes(session)
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def lock_scim_groups_of(session: Session, connection_id: int, user_id: str) -> list[DirectoryGroup]:
    """The live groups listing this user, locked in id order (one order for every request: no deadlock)."""
    hold_writes(session)
    member_of = select(DirectoryMembership.group_external_id).where(
        DirectoryMembership.connection_id == connection_id, DirectoryMembership.user_external_id == user_id
    )
    return list(
        session.scalars(
            select(DirectoryGroup)
            .where(
                DirectoryGroup.connection_id == connection_id,
                DirectoryGroup.deleted.is_(False),
                DirectoryGroup.external_id.in_(member_of),
            )
            .order_by(DirectoryGroup.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def keep_document(row: DirectoryUser | DirectoryGroup, document: dict[str, Any]) -> None:
    """Keep the resource as a pushing client last wrote it (staging keeps only what decisions need)."""
    row.document = document

"""One person now: read just that person from a connection's directory and apply the result at once.

`POST /v1/connections/{id}/sync` with an address and `deskbridge sync ID --email` call `sync_person`,
for kinds that can read one person (`Capability.READS_PERSON`: Microsoft, Google). The person is read
by the id an earlier sync knows them by, else by their address, and applied as a page of a round that
is not full, so nobody else is touched: their user record, and when the connection's scope or teams
name groups, their memberships (the groups they are in now added, those the store holds that they left
removed). A person the directory does not have is a removal when the connection knows them (staged
and not yet gone: `RemovedUser`, decided as any sync decides it), and NotFound otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from connectors.kind import Capability, Endpoints
from connectors.kinds import REGISTRY
from connectors.records import DirectoryGroup, DirectoryPage, PersonRecord, RemovedUser
from store.errors import Invalid, NotFound
from store.models import Connection, Member
from store.secret_box import SecretBox
from store.services import connections, directory
from sync.directory import engine


@dataclass(frozen=True)
class PersonSynced:
    """What reading one person did: whether the directory has them, whether they are in scope, the member
    they feed (if any) and the engine's counts."""

    address: str
    found: bool
    in_scope: bool
    member: Member | None
    tally: engine.Tally


def readable_kinds() -> list[str]:
    """The kinds whose connections can read one person, for messages."""
    return sorted(REGISTRY.that(Capability.READS_PERSON))


def sync_person(
    session: Session, box: SecretBox, endpoints: Endpoints, connection: Connection, address: str
) -> PersonSynced:
    """Read `address` from the connection's directory and apply it in the caller's transaction.

    Raises Invalid for a kind that cannot read one person (naming those that can), NotFound for a person
    neither the directory nor the connection knows, ConnectorError when the directory refuses or fails
    (nothing is applied), UndecryptableSecret when no key opens the connection's credentials.
    """
    factory = REGISTRY.get(connection.kind).person_reader
    if factory is None or not REGISTRY.can(connection.kind, Capability.READS_PERSON):
        raise Invalid(
            f"a {connection.kind.value} connection cannot read one person; "
            f"{' and '.join(readable_kinds())} connections can (sync the whole connection instead)",
            field="email",
        )
    address = address.strip()
    known = directory.find_user(session, connection.id, address)
    reader = factory(dict(connection.settings), connections.credentials(box, connection), endpoints)
    record = reader.person(address, known.external_id if known is not None else None)
    if record is None:
        if known is None or known.deleted:
            raise NotFound(f"{address} is not in the directory of connection {connection.id} ({connection.name})")
        page = DirectoryPage(removed=(RemovedUser(known.external_id),))
        user_id = known.external_id
    else:
        page = DirectoryPage(users=(record.user,), groups=_memberships(session, connection.id, record))
        user_id = record.user.external_id
    tally = engine.apply_now(session, connection.id, page)
    [row] = directory.users(session, connection.id, [user_id])
    member = session.get(Member, row.member_id) if row.member_id is not None else None
    return PersonSynced(address, record is not None, row.in_scope and not row.deleted, member, tally)


def _memberships(session: Session, connection_id: int, record: PersonRecord) -> tuple[DirectoryGroup, ...]:
    """The person's groups as changes of membership: those they are in now, and those the store holds them
    in that they left. None read (the scope names no groups): none changed."""
    if record.groups is None:
        return ()
    user = frozenset({record.user.external_id})
    listed = {group.external_id for group in record.groups}
    left = [
        DirectoryGroup(external_id=row.external_id, name=row.name, email=row.email, removed=user)
        for row in directory.groups_with(session, connection_id, record.user.external_id)
        if row.external_id not in listed
    ]
    return (*(replace(group, added=user) for group in record.groups), *left)

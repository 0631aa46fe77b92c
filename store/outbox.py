"""The transactional outbox: services record events; the commit gives them ids and sequence numbers.

Events wait in the session until commit. Just before commit the organisation's counter is bumped
(`UPDATE … RETURNING`), which row-locks the organisation until the transaction ends, so an
organisation's events commit in `seq` order and a reader paging by `seq` never skips one that
commits late. Rolled-back work leaves no event behind: a rolled-back savepoint drops the events
recorded inside it, and a transaction that ends without commit (rollback or close) drops them all.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from store import event_types
from store.columns import utcnow
from store.models import Organisation, OutboxEvent
from store.times import iso

_PENDING = "deskbridge.pending_events"
_COMMITTED = "deskbridge.committed_events"

EventListener = Callable[[list[OutboxEvent]], None]


# A pending event: the savepoint it was recorded in (None: the outer transaction), organisation, type, data.
_Pending = tuple[SessionTransaction | None, int, str, dict[str, Any]]


def record(session: Session, organisation_id: int, type_: str, data: dict[str, Any]) -> None:
    """Queue one event to be written with the current transaction (or dropped with its savepoint).

    `type_` must be declared in the catalog (`store.event_types`): UnknownEventType otherwise, so no
    event goes out that subscribers cannot find and documents do not describe.
    """
    if type_ not in event_types.CATALOG:
        raise event_types.UnknownEventType(f"{type_!r} is not a declared event type (store.event_types)")
    savepoint = session.get_nested_transaction()
    session.info.setdefault(_PENDING, []).append((savepoint, organisation_id, type_, _plain(data)))


def new_event_id() -> str:
    """A stable, unique event id (what receivers see as `webhook-id`)."""
    return "evt_" + uuid.uuid4().hex


def install(factory: sessionmaker[Session], listeners: Iterable[EventListener] = ()) -> None:
    """Hook the outbox into every session the factory makes.

    `listeners` are called after a commit with the events it made visible (e.g. to relay them
    to webhooks at once); they must not raise.
    """
    from sqlalchemy import event

    callbacks = list(listeners)

    # Releasing a savepoint fires the commit events too; only the real commit writes and tells.
    @event.listens_for(factory, "before_commit")
    def _write_pending(session: Session) -> None:
        if session.in_nested_transaction():
            return
        pending = session.info.pop(_PENDING, [])
        if pending:
            session.info.setdefault(_COMMITTED, []).extend(_write(session, pending))

    @event.listens_for(factory, "after_commit")
    def _notify(session: Session) -> None:
        if session.in_nested_transaction():
            return
        written = session.info.pop(_COMMITTED, [])
        if written:
            for callback in callbacks:
                callback(written)

    @event.listens_for(factory, "after_soft_rollback")
    def _discard(session: Session, rolled_back: SessionTransaction) -> None:
        # A failed flush rolls back its inner transaction: what really rolls back is the
        # nearest savepoint around it, or the whole transaction.
        while not rolled_back.nested and rolled_back.parent is not None:
            rolled_back = rolled_back.parent
        if not rolled_back.nested:
            _forget(session)
            return
        pending: list[_Pending] = session.info.get(_PENDING, [])
        pending[:] = [item for item in pending if not _within(item[0], rolled_back)]

    @event.listens_for(factory, "after_transaction_end")
    def _end(session: Session, ended: SessionTransaction) -> None:
        # A session closed without commit or rollback ends its transaction here.
        if ended.parent is None:
            _forget(session)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_COMMITTED, None)


def _within(savepoint: SessionTransaction | None, rolled_back: SessionTransaction) -> bool:
    while savepoint is not None:
        if savepoint is rolled_back:
            return True
        savepoint = savepoint.parent
    return False


def _write(session: Session, pending: list[_Pending]) -> list[OutboxEvent]:
    session.flush()
    by_org: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for _, organisation_id, type_, data in pending:
        by_org[organisation_id].append((type_, data))
    written: list[OutboxEvent] = []
    now = utcnow()  # set here, not by the ORM at flush: on PostgreSQL the rows go in past the ORM
    for organisation_id in sorted(by_org):  # one lock order for every transaction: no deadlocks
        items = by_org[organisation_id]
        last = session.execute(
            update(Organisation)
            .where(Organisation.id == organisation_id)
            # updated_at kept as it is: counting events is not a change of the organisation (its
            # column's onupdate would otherwise stamp it on every write anywhere in it).
            .values(last_event_seq=Organisation.last_event_seq + len(items), updated_at=Organisation.updated_at)
            .returning(Organisation.last_event_seq)
        ).scalar_one()
        first = last - len(items) + 1
        for offset, (type_, data) in enumerate(items):
            written.append(
                OutboxEvent(
                    id=new_event_id(),
                    organisation_id=organisation_id,
                    seq=first + offset,
                    type=type_,
                    data=data,
                    created_at=now,
                )
            )
    if written and session.get_bind().dialect.name == "postgresql":
        # One statement with an array a column: a directory's first sync records 100,000 events, and
        # the ORM's multi-row inserts cost several times more. The objects only go to the listeners.
        session.execute(
            _INSERT_EVENTS,
            {
                "ids": [event.id for event in written],
                "organisation_ids": [event.organisation_id for event in written],
                "seqs": [event.seq for event in written],
                "types": [event.type for event in written],
                "datas": [json.dumps(event.data) for event in written],
                "created_at": written[0].created_at,
            },
        )
    else:
        session.add_all(written)
    return written


_INSERT_EVENTS = text(
    """
    INSERT INTO outbox_events (id, organisation_id, seq, type, data, created_at)
    SELECT id, organisation_id, seq, type, data, :created_at
    FROM unnest(
        CAST(:ids AS varchar[]), CAST(:organisation_ids AS integer[]), CAST(:seqs AS bigint[]),
        CAST(:types AS varchar[]), CAST(:datas AS jsonb[])
    ) AS new (id, organisation_id, seq, type, data)
    """
)


def _plain(value: Any) -> Any:
    """Event data as JSON-ready values: times in ISO 8601, enums by value."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return iso(value)  # as REST answers write times: one form everywhere
    if isinstance(value, Enum):
        return value.value
    return value

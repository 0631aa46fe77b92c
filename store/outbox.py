"""The transactional outbox: services record events; the commit gives them ids and sequence numbers.

Events wait in the session until commit. Just before commit the organisation's counter is bumped
(`UPDATE … RETURNING`), which row-locks the organisation until the transaction ends, so an
organisation's events commit in `seq` order and a reader paging by `seq` never skips one that
commits late. Rolled-back work leaves no event behind.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from store.models import Organisation, OutboxEvent

_PENDING = "deskbridge.pending_events"
_COMMITTED = "deskbridge.committed_events"

EventListener = Callable[[list[OutboxEvent]], None]


def record(session: Session, organisation_id: int, type_: str, data: dict[str, Any]) -> None:
    """Queue one event to be written with the current transaction."""
    session.info.setdefault(_PENDING, []).append((organisation_id, type_, _plain(data)))


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

    @event.listens_for(factory, "before_commit")
    def _write_pending(session: Session) -> None:
        pending = session.info.pop(_PENDING, [])
        if pending:
            session.info.setdefault(_COMMITTED, []).extend(_write(session, pending))

    @event.listens_for(factory, "after_commit")
    def _notify(session: Session) -> None:
        written = session.info.pop(_COMMITTED, [])
        if written:
            for callback in callbacks:
                callback(written)

    @event.listens_for(factory, "after_rollback")
    def _discard(session: Session) -> None:
        session.info.pop(_PENDING, None)
        session.info.pop(_COMMITTED, None)


def _write(session: Session, pending: list[tuple[int, str, dict[str, Any]]]) -> list[OutboxEvent]:
    session.flush()
    by_org: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for organisation_id, type_, data in pending:
        by_org[organisation_id].append((type_, data))
    written: list[OutboxEvent] = []
    for organisation_id in sorted(by_org):  # one lock order for every transaction: no deadlocks
        items = by_org[organisation_id]
        last = session.execute(
            update(Organisation)
            .where(Organisation.id == organisation_id)
            .values(last_event_seq=Organisation.last_event_seq + len(items))
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
                )
            )
    session.add_all(written)
    return written


def _plain(value: Any) -> Any:
    """Event data as JSON-ready values: times in ISO 8601, enums by value."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value

"""The WiggleDesk listings read on the event loop without a transaction (store.reads), on SQLite and
PostgreSQL: they answer as before, and no connection of the store's pool is left in autocommit, so the
writes that take it next are transactions again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.services import desks
from tests.conftest import auth, make_client, make_org


def _autocommit(dbapi_connection: Any) -> bool:
    if hasattr(dbapi_connection, "autocommit"):  # psycopg
        return bool(dbapi_connection.autocommit)
    return dbapi_connection.isolation_level is None  # sqlite3


@pytest.mark.parametrize("path", ["/api/my_upcoming_bookings/", "/api/bookings/", "/api/users_in_office/"])
def test_a_listing_returns_its_connection_as_it_found_it(
    engine: Engine, session_factory: sessionmaker[Session], path: str
) -> None:
    org = make_org(session_factory)
    client = make_client(session_factory, rate_limit=10)
    returned: list[bool] = []

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        returned.append(_autocommit(dbapi_connection))

    event.listen(engine, "checkin", checkin)
    try:
        response = client.get(path, headers=auth(org.member_token))
    finally:
        event.remove(engine, "checkin", checkin)

    assert response.status_code == 200, response.text
    assert response.json()["count"] == 0
    assert response.headers["x-ratelimit-remaining"] == "9"
    assert not any(returned)  # no connection left in autocommit for the next user

    # A write that fails half-way through is still undone as a whole.
    def fail_half_way() -> None:
        with transaction(session_factory) as session:
            desks.create(session, org.organisation.id, "D1")
            session.flush()
            raise RuntimeError("half-way")

    with pytest.raises(RuntimeError):
        fail_half_way()
    with session_factory() as session:
        assert desks.list_all(session, org.organisation.id) == []

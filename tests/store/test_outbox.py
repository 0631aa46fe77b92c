from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store import outbox as store_outbox
from store.db import make_session_factory, transaction
from store.errors import Conflict
from store.models import OutboxEvent
from store.services import bookings, desks, events, members, teams
from tests.conftest import Org, make_org
from tests.conftest import events as all_events
from tests.store.conftest import Outbox, book, hours, make_desk, member_in

START = datetime(2031, 3, 4, 9, tzinfo=UTC)


class Boom(Exception):
    pass


def _team_then_boom(factory: sessionmaker[Session], org: Org) -> None:
    with transaction(factory) as session:
        teams.create(session, org.organisation.id, "Ghost")
        session.flush()
        raise Boom


def test_sequence_is_consecutive_per_organisation(session_factory: sessionmaker[Session]) -> None:
    acme = make_org(session_factory)
    globex = make_org(session_factory, "Globex")
    with transaction(session_factory) as session:
        teams.create(session, acme.organisation.id, "A")
        teams.create(session, globex.organisation.id, "G")
        teams.create(session, acme.organisation.id, "B")
    for org, count in ((acme, 8), (globex, 7)):
        assert [event.seq for event in all_events(session_factory, org.organisation.id)] == list(range(1, count + 1))
    assert [e.data["name"] for e in all_events(session_factory, acme.organisation.id)[-2:]] == ["A", "B"]


def test_rollback_leaves_no_event_and_no_gap(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with pytest.raises(Boom):
        _team_then_boom(session_factory, acme)
    assert outbox.new() == []
    with transaction(session_factory) as session:
        teams.create(session, acme.organisation.id, "Real")
    [event] = outbox.new()
    assert (event.seq, event.data["name"]) == (outbox.mark + 1, "Real")


def _team_then_clash(session: Session, org: Org, desk: int, team: str = "Before the clash") -> None:
    teams.create(session, org.organisation.id, team)
    bookings.create(session, member_in(session, org), start=START, end=START + hours(1), desk_id=desk)


def test_failed_service_call_leaves_no_event(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    desk = make_desk(session_factory, acme)
    book(session_factory, acme, START, START + hours(1), desk_id=desk, who="admin")
    outbox.skip()
    with pytest.raises(Conflict), transaction(session_factory) as session:
        _team_then_clash(session, acme, desk)
    assert outbox.new() == []


def test_sequence_follows_commit_order(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with session_factory() as first, first.begin():
        members.update(first, member_in(first, acme), display_name="Committed second")
        with transaction(session_factory) as second:
            teams.create(second, acme.organisation.id, "Committed first")
    assert [(e.seq - outbox.mark, e.type) for e in outbox.new()] == [(1, "team.created"), (2, "member.updated")]


def test_listeners_hear_committed_events_only(engine: Engine) -> None:
    heard: list[list[OutboxEvent]] = []
    factory = make_session_factory(engine, [heard.append])
    acme = make_org(factory)
    heard.clear()
    with pytest.raises(Boom):
        _team_then_boom(factory, acme)
    assert heard == []
    with transaction(factory) as session:
        teams.create(session, acme.organisation.id, "Blue")
        desks.create(session, acme.organisation.id, "11")
    assert len(heard) == 1
    stored = all_events(factory, acme.organisation.id)[-2:]
    assert [(e.id, e.seq, e.type, e.data) for e in heard[0]] == [(e.id, e.seq, e.type, e.data) for e in stored]


def test_listeners_wait_for_the_real_commit_not_a_released_savepoint(engine: Engine) -> None:
    heard: list[list[OutboxEvent]] = []
    factory = make_session_factory(engine, [heard.append])
    acme = make_org(factory)
    heard.clear()
    with transaction(factory) as session:
        with session.begin_nested():
            teams.create(session, acme.organisation.id, "Blue")
        assert heard == []
        teams.create(session, acme.organisation.id, "Red")
    assert [[e.data["name"] for e in batch] for batch in heard] == [["Blue", "Red"]]


def test_listeners_are_not_called_for_commits_without_events(engine: Engine) -> None:
    heard: list[list[OutboxEvent]] = []
    factory = make_session_factory(engine, [heard.append])
    acme = make_org(factory)
    heard.clear()
    with transaction(factory) as session:
        teams.list_all(session, acme.organisation.id)
    assert heard == []


def test_event_data_is_json_ready(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    booking_id = book(session_factory, acme, START, START + hours(1))
    with transaction(session_factory) as session:
        booking = bookings.get(session, acme.organisation.id, booking_id)
        bookings.update(session, booking, end=START + hours(2))
        bookings.check_in(session, booking, now=START)
    written = all_events(session_factory, acme.organisation.id)
    for event in written:
        assert json.loads(json.dumps(event.data)) == event.data
    updated = next(e for e in written if e.type == "booking.updated").data
    assert datetime.fromisoformat(updated["changes"]["end"]) == START + hours(2)
    assert updated["status"] == "booked"


def test_record_makes_values_plain(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        store_outbox.record(
            session,
            acme.organisation.id,
            "member.updated",
            {"at": START, "role": member_in(session, acme).role, "list": (START, {"nested": START})},
        )
    assert outbox.only("member.updated") == {
        "at": "2031-03-04T09:00:00Z",
        "role": "member",
        "list": ["2031-03-04T09:00:00Z", {"nested": "2031-03-04T09:00:00Z"}],
    }


def test_event_ids_are_unique_and_timestamped(session_factory: sessionmaker[Session], acme: Org) -> None:
    written = all_events(session_factory, acme.organisation.id)
    assert len({event.id for event in written}) == len(written) == 6
    for event in written:
        assert re.fullmatch(r"evt_[0-9a-f]{32}", event.id)
        assert event.created_at.tzinfo is not None


def test_rolled_back_savepoint_drops_only_its_own_events(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    desk = make_desk(session_factory, acme)
    book(session_factory, acme, START, START + hours(1), desk_id=desk, who="admin")
    outbox.skip()
    with transaction(session_factory) as session:
        teams.create(session, acme.organisation.id, "Kept")
        with pytest.raises(Conflict), session.begin_nested():
            _team_then_clash(session, acme, desk, "Undone")
        with session.begin_nested():
            teams.create(session, acme.organisation.id, "Released")
    with session_factory() as session:
        assert [team.name for team in teams.list_all(session, acme.organisation.id)] == ["Kept", "Released"]
    assert [(e.type, e.data["name"]) for e in outbox.new()] == [("team.created", "Kept"), ("team.created", "Released")]


def _released_savepoint_then_boom(session: Session, org: Org) -> None:
    with session.begin_nested():
        with session.begin_nested():
            teams.create(session, org.organisation.id, "Inner")
        raise Boom


def test_rolled_back_savepoint_drops_events_of_savepoints_released_inside_it(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with transaction(session_factory) as session:
        teams.create(session, acme.organisation.id, "Kept")
        with pytest.raises(Boom):
            _released_savepoint_then_boom(session, acme)
    with session_factory() as session:
        assert [team.name for team in teams.list_all(session, acme.organisation.id)] == ["Kept"]
    assert [e.data["name"] for e in outbox.new()] == ["Kept"]


def test_closing_a_session_without_commit_discards_its_events(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    session = session_factory()
    members.update(session, member_in(session, acme), display_name="Never saved")
    session.close()
    with session.begin():
        teams.create(session, acme.organisation.id, "Saved")
    session.close()
    assert outbox.types() == ["team.created"]


def test_select_events_pages_by_sequence(session_factory: sessionmaker[Session], acme: Org) -> None:
    make_org(session_factory, "Globex")
    with session_factory() as session:
        assert [e.seq for e in session.scalars(events.select_events(acme.organisation.id, after=4))] == [5, 6]

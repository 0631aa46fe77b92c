from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.errors import Conflict, Invalid, NotFound
from store.models import Desk
from store.services import desks
from tests.conftest import Org, make_org
from tests.store.conftest import Outbox, book, hours, load_desk, make_desk, refused

START = datetime(2031, 3, 4, 9, tzinfo=UTC)


def test_create_trims_and_records_event(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        desk = desks.create(
            session, acme.organisation.id, " 11 ", building=" HQ ", floor=" 2 ", zone=" North ", kind="room"
        )
    stored = load_desk(session_factory, desk.id)
    assert (stored.label, stored.building, stored.floor, stored.zone, stored.kind, stored.active) == (
        "11",
        "HQ",
        "2",
        "North",
        "room",
        True,
    )
    assert outbox.only("desk.created") == {"desk_id": desk.id, "label": "11", "building": "HQ", "kind": "room"}


def test_create_without_label_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Invalid) as attempt:
        desks.create(attempt.session, acme.organisation.id, "  ")
    assert attempt.error.field == "label"


def test_create_with_unknown_kind_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Invalid) as attempt:
        desks.create(attempt.session, acme.organisation.id, "11", kind="sofa")
    assert attempt.error.field == "kind"


def test_label_is_unique_within_a_building(session_factory: sessionmaker[Session], acme: Org) -> None:
    make_desk(session_factory, acme, "11", building="HQ")
    make_desk(session_factory, acme, "11", building="Annex")
    make_desk(session_factory, make_org(session_factory, "Globex"), "11", building="HQ")
    with refused(session_factory, Conflict) as attempt:
        desks.create(attempt.session, acme.organisation.id, "11 ", building="HQ")
    assert (attempt.error.code, attempt.error.field) == ("desk_exists", "label")


def test_get_desk_of_another_organisation_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    globex = make_org(session_factory, "Globex")
    with refused(session_factory, NotFound) as attempt:
        desks.get(attempt.session, globex.organisation.id, desk)


def test_list_all_orders_by_building_then_label(session_factory: sessionmaker[Session], acme: Org) -> None:
    for label, building in (("2", "B"), ("1", "B"), ("9", "A")):
        make_desk(session_factory, acme, label, building=building)
    make_desk(session_factory, make_org(session_factory, "Globex"), "0")
    with session_factory() as session:
        assert [(d.building, d.label) for d in desks.list_all(session, acme.organisation.id)] == [
            ("A", "9"),
            ("B", "1"),
            ("B", "2"),
        ]


def test_update_records_changes(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    desk_id = make_desk(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        desk = desks.get(session, acme.organisation.id, desk_id)
        desks.update(session, desk, label=" 12 ", zone="Quiet ", active=False, floor=None)
    stored = load_desk(session_factory, desk_id)
    assert (stored.label, stored.zone, stored.active) == ("12", "Quiet", False)
    assert outbox.only("desk.updated") == {
        "desk_id": desk_id,
        "label": "12",
        "building": "",
        "kind": "desk",
        "changes": {"label": "12", "zone": "Quiet", "active": False},
    }


def test_update_without_change_records_nothing(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    desk_id = make_desk(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        desks.update(session, desks.get(session, acme.organisation.id, desk_id), label="11", active=True)
    assert outbox.new() == []


def test_update_to_taken_label_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    make_desk(session_factory, acme, "11")
    desk_id = make_desk(session_factory, acme, "12")
    with refused(session_factory, Conflict) as attempt:
        desks.update(attempt.session, desks.get(attempt.session, acme.organisation.id, desk_id), label="11")
    assert attempt.error.code == "desk_exists"


def test_update_with_bad_values_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk_id = make_desk(session_factory, acme)
    for fields, field in (({"label": " "}, "label"), ({"kind": "sofa"}, "kind")):
        with refused(session_factory, Invalid) as attempt:
            desks.update(attempt.session, desks.get(attempt.session, acme.organisation.id, desk_id), **fields)
        assert attempt.error.field == field


def test_update_refuses_fields_that_are_not_the_desks_to_change(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    desk_id = make_desk(session_factory, acme)
    globex = make_org(session_factory, "Globex")
    for fields in ({"organisation_id": globex.organisation.id}, {"id": desk_id + 1}, {"colour": "red"}):
        with refused(session_factory, Invalid) as attempt:
            desks.update(attempt.session, desks.get(attempt.session, acme.organisation.id, desk_id), **fields)
        assert attempt.error.field == next(iter(fields))


def test_delete_unbooked_desk(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    desk_id = make_desk(session_factory, acme, "7", building="HQ")
    outbox.skip()
    with transaction(session_factory) as session:
        desks.delete(session, desks.get(session, acme.organisation.id, desk_id))
    with session_factory() as session:
        assert session.get(Desk, desk_id) is None
    assert outbox.only("desk.deleted") == {"desk_id": desk_id, "label": "7", "building": "HQ", "kind": "desk"}


def test_delete_desk_with_history_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk_id = make_desk(session_factory, acme)
    book(session_factory, acme, START, START + hours(1), desk_id=desk_id)
    with refused(session_factory, Conflict) as attempt:
        desks.delete(attempt.session, desks.get(attempt.session, acme.organisation.id, desk_id))
    assert attempt.error.code == "desk_has_bookings"

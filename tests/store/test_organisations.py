from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.errors import Conflict, Invalid, NotFound
from store.services import organisations
from tests.conftest import Org, events
from tests.store.conftest import Outbox, refused


def test_create_keeps_api_off_and_records_event(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        created = organisations.create(session, "  Acme & Co!  ", timezone="Europe/Paris")
    with session_factory() as session:
        organisation = organisations.get(session, created.id)
        assert (organisation.name, organisation.slug) == ("Acme & Co!", "acme-co")
        assert organisation.timezone == "Europe/Paris"
        assert organisation.api_enabled is False
    [event] = events(session_factory, created.id)
    assert (event.seq, event.type, event.data) == (1, "organisation.created", {"organisation_id": created.id})
    assert event.id.startswith("evt_")


def test_create_defaults_to_utc_and_takes_explicit_slug(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        organisation = organisations.create(session, "Globex", slug="Globex Corp")
    assert (organisation.slug, organisation.timezone) == ("globex-corp", "UTC")


def test_create_without_name_is_invalid(session_factory: sessionmaker[Session]) -> None:
    with refused(session_factory, Invalid) as attempt:
        organisations.create(attempt.session, "   ")
    assert attempt.error.field == "name"


def test_create_with_unknown_timezone_is_invalid(session_factory: sessionmaker[Session]) -> None:
    with refused(session_factory, Invalid) as attempt:
        organisations.create(attempt.session, "Initech", timezone="Mars/Olympus")
    assert attempt.error.field == "timezone"


def test_create_with_taken_slug_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Conflict) as attempt:
        organisations.create(attempt.session, "ACME")
    assert (attempt.error.code, attempt.error.field) == ("slug_taken", "slug")


def test_get_and_get_by_slug(session_factory: sessionmaker[Session], acme: Org) -> None:
    with session_factory() as session:
        assert organisations.get_by_slug(session, "acme").id == acme.organisation.id
        assert [o.slug for o in organisations.list_all(session)] == ["acme"]


def test_get_unknown_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, NotFound) as attempt:
        organisations.get(attempt.session, acme.organisation.id + 1)
    with refused(session_factory, NotFound) as attempt:
        organisations.get_by_slug(attempt.session, "nope")


def test_update_settings_records_changes(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        organisation = organisations.get(session, acme.organisation.id)
        organisations.update_settings(session, organisation, timezone="America/New_York", api_enabled=False)
    with session_factory() as session:
        organisation = organisations.get(session, acme.organisation.id)
        assert (organisation.timezone, organisation.api_enabled) == ("America/New_York", False)
    assert outbox.only("organisation.updated") == {
        "organisation_id": acme.organisation.id,
        "timezone": "America/New_York",
        "api_enabled": False,
    }


def test_update_settings_without_change_records_nothing(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    with transaction(session_factory) as session:
        organisation = organisations.get(session, acme.organisation.id)
        organisations.update_settings(session, organisation, timezone="Europe/London", api_enabled=True)
    assert outbox.new() == []


def test_update_settings_with_unknown_timezone_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Invalid) as attempt:
        organisation = organisations.get(attempt.session, acme.organisation.id)
        organisations.update_settings(attempt.session, organisation, timezone="Europe/Atlantis", api_enabled=False)
    assert attempt.error.field == "timezone"

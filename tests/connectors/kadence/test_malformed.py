"""Malformed answers stop the round with an error naming what was wrong, before any page is handed over."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.kadence import Kadence
from connectors.records import ConnectorError
from tests.connectors.kadence.conftest import WINDOW, Office, at
from tests.fakes.kadence import FakeKadence, Request

BOOKINGS = "/v1/public/bookings"
USERS = "/v1/public/users"


def _five_bookings(fake: FakeKadence, office: Office) -> list[str]:
    return [fake.add_booking(office.ada, office.desk1, at(day, 9), at(day, 17)) for day in (4, 5, 6, 7, 8)]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"startDate": "2024-03-06T09:00:00"}, "startDate is '2024-03-06T09:00:00', without a UTC offset"),
        ({"endDate": "next Tuesday"}, "endDate is 'next Tuesday', not an ISO 8601 date-time"),
        ({"updatedAt": None}, "updatedAt is None, not a date-time"),
        ({"endDate": "2024-03-06T08:00:00+00:00"}, "ends (2024-03-06T08:00:00+00:00) before it starts"),
        ({"status": "onHold"}, "status='onHold', not one the document lists"),
        ({"space": "Desk 01"}, "space that is not an object"),
        ({"type": None}, "type=None"),
        ({"checkedInDate": "09:05"}, "checkedInDate is '09:05', not an ISO 8601 date-time"),
        ({"checkedOutDate": "2024-03-06T17:00:00"}, "checkedOutDate is '2024-03-06T17:00:00', without a UTC offset"),
    ],
)
def test_a_malformed_booking_on_a_later_page_yields_nothing(
    fake: FakeKadence, reader: Kadence, office: Office, fields: dict[str, Any], expected: str
) -> None:
    ulids = _five_bookings(fake, office)
    fake.override("bookings", ulids[2], **fields)  # on the second page of three
    pages = reader.events(None, WINDOW)

    with pytest.raises(ConnectorError) as caught:
        next(pages)  # not even the first, well-formed page comes out

    assert f"booking {ulids[2]}" in caught.value.message
    assert expected in caught.value.message
    assert not caught.value.action_required


def _on_page(fake: FakeKadence, path: str, page: str, body: Any) -> None:
    """Answer `path`'s page `page` with `body` as it is."""

    def listener(request: Request) -> None:
        if request.path == path and request.query.get("page") == page:
            fake.answer_next(path, body)

    fake.listeners.append(listener)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"hydra:totalItems": 5}, "bookings (page 2) without a hydra:member list"),
        ({"hydra:member": [], "hydra:totalItems": "5"}, "bookings (page 2) with hydra:totalItems='5', not a count"),
        ({"hydra:member": ["x"], "hydra:totalItems": 5}, "bookings (page 2) with member 0 that is not an object"),
        ([], "JSON that is not an object"),
        (
            {"hydra:member": [], "hydra:totalItems": 5, "hydra:view": {"hydra:next": 3}},
            "hydra:next is not an IRI",
        ),
    ],
)
def test_a_malformed_collection_page_yields_nothing(
    fake: FakeKadence, reader: Kadence, office: Office, body: Any, expected: str
) -> None:
    _five_bookings(fake, office)
    _on_page(fake, BOOKINGS, "2", body)

    with pytest.raises(ConnectorError) as caught:
        next(reader.events(None, WINDOW))

    assert expected in caught.value.message


def test_a_malformed_user_yields_nothing(fake: FakeKadence, reader: Kadence) -> None:
    ulids = [fake.add_user(f"user{n}@example.com") for n in range(5)]
    fake.override("users", ulids[4], email=42)  # on the last page

    with pytest.raises(ConnectorError) as caught:
        next(reader.people(None))

    assert caught.value.message == f"Kadence user {ulids[4]} has email=42, not an address"


def test_a_record_without_any_id_is_named_by_kind(fake: FakeKadence, reader: Kadence) -> None:
    ulid = fake.add_user("ada@example.com")
    fake.override("users", ulid, id=None, **{"@id": None})

    with pytest.raises(ConnectorError, match="Kadence user has neither an id nor an @id"):
        next(reader.people(None))


def test_a_body_that_is_not_an_object(fake: FakeKadence, reader: Kadence) -> None:
    fake.answer_next(USERS, "<html>gateway</html>")

    with pytest.raises(ConnectorError, match="Kadence answered GET /v1/public/users with JSON that is not an object"):
        next(reader.people(None))


def test_a_server_that_pages_forever_is_stopped(fake: FakeKadence, reader: Kadence) -> None:
    fake.add_user("ada@example.com")
    looping = {
        "hydra:member": [],
        "hydra:totalItems": 1,
        "hydra:view": {"hydra:next": "/v1/public/users?page=2&itemsPerPage=2"},
    }
    for _ in range(10):
        fake.answer_next(USERS, looping)

    with pytest.raises(ConnectorError, match="kept paging users past its 1 items"):
        next(reader.people(None))

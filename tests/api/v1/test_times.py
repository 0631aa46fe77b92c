"""Times are written in one form everywhere (item 5 of the integrator's issue): ISO 8601 in UTC with
`Z`, by one serializer (store.times.iso) for REST answers and for events' data alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api.v1.common import Timestamp
from store.times import iso
from tests.conftest import Org, auth

ONE_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def test_iso_is_utc_with_z() -> None:
    paris = timezone(timedelta(hours=2))
    assert iso(datetime(2030, 1, 31, 10, 0, tzinfo=paris)) == "2030-01-31T08:00:00Z"
    assert iso(datetime(2030, 1, 31, 8, 0, 0, 250000, tzinfo=UTC)) == "2030-01-31T08:00:00.250000Z"
    assert iso(datetime(2030, 1, 31, 8, 0)) == "2030-01-31T08:00:00Z"  # a stored (naive) time is UTC


@pytest.mark.parametrize(
    "value",
    [
        datetime(2030, 1, 31, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2030, 1, 31, 8, 0, 0, 250000, tzinfo=UTC),
        datetime(2030, 1, 31, 8, 0, 0, 1, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        datetime(1, 1, 1, 12, 0, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_timestamp_in_an_answer_is_written_as_iso_writes_it(value: datetime) -> None:
    adapter = TypeAdapter(Timestamp)
    written = adapter.dump_json(adapter.validate_python(value)).decode()  # as an answer's model does
    assert written == f'"{iso(value)}"'
    assert ONE_FORM.match(written.strip('"'))


def test_an_answer_and_its_event_write_the_same_times(client: TestClient, org: Org) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    sent = start.astimezone(timezone(timedelta(hours=2))).isoformat()  # given with another offset
    created = client.post(
        "/v1/bookings", json={"start": sent, "end": iso(start + timedelta(hours=8))}, headers=auth(org.member_token)
    )
    assert created.status_code == 201, created.text
    booking = created.json()

    listed = client.get("/v1/events", params={"limit": 200}, headers=auth(org.admin_token)).json()["data"]
    (event,) = [e for e in listed if e["type"] == "booking.created" and e["data"]["booking_id"] == booking["id"]]

    assert booking["start"] == event["data"]["start"] == iso(start)
    assert booking["end"] == event["data"]["end"]
    for text in (booking["start"], booking["end"], booking["created_at"], event["timestamp"], event["data"]["start"]):
        assert ONE_FORM.match(text), text

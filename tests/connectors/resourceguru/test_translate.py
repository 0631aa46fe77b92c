"""Times and zones: Rails zone names, minutes after midnight across daylight saving, whole days."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.resourceguru import Person, Roster
from connectors.resourceguru.translate import booking_events, downtime_events, human_type_ids, to_user
from connectors.resourceguru.zones import iana_zone
from tests.conftest import SHARED_DATA

SEED = SHARED_DATA.parent / "seeds" / "resourceguru-api.txt"
ROSTER = Roster(people={"1": Person("ada@example.com", "America/New_York")})


def test_every_zone_name_the_document_lists_is_a_real_zone() -> None:
    if not SEED.exists():
        pytest.skip(f"{SEED} is absent")
    names = re.findall(r"^\(GMT[+-]\d\d:\d\d\) (.+)$", SEED.read_text(), flags=re.MULTILINE)
    assert len(names) > 140
    unknown = [name for name in names if iana_zone(name) is None]
    assert unknown == []


def test_zone_names() -> None:
    assert iana_zone("Pacific Time (US & Canada)") == "America/Los_Angeles"
    assert iana_zone("London") == "Europe/London"
    assert iana_zone("Europe/Paris") == "Europe/Paris"  # an IANA name as it is
    assert iana_zone("Atlantis") is None
    assert iana_zone("") is None


def event_of(item: dict[str, Any], kind: str = "booking") -> Any:
    translate = booking_events if kind == "booking" else downtime_events
    (only,) = translate(item, ROSTER)
    return only.event


def test_a_morning_booking_on_the_day_clocks_change_is_still_in_the_morning() -> None:
    # New York springs forward on 2025-03-09: 09:00 local is 13:00 UTC (it was 14:00 the day before).
    item = {"id": 1, "resource_ids": [1], "start_date": "2025-03-09", "end_date": "2025-03-09"}
    event = event_of(item | {"duration": 60, "start_time": 540})
    assert event.start == datetime(2025, 3, 9, 13, 0, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 9, 14, 0, tzinfo=UTC)
    before = event_of(item | {"start_date": "2025-03-08", "end_date": "2025-03-08", "duration": 60, "start_time": 540})
    assert before.start == datetime(2025, 3, 8, 14, 0, tzinfo=UTC)


def test_the_booking_zone_wins_over_the_persons() -> None:
    item = {"id": 2, "resource_id": 1, "start_date": "2025-06-03", "end_date": "2025-06-03"}
    event = event_of(item | {"duration": 30, "start_time": 0, "timezone": "Tokyo"})
    assert event.start == datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
    assert event.timezone == "Asia/Tokyo"


def test_time_off_to_the_end_of_the_day_ends_at_midnight() -> None:
    item = {"id": 3, "resource_ids": [1], "from": "2025-06-03", "to": "2025-06-03", "start_time": 720}
    event = event_of(item | {"end_time": 1440}, kind="downtime")
    assert (event.start, event.end) == (datetime(2025, 6, 3, 16, 0, tzinfo=UTC), datetime(2025, 6, 4, 4, 0, tzinfo=UTC))
    assert event.all_day is False
    whole = event_of(item | {"start_time": 0, "end_time": 1440}, kind="downtime")
    assert whole.all_day is True


def test_resource_types_and_people() -> None:
    human = human_type_ids([{"id": 1, "human": True}, {"id": 2, "human": False}, {"id": 3}])
    assert human == frozenset({1})
    person = {"id": 9, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "resource_type_id": 1}
    user = to_user(person, human)
    assert user is not None
    assert (user.display_name, user.active) == ("Ada Lovelace", True)
    assert to_user(person | {"resource_type_id": 2}, human) is None
    assert to_user(person | {"email": ""}, human) is None
    with pytest.raises(ValueError, match="resource 9: archived is not true or false"):
        to_user(person | {"archived": "yes"}, human)

"""Spaces of type desk, building by building, for organisations that import Kadence's desks."""

from __future__ import annotations

from connectors.kadence import Kadence
from connectors.records import PeerDesk
from tests.fakes.kadence import FakeKadence


def test_only_desks_are_imported_with_their_building_and_floor(fake: FakeKadence, reader: Kadence) -> None:
    london = fake.add_building("London Office")
    leeds = fake.add_building("Leeds Hub", "Europe/London")
    desks = [fake.add_space(f"Desk {n:02d}", building=london, floor="Floor 1") for n in range(1, 4)]
    fake.add_space("Boardroom", building=london, type="room")
    fake.add_space("Locker 9", building=london, type="locker")
    leeds_desk = fake.add_space("Hot desk", building=leeds, floor=None)

    found = reader.desks()

    assert found == [
        *(
            PeerDesk(ulid, f"Desk {n:02d}", building="London Office", floor="Floor 1")
            for n, ulid in enumerate(desks, 1)
        ),
        PeerDesk(leeds_desk, "Hot desk", building="Leeds Hub", floor=""),
    ]
    asked = [(r.query["buildingId"], r.query["page"]) for r in fake.requests if r.path == "/v1/public/spaces"]
    assert asked == [(london, "1"), (london, "2"), (london, "3"), (leeds, "1")]  # 5 London spaces, 2 a page


def test_no_buildings_no_desks(fake: FakeKadence, reader: Kadence) -> None:
    assert reader.desks() == []
    assert fake.count("/v1/public/spaces") == 0

"""Users as a complete directory round, read over several Hydra pages."""

from __future__ import annotations

import httpx

from connectors.kadence import Kadence
from connectors.records import DirectoryUser
from tests.connectors.kadence.conftest import Sleeps, make_reader
from tests.fakes.kadence import FakeKadence


def _people(fake: FakeKadence) -> list[str]:
    return [fake.add_user(f"user{n}@example.com", f"First{n}", f"Last{n}") for n in range(5)]


def test_first_read_pages_until_the_total_is_reached(fake: FakeKadence, reader: Kadence) -> None:
    ulids = _people(fake)

    pages = list(reader.people(None))

    users = [user for page in pages for user in page.users]
    assert users[0] == DirectoryUser(
        external_id=ulids[0], username="user0@example.com", email="user0@example.com", display_name="First0 Last0"
    )
    assert [user.external_id for user in users] == ulids
    asked = [(r.query["page"], r.query["itemsPerPage"]) for r in fake.requests if r.path == "/v1/public/users"]
    assert asked == [("1", "2"), ("2", "2"), ("3", "2")]  # 5 users, 2 a page: no fourth request
    assert all(page.full_users for page in pages)
    assert [page.last for page in pages] == [False, False, True]
    assert [page.cursor for page in pages] == [None, None, "2024-03-01T12:00:00+00:00"]


def test_hydra_view_next_links_are_followed_when_sent(http: httpx.Client, sleeps: Sleeps) -> None:
    with FakeKadence(hydra_view=True) as fake:
        ulids = _people(fake)
        fake.add_user("user5@example.com")  # 6 users: the last page is full, only the view says it is the last

        users = [user for page in make_reader(fake, http, sleeps).people(None) for user in page.users]

        assert [user.external_id for user in users][:5] == ulids
        assert len(users) == 6
        assert fake.count("/v1/public/users") == 3


def test_an_empty_company_is_one_last_page(fake: FakeKadence, reader: Kadence) -> None:
    pages = list(reader.people(None))

    assert len(pages) == 1
    assert pages[0].users == ()
    assert pages[0].last
    assert pages[0].full_users


def test_a_user_added_while_paging_makes_the_listing_read_again(fake: FakeKadence, reader: Kadence) -> None:
    ulids = _people(fake)
    added: list[str] = []

    def add_once(request: object) -> None:
        if not added and getattr(request, "query", {}).get("page") == "2":
            added.append(fake.add_user("late@example.com"))

    fake.listeners.append(add_once)

    pages = list(reader.people(None))

    assert [user.external_id for page in pages for user in page.users] == [*ulids, *added]
    assert any("changed while being read" in note for note in pages[-1].notes)

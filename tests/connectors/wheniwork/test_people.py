"""Users as a complete directory round; locations and roles as groups."""

from __future__ import annotations

import json

import pytest

from connectors.records import ConnectorError, DirectoryGroup, DirectoryPage, DirectoryUser
from connectors.wheniwork import WhenIWork, WhenIWorkClient
from tests.connectors.wheniwork.conftest import USERNAME
from tests.fakes.wheniwork import FakeWhenIWork


def test_a_round_lists_every_user_with_locations_and_roles_as_groups(reader: WhenIWork) -> None:
    (page,) = list(reader.people(None))
    assert page.users == (
        DirectoryUser("1", USERNAME, USERNAME, "Goldie Wilson"),
        DirectoryUser("2", "Jen.Parker@example.com", "Jen.Parker@example.com", "Jennifer Parker"),
        DirectoryUser("3", "doc@example.com", "doc@example.com", "Emmett Brown", active=False),  # not activated
    )
    assert page.groups == (
        DirectoryGroup("location:136", "Downtown", members=frozenset({"1", "2"})),
        DirectoryGroup("location:137", "Uptown", members=frozenset({"1", "3"})),
        DirectoryGroup("role:2", "Managers", members=frozenset({"1"})),
        DirectoryGroup("role:3", "Employees", members=frozenset({"2"})),
        DirectoryGroup("role:5", "Supervisors", members=frozenset({"3"})),
    )
    assert (page.full_users, page.full_groups, page.last) == (True, True, True)
    assert json.loads(page.cursor or "")["kind"] == "people"


def test_pages_carry_users_then_groups_and_the_cursor_last(fake: FakeWhenIWork, client: WhenIWorkClient) -> None:
    pages = list(WhenIWork(client, page_size=2).people("whatever came before"))
    assert [len(page.users) for page in pages] == [2, 1]
    assert [bool(page.groups) for page in pages] == [False, True]
    assert [page.cursor is not None for page in pages] == [False, True]
    assert [page.last for page in pages] == [False, True]
    assert all(page.full_users and page.full_groups for page in pages)


def test_a_deleted_user_and_a_removed_location_are_simply_not_listed(fake: FakeWhenIWork, reader: WhenIWork) -> None:
    del fake.users[2]
    del fake.locations[137]
    (page,) = list(reader.people(None))
    assert [user.external_id for user in page.users] == ["1", "3"]
    assert [group.external_id for group in page.groups if group.external_id.startswith("location:")] == ["location:136"]


def test_a_user_without_an_address_and_with_string_ids(fake: FakeWhenIWork, reader: WhenIWork) -> None:
    fake.users[4] = {"id": "4", "first_name": "Biff", "last_name": "", "email": "", "locations": ["136"]}
    (page,) = list(reader.people(None))
    assert page.users[-1] == DirectoryUser("4", "4", None, "Biff")
    downtown = next(g for g in page.groups if g.external_id == "location:136")
    assert downtown.members is not None
    assert "4" in downtown.members


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("id", "abc", "id is 'abc'"),
        ("email", 42, "email is 42"),
        ("email", "not-an-address", "not an address"),
        ("activated", "yes", "activated is 'yes'"),
        ("locations", "136", "locations is '136'"),
        ("role", True, "role is True"),
    ],
)
def test_a_malformed_user_ends_the_round_before_any_page(
    fake: FakeWhenIWork, client: WhenIWorkClient, field: str, value: object, words: str
) -> None:
    fake.users[3][field] = value
    pages: list[DirectoryPage] = []
    with pytest.raises(ConnectorError) as caught:
        pages.extend(WhenIWork(client, page_size=1).people(None))
    assert pages == []  # users 1 and 2 were fine, and still nothing was handed over
    assert "malformed user" in caught.value.message
    assert words in caught.value.message
    assert not caught.value.action_required


def test_a_listing_without_its_wrapper_is_an_error(fake: FakeWhenIWork, reader: WhenIWork) -> None:
    fake.answer_next("/2/users", 200, b'{"user": {"id": 1}}')
    with pytest.raises(ConnectorError, match="/users without a list of objects in 'users'"):
        list(reader.people(None))

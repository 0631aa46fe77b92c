"""MicrosoftDirectory against the fake Graph (page size 3, member slices of 2): rounds, deltas, resyncs, throttling."""

from __future__ import annotations

import json

import pytest

from connectors.microsoft import Cursor, GraphClient, MicrosoftDirectory
from connectors.records import ConnectorError, DirectoryGroup, DirectoryPage, DirectoryUser
from tests.connectors.microsoft.conftest import Sleeps
from tests.fakes.graph import FakeGraph


def seed(fake: FakeGraph, count: int = 7) -> None:
    """`count` users u1… with mailboxes, a guest without one, and a group of three."""
    for n in range(1, count + 1):
        fake.directory.add_user(
            f"u{n}", f"user{n}@contoso.example", display_name=f"User {n}", mail=f"user{n}@contoso.example"
        )
    fake.directory.add_user("guest", "pat_fabrikam.example#EXT#@contoso.example", display_name="Pat", guest=True)
    fake.directory.add_group("g1", "Desk users", mail="desk@contoso.example")
    fake.directory.add_members("g1", ["u1", "u2", "u3"])


def users_of(pages: list[DirectoryPage]) -> dict[str, DirectoryUser]:
    return {user.external_id: user for page in pages for user in page.users}


def removed_of(pages: list[DirectoryPage]) -> set[str]:
    return {removed.external_id for page in pages for removed in page.removed}


def groups_of(pages: list[DirectoryPage]) -> list[DirectoryGroup]:
    return [group for page in pages for group in page.groups]


def members_announced(pages: list[DirectoryPage], group_id: str) -> tuple[set[str], set[str]]:
    added: set[str] = set()
    removed: set[str] = set()
    for group in groups_of(pages):
        if group.external_id == group_id:
            added |= group.added
            removed |= group.removed
    return added, removed


def last_cursor(pages: list[DirectoryPage]) -> str:
    assert pages[-1].last
    assert pages[-1].cursor is not None
    return pages[-1].cursor


def test_first_round_is_full_over_several_pages_with_the_cursor_on_the_last(
    fake: FakeGraph, reader: MicrosoftDirectory
) -> None:
    seed(fake)
    fake.directory.add_user("off", "off@contoso.example", mail="off@contoso.example", enabled=False)
    for n in range(2, 6):
        fake.directory.add_group(f"g{n}", f"Team {n}")

    pages = list(reader.read(None))

    user_pages = [page for page in pages if page.users or page.removed]
    assert len(user_pages) == 3  # 9 users, 3 a page
    assert all(page.full_users for page in user_pages)
    group_pages = [page for page in pages if page.groups]
    assert len(group_pages) == 2  # 5 groups, g1 in two slices of members: 6 objects, 3 a page
    assert all(page.full_groups for page in group_pages)
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert [page.cursor is not None for page in pages] == [False] * (len(pages) - 1) + [True]
    users = users_of(pages)
    assert set(users) == {*(f"u{n}" for n in range(1, 8)), "guest", "off"}
    assert users["u1"] == DirectoryUser(
        external_id="u1", username="user1@contoso.example", email="user1@contoso.example", display_name="User 1"
    )
    assert users["guest"].guest
    assert users["guest"].email is None
    assert not users["off"].active
    assert members_announced(pages, "g1") == ({"u1", "u2", "u3"}, set())
    assert groups_of(pages)[0].name == "Desk users"
    assert groups_of(pages)[0].email == "desk@contoso.example"
    assert {group.external_id for group in groups_of(pages)} == {"g1", "g2", "g3", "g4", "g5"}
    assert fake.count("/v1.0/users/delta?$select=id,displayName,mail,userPrincipalName,accountEnabled,userType") == 1


def test_next_round_returns_only_changes(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None)))
    fake.directory.update_user("u1", displayName="Ada Lovelace")
    fake.directory.disable_user("u2")
    fake.directory.soft_delete_user("u3")
    fake.directory.hard_delete_user("u4")
    fake.directory.add_user("u9", "new@contoso.example", mail=None)

    pages = list(reader.read(cursor))

    assert not any(page.full_users or page.full_groups for page in pages)
    users = users_of(pages)
    assert set(users) == {"u1", "u2", "u9"}
    assert users["u1"].display_name == "Ada Lovelace"
    assert not users["u2"].active
    assert users["u9"].email is None
    assert removed_of(pages) == {"u3", "u4"}  # soft-deleted ("changed") and deleted alike
    # Soft-deleting u3 took it out of g1: a membership change on the group.
    assert members_announced(pages, "g1") == (set(), {"u3"})

    quiet = list(reader.read(last_cursor(pages)))
    assert users_of(quiet) == {}
    assert removed_of(quiet) == set()
    assert groups_of(quiet) == []
    assert quiet[-1].last


def test_partial_user_objects_are_read_again_in_full(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake, 2)
    cursor = last_cursor(list(reader.read(None)))
    fake.directory.partial_updates = True
    fake.directory.update_user("u1", displayName="Only the name changed")

    pages = list(reader.read(cursor))

    # Graph sent {"id", "displayName"}; the connector must not read the missing mail as "no mailbox".
    assert users_of(pages)["u1"] == DirectoryUser(
        external_id="u1",
        username="user1@contoso.example",
        email="user1@contoso.example",
        display_name="Only the name changed",
    )
    assert fake.count("/v1.0/users/u1") == 1


def test_group_delta_members_added_and_removed_and_group_deleted(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    fake.directory.add_group("g2", "Doomed")
    cursor = last_cursor(list(reader.read(None)))
    fake.directory.add_member("g1", "u5")
    fake.directory.remove_member("g1", "u1")
    fake.directory.add_member("g1", "nested-group", kind="group")
    fake.directory.add_member("g1", "a-device", kind="device")
    fake.directory.rename_group("g1", "Hot desks")
    fake.directory.delete_group("g2")

    pages = list(reader.read(cursor))

    assert members_announced(pages, "g1") == ({"u5"}, {"u1"})  # nested group and device ignored
    g1 = [group for group in groups_of(pages) if group.external_id == "g1"]
    assert {group.name for group in g1} == {"Hot desks"}
    assert all(group.members is None for group in g1)
    (g2,) = [group for group in groups_of(pages) if group.external_id == "g2"]
    assert g2.deleted


def test_large_group_members_come_in_slices_over_pages(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    fake.directory.add_group("big", "Everyone", mail="all@contoso.example")
    fake.directory.add_members("big", [f"u{n}" for n in range(1, 8)])
    fake.directory.add_member("big", "nested-group", kind="group")

    pages = list(reader.read(None))

    slices = [group for group in groups_of(pages) if group.external_id == "big"]
    assert len(slices) == 4  # 8 members, 2 a slice
    assert len({id(page) for page in pages for group in page.groups if group.external_id == "big"}) >= 2
    assert {group.name for group in slices} == {"Everyone"}
    assert members_announced(pages, "big") == ({f"u{n}" for n in range(1, 8)}, set())


def test_membership_only_slices_take_the_name_from_the_round(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None)))
    fake.directory.partial_updates = True  # group objects then carry members@delta only
    fake.directory.add_members("g1", ["u4", "u5", "u6"])

    pages = list(reader.read(cursor))

    assert {group.name for group in groups_of(pages)} == {"Desk users"}
    assert members_announced(pages, "g1") == ({"u4", "u5", "u6"}, set())
    assert fake.count("/v1.0/groups/g1") == 1  # once for the round, not once per slice


def test_expired_delta_link_starts_a_full_round_with_a_note(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None)))
    fake.directory.expire_tokens()

    pages = list(reader.read(cursor))

    assert all(page.full_users for page in pages if page.users)
    assert all(page.full_groups for page in pages if page.groups)
    assert len(users_of(pages)) == 8
    assert any("users" in note and "again" in note for note in pages[0].notes)
    assert any("groups" in note and "again" in note for page in pages for note in page.notes)
    assert users_of(list(reader.read(last_cursor(pages)))) == {}


def test_expired_delta_token_as_a_400_sync_state_not_found_also_resyncs(
    fake: FakeGraph, reader: MicrosoftDirectory
) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None)))
    fake.resync_status = 400  # how Graph answers an identity delta token older than 7 days
    fake.directory.expire_tokens()

    pages = list(reader.read(cursor))

    assert pages[0].full_users
    assert len(users_of(pages)) == 8


def test_410_part_way_through_an_incremental_round(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    cursor = last_cursor(list(reader.read(None)))
    for n in range(1, 8):
        fake.directory.update_user(f"u{n}", displayName=f"Renamed {n}")

    rounds = reader.read(cursor)
    first = next(rounds)
    fake.directory.expire_tokens()  # the nextLink of the first page is now gone
    rest = list(rounds)

    assert not first.full_users
    assert len(first.users) == 3
    user_pages = [page for page in rest if page.users]
    assert user_pages
    assert all(page.full_users for page in user_pages)
    assert "again" in " ".join(rest[0].notes)
    assert len(users_of([first, *rest])) == 8
    assert users_of(list(reader.read(last_cursor(rest)))) == {}


def test_410_part_way_through_a_full_round(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)
    rounds = reader.read(None)
    first = next(rounds)
    fake.directory.expire_tokens()
    rest = list(rounds)

    assert first.full_users
    assert all(page.full_users for page in rest if page.users)
    assert len(users_of(rest)) == 8  # the listing started again, so it is complete on its own


def test_resyncs_are_bounded(fake: FakeGraph, graph: GraphClient) -> None:
    seed(fake)
    reader = MicrosoftDirectory(graph, max_resyncs=1)
    cursor = last_cursor(list(reader.read(None)))
    fake.directory.expire_tokens()
    rounds = reader.read(cursor)
    first = next(rounds)  # resynced once already
    assert first.full_users
    fake.directory.expire_tokens()

    with pytest.raises(ConnectorError) as caught:
        list(rounds)
    assert "syncStateNotFound" in caught.value.message


def test_429_waits_the_retry_after_and_says_so(fake: FakeGraph, reader: MicrosoftDirectory, sleeps: Sleeps) -> None:
    seed(fake)
    fake.throttle(2, retry_after="1.5")

    pages = list(reader.read(None))

    assert sleeps.calls == [1.5, 1.5]
    assert "throttled 2\u00d7 by Graph (waited 3s)" in pages[0].notes
    assert len(users_of(pages)) == 8
    assert not any(page.notes for page in pages[1:])


def test_503_is_retried_with_backoff(fake: FakeGraph, reader: MicrosoftDirectory, sleeps: Sleeps) -> None:
    seed(fake)
    fake.fail(2, 503)

    pages = list(reader.read(None))

    assert sleeps.calls == [0.5, 1.0]
    assert "Graph answered 503 2\u00d7, retried" in pages[0].notes
    assert len(users_of(pages)) == 8


def test_persistent_server_errors_give_up_after_bounded_attempts(
    fake: FakeGraph, reader: MicrosoftDirectory, sleeps: Sleeps
) -> None:
    seed(fake)
    fake.fail(50, 500)

    with pytest.raises(ConnectorError) as caught:
        list(reader.read(None))
    assert not caught.value.action_required
    assert len(sleeps.calls) == 4  # 5 attempts
    assert fake.count("/v1.0/users/delta") == 5


def test_a_long_retry_after_is_handed_to_the_worker_instead_of_slept(
    fake: FakeGraph, reader: MicrosoftDirectory, sleeps: Sleeps
) -> None:
    seed(fake)
    fake.throttle(1, retry_after="600")

    with pytest.raises(ConnectorError) as caught:
        list(reader.read(None))
    assert caught.value.retry_after == 600
    assert sleeps.calls == []


def test_unreadable_cursor_means_a_full_round(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)

    pages = list(reader.read("not-a-cursor"))

    assert pages[0].full_users
    assert "cursor" in " ".join(pages[0].notes)
    assert len(users_of(pages)) == 8


def test_users_only_reader_puts_the_cursor_on_the_last_users_page(fake: FakeGraph, graph: GraphClient) -> None:
    seed(fake)
    fake.identity.apps[next(iter(fake.identity.apps))].permissions = {"User.Read.All"}
    reader = MicrosoftDirectory(graph, groups=False)

    pages = list(reader.read(None))

    assert len(users_of(pages)) == 8
    assert not groups_of(pages)
    cursor = Cursor.decode(last_cursor(pages))
    assert cursor.users is not None
    assert cursor.groups is None
    assert fake.count("/v1.0/groups") == 0


def test_cursor_is_opaque_json_with_both_links(fake: FakeGraph, reader: MicrosoftDirectory) -> None:
    seed(fake)

    data = json.loads(last_cursor(list(reader.read(None))))

    assert data["users"].startswith(f"{fake.graph_url}/users/delta?$deltatoken=")
    assert data["groups"].startswith(f"{fake.graph_url}/groups/delta?$deltatoken=")

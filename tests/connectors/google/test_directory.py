"""Full rounds of users, deleted users, groups and members through the real client against the fake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httplib2  # type: ignore[import-untyped]
import pytest

from connectors.google import GoogleDirectory, GoogleSettings
from connectors.google.directory import to_user
from connectors.records import DirectoryPage, DirectoryUser, RemovedUser
from tests.connectors.google.conftest import google_sample
from tests.fakes.google import FakeGoogle

STARTED = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


def read(directory: GoogleDirectory, cursor: str | None = None) -> list[DirectoryPage]:
    return list(directory.read(cursor))


def users_of(pages: list[DirectoryPage]) -> dict[str, DirectoryUser]:
    return {user.external_id: user for page in pages for user in page.users}


def test_full_round_over_several_pages(fake: FakeGoogle, settings: GoogleSettings) -> None:
    alex = fake.add_user("alex@example.com", "Alex", "Müller", org_unit="/Sales/EMEA")
    sam = fake.add_user("sam@example.com", "Sam", "Okafor", suspended=True)
    jo = fake.add_user("jo@example.com", "Jo", "Lee", archived=True, org_unit="/Alumni")
    fake.add_users(4)
    gone = fake.add_user("riley@example.com", "Riley", "Novak")
    fake.delete_user(gone)

    pages = read(GoogleDirectory(settings, page_size=2, now=lambda: STARTED))

    user_pages = [page for page in pages if page.users]
    assert len(user_pages) == 4  # 8 live users (admin included), 2 per page
    users = users_of(pages)
    assert len(users) == 8
    assert users[alex] == DirectoryUser(
        external_id=alex,
        username="alex@example.com",
        email="alex@example.com",
        display_name="Alex Müller",
        active=True,
        org_unit="/Sales/EMEA",
    )
    assert not users[sam].active
    assert not users[jo].active
    assert users[jo].org_unit == "/Alumni"
    assert gone not in users
    assert [r for page in pages for r in page.removed] == [RemovedUser(gone)]
    assert all(page.full_users and page.full_groups for page in pages)
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert [page.cursor for page in pages] == [None] * (len(pages) - 1) + [STARTED.isoformat()]


def test_request_parameters(fake: FakeGoogle, settings: GoogleSettings) -> None:
    read(GoogleDirectory(settings))

    listings = [r.query for r in fake.requests if r.path == "admin/directory/v1/users"]
    assert listings == [
        {"customer": "my_customer", "maxResults": "500", "projection": "basic", "alt": "json"},
        {"customer": "my_customer", "maxResults": "500", "projection": "basic", "showDeleted": "true", "alt": "json"},
    ]


def test_given_customer_id(fake: FakeGoogle, settings: GoogleSettings) -> None:
    from dataclasses import replace

    pages = read(GoogleDirectory(replace(settings, customer=fake.customer_id)))
    assert fake.admin_id in users_of(pages)


def test_cursor_changes_nothing_every_round_is_full(fake: FakeGoogle, settings: GoogleSettings) -> None:
    fake.add_users(3)
    directory = GoogleDirectory(settings)

    first = read(directory)
    again = read(directory, first[-1].cursor)

    assert users_of(first) == users_of(again)
    assert all(page.full_users for page in again)


def test_changes_between_rounds(fake: FakeGoogle, settings: GoogleSettings) -> None:
    will = fake.add_user("will@example.com", "Will", "Turner")
    directory = GoogleDirectory(settings)
    assert users_of(read(directory))[will].active

    fake.update_user(will, email="william@example.com", given="William", org_unit="/Ops")
    fake.suspend_user(will)
    user = users_of(read(directory))[will]

    assert (user.username, user.email, user.display_name, user.org_unit, user.active) == (
        "william@example.com",
        "william@example.com",
        "William Turner",
        "/Ops",
        False,
    )


def test_groups_and_members_over_pages(fake: FakeGoogle, settings: GoogleSettings) -> None:
    people = fake.add_users(450)
    big = fake.add_group("everyone@example.com", "Everyone")
    fake.add_members(big, people)  # 3 pages of members at 200
    small = fake.add_group("desk-admins@example.com", "Desk admins")
    fake.add_members(small, [fake.admin_id])
    fake.add_members(small, ["C03az79cb"], kind="CUSTOMER")  # not a person: ignored

    pages = read(GoogleDirectory(settings))

    groups = {group.external_id: group for page in pages for group in page.groups}
    assert set(groups) == {big, small}
    assert groups[big].members == frozenset(people)
    assert (groups[big].name, groups[big].email) == ("Everyone", "everyone@example.com")
    assert groups[small].members == frozenset({fake.admin_id})
    member_calls = [r for r in fake.requests if r.path == f"admin/directory/v1/groups/{big}/members"]
    assert len(member_calls) == 3
    assert all(r.query["maxResults"] == "200" for r in member_calls)


def test_many_groups_page_too(fake: FakeGoogle, settings: GoogleSettings) -> None:
    ids = {fake.add_group(f"team{n}@example.com") for n in range(205)}

    pages = read(GoogleDirectory(settings))

    assert {group.external_id for page in pages for group in page.groups} == ids
    assert len([r for r in fake.requests if r.path == "admin/directory/v1/groups"]) == 2
    assert all(group.members == frozenset() for page in pages for group in page.groups)


def test_nested_group_members_count(fake: FakeGoogle, settings: GoogleSettings) -> None:
    ana, ben = fake.add_user("ana@example.com"), fake.add_user("ben@example.com")
    outer, inner = fake.add_group("sales@example.com"), fake.add_group("sales-emea@example.com")
    fake.add_members(outer, [ana])
    fake.add_members(outer, [inner], kind="GROUP")
    fake.add_members(inner, [ben])

    nested = {g.external_id: g.members for p in read(GoogleDirectory(settings)) for g in p.groups}
    direct = {g.external_id: g.members for p in read(GoogleDirectory(settings, nested=False)) for g in p.groups}

    assert nested[outer] == frozenset({ana, ben})
    assert direct[outer] == frozenset({ana})


def test_restricted_to_given_groups(fake: FakeGoogle, settings: GoogleSettings) -> None:
    ana = fake.add_user("ana@example.com")
    wanted = fake.add_group("desks@example.com", "Desk users")
    other = fake.add_group("all@example.com")
    fake.add_members(wanted, [ana])
    fake.add_members(other, [ana, fake.admin_id])

    pages = read(GoogleDirectory(settings, groups=["desks@example.com", "deleted-group@example.com"]))

    groups = [group for page in pages for group in page.groups]
    assert [(g.external_id, g.members) for g in groups] == [(wanted, frozenset({ana}))]
    assert "group deleted-group@example.com not found at Google" in [n for p in pages for n in p.notes]
    paths = {r.path for r in fake.requests}
    assert "admin/directory/v1/groups" not in paths  # no listing of every group
    assert f"admin/directory/v1/groups/{other}/members" not in paths


def test_deleted_user_leaves_its_groups(fake: FakeGoogle, settings: GoogleSettings) -> None:
    ana, ben = fake.add_user("ana@example.com"), fake.add_user("ben@example.com")
    team = fake.add_group("team@example.com")
    fake.add_members(team, [ana, ben])
    fake.delete_user(ben)

    pages = read(GoogleDirectory(settings))

    assert [g.members for p in pages for g in p.groups] == [frozenset({ana})]
    assert RemovedUser(ben) in [r for p in pages for r in p.removed]


def test_empty_directory_still_ends_with_a_last_page(settings: GoogleSettings, fake: FakeGoogle) -> None:
    pages = read(GoogleDirectory(settings, now=lambda: STARTED))

    assert pages[-1].last
    assert pages[-1].cursor == STARTED.isoformat()
    assert set(users_of(pages)) == {fake.admin_id}


def test_no_discovery_document_is_fetched(
    fake: FakeGoogle, settings: GoogleSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every URL the HTTP library is asked for, wherever it points (a discovery fetch would go to googleapis.com).
    urls: list[str] = []
    original = httplib2.Http.request

    def recording(self: httplib2.Http, uri: str, *args: Any, **kwargs: Any) -> Any:
        urls.append(uri)
        return original(self, uri, *args, **kwargs)

    monkeypatch.setattr(httplib2.Http, "request", recording)
    fake.add_group("team@example.com")

    read(GoogleDirectory(settings))

    assert fake.discovery_requests == 0
    # The API calls of the round were seen (the token request goes through the outbound guard's client),
    # so a discovery fetch would have been too.
    assert len(urls) >= 4
    assert all(url.startswith(fake.base_url) for url in urls)
    assert not [url for url in urls if "discovery" in url]


def test_users_list_sample_maps() -> None:
    sample = google_sample("directory_users_list_response_constructed.json")

    users = [to_user(item) for item in sample["users"]]

    by_email = {user.username: user for user in users}
    assert by_email["alex@example.com"].display_name == "Alex Müller"
    assert by_email["alex@example.com"].active
    assert by_email["alex@example.com"].org_unit == "/"
    assert not by_email["sam@example.com"].active  # suspended
    assert by_email["sam@example.com"].org_unit == "/Sales/EMEA"
    assert not by_email["former.employee@example.com"].active  # archived
    assert all(user.email == user.username for user in users)


def test_sample_listing_served_by_the_fake(fake: FakeGoogle, settings: GoogleSettings) -> None:
    # The sample's users, as the fake serves them, come out of the connector as mapped from the sample itself.
    sample = google_sample("directory_users_list_response_constructed.json")
    for item in sample["users"]:
        name = item["name"]
        fake.add_user(
            item["primaryEmail"],
            name["givenName"],
            name["familyName"],
            org_unit=item["orgUnitPath"],
            suspended=item["suspended"],
            archived=item["archived"],
            user_id=item["id"],
        )

    users = users_of(read(GoogleDirectory(settings)))

    for item in sample["users"]:
        assert users[item["id"]] == to_user(item)


def test_show_deleted_sample_shape(fake: FakeGoogle, settings: GoogleSettings) -> None:
    sample = google_sample("directory_users_list_showDeleted_constructed.json")
    (item,) = sample["users"]
    uid = fake.add_user(item["primaryEmail"], user_id=item["id"])
    fake.delete_user(uid)

    pages = read(GoogleDirectory(settings))

    served = fake.deleted[uid]
    assert set(item) - set(served) <= {"etag"}  # the fake's deleted user has the sample's fields
    assert "deletionTime" in served
    assert [r for p in pages for r in p.removed] == [RemovedUser(item["id"])]


@pytest.mark.parametrize("projection", ["basic", "full"])
def test_projection_is_passed(fake: FakeGoogle, settings: GoogleSettings, projection: str) -> None:
    read(GoogleDirectory(settings, projection=projection))
    assert {r.query["projection"] for r in fake.requests if r.path == "admin/directory/v1/users"} == {projection}

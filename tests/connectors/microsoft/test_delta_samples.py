"""The reader on Microsoft's own delta sample pages (served by a stub that follows their links).

The samples select other properties than we do (no userPrincipalName, no mail), so every user in
them is a partial object the reader must read again; the stub answers those reads.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.http import Notes
from connectors.microsoft import MicrosoftDirectory
from connectors.microsoft.directory import members_from_delta
from connectors.records import DirectoryPage
from tests.connectors.microsoft.conftest import reference


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(reference(name).read_text())
    return data


class SampleGraph:
    """Serves sample pages by URL: the initial delta requests, then whatever links the pages carry."""

    def __init__(self, users: list[str], groups: list[str]) -> None:
        self.notes = Notes("Graph")
        self.fetched: list[str] = []
        self.pages: dict[str, dict[str, Any]] = {}
        for stream, names in (("users", users), ("groups", groups)):
            url = f"{stream}/delta?"
            for name in names:
                page = sample(name)
                self.pages[url] = page
                url = page.get("@odata.nextLink", "")

    def get_json(self, url: str, *, permission: str) -> dict[str, Any]:
        for prefix, page in self.pages.items():
            if url == prefix or (prefix.endswith("?") and url.startswith(prefix)):
                return page
        self.fetched.append(url)
        object_id = url.split("/")[1].split("?")[0]
        if url.startswith("users/"):
            return {
                "id": object_id,
                "displayName": f"Name of {object_id}",
                "userPrincipalName": f"{object_id}@contoso.example",
                "mail": None,
                "accountEnabled": True,
                "userType": "Member",
            }
        return {"id": object_id, "displayName": f"Group {object_id}", "mail": None}


def read(graph: SampleGraph, cursor: str | None = None) -> list[DirectoryPage]:
    return list(MicrosoftDirectory(graph).read(cursor))  # type: ignore[arg-type]


def test_initial_user_and_group_rounds_from_the_docs() -> None:
    graph = SampleGraph(
        [
            "user_delta_01_initial_page_nextLink_with_removed.json",
            "user_delta_02_nextLink_page.json",
            "user_delta_03_final_page_deltaLink.json",
        ],
        [
            "group_delta_01_initial_page_nextLink_members_delta.json",
            "group_delta_02_nextLink_page.json",
            "group_delta_03_final_page_deltaLink.json",
        ],
    )

    pages = read(graph)

    assert len(pages) == 6
    assert all(page.full_users for page in pages[:3])
    assert all(page.full_groups for page in pages[3:])
    users = {user.external_id: user for page in pages for user in page.users}
    assert len(users) == 7
    cameron = users["ffff7b1a-13b6-477b-8c0c-380905cd99f7"]
    assert cameron.username == "ffff7b1a-13b6-477b-8c0c-380905cd99f7@contoso.example"  # read again in full
    # Every sample object lacks properties we select: 7 users and 6 groups read again, each once.
    assert sorted({url.split("/")[0] for url in graph.fetched}) == ["groups", "users"]
    assert len(graph.fetched) == 13
    assert [r.external_id for r in pages[0].removed] == ["86462606-fde0-4fc4-9e0c-a20eb73e54c6"]
    groups = {group.external_id: group for page in pages for group in page.groups}
    first = groups["c2f798fd-f95d-4623-8824-63aec21fffff"]
    assert first.name == "TestGroup1"  # from the page, though the group was read again for its mail
    assert first.added == {"693acd06-2877-4339-8ade-b704261fe7a0", "49320844-be99-4164-8167-87ff5d047ace"}
    assert groups["ec22655c-8eb2-432a-b4ea-8b8a254bffff"].added == frozenset()
    cursor = json.loads(pages[-1].cursor or "{}")
    assert cursor["users"] == sample("user_delta_03_final_page_deltaLink.json")["@odata.deltaLink"]
    assert cursor["groups"] == sample("group_delta_03_final_page_deltaLink.json")["@odata.deltaLink"]
    assert [page.last for page in pages] == [False] * 5 + [True]


def test_next_round_from_the_docs_with_a_soft_deleted_user() -> None:
    graph = SampleGraph(
        ["user_delta_05_deltaLink_changes_with_removed_changed.json"],
        ["group_delta_05_deltaLink_members_removed_and_added.json"],
    )
    cursor = json.dumps({"v": 1, "users": "users/delta?$deltatoken=x", "groups": "groups/delta?$deltatoken=y"})

    pages = read(graph, cursor)

    assert not pages[0].full_users
    assert [r.external_id for r in pages[0].removed] == ["8ffff70c-1c63-4860-b963-e34ec660931d"]
    assert [u.external_id for u in pages[0].users] == ["25dcffff-959e-4ece-9973-e5d9b800e8cc"]
    (group,) = pages[1].groups
    assert group.name == "TestGroup3"
    assert group.added == {"37de1ae3-408f-4702-8636-20824abda004"}
    assert group.removed == {"632f6bb2-3ec8-4c1f-9073-0027a8c6859"}


def test_large_group_slices_from_the_docs() -> None:
    page1 = sample("group_delta_06_large_group_members_paging_page1.json")["value"][0]["members@delta"]
    page2 = sample("group_delta_07_large_group_members_paging_page2.json")["value"][0]["members@delta"]

    assert members_from_delta(page1) == (
        frozenset({"37de1ae3-408f-4702-8636-20824abda004"}),
        frozenset({"632f6bb2-3ec8-4c1f-9073-0027a8c6859"}),
    )
    assert members_from_delta(page2) == (
        frozenset({"23423fa6-821e-44b2-aae4-d039d33884c2"}),
        frozenset({"c08a463b-7b8a-40a4-aa31-f9bf690b9551"}),
    )


def test_non_user_members_are_ignored() -> None:
    entries = [
        {"@odata.type": "#microsoft.graph.group", "id": "nested"},
        {"@odata.type": "#microsoft.graph.device", "id": "laptop", "@removed": {"reason": "deleted"}},
        {"@odata.type": "#microsoft.graph.user", "id": "person"},
    ]

    assert members_from_delta(entries) == (frozenset({"person"}), frozenset())

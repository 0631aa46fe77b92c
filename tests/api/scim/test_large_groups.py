"""Groups as big as Okta and Entra ID send them: a 1,000-member PUT or PATCH (about 90 KiB) is taken whole."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.models import DirectoryMembership
from tests.api.scim.conftest import Scim

MEMBERS = 1000


def members_of(ids: list[str]) -> list[dict[str, Any]]:
    """Members as Okta writes them: value, display and $ref."""
    return [
        {"value": member, "display": f"Person {n:04}", "$ref": f"https://deskbridge.example/scim/v2/Users/{member}"}
        for n, member in enumerate(ids)
    ]


def stored(factory: sessionmaker[Session], connection_id: int, group_id: str) -> int:
    with factory() as session:
        count = session.scalar(
            select(func.count()).where(
                DirectoryMembership.connection_id == connection_id, DirectoryMembership.group_external_id == group_id
            )
        )
        return count or 0


def test_a_thousand_member_put_and_patch(scim: Scim, api_factory: sessionmaker[Session]) -> None:
    group = scim.post("/Groups", {"displayName": "Everyone"}).json()["id"]
    first, second = [uuid.uuid4().hex for _ in range(MEMBERS)], [uuid.uuid4().hex for _ in range(MEMBERS)]
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"}
    body["members"] = members_of(first)
    assert len(json.dumps(body)) > 64 * 1024  # past the API's ordinary limit

    replaced = scim.put(f"/Groups/{group}", body)

    assert replaced.status_code == 200, replaced.text[:300]
    assert len(replaced.json()["members"]) == MEMBERS
    assert stored(api_factory, scim.connection_id, group) == MEMBERS

    patched = scim.patch(
        f"/Groups/{group}",
        {"op": "remove", "path": "members", "value": [{"value": member} for member in first[:500]]},
        {"op": "add", "path": "members", "value": members_of(second)},
    )

    assert patched.status_code == 200, patched.text[:300]
    assert {item["value"] for item in patched.json()["members"]} == set(first[500:]) | set(second)
    assert stored(api_factory, scim.connection_id, group) == MEMBERS + 500

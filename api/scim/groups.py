"""`/scim/v2/Groups`: groups pushed by an identity provider; members are our User ids.

Each write goes through the sync engine in the request's transaction, so a group the connection
opts in (`team_groups`) is mirrored as a team with its in-scope members. The routes are the generic
resource router's (`resources.py`); this is what is the Groups' own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.scim import resources
from connectors.records import DirectoryPage
from connectors.scim.errors import invalid_value
from connectors.scim.schema import GROUPS
from connectors.scim.translate import group_change, group_deleted, group_record
from store.models import DirectoryGroup
from store.services import directory
from store.services.directory import Lookup

MAX_NAME = 200  # the directory row's column (and a team's name)


class Groups(resources.Resource):
    kind = GROUPS

    def find(self, db: Session, connection_id: int, resource_id: str, *, for_update: bool) -> DirectoryGroup | None:
        return directory.scim_group(db, connection_id, resource_id, for_update=for_update)

    def listing(
        self, db: Session, connection_id: int, lookup: Lookup, *, offset: int, limit: int
    ) -> tuple[list[resources.Row], int]:
        rows, total = directory.scim_groups(db, connection_id, lookup, offset=offset, limit=limit)
        return list(rows), total

    def check(self, db: Session, connection_id: int, document: dict[str, Any], resource_id: str | None) -> None:
        """A displayName within the column."""
        if len(str(document["displayName"])) > MAX_NAME:
            raise invalid_value(f"displayName is longer than {MAX_NAME} characters")

    def page(self, resource_id: str, document: dict[str, Any], before: dict[str, Any] | None) -> DirectoryPage:
        """A whole group (create, PUT: its whole membership), or what a PATCH changed of it."""
        if before is None:
            return DirectoryPage(groups=(group_record(resource_id, document),))
        return DirectoryPage(groups=(group_change(resource_id, before, document),))

    def removal(self, db: Session, connection_id: int, resource_id: str) -> DirectoryPage:
        """Its memberships end; a team it mirrored is no longer kept in step."""
        row = self.found(db, connection_id, resource_id, for_update=True)
        return DirectoryPage(groups=(group_deleted(resource_id, row.document),))


router = resources.router(Groups())

"""`/scim/v2/Users`: people pushed by an identity provider, each write applied by the sync engine at once.

The client's own id stays in `externalId`. A new active user is invited or added, `active: false` or
DELETE offboards (membership removed, future bookings cancelled), a rename updates the member. The
routes are the generic resource router's (`resources.py`); this is what is the Users' own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.scim import resources
from api.scim.common import attributes_of, stamp
from connectors.records import DirectoryPage, RemovedUser
from connectors.scim.errors import ScimError, invalid_value
from connectors.scim.schema import USERS
from connectors.scim.translate import group_change, user_record
from store.models import DirectoryUser
from store.services import directory
from store.services.directory import Lookup

MAX_USERNAME = 320  # the directory row's column


class Users(resources.Resource):
    kind = USERS

    def find(self, db: Session, connection_id: int, resource_id: str, *, for_update: bool) -> DirectoryUser | None:
        return directory.scim_user(db, connection_id, resource_id, for_update=for_update)

    def listing(
        self, db: Session, connection_id: int, lookup: Lookup, *, offset: int, limit: int
    ) -> tuple[list[resources.Row], int]:
        rows, total = directory.scim_users(db, connection_id, lookup, offset=offset, limit=limit)
        return list(rows), total

    def check(self, db: Session, connection_id: int, document: dict[str, Any], resource_id: str | None) -> None:
        """A userName within the column, and not another User's of this connection (409 uniqueness)."""
        username = str(document["userName"])
        if len(username) > MAX_USERNAME:
            raise invalid_value(f"userName is longer than {MAX_USERNAME} characters")
        # Held to the end of the request's transaction: a concurrent create of the same name waits, then sees it.
        directory.hold_username(db, connection_id, username)
        if directory.username_taken(db, connection_id, username, other_than=resource_id):
            raise ScimError(409, f"userName {username!r} is taken", "uniqueness")

    def page(self, resource_id: str, document: dict[str, Any], before: dict[str, Any] | None) -> DirectoryPage:
        return DirectoryPage(users=(user_record(resource_id, document),))

    def removal(self, db: Session, connection_id: int, resource_id: str) -> DirectoryPage:
        """The person leaves: offboarded, and taken out of the groups that listed them."""
        # The groups first, then the person: the order a group PATCH (group, then its members) takes them in.
        groups = directory.lock_scim_groups_of(db, connection_id, resource_id)
        self.found(db, connection_id, resource_id, for_update=True)
        changes = []
        for group in groups:
            before = attributes_of(group)
            kept = [item for item in before.get("members", []) if item.get("value") != resource_id]
            after = {**before, "members": kept}
            if not kept:
                del after["members"]
            changes.append(group_change(group.external_id, before, after))
            directory.keep_document(group, stamp(after, group.document))
        return DirectoryPage(removed=(RemovedUser(resource_id),), groups=tuple(changes))


router = resources.router(Users())

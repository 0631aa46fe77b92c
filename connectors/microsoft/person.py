"""One Entra ID user read alone, with the groups they are a direct member of (`PersonReader`).

`GET /users/{id | userPrincipalName}` reads the user by the id an earlier sync knows them by, or by
their sign-in name; an address that is only a mailbox (`mail` differs from the sign-in name) is found
with `GET /users?$filter=mail eq '…'`. Their groups, when the connection's scope or teams name some,
come from `GET /users/{id}/memberOf/microsoft.graph.group` (direct memberships, as the groups' delta
announces them; the cast leaves out directory roles and administrative units), paged by nextLink.
A 404 is a person the directory does not have.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connectors.microsoft.directory import GROUPS_PERMISSION, USER_FIELDS, USERS_PERMISSION, user_from_graph
from connectors.microsoft.graph import GraphClient, GraphError
from connectors.records import ConnectorError, DirectoryGroup, PersonRecord

USER_SELECT = "$select=" + ",".join(USER_FIELDS)
MEMBER_OF = "users/{id}/memberOf/microsoft.graph.group?$select=id,displayName,mail"


class MicrosoftPerson:
    """Reads one person of a tenant; `groups`: read their groups too (the scope or teams name groups)."""

    def __init__(self, graph: GraphClient, *, groups: bool) -> None:
        self._graph = graph
        self._groups = groups

    def person(self, address: str, known_id: str | None) -> PersonRecord | None:
        """The person, or None when Graph has no such user (deleted, or never there)."""
        item = self._user(quote(known_id, safe="")) if known_id else None
        if item is None:
            item = self._user(quote(address, safe="@"))
        if item is None:
            item = self._by_mail(address)
        if item is None:
            return None
        user = user_from_graph(item)
        if not self._groups:
            return PersonRecord(user)
        return PersonRecord(user, tuple(self._member_of(user.external_id)))

    def _user(self, key: str) -> dict[str, Any] | None:
        try:
            return self._graph.get_json(f"users/{key}?{USER_SELECT}", permission=USERS_PERMISSION)
        except GraphError as error:
            if error.status in (400, 404):  # 400: not a valid id or sign-in name (an address with a '/')
                return None
            raise

    def _by_mail(self, address: str) -> dict[str, Any] | None:
        literal = address.replace("'", "''")  # OData string literals double their quotes
        body = self._graph.get_json(
            f"users?$filter=mail eq '{quote(literal, safe='@')}'&{USER_SELECT}", permission=USERS_PERMISSION
        )
        found = [item for item in body.get("value") or () if isinstance(item, dict) and item.get("id")]
        if len(found) > 1:
            raise ConnectorError(f"{len(found)} Entra ID users have the address {address}; sync the connection")
        return found[0] if found else None

    def _member_of(self, user_id: str) -> list[DirectoryGroup]:
        groups: list[DirectoryGroup] = []
        link: str | None = MEMBER_OF.format(id=quote(user_id, safe=""))
        while link is not None:
            body = self._graph.get_json(link, permission=GROUPS_PERMISSION)
            for item in body.get("value") or ():
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    name = str(item.get("displayName") or "")
                    groups.append(DirectoryGroup(external_id=item["id"], name=name, email=item.get("mail") or None))
            next_link = body.get("@odata.nextLink")
            link = next_link if isinstance(next_link, str) else None
        return groups

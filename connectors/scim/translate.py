"""Kept SCIM documents to the records every directory connector hands the sync engine."""

from __future__ import annotations

from typing import Any

from connectors.records import DirectoryGroup, DirectoryUser


def user_record(user_id: str, document: dict[str, Any]) -> DirectoryUser:
    """The person a User document describes (`user_id` is our SCIM id: the record's external id).

    The address is the primary email, else the work one, else the only one, else the userName
    when it is an address (Entra ID's userPrincipalName often is). `active` defaults to true.
    """
    username = str(document.get("userName", ""))
    return DirectoryUser(
        external_id=user_id,
        username=username,
        email=_email(document.get("emails") or [], username),
        display_name=_display_name(document),
        active=document.get("active", True) is not False,
    )


def _email(emails: list[dict[str, Any]], username: str) -> str | None:
    addresses = [item for item in emails if isinstance(item.get("value"), str)]
    primary = [item for item in addresses if item.get("primary") is True]
    work = [item for item in addresses if str(item.get("type", "")).lower() == "work"]
    for chosen in (primary, work):
        if chosen:
            return str(chosen[0]["value"])
    if len(addresses) == 1:
        return str(addresses[0]["value"])
    return username if "@" in username else None


def _display_name(document: dict[str, Any]) -> str:
    if document.get("displayName"):
        return str(document["displayName"])
    name = document.get("name") or {}
    joined = " ".join(str(name[part]) for part in ("givenName", "familyName") if name.get(part))
    return joined or str(name.get("formatted", ""))


def member_ids(document: dict[str, Any] | None) -> frozenset[str]:
    """Our ids of a Group document's members."""
    members = (document or {}).get("members") or []
    return frozenset(str(item["value"]) for item in members if isinstance(item, dict) and item.get("value"))


def group_record(group_id: str, document: dict[str, Any]) -> DirectoryGroup:
    """A group with its whole membership (POST, PUT)."""
    return DirectoryGroup(external_id=group_id, name=str(document.get("displayName", "")), members=member_ids(document))


def group_change(group_id: str, before: dict[str, Any] | None, after: dict[str, Any]) -> DirectoryGroup:
    """A group with who joined and who left between two documents (PATCH)."""
    old, new = member_ids(before), member_ids(after)
    return DirectoryGroup(
        external_id=group_id, name=str(after.get("displayName", "")), added=new - old, removed=old - new
    )


def group_deleted(group_id: str, document: dict[str, Any] | None) -> DirectoryGroup:
    """A group the client deleted: its memberships end; a team it mirrored is left as it is."""
    return DirectoryGroup(external_id=group_id, name=str((document or {}).get("displayName", "")), deleted=True)

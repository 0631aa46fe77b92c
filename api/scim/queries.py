"""Listing parameters: filters turned into store lookups, paging, and `attributes` projections.

Filters are parsed whole (connectors.scim.filters) but a listing answers only what identity
providers send: `eq` on `id`, `externalId` and `userName` (Users) or `displayName` (Groups), the
membership test `members[value eq "…"]` (Groups), all joined by `and`. Anything else is a 400
invalidFilter that says so, rather than a listing that silently ignores part of the filter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from connectors.scim import filters
from connectors.scim.filters import invalid_filter
from connectors.scim.schema import GROUPS, USERS, ResourceKind
from store.services.directory import Lookup

MAX_RESULTS = 100  # also what ServiceProviderConfig announces as filter.maxResults
ALWAYS_RETURNED = ("schemas", "id")


def lookup(kind: ResourceKind, text: str | None) -> Lookup:
    """The store lookup a filter asks for (no filter: everything)."""
    if text is None or not text.strip():
        return Lookup()
    return _terms(kind, filters.parse(text), Lookup())


def _terms(kind: ResourceKind, node: filters.Filter, found: Lookup) -> Lookup:
    if isinstance(node, filters.And):
        return _terms(kind, node.right, _terms(kind, node.left, found))
    if isinstance(node, filters.ValuePath) and kind is GROUPS and node.path.attr.lower() == "members":
        inner = node.inner
        if isinstance(inner, filters.Compare) and inner.op == "eq" and inner.path.attr.lower() == "value":
            return replace(found, member=str(inner.value))
    if isinstance(node, filters.Compare) and node.op == "eq" and isinstance(node.value, str):
        if node.path.urn is not None and node.path.urn.lower() != kind.core.id.lower():
            raise invalid_filter(f"filters on {node.path.urn} are not supported")
        attr = f"{node.path.attr}.{node.path.sub}" if node.path.sub else node.path.attr
        attr = attr.lower()
        if attr == "id":
            ids = frozenset({node.value}) if found.ids is None else found.ids & {node.value}
            return replace(found, ids=ids)
        if attr == "externalid":
            return replace(found, client_id=node.value)
        if (kind is USERS and attr == "username") or (kind is GROUPS and attr == "displayname"):
            return replace(found, name=node.value)
        if kind is GROUPS and attr == "members.value":
            return replace(found, member=node.value)
    raise invalid_filter(_supported(kind))


def _supported(kind: ResourceKind) -> str:
    if kind is USERS:
        return 'supported filters: id, userName (any case) and externalId with eq, joined by and (userName eq "a@b.c")'
    return (
        'supported filters: id, displayName (any case) and externalId with eq, and members[value eq "…"], joined by and'
    )


@dataclass(frozen=True, slots=True)
class Paging:
    """RFC 7644 §3.4.2.4: 1-based `startIndex`, `count` capped at MAX_RESULTS."""

    start: int
    count: int

    @classmethod
    def of(cls, start_index: int | None, count: int | None) -> Paging:
        """Out-of-range values are read as the RFC says: startIndex below 1 is 1, a negative count is 0."""
        # Clamped where no listing reaches (an offset past bigint is a database error, not an empty page).
        start = min(max(1, start_index or 1), 2**31)
        wanted = MAX_RESULTS if count is None else max(0, count)
        return cls(start, min(wanted, MAX_RESULTS))

    @property
    def offset(self) -> int:
        return self.start - 1


def list_response(resources: list[dict[str, Any]], total: int, paging: Paging) -> dict[str, Any]:
    """A ListResponse message."""
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": paging.start,
        "Resources": resources,
    }


def _split(kind: ResourceKind, text: str) -> tuple[str | None, str | None, str | None]:
    """(extension URN or None, attribute or None for a whole extension, sub-attribute or None)."""
    lowered = text.strip().lower()
    for schema in (kind.core, *kind.extensions):
        urn = schema.id.lower()
        if lowered == urn and schema is not kind.core:
            return schema.id, None, None
        if lowered.startswith(urn + ":"):
            attr, _, sub = lowered[len(urn) + 1 :].partition(".")
            return (None if schema is kind.core else schema.id), attr, sub or None
    attr, _, sub = lowered.partition(".")
    return None, attr, sub or None


def _key(container: dict[str, Any], name: str) -> str | None:
    return next((key for key in container if key.lower() == name), None)


def project(
    kind: ResourceKind, resource: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """The resource cut down to `attributes`, or without `excludedAttributes` (RFC 7644 §3.4.2.5)."""
    if attributes:
        kept: dict[str, Any] = {name: resource[name] for name in ALWAYS_RETURNED if name in resource}
        for text in attributes.split(","):
            _copy(kind, resource, kept, text)
        return kept
    if excluded:
        result = copy.deepcopy(resource)
        for text in excluded.split(","):
            _drop(kind, result, text)
        return result
    return resource


def _copy(kind: ResourceKind, source: dict[str, Any], target: dict[str, Any], text: str) -> None:
    urn, attr, sub = _split(kind, text)
    if urn is not None:
        if urn not in source:
            return
        if attr is None:
            target[urn] = source[urn]
            return
        source, target = source[urn], target.setdefault(urn, {})
    key = _key(source, attr or "")
    if key is None:
        return
    if sub is None or not isinstance(source[key], dict):
        target[key] = source[key]
        return
    sub_key = _key(source[key], sub)
    if sub_key is not None:
        target.setdefault(key, {})[sub_key] = source[key][sub_key]


def _drop(kind: ResourceKind, resource: dict[str, Any], text: str) -> None:
    urn, attr, sub = _split(kind, text)
    container = resource
    if urn is not None:
        if attr is None:
            resource.pop(urn, None)
            return
        container = resource.get(urn) or {}
    key = _key(container, attr or "")
    if key is None or key in ALWAYS_RETURNED:
        return
    if sub is None:
        container.pop(key, None)
    elif isinstance(container[key], dict) and (sub_key := _key(container[key], sub)) is not None:
        container[key].pop(sub_key)

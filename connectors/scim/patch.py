"""PATCH (RFC 7644 §3.5.2) applied to a kept document, with what Entra ID and Okta actually send.

Accepted besides the RFC: `op` in any case (`Add`, `Replace`, `Remove`); booleans as strings (the
normaliser reads them); operations without `path` whose value object names attributes, dotted
paths or whole extensions (`{"op": "replace", "value": {"active": false}}`, Okta's rename with the
group's `id` inside); `remove` of `members` with a value list instead of a filter; `add`/`replace`
through `emails[type eq "work"].value` when no item matches yet (an item is made from the filter).
A `remove` whose filter matches nothing changes nothing, so a replayed removal is harmless.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from connectors.scim import filters
from connectors.scim.documents import EXTERNAL_ID, normalise
from connectors.scim.errors import ScimError, invalid_path, invalid_syntax, invalid_value
from connectors.scim.schema import Attribute, ResourceKind, Schema

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OPS = ("add", "remove", "replace")
_IGNORED_IN_VALUE = frozenset({"id", "meta", "schemas"})  # read-only: ignored in a value object (Okta sends `id`)
_PATH = re.compile(r"(?P<head>[^\[\]]+?)(?:\[(?P<filter>.+)\](?:\.(?P<sub>[\w$]+))?)?")


def no_target(detail: str) -> ScimError:
    """400 noTarget: the path selects nothing where something must be."""
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    """400 mutability: the path names an attribute a client may not change."""
    return ScimError(400, detail, "mutability")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a path points: an attribute of the core schema or an extension, maybe filtered, maybe a sub-attribute."""

    schema: Schema
    attribute: Attribute | None  # None: the whole extension object
    value_filter: filters.Filter | None = None
    sub: Attribute | None = None
    extension: bool = False  # an extension's attributes live in an object under its URN


def apply(kind: ResourceKind, document: dict[str, Any], body: Any) -> dict[str, Any]:
    """The document after the request's operations, normalised; the input is left untouched.

    All or nothing: the first operation that cannot apply raises, and the caller keeps the old document.
    """
    operations = _operations(body)
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations, start=1):
        if not isinstance(operation, dict):
            raise invalid_syntax(f"operation {number} is not a JSON object")
        fields = {str(key).lower(): value for key, value in operation.items()}
        op = str(fields.get("op", "")).strip().lower()
        if op not in OPS:
            raise invalid_syntax(f"operation {number}: op is one of add, remove, replace")
        path, value = fields.get("path"), fields.get("value")
        if path is not None and not isinstance(path, str):
            raise invalid_path(f"operation {number}: path is a string")
        if path and path.strip():
            _apply_at(result, resolve(kind, path.strip()), op, value)
        elif op == "remove":
            raise no_target(f"operation {number}: remove needs a path")
        elif not isinstance(value, dict):
            raise invalid_value(f"operation {number}: without a path, the value is an object of attributes")
        else:
            for key, item in value.items():
                if str(key).lower() not in _IGNORED_IN_VALUE:
                    _apply_at(result, resolve(kind, str(key)), op, item)
    return normalise(kind, result)


def _operations(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise invalid_syntax("a PATCH body is a JSON object")
    operations = next((value for key, value in body.items() if str(key).lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("a PATCH body has a non-empty Operations list")
    return operations


def resolve(kind: ResourceKind, path: str) -> Target:
    """Parse a PATCH path (`name.givenName`, `emails[type eq "work"].value`, `urn:…:User:department`)."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise invalid_path(f"cannot read the path {path!r}")
    head, schema = match["head"].strip(), kind.core
    for candidate in (kind.core, *kind.extensions):
        urn = candidate.id.lower()
        if head.lower() == urn and candidate is not kind.core and match["filter"] is None:
            return Target(candidate, None, extension=True)
        if head.lower().startswith(urn + ":"):
            head, schema = head[len(urn) + 1 :], candidate
            break
    name, _, sub_name = head.partition(".")
    if match["sub"] is not None:
        if sub_name:
            raise invalid_path(f"cannot read the path {path!r}")
        sub_name = match["sub"]
    attribute = _attribute(schema, kind, name, path)
    sub = None
    if sub_name:
        sub = attribute.sub(sub_name)
        if sub is None:
            raise invalid_path(f"{attribute.name} has no sub-attribute {sub_name!r}")
        if sub.mutability in ("readOnly", "immutable"):
            raise mutability(f"{attribute.name}.{sub.name} cannot be changed")
    value_filter = None
    if match["filter"] is not None:
        if not attribute.multi_valued:
            raise invalid_path(f"{attribute.name} is not multi-valued: it takes no filter")
        try:
            value_filter = filters.parse(match["filter"])
        except ScimError as error:
            raise invalid_path(f"the filter in {path!r}: {error.detail}") from None
    return Target(schema, attribute, value_filter, sub, extension=schema is not kind.core)


def _attribute(schema: Schema, kind: ResourceKind, name: str, path: str) -> Attribute:
    if name.lower() in ("id", "meta", "schemas"):
        raise mutability(f"{name} cannot be changed")
    if schema is kind.core and name.lower() == "externalid":
        return EXTERNAL_ID
    attribute = schema.attribute(name)
    if attribute is None:
        raise invalid_path(f"no attribute {name!r} in {schema.name} (path {path!r})")
    if attribute.mutability == "readOnly":
        raise mutability(f"{attribute.name} is read-only")
    return attribute


def _apply_at(document: dict[str, Any], target: Target, op: str, value: Any) -> None:
    container = document
    if target.extension:
        if not isinstance(document.get(target.schema.id), dict):
            document[target.schema.id] = {}
        container = document[target.schema.id]
    if target.attribute is None:  # the whole extension: its attributes one by one
        if op == "remove":
            document.pop(target.schema.id, None)
            return
        if not isinstance(value, dict):
            raise invalid_value(f"{target.schema.id} is a JSON object")
        for key, item in value.items():
            if str(key).lower() in _IGNORED_IN_VALUE:  # scim2-models sends the extension's `schemas` along
                continue
            attribute = target.schema.attribute(str(key))
            if attribute is None:
                raise invalid_path(f"no attribute {key!r} in {target.schema.name}")
            _apply_at(document, Target(target.schema, attribute, extension=True), op, item)
        return
    attribute = target.attribute
    if target.value_filter is not None:
        _apply_filtered(container, attribute, target.value_filter, target.sub, op, value)
    elif target.sub is not None:
        _apply_sub(container, attribute, target.sub, op, value)
    else:
        _apply_whole(container, attribute, op, value)


def _apply_whole(container: dict[str, Any], attribute: Attribute, op: str, value: Any) -> None:
    name = attribute.name
    current = container.get(name)
    if op == "remove":
        if attribute.multi_valued and value is not None and isinstance(current, list):
            # Entra ID and others remove members by listing them: {"path": "members", "value": [{"value": "id"}]}
            gone = {_key(item) for item in (value if isinstance(value, list) else [value])}
            container[name] = [item for item in current if _key(item) not in gone]
        else:
            container.pop(name, None)
        return
    if attribute.multi_valued:
        new = value if isinstance(value, list) else [value]
        if op == "add" and isinstance(current, list):
            known = {_key(item) for item in current}
            new = [*current, *(item for item in new if _key(item) not in known)]
        container[name] = new
    elif attribute.type == "complex" and isinstance(current, dict) and isinstance(value, dict):
        container[name] = {**current, **{_sub_name(attribute, key): item for key, item in value.items()}}
    else:
        container[name] = value


def _apply_sub(container: dict[str, Any], attribute: Attribute, sub: Attribute, op: str, value: Any) -> None:
    current = container.get(attribute.name)
    if attribute.multi_valued:  # `emails.value` without a filter: every item
        items = current if isinstance(current, list) else []
        if not items and op != "remove":
            raise no_target(f"{attribute.name} has no values to set {sub.name} on")
        for item in items:
            _set_or_drop(item, sub.name, op, value)
        return
    item = current if isinstance(current, dict) else {}
    _set_or_drop(item, sub.name, op, value)
    container[attribute.name] = item


def _apply_filtered(
    container: dict[str, Any],
    attribute: Attribute,
    value_filter: filters.Filter,
    sub: Attribute | None,
    op: str,
    value: Any,
) -> None:
    current = container.get(attribute.name)
    items: list[Any] = current if isinstance(current, list) else []
    matched = [item for item in items if isinstance(item, dict) and filters.matches(value_filter, item)]
    if op == "remove":
        if sub is None:
            container[attribute.name] = [item for item in items if not any(item is hit for hit in matched)]
            return
        for item in matched:
            item.pop(sub.name, None)
        return
    if not matched:
        made = filters.equalities(value_filter)
        if made is None:
            raise no_target(f"no value of {attribute.name} matches the filter")
        item = {_sub_name(attribute, key): item for key, item in made.items()}
        items.append(item)
        container[attribute.name] = items
        matched = [item]
    for item in matched:
        if sub is not None:
            item[sub.name] = value
        elif not isinstance(value, dict):
            raise invalid_value(f"a value of {attribute.name} is a JSON object")
        else:
            if op == "replace":
                item.clear()
            item.update({_sub_name(attribute, key): part for key, part in value.items()})


def _set_or_drop(item: Any, name: str, op: str, value: Any) -> None:
    if not isinstance(item, dict):
        return
    if op == "remove":
        item.pop(name, None)
    else:
        item[name] = value


def _sub_name(attribute: Attribute, key: str) -> str:
    sub = attribute.sub(key)
    return sub.name if sub is not None else key


def _key(item: Any) -> Any:
    """What tells two values of a multi-valued attribute apart: `value` when they have one."""
    if isinstance(item, dict):
        found = next((part for name, part in item.items() if str(name).lower() == "value"), None)
        if found is not None:
            return str(found).lower()
        return repr(sorted(item.items()))
    return repr(item)

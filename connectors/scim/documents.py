"""A resource as a client sent it, made regular: known attributes, canonical names, typed values.

What a client writes (POST, PUT, or the result of a PATCH) goes through `normalise` before it is
kept; the kept document is what reads give back. Values keep their spelling (an address keeps its
case) but get their schema's shape: `"False"` becomes false (Entra ID sends booleans as strings), a
lone object for a multi-valued attribute becomes a list of one, a bare id for a complex attribute with
a `value` (Entra ID's `manager`) becomes `{"value": id}`, and null or empty means absent.
"""

from __future__ import annotations

from typing import Any

from connectors.scim.errors import invalid_value
from connectors.scim.schema import Attribute, ResourceKind, Schema

MAX_STRING = 2048  # longer strings are refused: nobody's name or address is that long
EXTERNAL_ID = Attribute("externalId", case_exact=True)  # a common attribute (RFC 7643 §3.1), set by the client


def normalise(kind: ResourceKind, raw: Any) -> dict[str, Any]:
    """The document to keep for `raw`, or 400 invalidValue naming the first value that cannot be read.

    `id`, `meta` and other read-only attributes are ignored, as RFC 7644 §3.5.1 asks; attributes
    no schema of ours defines (a `password`, a custom extension) are dropped.
    """
    if not isinstance(raw, dict):
        raise invalid_value(f"a {kind.name} is a JSON object")
    document: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        lowered = key.lower()
        if lowered == "externalid":
            _put(document, EXTERNAL_ID, value, kind.core.name)
            continue
        if lowered.startswith("urn:"):
            _urn_key(kind, key, value, document, extensions)
            continue
        attribute = kind.core.attribute(key)
        if attribute is not None and attribute.mutability != "readOnly":
            _put(document, attribute, value, kind.core.name)
    for schema in kind.extensions:
        if extensions.get(schema.id):
            document[schema.id] = extensions[schema.id]
    for attribute in kind.core.attributes:
        if attribute.required and not document.get(attribute.name):
            raise invalid_value(f"{attribute.name} is required")
    return {"schemas": [kind.core.id, *(item.id for item in kind.extensions if item.id in document)], **document}


def _urn_key(
    kind: ResourceKind, key: str, value: Any, document: dict[str, Any], extensions: dict[str, dict[str, Any]]
) -> None:
    """A key naming a schema: an extension's object, or `urn:…:attribute` written in full."""
    for schema in (kind.core, *kind.extensions):
        urn = schema.id.lower()
        if key.lower() == urn and schema is not kind.core:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise invalid_value(f"{schema.id} is a JSON object")
            target = extensions.setdefault(schema.id, {})
            for name, item in value.items():
                _put_in(schema, target, name, item)
        elif key.lower().startswith(urn + ":"):
            name = key[len(urn) + 1 :]
            target = document if schema is kind.core else extensions.setdefault(schema.id, {})
            _put_in(schema, target, name, value)


def _put_in(schema: Schema, target: dict[str, Any], name: str, value: Any) -> None:
    attribute = schema.attribute(name) if isinstance(name, str) else None
    if attribute is not None and attribute.mutability != "readOnly":
        _put(target, attribute, value, schema.name)


def _put(target: dict[str, Any], attribute: Attribute, value: Any, where: str) -> None:
    clean = value_of(attribute, value, f"{where}.{attribute.name}")
    if clean is None:
        target.pop(attribute.name, None)
    else:
        target[attribute.name] = clean


def value_of(attribute: Attribute, value: Any, label: str) -> Any:
    """`value` in the attribute's shape, None when it is absent (null, empty)."""
    if value is None:
        return None
    if attribute.multi_valued:
        items = value if isinstance(value, list) else [value]
        clean = [item for item in (_single(attribute, item, label) for item in items) if item is not None]
        return _one_primary(clean) or None
    return _single(attribute, value, label)


def _single(attribute: Attribute, value: Any, label: str) -> Any:
    if value is None:
        return None
    if attribute.type == "complex":
        if isinstance(value, str | int) and not isinstance(value, bool) and attribute.sub("value") is not None:
            # Entra ID sends the enterprise `manager` as the bare id: a value whose object is its `value`.
            value = {"value": value}
        if not isinstance(value, dict):
            raise invalid_value(f"{label} is a JSON object")
        clean: dict[str, Any] = {}
        for name, item in value.items():
            sub = attribute.sub(name) if isinstance(name, str) else None
            if sub is None or sub.mutability == "readOnly":
                continue
            item = _single(sub, item, f"{label}.{sub.name}")
            if item is not None:
                clean[sub.name] = item
        return clean or None
    if attribute.type == "boolean":
        return boolean(value, label)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid_value(f"{label} is a string")
    text = str(value)
    if len(text) > MAX_STRING:
        raise invalid_value(f"{label} is longer than {MAX_STRING} characters")
    return text if text.strip() else None


def boolean(value: Any, label: str) -> bool:
    """A boolean, from `true`/`false` or the strings Entra ID sends (`"True"`, `"False"`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value(f"{label} is true or false")


def _one_primary(items: list[Any]) -> list[Any]:
    """At most one item is primary (RFC 7643 §2.4): the last one marked wins, as a PATCH adding it means."""
    marked = [index for index, item in enumerate(items) if isinstance(item, dict) and item.get("primary") is True]
    for index in marked[:-1]:
        items[index]["primary"] = False
    return items


def find(document: dict[str, Any], name: str) -> Any:
    """A top-level value by attribute name, ignoring case."""
    lowered = name.lower()
    return next((value for key, value in document.items() if key.lower() == lowered), None)

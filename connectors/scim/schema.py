"""The SCIM schemas we serve (RFC 7643 §4, §8.7), as data that also drives reading and patching.

One description of each attribute answers `/Schemas`, tells the normaliser which values are
booleans, lists or objects, and tells PATCH what may be changed; so what we publish is what we do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Attributes every resource has (RFC 7643 §3.1); they are not part of a schema's attribute list.
COMMON = ("id", "externalId", "meta", "schemas")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a schema, with the characteristics RFC 7643 §2.2 defines."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    case_exact: bool = False
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    description: str = ""

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute named `name`, ignoring case (attribute names are case-insensitive)."""
        return _find(self.sub_attributes, name)

    def document(self) -> dict[str, Any]:
        """The attribute as `/Schemas` publishes it."""
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            body["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            body["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            body["subAttributes"] = [item.document() for item in self.sub_attributes]
        return body


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema: its URN, its name and its attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...] = field(default=())

    def attribute(self, name: str) -> Attribute | None:
        """The attribute named `name`, ignoring case."""
        return _find(self.attributes, name)

    def document(self, base_url: str) -> dict[str, Any]:
        """The schema as `/Schemas/{id}` answers it."""
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [item.document() for item in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A resource type: its endpoint, core schema and extensions."""

    name: str
    endpoint: str
    core: Schema
    extensions: tuple[Schema, ...] = ()

    def schema(self, urn: str) -> Schema | None:
        """The core schema or an extension by URN, ignoring case."""
        return next((item for item in (self.core, *self.extensions) if item.id.lower() == urn.lower()), None)

    def document(self, base_url: str) -> dict[str, Any]:
        """The resource type as `/ResourceTypes/{name}` answers it."""
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": f"/{self.endpoint}",
            "description": self.core.description,
            "schema": self.core.id,
            "schemaExtensions": [{"schema": item.id, "required": False} for item in self.extensions],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{self.name}"},
        }


def _find(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    lowered = name.lower()
    return next((item for item in attributes if item.name.lower() == lowered), None)


def _plural(name: str, value_type: str = "string", *, types: tuple[str, ...] = ("work", "home", "other")) -> Attribute:
    """A multi-valued attribute in RFC 7643's usual shape: value, display, type, primary."""
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        sub_attributes=(
            Attribute("value", value_type, reference_types=("external",) if value_type == "reference" else ()),
            Attribute("display"),
            Attribute("type", canonical_values=types),
            Attribute("primary", "boolean"),
        ),
    )


USER_SCHEMA = Schema(
    USER,
    "User",
    "User Account",
    (
        Attribute("userName", required=True, uniqueness="server", description="Unique per connection, any case."),
        Attribute(
            "name",
            "complex",
            sub_attributes=tuple(
                Attribute(item)
                for item in ("formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix")
            ),
        ),
        Attribute("displayName"),
        Attribute("nickName"),
        Attribute("profileUrl", "reference", reference_types=("external",)),
        Attribute("title"),
        Attribute("userType"),
        Attribute("preferredLanguage"),
        Attribute("locale"),
        Attribute("timezone"),
        Attribute("active", "boolean", description="false offboards the person; true (the default) brings them in."),
        _plural("emails"),
        _plural("phoneNumbers", types=("work", "home", "mobile", "fax", "pager", "other")),
        _plural("ims", types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        _plural("photos", "reference", types=("photo", "thumbnail")),
        Attribute(
            "addresses",
            "complex",
            multi_valued=True,
            sub_attributes=(
                *(
                    Attribute(item)
                    for item in ("formatted", "streetAddress", "locality", "region", "postalCode", "country")
                ),
                Attribute("type", canonical_values=("work", "home", "other")),
                Attribute("primary", "boolean"),
            ),
        ),
        Attribute(
            "groups",
            "complex",
            multi_valued=True,
            mutability="readOnly",
            description="Not kept: a user's groups are read from /Groups.",
            sub_attributes=(
                Attribute("value", mutability="readOnly"),
                Attribute("$ref", "reference", mutability="readOnly", reference_types=("Group",)),
                Attribute("display", mutability="readOnly"),
                Attribute("type", mutability="readOnly", canonical_values=("direct", "indirect")),
            ),
        ),
        _plural("entitlements", types=()),
        _plural("roles", types=()),
        _plural("x509Certificates", "binary", types=()),
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise User",
    (
        Attribute("employeeNumber"),
        Attribute("costCenter"),
        Attribute("organization"),
        Attribute("division"),
        Attribute("department"),
        Attribute(
            "manager",
            "complex",
            sub_attributes=(
                Attribute("value"),
                Attribute("$ref", "reference", reference_types=("User",)),
                Attribute("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

GROUP_SCHEMA = Schema(
    GROUP,
    "Group",
    "Group",
    (
        # RFC 7643 leaves it optional; a group becomes a team by its name, so we ask for one.
        Attribute("displayName", required=True),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            sub_attributes=(
                Attribute("value", mutability="immutable"),
                Attribute("$ref", "reference", mutability="immutable", reference_types=("User", "Group")),
                Attribute("type", mutability="immutable", canonical_values=("User", "Group")),
                Attribute("display"),
            ),
        ),
    ),
)

USERS = ResourceKind("User", "Users", USER_SCHEMA, (ENTERPRISE_SCHEMA,))
GROUPS = ResourceKind("Group", "Groups", GROUP_SCHEMA)
RESOURCE_KINDS = (USERS, GROUPS)
SCHEMAS = (USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA)

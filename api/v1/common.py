"""What every `/v1` resource shares: request model bases, id and time types, documented errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from api.errors import PROBLEM_JSON
from store.columns import MAX_BIG_KEY, MAX_KEY
from store.models import Role
from store.services.tokens import Caller

MAX_ID = MAX_KEY  # what a resource's integer key holds
MAX_SEQ = MAX_BIG_KEY  # what an event's sequence number holds

ResourceId = Annotated[int, Field(ge=1, le=MAX_ID)]


def path_id(description: str) -> Any:
    """A positive integer id in the path, within the key column's range (beyond it: 422, never a query)."""
    return Path(ge=1, le=MAX_ID, description=description)


def query_id(description: str) -> Any:
    """A positive integer id in the query string, within the key column's range."""
    return Query(ge=1, le=MAX_ID, description=description)


# What pydantic would read as a Unix time when given as text ("1700000000", "-1").
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


def _iso_text(value: Any) -> Any:
    # pydantic would also take numbers, and numbers as text, as Unix times; the API speaks ISO 8601 only.
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        raise ValueError("Give the time as ISO 8601 text with an offset, such as 2030-01-31T09:00:00+01:00.")
    return value


def _plus_from_query(value: Any) -> Any:
    # An unescaped '+' in a query string arrives as a space: '09:00:00 02:00' meant '09:00:00+02:00'.
    return _iso_text(value.replace(" ", "+") if isinstance(value, str) else value)


def _representable_in_utc(value: datetime) -> datetime:
    # Times are kept in UTC: one whose UTC form falls outside years 1 to 9999 (0001-01-01T00:00:00+14:00)
    # cannot be kept, nor compared with those kept.
    try:
        value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("This time is out of range: in UTC it falls before year 1 or after year 9999.") from error
    return value


Time = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_representable_in_utc)]
QueryTime = Annotated[AwareDatetime, BeforeValidator(_plus_from_query), AfterValidator(_representable_in_utc)]


class RequestBody(BaseModel):
    """A request body: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PatchBody(RequestBody):
    """A partial update: omitted fields stay as they are; null is refused unless `nullable` lists the field."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("This field cannot be null; leave it out to keep the current value.")
        return value


class Resource(BaseModel):
    """A response model read from a store row."""

    model_config = ConfigDict(from_attributes=True)


def _in_utc(value: datetime) -> datetime:
    # A row just written still holds the time as the caller sent it; answers are always in UTC.
    return value.astimezone(UTC)


# Validated into UTC, then written by pydantic's own datetime serializer: for a UTC time it writes exactly
# `store.times.iso`'s form, the one form of times, events' data included (tests/api/v1/test_times.py holds
# them to it), without a call into Python for every time of every row of a page.
Timestamp = Annotated[
    datetime,
    AfterValidator(_in_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),  # not a mere string
    Field(description="ISO 8601 in UTC with `Z`, such as 2030-01-31T08:00:00Z."),
]


def is_admin(caller: Caller) -> bool:
    """Whether the caller is an admin of their organisation."""
    return caller.member.role is Role.ADMIN


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "Identifies the kind of problem."},
        "title": {"type": "string", "description": "A short summary of the kind of problem."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong this time, for a person to read."},
        "instance": {"type": "string", "description": "The path of the request."},
        "errors": {
            "type": "array",
            "description": "The fields at fault, when the input was wrong.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
                "required": ["field", "detail"],
            },
        },
    },
}

# One component that every error answer refers to: inlined in each, client generators would make (and
# refuse, as duplicates) a model per operation and status.
PROBLEM_REF = "#/components/schemas/Problem"


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document with the problem document's schema among its components."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    return schema


_MEANINGS = {
    400: "The body is not valid JSON.",
    401: "No token, or the token is unknown or revoked.",
    403: "The organisation's API is off, the member has no API access, or the action needs more rights.",
    404: "No such resource in the caller's organisation.",
    409: "The change conflicts with the current state (an overlapping booking, a duplicate name…).",
    413: "The body is larger than the server accepts.",
    415: "The body is not JSON.",
    422: "Invalid input: see `errors` for the fields at fault.",
    429: "The daily request limit is reached; see `Retry-After`.",
    502: "A directory or calendar provider refused or failed the request; nothing was changed.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error responses a route may give, as problem+json."""
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}
        for status in statuses
    }

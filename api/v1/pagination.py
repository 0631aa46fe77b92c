"""Keyset pagination with opaque cursors, shared by every `/v1` list route.

A cursor names the listing it came from and holds the sort key of the last row served; the next
page starts strictly after it. Rows added or removed between requests never shift a page, so a
walk through every page sees each row at most once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, BindParameter, ColumnElement, Integer, Select, and_, bindparam, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.errors import ApiError
from store.columns import MAX_BIG_KEY, MAX_KEY, UTCDateTime

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Item = TypeVar("Item")
Row = TypeVar("Row")


class Page(BaseModel, Generic[Item]):
    """One page of a listing, oldest sort key first."""

    data: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page.",
    )
    has_more: bool = Field(description="Whether another page follows this one.")


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts and how long it is, as the caller asked."""

    cursor: str | None
    limit: int


async def page_request(  # no I/O: on the event loop, not a trip to the thread pool
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="The `next_cursor` of the previous page; omit for the first page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items a page holds.")] = DEFAULT_LIMIT,
) -> PageRequest:
    """The `cursor` and `limit` query parameters every list route takes."""
    return PageRequest(cursor, limit)


Paging = Annotated[PageRequest, Depends(page_request)]


@dataclass(frozen=True)
class Keyset:
    """The columns a listing is sorted by; the last one must be unique (the id)."""

    name: str
    columns: tuple[InstrumentedAttribute[Any], ...]


def fetch(db: Session, query: Select[Row], keyset: Keyset, paging: PageRequest) -> tuple[list[Row], str | None]:
    """One page of `query`'s rows in keyset order, and the cursor of the next page (None at the end)."""
    if paging.cursor is not None:
        query = query.where(_after(keyset.columns, _decode(keyset, paging.cursor)))
    return cut(list(db.scalars(query.order_by(*keyset.columns).limit(paging.limit + 1))), keyset, paging)


def keyset_query(query: Select[Row], keyset: Keyset, *, after: bool) -> Select[Row]:
    """`query` in keyset order, `:limit` rows at most, starting after the sort key bound as `:after_0`,
    `:after_1`… when `after`: a statement built once (see `keyset_params`), whatever the page."""
    if after:
        bound: list[BindParameter[Any]] = [bindparam(f"after_{index}") for index in range(len(keyset.columns))]
        query = query.where(_after(keyset.columns, bound))
    return query.order_by(*keyset.columns).limit(bindparam("limit", type_=Integer))


def keyset_params(keyset: Keyset, paging: PageRequest) -> dict[str, Any]:
    """The parameters of `keyset_query` for the page asked for (one row more than the page holds, to tell
    whether another follows); 422 for a cursor that is not this listing's."""
    params: dict[str, Any] = {"limit": paging.limit + 1}
    if paging.cursor is not None:
        params.update({f"after_{index}": value for index, value in enumerate(_decode(keyset, paging.cursor))})
    return params


def cut(rows: list[Row], keyset: Keyset, paging: PageRequest) -> tuple[list[Row], str | None]:
    """The page of `rows` (read with one row more than it holds) and the cursor of the next (None at the end)."""
    if len(rows) <= paging.limit:
        return rows, None
    rows = rows[: paging.limit]
    return rows, _encode(keyset, rows[-1])


def page_of(items: list[Item], next_cursor: str | None) -> Page[Item]:
    """Wrap rendered items and the next cursor into the page shape."""
    return Page[Item](data=items, next_cursor=next_cursor, has_more=next_cursor is not None)


def _after(columns: tuple[InstrumentedAttribute[Any], ...], values: Sequence[Any]) -> ColumnElement[bool]:
    """(a, b, c) > (x, y, z), spelt out so that every backend and column type handles it."""
    first, value = columns[0], values[0]
    later: ColumnElement[bool] = first > value
    if len(columns) == 1:
        return later
    return or_(later, and_(first == value, _after(columns[1:], values[1:])))


def _encode(keyset: Keyset, row: Any) -> str:
    values = [_plain(getattr(row, column.key)) for column in keyset.columns]
    raw = json.dumps({"k": keyset.name, "v": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decode(keyset: Keyset, cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if payload["k"] != keyset.name or len(payload["v"]) != len(keyset.columns):
            raise ValueError("cursor of another listing")
        return [_typed(column, value) for column, value in zip(keyset.columns, payload["v"], strict=True)]
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError) as error:
        raise ApiError(
            422,
            "This cursor is not valid here; use a next_cursor this listing returned.",
            code="invalid_cursor",
            field="cursor",
        ) from error


def _typed(column: InstrumentedAttribute[Any], value: Any) -> Any:
    if isinstance(column.expression.type, UTCDateTime):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive time in cursor")
        parsed.astimezone(UTC)  # OverflowError for a time no row holds: UTC before year 1 or after 9999
        return parsed
    # Within the column's range: a key beyond it is no row's, and the database would refuse to compare.
    largest = MAX_BIG_KEY if isinstance(column.expression.type, BigInteger) else MAX_KEY
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= largest:
        return value
    raise ValueError("unexpected value in cursor")

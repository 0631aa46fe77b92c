"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The largest value an INTEGER key holds on PostgreSQL (int4): ids beyond it name nothing, and asking
# the database about them is an error, so the API refuses them before any query.
MAX_KEY = 2**31 - 1
# The largest value a BigId holds.
MAX_BIG_KEY = 2**63 - 1

# A 64-bit integer for counters and keys that will pass 2**31 (events, deliveries). SQLite's INTEGER
# already holds 64 bits, and only a column declared INTEGER is its autoincrementing row id.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    PostgreSQL keeps `timestamptz`; SQLite has no zone, so values are stored as naive UTC and
    made aware again on the way out. Naive values are refused on the way in: a naive time is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)

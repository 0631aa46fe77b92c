"""SQL helpers the services share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, cast, func, select
from sqlalchemy.orm import Session


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `IN (SELECT unnest(array))`: one parameter instead of one
    per value, so the statement stays short and the same (the driver parses and caches it once).

    Not `= ANY(array)`: on a table that grew since it was last analyzed (a directory's first sync),
    the prepared statement's generic plan then filters every row against the whole array, which
    grows with the square of the rows; a semi-join stays linear without statistics and uses the
    index with them.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column.in_(select(func.unnest(cast(list(values), ARRAY(column.type)))))  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]

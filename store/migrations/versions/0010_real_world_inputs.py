"""Real-world inputs (issue 13): a booking's revision, counted by the database on every change.

ICS feeds give each booking a SEQUENCE that must grow with every change (RFC 5545 §3.8.7.4), or
subscribers keep the old copy. It was the seconds between the booking's creation and its last change,
so two changes in one second were one. `bookings.revision` is bumped by every UPDATE of the row
(the model's onupdate, which bulk updates carry too). Existing bookings start at the seconds they
showed until now, so no subscriber ever sees a booking's SEQUENCE go back.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The seconds between creation and last change: what SEQUENCE said until now.
_CARRY_OVER = {
    "postgresql": "UPDATE bookings SET revision = "
    "CAST(GREATEST(0, FLOOR(EXTRACT(EPOCH FROM (updated_at - created_at)))) AS integer)",
    # Whole seconds apart, never fewer than the old count (julianday's floating point could make 3599 of 3600).
    "sqlite": "UPDATE bookings SET revision = "
    "MAX(0, CAST(strftime('%s', updated_at) AS integer) - CAST(strftime('%s', created_at) AS integer))",
}


def upgrade() -> None:
    # A plain ADD COLUMN on both stores: SQLite's batch mode would copy the table and lose its overlap triggers.
    op.add_column("bookings", sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0")))
    statement = _CARRY_OVER.get(op.get_bind().dialect.name)
    if statement is not None:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP COLUMN revision")  # SQLite 3.35+ and PostgreSQL alike

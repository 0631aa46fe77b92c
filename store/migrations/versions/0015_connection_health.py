"""Connection health as events and absence releasing desks (issue 16, items 4 and 6): the failing state a
connection's last outcome left it in (kept through a sync's claim), why its push channels fail, and the
organisation's switch for releasing desks on whole days out of office.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_STATUS = sa.Enum(
    "active", "syncing", "error", "action_required", "removals_held", name="connectionstatus", native_enum=False, length=16
)


def upgrade() -> None:
    # Not batches: on SQLite a batch copies the table, and dropping the old one cascades to its children
    # (the organisation's members, the connection's calendars), as 0014 found.
    op.add_column("connections", sa.Column("failing", _STATUS, nullable=True))
    op.add_column("connections", sa.Column("channel_error", sa.Text(), nullable=True))
    # Connections failing now are failing already: their next failure is no news, a good sync is.
    op.execute(
        "UPDATE connections SET failing = status WHERE status IN ('error', 'action_required')"
    )
    op.execute("UPDATE connections SET failing = 'error' WHERE status = 'syncing' AND last_error IS NOT NULL")
    op.add_column(
        "organisations", sa.Column("release_on_absence", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("organisations", "release_on_absence")
    op.drop_column("connections", "channel_error")
    op.drop_column("connections", "failing")

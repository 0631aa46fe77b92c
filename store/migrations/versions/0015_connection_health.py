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
    with op.batch_alter_table("connections") as batch_op:
        batch_op.add_column(sa.Column("failing", _STATUS, nullable=True))
        batch_op.add_column(sa.Column("channel_error", sa.Text(), nullable=True))
    # Connections failing now are failing already: their next failure is no news, a good sync is.
    op.execute(
        "UPDATE connections SET failing = status WHERE status IN ('error', 'action_required')"
    )
    op.execute("UPDATE connections SET failing = 'error' WHERE status = 'syncing' AND last_error IS NOT NULL")
    with op.batch_alter_table("organisations") as batch_op:
        batch_op.add_column(sa.Column("release_on_absence", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch_op:
        batch_op.drop_column("release_on_absence")
    with op.batch_alter_table("connections") as batch_op:
        batch_op.drop_column("channel_error")
        batch_op.drop_column("failing")

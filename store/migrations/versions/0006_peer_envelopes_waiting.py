"""Peer deliveries: an index of those still waiting, which the worker drains oldest first per connection.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

WAITING = sa.text("applied_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_peer_envelopes_waiting",
        "peer_envelopes",
        ["connection_id", "envelope_id"],
        unique=False,
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_peer_envelopes_waiting", table_name="peer_envelopes")

"""The organisation's bookings indexed in the order every listing reads them: (start_at, id), the
keyset of `GET /v1/bookings` (issue 17). With start_at alone, a page had to read and sort every booking
sharing its first start time (hundreds at a busy hour) to take fifty.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bookings_org_start_id", "bookings", ["organisation_id", "start_at", "id"])
    op.drop_index("ix_bookings_org_start", table_name="bookings")


def downgrade() -> None:
    op.create_index("ix_bookings_org_start", "bookings", ["organisation_id", "start_at"])
    op.drop_index("ix_bookings_org_start_id", table_name="bookings")

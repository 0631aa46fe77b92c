"""Offboarding that can be undone (issue 16, item 3): what each removal took away, and how long an
organisation keeps it undoable.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "member_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column(
            "status_before",
            sa.Enum("invited", "active", "removed", name="memberstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("api_access", sa.Boolean(), nullable=False),
        sa.Column("teams", JSON, nullable=False),
        sa.Column("token_ids", JSON, nullable=False),
        sa.Column("booking_ids", JSON, nullable=False),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_member_removals_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_removals_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_removals")),
    )
    op.create_index("ix_member_removals_member_removed", "member_removals", ["member_id", "removed_at"])
    op.add_column("organisations", sa.Column("offboarding_undo_days", sa.Integer(), server_default="30", nullable=False))


def downgrade() -> None:
    # Not a batch: on SQLite that copies the table, and dropping the old one cascades to every member.
    op.drop_column("organisations", "offboarding_undo_days")
    op.drop_index("ix_member_removals_member_removed", table_name="member_removals")
    op.drop_table("member_removals")

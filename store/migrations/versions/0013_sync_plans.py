"""Sync plans and held removals (issue 16): stored plans, the removals a connection applied (for its
removal limit over a rolling hour), the held plan on the connection, rejected removals on its users.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sync_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "held", "applied", "rejected", "stale", name="planstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("changes", _JSON, nullable=False),
        sa.Column("counts", _JSON, nullable=False),
        sa.Column("notes", _JSON, nullable=False),
        sa.Column("source", _JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_sync_plans_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_sync_plans_connection_id_connections"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_plans")),
        sa.UniqueConstraint("public_id", name=op.f("uq_sync_plans_public_id")),
    )
    op.create_index("ix_sync_plans_connection_id", "sync_plans", ["connection_id"])
    op.create_table(
        "connection_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_removals_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_removals")),
    )
    op.create_index(
        "ix_connection_removals_connection_id_removed_at", "connection_removals", ["connection_id", "removed_at"]
    )
    with op.batch_alter_table("connections") as batch_op:
        batch_op.add_column(sa.Column("held_plan_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("decide_everyone", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.alter_column(
            "status",
            existing_type=sa.Enum(
                "active", "syncing", "error", "action_required", name="connectionstatus", native_enum=False, length=16
            ),
            type_=sa.Enum(
                "active",
                "syncing",
                "error",
                "action_required",
                "removals_held",
                name="connectionstatus",
                native_enum=False,
                length=16,
            ),
            existing_nullable=False,
        )
    with op.batch_alter_table("directory_users") as batch_op:
        batch_op.add_column(
            sa.Column("removal_rejected", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("directory_users") as batch_op:
        batch_op.drop_column("removal_rejected")
    with op.batch_alter_table("connections") as batch_op:
        batch_op.drop_column("decide_everyone")
        batch_op.drop_column("held_plan_id")
    op.drop_index("ix_connection_removals_connection_id_removed_at", table_name="connection_removals")
    op.drop_table("connection_removals")
    op.drop_index("ix_sync_plans_connection_id", table_name="sync_plans")
    op.drop_table("sync_plans")

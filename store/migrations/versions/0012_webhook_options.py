"""Webhook endpoint options (issue 14): ordered delivery, a rate limit, ed25519 signatures; when a
delivery's next attempt is really due, beside the lease that keeps the sweep off it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(sa.Column("ordered", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("rate_limit_per_second", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "signature",
                sa.Enum("hmac", "ed25519", name="signaturescheme", native_enum=False, length=16),
                nullable=False,
                server_default="hmac",
            )
        )
        batch_op.add_column(sa.Column("public_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("private_key_encrypted", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("due_at")
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("private_key_encrypted")
        batch_op.drop_column("public_key")
        batch_op.drop_column("signature")
        batch_op.drop_column("rate_limit_per_second")
        batch_op.drop_column("ordered")

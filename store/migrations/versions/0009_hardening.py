"""Hardening: event and delivery counters widened to 64 bits; one pending invitation per address.

Deliveries (and their attempts) are numbered across every organisation and pass 2**31 in a busy
year; an organisation's event sequence follows its events. On PostgreSQL those columns become
bigint (with their sequences); SQLite's INTEGER already holds 64 bits, so nothing changes there.

Concurrent invitations of one address each made a pending invitation: a partial unique index now
keeps one pending invitation per organisation and address (older duplicates are revoked first).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (table, column) pairs widened on PostgreSQL; the sequences are those of the serial primary keys.
WIDENED = [
    ("deliveries", "id"),
    ("deliveries", "event_seq"),
    ("delivery_attempts", "id"),
    ("delivery_attempts", "delivery_id"),
    ("outbox_events", "seq"),
    ("organisations", "last_event_seq"),
]
SEQUENCES = ["deliveries_id_seq", "delivery_attempts_id_seq"]
PENDING_INDEX = "uq_invitations_pending_email"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in WIDENED:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)
        for sequence in SEQUENCES:
            op.execute(f"ALTER SEQUENCE {sequence} AS bigint")
    # Keep the newest pending invitation of each address; the others were superseded anyway.
    op.execute(
        "UPDATE invitations SET status = 'revoked', revoked_at = CURRENT_TIMESTAMP "
        "WHERE status = 'pending' AND EXISTS (SELECT 1 FROM invitations AS newer "
        "WHERE newer.organisation_id = invitations.organisation_id AND newer.email = invitations.email "
        "AND newer.status = 'pending' AND newer.id > invitations.id)"
    )
    op.create_index(
        PENDING_INDEX,
        "invitations",
        ["organisation_id", "email"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(PENDING_INDEX, table_name="invitations")
    if op.get_bind().dialect.name == "postgresql":
        for sequence in SEQUENCES:
            op.execute(f"ALTER SEQUENCE {sequence} AS integer")
        for table, column in WIDENED:
            op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)

"""Peer platforms: verified Resource Guru webhook deliveries, kept by envelope id so a replay changes nothing.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('peer_envelopes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('envelope_id', sa.BigInteger(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_peer_envelopes_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_peer_envelopes')),
    sa.UniqueConstraint('connection_id', 'envelope_id', name=op.f('uq_peer_envelopes_connection_id_envelope_id'))
    )
    with op.batch_alter_table('peer_envelopes', schema=None) as batch_op:
        batch_op.create_index('ix_peer_envelopes_subject', ['connection_id', 'subject'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('peer_envelopes', schema=None) as batch_op:
        batch_op.drop_index('ix_peer_envelopes_subject')
    op.drop_table('peer_envelopes')

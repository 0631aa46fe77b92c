"""Directory sync: connections, what their directories last said (users, groups, memberships),
push channels, and each organisation's policy for people a directory brings in.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('microsoft', 'google', 'scim', 'csv', name='connectionkind', native_enum=False, length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('active', 'syncing', 'error', 'action_required', name='connectionstatus', native_enum=False, length=16), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('credentials_encrypted', sa.Text(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('cursor', sa.Text(), nullable=True),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('last_notes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('sync_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sync_lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_connections_organisation_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_connections_token_hash'))
    )
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connections_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('directory_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('seen_round', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_directory_groups_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_directory_groups_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_groups')),
    sa.UniqueConstraint('connection_id', 'external_id', name=op.f('uq_directory_groups_connection_id_external_id'))
    )
    op.create_table('directory_memberships',
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('group_external_id', sa.String(length=255), nullable=False),
    sa.Column('user_external_id', sa.String(length=255), nullable=False),
    sa.Column('seen_round', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_directory_memberships_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'group_external_id', 'user_external_id', name=op.f('pk_directory_memberships'))
    )
    with op.batch_alter_table('directory_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directory_memberships_user_external_id'), ['user_external_id'], unique=False)

    op.create_table('directory_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('username', sa.String(length=320), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('guest', sa.Boolean(), nullable=False),
    sa.Column('org_unit', sa.String(length=500), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('in_scope', sa.Boolean(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('seen_round', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_directory_users_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_directory_users_member_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_users')),
    sa.UniqueConstraint('connection_id', 'external_id', name=op.f('uq_directory_users_connection_id_external_id'))
    )
    with op.batch_alter_table('directory_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directory_users_member_id'), ['member_id'], unique=False)

    op.create_table('push_channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=500), nullable=False),
    sa.Column('resource_id', sa.String(length=255), nullable=True),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_push_channels_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_channels')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_push_channels_provider_id'))
    )
    with op.batch_alter_table('push_channels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_channels_connection_id'), ['connection_id'], unique=False)

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('directory_policy', sa.Enum('invite', 'auto_accept', name='directorypolicy', native_enum=False, length=16), server_default='invite', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('directory_policy')

    with op.batch_alter_table('push_channels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_channels_connection_id'))

    op.drop_table('push_channels')
    with op.batch_alter_table('directory_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_users_member_id'))

    op.drop_table('directory_users')
    with op.batch_alter_table('directory_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_memberships_user_external_id'))

    op.drop_table('directory_memberships')
    op.drop_table('directory_groups')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_connections_organisation_id'))

    op.drop_table('connections')

"""Calendars: the calendars read per person or feed, their events, bookings written into them, ICS
feed secrets, each organisation's calendar settings, and push channels that belong to a calendar.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('status', sa.Enum('active', 'syncing', 'error', 'action_required', name='connectionstatus', native_enum=False, length=16), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=True),
    sa.Column('window_start', sa.Date(), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sync_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sync_lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('last_notes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_calendars_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_calendars_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_calendars_organisation_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendars')),
    sa.UniqueConstraint('connection_id', 'member_id', name=op.f('uq_calendars_connection_id_member_id'))
    )
    with op.batch_alter_table('calendars', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendars_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calendars_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_feeds_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_feeds_organisation_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_feeds_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feeds')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_feeds_secret_hash'))
    )
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feeds_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feeds_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feeds_team_id'), ['team_id'], unique=False)

    op.create_table('calendar_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('provider_event_id', sa.String(length=512), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('written_sequence', sa.Integer(), nullable=False),
    sa.Column('written_hash', sa.String(length=64), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_calendar_entries_booking_id_bookings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['calendar_id'], ['calendars.id'], name=op.f('fk_calendar_entries_calendar_id_calendars'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_entries')),
    sa.UniqueConstraint('booking_id', 'calendar_id', name=op.f('uq_calendar_entries_booking_id_calendar_id'))
    )
    with op.batch_alter_table('calendar_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_entries_calendar_id'), ['calendar_id'], unique=False)

    op.create_table('external_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=512), nullable=False),
    sa.Column('ical_uid', sa.String(length=512), nullable=True),
    sa.Column('recurrence_id', sa.String(length=40), nullable=True),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('all_day', sa.Boolean(), nullable=False),
    sa.Column('show_as', sa.Enum('free', 'tentative', 'busy', 'oof', 'workingElsewhere', 'unknown', name='showas', native_enum=False), nullable=False),
    sa.Column('working_location', sa.Enum('home', 'office', 'custom', name='workinglocation', native_enum=False, length=16), nullable=True),
    sa.Column('working_location_label', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.Column('categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('attendees', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('etag', sa.String(length=200), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('booking_refused', sa.String(length=200), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_external_events_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['calendar_id'], ['calendars.id'], name=op.f('fk_external_events_calendar_id_calendars'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_external_events_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_external_events_organisation_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_events')),
    sa.UniqueConstraint('calendar_id', 'event_id', name=op.f('uq_external_events_calendar_id_event_id'))
    )
    with op.batch_alter_table('external_events', schema=None) as batch_op:
        batch_op.create_index('ix_external_events_member_start', ['member_id', 'start_at'], unique=False)
        batch_op.create_index('ix_external_events_org_start', ['organisation_id', 'start_at'], unique=False)

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_busy_only', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('calendar_window_days', sa.Integer(), server_default='60', nullable=False))
        batch_op.add_column(sa.Column('office_rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='{}', nullable=False))

    with op.batch_alter_table('push_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_push_channels_calendar_id'), ['calendar_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_push_channels_calendar_id_calendars'), 'calendars', ['calendar_id'], ['id'], ondelete='CASCADE')



def downgrade() -> None:
    with op.batch_alter_table('push_channels', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_push_channels_calendar_id_calendars'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_push_channels_calendar_id'))
        batch_op.drop_column('calendar_id')

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('office_rules')
        batch_op.drop_column('calendar_window_days')
        batch_op.drop_column('calendar_busy_only')

    with op.batch_alter_table('external_events', schema=None) as batch_op:
        batch_op.drop_index('ix_external_events_org_start')
        batch_op.drop_index('ix_external_events_member_start')

    op.drop_table('external_events')
    with op.batch_alter_table('calendar_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_entries_calendar_id'))

    op.drop_table('calendar_entries')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feeds_team_id'))
        batch_op.drop_index(batch_op.f('ix_feeds_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_feeds_member_id'))

    op.drop_table('feeds')
    with op.batch_alter_table('calendars', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendars_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_calendars_member_id'))

    op.drop_table('calendars')

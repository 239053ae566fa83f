"""production: replicas and their leases, once-only audit events

Revision ID: 0010
Revises: 0009

- ``replicas``: every running process and when it last beat, so a replica that died has its
  job and grant leases taken over at once (``pimbot.scheduling.replicas``);
- ``grants.lease_owner``: which replica holds a grant's provider lease;
- ``audit_events.once_key`` (unique): an event that may happen once (a grant's revoke, a
  request's end) cannot be recorded twice, by any replica.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

UTC_TIME = pimbot.store.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'replicas',
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('pidspace', sa.String(length=200), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', UTC_TIME, nullable=False),
        sa.Column('seen_at', UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint('owner', name=op.f('pk_replicas')),
    )
    with op.batch_alter_table('replicas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replicas_seen_at'), ['seen_at'], unique=False)
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_grants_lease_owner'), ['lease_owner'],
                              unique=False)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('once_key', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_once_key'), ['once_key'])


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_once_key'), type_='unique')
        batch_op.drop_column('once_key')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_lease_owner'))
        batch_op.drop_column('lease_owner')
    with op.batch_alter_table('replicas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replicas_seen_at'))
    op.drop_table('replicas')

"""inbound deliveries: each Slack request acted on once (replay guard)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_deliveries',
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('seen_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'key', name=op.f('pk_inbound_deliveries'))
    )
    with op.batch_alter_table('inbound_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_deliveries_seen_at'), ['seen_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_deliveries_seen_at'))

    op.drop_table('inbound_deliveries')

"""inbound deliveries: who is acting on each, and when it was finished

Revision ID: 0016
Revises: 0015

- ``inbound_deliveries.owner``: the replica that took the delivery (null once that replica
  is gone: reaped, or stopped);
- ``inbound_deliveries.done_at``: when its work finished (null while in flight). A retry of
  a delivery never finished, whose recorder is gone or whose claim is older than the lease,
  is acted on (once) instead of being taken for a replay. Rows already there were acted on
  by the code before this revision, which recorded only finished-or-not-at-all: they count
  as done.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

UTC_TIME = pimbot.store.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('inbound_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('done_at', UTC_TIME, nullable=True))
    op.execute("UPDATE inbound_deliveries SET done_at = seen_at")


def downgrade() -> None:
    with op.batch_alter_table('inbound_deliveries', schema=None) as batch_op:
        batch_op.drop_column('done_at')
        batch_op.drop_column('owner')

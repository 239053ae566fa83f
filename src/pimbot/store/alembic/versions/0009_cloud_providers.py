"""grants remember when a failing revoke was last announced

Revision ID: 0009
Revises: 0007

A revoke that keeps failing is announced to the role's notify channels at its first failure
and hourly after; ``failure_alerted_at`` is when it last was. Existing rows start with NULL,
so a revoke failing at upgrade time is announced at its next failure.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_alerted_at',
                                      pimbot.store.tables.UtcDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('failure_alerted_at')

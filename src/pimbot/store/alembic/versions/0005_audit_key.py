"""audit events carry a key id and an HMAC of their hash

Revision ID: 0005
Revises: 0004

Events already in the log keep ``key_id`` and ``mac`` NULL: they were written before the
chain was keyed, and the migration has no key to MAC them with (keys are never stored in the
database). They stay verifiable: each later event's MAC vouches for every hash before it, and
the first checkpoint written after the upgrade (``pimbot db upgrade`` and ``pimbot run``
write one) seals the unkeyed prefix with a MAC, recording that events from then on must carry
one (``keyed_from``). See ``pimbot.store.audit_verify``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('mac')
        batch_op.drop_column('key_id')

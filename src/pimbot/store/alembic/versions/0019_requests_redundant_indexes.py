"""requests: drop the indexes on email and on state alone

Revision ID: 0019
Revises: 0018

``ix_requests_email_role_state`` leads with email and ``ix_requests_state_role_requested_at``
with state, so each serves every query the single-column index did (SQLite and PostgreSQL
both seek on a leading column). The two extra indexes only cost writes: every new request
and every change of state updated them.
"""

from __future__ import annotations

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_email')
        batch_op.drop_index('ix_requests_state')


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_state', ['state'], unique=False)
        batch_op.create_index('ix_requests_email', ['email'], unique=False)

"""assignments: one index on (email, role) in place of the one on email

Revision ID: 0018
Revises: 0017

Every Approve click and grant asks whether the requester is still eligible for the role
(``records.eligibility``: ``email = ? AND role = ? AND type = 'eligible'``). With an index on
``email`` and one on ``role``, SQLite's planner (no statistics) chose the one on ``role`` and
read every assignment of the role: ~50 µs at 1,200 eligible people, growing with them. The
index on (email, role) finds the person's assignment of the role directly and serves the
queries by email alone as the old index did.
"""

from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_email_role', ['email', 'role'], unique=False)
        batch_op.drop_index('ix_assignments_email')


def downgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_email', ['email'], unique=False)
        batch_op.drop_index('ix_assignments_email_role')

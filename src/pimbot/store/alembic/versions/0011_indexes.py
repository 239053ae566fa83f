"""indexes for the reads that grow with the data

Revision ID: 0011
Revises: 0010

- ``audit_events``: ``(actor, seq)``, ``(subject, seq)`` (replacing the one-column indexes)
  and ``(detail ->> 'user', seq)``, ``(detail ->> 'role', seq)``, so ``audit PERSON|ROLE``
  reads each way an event names someone newest first and stops at the page's size
  (``pimbot.store.audit_search``);
- ``requests``: ``(state, role, requested_at)``, an approver's ``pending`` queue.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_actor')
        batch_op.drop_index('ix_audit_events_subject')
        batch_op.create_index('ix_audit_events_actor_seq', ['actor', 'seq'], unique=False)
        batch_op.create_index('ix_audit_events_subject_seq', ['subject', 'seq'], unique=False)
        batch_op.create_index('ix_audit_events_detail_user',
                              [sa.text("(detail ->> 'user')"), 'seq'], unique=False)
        batch_op.create_index('ix_audit_events_detail_role',
                              [sa.text("(detail ->> 'role')"), 'seq'], unique=False)
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_state_role_requested_at',
                              ['state', 'role', 'requested_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_state_role_requested_at')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_detail_role')
        batch_op.drop_index('ix_audit_events_detail_user')
        batch_op.drop_index('ix_audit_events_subject_seq')
        batch_op.drop_index('ix_audit_events_actor_seq')
        batch_op.create_index('ix_audit_events_subject', ['subject'], unique=False)
        batch_op.create_index('ix_audit_events_actor', ['actor'], unique=False)

"""approval rules: the rule's word on a request, and how far it has escalated

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rule_note', sa.Text(), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('escalation', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('escalation')
        batch_op.drop_column('rule_note')

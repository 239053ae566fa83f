"""access reviews: campaigns and items; assignments removed by a review

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

UTC_TIME = pimbot.store.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'review_campaigns',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('period_key', sa.String(length=240), nullable=True),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('reviewers', sa.String(length=2000), nullable=False),
        sa.Column('if_no_response', sa.String(length=20), nullable=False),
        sa.Column('recommend_after_s', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=320), nullable=False),
        sa.Column('starts_at', UTC_TIME, nullable=False),
        sa.Column('ends_at', UTC_TIME, nullable=False),
        sa.Column('closed_at', UTC_TIME, nullable=True),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_campaigns')),
        sa.UniqueConstraint('period_key', name=op.f('uq_review_campaigns_period_key')),
    )
    with op.batch_alter_table('review_campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_campaigns_state'), ['state'], unique=False)
    op.create_table(
        'review_items',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('campaign_id', sa.String(length=32), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('assignment_id', sa.String(length=32), nullable=True),
        sa.Column('request_id', sa.String(length=32), nullable=True),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=200), nullable=False),
        sa.Column('assignment_type', sa.String(length=16), nullable=False),
        sa.Column('since', UTC_TIME, nullable=True),
        sa.Column('last_activation_at', UTC_TIME, nullable=True),
        sa.Column('activations_90d', sa.Integer(), nullable=False),
        sa.Column('recommendation', sa.String(length=16), nullable=False),
        sa.Column('recommendation_reason', sa.Text(), nullable=False),
        sa.Column('reviewers', sa.JSON(), nullable=False),
        sa.Column('decision', sa.String(length=16), nullable=True),
        sa.Column('decided_by', sa.String(length=320), nullable=False),
        sa.Column('decided_at', UTC_TIME, nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('applied_at', UTC_TIME, nullable=True),
        sa.Column('created_at', UTC_TIME, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items')),
    )
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_items_campaign_id'), ['campaign_id'],
                              unique=False)
        batch_op.create_index('ix_review_items_open', ['decision', 'campaign_id'], unique=False)
    op.create_table(
        'review_reviewers',
        sa.Column('item_id', sa.String(length=32), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint('item_id', 'email', name=op.f('pk_review_reviewers')),
    )
    with op.batch_alter_table('review_reviewers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_reviewers_email'), ['email'], unique=False)
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_by_review', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('review_hold', sa.Boolean(), server_default='0',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('review_hold')
        batch_op.drop_column('removed_by_review')
    op.drop_table('review_reviewers')
    op.drop_table('review_items')
    op.drop_table('review_campaigns')

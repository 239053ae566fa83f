"""the Teams adapter's tables: teams and channels it can post to, the cards its messages show

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0007'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'teams_conversations',
        sa.Column('conversation_id', sa.String(length=400), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('service_url', sa.String(length=500), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('updated_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_teams_conversations')),
    )
    op.create_table(
        'teams_cards',
        sa.Column('conversation_id', sa.String(length=400), nullable=False),
        sa.Column('activity_id', sa.String(length=200), nullable=False),
        sa.Column('service_url', sa.String(length=500), nullable=False),
        sa.Column('card', sa.JSON(), nullable=False),
        sa.Column('updated_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('conversation_id', 'activity_id', name=op.f('pk_teams_cards')),
    )


def downgrade() -> None:
    op.drop_table('teams_cards')
    op.drop_table('teams_conversations')

"""teams removal: which team a channel belongs to, and places pimbot was removed from

Revision ID: 0015
Revises: 0011

- ``teams_conversations.team_id``: the team a channel was heard in (a team's own row: its
  id), so removing pimbot from a team stops its posts to every channel of that team;
- ``teams_conversations.removed_at``: when pimbot was removed from the team (null while it
  is in it); nothing is posted to a removed place until pimbot is added back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0015'
down_revision = '0011'
branch_labels = None
depends_on = None

UTC_TIME = pimbot.store.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('teams_conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.String(length=400), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('removed_at', UTC_TIME, nullable=True))
        batch_op.create_index(batch_op.f('ix_teams_conversations_team_id'), ['team_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('teams_conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teams_conversations_team_id'))
        batch_op.drop_column('removed_at')
        batch_op.drop_column('team_id')

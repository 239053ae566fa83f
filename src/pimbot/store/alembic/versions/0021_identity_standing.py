"""platform_identities: where the person stood when the platform last vouched for them

Revision ID: 0021
Revises: 0020

A Teams command is admitted on the Bot Connector's member lookup (member, guest, external).
When that lookup cannot be made (the connector down, throttled), what pimbot stored of the
person stands in, and it stood in as a member whatever the person was: a guest let in while
the policy allowed guests stayed in after the policy stopped allowing them. The column keeps
the standing of the last lookup that succeeded. Rows stored before it have none: such a
person is asked to try again while the lookup cannot be made, and the next lookup that
succeeds records it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('platform_identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('standing', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('platform_identities', schema=None) as batch_op:
        batch_op.drop_column('standing')

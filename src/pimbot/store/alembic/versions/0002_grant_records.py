"""grant records; dedupe keys unique among queued jobs only

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:40:00

Every grant made at a provider gets a ``grants`` row (provider, parameters, the activation id
sent, the provider's ref); requests point at the grant they hold (``grant_id``). Requests
that hold access today get a record from what is known: the stored role's provider and grant
parameters, and their ``grant_ref``. A slot with several overlapping activations gets one
record (the one that ends last), which the others share.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import pimbot.store.tables

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_HELD = ('active',)
_ENDED = ('expired', 'deactivated', 'revoked', 'cancelled', 'failed')


def upgrade() -> None:
    op.create_table(
        'grants',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=200), nullable=False),
        sa.Column('provider', sa.String(length=200), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('activation_id', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('ref', sa.Text(), nullable=True),
        sa.Column('starts_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column('created_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column('granted_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column('revoke_due_at', pimbot.store.tables.UtcDateTime(timezone=True),
                  nullable=True),
        sa.Column('revoked_at', pimbot.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column('lease_token', sa.String(length=32), nullable=True),
        sa.Column('lease_until', pimbot.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('failure', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_grants')),
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index('ix_grants_email_role', ['email', 'role'], unique=False)
        batch_op.create_index(batch_op.f('ix_grants_state'), ['state'], unique=False)
        batch_op.create_index(
            'uq_grants_live_slot', ['email', 'role'], unique=True,
            sqlite_where=sa.text("state IN ('granting', 'granted')"),
            postgresql_where=sa.text("state IN ('granting', 'granted')"))

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grant_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_requests_grant_id'), ['grant_id'], unique=False)

    _record_existing_grants()

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('provider_busy_until')
        batch_op.drop_column('grant_ref')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_dedupe_key', type_='unique')
        batch_op.create_index(
            'uq_jobs_queued_dedupe_key', ['dedupe_key'], unique=True,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"))


def _record_existing_grants() -> None:
    bind = op.get_bind()
    requests = sa.table(
        'requests', sa.column('id'), sa.column('email'), sa.column('role'),
        sa.column('state'), sa.column('granted_at', pimbot.store.tables.UtcDateTime()),
        sa.column('expires_at', pimbot.store.tables.UtcDateTime()), sa.column('revoked_at'),
        sa.column('grant_ref'), sa.column('grant_id'), sa.column('ended_at',
                                                                 pimbot.store.tables.UtcDateTime()))
    roles = sa.table('roles', sa.column('name'), sa.column('spec', sa.JSON()))
    grants = sa.table(
        'grants', *(sa.column(c) for c in (
            'id', 'email', 'role', 'provider', 'params', 'activation_id', 'state', 'ref',
            'failures', 'failure', 'version')),
        sa.column('starts_at', pimbot.store.tables.UtcDateTime()),
        sa.column('expires_at', pimbot.store.tables.UtcDateTime()),
        sa.column('created_at', pimbot.store.tables.UtcDateTime()),
        sa.column('granted_at', pimbot.store.tables.UtcDateTime()),
        sa.column('revoke_due_at', pimbot.store.tables.UtcDateTime()))
    specs = {name: spec for name, spec in bind.execute(sa.select(roles.c.name, roles.c.spec))}
    rows = bind.execute(sa.select(requests).where(
        requests.c.granted_at.is_not(None), requests.c.revoked_at.is_(None),
        requests.c.state.in_(_HELD + _ENDED))).mappings().all()
    far = datetime.max.replace(tzinfo=UTC)
    slots: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        slots.setdefault((str(row['email']), str(row['role'])), []).append(dict(row))
    now = datetime.now(UTC)
    for (email, role), held in slots.items():
        spec = specs.get(role) or {}
        live = [r for r in held if r['state'] in _HELD]
        ended = [r for r in held if r['state'] not in _HELD]
        groups = [live] if live else []
        groups += [[r] for r in ended]
        for group in groups:
            keeper = max(group, key=lambda r: r['expires_at'] or far)  # type: ignore[arg-type,return-value]
            grant_id = 'g' + secrets.token_hex(6)
            state = 'granted' if group is live else 'revoking'
            bind.execute(grants.insert().values(
                id=grant_id, email=email, role=role, provider=str(spec.get('provider', '')),
                params=dict(spec.get('grant') or {}), activation_id=keeper['id'], state=state,
                ref=keeper['grant_ref'], starts_at=keeper['granted_at'],
                expires_at=keeper['expires_at'], created_at=now,
                granted_at=keeper['granted_at'],
                revoke_due_at=None if state == 'granted' else keeper['ended_at'] or now,
                failures=0, failure='', version=1))
            bind.execute(requests.update().where(
                requests.c.id.in_([r['id'] for r in group])).values(grant_id=grant_id))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('uq_jobs_queued_dedupe_key')
        batch_op.create_unique_constraint('uq_jobs_dedupe_key', ['dedupe_key'])
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grant_ref', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column(
            'provider_busy_until', pimbot.store.tables.UtcDateTime(timezone=True),
            nullable=True))
        batch_op.drop_index(batch_op.f('ix_requests_grant_id'))
        batch_op.drop_column('grant_id')
    op.drop_table('grants')

"""requests: an approver's comment is no longer kept as the request's decision note

Revision ID: 0020
Revises: 0019

An approval's comment was written both to the vote and to ``requests.decision_note``. That
note is pimbot's own words about how a request ended ("no longer eligible", "assignment
removed"), quoted inside pimbot's sentences: a request approved with a comment and later
cancelled by an admin read "was cancelled by admin@… (<the approver's comment>)". From now
on the comment is the vote's and the audit event's only; this clears the copies already
stored (a note a later change replaced with pimbot's own differs from the comment and stays).
A denial's reason stays: a denied request never changes again, and its reason is shown only
as a field of its own.
"""

from __future__ import annotations

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE requests SET decision_note = '' "
        "WHERE decision_note <> '' AND state <> 'denied' AND EXISTS ("
        "SELECT 1 FROM votes WHERE votes.request_id = requests.id "
        "AND votes.decision = 'approve' AND votes.comment = requests.decision_note)")


def downgrade() -> None:
    pass  # the comments are still on the votes; nothing to put back

"""password history: users.previous_password_hashes

The argon2 hashes of an account's passwords before its current one, newest first, so that a
recent password cannot be set again (identity/password_history.py; Unleash's
PasswordPreviouslyUsedError). A plain ADD COLUMN: no table is rebuilt on SQLite.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "previous_password_hashes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    # SQLite (>= 3.35) drops a column in place.
    op.execute("ALTER TABLE users DROP COLUMN previous_password_hashes")

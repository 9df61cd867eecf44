"""password reset links: users.password_reset_digest (unique), password_reset_expires_at

An administrator's reset link for an account (directory/password_reset.py; Unleash's
POST /api/admin/user-admin/reset-password): only the SHA-256 digest of the link's single-use
secret is kept, with its expiry. Plain ADD COLUMN and CREATE INDEX: no table is rebuilt on
SQLite.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenantry.db.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("password_reset_digest", sa.String(length=64), nullable=True))
    op.add_column(
        "users",
        sa.Column(
            "password_reset_expires_at",
            tenantry.db.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_users_password_reset_digest", "users", ["password_reset_digest"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_users_password_reset_digest", table_name="users")
    # SQLite (>= 3.35) drops a column in place.
    op.execute("ALTER TABLE users DROP COLUMN password_reset_expires_at")
    op.execute("ALTER TABLE users DROP COLUMN password_reset_digest")

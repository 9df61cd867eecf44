"""elevation belongs to the credential: tokens.elevated_until replaces users.elevated_until

A user's elevation ("sudo") was shared by every credential of the user, so a personal token
inherited the elevation of its user's browser session. Elevation is now a property of the
session that re-entered the password. Elevations live at most minutes, so none is carried over.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenantry.db.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite >= 3.35 drops a column in place): no table rebuild, so the
    # triggers of 0005 stay.
    op.add_column(
        "tokens", sa.Column("elevated_until", tenantry.db.base.UTCDateTime(timezone=True))
    )
    op.execute("ALTER TABLE users DROP COLUMN elevated_until")


def downgrade() -> None:
    op.add_column("users", sa.Column("elevated_until", tenantry.db.base.UTCDateTime(timezone=True)))
    op.execute("ALTER TABLE tokens DROP COLUMN elevated_until")

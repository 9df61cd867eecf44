"""realms: configured identity sources (LDAP, Active Directory, OpenID Connect, SAML)

One row per realm (directory/realms.py): its type, name, sign-in order, settings without
secrets, organization bindings with group mappings, and its secrets sealed with
TENANTRY_SECRET_KEY. A new table: nothing is rebuilt.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tenantry.db.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realms",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "organizations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sealed_secrets", sa.String(length=8192), nullable=True),
        sa.Column("created_at", tenantry.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=25), nullable=True),
        sa.Column("updated_at", tenantry.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realms")),
    )


def downgrade() -> None:
    op.drop_table("realms")

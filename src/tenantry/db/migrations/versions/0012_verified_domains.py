"""verified e-mail domains: organization_domains

An organization's claimed e-mail domains (directory/domains.py): the DNS TXT challenge, and once
verified `verified_domain` (unique: one organization per verified domain). A new table only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenantry.db.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization_domains",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("organization_id", sa.String(length=25), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("verified_domain", sa.String(length=253), nullable=True),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("verified_at", tenantry.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tenantry.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=25), nullable=True),
        sa.Column("updated_at", tenantry.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=25), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_domains_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_domains")),
        sa.UniqueConstraint(
            "organization_id", "domain", name=op.f("uq_organization_domains_organization_id_domain")
        ),
        sa.UniqueConstraint(
            "verified_domain", name=op.f("uq_organization_domains_verified_domain")
        ),
    )
    op.create_index(
        op.f("ix_organization_domains_organization_id"),
        "organization_domains",
        ["organization_id"],
    )
    op.create_index(op.f("ix_organization_domains_domain"), "organization_domains", ["domain"])


def downgrade() -> None:
    op.drop_index(op.f("ix_organization_domains_domain"), table_name="organization_domains")
    op.drop_index(
        op.f("ix_organization_domains_organization_id"), table_name="organization_domains"
    )
    op.drop_table("organization_domains")

"""SCIM: organization-scoped SCIM tokens, accounts managed by an organization, group ids

- `tokens.default_role`: a SCIM token's (kind `scim`, no user, its organization in
  `organization_id`) organization role for the users it provisions.
- `users.managed_by_organization_id` (indexed): the organization whose identity provider
  provisioned, and so owns, the account. No foreign key: SQLite adds no named constraint
  without rebuilding `users`; deleting an organization clears it.
- `teams.external_id`: the identity provider's id of a SCIM group.

Plain ADD COLUMN and CREATE INDEX: no table is rebuilt on SQLite.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("default_role", sa.String(length=64), nullable=True))
    op.add_column("teams", sa.Column("external_id", sa.String(length=256), nullable=True))
    op.add_column(
        "users", sa.Column("managed_by_organization_id", sa.String(length=25), nullable=True)
    )
    op.create_index("ix_users_managed_by_organization_id", "users", ["managed_by_organization_id"])


def downgrade() -> None:
    op.drop_index("ix_users_managed_by_organization_id", table_name="users")
    # SQLite (>= 3.35) drops a column in place.
    op.execute("ALTER TABLE users DROP COLUMN managed_by_organization_id")
    op.execute("ALTER TABLE teams DROP COLUMN external_id")
    op.execute("ALTER TABLE tokens DROP COLUMN default_role")

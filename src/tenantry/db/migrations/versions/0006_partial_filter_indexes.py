"""partial indexes for the deployment, dagId and dagTag member filters

The covering indexes behind the deploymentId, dagId and dagTags member filters become partial
(`WHERE <column> IS NOT NULL`): a filter `column = x` can only match bindings that have the
column, and most bindings have no DAG (and many no deployment). At 1M users the three indexes
hold about a third of the rows they did, so every role change writes less and the bulk loader
builds them in a fraction of the time. Plain CREATE/DROP INDEX: no table rebuild on SQLite, so
the holder_counts triggers of 0005 stay as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_role_bindings_deployment": (
        ["deployment_id", "subject_type", "subject_id", "organization_id"],
        "deployment_id",
    ),
    "ix_role_bindings_dag": (
        ["organization_id", "dag_id", "subject_type", "scope_type", "subject_id"],
        "dag_id",
    ),
    "ix_role_bindings_dag_tag": (
        ["organization_id", "dag_tag", "subject_type", "scope_type", "subject_id"],
        "dag_tag",
    ),
}


def _create(name: str, columns: list[str], column: str | None) -> None:
    where = None if column is None else sa.text(f"{column} IS NOT NULL")
    op.create_index(
        name, "role_bindings", columns, unique=False, sqlite_where=where, postgresql_where=where
    )


def upgrade() -> None:
    for name, (columns, column) in INDEXES.items():
        op.drop_index(name, table_name="role_bindings")
        _create(name, columns, column)


def downgrade() -> None:
    for name, (columns, _column) in INDEXES.items():
        op.drop_index(name, table_name="role_bindings")
        _create(name, columns, None)

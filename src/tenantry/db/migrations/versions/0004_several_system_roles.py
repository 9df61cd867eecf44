"""several system roles per subject

A subject may hold several SYSTEM-scope roles (ECE's role combinations, e.g.
ece_platform_viewer + ece_deployment_manager) and still one role per scope everywhere else:
UNIQUE(subject_type, subject_id, scope_key) becomes a partial unique index (WHERE scope_type is
not SYSTEM, on SQLite and PostgreSQL alike) plus UNIQUE(subject_type, subject_id, scope_key,
role).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NOT_SYSTEM = sa.text("scope_type <> 'SYSTEM'")


def upgrade() -> None:
    with op.batch_alter_table("role_bindings", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_role_bindings_subject_type_subject_id_scope_key", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_role_bindings_subject_type_subject_id_scope_key_role",
            ["subject_type", "subject_id", "scope_key", "role"],
        )
    op.create_index(
        "ix_role_bindings_one_role_per_scope",
        "role_bindings",
        ["subject_type", "subject_id", "scope_key"],
        unique=True,
        sqlite_where=NOT_SYSTEM,
        postgresql_where=NOT_SYSTEM,
    )


def downgrade() -> None:
    # One role per scope again: of several SYSTEM roles, the oldest binding stays.
    op.execute(
        "DELETE FROM role_bindings WHERE id NOT IN (SELECT keep FROM (SELECT MIN(id) AS keep "
        "FROM role_bindings GROUP BY subject_type, subject_id, scope_key) AS kept)"
    )
    op.drop_index("ix_role_bindings_one_role_per_scope", table_name="role_bindings")
    with op.batch_alter_table("role_bindings", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_role_bindings_subject_type_subject_id_scope_key_role", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_role_bindings_subject_type_subject_id_scope_key",
            ["subject_type", "subject_id", "scope_key"],
        )

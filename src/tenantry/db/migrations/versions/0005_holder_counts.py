"""holder counts: distinct users per member-list filter value, kept by triggers

`holder_counts` (organization, kind, key) -> holders: how many distinct users hold a role
binding at or inside a workspace, a deployment, a dagId or a dagTag of the organization, i.e.
the exact totalCount of `GET /organizations/{org}/users` with that one filter. Counting them
per request is an index range scan as long as the list (75k users for the biggest workspace
of a 1M-user organization: ~20 ms); reading the count is one primary-key look-up.

The counts are kept by triggers on role_bindings, so every writer keeps them (services, the
cascades from deleted workspaces, deployments and organizations, raw SQL):

* PostgreSQL: statement-level triggers with transition tables. Per statement: create the
  counter rows it may touch, lock them (sorted, FOR UPDATE), then, in a new statement and so a
  new snapshot, count for each (user, key) whether the user held the key before the statement
  and holds it after, excluding/including the changed rows. The row locks serialize every
  writer of one key, and the fresh snapshot taken after the lock sees everything committed by
  whoever held it before, so two writers can never both count the same user in or out.
* SQLite: row-level triggers (one writer at a time, each row change sees the previous one).

A counter row (org, 'paused', '') suspends counting for that organization within the
transaction that holds it (the bulk loader writes the counts itself). Rows of deleted
workspaces and deployments are removed with their last binding.

Also (PostgreSQL): extended statistics on role_bindings (scope_type, dag_tag) and
(scope_type, dag_id). A dagTag or dagId binding is always of scope DAG_TAG or DAG, but the
planner multiplied the two selectivities and expected 1,376 holders of the biggest tag instead
of 17,922 (668 instead of 6,645 for a dagId), so it hashed and sorted every holder for the first
page (100 ms at 1M users) instead of walking users and the covering index in id order (0.6 ms).

NB: a later migration that recreates role_bindings on SQLite (batch_alter_table "move and
copy") drops these triggers with the old table and must create them again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 13:30:00
"""

# ruff: noqa: S608 - the SQL is assembled from this file's own constants, never from input

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TRIGGERS = ("holder_counts_insert", "holder_counts_delete", "holder_counts_update")
STATISTICS = (("st_role_bindings_dag_tag", "dag_tag"), ("st_role_bindings_dag", "dag_id"))

# (kind, the key of a binding row `r` for that kind): the member-list filters
# workspaceId, deploymentId, dagId, dagTags, exactly as directory.members filters them.
_KEYS = (
    ("workspace", "{r}.workspace_id"),
    ("deployment", "{r}.deployment_id"),
    ("dag", "CASE WHEN {r}.scope_type = 'DAG' THEN {r}.dag_id END"),
    ("dag_tag", "CASE WHEN {r}.scope_type = 'DAG_TAG' THEN {r}.dag_tag END"),
)
_KEY_COLUMNS = (
    "subject_type, subject_id, organization_id, scope_type, workspace_id, deployment_id, "
    "dag_id, dag_tag"
)


def _holds(b: str, uid: str, org: str, kind: str, key: str) -> str:
    """Binding `b` is user `uid`'s in `org` and lies in (kind, key)."""
    return (
        f"{b}.subject_type = 'user' AND {b}.subject_id = {uid} AND {b}.organization_id = {org} "
        f"AND CASE {kind} WHEN 'workspace' THEN {b}.workspace_id = {key} "
        f"WHEN 'deployment' THEN {b}.deployment_id = {key} "
        f"WHEN 'dag' THEN {b}.scope_type = 'DAG' AND {b}.dag_id = {key} "
        f"ELSE {b}.scope_type = 'DAG_TAG' AND {b}.dag_tag = {key} END"
    )


def _not_paused(org: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM holder_counts s "
        f"WHERE s.organization_id = {org} AND s.kind = 'paused' AND s.key = '')"
    )


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_pairs(rows: str) -> str:
    """(org, kind, key, uid) for each user binding of transition table `rows`, each key once."""
    values = ", ".join(f"('{kind}', {expr.format(r='r')})" for kind, expr in _KEYS)
    return (
        "SELECT DISTINCT r.organization_id AS org, k.kind, k.key, r.subject_id AS uid "
        f"FROM {rows} r CROSS JOIN LATERAL (VALUES {values}) AS k(kind, key) "
        "WHERE r.subject_type = 'user' AND r.organization_id IS NOT NULL "
        f"AND k.key IS NOT NULL AND {_not_paused('r.organization_id')}"
    )


def _pg_create_rows(rows: str) -> str:
    return (
        "INSERT INTO holder_counts (organization_id, kind, key, holders) "
        f"SELECT DISTINCT p.org, p.kind, p.key, 0 FROM ({_pg_pairs(rows)}) p "
        "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING;"
    )


def _pg_lock_rows(pairs: str) -> str:
    return (
        "PERFORM 1 FROM holder_counts h WHERE (h.organization_id, h.kind, h.key) IN "
        f"(SELECT p.org, p.kind, p.key FROM ({pairs}) p) "
        "ORDER BY h.organization_id, h.kind, h.key FOR UPDATE OF h;"
    )


def _pg_apply(pairs: str, delta: str) -> str:
    """Add up `delta` (per pair p, evaluated now, after the lock) into the existing rows."""
    return (
        "UPDATE holder_counts h SET holders = h.holders + d.delta FROM ("
        f"SELECT p.org, p.kind, p.key, sum({delta}) AS delta FROM ({pairs}) p "
        "JOIN holder_counts c ON c.organization_id = p.org AND c.kind = p.kind AND c.key = p.key "
        "GROUP BY p.org, p.kind, p.key) d "
        "WHERE h.organization_id = d.org AND h.kind = d.kind AND h.key = d.key AND d.delta <> 0;"
    )


def _pg_exists(extra: str = "") -> str:
    return (
        "EXISTS (SELECT 1 FROM role_bindings b WHERE "
        f"{_holds('b', 'p.uid', 'p.org', 'p.kind', 'p.key')}{extra})"
    )


_PG_NOT_NEW = " AND b.id NOT IN (SELECT n.id FROM new_rows n)"


def _pg_function() -> str:
    old_pairs, new_pairs = _pg_pairs("old_rows"), _pg_pairs("new_rows")
    both = f"{old_pairs} UNION {new_pairs}"
    was_in_old = (
        "EXISTS (SELECT 1 FROM old_rows o WHERE "
        f"{_holds('o', 'p.uid', 'p.org', 'p.kind', 'p.key')})"
    )
    gone_scopes = (
        "DELETE FROM holder_counts h USING (SELECT DISTINCT p.org, p.kind, p.key "
        f"FROM ({old_pairs}) p) g "
        "WHERE h.organization_id = g.org AND h.kind = g.kind AND h.key = g.key AND ("
        "(g.kind = 'workspace' AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = g.key)) "
        "OR (g.kind = 'deployment' "
        "AND NOT EXISTS (SELECT 1 FROM deployments x WHERE x.id = g.key)) "
        "OR NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = g.org));"
    )
    key_changed = (
        "EXISTS (SELECT 1 FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n "
        f"WHERE n.id = o.id AND ({_cols('n')}) IS NOT DISTINCT FROM ({_cols('o')})))"
    )
    changed = f"({_pg_exists()})::int - ({_pg_exists(_PG_NOT_NEW)} OR {was_in_old})::int"
    return f"""
CREATE FUNCTION holder_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_create_rows("new_rows")}
        {_pg_lock_rows(new_pairs)}
        {_pg_apply(new_pairs, f"CASE WHEN {_pg_exists(_PG_NOT_NEW)} THEN 0 ELSE 1 END")}
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows r JOIN organizations o ON o.id = r.organization_id
                       WHERE r.subject_type = 'user') THEN
            RETURN NULL;  -- no user binding, or their organization is going: nothing to count
        END IF;
        {_pg_lock_rows(old_pairs)}
        {gone_scopes}
        {_pg_apply(old_pairs, f"CASE WHEN {_pg_exists()} THEN 0 ELSE -1 END")}
    ELSIF {key_changed} THEN
        {_pg_create_rows("new_rows")}
        {_pg_lock_rows(both)}
        {_pg_apply(both, changed)}
    END IF;
    RETURN NULL;
END
$fn$;
"""


def _cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _KEY_COLUMNS.split(","))


def _pg_triggers() -> list[str]:
    run = "FOR EACH STATEMENT EXECUTE FUNCTION holder_counts_follow()"
    return [
        "CREATE TRIGGER holder_counts_insert AFTER INSERT ON role_bindings "
        f"REFERENCING NEW TABLE AS new_rows {run}",
        "CREATE TRIGGER holder_counts_delete AFTER DELETE ON role_bindings "
        f"REFERENCING OLD TABLE AS old_rows {run}",
        "CREATE TRIGGER holder_counts_update AFTER UPDATE ON role_bindings "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {run}",
    ]


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_keys(row: str) -> str:
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, {expr.format(r=row)} AS key" for kind, expr in _KEYS
    )


def _sqlite_add(row: str, extra: str = "") -> str:
    """+1 for each key of `row` that no other binding of its user holds."""
    other = _holds("b", f"{row}.subject_id", f"{row}.organization_id", "p.kind", "p.key")
    return (
        "INSERT INTO holder_counts (organization_id, kind, key, holders) "
        f"SELECT {row}.organization_id, p.kind, p.key, 1 FROM ({_sqlite_keys(row)}) AS p "
        f"WHERE p.key IS NOT NULL{extra} AND NOT EXISTS (SELECT 1 FROM role_bindings b "
        f"WHERE {other} AND b.id <> {row}.id) "
        "ON CONFLICT (organization_id, kind, key) DO UPDATE SET holders = holders + 1;"
    )


def _sqlite_remove(row: str, extra: str = "") -> str:
    """-1 for each key of `row` that no binding of its user holds any more."""
    still = _holds("b", f"{row}.subject_id", f"{row}.organization_id", "p.kind", "p.key")
    return (
        "UPDATE holder_counts SET holders = holders - 1 "
        f"WHERE organization_id = {row}.organization_id{extra} AND (kind, key) IN ("
        f"SELECT p.kind, p.key FROM ({_sqlite_keys(row)}) AS p WHERE p.key IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM role_bindings b WHERE {still}));"
    )


def _sqlite_triggers() -> list[str]:
    user_new = "NEW.subject_type = 'user' AND NEW.organization_id IS NOT NULL"
    user_old = "OLD.subject_type = 'user' AND OLD.organization_id IS NOT NULL"
    old_held = _holds("OLD", "NEW.subject_id", "NEW.organization_id", "p.kind", "p.key")
    gone = (
        "DELETE FROM holder_counts WHERE organization_id = OLD.organization_id AND ("
        "(kind = 'workspace' AND key = OLD.workspace_id "
        "AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = OLD.workspace_id)) OR "
        "(kind = 'deployment' AND key = OLD.deployment_id "
        "AND NOT EXISTS (SELECT 1 FROM deployments x WHERE x.id = OLD.deployment_id)));"
    )
    return [
        "CREATE TRIGGER holder_counts_insert AFTER INSERT ON role_bindings "
        f"WHEN {user_new} AND {_not_paused('NEW.organization_id')} "
        f"BEGIN {_sqlite_add('NEW')} END",
        "CREATE TRIGGER holder_counts_delete AFTER DELETE ON role_bindings "
        f"WHEN {user_old} AND {_not_paused('OLD.organization_id')} "
        f"BEGIN {_sqlite_remove('OLD')} {gone} END",
        f"CREATE TRIGGER holder_counts_update AFTER UPDATE OF {_KEY_COLUMNS} ON role_bindings "
        "BEGIN "
        f"{_sqlite_remove('OLD', f' AND {user_old}')} "
        f"{_sqlite_add('NEW', f' AND {user_new} AND NOT COALESCE({old_held}, 0)')} "
        "END",
    ]


# --- the counts as they are ------------------------------------------------------------------


def _backfill() -> str:
    pairs = " UNION ALL ".join(
        f"SELECT organization_id, '{kind}' AS kind, {expr.format(r='role_bindings')} AS key, "
        "subject_id FROM role_bindings "
        "WHERE subject_type = 'user' AND organization_id IS NOT NULL"
        for kind, expr in _KEYS
    )
    return (
        "INSERT INTO holder_counts (organization_id, kind, key, holders) "
        "SELECT organization_id, kind, key, COUNT(DISTINCT subject_id) "
        f"FROM ({pairs}) AS pairs WHERE key IS NOT NULL GROUP BY organization_id, kind, key"
    )


def upgrade() -> None:
    op.create_table(
        "holder_counts",
        sa.Column("organization_id", sa.String(length=25), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("holders", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_holder_counts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "kind", "key", name=op.f("pk_holder_counts")),
    )
    op.execute(_backfill())
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_function())
        for statement in _pg_triggers():
            op.execute(statement)
        for name, column in STATISTICS:
            op.execute(
                f"CREATE STATISTICS {name} (dependencies) ON scope_type, {column} "
                "FROM role_bindings"
            )
        op.execute("ANALYZE role_bindings")
    else:
        for statement in _sqlite_triggers():
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON role_bindings" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS holder_counts_follow()")
        for name, _ in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    op.drop_table("holder_counts")

"""holder counts without a hot row: writers append deltas, whoever finds the row free folds them

0005 kept each count in one row, updated by the role_bindings triggers under a row lock held
to the end of the writer's transaction. Every role change of an organization touches the
counters of the workspaces its member holds roles in, so the writers of one organization queued
on a handful of rows: under read load (each of a transaction's ~15 statements waiting a turn of
the event loop) a role change held its rows for 60-100 ms, and an organization managed about 16
changes a second with a p99 near one second (bench/mix.py, issue 15).

PostgreSQL, per statement that changes user bindings, now:

1. locks the users it changes (transaction-level advisory locks, in lock-key order, one per
   bucket of users: at most 64 per organization), not the counters: whether a user newly
   holds or no longer holds a key depends only on that user's bindings, so writers of one user
   are serialized, writers of different users rarely;
2. counts, in a new statement and so a new snapshot that sees whatever the previous holder of
   those user locks committed, each (user, key)'s change as before, and appends the sums to
   `holder_count_deltas` (plain INSERTs: nobody waits for them);
3. folds: locks the counter rows of the keys it touched that nobody else holds
   (FOR UPDATE SKIP LOCKED, so never waiting), deletes the deltas it can see of those keys and
   adds them to the rows, all in one statement.

A count is its row's holders plus its deltas (directory.members reads both in one statement,
so a fold, one transaction, is seen entirely or not at all). SQLite, one writer at a time,
keeps updating the rows themselves (0005's row triggers); its delta table stays empty.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:30:00
"""

# ruff: noqa: S608 - the SQL is assembled from this file's own constants, never from input

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

import tenantry.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _v0005() -> ModuleType:
    """0005's SQL builders (the pairs, the existence tests): the rule of what a user holds."""
    path = Path(__file__).with_name("0005_holder_counts.py")
    spec = importlib.util.spec_from_file_location("tenantry_migration_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _live(g: str) -> str:
    """The counted scope (org, kind, key) of `g` still exists."""
    return (
        f"EXISTS (SELECT 1 FROM organizations o WHERE o.id = {g}.org) AND ("
        f"({g}.kind = 'workspace' AND EXISTS (SELECT 1 FROM workspaces w WHERE w.id = {g}.key)) "
        f"OR ({g}.kind = 'deployment' "
        f"AND EXISTS (SELECT 1 FROM deployments x WHERE x.id = {g}.key)) "
        f"OR {g}.kind NOT IN ('workspace', 'deployment'))"
    )


# Users are locked by bucket, USER_BUCKETS per organization: a statement binding 100 000
# users (a bulk grant, a deleted workspace's cascade) takes at most that many locks, where one
# lock per user overflowed PostgreSQL's lock table ("out of shared memory": it holds
# max_locks_per_transaction x max_connections, 6 400 by default). Two writers of different
# users wait for each other only when their users share a bucket.
USER_BUCKETS = 64


def _lock_users(pairs: str) -> str:
    bucket = f"(hashtext(p.uid) & {USER_BUCKETS - 1})::text"
    return (
        "PERFORM pg_advisory_xact_lock(l.k) FROM (SELECT DISTINCT "
        f"hashtextextended('holder_counts/' || p.org || '/' || {bucket}, 0) AS k "
        f"FROM ({pairs}) p ORDER BY 1) l;"
    )


def _append(pairs: str, delta: str) -> str:
    """One delta row per live key whose holders change, `delta` evaluated per pair now."""
    return (
        "INSERT INTO holder_count_deltas (organization_id, kind, key, delta) "
        f"SELECT p.org, p.kind, p.key, sum({delta}) FROM ({pairs}) p WHERE {_live('p')} "
        f"GROUP BY p.org, p.kind, p.key HAVING sum({delta}) <> 0;"
    )


def _fold(pairs: str) -> str:
    """Create the counter rows not there yet, then fold what is visible into the rows nobody
    else holds. Creating never waits either: only when no row is visible (an INSERT meeting a
    row being folded, or one another writer just created, would wait for that writer's
    commit), and only by the writer that gets the key's creation lock (try, not wait); the
    others leave their deltas for a later fold."""
    keys = f"SELECT DISTINCT p.org, p.kind, p.key FROM ({pairs}) p"
    return f"""
        INSERT INTO holder_counts (organization_id, kind, key, holders)
        SELECT k.org, k.kind, k.key, 0 FROM ({keys}) k
        WHERE {_live("k")} AND NOT EXISTS (SELECT 1 FROM holder_counts h
            WHERE h.organization_id = k.org AND h.kind = k.kind AND h.key = k.key)
        AND pg_try_advisory_xact_lock(
            hashtextextended('holder_counts/new/' || k.org || '/' || k.kind || '/' || k.key, 0))
        ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING;
        WITH mine AS (
            SELECT h.organization_id AS org, h.kind, h.key FROM holder_counts h
            WHERE (h.organization_id, h.kind, h.key) IN ({keys})
            ORDER BY 1, 2, 3 FOR UPDATE SKIP LOCKED
        ), folded AS (
            DELETE FROM holder_count_deltas d USING mine m
            WHERE d.organization_id = m.org AND d.kind = m.kind AND d.key = m.key
            RETURNING d.organization_id AS org, d.kind, d.key, d.delta
        )
        UPDATE holder_counts h SET holders = h.holders + s.delta
        FROM (SELECT org, kind, key, sum(delta) AS delta FROM folded GROUP BY 1, 2, 3) s
        WHERE h.organization_id = s.org AND h.kind = s.kind AND h.key = s.key AND s.delta <> 0;
    """


def _gone(pairs: str) -> str:
    """Counters (rows and deltas) of the workspaces, deployments and organization that went."""
    gone = f"(SELECT DISTINCT p.org, p.kind, p.key FROM ({pairs}) p) g WHERE NOT ({_live('g')})"
    return (
        f"DELETE FROM holder_count_deltas d USING {gone} "
        "AND d.organization_id = g.org AND d.kind = g.kind AND d.key = g.key; "
        f"DELETE FROM holder_counts h USING {gone} "
        "AND h.organization_id = g.org AND h.kind = g.kind AND h.key = g.key;"
    )


def _function() -> str:
    v5 = _v0005()
    old_pairs, new_pairs = v5._pg_pairs("old_rows"), v5._pg_pairs("new_rows")
    both = f"{old_pairs} UNION {new_pairs}"
    was_in_old = (
        "EXISTS (SELECT 1 FROM old_rows o WHERE "
        f"{v5._holds('o', 'p.uid', 'p.org', 'p.kind', 'p.key')})"
    )
    not_new = v5._PG_NOT_NEW
    key_changed = (
        "EXISTS (SELECT 1 FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n "
        f"WHERE n.id = o.id AND ({v5._cols('n')}) IS NOT DISTINCT FROM ({v5._cols('o')})))"
    )
    changed = f"({v5._pg_exists()})::int - ({v5._pg_exists(not_new)} OR {was_in_old})::int"
    return f"""
CREATE OR REPLACE FUNCTION holder_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_lock_users(new_pairs)}
        {_append(new_pairs, f"CASE WHEN {v5._pg_exists(not_new)} THEN 0 ELSE 1 END")}
        {_fold(new_pairs)}
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows r JOIN organizations o ON o.id = r.organization_id
                       WHERE r.subject_type = 'user') THEN
            RETURN NULL;  -- no user binding, or their organization is going: nothing to count
        END IF;
        {_lock_users(old_pairs)}
        {_gone(old_pairs)}
        {_append(old_pairs, f"CASE WHEN {v5._pg_exists()} THEN 0 ELSE -1 END")}
        {_fold(old_pairs)}
    ELSIF {key_changed} THEN
        {_lock_users(both)}
        {_append(both, changed)}
        {_fold(both)}
    END IF;
    RETURN NULL;
END
$fn$;
"""


def upgrade() -> None:
    op.create_table(
        "holder_count_deltas",
        sa.Column("id", tenantry.db.base.BigIntPK, autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(length=25), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_holder_count_deltas_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holder_count_deltas")),
    )
    op.create_index(
        "ix_holder_count_deltas_key",
        "holder_count_deltas",
        ["organization_id", "kind", "key"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_v0005()._pg_function().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute(
        "INSERT INTO holder_counts (organization_id, kind, key, holders) "
        "SELECT DISTINCT organization_id, kind, key, 0 FROM holder_count_deltas "
        "WHERE true ON CONFLICT DO NOTHING"
    )
    op.execute(
        "UPDATE holder_counts SET holders = holders + (SELECT COALESCE(sum(d.delta), 0) "
        "FROM holder_count_deltas d WHERE d.organization_id = holder_counts.organization_id "
        "AND d.kind = holder_counts.kind AND d.key = holder_counts.key)"
    )
    op.drop_index("ix_holder_count_deltas_key", table_name="holder_count_deltas")
    op.drop_table("holder_count_deltas")

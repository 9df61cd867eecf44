"""Migrations build the whole schema on an empty database and match the models exactly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.db.base import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_head_matches_models(db_url: str) -> None:
    # db_url fixtures have already run `alembic upgrade head` on a fresh database.
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    from alembic.script import ScriptDirectory

    from tenantry.db.migrate import alembic_config, upgrade

    upgrade(sqlite_url)  # second run: nothing to do, no error
    head = ScriptDirectory.from_config(alembic_config(sqlite_url)).get_current_head()
    assert asyncio.run(_version(sqlite_url)) == head


async def _version(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            return str(result.scalar_one())
    finally:
        await engine.dispose()

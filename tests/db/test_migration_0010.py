"""Migration 0010 (SCIM) goes down and up again on both databases, keeping the rows."""

from __future__ import annotations

import asyncio
import secrets

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.db.migrate import alembic_config, upgrade
from tests.conftest import _admin, _with_database


def _columns(connection: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns(table)}


async def _shape(url: str) -> tuple[set[str], set[str], set[str], int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            users = await conn.run_sync(_columns, "users")
            teams = await conn.run_sync(_columns, "teams")
            tokens = await conn.run_sync(_columns, "tokens")
            count = (await conn.execute(text("SELECT count(*) FROM organizations"))).scalar_one()
            return users, teams, tokens, int(count)
    finally:
        await engine.dispose()


async def _seed(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organizations (id, name, is_scim_enabled, support_plan, status,"
                    " member_count, created_at, updated_at) VALUES ('corg000000000000000000001',"
                    " 'Kept', false, 'BASIC', 'ACTIVE', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        await engine.dispose()


def _down_and_up(url: str) -> None:
    upgrade(url)
    asyncio.run(_seed(url))
    command.downgrade(alembic_config(url), "0009")
    users, teams, tokens, count = asyncio.run(_shape(url))
    assert "managed_by_organization_id" not in users
    assert "external_id" not in teams and "default_role" not in tokens
    assert count == 1
    upgrade(url)
    users, teams, tokens, count = asyncio.run(_shape(url))
    assert "managed_by_organization_id" in users and "external_id" in teams
    assert "default_role" in tokens and count == 1


def test_down_and_up_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _down_and_up(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


def test_down_and_up_on_postgres(pg_server: str) -> None:
    name = f"tenantry_m10_{secrets.token_hex(4)}"
    asyncio.run(_admin(pg_server, f'CREATE DATABASE "{name}"'))
    try:
        _down_and_up(_with_database(pg_server, name))
    finally:
        asyncio.run(_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

"""Test fixtures: every store/API test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TENANTRY_TEST_POSTGRES_URL; each test session creates its own database on
that server (so parallel runs never collide) and drops it at the end. Under CI=true a missing
PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.app import create_app
from tenantry.config import Settings, load_settings
from tenantry.db.base import Base
from tenantry.db.engine import Database
from tenantry.db.migrate import upgrade
from tests.dns import LocalDns, Zone
from tests.factories import World

PG_URL = os.environ.get("TENANTRY_TEST_POSTGRES_URL", "")
# The test process signs in on its own event loop: pinned ("auto" would pin it), every later
# test, and every server a test starts (they inherit it), would run on that one CPU. Tests of
# pinning say what they want explicitly.
os.environ.setdefault("TENANTRY_PIN_EVENT_LOOP", "off")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_available() -> bool:
    if not PG_URL:
        return False

    async def probe() -> bool:
        engine = create_async_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
        finally:
            await engine.dispose()

    return asyncio.run(probe())


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        if IN_CI:
            pytest.fail("CI=true but PostgreSQL at TENANTRY_TEST_POSTGRES_URL is not reachable")
        pytest.skip("PostgreSQL not configured (set TENANTRY_TEST_POSTGRES_URL)")
    return PG_URL


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    name = f"tenantry_test_{secrets.token_hex(4)}"
    asyncio.run(_admin(pg_server, f'CREATE DATABASE "{name}"'))
    url = _with_database(pg_server, name)
    upgrade(url)
    yield url
    asyncio.run(_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'tenantry.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(scope="session")
def local_dns() -> Iterator[LocalDns]:
    """One real DNS server for the session (tests/dns.py); every app's resolver asks it."""
    server = LocalDns().start()
    yield server
    server.stop()


@pytest.fixture
def dns_zone(local_dns: LocalDns) -> Iterator[Zone]:
    """The TXT records this test publishes; none are left for the next test."""
    local_dns.zone.clear()
    yield local_dns.zone
    local_dns.zone.clear()


@pytest.fixture
def settings(db_url: str, local_dns: LocalDns) -> Settings:
    return load_settings(
        database_url=db_url,
        environment="test",
        max_body_bytes=64 * 1024,
        dns_nameservers=f"127.0.0.1:{local_dns.port}",
        dns_timeout_seconds=2.0,
    )


async def _truncate(database: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with database.transaction() as s:
        if database.settings.is_sqlite:
            for table in tables:
                await s.execute(text(f"DELETE FROM {table}"))
        else:
            await s.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    await _truncate(db)
    yield db
    await db.dispose()


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, database)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield c


@pytest.fixture
def world(database: Database) -> World:
    return World(database)

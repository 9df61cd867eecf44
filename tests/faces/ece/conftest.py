"""Shared helpers of the ece face tests."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenantry.app import create_app
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, User
from tenantry.directory import accounts
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import system_principal
from tests.factories import World

V = "/api/v1"
PASSWORD = "violet-staircase-42"


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def apikey(secret: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {secret}"}


async def with_password(
    world: World, username: str, role: str | None = None, **fields: Any
) -> User:
    user = await world.user(username, **fields)
    async with world.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), user.id, PASSWORD)
    if role is not None:
        await world.system_role(user, role)
    return user


@pytest.fixture
async def strict(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an instance with TENANTRY_REQUIRE_ELEVATION=true."""
    strict = load_settings(
        database_url=settings.database_url,
        environment="test",
        max_body_bytes=settings.max_body_bytes,
        require_elevation=True,
    )
    transport = httpx.ASGITransport(app=create_app(strict, database), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as client:
        yield client


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """A new session token (POST /users/auth/_login)."""
    r = await client.post(
        f"{V}/users/auth/_login", json={"username": username, "password": password}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def elevate(client: httpx.AsyncClient, session: str, password: str = PASSWORD) -> str:
    """The elevated session token `_elevate` answers with (the old one stops working)."""
    r = await client.post(
        f"{V}/users/auth/_elevate",
        headers={"Authorization": f"Bearer {session}"},
        json={"token": password},
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def audit(world: World, target_id: str) -> list[AuditEvent]:
    """The audit events about one object, oldest first."""
    async with world.database.transaction() as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.target_id == target_id).order_by(AuditEvent.id)
        )
        return list(rows)

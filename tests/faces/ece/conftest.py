"""Shared helpers of the ece face tests."""

from __future__ import annotations

import base64

from tenantry.db.models import User
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


async def with_password(world: World, username: str, role: str | None = None) -> User:
    user = await world.user(username)
    async with world.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), user.id, PASSWORD)
    if role is not None:
        await world.system_role(user, role)
    return user

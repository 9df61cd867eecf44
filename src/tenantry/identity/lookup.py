"""Finding an account by its login name or id (no permission check: callers did theirs)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import User
from tenantry.errors import NotFound
from tenantry.identity.names import username_key


async def find_by_username(db: AsyncSession, username: str) -> User | None:
    return await db.scalar(select(User).where(User.username_key == username_key(username)))


async def get_by_id(db: AsyncSession, user_id: str) -> User:
    user = await db.scalar(select(User).where(User.id == user_id))
    if user is None:
        raise NotFound("user not found")
    return user

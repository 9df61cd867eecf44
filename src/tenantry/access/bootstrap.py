"""Making the first administrator."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.access.principals import system_principal
from tenantry.access.scopes import SYSTEM_SCOPE
from tenantry.audit.log import record
from tenantry.db.models import RoleBinding, User
from tenantry.directory import users
from tenantry.directory.users import UserFields


async def grant_system_role(db: AsyncSession, user_id: str, role: str) -> None:
    """Give a user a SYSTEM role (idempotent)."""
    existing = await db.scalar(
        select(RoleBinding).where(
            RoleBinding.subject_type == "user",
            RoleBinding.subject_id == user_id,
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
        )
    )
    if existing is None:
        db.add(
            RoleBinding(
                subject_type="user",
                subject_id=user_id,
                role=role,
                scope_type="SYSTEM",
                scope_key=SYSTEM_SCOPE.key,
            )
        )
    else:
        existing.role = role
    await db.flush()


async def remove_system_role(db: AsyncSession, user_id: str) -> None:
    await db.execute(
        delete(RoleBinding).where(
            RoleBinding.subject_type == "user",
            RoleBinding.subject_id == user_id,
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
        )
    )


async def ensure_system_admin(db: AsyncSession, username: str, full_name: str = "") -> User:
    actor = system_principal()
    user = await users.find_by_username(db, username)
    if user is None:
        user = await users.create_user(db, actor, username, UserFields(full_name=full_name))
    await grant_system_role(db, user.id, "SYSTEM_ADMIN")
    await record(
        db,
        actor,
        "user.system_role.grant",
        target_type="user",
        target_id=user.id,
        details={"role": "SYSTEM_ADMIN"},
    )
    return user

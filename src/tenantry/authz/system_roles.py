"""A user's SYSTEM roles as role bindings (no permission check and no audit: the use cases in
tenantry.directory do both)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.db.models import RoleBinding


async def set_system_roles(db: AsyncSession, user_id: str, roles: Iterable[str]) -> None:
    """Make `roles` (distinct, possibly none) exactly the user's SYSTEM roles."""
    wanted = list(dict.fromkeys(roles))
    existing = list(
        await db.scalars(
            select(RoleBinding).where(
                RoleBinding.subject_type == "user",
                RoleBinding.subject_id == user_id,
                RoleBinding.scope_key == SYSTEM_SCOPE.key,
            )
        )
    )
    for binding in existing:
        if binding.role not in wanted:
            await db.delete(binding)
    held = {b.role for b in existing}
    for role in wanted:
        if role not in held:
            db.add(
                RoleBinding(
                    subject_type="user",
                    subject_id=user_id,
                    role=role,
                    scope_type="SYSTEM",
                    scope_key=SYSTEM_SCOPE.key,
                )
            )
    await db.flush()


async def grant_system_role(db: AsyncSession, user_id: str, role: str) -> None:
    """Make `role` the user's one SYSTEM role, replacing any others (idempotent)."""
    await set_system_roles(db, user_id, [role])


async def holds_any(db: AsyncSession, user_id: str) -> bool:
    """Whether the user holds a SYSTEM role (any: viewers too operate the instance)."""
    found = await db.scalar(
        select(RoleBinding.id).where(
            RoleBinding.subject_type == "user",
            RoleBinding.subject_id == user_id,
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
        )
    )
    return found is not None

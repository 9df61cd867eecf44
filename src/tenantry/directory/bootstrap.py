"""Making the first administrator and the built-in users."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.system_roles import grant_system_role
from tenantry.db.models import User
from tenantry.directory import accounts, users
from tenantry.directory.users import UserFields
from tenantry.identity.principals import system_principal

# Read-only accounts every instance has (ECE clients expect them by these names): never
# deleted or renamed, no password until an operator sets one.
BUILTIN_USERS: dict[str, str] = {"admin": "SYSTEM_ADMIN", "readonly": "SYSTEM_VIEWER"}


async def ensure_system_admin(db: AsyncSession, username: str, full_name: str = "") -> User:
    actor = system_principal()
    user = await users.find_by_username(db, username)
    if user is None:
        user = await users.create_user(db, actor, username, UserFields(full_name=full_name))
    await accounts.set_system_roles(db, actor, user.id, ["SYSTEM_ADMIN"])
    return user


async def ensure_builtin_users(db: AsyncSession) -> list[User]:
    """The built-in users `admin` (SYSTEM_ADMIN) and `readonly` (SYSTEM_VIEWER): created once,
    idempotently (by `tenantry bootstrap` and the demo)."""
    actor = system_principal()
    made = []
    for name, role in BUILTIN_USERS.items():
        user = await users.find_by_username(db, name)
        if user is None:
            user = await users.add_user(db, actor, name, users.UserFields(full_name=name))
            user.builtin = True
            await grant_system_role(db, user.id, role)
            await db.flush()
        made.append(user)
    return made

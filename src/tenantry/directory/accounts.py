"""Account security: passwords and system roles."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.catalogue import SYSTEM_ROLES
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.authz.system_roles import grant_system_role, remove_system_role
from tenantry.clock import utcnow
from tenantry.db.models import Token
from tenantry.directory import users
from tenantry.errors import FieldError, Invalid
from tenantry.identity import passwords
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import TokenKind


async def set_password(
    db: AsyncSession,
    hasher: Hasher,
    actor: Principal,
    user_id: str,
    new_password: str,
    current_password: str | None = None,
) -> None:
    """Yourself with your current password, or an administrator (elevated when required).
    Every other session of the user ends: a changed password must lock out whoever had it."""
    own = actor.user is not None and actor.user.id == user_id
    if own:
        assert actor.user is not None
        if actor.user.password_hash is not None and (
            current_password is None
            or not await hasher.verify(actor.user.password_hash, current_password)
        ):
            raise Invalid(
                "the current password is incorrect",
                [FieldError("currentPassword", "invalid", "incorrect")],
            )
    else:
        actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
        actor.require("system.users.update", SYSTEM_SCOPE)
        actor.require_elevation()
    user = await users.get_by_id(db, user_id)
    passwords.validate(new_password, user.username)
    user.password_hash = await hasher.hash(new_password)
    user.updated_at = utcnow()
    user.updated_by = actor.actor_id
    keep = actor.token.id if own and actor.token is not None else ""
    await db.execute(
        update(Token)
        .where(
            Token.user_id == user_id,
            Token.kind == TokenKind.SESSION.value,
            Token.revoked_at.is_(None),
            Token.id != keep,
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await db.flush()
    await record(
        db, actor, "user.password.set", target_type="user", target_id=user_id, details={"self": own}
    )


async def set_system_role(
    db: AsyncSession, actor: Principal, user_id: str, role: str | None
) -> None:
    """Make `role` the user's one SYSTEM role (replacing every SYSTEM role they held, e.g. an
    ECE role combination), or with None remove them all; always a sensitive operation."""
    actor.require("system.users.roles.update", SYSTEM_SCOPE)
    actor.require_elevation()
    if role is not None and role not in SYSTEM_ROLES:
        raise Invalid("unknown system role", [FieldError("role", "invalid", "unknown role")])
    user = await users.get_by_id(db, user_id)
    if actor.user is not None and actor.user.id == user.id:
        raise Invalid("you cannot change your own system role")
    if role is None:
        await remove_system_role(db, user.id)
    else:
        await grant_system_role(db, user.id, role)
    await record(
        db,
        actor,
        "user.system_role.set",
        target_type="user",
        target_id=user.id,
        details={"role": role},
    )

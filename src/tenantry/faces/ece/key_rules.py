"""ECE API keys: Tenantry personal tokens (they act as their user) under ECE's schema. A key's
`user_id` is its user's user name, as ECE identifies users by name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.models import Token, User
from tenantry.directory import users
from tenantry.faces.ece.dialect import EceInvalid, EceNotFound
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import TokenKind, mint, revoke

MAX_EXPIRATION = timedelta(days=3650)
MAX_DESCRIPTION = 256


@dataclass
class ApiKey:
    token: Token
    user_name: str
    secret: str | None = None


def _key_not_found() -> EceNotFound:
    return EceNotFound("api_keys.key_not_found", "API key not found")


def _user_not_found() -> EceNotFound:
    return EceNotFound("api_keys.user_not_found", "user not found")


def _own(actor: Principal) -> User:
    if actor.user is None:
        raise EceInvalid("api_keys.invalid_user", "API keys belong to users")
    return actor.user


async def _keys(
    db: AsyncSession, user_id: str | None = None, key_id: str | None = None
) -> list[ApiKey]:
    """Live personal tokens (optionally of one user, or one key) with their user names."""
    query = (
        select(Token, User.username)
        .join(User, User.id == Token.user_id)
        .where(Token.kind == TokenKind.PERSONAL.value, Token.revoked_at.is_(None))
    )
    if user_id is not None:
        query = query.where(Token.user_id == user_id)
    if key_id is not None:
        query = query.where(Token.id == key_id)
    now = utcnow()
    rows = await db.execute(query.order_by(Token.created_at, Token.id))
    return [
        ApiKey(token, name)
        for token, name in rows
        if token.expires_at is None or token.expires_at > now
    ]


async def create_key(
    db: AsyncSession, actor: Principal, description: str, expiration: timedelta | None
) -> ApiKey:
    user = _own(actor)
    if not description.strip() or len(description) > MAX_DESCRIPTION:
        raise EceInvalid(
            "api_keys.invalid_description",
            f"the description must have 1 to {MAX_DESCRIPTION} characters",
            ["description"],
        )
    if expiration is not None and not timedelta(0) < expiration <= MAX_EXPIRATION:
        raise EceInvalid(
            "api_keys.invalid_expiration", "the expiration must be up to 10 years", ["expiration"]
        )
    minted = await mint(
        db,
        kind=TokenKind.PERSONAL,
        user_id=user.id,
        name=description,
        description=description,
        expires_at=utcnow() + expiration if expiration is not None else None,
        created_by=actor.actor_id,
    )
    await record(
        db,
        actor,
        "token.create",
        target_type="token",
        target_id=minted.token.id,
        details={"kind": "personal", "user": user.id, "face": "ece"},
    )
    return ApiKey(minted.token, user.username, minted.secret)


async def own_keys(db: AsyncSession, actor: Principal) -> list[ApiKey]:
    return await _keys(db, user_id=_own(actor).id)


async def own_key(db: AsyncSession, actor: Principal, key_id: str) -> ApiKey:
    found = await _keys(db, user_id=_own(actor).id, key_id=key_id)
    if not found:
        raise _key_not_found()
    return found[0]


async def _revoke(db: AsyncSession, actor: Principal, keys: list[ApiKey]) -> None:
    for key in keys:
        await revoke(db, key.token.id, by=actor.actor_id)
        await record(db, actor, "token.revoke", target_type="token", target_id=key.token.id)


async def delete_own_keys(db: AsyncSession, actor: Principal, key_ids: list[str]) -> None:
    """All of the listed keys, or (one unknown) none of them."""
    user = _own(actor)
    keys = [k for k in await _keys(db, user_id=user.id) if k.token.id in set(key_ids)]
    if len(keys) != len(set(key_ids)):
        raise _key_not_found()
    await _revoke(db, actor, keys)


async def all_keys(db: AsyncSession, actor: Principal) -> list[ApiKey]:
    actor.require("system.users.tokens.list", SYSTEM_SCOPE)
    return await _keys(db)


async def _user(db: AsyncSession, actor: Principal, user_name: str, permission: str) -> User:
    own = actor.user is not None and actor.user.username_key == users.username_key(user_name)
    if not own:
        if not actor.can("system.users.get", SYSTEM_SCOPE):
            raise _user_not_found()
        actor.require(permission, SYSTEM_SCOPE)
    user = await users.find_by_username(db, user_name)
    if user is None:
        raise _user_not_found()
    return user


async def user_keys(db: AsyncSession, actor: Principal, user_name: str) -> list[ApiKey]:
    user = await _user(db, actor, user_name, "system.users.tokens.list")
    return await _keys(db, user_id=user.id)


async def user_key(db: AsyncSession, actor: Principal, user_name: str, key_id: str) -> ApiKey:
    user = await _user(db, actor, user_name, "system.users.tokens.list")
    found = await _keys(db, user_id=user.id, key_id=key_id)
    if not found:
        raise _key_not_found()
    return found[0]


async def delete_user_keys(
    db: AsyncSession, actor: Principal, user_name: str, key_id: str | None = None
) -> None:
    """One key of the user, or with no key_id all of them."""
    user = await _user(db, actor, user_name, "system.users.tokens.delete")
    keys = await _keys(db, user_id=user.id, key_id=key_id)
    if key_id is not None and not keys:
        raise _key_not_found()
    await _revoke(db, actor, keys)


async def delete_keys_of_users(
    db: AsyncSession, actor: Principal, pairs: list[tuple[str, str]]
) -> None:
    """DELETE /users/auth/keys/_all: (user name, key id) pairs, all or none."""
    actor.require("system.users.tokens.delete", SYSTEM_SCOPE)
    keys = {(users.username_key(k.user_name), k.token.id): k for k in await _keys(db)}
    wanted = []
    for user_name, key_id in pairs:
        key = keys.get((users.username_key(user_name), key_id))
        if key is None:
            raise _key_not_found()
        wanted.append(key)
    await _revoke(db, actor, list({k.token.id: k for k in wanted}.values()))

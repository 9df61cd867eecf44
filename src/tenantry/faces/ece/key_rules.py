"""ECE API keys: Tenantry personal tokens (they act as their user) under ECE's schema. A key's
`user_id` is its user's user name, as ECE identifies users by name.

Every key is minted, listed and revoked by identity.personal_tokens, which decides who may and
caps every expiry (the same cap for every face); ECE's own rules here are only its vocabulary:
a key belongs to a user, a description is not blank, a batch is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import utcnow
from tenantry.db.models import Token, User
from tenantry.directory import users
from tenantry.errors import NotFound
from tenantry.faces.ece.errors import EceInvalid, Part, part
from tenantry.identity import personal_tokens
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import is_live


@dataclass
class ApiKey:
    token: Token
    user_name: str
    secret: str | None = None


def _key_not_found() -> NotFound:
    return NotFound("API key not found")


def _own(actor: Principal) -> User:
    if actor.user is None:
        raise EceInvalid("api_keys.invalid_input", "API keys belong to users")
    return actor.user


def _live(tokens: list[Token]) -> list[Token]:
    """ECE lists the keys that still work: not revoked, not expired."""
    now = utcnow()
    return [t for t in tokens if is_live(t, now)]


def _expiry(expiration: timedelta | None) -> datetime | None:
    """The moment a key made now for `expiration` expires; a duration past the calendar's
    end is its end (which, like any moment past the cap, the domain refuses)."""
    if expiration is None:
        return None
    now = utcnow()
    if expiration >= datetime.max.replace(tzinfo=UTC) - now:
        return datetime.max.replace(tzinfo=UTC)
    return now + expiration


async def create_key(
    db: AsyncSession, actor: Principal, description: str, expiration: timedelta | None
) -> ApiKey:
    user = _own(actor)
    if not description.strip():
        raise EceInvalid(
            "api_keys.invalid_input", "the description must not be blank", ["description"]
        )
    with part("key"):
        minted = await personal_tokens.create_personal_token(
            db,
            actor,
            user.id,
            name=description,
            description=description,
            expires_at=_expiry(expiration),
        )
    return ApiKey(minted.token, user.username, minted.secret)


async def _keys_of(db: AsyncSession, actor: Principal, user: User) -> list[ApiKey]:
    tokens = await personal_tokens.list_personal_tokens(db, actor, user.id)
    return [ApiKey(t, user.username) for t in _live(tokens)]


def _one(keys: list[ApiKey], key_id: str) -> ApiKey:
    with part("key"):
        for key in keys:
            if key.token.id == key_id:
                return key
        raise _key_not_found()


async def own_keys(db: AsyncSession, actor: Principal) -> list[ApiKey]:
    return await _keys_of(db, actor, _own(actor))


async def own_key(db: AsyncSession, actor: Principal, key_id: str) -> ApiKey:
    return _one(await own_keys(db, actor), key_id)


async def delete_own_keys(db: AsyncSession, actor: Principal, key_ids: list[str]) -> None:
    """All of the listed keys, or (one unknown) none of them."""
    keys = await own_keys(db, actor)
    wanted = [_one(keys, key_id) for key_id in dict.fromkeys(key_ids)]
    with part("key"):
        for key in wanted:
            await personal_tokens.revoke_own_token(db, actor, key.token.id)


async def all_keys(db: AsyncSession, actor: Principal) -> list[ApiKey]:
    every = await personal_tokens.list_every_personal_token(db, actor)
    live = {t.id for t in _live([token for token, _ in every])}
    return [ApiKey(token, name) for token, name in every if token.id in live]


async def _owner(db: AsyncSession, actor: Principal, user_name: str, missing: Part) -> User:
    """The user ECE names: yourself, or anyone for whoever may see users (else not found,
    in the words of the `missing` part)."""
    with part(missing):
        user = await users.find_by_username(db, user_name)
        if user is None:
            raise NotFound("user not found")
        return await users.get_user(db, actor, user.id)


async def user_keys(
    db: AsyncSession, actor: Principal, user_name: str, missing: Part = "key_owner"
) -> list[ApiKey]:
    """A user's keys. An unknown user is ECE's `api_keys.user_not_found` where a route names
    only the user; where it names one key of theirs (`missing="key"`), ECE documents only
    `api_keys.key_not_found`: the key of a user who is not there is not there either."""
    owner = await _owner(db, actor, user_name, missing)
    with part(missing):
        return await _keys_of(db, actor, owner)


async def user_key(db: AsyncSession, actor: Principal, user_name: str, key_id: str) -> ApiKey:
    return _one(await user_keys(db, actor, user_name, "key"), key_id)


async def _revoke(db: AsyncSession, actor: Principal, keys: list[ApiKey]) -> None:
    with part("key"):
        for key in keys:
            await personal_tokens.revoke_token(db, actor, key.token.id)


async def delete_user_keys(
    db: AsyncSession, actor: Principal, user_name: str, key_id: str | None = None
) -> None:
    """One key of the user, or with no key_id all of them."""
    keys = await user_keys(db, actor, user_name, "key_owner" if key_id is None else "key")
    await _revoke(db, actor, keys if key_id is None else [_one(keys, key_id)])


async def delete_keys_of_users(
    db: AsyncSession, actor: Principal, pairs: list[tuple[str, str]]
) -> None:
    """DELETE /users/auth/keys/_all: (user name, key id) pairs, all or none."""
    keys = {(users.username_key(k.user_name), k.token.id): k for k in await all_keys(db, actor)}
    wanted: dict[str, ApiKey] = {}
    for user_name, key_id in pairs:
        key = keys.get((users.username_key(user_name), key_id))
        if key is None:
            with part("key"):
                raise _key_not_found()
        wanted[key.token.id] = key
    await _revoke(db, actor, list(wanted.values()))

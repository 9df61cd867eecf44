"""Personal tokens: act as their user. Minted by the CLI, the native face and later faces."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.models import Token, User
from tenantry.errors import Conflict, FieldError, Invalid, NotFound
from tenantry.identity.lookup import get_by_id
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import Minted, TokenKind, expiry_from_days, mint, revoke

MAX_DAYS = 3650


def _is_self(actor: Principal, user_id: str) -> bool:
    return actor.user is not None and actor.user.id == user_id


async def create_personal_token(
    db: AsyncSession,
    actor: Principal,
    user_id: str,
    *,
    name: str,
    expires_in_days: int | None = None,
    expires_at: datetime | None = None,
    description: str = "",
    unique_name: bool = False,
) -> Minted:
    """Anyone may mint for themselves; minting for another user needs system rights. The
    expiry (`expires_in_days`, or a moment `expires_at`) is capped at MAX_DAYS for every face;
    none given: the token does not expire. `unique_name`: refuse a name one of the user's
    tokens that are not revoked already has (expired ones count), for a face whose users tell
    their tokens apart by it (Unleash's PAT descriptions); the directory itself allows it."""
    if not _is_self(actor, user_id):
        actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
        actor.require("system.users.tokens.create", SYSTEM_SCOPE)
        actor.require_elevation()
    expiry = _expiry(expires_in_days, expires_at)
    if len(name) > 256:
        raise Invalid("invalid name", [FieldError("name", "invalid", "at most 256 characters")])
    user = await get_by_id(db, user_id)
    if unique_name and await _name_taken(db, user.id, name):
        raise Conflict(
            "a token with this name exists", [FieldError("name", "conflict", "already taken")]
        )
    minted = await mint(
        db,
        kind=TokenKind.PERSONAL,
        user_id=user.id,
        name=name,
        expires_at=expiry,
        description=description,
        created_by=actor.actor_id,
    )
    await record(
        db,
        actor,
        "token.create",
        target_type="token",
        target_id=minted.token.id,
        details={"kind": "personal", "user": user.id},
    )
    return minted


async def _name_taken(db: AsyncSession, user_id: str, name: str) -> bool:
    taken = await db.scalar(
        select(Token.id)
        .where(
            Token.user_id == user_id,
            Token.kind == TokenKind.PERSONAL.value,
            Token.name == name,
            Token.revoked_at.is_(None),
        )
        .limit(1)
    )
    return taken is not None


def _expiry(days: int | None, moment: datetime | None) -> datetime | None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise Invalid(
            "invalid expiry",
            [FieldError("expiresInDays", "out_of_range", f"between 1 and {MAX_DAYS}")],
        )
    if moment is None:
        return expiry_from_days(days)
    now = utcnow()
    if moment <= now:
        raise Invalid(
            "the expiry must be in the future",
            [FieldError("expiresAt", "past", "must be in the future")],
        )
    if moment > now + timedelta(days=MAX_DAYS):
        raise Invalid(
            f"the expiry must be within {MAX_DAYS} days",
            [FieldError("expiresAt", "out_of_range", f"at most {MAX_DAYS} days from now")],
        )
    return moment


async def list_personal_tokens(db: AsyncSession, actor: Principal, user_id: str) -> list[Token]:
    if not _is_self(actor, user_id):
        actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
        actor.require("system.users.tokens.list", SYSTEM_SCOPE)
    rows = await db.scalars(
        select(Token)
        .where(Token.user_id == user_id, Token.kind == TokenKind.PERSONAL.value)
        .order_by(Token.created_at, Token.id)
    )
    return list(rows)


async def list_every_personal_token(db: AsyncSession, actor: Principal) -> list[tuple[Token, str]]:
    """Every user's personal tokens (oldest first) with their user's username, for whoever
    may list other users' tokens."""
    actor.require("system.users.tokens.list", SYSTEM_SCOPE)
    rows = await db.execute(
        select(Token, User.username)
        .join(User, User.id == Token.user_id)
        .where(Token.kind == TokenKind.PERSONAL.value)
        .order_by(Token.created_at, Token.id)
    )
    return [(token, str(username)) for token, username in rows]


async def revoke_token(db: AsyncSession, actor: Principal, token_id: str) -> Token:
    """Revoke a token: your own, or anyone's with `system.users.tokens.delete`. A caller who
    may list other users' personal tokens (`system.users.tokens.list`) but not revoke them is
    refused (403) for one of those; to anyone else a token they may not revoke does not exist
    (404)."""
    token = await db.get(Token, token_id)
    if token is None:
        raise NotFound("token not found")
    if token.user_id is None or not _is_self(actor, token.user_id):
        listed = token.kind == TokenKind.PERSONAL.value and actor.can(
            "system.users.tokens.list", SYSTEM_SCOPE
        )
        if not listed:
            actor.require_visible("system.users.tokens.delete", SYSTEM_SCOPE, "token")
        actor.require("system.users.tokens.delete", SYSTEM_SCOPE)
    revoked = await revoke(db, token_id, by=actor.actor_id)
    await record(db, actor, "token.revoke", target_type="token", target_id=token_id)
    return revoked


async def revoke_own_token(db: AsyncSession, actor: Principal, token_id: str) -> Token:
    """Revoke one of your own personal tokens; anyone else's is "not found"."""
    token = await db.get(Token, token_id)
    own = actor.user is not None and token is not None and token.user_id == actor.user.id
    if token is None or not own or token.kind != TokenKind.PERSONAL.value:
        raise NotFound("token not found")
    revoked = await revoke(db, token_id, by=actor.actor_id)
    await record(db, actor, "token.revoke", target_type="token", target_id=token_id)
    return revoked

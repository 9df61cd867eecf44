"""Opaque bearer tokens: `tnt_` + 256 random bits, stored and looked up only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import utcnow
from tenantry.db.engine import UNTRACKED, wrote_for_user
from tenantry.db.models import Token
from tenantry.db.models import TokenKind as TokenKind  # re-exported: callers name it here
from tenantry.errors import NotFound
from tenantry.ids import new_id

PREFIX = "tnt_"
# Longest secret we will hash; anything longer is refused before hashing.
MAX_SECRET_LENGTH = 256


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Minted:
    token: Token
    secret: str  # shown once, never stored


async def mint(
    db: AsyncSession,
    *,
    kind: TokenKind,
    user_id: str | None,
    name: str = "",
    description: str = "",
    expires_at: datetime | None = None,
    max_expires_at: datetime | None = None,
    organization_id: str | None = None,
    created_by: str | None = None,
    flush: bool = True,
) -> Minted:
    """A new token and its secret (shown once; only its digest is stored). `flush=False`
    leaves the INSERT to the transaction's next flush."""
    secret = new_secret()
    token = Token(
        **_columns(
            secret, kind, user_id, name, description, expires_at, max_expires_at, created_by
        ),
        organization_id=organization_id,
    )
    db.add(token)
    if flush:
        await db.flush()
    return Minted(token, secret)


INSERT = insert(cast(Table, Token.__table__))


def new_session(
    user_id: str, now: datetime, expires_at: datetime, max_expires_at: datetime
) -> tuple[dict[str, Any], str]:
    """A session token's row (every column of SESSION_COLUMNS) and its secret, for a caller
    that writes the row itself with INSERT (sign-in: together with its other rows)."""
    secret = new_secret()
    values = _columns(
        secret, TokenKind.SESSION, user_id, "session", "", expires_at, max_expires_at, user_id
    )
    return values | {"created_at": now, "updated_at": now}, secret


SESSION_COLUMNS = (
    "id",
    "kind",
    "digest",
    "short_token",
    "user_id",
    "name",
    "description",
    "expires_at",
    "max_expires_at",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
)


async def mint_session(
    db: AsyncSession, user_id: str, now: datetime, expires_at: datetime, max_expires_at: datetime
) -> Minted:
    """A session token, written at once by one INSERT without the unit of work (see
    access/sessions.py). The Token returned is a detached copy, for reading."""
    if db.new or db.dirty or db.deleted:
        await db.flush()  # the token's user may be among them (accepting an invite)
    values, secret = new_session(user_id, now, expires_at, max_expires_at)
    await db.execute(INSERT, values, execution_options={UNTRACKED: True})
    wrote_for_user(db, user_id)  # as the ORM would have: a token concerns its user alone
    return Minted(Token(**values), secret)


def _columns(
    secret: str,
    kind: TokenKind,
    user_id: str | None,
    name: str,
    description: str,
    expires_at: datetime | None,
    max_expires_at: datetime | None,
    created_by: str | None,
) -> dict[str, Any]:
    return {
        "id": new_id(),  # now, not at flush: callers name the token before it is written
        "kind": kind.value,
        "digest": digest(secret),
        "short_token": secret[len(PREFIX) : len(PREFIX) + 8],
        "user_id": user_id,
        "name": name,
        "description": description,
        "expires_at": expires_at,
        "max_expires_at": max_expires_at,
        "created_by": created_by,
        "updated_by": created_by,
    }


def expiry_from_days(days: int | None) -> datetime | None:
    return None if days is None else utcnow() + timedelta(days=days)


# A system API token's `scope_type`: an API token of no user and no organization, whose one
# role is a SYSTEM role (directory/system_api_tokens.py).
SYSTEM_SCOPE_TYPE = "SYSTEM"


def is_system_api_token(token: Token) -> bool:
    return (
        token.kind == TokenKind.API.value
        and token.user_id is None
        and token.organization_id is None
        and token.scope_type == SYSTEM_SCOPE_TYPE
    )


def is_live(token: Token, now: datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


async def revoke(db: AsyncSession, token_id: str, *, by: str | None) -> Token:
    token = await db.get(Token, token_id)
    if token is None:
        raise NotFound("token not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        token.updated_at = token.revoked_at
        token.updated_by = by
        await db.flush()
    return token


# A token's last use is recorded at most this often, so that reads stay reads.
TOUCH_INTERVAL = timedelta(seconds=60)


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a token last used then is due to have its use recorded."""
    return last_used_at is None or now - last_used_at >= TOUCH_INTERVAL

"""Unleash personal access tokens: Tenantry personal tokens of the caller. Unleash numbers
PATs; a Tenantry token id is a string, so the number shown is a stable 48-bit digest of it and
a PAT is found again by that number among its owner's tokens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import utcnow
from tenantry.db.models import Token, User
from tenantry.errors import Invalid
from tenantry.faces.unleash.bodies import CreatePat
from tenantry.faces.unleash.errors import ForbiddenError
from tenantry.identity import personal_tokens
from tenantry.identity.principals import Principal


def pat_number(token: Token) -> int:
    return int.from_bytes(hashlib.sha256(token.id.encode()).digest()[:6], "big") or 1


def _own(actor: Principal) -> User:
    """The caller's user: an API token has none (Unleash's ForbiddenError)."""
    if actor.user is None or actor.token is None or actor.token.kind == "api":
        raise ForbiddenError("PATs require an authenticated user.")
    return actor.user


@dataclass
class Pat:
    token: Token
    user: User
    secret: str | None = None


async def list_pats(db: AsyncSession, actor: Principal) -> list[Pat]:
    user = _own(actor)
    tokens = await personal_tokens.list_personal_tokens(db, actor, user.id)
    now = utcnow()
    return [
        Pat(t, user)
        for t in tokens
        if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
    ]


async def create_pat(db: AsyncSession, actor: Principal, body: CreatePat) -> Pat:
    """A personal token of the caller named by the PAT's description; its expiry is checked
    by the domain (in the future, within the one cap every face shares)."""
    user = _own(actor)
    if not body.description:
        raise Invalid("PAT description cannot be empty.")
    minted = await personal_tokens.create_personal_token(
        db, actor, user.id, name=body.description, expires_at=body.expiresAt, unique_name=True
    )
    return Pat(minted.token, user, minted.secret)


async def delete_pat(db: AsyncSession, actor: Principal, number: int) -> None:
    """Revoke the caller's PAT of that number; none (or one already gone) is no change and no
    refusal, as Unleash deletes `WHERE id AND user_id` and answers 200 either way."""
    user = _own(actor)
    for token in await personal_tokens.list_personal_tokens(db, actor, user.id):
        if pat_number(token) == number and token.revoked_at is None:
            await personal_tokens.revoke_own_token(db, actor, token.id)
            return

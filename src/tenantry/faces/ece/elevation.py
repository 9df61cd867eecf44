"""ECE's elevated permissions: `POST /users/auth/_elevate` re-authenticates (Tenantry has no
MFA device, so the factor is the user's password, sent as ECE's `token`) and, like ECE, answers
with a new session token; `DELETE` drops the elevation, also with a new token."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.faces.ece.dialect import EceInvalid
from tenantry.identity import sessions
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal
from tenantry.identity.sessions import Limits
from tenantry.identity.tokens import Minted, TokenKind


def _require_session(actor: Principal) -> None:
    if actor.user is None or actor.token is None or actor.token.kind != TokenKind.SESSION.value:
        raise EceInvalid(
            "authc.invalid_token",
            "elevated permissions need a session token (POST /api/v1/users/auth/_login)",
        )


async def elevate(
    db: AsyncSession,
    hasher: Hasher,
    limits: Limits,
    actor: Principal,
    password: str,
    ip: str | None,
) -> Minted:
    """A new session token once elevated; a wrong password raises ElevationRefused (which
    keeps the failure's count and audit event)."""
    _require_session(actor)
    await sessions.elevate(db, hasher, limits, actor, password, ip)
    return await sessions.refresh(db, actor)


async def drop(db: AsyncSession, actor: Principal) -> Minted:
    _require_session(actor)
    await sessions.drop_elevation(db, actor)
    return await sessions.refresh(db, actor)

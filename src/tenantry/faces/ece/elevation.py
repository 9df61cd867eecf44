"""ECE's elevated permissions: `POST /users/auth/_elevate` re-authenticates (Tenantry has no
MFA device, so the factor is the user's password, sent as ECE's `token`) and, like ECE, answers
with a new session token; `DELETE` drops the elevation, also with a new token.

identity.sessions decides: only a session elevates, and only that session is elevated (never
the user's API keys or other sessions). Any other credential is ECE's `authc.invalid_token`
(the error table's "elevation" part); dropping the elevation with one is ECE's 401
root.unauthorized (the "session" part).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.faces.ece.errors import part
from tenantry.identity import sessions
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal
from tenantry.identity.sessions import Limits
from tenantry.identity.tokens import Minted


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
    with part("elevation"):
        await sessions.elevate(db, hasher, limits, actor, password, ip)
        return await sessions.refresh(db, actor)


async def drop(db: AsyncSession, actor: Principal) -> Minted:
    """Only a session drops its elevation: any other credential is ECE's 401 (the "session"
    part), the status ECE documents for this operation's invalid token."""
    with part("session"):
        await sessions.drop_elevation(db, actor)
        return await sessions.refresh(db, actor)

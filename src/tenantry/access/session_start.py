"""Start a session for a user who has just proved who they are some other way than a password
sign-in (e.g. by accepting an invite and choosing their password).

A public front for `sessions._start_session`, so that other use cases need not reach into a
private helper; the session is the same as one from POST /auth/login (idle expiry, absolute
deadline).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.access import sessions
from tenantry.access.policy import SecurityPolicy
from tenantry.access.tokens import Minted
from tenantry.clock import utcnow
from tenantry.db.models import User


async def start_session(db: AsyncSession, policy: SecurityPolicy, user: User) -> Minted:
    return await sessions._start_session(db, policy, user, utcnow(), None)

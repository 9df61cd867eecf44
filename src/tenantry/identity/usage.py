"""Recording when tokens and users were last seen."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from tenantry.audit.log import record
from tenantry.clock import utcnow
from tenantry.db.engine import UNTRACKED, Database
from tenantry.db.models import Token, User
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import TOUCH_INTERVAL, TokenKind, needs_touch

log = logging.getLogger("tenantry.usage")
# Token ids whose use is being recorded right now (per process).
_in_flight: set[str] = set()


def _sliding_expiry(principal: Principal, token: Token, now: datetime) -> datetime | None:
    """Sessions live `session_idle` past their last use, never past their absolute deadline."""
    if token.kind != TokenKind.SESSION.value:
        return token.expires_at
    extended = now + principal.policy.session_idle
    return min(extended, token.max_expires_at) if token.max_expires_at else extended


async def _record(db: AsyncSession, principal: Principal, token: Token, now: datetime) -> None:
    stale = now - TOUCH_INTERVAL
    result = await db.execute(
        update(Token)
        .where(Token.id == token.id)
        .where(or_(Token.last_used_at.is_(None), Token.last_used_at < stale))
        .values(last_used_at=now, expires_at=_sliding_expiry(principal, token, now))
        .execution_options(synchronize_session=False, **{UNTRACKED: True})
    )
    # Only the request whose UPDATE won records the first use (concurrent first uses race).
    if token.last_used_at is None and getattr(result, "rowcount", 0) == 1:
        await record(db, principal, "token.first_use", target_type="token", target_id=token.id)
    if principal.user is not None:
        await db.execute(
            update(User)
            .where(User.id == principal.user.id)
            .values(seen_at=now)
            .execution_options(synchronize_session=False, **{UNTRACKED: True})
        )


async def touch(
    database: Database,
    principal: Principal,
    request_db: AsyncSession | None = None,
    now: datetime | None = None,
) -> None:
    """Set last_used_at / seen_at when stale (at most once a minute per token).

    A writing request records it in its own transaction (it already holds the write lock).
    A reading request uses a separate short transaction so that it stays a read on SQLite;
    a failure there (e.g. the database is busy) never fails the caller's request."""
    token = principal.token
    now = now or utcnow()
    if token is None or not needs_touch(token, now):
        return
    if request_db is not None:
        await _record(request_db, principal, token, now)
    elif token.id in _in_flight:
        return  # a concurrent request with the same token is recording it already
    else:
        _in_flight.add(token.id)
        try:
            async with database.transaction() as db:
                await _record(db, principal, token, now)
        except Exception:
            log.warning("could not record token use", exc_info=True)
            return
        finally:
            _in_flight.discard(token.id)
    # Not ORM changes: marking the token dirty would make this read request write. The
    # token may be shared through the principal cache, which must see the new expiry.
    set_committed_value(token, "last_used_at", now)
    set_committed_value(token, "expires_at", _sliding_expiry(principal, token, now))
    if principal.user is not None:  # a view built after this shows the new stamp
        set_committed_value(principal.user, "seen_at", now)

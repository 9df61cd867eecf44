"""Finding an account by its login name, id or verified address (no permission check: callers
did theirs), and keeping the keys those look-ups use in step with the names they stand for.

Whoever sets `User.username` or `User.email` (a use case, a face, the CLI), the keys follow at
once (attribute events below), and a changed address is no longer verified: only the code that
has the proof (an accepted invite, a confirmed change link, an operator's update) sets
`email_verified` again, after the address. So no write path can leave a self-asserted address
marked verified, nor a login name with a stale key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import User
from tenantry.errors import NotFound
from tenantry.identity.names import email_key, username_key


async def find_by_username(db: AsyncSession, username: str) -> User | None:
    key = username_key(username)
    if not key:
        return None
    return await db.scalar(select(User).where(User.username_key == key))


async def find_by_email(db: AsyncSession, address: str) -> User | None:
    """The account with this address (the first made, when several share it), verified or
    not; None for none."""
    key = email_key(address)
    if not key:
        return None
    return await db.scalar(select(User).where(User.email_key == key).order_by(User.seq).limit(1))


async def get_by_id(db: AsyncSession, user_id: str) -> User:
    user = await db.scalar(select(User).where(User.id == user_id))
    if user is None:
        raise NotFound("user not found")
    return user


def set_verified_email(user: User, address: str) -> None:
    """The account proved `address` (or an operator asserted it): set it, then verify it."""
    user.email = address
    user.email_verified = True


@event.listens_for(User.username, "set")
def _username_set(target: User, value: Any, oldvalue: Any, initiator: Any) -> None:
    if isinstance(value, str) and value != oldvalue:
        target.username_key = username_key(value)


@event.listens_for(User.email, "set")
def _email_set(target: User, value: Any, oldvalue: Any, initiator: Any) -> None:
    """An unloaded old value (NO_VALUE) counts as a change: verification is dropped."""
    key = email_key(value) if isinstance(value, str) else None
    if isinstance(oldvalue, str) and key is not None and key == email_key(oldvalue):
        return  # the same mailbox written differently (`Jane@X.io` for `jane@x.io`)
    target.email_key = key
    target.email_verified = False

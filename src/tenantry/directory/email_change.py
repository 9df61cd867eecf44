"""Self-service e-mail change: pending until a link mailed to the new address confirms it.

A user who sets their own address has only asserted it; invites bind to verified addresses
(directory.invites), so an asserted address must not count until its mailbox answers. The
request keeps the new address aside (`users.pending_email`) with the SHA-256 digest of a
single-use secret (prefix `tne_`) and an expiry; the current address stays as it is. The secret
reaches the new mailbox only, in the fragment of `{public_url}/email#<secret>` (never sent to a
server by a browser, as with invite links). Confirming with it sets the address, verified, and
a login name that was the old address follows it (users.follow_address). A new request
replaces the previous one (its link stops working). Unknown, expired and used
secrets are refused with one answer.

An administrator with `system.users.update` sets someone's address directly and verified
(directory.users.update_user): the operator asserts it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.engine import Grants
from tenantry.clock import iso_z, utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import user_scope
from tenantry.db.models import User
from tenantry.directory import users
from tenantry.errors import FieldError, Forbidden, Invalid, NotFound, RateLimited
from tenantry.identity import names
from tenantry.identity.lookup import set_verified_email
from tenantry.identity.principals import Principal
from tenantry.identity.ratelimit import RateLimiter
from tenantry.identity.tokens import MAX_SECRET_LENGTH, digest
from tenantry.mail import Mail

LINK_PREFIX = "tne_"  # unlike bearer tokens (tnt_) and invite links (tni_)
DEFAULT_TTL = timedelta(hours=24)
REQUESTS_PER_HOUR = 5  # each request mails an address the caller chose
REFUSED = "this link is not valid: it is unknown, expired or already used"


@dataclass(frozen=True)
class PendingEmail:
    user: User
    address: str  # the new address, normalized; not yet the account's
    expires_at: datetime
    secret: str  # for the link only: never stored, rendered or logged
    mail: Mail  # to the new address, carrying the link


def email_link(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}/email#{secret}"


def _mail(address: str, secret: str, expires_at: datetime, public_url: str) -> Mail:
    base = public_url.rstrip("/")
    text = (
        "Hello,\n\n"
        "Someone asked to use this address for their Tenantry account. Open this link to "
        "confirm it:\n\n"
        f"    {email_link(public_url, secret)}\n\n"
        f"The link works once and until {iso_z(expires_at)}. Programs can confirm with POST "
        f"{base}/tenantry/v1/email/confirm and the part after '#' as \"secret\".\n\n"
        "If you did not ask for this, ignore this message: nothing changes.\n"
    )
    return Mail(to=address, subject="Confirm your e-mail address on Tenantry", text=text)


def _own_account(actor: Principal) -> User:
    user = actor.user
    if user is None:
        raise Forbidden("this credential does not belong to a user")
    if user.builtin:
        raise Invalid("built-in users cannot be modified")
    if user.idp_managed or user.realm != "native":
        raise Forbidden("the identity provider manages this account's e-mail address")
    return user


async def _throttle(limiter: RateLimiter | None, user_id: str) -> None:
    if limiter is None:
        return
    verdict = await limiter.hit(f"email-change:user:{user_id}", REQUESTS_PER_HOUR, 3600)
    if not verdict.allowed:
        raise RateLimited("too many e-mail change requests, try again later", verdict.retry_after)


async def request_email_change(
    db: AsyncSession,
    actor: Principal,
    new_email: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    public_url: str,
    limiter: RateLimiter | None = None,
) -> PendingEmail:
    """The caller's own change; the caller's transaction commits, then `mail` is sent."""
    caller = _own_account(actor)
    address = names.check_email(new_email, "email")
    if caller.email_verified and caller.email_key == address.key:
        raise Invalid(
            "this is already your address", [FieldError("email", "unchanged", "already yours")]
        )
    await _throttle(limiter, caller.id)
    user = await db.scalar(select(User).where(User.id == caller.id).with_for_update())
    if user is None:
        raise NotFound("user not found")
    secret = LINK_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + ttl
    user.pending_email = address.text
    user.pending_email_digest = digest(secret)
    user.pending_email_expires_at = expires_at
    await db.flush()
    await record(
        db,
        actor,
        "user.email.change_requested",
        target_type="user",
        target_id=user.id,
        details={"email": address.text, "expiresAt": iso_z(expires_at)},
    )
    mail = _mail(address.normalized, secret, expires_at, public_url)
    return PendingEmail(user, address.text, expires_at, secret, mail)


async def _claim(db: AsyncSession, secret: str) -> User:
    """The user whose pending change this secret confirms, its pending fields now cleared by
    this transaction (single use: the row count of a conditional UPDATE decides)."""
    if not secret.startswith(LINK_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        raise NotFound(REFUSED)
    secret_digest = digest(secret)
    now = utcnow()
    user = await db.scalar(
        select(User)
        .where(User.pending_email_digest == secret_digest)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or user.pending_email is None:
        raise NotFound(REFUSED)
    expires_at = user.pending_email_expires_at
    if expires_at is None or expires_at <= now:
        raise NotFound(REFUSED)
    result = await db.execute(
        update(User)
        .where(User.id == user.id, User.pending_email_digest == secret_digest)
        .values(pending_email_digest=None)
        .execution_options(synchronize_session=False, **scoped(user_scope(user.id)))
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise NotFound(REFUSED)
    return user


async def confirm_email_change(db: AsyncSession, secret: str) -> User:
    """Whoever holds the link confirms (it reached the new mailbox); no sign-in needed."""
    user = await _claim(db, secret)
    address = user.pending_email
    assert address is not None
    before, before_key, username = user.email, user.email_key, user.username
    set_verified_email(user, address)
    await users.follow_address(db, user, before_key, refuse_taken=False)
    user.pending_email = None
    user.pending_email_digest = None
    user.pending_email_expires_at = None
    user.updated_at = utcnow()
    user.updated_by = user.id
    await db.flush()
    await record(
        db,
        Principal(grants=Grants([]), user=user),
        "user.email.change",
        target_type="user",
        target_id=user.id,
        details={"from": before, "to": address}
        | ({"username": [username, user.username]} if user.username != username else {}),
    )
    return user

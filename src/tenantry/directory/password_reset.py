"""Password reset links: an administrator has a single-use link made for an account (Unleash's
POST /api/admin/user-admin/reset-password), the account's holder sets a new password with it.

The link is `{public_url}/reset-password#<secret>` (prefix `tnr_`), its secret in the URL
fragment, which browsers never send to a server (as invite and e-mail links). Only the SHA-256
digest of the secret is kept (`users.password_reset_digest`) with an expiry; a new link
replaces the previous one. The link goes to the account's address by mail and to the
administrator who asked, in that one answer (they may hand it over themselves, as Unleash's
administrators do); it is never logged, audited or shown again.

Asking for one is an administrator's act on another account, guarded as setting its password
is (`system.users.update`, the account visible, elevation when the instance demands it;
identity-provider accounts excluded): the link grants no more than the administrator could do
directly. Using it (`reset_password`, no sign-in: the secret is the credential) sets the
password under the instance's policy, ends every session of the account, and is audited as
`user.password.set` like every password change. Unknown, expired and used secrets get one
answer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.engine import Grants
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import iso_z, utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import user_scope
from tenantry.db.models import Token, User
from tenantry.errors import NotFound, RateLimited, Unchangeable
from tenantry.identity import password_history, passwords
from tenantry.identity.lookup import get_by_id
from tenantry.identity.passwords import Hasher
from tenantry.identity.policy import DEFAULT_POLICY, SecurityPolicy
from tenantry.identity.principals import Principal
from tenantry.identity.ratelimit import RateLimiter
from tenantry.identity.tokens import MAX_SECRET_LENGTH, TokenKind, digest
from tenantry.mail import Mail

LINK_PREFIX = "tnr_"  # unlike bearer tokens (tnt_), invite (tni_) and e-mail links (tne_)
DEFAULT_TTL = timedelta(hours=24)
REQUESTS_PER_MINUTE = 1  # per account, as Unleash sends one reset mail a minute
REFUSED = "this link is not valid: it is unknown, expired or already used"


@dataclass(frozen=True)
class ResetLink:
    user: User
    url: str  # carries the secret: for the one answer that made it, and the mail
    expires_at: datetime
    mail: Mail | None  # to the account's address, if it has one


def reset_link(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}/reset-password#{secret}"


def _mail(address: str, url: str, expires_at: datetime, public_url: str) -> Mail:
    base = public_url.rstrip("/")
    text = (
        "Hello,\n\n"
        "An administrator asked for a new password for your Tenantry account. Open this link "
        "to choose one:\n\n"
        f"    {url}\n\n"
        f"The link works once and until {iso_z(expires_at)}. Programs can set the password "
        f"with POST {base}/tenantry/v1/password/reset, the part after '#' as \"secret\" and "
        'the new one as "password".\n\n'
        "If you did not expect this, tell your administrator.\n"
    )
    return Mail(to=address, subject="Choose a new password on Tenantry", text=text)


async def request_password_reset(
    db: AsyncSession,
    actor: Principal,
    user_id: str,
    *,
    public_url: str,
    ttl: timedelta = DEFAULT_TTL,
    limiter: RateLimiter | None = None,
) -> ResetLink:
    """A new reset link for the account (replacing any earlier one); the caller's transaction
    commits, then the face hands out the URL and sends `mail`."""
    actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
    actor.require("system.users.update", SYSTEM_SCOPE)
    actor.require_elevation()
    user = await get_by_id(db, user_id)
    if user.builtin:
        raise Unchangeable("built-in users cannot be modified", reason="builtin")
    if user.realm != "native" or user.idp_managed:
        raise Unchangeable("external users cannot be modified", reason="external")
    if limiter is not None:
        verdict = await limiter.hit(f"password-reset:user:{user.id}", REQUESTS_PER_MINUTE, 60)
        if not verdict.allowed:
            raise RateLimited(
                "one reset link a minute per user, try again later", verdict.retry_after
            )
    secret = LINK_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + ttl
    user.password_reset_digest = digest(secret)
    user.password_reset_expires_at = expires_at
    await db.flush()
    await record(
        db,
        actor,
        "user.password.reset_requested",
        target_type="user",
        target_id=user.id,
        details={"expiresAt": iso_z(expires_at)},
    )
    url = reset_link(public_url, secret)
    mail = _mail(user.email, url, expires_at, public_url) if user.email else None
    return ResetLink(user, url, expires_at, mail)


async def _claim(db: AsyncSession, secret: str) -> User:
    """The account this secret resets, its link now used by this transaction (single use: the
    row count of a conditional UPDATE decides)."""
    if not secret.startswith(LINK_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        raise NotFound(REFUSED)
    secret_digest = digest(secret)
    user = await db.scalar(
        select(User)
        .where(User.password_reset_digest == secret_digest)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    expires_at = None if user is None else user.password_reset_expires_at
    if user is None or expires_at is None or expires_at <= utcnow():
        raise NotFound(REFUSED)
    result = await db.execute(
        update(User)
        .where(User.id == user.id, User.password_reset_digest == secret_digest)
        .values(password_reset_digest=None, password_reset_expires_at=None)
        .execution_options(synchronize_session=False, **scoped(user_scope(user.id)))
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise NotFound(REFUSED)
    return user


async def reset_password(
    db: AsyncSession,
    hasher: Hasher,
    secret: str,
    new_password: str,
    policy: SecurityPolicy = DEFAULT_POLICY,
) -> User:
    """Whoever holds the link sets the account's password (no sign-in needed), not one of its
    last ones (`policy.password_history`); every session of the account ends."""
    user = await _claim(db, secret)
    passwords.validate(new_password, user.username)
    await password_history.replace(hasher, user, new_password, policy.password_history)
    user.password_reset_digest = None
    user.password_reset_expires_at = None
    now = utcnow()
    user.updated_at = now
    user.updated_by = user.id
    await db.execute(
        update(Token)
        .where(
            Token.user_id == user.id,
            Token.kind == TokenKind.SESSION.value,
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=now, updated_at=now)
        .execution_options(synchronize_session=False, **scoped(user_scope(user.id)))
    )
    await db.flush()
    await record(
        db,
        Principal(grants=Grants([]), user=user),
        "user.password.set",
        target_type="user",
        target_id=user.id,
        details={"self": True, "via": "reset link"},
    )
    return user

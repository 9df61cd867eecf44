"""Accepting an organization invite with the secret from its link.

The secret is the credential: whoever presents it may accept. It is looked up by its SHA-256
digest only (never compared), and an unknown, expired, already accepted or withdrawn invite is
refused with one and the same answer, so a guesser learns nothing. Attempts are rate-limited per
client address (TENANTRY_INVITE_ACCEPT_RATE_PER_IP per minute).

Two cases, decided by the invited user's state:
- a PENDING user (the invite created the account): the request chooses the password (policy as
  everywhere), the account becomes ACTIVE and is signed in at once (a session token);
- any other user: the request must be authenticated as that very user, or anyone who got hold of
  the link could attach someone's existing account to an organization.
An invite is accepted only for the account it is bound to (directory.invites binds by verified
addresses): an account that merely set the invited address as its e-mail or username cannot
accept it, not even with the link. A PENDING account without a login name of its own (the
address is another account's login name, see directory.invites) takes that name when it is
activated, and cannot be activated while another account holds it.

Accepting proves the mailbox: the account's e-mail is marked verified when it is the invited
address (identity.names keys).

Single use, race-safe: the invite is claimed with `UPDATE … SET accepted_at … WHERE accepted_at
IS NULL` and the row count decides; a refusal after the claim raises, which rolls the claim back.
When the user already belongs to the organization (e.g. added directly after being invited), the
invite is used up and their existing role is kept: the answer is 200 with `alreadyMember`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.engine import Grants
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import user_scope
from tenantry.db.models import Invite, Membership, User
from tenantry.directory import organizations
from tenantry.directory.invites import LINK_PREFIX
from tenantry.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from tenantry.identity import names, password_history, passwords
from tenantry.identity.lookup import find_by_username
from tenantry.identity.principals import Principal
from tenantry.identity.ratelimit import RateLimiter
from tenantry.identity.security import Security
from tenantry.identity.sessions import start_session
from tenantry.identity.tokens import MAX_SECRET_LENGTH, Minted, digest

REFUSED = "this invite is not valid: it is unknown, expired, already accepted or withdrawn"
WINDOW_SECONDS = 60
MAX_FULL_NAME = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Acceptance:
    organization_id: str
    user_id: str
    role: str  # the organization role the user holds now
    already_member: bool  # they were a member before: their role was kept
    session: Minted | None  # a new account is signed in at once


async def throttle(
    db: AsyncSession, actor: Principal, limiter: RateLimiter, ip: str | None, per_minute: int
) -> None:
    """A budget per address; its first refusal in each window is audited and kept (as
    sign-in's are), the rest are not."""
    if not ip:
        return
    verdict = await limiter.hit(f"invite:ip:{ip}", per_minute, WINDOW_SECONDS)
    if verdict.allowed:
        return
    if verdict.first_refusal:
        details = {"budget": "address", "retry_after_seconds": verdict.retry_after}
        await record(db, actor, "invite.accept.throttled", details=details)
    raise RateLimited(
        "too many invite attempts, try again later",
        verdict.retry_after,
        keeps_writes=verdict.first_refusal,
    )


def _check_full_name(full_name: str | None) -> str | None:
    if full_name is None:
        return None
    name = full_name.strip()
    if len(name) > MAX_FULL_NAME or _CONTROL.search(name):
        raise Invalid(
            "invalid fullName",
            [FieldError("fullName", "invalid", f"at most {MAX_FULL_NAME} printable characters")],
        )
    return name or None


async def _claim(db: AsyncSession, secret: str) -> Invite:
    """The invite, now marked accepted by this transaction; NotFound(REFUSED) in every case of
    an invalid secret. Two concurrent claims of one invite: the second waits for the first
    (PostgreSQL row lock; SQLite serializes writers) and then updates no row."""
    if not secret.startswith(LINK_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        raise NotFound(REFUSED)
    now = utcnow()
    invite = await db.scalar(select(Invite).where(Invite.secret_digest == digest(secret)))
    if invite is None or invite.accepted_at is not None or invite.expires_at <= now:
        raise NotFound(REFUSED)
    result = await db.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.accepted_at.is_(None), Invite.expires_at > now)
        .values(accepted_at=now)
        .execution_options(
            synchronize_session=False,
            # Only the account it is bound to shows a pending invite (directory/me.py).
            **scoped(*([user_scope(invite.user_id)] if invite.user_id else [])),
        )
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise NotFound(REFUSED)
    return invite


async def _invitee(db: AsyncSession, invite: Invite) -> User:
    """The invited user, locked and read fresh: their state decides which case applies, and
    two invites of one PENDING user must not both set the password."""
    user = await db.scalar(
        select(User)
        .where(User.id == invite.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound(REFUSED)
    return user


async def _give_login_name(db: AsyncSession, user: User) -> None:
    """A PENDING account that holds no login name (directory.invites) takes its username as
    one when it is activated, if no other account uses it by then."""
    if not user.username_key.startswith(names.UNREACHABLE):
        return
    if await find_by_username(db, user.username) is not None:
        raise Conflict(
            "this address is the login name of another account; if that account is yours, "
            "confirm the address as its e-mail and ask for a new invite"
        )
    user.username_key = names.username_key(user.username)


async def _activate(
    db: AsyncSession,
    sec: Security,
    actor: Principal,
    user: User,
    password: str | None,
    full_name: str | None,
) -> None:
    """A new account: the link holder chooses the password and becomes the user."""
    if actor.user is not None or actor.token is not None:
        raise Forbidden(
            "this invite creates a new account, but the request is signed in as another one; "
            "send it without credentials"
        )
    if not user.enabled:
        raise Forbidden("the invited account is disabled")
    if password is None:
        raise Invalid(
            "choose a password for the new account",
            [FieldError("password", "required", "required for a new account")],
        )
    passwords.validate(password, user.username)
    now = utcnow()
    await password_history.replace(sec.hasher, user, password, sec.policy.password_history)
    user.status = "ACTIVE"
    if full_name is not None:
        user.full_name = full_name
    user.login_attempts = 0
    user.locked_until = None
    user.first_login_at = user.first_login_at or now
    user.last_login_at = now
    user.seen_at = now
    user.updated_at = now
    user.updated_by = user.id


def _require_self(
    actor: Principal, user: User, password: str | None, full_name: str | None
) -> None:
    """An existing account: only its owner, signed in, may accept for it."""
    if actor.user is None:
        raise Unauthenticated("sign in as the invited user to accept this invite")
    if actor.user.id != user.id:
        raise Forbidden("this invite is for another user")
    if password is not None or full_name is not None:
        fields = [
            FieldError(name, "not_allowed", "only for a new account")
            for name, value in (("password", password), ("fullName", full_name))
            if value is not None
        ]
        raise Invalid("this invite is for an existing account: send only the secret", fields)


async def accept_invite(
    db: AsyncSession,
    actor: Principal,
    sec: Security,
    *,
    secret: str,
    password: str | None = None,
    full_name: str | None = None,
    ip: str | None = None,
    rate_per_ip: int = 20,
) -> Acceptance:
    """`actor` is whoever the request authenticated as (anonymous() when it carried no
    credential). Flushes only; the caller's transaction commits or rolls everything back."""
    await throttle(db, actor, sec.limits.limiter, ip, rate_per_ip)
    name = _check_full_name(full_name)
    invite = await _claim(db, secret)
    user = await _invitee(db, invite)
    new_account = user.status == "PENDING"
    if new_account:
        await _activate(db, sec, actor, user, password, name)
        await _give_login_name(db, user)
    else:
        _require_self(actor, user, password, full_name)
    if user.email_key == invite.invitee_email:
        user.email_verified = True  # the link reached this mailbox
    org_id = invite.organization_id
    membership = await db.get(
        Membership, (org_id, user.id), with_for_update=True, populate_existing=True
    )
    already_member = membership is not None
    if membership is None:
        membership = await organizations.add_member(db, org_id, user.id, invite.role)
    if user.primary_organization_id is None:
        user.primary_organization_id = org_id
    await db.flush()
    session = await start_session(db, sec.policy, user.id) if new_account else None
    by = actor if actor.user is not None else Principal(grants=Grants([]), user=user)
    await record(
        db,
        by,
        "invite.accept",
        target_type="invite",
        target_id=invite.id,
        organization_id=org_id,
        details={
            "userId": user.id,
            "role": membership.role,
            "invitedRole": invite.role,
            "newAccount": new_account,
            "alreadyMember": already_member,
            "session": session.token.id if session else None,
        },
    )
    return Acceptance(org_id, user.id, membership.role, already_member, session)

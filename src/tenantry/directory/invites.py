"""Organization invites: invite an e-mail address with an organization role, or withdraw it.

An invite names its organization, the invitee's address key (identity.names), the role, the
inviter, an expiry and a single-use secret for the invite link, of which only the SHA-256 digest
is kept. The address must be one mailbox; the mail goes to its normalized form, whose key is the
one the invite is bound by.

Whom an invite binds to (the invitee joins only when the invite is accepted,
tenantry.directory.invite_accept):
- the account that holds the address **verified** (proved by an accepted invite or a confirmed
  change, or asserted by an operator);
- else the PENDING account an earlier invite created for exactly this address;
- else a new PENDING account with the address as its username.
Never an account by its username alone, never by an address it only asserted. When another
account holds the address unverified, as its e-mail or as its login name, that account is
ignored: the invite gets a new PENDING account, and the inviter's answer is the same as for an
unknown address (no oracle for other tenants' users). If the address is that account's login
name, the new PENDING account holds no login name (identity.names.unreachable_key) until it is
activated, which needs that name to be free (invite_accept). Such an account that really owns the
address confirms it as its e-mail (directory.email_change); later invites then bind to it.

The secret reaches the invitee only by e-mail (`invite_mail`), in the fragment of the link
`{public_url}/invite#<secret>`: a browser never sends a fragment to any server, so the secret
stays out of access logs, proxies and Referer headers; the page POSTs it in a request body.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.catalogue import ORGANIZATION_ROLES
from tenantry.clock import iso_z, utcnow
from tenantry.db.models import Invite, Organization, Token, User
from tenantry.directory import organizations, users
from tenantry.directory.members import RoleSet, guard_strong_grants
from tenantry.directory.subjects import Subject, load_subjects
from tenantry.directory.users import UserFields
from tenantry.errors import Conflict, FieldError, Invalid, NotFound
from tenantry.identity import names
from tenantry.identity.lookup import find_by_username
from tenantry.identity.names import Address
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import digest
from tenantry.ids import new_id
from tenantry.mail import Mail

# Invite-link secrets look different from bearer tokens (tnt_), so neither is mistaken for
# the other in logs or support tickets.
LINK_PREFIX = "tni_"
DEFAULT_TTL_DAYS = 7
MAX_EMAIL = names.MAX_EMAIL


def new_invite_secret() -> str:
    return LINK_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class InviteView:
    invite: Invite
    organization: Organization
    subjects: Mapping[str, Subject]  # the invitee and the inviter, by id


@dataclass(frozen=True)
class CreatedInvite:
    view: InviteView
    secret: str  # for the invite link; never stored, and not part of Astro's Invite body
    address: str = ""  # the invitee's normalized address, whose key the invite is bound by


def invite_link(public_url: str, secret: str) -> str:
    """The secret travels in the fragment only (see the module docstring)."""
    return f"{public_url.rstrip('/')}/invite#{secret}"


def _name_of(subject: Subject | None) -> str:
    if isinstance(subject, User):
        return subject.full_name or subject.username
    if isinstance(subject, Token):
        return subject.name or "An API token"
    return "An administrator"


def invite_mail(created: CreatedInvite, public_url: str) -> Mail:
    """The e-mail that carries the invite link to the invitee."""
    view = created.view
    invite, org = view.invite, view.organization
    inviter = _name_of(view.subjects.get(invite.inviter_id or ""))
    base = public_url.rstrip("/")
    org_name = " ".join(org.name.split())  # one line: it goes into the Subject header
    text = (
        f"Hello,\n\n"
        f"{inviter} invited you to join the organization {org_name} on Tenantry "
        f"as {invite.role}.\n\n"
        f"Open this link to accept the invite:\n\n"
        f"    {invite_link(public_url, created.secret)}\n\n"
        f"The link works once and until {iso_z(invite.expires_at)}. If you already have an "
        f"account, sign in first. Programs can accept it with POST "
        f"{base}/tenantry/v1/invites/accept and the part after '#' as \"secret\".\n\n"
        f"If you did not expect this invite, ignore this message.\n"
    )
    return Mail(
        to=created.address or invite.invitee_email,
        subject=f"You are invited to join {org_name} on Tenantry",
        text=text,
    )


def _check_email(email: str) -> Address:
    """One mailbox (identity.names): no lists, display forms or look-alikes."""
    return names.check_email(email, "inviteeEmail")


def _check_role(role: str) -> None:
    if role not in ORGANIZATION_ROLES:
        raise Invalid(
            "unknown organization role",
            [FieldError("role", "invalid", f"one of {', '.join(ORGANIZATION_ROLES)}")],
        )


async def _lock_address(db: AsyncSession, key: str) -> None:
    """Invites for one address are decided one after the other, also while no account holds
    it yet (nothing to lock then): PostgreSQL, a transaction-level advisory lock on the
    address key; SQLite has one writer at a time. Without it two invites for a new address
    each found no account, and the second, taking the first's new account for another
    person's login name, made a second account and a second invite."""
    if db.get_bind().dialect.name == "postgresql":
        lock = func.pg_advisory_xact_lock(func.hashtextextended("tenantry/invitee/" + key, 0))
        await db.execute(select(lock))


async def _invitee(db: AsyncSession, key: str) -> User | None:
    """The account this address key names: its verified holder, else the PENDING account an
    invite created for it. Locked, so that two invites for one person are decided one after the
    other."""
    verified = await db.scalar(
        select(User)
        .where(User.email_key == key, User.email_verified.is_(True))
        .order_by(User.seq)
        .limit(1)
        .with_for_update()
    )
    if verified is not None:
        return verified
    return await db.scalar(
        select(User)
        .where(
            User.email_key == key,
            User.status == "PENDING",
            User.password_hash.is_(None),
            or_(User.username_key == key, User.username_key.startswith(names.UNREACHABLE)),
        )
        .order_by(User.seq)
        .limit(1)
        .with_for_update()
    )


async def _new_pending_account(db: AsyncSession, actor: Principal, address: Address) -> User:
    """A PENDING account for the address; without a login name of its own when another account
    already uses the address as one (see the module docstring)."""
    fields = UserFields(status="PENDING")
    if await find_by_username(db, address.text) is None:
        return await users.add_user(db, actor, address.text, fields, email_verified=False)
    return await users.add_user(
        db, actor, address.text, fields, email_verified=False, login_name=False
    )


async def _refuse_duplicate(db: AsyncSession, org_id: str, key: str, user: User | None) -> None:
    """A member, or an address (or its account) with a pending invite here: only this
    organization's own members and invites are looked at."""
    if user is not None and await organizations.is_member(db, org_id, user.id):
        raise Conflict(
            "this user is already a member of the organization",
            [FieldError("inviteeEmail", "conflict", "already a member")],
        )
    same = Invite.invitee_email == key
    pending = await db.scalar(
        select(Invite.id).where(
            Invite.organization_id == org_id,
            same if user is None else or_(same, Invite.user_id == user.id),
            Invite.accepted_at.is_(None),
            Invite.expires_at > utcnow(),
        )
    )
    if pending is not None:
        raise Conflict(
            "this address already has a pending invite to the organization; "
            "delete it before inviting again",
            [FieldError("inviteeEmail", "conflict", "already invited")],
        )


async def create_invite(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    invitee_email: str,
    role: str,
    *,
    ttl_days: int = DEFAULT_TTL_DAYS,
) -> CreatedInvite:
    """409 when the address already belongs to a member or has a pending invite here."""
    org = await organizations.get_visible(db, actor, org_id)
    actor.require("organization.invites.create", scopes.organization(org_id))
    address = _check_email(invitee_email)
    _check_role(role)
    await guard_strong_grants(db, actor, org_id, RoleSet(organization_role=role))
    if ttl_days < 1:
        raise Invalid("invite lifetime must be at least one day")
    email_key = address.key
    await _lock_address(db, email_key)
    user = await _invitee(db, email_key)
    await _refuse_duplicate(db, org_id, email_key, user)
    if user is None:
        user = await _new_pending_account(db, actor, address)
    now = utcnow()
    secret = new_invite_secret()
    invite = Invite(
        id=new_id(),
        organization_id=org_id,
        invitee_email=email_key,
        user_id=user.id,
        role=role,
        inviter_id=actor.actor_id,
        secret_digest=digest(secret),
        expires_at=now + timedelta(days=ttl_days),
        created_at=now,
    )
    db.add(invite)
    await db.flush()
    await record(
        db,
        actor,
        "organization.invite.create",
        target_type="invite",
        target_id=invite.id,
        organization_id=org_id,
        details={"inviteeEmail": email_key, "userId": user.id, "role": role},
    )
    subjects = await load_subjects(db, [user.id, invite.inviter_id])
    return CreatedInvite(InviteView(invite, org, subjects), secret, address.normalized)


async def delete_invite(db: AsyncSession, actor: Principal, org_id: str, invite_id: str) -> None:
    """Withdraws the invite (its link stops working). A PENDING user it created stays."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.invites.delete", scopes.organization(org_id))
    invite = await db.scalar(
        select(Invite).where(Invite.id == invite_id, Invite.organization_id == org_id)
    )
    if invite is None:
        raise NotFound("invite not found")
    details = {"inviteeEmail": invite.invitee_email, "userId": invite.user_id, "role": invite.role}
    await db.delete(invite)
    await db.flush()
    await record(
        db,
        actor,
        "organization.invite.delete",
        target_type="invite",
        target_id=invite_id,
        organization_id=org_id,
        details=details,
    )

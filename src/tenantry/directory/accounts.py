"""Account use cases every face, the CLI and the console call: create a user with a password
and system roles, set system roles, set a password. Each rule lives here once.

- A self-service password change proves the current password (`current_password`), or, where a
  face's wire carries none (ECE), a fresh elevation of the very credential making the change
  (`proof="elevation"`). An administrator needs `system.users.update` and elevation when the
  instance demands it. Every change ends the user's other sessions; one audit action.
- System roles change through one guard (permission, not yourself, elevation) and are audited
  as `user.system_roles.set` with the roles before and after, whichever face asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.catalogue import SYSTEM_ROLES
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.authz.system_roles import set_system_roles as write_system_roles
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import user_scope
from tenantry.db.models import RoleBinding, Token, User
from tenantry.directory import email_change, users
from tenantry.directory.users import UserFields
from tenantry.errors import Conflict, FieldError, Invalid, Unchangeable
from tenantry.identity import password_history, passwords
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal
from tenantry.identity.ratelimit import RateLimiter
from tenantry.identity.tokens import TokenKind
from tenantry.mail import Mail

Proof = Literal["current_password", "elevation"]


# --- system roles ------------------------------------------------------------------------------


def ordered_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Distinct SYSTEM roles, strongest first (the catalogue's order)."""
    held = set(roles)
    return tuple(r for r in SYSTEM_ROLES if r in held)


async def system_roles_of(db: AsyncSession, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """Each user's SYSTEM roles (users without any are absent)."""
    if not user_ids:
        return {}
    rows = await db.execute(
        select(RoleBinding.subject_id, RoleBinding.role).where(
            RoleBinding.subject_type == "user",
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
            RoleBinding.subject_id.in_(user_ids),
        )
    )
    found: dict[str, list[str]] = {}
    for subject, role in rows:
        found.setdefault(str(subject), []).append(str(role))
    return {subject: ordered_roles(roles) for subject, roles in found.items()}


@dataclass(frozen=True)
class AdminCount:
    """The instance's SYSTEM_ADMIN holders: people with a password, people without one (they
    sign in some other way, or not yet), and service accounts."""

    password: int
    no_password: int
    service: int


async def count_system_admins(db: AsyncSession, actor: Principal) -> AdminCount:
    actor.require("system.users.list", SYSTEM_SCOPE)
    rows = await db.execute(
        select(User.password_hash.is_not(None), User.account_type, func.count(User.id))
        .join(RoleBinding, RoleBinding.subject_id == User.id)
        .where(
            RoleBinding.subject_type == "user",
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
            RoleBinding.role == "SYSTEM_ADMIN",
        )
        .group_by(User.password_hash.is_not(None), User.account_type)
    )
    password = no_password = service = 0
    for has_password, account_type, count in rows:
        if account_type != "User":
            service += int(count)
        elif has_password:
            password += int(count)
        else:
            no_password += int(count)
    return AdminCount(password, no_password, service)


def _check_known(roles: Iterable[str]) -> tuple[str, ...]:
    unknown = sorted(set(roles) - set(SYSTEM_ROLES))
    if unknown:
        raise Invalid(
            f"unknown system roles: {', '.join(unknown)}",
            [FieldError("roles", "invalid", f"one of {', '.join(SYSTEM_ROLES)}")],
        )
    return ordered_roles(roles)


def _guard_system_roles(actor: Principal, target_id: str | None, roles: tuple[str, ...]) -> None:
    """The one guard on a change of SYSTEM roles (every face; `target_id` None: a new user)."""
    actor.require("system.users.roles.update", SYSTEM_SCOPE)
    if actor.user is not None and actor.user.id == target_id:
        raise Unchangeable("you cannot change your own system roles", reason="self")
    actor.require_elevation()


async def set_system_roles(
    db: AsyncSession, actor: Principal, user_id: str, roles: Iterable[str]
) -> tuple[str, ...]:
    """Make `roles` exactly the user's SYSTEM roles (none: remove them all). Unchanged roles
    are no change: nothing is checked, written or audited. A built-in user keeps its roles."""
    wanted = _check_known(roles)
    user = await users.get_by_id(db, user_id)
    before = (await system_roles_of(db, [user.id])).get(user.id, ())
    if wanted == before:
        return before
    if user.builtin:  # like every other setting of a built-in user (users.change_user)
        raise Unchangeable("built-in users keep their system roles", reason="builtin")
    _guard_system_roles(actor, user.id, wanted)
    await _write_roles(db, actor, user.id, before, wanted)
    return wanted


async def set_system_role(
    db: AsyncSession, actor: Principal, user_id: str, role: str | None
) -> tuple[str, ...]:
    """One SYSTEM role, or none (the native face and the CLI speak of one)."""
    if role is not None and role not in SYSTEM_ROLES:
        raise Invalid("unknown system role", [FieldError("role", "invalid", "unknown role")])
    return await set_system_roles(db, actor, user_id, [role] if role else [])


async def _write_roles(
    db: AsyncSession,
    actor: Principal,
    user_id: str,
    before: tuple[str, ...],
    after: tuple[str, ...],
) -> None:
    await write_system_roles(db, user_id, after)
    await record(
        db,
        actor,
        "user.system_roles.set",
        target_type="user",
        target_id=user_id,
        details={"before": list(before), "after": list(after)},
    )


# --- creating users ----------------------------------------------------------------------------


@dataclass
class NewUser:
    """A user as any face creates one. `username` defaults to the e-mail address."""

    username: str | None = None
    email: str | None = None
    full_name: str = ""
    password: str | None = None
    system_roles: tuple[str, ...] = ()
    enabled: bool = True
    # A username that is an address is also the e-mail, unless the face says otherwise
    # (Unleash keeps a user created by username alone without an e-mail).
    email_from_username: bool = True
    # Refuse an e-mail address another user already has (a face whose users are known by
    # their address, as Unleash's are); the directory itself allows shared addresses.
    unique_email: bool = False


async def create_user(db: AsyncSession, hasher: Hasher, actor: Principal, new: NewUser) -> User:
    """Checks everything before writing anything: a refused create leaves no trace."""
    actor.require("system.users.create", SYSTEM_SCOPE)
    login = (new.username or new.email or "").strip()
    if not login:
        raise Invalid(
            "a username or an e-mail address is required",
            [FieldError("username", "required", "a username or an e-mail address")],
        )
    roles = _check_known(new.system_roles)
    if roles:
        _guard_system_roles(actor, None, roles)
    if new.password is not None:
        passwords.validate(new.password, login)
    if new.unique_email and new.email:
        await _check_email_free(db, new.email)
    fields = UserFields(full_name=new.full_name, email=new.email or None, enabled=new.enabled)
    user = await users.add_user(
        db, actor, login, fields, email_from_username=new.email_from_username
    )
    if new.password is not None:
        user.password_hash = await hasher.hash(new.password)
    if roles:
        await _write_roles(db, actor, user.id, (), roles)
    await db.flush()
    return user


async def _check_email_free(db: AsyncSession, email: str) -> None:
    taken = await db.scalar(
        select(User.id).where(func.lower(User.email) == email.strip().lower()).limit(1)
    )
    if taken is not None:
        raise Conflict(
            "a user with this e-mail address already exists",
            [FieldError("email", "conflict", "already taken")],
        )


# --- passwords ---------------------------------------------------------------------------------


async def set_password(
    db: AsyncSession,
    hasher: Hasher,
    actor: Principal,
    user_id: str,
    new_password: str,
    current_password: str | None = None,
    *,
    proof: Proof = "current_password",
) -> None:
    """Yourself, proving it is you (see the module docstring), or an administrator (elevated
    when required). Every other session of the user ends: a changed password must lock out
    whoever had the old one."""
    own = actor.user is not None and actor.user.id == user_id
    if own:
        await _prove_self(hasher, actor, current_password, proof)
    else:
        actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
        actor.require("system.users.update", SYSTEM_SCOPE)
        actor.require_elevation()
    user = await users.get_by_id(db, user_id)
    _check_changeable(user)
    passwords.validate(new_password, user.username)
    await password_history.replace(
        hasher, user, new_password, actor.policy.password_history, by_holder=own
    )
    user.updated_at = utcnow()
    user.updated_by = actor.actor_id
    await _end_other_sessions(db, user_id, actor.token.id if own and actor.token else "")
    await db.flush()
    await record(
        db, actor, "user.password.set", target_type="user", target_id=user_id, details={"self": own}
    )


async def _prove_self(
    hasher: Hasher, actor: Principal, current_password: str | None, proof: Proof
) -> None:
    user = actor.user
    assert user is not None
    if user.password_hash is None:  # no password yet (e.g. a built-in user): nothing to prove
        return
    if proof == "elevation":
        actor.require_fresh_elevation()
        return
    if current_password is None or not await hasher.verify(user.password_hash, current_password):
        raise Invalid(
            "the current password is incorrect",
            [FieldError("currentPassword", "invalid", "incorrect")],
        )


def _check_changeable(user: User) -> None:
    """Built-in users keep their settings here; an identity provider owns external users."""
    if user.realm != "native" or user.idp_managed:
        raise Unchangeable("external users cannot be modified", reason="external")


async def _end_other_sessions(db: AsyncSession, user_id: str, keep: str) -> None:
    now = utcnow()
    await db.execute(
        update(Token)
        .where(
            Token.user_id == user_id,
            Token.kind == TokenKind.SESSION.value,
            Token.revoked_at.is_(None),
            Token.id != keep,
        )
        .values(revoked_at=now, updated_at=now)
        .execution_options(synchronize_session=False, **scoped(user_scope(user_id)))
    )


# --- your own profile --------------------------------------------------------------------------


@dataclass
class ProfileUpdate:
    user: User
    # A new e-mail address is not taken at once: it waits for the link mailed to it.
    email_pending: str | None = None
    mail: Mail | None = None  # that link, for the face to deliver after the commit


async def update_own_profile(
    db: AsyncSession,
    actor: Principal,
    fields: UserFields,
    *,
    public_url: str,
    limiter: RateLimiter | None = None,
) -> ProfileUpdate:
    """A user changes their own name, username or e-mail (no administrator right needed).
    Enabling or disabling yourself is refused; an e-mail address is only ever taken from a
    confirmed link (so renaming yourself never captures an invite)."""
    user = actor.user
    if user is None:
        raise Unchangeable("this credential does not belong to a user", reason="self")
    if fields.enabled is not None or fields.status is not None:
        raise Unchangeable("you cannot enable or disable yourself", reason="self")
    new_email = fields.email
    own = replace(fields, email=None)
    await users.change_user(db, actor, user, own)
    if new_email is None or new_email == (user.email or ""):
        return ProfileUpdate(user)
    pending = await email_change.request_email_change(
        db, actor, new_email, public_url=public_url, limiter=limiter
    )
    return ProfileUpdate(user, email_pending=pending.address, mail=pending.mail)

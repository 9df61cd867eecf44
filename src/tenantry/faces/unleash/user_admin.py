"""Unleash's user administration (/api/admin/user-admin) in the directory's terms. Translation
only: users are addressed by their `seq`, rootRole 1 Admin / 2 Editor / 3 Viewer (or its name)
is a set of SYSTEM roles, and every change is the one domain use case (directory.accounts,
directory.users) with its checks, rules and audit. What stays here is Unleash's own: its
route permission (ADMIN), its body rules (username or e-mail, the e-mail's message) and its
reads (all users by seq, search)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.db.models import Team, User
from tenantry.directory import accounts, password_reset, teams, users
from tenantry.directory.users import UserFields, looks_like_email
from tenantry.errors import FieldError, Invalid, NotFound, Unchangeable
from tenantry.faces.unleash import bodies, dialect, owasp
from tenantry.faces.unleash.errors import (
    PASSWORD_UNDEFINED,
    Bare,
    OwaspValidationError,
    PasswordUndefined,
)
from tenantry.identity import lookup, passwords
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal
from tenantry.identity.ratelimit import RateLimiter

SEARCH_LIMIT = 100
OWN_ROOT_ROLE = "You cannot change your own root role"


def route_permission(actor: Principal, permission: str) -> None:
    """Unleash checks a route's permission (ADMIN for all of user-admin) before it looks at
    the body or the user named: the same domain permission, asked first, so that a caller
    without it learns nothing (the error table answers Unleash's PermissionError)."""
    actor.require(permission, SYSTEM_SCOPE)


@dataclass
class UnleashUser:
    user: User
    root_role: int


async def _with_roles(db: AsyncSession, found: list[User]) -> list[UnleashUser]:
    roles = await accounts.system_roles_of(db, [u.id for u in found])
    return [UnleashUser(u, dialect.root_role_of(roles.get(u.id, ()))) for u in found]


async def by_seq(db: AsyncSession, seq: int) -> User:
    """The user Unleash calls `seq` (its `id`)."""
    user = await db.scalar(select(User).where(User.seq == seq))
    if user is None:
        raise NotFound("No user found")
    return user


async def list_users(db: AsyncSession) -> list[UnleashUser]:
    found = list(await db.scalars(select(User).order_by(User.seq)))
    return await _with_roles(db, found)


def js_length(text: str) -> int:
    """A string's length as JavaScript counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


async def search_users(db: AsyncSession, actor: Principal, q: str | None) -> list[User]:
    """Unleash's search: `[]` for a `q` under two characters; else users.search_users (its
    matches are Unleash's: name contains, username or e-mail starts with), at most
    SEARCH_LIMIT."""
    if q is None or js_length(q) < 2:
        return []
    return await users.search_users(db, actor, q, limit=SEARCH_LIMIT)


# Unleash's default USER_INACTIVITY_THRESHOLD_IN_DAYS.
INACTIVE_DAYS = 180


async def admin_count(db: AsyncSession, actor: Principal) -> accounts.AdminCount:
    return await accounts.count_system_admins(db, actor)


@dataclass
class Access:
    users: list[User]
    groups: list[tuple[Team, int]]


async def access(db: AsyncSession, actor: Principal) -> Access:
    """GET /user-admin/access (any signed-in caller): the users and groups (teams) the caller
    could list anyway, as for the search."""
    return Access(await users.visible_users(db, actor), await teams.visible_teams(db, actor))


async def inactive(db: AsyncSession, actor: Principal) -> list[tuple[User, datetime | None]]:
    return await users.inactive_users(db, actor, INACTIVE_DAYS)


async def delete_inactive(db: AsyncSession, actor: Principal, seqs: list[int]) -> None:
    """POST /user-admin/inactive/delete: those of the users named that are inactive (Unleash
    deletes whichever are named; see docs/faces/unleash.md), never yourself."""
    ids = list(await db.scalars(select(User.id).where(User.seq.in_(seqs)))) if seqs else []
    await users.delete_inactive_users(db, actor, ids, INACTIVE_DAYS)


async def reset_password_link(
    db: AsyncSession,
    actor: Principal,
    address: str,
    *,
    public_url: str,
    limiter: RateLimiter | None,
) -> password_reset.ResetLink:
    """POST /user-admin/reset-password `{id: <e-mail>}`: the domain's reset link for the user
    with that address (Unleash's `Could not find <address>` for none)."""
    user = await lookup.find_by_email(db, address)
    if user is None:
        raise NotFound(f"Could not find {address}")
    return await password_reset.request_password_reset(
        db, actor, user.id, public_url=public_url, limiter=limiter
    )


async def get_user(db: AsyncSession, seq: int) -> UnleashUser:
    return (await _with_roles(db, [await by_seq(db, seq)]))[0]


def _email(value: str | None) -> str:
    """The address as sent, or "" (then: none); Unleash's message when it is no address."""
    email = (value or "").strip()
    if email and not looks_like_email(email):
        raise Invalid(
            "invalid email",
            [FieldError("", "invalid", f'"value" must be a valid email. You provided "{email}".')],
        )
    return email


@dataclass
class Created:
    user: User
    root_role: int | str  # echoed as sent, as Unleash does


async def create_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, body: bodies.CreateUser
) -> Created:
    """accounts.create_user: a username, an e-mail or both (a user made by username alone
    has no e-mail, as in Unleash), unique by either, with the root role's SYSTEM roles."""
    email = (body.email or "").strip()
    username = (body.username or "").strip()
    if not email and not username:
        raise Invalid("You must specify username or email")
    _email(email)
    role = dialect.parse_root_role(body.rootRole)
    new = accounts.NewUser(
        username=username or None,
        email=email or None,
        full_name=body.name or "",
        # Unleash sets a password given at creation without testing it; Tenantry tests every
        # password it sets (Unleash's test here, then its own policy).
        password=strong_password(body.password) if body.password else None,
        system_roles=dialect.system_roles_for(role),
        email_from_username=False,
        unique_email=True,
    )
    return Created(await accounts.create_user(db, hasher, actor, new), body.rootRole)


async def update_user(
    db: AsyncSession, actor: Principal, seq: int, body: bodies.UpdateUser
) -> UnleashUser:
    """accounts.set_system_roles for rootRole (its one guard: permission, not yourself,
    elevation), then users.update_user for name and e-mail (one `user.update`). As in Unleash,
    an empty name or e-mail keeps the one the user has, and the root role a user already has
    (as this face shows it) is no change: also on yourself, where any other is refused."""
    target = await by_seq(db, seq)
    if body.rootRole is not None:
        role = dialect.parse_root_role(body.rootRole)
        own = actor.user is not None and actor.user.id == target.id
        if not (own and role == (await _with_roles(db, [target]))[0].root_role):
            await _set_root_role(db, actor, target, role)
    email = _email(body.email)
    await users.update_user(
        db, actor, target.id, UserFields(full_name=body.name or None, email=email or None)
    )
    return (await _with_roles(db, [target]))[0]


async def _set_root_role(db: AsyncSession, actor: Principal, user: User, role: int) -> None:
    try:
        await accounts.set_system_roles(db, actor, user.id, dialect.system_roles_for(role))
    except Unchangeable as refused:
        if refused.reason == "self":  # in Unleash's words
            raise Unchangeable(OWN_ROOT_ROLE, reason="self") from refused
        raise


async def delete_user(db: AsyncSession, actor: Principal, seq: int) -> None:
    await users.delete_user(db, actor, (await by_seq(db, seq)).id)


async def set_password(
    db: AsyncSession, hasher: Hasher, actor: Principal, seq: int, body: bodies.Password
) -> None:
    """An administrator sets another user's password (POST /user-admin/{id}/change-password)."""
    user = await by_seq(db, seq)
    await accounts.set_password(db, hasher, actor, user.id, strong_password(body.password))


async def change_own_password(
    db: AsyncSession, hasher: Hasher, actor: Principal, body: bodies.Password
) -> None:
    """POST /user/change-password: the new password twice and the old one as the proof, in
    Unleash's order: a confirmation that differs or no oldPassword is its bare 400, then its
    strength test, then the proof (wrong: its 401 PasswordMismatch), then the domain."""
    if actor.user is None:  # an API token has no password of its own: Unleash's bare 400
        raise Bare("no user whose password to change")
    if body.password != body.confirmPassword or body.oldPassword is None:
        raise Bare("the new password twice and the old one")
    await accounts.set_password(
        db,
        hasher,
        actor,
        actor.user.id,
        strong_password(body.password),
        current_password=body.oldPassword,
    )


def strong_password(password: str) -> str:
    """Unleash's own test of a password it is given to set or validate (its messages, in
    faces/unleash/owasp.py): empty → PasswordUndefinedError, weak → OwaspValidationError.
    The domain's policy is checked after it by the use case (or validate_password)."""
    if not password:
        raise PasswordUndefined(PASSWORD_UNDEFINED)
    reasons = owasp.errors(password)
    if reasons:
        raise OwaspValidationError(reasons[0], reasons=reasons)
    return password


def validate_password(body: bodies.Password) -> None:
    """POST /user-admin/validate-password: Unleash's test, then the instance's password
    policy; nothing stored."""
    passwords.validate(strong_password(body.password))


async def access_overview(
    db: AsyncSession, actor: Principal, seq: int, project: str | None = None
) -> dialect.AccessOverview:
    return await dialect.access_overview(db, actor, await by_seq(db, seq), project)

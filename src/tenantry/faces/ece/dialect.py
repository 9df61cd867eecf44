"""Elastic Cloud Enterprise's view of the directory: ECE users are Tenantry users, their
`security.roles` are the user's SYSTEM roles under their ECE names.

This module translates, the domain decides: ECE's own vocabulary and rules live here (role names
and which combinations ECE allows, its user name pattern, its read-only fields, realm types),
and every change is the one domain use case every face calls (directory.accounts,
directory.users). Each call runs inside an `errors.part`, which tells the face's error table
what ECE calls a refusal there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.engine import Grant, Grants
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.db.models import Realm as RealmRow
from tenantry.db.models import User
from tenantry.db.paging import MAX_LIMIT
from tenantry.directory import accounts, users
from tenantry.directory.accounts import NewUser, ProfileUpdate
from tenantry.directory.users import UserFields
from tenantry.errors import NotFound

# Re-exported: auth.py's inline refusals import them from here (until they use the table).
from tenantry.faces.ece.errors import EceInvalid as EceInvalid
from tenantry.faces.ece.errors import EceUnauthenticated as EceUnauthenticated
from tenantry.faces.ece.errors import part
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal
from tenantry.identity.ratelimit import RateLimiter

ECE_ROLES: dict[str, str] = {
    "SYSTEM_ADMIN": "ece_platform_admin",
    "SYSTEM_VIEWER": "ece_platform_viewer",
    "SYSTEM_EDITOR": "ece_deployment_manager",
    "SYSTEM_DEPLOYMENT_VIEWER": "ece_deployment_viewer",
}
SYSTEM_ROLE_OF: dict[str, str] = {v: k for k, v in ECE_ROLES.items()}
# The order in which `security.roles` lists a user's roles (ECE's own: platform, deployment).
ROLE_ORDER: tuple[str, ...] = tuple(ECE_ROLES)
DEPLOYMENT_ROLES = frozenset({"ece_deployment_manager", "ece_deployment_viewer"})
# ECE: not empty, no special characters.
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,319}$")


def _ordered(roles: Iterable[str]) -> tuple[str, ...]:
    """Distinct SYSTEM roles in ECE's order (its roles first, in ECE_ROLES order)."""
    held = set(roles)
    return tuple(r for r in ROLE_ORDER if r in held) + tuple(sorted(held - set(ROLE_ORDER)))


@dataclass
class EceUserView:
    """A user with their SYSTEM roles (empty: no role)."""

    user: User
    roles: tuple[str, ...] = ()
    # The caller's own grants when the view is of the caller (an API key's ceiling included).
    caller: Principal | None = None

    def __post_init__(self) -> None:
        self.roles = _ordered(self.roles)

    @property
    def ece_roles(self) -> list[str]:
        return [ECE_ROLES[r] for r in self.roles if r in ECE_ROLES]

    def holds(self, permission: str | None) -> bool:
        """Whether the permission engine grants `permission` at SYSTEM scope (None: any
        signed-in user): the caller's loaded grants, or the union of another user's SYSTEM
        bindings."""
        if permission is None:
            return True
        if self.caller is not None:
            return self.caller.can(permission, SYSTEM_SCOPE)
        grants = [Grant(r, SYSTEM_SCOPE, "user", self.user.id, "binding") for r in self.roles]
        return Grants(grants).check(permission, SYSTEM_SCOPE)


@dataclass
class EceUserPatch:
    """An ECE user body as a JSON merge patch: absent fields are None and `reset` names the
    fields sent as null. `restricted` lists read-only fields the client tried to set."""

    user_name: str | None = None
    full_name: str | None = None
    email: str | None = None
    roles: list[str] | None = None
    password: str | None = None
    enabled: bool | None = None
    reset: frozenset[str] = frozenset()
    restricted: tuple[str, ...] = ()


# --- ECE's rules -------------------------------------------------------------------------------


def system_roles_for(roles: list[str]) -> tuple[str, ...]:
    """ECE's role rules (ece_platform_admin alone; not both deployment roles; any other
    combination), as the SYSTEM roles to hold."""
    unknown = [r for r in roles if r not in SYSTEM_ROLE_OF]
    if unknown:
        raise EceInvalid(
            "user.roles.invalid", f"unknown roles: {', '.join(unknown)}", ["security.roles"]
        )
    distinct = set(roles)
    if "ece_platform_admin" in distinct and len(distinct) > 1:
        raise EceInvalid(
            "user.roles.invalid",
            "ece_platform_admin cannot be combined with other roles",
            ["security.roles"],
        )
    if distinct >= DEPLOYMENT_ROLES:
        raise EceInvalid(
            "user.roles.invalid",
            "ece_deployment_manager and ece_deployment_viewer are mutually exclusive",
            ["security.roles"],
        )
    return _ordered(SYSTEM_ROLE_OF[r] for r in distinct)


def _check_user_name(name: str) -> str:
    if not _USER_NAME.match(name):
        raise EceInvalid(
            "user.user_name.invalid",
            "the user name must not be empty nor contain special characters",
            ["user_name"],
        )
    return name


def _check_restricted(patch: EceUserPatch) -> None:
    if patch.restricted:
        raise EceInvalid(
            "user.restricted_field",
            f"read-only fields cannot be set: {', '.join(patch.restricted)}",
            patch.restricted,
        )


@dataclass(frozen=True)
class _Change:
    """What an ECE patch asks of the domain: user fields, SYSTEM roles (None: leave them) and
    a new password (None: keep it)."""

    fields: UserFields
    roles: tuple[str, ...] | None
    password: str | None

    @property
    def has_fields(self) -> bool:
        return self.fields != UserFields()


def _change(patch: EceUserPatch) -> _Change:
    """ECE's body in the domain's terms, after ECE's own checks (nothing is written yet)."""
    _check_restricted(patch)
    if patch.user_name is not None:
        _check_user_name(patch.user_name)
    roles = None
    if patch.roles is not None or "roles" in patch.reset:
        roles = system_roles_for(patch.roles or [])
    fields = UserFields(
        username=patch.user_name,
        full_name="" if "full_name" in patch.reset else patch.full_name,
        email="" if "email" in patch.reset else patch.email,
        enabled=patch.enabled,
    )
    return _Change(fields, roles, patch.password)


# --- reading -----------------------------------------------------------------------------------


async def _view(db: AsyncSession, user: User) -> EceUserView:
    return EceUserView(user, (await accounts.system_roles_of(db, [user.id])).get(user.id, ()))


async def _named(db: AsyncSession, actor: Principal, user_name: str) -> User:
    """The user ECE names: yourself, or anyone for whoever may see users (else not found)."""
    with part("user"):
        user = await users.find_by_username(db, user_name)
        if user is None:
            raise NotFound("user not found")
        return await users.get_user(db, actor, user.id)


def _own(actor: Principal) -> User:
    with part("user"):
        if actor.user is None:  # an organization's API token acts as no user
            raise NotFound("user not found")
        return actor.user


def current_user_of(actor: Principal, system_roles: tuple[str, ...]) -> EceUserView:
    """The caller's view from what was loaded with them (directory.whoami)."""
    view = EceUserView(_own(actor), system_roles)
    view.caller = actor
    return view


async def list_users(
    db: AsyncSession, actor: Principal, *, include_disabled: bool = True
) -> list[EceUserView]:
    """Every user (ECE's list has no pages: the domain's pages, one after another)."""
    found: list[User] = []
    while True:
        page = await users.list_users(
            db,
            actor,
            offset=len(found),
            limit=MAX_LIMIT,
            enabled=None if include_disabled else True,
        )
        found += page.items
        if not page.items or len(found) >= page.total:
            break
    roles = await accounts.system_roles_of(db, [u.id for u in found])
    return [EceUserView(u, roles.get(u.id, ())) for u in found]


async def get_user(db: AsyncSession, actor: Principal, user_name: str) -> EceUserView:
    return await _view(db, await _named(db, actor, user_name))


# --- changing ----------------------------------------------------------------------------------


async def create_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, patch: EceUserPatch
) -> EceUserView:
    change = _change(patch)
    new = NewUser(
        username=_check_user_name(patch.user_name or ""),
        email=patch.email or None,
        full_name=patch.full_name or "",
        password=change.password,
        system_roles=change.roles or (),
        enabled=True if patch.enabled is None else patch.enabled,
    )
    user = await accounts.create_user(db, hasher, actor, new)
    return EceUserView(user, new.system_roles)


async def _roles_and_password(
    db: AsyncSession, hasher: Hasher, actor: Principal, user: User, change: _Change
) -> None:
    """The parts of a patch that are not plain fields, each through its one use case. ECE's
    wire has no current password: changing your own needs a fresh elevation of this very
    credential (POST /users/auth/_elevate), an administrator's change of another user's the
    administrator's rights."""
    if change.roles is not None:
        with part("roles"):
            await accounts.set_system_roles(db, actor, user.id, change.roles)
    if change.password is not None:
        await accounts.set_password(db, hasher, actor, user.id, change.password, proof="elevation")


async def update_current_user(
    db: AsyncSession,
    hasher: Hasher,
    actor: Principal,
    patch: EceUserPatch,
    *,
    public_url: str,
    limiter: RateLimiter | None = None,
) -> tuple[EceUserView, ProfileUpdate | None]:
    """PATCH /user: your own name, e-mail and password (roles need an administrator). The
    profile update, when there is one, may carry a mail to send once committed."""
    change = _change(patch)
    user = _own(actor)
    profile = None
    if change.has_fields:
        with part("profile"):
            profile = await accounts.update_own_profile(
                db, actor, change.fields, public_url=public_url, limiter=limiter
            )
    await _roles_and_password(db, hasher, actor, user, change)
    view = await _view(db, user)
    view.caller = actor
    return view, profile


async def update_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, user_name: str, patch: EceUserPatch
) -> EceUserView:
    change = _change(patch)
    user = await _named(db, actor, user_name)
    if change.has_fields:
        with part("profile"):
            await users.update_user(db, actor, user.id, change.fields)
    await _roles_and_password(db, hasher, actor, user, change)
    return await _view(db, user)


async def delete_user(db: AsyncSession, actor: Principal, user_name: str) -> None:
    user = await _named(db, actor, user_name)
    with part("deletion"):
        await users.delete_user(db, actor, user.id)


# --- permissions and realms --------------------------------------------------------------------


def permissions(view: EceUserView, operations: Mapping[str, str | None]) -> list[str]:
    """The operationIds (of `operations`: operationId → catalogue permission) the user may call,
    from what the union of the user's SYSTEM roles grants in the catalogue."""
    return sorted(op for op, perm in operations.items() if view.holds(perm))


@dataclass(frozen=True)
class Realm:
    type: str
    id: str


REALM_TYPES = ("native", "ldap", "saml", "active_directory")


def realm_of(user: User) -> Realm:
    """ECE's realm of a user: native, or the external realm users were provisioned from
    (realms ECE does not know, e.g. SCIM, show as saml)."""
    kind = user.realm if user.realm in REALM_TYPES else "saml"
    return Realm(kind, user.realm_id or user.realm)


async def security_realms(db: AsyncSession, actor: Principal) -> list[Realm]:
    """The realms users come from: native always, then every configured realm
    (directory/realms.py) and every other external realm in use (e.g. SCIM's)."""
    actor.require("system.users.list", SYSTEM_SCOPE)
    rows = await db.execute(
        select(User.realm, User.realm_id).where(User.realm != "native").distinct()
    )
    configured = await db.execute(select(RealmRow.type, RealmRow.id))
    external = {
        Realm(realm if realm in REALM_TYPES else "saml", realm_id or realm)
        for realm, realm_id in [*rows, *configured]
    }
    return [Realm("native", "native"), *sorted(external, key=lambda r: (r.type, r.id))]

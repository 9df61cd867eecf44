"""Elastic Cloud Enterprise's view of the directory: ECE users are Tenantry users, their
`security.roles` are the user's SYSTEM roles under their ECE names, and ECE's own rules (which
role combinations are allowed, built-in `admin` and `readonly`, its error codes) live here, not
in the face."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.engine import Grant, Grants
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.authz.system_roles import set_system_roles
from tenantry.clock import utcnow
from tenantry.db.models import RoleBinding, User
from tenantry.directory import users
from tenantry.errors import Conflict, FieldError, Forbidden, Invalid, NotFound, Unauthenticated
from tenantry.identity import passwords
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal

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


class _Coded:
    ece_code: str


def _fields(code: str, message: str, names: Iterable[str]) -> list[FieldError]:
    return [FieldError(name, code, message) for name in names]


class EceInvalid(Invalid, _Coded):
    def __init__(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message, _fields(code, message, fields))
        self.ece_code = code


class EceNotFound(NotFound, _Coded):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.ece_code = code


class EceConflict(Conflict, _Coded):
    def __init__(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message, _fields(code, message, fields))
        self.ece_code = code


class EceForbidden(Forbidden, _Coded):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.ece_code = code


def user_not_found() -> EceNotFound:
    return EceNotFound("user.not_found", "user not found")


def _ordered(roles: Iterable[str]) -> tuple[str, ...]:
    """Distinct SYSTEM roles in a stable order (ECE's roles first, in ECE_ROLES order)."""
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


def system_roles_for(roles: list[str]) -> tuple[str, ...]:
    """ECE's role rules (ece_platform_admin alone; not both deployment roles; any other
    combination), as the SYSTEM roles to hold, in a stable order."""
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


async def _roles_of(db: AsyncSession, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
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
    return {subject: _ordered(roles) for subject, roles in found.items()}


async def _view(db: AsyncSession, user: User) -> EceUserView:
    return EceUserView(user, (await _roles_of(db, [user.id])).get(user.id, ()))


async def _by_name(db: AsyncSession, user_name: str) -> User:
    user = await users.find_by_username(db, user_name)
    if user is None:
        raise user_not_found()
    return user


def _own_user(actor: Principal) -> User:
    if actor.user is None:
        raise user_not_found()
    return actor.user


async def current_user(db: AsyncSession, actor: Principal) -> EceUserView:
    view = await _view(db, _own_user(actor))
    view.caller = actor
    return view


async def list_users(
    db: AsyncSession, actor: Principal, *, include_disabled: bool = True
) -> list[EceUserView]:
    actor.require("system.users.list", SYSTEM_SCOPE)
    query = select(User)
    if not include_disabled:
        query = query.where(User.enabled.is_(True))
    found = list(await db.scalars(query.order_by(User.username_key)))
    roles = await _roles_of(db, [u.id for u in found])
    return [EceUserView(u, roles.get(u.id, ())) for u in found]


async def get_user(db: AsyncSession, actor: Principal, user_name: str) -> EceUserView:
    own = actor.user is not None and users.username_key(user_name) == actor.user.username_key
    if not own and not actor.can("system.users.get", SYSTEM_SCOPE):
        raise user_not_found()
    return await _view(db, await _by_name(db, user_name))


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


def _check_email(email: str | None) -> None:
    if email and not users.looks_like_email(email):
        raise EceInvalid("user.email.invalid", "not an e-mail address", ["email"])


def _check_role_change(actor: Principal, target_id: str | None) -> None:
    if not actor.can("system.users.roles.update", SYSTEM_SCOPE):
        raise EceInvalid(
            "user.roles.forbidden", "you may not assign platform roles", ["security.roles"]
        )
    if actor.user is not None and actor.user.id == target_id:
        raise EceInvalid(
            "user.roles.forbidden", "you cannot change your own roles", ["security.roles"]
        )
    # Platform roles are system roles: as sensitive here as through any other face.
    actor.require_elevation()


async def create_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, patch: EceUserPatch
) -> EceUserView:
    actor.require("system.users.create", SYSTEM_SCOPE)
    _check_restricted(patch)
    name = _check_user_name(patch.user_name or "")
    roles = system_roles_for(patch.roles or [])
    if roles:
        _check_role_change(actor, None)
    _check_email(patch.email)
    if patch.password is not None:
        passwords.validate(patch.password, name)
    if await users.find_by_username(db, name) is not None:
        raise EceConflict(
            "user.user_name.conflict", "the user name is already in use", ["user_name"]
        )
    user = await users.add_user(
        db,
        actor,
        name,
        users.UserFields(
            full_name=patch.full_name or "",
            email=patch.email or None,
            enabled=True if patch.enabled is None else patch.enabled,
        ),
    )
    if patch.password is not None:
        user.password_hash = await hasher.hash(patch.password)
    if roles:
        await set_system_roles(db, user.id, roles)
        await record(
            db,
            actor,
            "user.system_role.set",
            target_type="user",
            target_id=user.id,
            details={"roles": list(roles), "face": "ece"},
        )
    await db.flush()
    return EceUserView(user, roles)


def _check_modifiable(user: User) -> None:
    if user.builtin:
        raise EceInvalid("user.cannot_modify", "built-in users cannot be modified")
    if user.realm != "native" or user.idp_managed:
        raise EceInvalid("user.cannot_modify_external", "external users cannot be modified")


async def _apply(
    db: AsyncSession, hasher: Hasher, actor: Principal, user: User, patch: EceUserPatch
) -> EceUserView:
    _check_restricted(patch)
    view = await _view(db, user)
    if patch.user_name is not None and users.username_key(patch.user_name) != user.username_key:
        _check_modifiable(user)
        name = _check_user_name(patch.user_name)
        if await users.find_by_username(db, name) is not None:
            raise EceConflict(
                "user.user_name.conflict", "the user name is already in use", ["user_name"]
            )
        user.username, user.username_key = name, users.username_key(name)
    if patch.roles is not None or "roles" in patch.reset:
        roles = system_roles_for(patch.roles or [])
        if roles != view.roles:
            _check_modifiable(user)
            _check_role_change(actor, user.id)
            await set_system_roles(db, user.id, roles)
            await record(
                db,
                actor,
                "user.system_role.set",
                target_type="user",
                target_id=user.id,
                details={"roles": list(roles), "face": "ece"},
            )
            view.roles = roles
    if patch.enabled is not None and patch.enabled != user.enabled:
        _check_modifiable(user)
        if actor.user is not None and actor.user.id == user.id:
            raise EceInvalid("user.restricted_field", "you cannot disable yourself", ["enabled"])
        user.enabled = patch.enabled
    if patch.password is not None:
        _check_modifiable(user)
        passwords.validate(patch.password, user.username)
        user.password_hash = await hasher.hash(patch.password)
    _check_email(patch.email)
    if patch.full_name is not None or "full_name" in patch.reset:
        user.full_name = patch.full_name or ""
    if patch.email is not None or "email" in patch.reset:
        user.email = patch.email or None
    user.updated_at = utcnow()
    user.updated_by = actor.actor_id
    await db.flush()
    changed = sorted(
        name
        for name in ("user_name", "full_name", "email", "roles", "enabled", "password")
        if getattr(patch, name) is not None or name in patch.reset
    )
    await record(
        db,
        actor,
        "user.update",
        target_type="user",
        target_id=user.id,
        details={"changed": changed, "face": "ece"},
    )
    return view


async def update_current_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, patch: EceUserPatch
) -> EceUserView:
    """PATCH /user: your own name, e-mail and password (roles need an administrator)."""
    user = _own_user(actor)
    if patch.enabled is not None:
        raise EceInvalid(
            "user.restricted_field", "you cannot enable or disable yourself", ["enabled"]
        )
    view = await _apply(db, hasher, actor, user, patch)
    view.caller = actor
    return view


async def update_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, user_name: str, patch: EceUserPatch
) -> EceUserView:
    if not actor.can("system.users.get", SYSTEM_SCOPE):
        raise user_not_found()
    actor.require("system.users.update", SYSTEM_SCOPE)
    user = await _by_name(db, user_name)
    return await _apply(db, hasher, actor, user, patch)


async def delete_user(db: AsyncSession, actor: Principal, user_name: str) -> None:
    if not actor.can("system.users.get", SYSTEM_SCOPE):
        raise user_not_found()
    actor.require("system.users.delete", SYSTEM_SCOPE)
    actor.require_elevation()
    user = await _by_name(db, user_name)
    if user.builtin:
        raise EceInvalid("user.restricted_deletion", "built-in users cannot be deleted")
    if actor.user is not None and actor.user.id == user.id:
        raise EceInvalid("user.restricted_deletion", "you cannot delete yourself")
    if user.realm != "native" or user.idp_managed:
        raise EceInvalid("user.cannot_modify_external", "external users cannot be deleted")
    await users.delete_user(db, actor, user.id)


def permissions(view: EceUserView, operations: Mapping[str, str | None]) -> list[str]:
    """The operationIds (of `operations`: operationId → catalogue permission) the user may call,
    from what the union of the user's SYSTEM roles grants in the catalogue."""
    return sorted(op for op, perm in operations.items() if view.holds(perm))


class EceUnauthenticated(Unauthenticated, _Coded):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.ece_code = code


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
    """The realms users come from: native always, then every external realm in use."""
    actor.require("system.users.list", SYSTEM_SCOPE)
    rows = await db.execute(
        select(User.realm, User.realm_id).where(User.realm != "native").distinct()
    )
    external = {
        Realm(realm if realm in REALM_TYPES else "saml", realm_id or realm)
        for realm, realm_id in rows
    }
    return [Realm("native", "native"), *sorted(external, key=lambda r: (r.type, r.id))]

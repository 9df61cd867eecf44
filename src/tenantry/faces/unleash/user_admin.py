"""Unleash's user admin (/api/admin/user-admin) over the one directory: users addressed by
their `seq`, rootRole 1 Admin / 2 Editor / 3 Viewer stored as SYSTEM role bindings, and
Unleash's own validation rules and messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.authz.system_roles import grant_system_role, remove_system_role
from tenantry.db.models import RoleBinding, User
from tenantry.directory import accounts, users
from tenantry.directory.users import UserFields, looks_like_email
from tenantry.errors import FieldError, Forbidden, Invalid, NotFound
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash.dialect import ADMIN, EDITOR, ROOT_ROLES, SYSTEM_ROLE_OF, VIEWER
from tenantry.identity.passwords import Hasher, validate
from tenantry.identity.principals import Principal

ROOT_ROLE_NAMES = ("Admin", "Editor", "Viewer", "Owner", "Member", "Reader")
CREATE_FIELDS = frozenset({"username", "email", "name", "password", "rootRole", "sendEmail"})
UPDATE_FIELDS = frozenset({"email", "name", "rootRole"})
SEARCH_LIMIT = 100


@dataclass
class NeedsPermission(Forbidden):
    """403 naming the Unleash permissions that would have allowed it."""

    permissions: list[str] = field(default_factory=list)


def _require(actor: Principal, permission: str) -> None:
    if not actor.can(permission, SYSTEM_SCOPE):
        raise NeedsPermission(
            "You don't have the required permissions to perform this operation. To perform "
            'this action, you need the "ADMIN" permission.',
            permissions=["ADMIN"],
        )


@dataclass
class UnleashUser:
    user: User
    root_role: int


async def _root_roles(db: AsyncSession, user_ids: list[str]) -> dict[str, int]:
    rows = await db.execute(
        select(RoleBinding.subject_id, RoleBinding.role).where(
            RoleBinding.subject_type == "user",
            RoleBinding.scope_key == SYSTEM_SCOPE.key,
            RoleBinding.subject_id.in_(user_ids),
        )
    )
    # A user may hold several SYSTEM roles (ECE's combinations): the strongest decides.
    by_role = {"SYSTEM_ADMIN": ADMIN, "SYSTEM_EDITOR": EDITOR}
    found: dict[str, int] = {}
    for subject, role in rows.all():
        found[subject] = min(found.get(subject, VIEWER), by_role.get(role, VIEWER))
    return found


async def _with_roles(db: AsyncSession, found: list[User]) -> list[UnleashUser]:
    roles = await _root_roles(db, [u.id for u in found])
    return [UnleashUser(u, roles.get(u.id, VIEWER)) for u in found]


async def _by_seq(db: AsyncSession, seq: int) -> User:
    user = await db.scalar(select(User).where(User.seq == seq))
    if user is None:
        raise NotFound("No user found")
    return user


async def list_users(db: AsyncSession, actor: Principal) -> list[UnleashUser]:
    _require(actor, "system.users.list")
    found = list(await db.scalars(select(User).order_by(User.seq)))
    return await _with_roles(db, found)


async def search_users(db: AsyncSession, actor: Principal, q: str) -> list[UnleashUser]:
    _require(actor, "system.users.list")
    pattern = f"%{q.casefold()}%"
    found = await db.scalars(
        select(User)
        .where(
            or_(
                User.username_key.like(pattern),
                func.lower(User.full_name).like(pattern),
                func.lower(User.email).like(pattern),
            )
        )
        .order_by(User.seq)
        .limit(SEARCH_LIMIT)
    )
    return await _with_roles(db, list(found))


async def get_user(db: AsyncSession, actor: Principal, seq: int) -> UnleashUser:
    _require(actor, "system.users.get")
    user = await _by_seq(db, seq)
    return (await _with_roles(db, [user]))[0]


def _extra_properties(body: dict[str, Any], allowed: frozenset[str]) -> list[FieldError]:
    return [
        FieldError(
            f"/body/{key}",
            "additional",
            "The `/body` object of the request body does not allow additional properties. "
            f"Your request included the `/body/{key}` property.",
        )
        for key in body
        if key not in allowed
    ]


def _root_role_errors(value: Any) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [] if value >= 0 else [FieldError("/body/rootRole", "minimum", "must be >= 0")]
    if isinstance(value, str) and value in ROOT_ROLE_NAMES:
        return []
    allowed = ", ".join(f'"{n}"' for n in ROOT_ROLE_NAMES)
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return [
        FieldError(
            "/body/rootRole",
            "type",
            f"The `/body/rootRole` property must be integer. You sent {shown}.",
        ),
        FieldError(
            "rootRole",
            "enum",
            f"The `rootRole` property must be equal to one of the allowed values: {allowed}. "
            f"You provided {shown}, which is not valid. Please use one of the allowed values "
            "instead..",
        ),
        FieldError(
            "/body/rootRole",
            "oneOf",
            'The "/body/rootRole" property must match exactly one schema in oneOf. The data '
            "you provided matches more than one option in the schema. These options are "
            "mutually exclusive. Please refer back to the schema and remove any excess "
            "properties.",
        ),
    ]


def _string_errors(body: dict[str, Any], names: tuple[str, ...]) -> list[FieldError]:
    return [
        FieldError(
            f"/body/{name}",
            "type",
            f"The `/body/{name}` property must be string. You sent {body[name]!r}.",
        )
        for name in names
        if name in body and not isinstance(body[name], str)
    ]


def _root_role(value: Any) -> int:
    """A known root role by id or name ("Owner"/"Member"/"Reader" are Unleash's project roles
    and cannot be a root role)."""
    if isinstance(value, int) and value in ROOT_ROLES:
        return value
    for role, (name, _) in ROOT_ROLES.items():
        if value == name:
            return role
    raise Invalid("Could not find rootRole")


def _email_error(email: str) -> Invalid:
    return Invalid(
        "invalid email",
        [FieldError("", "invalid", f'"value" must be a valid email. You provided "{email}".')],
    )


def _require_role_change(actor: Principal) -> None:
    """Giving a root role above Viewer, or changing one, is a system-role change: it needs
    the same right (and elevation, when the instance demands it) as the native face's."""
    _require(actor, "system.users.roles.update")
    actor.require_elevation()


async def _set_root_role(db: AsyncSession, user: User, role: int) -> None:
    system_role = SYSTEM_ROLE_OF.get(role)
    if system_role is None:
        await remove_system_role(db, user.id)
    else:
        await grant_system_role(db, user.id, system_role)
    await db.flush()


@dataclass
class Created:
    user: User
    root_role: int | str  # echoed as sent, as Unleash does


async def create_user(
    db: AsyncSession, hasher: Hasher, actor: Principal, body: dict[str, Any]
) -> Created:
    _require(actor, "system.users.create")
    problems = _extra_properties(body, CREATE_FIELDS)
    if "rootRole" not in body:
        problems.append(
            FieldError(
                "/body/rootRole",
                "required",
                "The `/body/rootRole` property is required. It was not present on the data "
                "you sent.",
            )
        )
    else:
        problems += _root_role_errors(body["rootRole"])
    problems += _string_errors(body, ("username", "email", "name", "password"))
    if "sendEmail" in body and not isinstance(body["sendEmail"], bool):
        problems.append(FieldError("/body/sendEmail", "type", "must be boolean"))
    if problems:
        raise Invalid("invalid body", problems)
    email = (body.get("email") or "").strip()
    username = (body.get("username") or "").strip()
    if not email and not username:
        raise Invalid("You must specify username or email")
    if email and not looks_like_email(email):
        raise _email_error(email)
    role = _root_role(body["rootRole"])
    if role != VIEWER:
        _require_role_change(actor)
    login = username or email
    if body.get("password"):
        validate(body["password"], login)
    clash = await users.find_by_username(db, login)
    if clash is None and email:
        clash = await db.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if clash is not None:
        raise Invalid("User already exists")
    user = await users.add_user(
        db, actor, login, UserFields(full_name=body.get("name") or "", email=email or None)
    )
    if not email:
        user.email = None
    await _set_root_role(db, user, role)
    if body.get("password"):
        user.password_hash = await hasher.hash(body["password"])
    await record(
        db,
        actor,
        "user.system_role.grant",
        target_type="user",
        target_id=user.id,
        details={"role": SYSTEM_ROLE_OF.get(role), "face": "unleash"},
    )
    return Created(user, body["rootRole"])


async def update_user(
    db: AsyncSession, actor: Principal, seq: int, body: dict[str, Any]
) -> UnleashUser:
    _require(actor, "system.users.update")
    problems = _extra_properties(body, UPDATE_FIELDS)
    problems += _string_errors(body, ("email", "name"))
    if "rootRole" in body:
        problems += _root_role_errors(body["rootRole"])
    if problems:
        raise Invalid("invalid body", problems)
    target = await _by_seq(db, seq)
    role = _root_role(body["rootRole"]) if "rootRole" in body else None
    if role is not None:
        _require_role_change(actor)
        if actor.user is not None and actor.user.id == target.id:
            raise Invalid("You cannot change your own root role")
    email = body.get("email")
    if email is not None and email and not looks_like_email(email):
        raise _email_error(email)
    user = await users.update_user(
        db, actor, target.id, UserFields(full_name=body.get("name"), email=email or None)
    )
    if role is not None:
        await _set_root_role(db, user, role)
        await record(
            db,
            actor,
            "user.system_role.grant",
            target_type="user",
            target_id=user.id,
            details={"role": SYSTEM_ROLE_OF.get(role), "face": "unleash"},
        )
    return (await _with_roles(db, [user]))[0]


async def delete_user(db: AsyncSession, actor: Principal, seq: int) -> None:
    _require(actor, "system.users.delete")
    user = await _by_seq(db, seq)
    await users.delete_user(db, actor, user.id)


async def user_id_of(db: AsyncSession, actor: Principal, seq: int) -> str:
    _require(actor, "system.users.get")
    return (await _by_seq(db, seq)).id


def _password_of(body: dict[str, Any], name: str = "password") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise Invalid(
            "invalid body",
            [
                FieldError(
                    f"/body/{name}",
                    "required",
                    f"The `/body/{name}` property is required. It was not present on the data "
                    "you sent.",
                )
            ],
        )
    return value


async def set_password(
    db: AsyncSession, hasher: Hasher, actor: Principal, seq: int, body: dict[str, Any]
) -> None:
    """An administrator sets another user's password (POST /user-admin/{id}/change-password)."""
    _require(actor, "system.users.update")
    password = _password_of(body)
    user = await _by_seq(db, seq)
    await accounts.set_password(db, hasher, actor, user.id, password)


async def change_own_password(
    db: AsyncSession, hasher: Hasher, actor: Principal, body: dict[str, Any]
) -> None:
    """POST /user/change-password: {password, confirmPassword, oldPassword}."""
    if actor.user is None:
        raise Invalid("User id is missing in request user object")
    password = _password_of(body)
    confirm = _password_of(body, "confirmPassword")
    if password != confirm:
        raise Invalid("Passwords must match")
    old = body.get("oldPassword")
    await accounts.set_password(
        db, hasher, actor, actor.user.id, password, old if isinstance(old, str) else None
    )


def validate_password(actor: Principal, body: dict[str, Any]) -> None:
    """POST /user-admin/validate-password: the instance's password policy, nothing stored."""
    _require(actor, "system.users.list")
    validate(_password_of(body))


async def access_overview(
    db: AsyncSession, actor: Principal, seq: int, project: str | None = None
) -> unleash_me.AccessOverview:
    _require(actor, "system.users.get")
    return await unleash_me.access_overview(db, actor, await _by_seq(db, seq), project)

"""System-level user administration: create, read, update, delete users of the instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.bindings import drop_user_subjects
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.clock import utcnow
from tenantry.db.models import Membership, Token, User
from tenantry.db.paging import Page, check_window
from tenantry.directory.organizations import adjust_member_count
from tenantry.errors import Conflict, FieldError, Invalid, Unchangeable
from tenantry.identity import names
from tenantry.identity.lookup import find_by_username as find_by_username
from tenantry.identity.lookup import get_by_id as get_by_id
from tenantry.identity.lookup import set_verified_email
from tenantry.identity.names import looks_like_email as looks_like_email
from tenantry.identity.names import username_key as username_key
from tenantry.identity.principals import Principal
from tenantry.identity.scim_tokens import provisioning_organization
from tenantry.identity.tokens import TokenKind
from tenantry.ids import new_id

USER_STATUSES = ("ACTIVE", "INACTIVE", "PENDING", "BANNED")


def _validate_username(username: str) -> str:
    """identity.names decides (look-alikes, invisible characters, one mailbox)."""
    return names.check_username(username)


@dataclass
class UserFields:
    """What a caller may set on a user; None means "leave as is"."""

    full_name: str | None = None
    avatar_url: str | None = None
    email: str | None = None
    status: str | None = None
    enabled: bool | None = None
    username: str | None = None  # a rename (update_user only)


_FIELDS = ("full_name", "avatar_url", "email", "status", "enabled")


def _apply(user: User, fields: UserFields, *, email_verified: bool) -> None:
    """`email_verified`: whether an address set here counts as proven (an operator's word).
    Everything is checked before anything is written."""
    if fields.status is not None and fields.status not in USER_STATUSES:
        raise Invalid("invalid status", [FieldError("status", "invalid", "unknown status")])
    email = names.check_email(fields.email).text if fields.email else fields.email
    for name in ("full_name", "avatar_url", "status", "enabled"):
        value = getattr(fields, name)
        if value is not None:
            setattr(user, name, value)
    if email is None:
        return
    if not email:
        user.email = None
    elif email_verified:
        set_verified_email(user, email)
    else:
        user.email = email


def _operator(actor: Principal) -> bool:
    """Someone who may create users asserts the addresses they give (as Keycloak's admins do)."""
    return actor.can("system.users.create", SYSTEM_SCOPE)


async def add_user(
    db: AsyncSession,
    actor: Principal,
    username: str,
    fields: UserFields | None = None,
    *,
    email_from_username: bool = True,
    email_verified: bool | None = None,
    login_name: bool = True,
    name_checked: bool = False,
) -> User:
    """Insert a user (no permission check: callers are use cases that did theirs). The e-mail
    (the username when it is an address and `email_from_username`, or `fields.email`) is
    verified when `email_verified` says so, by default when the actor is an operator (may
    create users); an invite's pending account passes False: its address is proven only when
    the invite is accepted. `login_name=False`: the account's username is shown but reaches it
    through no look-up or sign-in (see directory.invites). `name_checked`: the caller has just
    looked the name up and found it free (the unique index still refuses a race)."""
    name = _validate_username(username)
    if login_name and not name_checked and await find_by_username(db, name) is not None:
        raise Conflict(
            "a user with this username already exists",
            [FieldError("username", "conflict", "already taken")],
        )
    verified = _operator(actor) if email_verified is None else email_verified
    now = utcnow()
    user_id = new_id()
    user = User(
        id=user_id,
        username=name,
        username_key=username_key(name) if login_name else names.unreachable_key(user_id),
        created_at=now,
        updated_at=now,
        created_by=actor.actor_id,
        updated_by=actor.actor_id,
        attributes={},
    )
    fields = fields or UserFields()
    if fields.email is None and email_from_username and "@" in name:
        fields = replace(fields, email=name)
    _apply(user, fields, email_verified=verified)
    db.add(user)
    await db.flush()
    await record(db, actor, "user.create", target_type="user", target_id=user.id)
    return user


async def create_user(
    db: AsyncSession,
    actor: Principal,
    username: str,
    fields: UserFields | None = None,
    *,
    email_from_username: bool = True,
) -> User:
    """A user without a password or roles (accounts.create_user adds those, then calls this)."""
    actor.require("system.users.create", SYSTEM_SCOPE)
    return await add_user(db, actor, username, fields, email_from_username=email_from_username)


async def get_user(db: AsyncSession, actor: Principal, user_id: str) -> User:
    if actor.user is not None and actor.user.id == user_id:
        return actor.user
    actor.require_visible("system.users.get", SYSTEM_SCOPE, "user")
    return await get_by_id(db, user_id)


async def list_users(
    db: AsyncSession,
    actor: Principal,
    *,
    offset: int = 0,
    limit: int = 20,
    search: str = "",
    enabled: bool | None = None,
) -> Page[User]:
    """Users by username; `enabled` True or False: only the enabled or disabled ones."""
    actor.require("system.users.list", SYSTEM_SCOPE)
    check_window(offset, limit)
    query = select(User)
    if enabled is not None:
        query = query.where(User.enabled.is_(enabled))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(User.username_key.like(pattern), func.lower(User.full_name).like(pattern))
        )
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(query.order_by(User.username_key).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


def _like_prefix(text: str) -> str:
    """`text` as the start of a LIKE pattern, its wildcards taken literally (escape `\\`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def visible_organizations(actor: Principal) -> list[str]:
    """The organizations whose members the caller may list (`organization.users.list`)."""
    return sorted(
        org
        for org in actor.grants.organization_ids()
        if actor.can("organization.users.list", scopes.organization(org))
    )


def _visible_to(actor: Principal, query: Select[Any]) -> Select[Any]:
    """`query` narrowed to the users the caller could list anyway: everyone to a caller with
    `system.users.search` or `system.users.list`; to anyone else the members of the
    organizations whose members they may list (`organization.users.list`, which every member
    holds), and themselves."""
    if actor.can("system.users.search", SYSTEM_SCOPE) or actor.can(
        "system.users.list", SYSTEM_SCOPE
    ):
        return query
    fellows = select(Membership.user_id).where(
        Membership.organization_id.in_(visible_organizations(actor))
    )
    own = [actor.user.id] if actor.user is not None else []
    return query.where(or_(User.id.in_(fellows), User.id.in_(own)))


async def search_users(
    db: AsyncSession, actor: Principal, text: str, *, limit: int = 100
) -> list[User]:
    """A people search any signed-in caller may run: users whose full name contains `text`,
    or whose username or e-mail address starts with it (case-insensitive, wildcards taken
    literally), by `seq`, at most `limit`, among the users the caller could list anyway
    (`_visible_to`). Another tenant's users are never found, whatever `text` says."""
    lowered = text.lower()
    start = _like_prefix(lowered) + "%"
    query = select(User).where(
        or_(
            func.lower(User.full_name).like("%" + start, escape="\\"),
            User.username_key.like(start, escape="\\"),
            func.lower(User.email).like(start, escape="\\"),
        )
    )
    return list(await db.scalars(_visible_to(actor, query).order_by(User.seq).limit(limit)))


async def visible_users(db: AsyncSession, actor: Principal) -> list[User]:
    """Every user the caller could list anyway (`_visible_to`), by `seq`: a people picker's
    list, for any signed-in caller."""
    return list(await db.scalars(_visible_to(actor, select(User)).order_by(User.seq)))


def _inactive(since: datetime) -> Select[Any, Any]:
    last_token_use = (
        select(func.max(Token.last_used_at))
        .where(Token.user_id == User.id, Token.kind == TokenKind.PERSONAL.value)
        .scalar_subquery()
    )
    recent_tokens = select(Token.user_id).where(
        Token.user_id.is_not(None),
        Token.kind == TokenKind.PERSONAL.value,
        Token.last_used_at >= since,
    )
    return select(User, last_token_use).where(
        User.builtin.is_(False),
        User.account_type == "User",
        or_(User.seen_at.is_(None), User.seen_at < since),
        User.created_at < since,
        User.id.not_in(recent_tokens),
    )


async def inactive_users(
    db: AsyncSession, actor: Principal, days: int
) -> list[tuple[User, datetime | None]]:
    """Users (not built-in, not service accounts) who have neither signed in nor used a
    personal token for `days` days and were created before that (`system.users.list`), by
    `seq`, each with their personal tokens' last use."""
    actor.require("system.users.list", SYSTEM_SCOPE)
    rows = await db.execute(_inactive(utcnow() - timedelta(days=days)).order_by(User.seq))
    return [(user, used) for user, used in rows]


async def delete_inactive_users(
    db: AsyncSession, actor: Principal, user_ids: list[str], days: int
) -> list[str]:
    """Delete those of `user_ids` that are inactive (see inactive_users) now, each by
    delete_user with all its guards; an active, unknown or built-in user, or yourself, is left
    as it is. The ids deleted."""
    actor.require("system.users.delete", SYSTEM_SCOPE)
    since = utcnow() - timedelta(days=days)
    own = actor.user.id if actor.user is not None else None
    found = await db.execute(_inactive(since).where(User.id.in_(user_ids)).order_by(User.seq))
    deleted = []
    for user, _ in list(found):
        if user.id != own:
            await delete_user(db, actor, user.id)
            deleted.append(user.id)
    return deleted


async def update_user(db: AsyncSession, actor: Principal, user_id: str, fields: UserFields) -> User:
    """An administrator changes a user (`system.users.update`): one `user.update` event with
    each changed field's value before and after, whichever face asked. An e-mail set here is
    verified: the operator asserts it (as a Keycloak administrator can); self-service changes
    go through directory.email_change."""
    actor.require("system.users.update", SYSTEM_SCOPE)
    user = await get_by_id(db, user_id)
    return await change_user(db, actor, user, fields)


async def change_user(
    db: AsyncSession,
    actor: Principal,
    user: User,
    fields: UserFields,
    *,
    email_verified: bool = True,
) -> User:
    """Apply `fields` to a user the caller may change (checked by the caller's use case).
    `email_verified`: whether an address set here counts as proven (an operator's word; an
    identity provider's is not, directory.provisioning)."""
    if user.builtin:
        raise Unchangeable("built-in users cannot be modified", reason="builtin")
    _check_owned_here(actor, user, fields)
    if fields.enabled is False and actor.user is not None and actor.user.id == user.id:
        raise Unchangeable("you cannot disable yourself", reason="self")
    before = {name: getattr(user, name) for name in (*_FIELDS, "username")}
    address_key = user.email_key
    if fields.username is not None:
        await _rename(db, user, fields.username)
    _apply(user, fields, email_verified=email_verified)
    if fields.username is None and email_verified:  # an unproven address moves no login
        await follow_address(db, user, address_key)
    user.updated_at = utcnow()
    user.updated_by = actor.actor_id
    await db.flush()
    changed = {n: [before[n], getattr(user, n)] for n in before if before[n] != getattr(user, n)}
    if changed:
        await record(
            db,
            actor,
            "user.update",
            target_type="user",
            target_id=user.id,
            details={"changed": changed},
        )
    return user


def _check_owned_here(actor: Principal, user: User, fields: UserFields) -> None:
    """An identity provider owns an external user's login name, name, e-mail address and
    whether it may sign in: only the identity provider of the organization that manages the
    account (its SCIM token) changes them; every other caller, through any face, is refused."""
    external = user.realm != "native" or user.idp_managed
    if not external or (
        user.managed_by_organization_id is not None
        and provisioning_organization(actor) == user.managed_by_organization_id
    ):
        return
    renamed = fields.username is not None and username_key(fields.username) != user.username_key
    changed = [
        name
        for name in ("full_name", "email", "enabled")
        if getattr(fields, name) is not None and getattr(fields, name) != getattr(user, name)
    ]
    if renamed or changed:
        raise Unchangeable("external users cannot be modified", reason="external")


async def follow_address(
    db: AsyncSession, user: User, previous_key: str | None, *, refuse_taken: bool = True
) -> bool:
    """A login name that is the account's address follows the address: when the address
    changes (an operator's update, or a confirmed self-service change: never a mere
    assertion) and the login name was that very mailbox (the username an account gets when
    none is given), the account signs in with the new address from then on, and the old one
    is free for another account. An identity provider's account keeps the name it owns.
    When the new address is another account's login name, an operator's change is refused
    (Conflict on `username`); a confirmed link, whose mailbox has answered, keeps the old
    login name instead (an invite's pending account may hold the new one, see
    directory.invites). True if renamed."""
    if previous_key is None or user.email is None or user.email_key == previous_key:
        return False
    if user.username_key != previous_key or user.realm != "native" or user.idp_managed:
        return False
    if not refuse_taken and await find_by_username(db, user.email) is not None:
        return False
    await _rename(db, user, user.email)
    return True


async def _rename(db: AsyncSession, user: User, username: str) -> None:
    name = _validate_username(username)
    if username_key(name) == user.username_key:
        user.username = name
        return
    if await find_by_username(db, name) is not None:
        raise Conflict(
            "a user with this username already exists",
            [FieldError("username", "conflict", "already taken")],
        )
    user.username, user.username_key = name, username_key(name)


async def set_own_attributes(
    db: AsyncSession,
    actor: Principal,
    namespace: str,
    value: dict[str, Any],
    *,
    what: Mapping[str, str] | None = None,
) -> User:
    """Keep a face's own per-user state (e.g. which of its screens the user has seen) in
    `User.attributes[namespace]`, for yourself only: audited as `user.attributes.set` with the
    namespace and `what` the face says changed (names, not values)."""
    user = actor.user
    if user is None:
        raise Unchangeable("this credential does not belong to a user", reason="self")
    # A new dict, so that the JSON column is seen as changed.
    user.attributes = {**(user.attributes or {}), namespace: value}
    await db.flush()
    await record(
        db,
        actor,
        "user.attributes.set",
        target_type="user",
        target_id=user.id,
        details={"namespace": namespace, **(what or {})},
    )
    return user


async def delete_user(db: AsyncSession, actor: Principal, user_id: str) -> None:
    actor.require("system.users.delete", SYSTEM_SCOPE)
    actor.require_elevation()
    user = await get_by_id(db, user_id)
    if user.builtin:
        raise Unchangeable("built-in users cannot be deleted", reason="builtin")
    if actor.user is not None and actor.user.id == user.id:
        raise Unchangeable("you cannot delete yourself", reason="self")
    if user.realm != "native" or user.idp_managed:
        raise Unchangeable("external users cannot be deleted", reason="external")
    await remove_account(db, actor, user)


async def remove_account(db: AsyncSession, actor: Principal, user: User) -> None:
    """Delete an account the caller may delete (checked by the caller's use case): its
    memberships (member counts kept exact), bindings, tokens and the row."""
    user_id = user.id
    await _leave_organizations(db, user_id)
    await drop_user_subjects(db, user_id)
    await db.delete(user)
    await db.flush()
    await record(db, actor, "user.delete", target_type="user", target_id=user_id)


async def _leave_organizations(db: AsyncSession, user_id: str) -> None:
    """Keep organizations' member counts exact when a user disappears."""
    org_ids = await db.scalars(
        select(Membership.organization_id).where(Membership.user_id == user_id)
    )
    for org_id in list(org_ids):
        await adjust_member_count(db, org_id, -1)

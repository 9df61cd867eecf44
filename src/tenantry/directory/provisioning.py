"""Provisioning: an organization's identity provider creates, changes and removes the accounts
it manages, and the teams it keeps of them (the SCIM face calls these; the rules are here).

Who: the caller is the organization's SCIM token (identity/scim_tokens.py), which holds
`organization.scim.provision` at its organization and nowhere else; every use case checks it.

What the token sees: only the accounts its organization *manages* (`managed_by_organization_id`,
set when it provisioned them) and the teams it made (`is_idp_managed`). An account of anyone
else, in the organization or not, is "not found" exactly as a made-up id, is never matched by
a filter, and a new account whose login name another account holds is refused with one
uniqueness conflict that says nothing of whose (the anchor failure: GHSA-9m7q-6qg6-888h).
The one exception is *adoption* (`adoptable`): a create naming a member of the organization
whose verified address is in a domain the organization has verified (directory/domains.py)
links that account instead, which from then on is managed like a provisioned one.

A provisioned account: realm `scim` (realm id: the organization), `idp_managed`, a member of the
organization with the token's default role, its address *not* verified (an identity provider's
word proves no mailbox to other organizations: invites never bind to it). Its identity
provider owns its login name, name, address and whether it may sign in; the other faces refuse
to change them (users.change_user). Deactivating it (`active` false) or deleting it ends every
session and personal token of the user in the same transaction; the commit moves the user's
cache scope on every worker (db/engine.py), so no cached answer outlives it.

`profile`: what the face keeps of the resource beyond the directory's own fields, as it likes
(User.attributes["provisioned"]); the directory stores it and never reads it.

Versions: `version_of` is a weak validator of a user's or team's state (its last change); a
use case given `if_version` refuses with PreconditionFailed when the object moved on.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, exists, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes, system_roles
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import user_scope
from tenantry.db.models import Membership, Team, TeamMember, Token, TokenKind, User
from tenantry.db.paging import Page
from tenantry.directory import domains, organizations, teams, users
from tenantry.directory.predicates import Column, Field, Predicate, compile_predicate
from tenantry.directory.users import UserFields
from tenantry.errors import Conflict, FieldError, Invalid, NotFound, PreconditionFailed
from tenantry.identity import names
from tenantry.identity.principals import Principal
from tenantry.identity.scim_tokens import organization_of

PROFILE = "provisioned"
REALM = "scim"
MAX_PAGE = 1000
MAX_MEMBERS = 100_000
TAKEN = "this userName is not available"
_NOT_FOUND = "user not found"


@dataclass(frozen=True)
class ProvisionedUser:
    """Everything the identity provider says of an account (a full replacement)."""

    username: str
    full_name: str = ""
    email: str | None = None
    active: bool = True
    external_id: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)


def version_of(obj: Any) -> str:
    """A weak validator of a user's or team's state: its last change, in microseconds."""
    moment: datetime = obj.updated_at
    return format(int(moment.timestamp() * 1_000_000), "x")


def check_version(obj: Any, if_version: Sequence[str] | None) -> None:
    """PreconditionFailed unless `if_version` is None, holds "*" or the current version."""
    if if_version is None or "*" in if_version:
        return
    if version_of(obj) not in if_version:
        raise PreconditionFailed("the resource has changed since that version")


def _guard(actor: Principal) -> str:
    org_id = organization_of(actor)
    actor.require("organization.scim.provision", scopes.organization(org_id))
    return org_id


async def _owned(db: AsyncSession, org_id: str, user_id: str, *, lock: bool = False) -> User:
    query = select(User).where(User.id == user_id, User.managed_by_organization_id == org_id)
    found = await db.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(_NOT_FOUND)
    return found


def _name_key(text: str) -> str | None:
    """The key a login name or address is compared by (identity.names): the whole key for a
    whole name; for part of one (`sw "Alice"`) the same folding, without an address's
    domain rules. None (matches nothing) for text no key holds."""
    key = names.username_key(text)
    if key:
        return key
    return None if text.strip() else unicodedata.normalize("NFKC", text).lower()


def _in_group(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Some team of the account's organization that its identity provider keeps (a SCIM
    Group) has the account as a member and meets `condition`."""
    return exists().where(
        TeamMember.user_id == User.id,
        Team.id == TeamMember.team_id,
        Team.organization_id == User.managed_by_organization_id,
        Team.is_idp_managed.is_(True),
        condition,
    )


# The fields a search of accounts may name, and where each is (directory/predicates). Login
# names and addresses compare by their keys, folded in Python: SQLite's lower() folds ASCII
# only. The organization condition is never part of it: list_users ANDs it outside.
USER_FIELDS: dict[str, Column | Field] = {
    "id": Field(User.id, case_exact=True),
    "username": Field(User.username_key, key=_name_key),
    "email": Field(User.email_key, key=_name_key),
    "external_id": Field(User.external_id, case_exact=True),
    "full_name": User.full_name,
    "enabled": User.enabled,
    "created_at": User.created_at,
    "updated_at": User.updated_at,
    "group": Field(TeamMember.team_id, case_exact=True, exists=_in_group),
}


def _has_member(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(TeamMember.team_id == Team.id, condition)


GROUP_FIELDS: dict[str, Column | Field] = {
    "id": Field(Team.id, case_exact=True),
    "name": Team.name,
    "external_id": Field(Team.external_id, case_exact=True),
    "member": Field(TeamMember.user_id, case_exact=True, exists=_has_member),
    "created_at": Team.created_at,
    "updated_at": Team.updated_at,
}


@dataclass(frozen=True)
class Order:
    """A search's order: one of USER_ORDERS' (GROUP_ORDERS') fields, ascending unless said."""

    field: str
    descending: bool = False


# What a search may be ordered by. Text compares case-insensitively (by its key, or lower()),
# external ids as written; ties, and a search without an order, go oldest first.
USER_ORDERS: dict[str, Column] = {
    "id": User.id,
    "username": User.username_key,
    "email": User.email_key,
    "full_name": func.lower(User.full_name),
    "family_name": func.lower(User.attributes[(PROFILE, "name", "familyName")].as_string()),
    "external_id": User.external_id,
    "created_at": User.created_at,
    "updated_at": User.updated_at,
}
GROUP_ORDERS: dict[str, Column] = {
    "id": Team.id,
    "name": func.lower(Team.name),
    "external_id": Team.external_id,
    "created_at": Team.created_at,
    "updated_at": Team.updated_at,
}


def _ordered(
    query: Select[Any],
    order: Order | None,
    orders: dict[str, Column],
    tie: tuple[Column, ...],
) -> Select[Any]:
    """`query` in `order`; a record without a value comes last ascending and first
    descending (RFC 7644 §3.4.2.3), alike on both databases (they differ on NULLs)."""
    if order is None:
        return query.order_by(*tie)
    column = orders.get(order.field)
    if column is None:
        raise Invalid(
            f"cannot order by {order.field}", [FieldError("sortBy", "invalid", "not sortable")]
        )
    empty: ColumnElement[bool] = column.is_(None)
    if isinstance(column.type, String):
        empty = or_(empty, column == "")  # an unset name or address is stored as ""
    missing = case((empty, 1), else_=0)
    if order.descending:
        return query.order_by(missing.desc(), column.desc(), *tie)
    return query.order_by(missing, column, *tie)


# --- users -------------------------------------------------------------------------------------


async def get_user(db: AsyncSession, actor: Principal, user_id: str) -> User:
    return await _owned(db, _guard(actor), user_id)


async def list_users(
    db: AsyncSession,
    actor: Principal,
    where: Predicate | None = None,
    *,
    offset: int = 0,
    limit: int = 100,
    order: Order | None = None,
) -> Page[User]:
    """The organization's managed accounts matching `where` (over USER_FIELDS; an
    InvalidPredicate for a condition they cannot answer), in `order` (over USER_ORDERS;
    Invalid for another field), else oldest first; the total is exact.
    The organization's condition is ANDed outside `where`: nothing in it reaches further."""
    org_id = _guard(actor)
    limit = max(0, min(limit, MAX_PAGE))
    condition = true() if where is None else compile_predicate(where, USER_FIELDS)
    query = select(User).where(User.managed_by_organization_id == org_id).where(condition)
    rows: list[User] = []
    if limit:
        ordered = _ordered(query, order, USER_ORDERS, (User.created_at, User.id))
        rows = list(await db.scalars(ordered.offset(offset).limit(limit)))
    return Page(rows, await _total(db, query, rows, offset, limit), offset, limit)


async def _total(
    db: AsyncSession, query: Select[Any], rows: Sequence[Any], offset: int, limit: int
) -> int:
    """How many rows `query` matches in all, given the page it gave. A short page that starts
    at the first row or holds rows ends the result: the total is known without counting (the
    identity provider's `userName eq` before every create needs one statement, not two)."""
    if limit and len(rows) < limit and (rows or offset == 0):
        return offset + len(rows)
    return await db.scalar(select(func.count()).select_from(query.subquery())) or 0


async def groups_of(
    db: AsyncSession, actor: Principal, user_ids: Sequence[str]
) -> dict[str, list[Team]]:
    """The organization's IdP teams (its SCIM Groups) each of the accounts is a member of,
    by name; an account the organization does not manage has none here."""
    org_id = _guard(actor)
    found: dict[str, list[Team]] = {u: [] for u in user_ids}
    if user_ids:
        rows = await db.execute(
            select(TeamMember.user_id, Team)
            .join(Team, Team.id == TeamMember.team_id)
            .join(User, User.id == TeamMember.user_id)
            .where(
                TeamMember.user_id.in_(list(user_ids)),
                User.managed_by_organization_id == org_id,
                Team.organization_id == org_id,
                Team.is_idp_managed.is_(True),
            )
            .order_by(Team.name, Team.id)
        )
        for user_id, team in rows:
            found[user_id].append(team)
    return found


async def _ensure_name_free(db: AsyncSession, username: str, except_id: str | None) -> str:
    name = names.check_username(username)
    holder = await users.find_by_username(db, name)
    if holder is not None and holder.id != except_id:
        raise _taken()
    return name


def _taken() -> Conflict:
    # Whose, and whether inside the organization, is not the identity provider's to learn.
    return Conflict(TAKEN, [FieldError("username", "uniqueness", TAKEN)])


async def create_user(db: AsyncSession, actor: Principal, new: ProvisionedUser) -> User:
    """A new managed account, or an existing one adopted (`adoptable`): then the same id."""
    org_id = _guard(actor)
    token = actor.token
    assert token is not None
    holder = await users.find_by_username(db, new.username)  # the one look-up of the name
    found = await adoptable(db, org_id, new, holder)
    if found is not None:
        return await _adopt(db, actor, org_id, *found, new)
    if holder is not None:
        raise _taken()
    fields = UserFields(full_name=new.full_name, email=new.email or "", enabled=new.active)
    user = await users.add_user(
        db,
        actor,
        new.username,
        fields,
        email_from_username=False,
        email_verified=False,
        name_checked=True,  # free a moment ago; the unique index settles a race (409)
    )
    user.realm, user.realm_id, user.idp_managed = REALM, org_id, True
    user.managed_by_organization_id = org_id
    user.primary_organization_id = org_id
    user.external_id = new.external_id
    user.attributes = {PROFILE: new.profile}
    role = token.default_role or "ORGANIZATION_MEMBER"
    await organizations.add_member(db, org_id, user.id, role)
    await record(
        db,
        actor,
        "organization.user.provision",
        target_type="user",
        target_id=user.id,
        organization_id=org_id,
        details={"role": role},
    )
    return user


# --- adoption: an existing account the organization owns by its verified domain -----------


async def adoptable(
    db: AsyncSession, org_id: str, new: ProvisionedUser, holder: User | None
) -> tuple[User, str] | None:
    """The existing account a create of `new` links instead of refusing, and what matched
    ("userName" or "email"); None: none (a new account, or the uniqueness refusal as ever).

    The account holding `new`'s login name, or else the one account whose address is `new`'s
    e-mail, is adopted only when its *verified* address is one `new` names, lies in a domain
    the organization has verified (directory.domains), it is a member of the organization, no
    organization manages it yet, and it is neither built in nor holds a SYSTEM role (the
    instance's operators are no organization's to manage). Anything else reads as before: an
    account outside the organization is never matched (GHSA-9m7q-6qg6-888h). `holder`: the
    account holding `new`'s login name (the caller looked it up), or None."""
    if holder is not None:
        return (holder, "userName") if await _may_adopt(db, org_id, holder, new) else None
    key = names.email_key(new.email)
    if key is None:
        return None
    candidates = list(
        await db.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(
                User.email_key == key,
                User.email_verified.is_(True),
                User.managed_by_organization_id.is_(None),
                Membership.organization_id == org_id,
            )
            .limit(2)
        )
    )
    # Two accounts of one verified mailbox: which one is the employee's is not ours to guess.
    if len(candidates) == 1 and await _may_adopt(db, org_id, candidates[0], new):
        return candidates[0], "email"
    return None


async def _may_adopt(db: AsyncSession, org_id: str, user: User, new: ProvisionedUser) -> bool:
    named = {names.username_key(new.username), names.email_key(new.email)}
    if user.managed_by_organization_id is not None or user.builtin or not user.email_verified:
        return False
    if user.email_key is None or user.email_key not in named:
        return False
    if not await domains.in_verified_domain(db, org_id, user.email_key):
        return False
    if not await organizations.is_member(db, org_id, user.id):
        return False
    return not await system_roles.holds_any(db, user.id)


async def _adopt(
    db: AsyncSession, actor: Principal, org_id: str, user: User, matched: str, new: ProvisionedUser
) -> User:
    """Link the account to the organization's identity provider, then apply what it says of
    it (as a full replacement: update_user, which also ends its credentials when inactive)."""
    user.realm, user.realm_id, user.idp_managed = REALM, org_id, True
    user.managed_by_organization_id = org_id
    user.primary_organization_id = user.primary_organization_id or org_id
    await db.flush()
    await record(
        db,
        actor,
        "organization.user.adopt",
        target_type="user",
        target_id=user.id,
        organization_id=org_id,
        details={"matched": matched},
    )
    return await update_user(db, actor, user.id, lambda _: new)


async def replace_user(
    db: AsyncSession,
    actor: Principal,
    user_id: str,
    new: ProvisionedUser,
    *,
    if_version: Sequence[str] | None = None,
) -> User:
    """Everything the identity provider owns of the account, as `new` says."""
    return await update_user(db, actor, user_id, lambda _: new, if_version=if_version)


async def update_user(
    db: AsyncSession,
    actor: Principal,
    user_id: str,
    change: Callable[[User], ProvisionedUser],
    *,
    if_version: Sequence[str] | None = None,
) -> User:
    """The account as `change` says from its current state (a partial update, such as a
    SCIM PATCH, that the caller works out), read under the account's row lock so that two
    updates never both start from the same state; `change` may raise to refuse."""
    org_id = _guard(actor)
    user = await _owned(db, org_id, user_id, lock=True)
    check_version(user, if_version)
    new = change(user)
    name = await _ensure_name_free(db, new.username, user.id)
    was_enabled = user.enabled
    fields = UserFields(
        full_name=new.full_name, email=new.email or "", enabled=new.active, username=name
    )
    await users.change_user(db, actor, user, fields, email_verified=False)
    if user.external_id != new.external_id or user.attributes.get(PROFILE) != new.profile:
        before = user.external_id
        user.external_id = new.external_id
        user.attributes = {**(user.attributes or {}), PROFILE: new.profile}
        user.updated_at = utcnow()
        user.updated_by = actor.actor_id
        await db.flush()
        details: dict[str, Any] = {"profile": True}
        if before != new.external_id:
            details["external_id"] = [before, new.external_id]
        await record(
            db, actor, "user.profile.set", target_type="user", target_id=user.id, details=details
        )
    if was_enabled and not user.enabled:
        await end_credentials(db, actor, user.id)
    return user


async def delete_user(
    db: AsyncSession, actor: Principal, user_id: str, *, if_version: Sequence[str] | None = None
) -> None:
    """The account goes, with every credential, membership and role of it, everywhere."""
    org_id = _guard(actor)
    user = await _owned(db, org_id, user_id, lock=True)
    check_version(user, if_version)
    await end_credentials(db, actor, user.id)
    await users.remove_account(db, actor, user)


async def end_credentials(db: AsyncSession, actor: Principal, user_id: str) -> int:
    """Revoke every live session and personal token of the user, in this transaction; the
    commit drops every worker's cached answers for the user (its scope, named here)."""
    now = utcnow()
    result = await db.execute(
        update(Token)
        .where(
            Token.user_id == user_id,
            Token.kind.in_((TokenKind.SESSION.value, TokenKind.PERSONAL.value)),
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=now, updated_at=now, updated_by=actor.actor_id)
        .execution_options(synchronize_session=False, **scoped(user_scope(user_id)))
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    await record(
        db,
        actor,
        "auth.credentials.revoke",
        target_type="user",
        target_id=user_id,
        details={"count": count, "reason": "deprovisioned"},
    )
    return count


# --- groups: the organization's teams its identity provider keeps ---------------------------


@dataclass(frozen=True)
class ProvisionedGroup:
    display_name: str
    external_id: str | None = None
    member_ids: Sequence[str] | None = None  # None: leave the members as they are


@dataclass(frozen=True)
class GroupView:
    team: Team
    members: Sequence[User]


async def _owned_team(db: AsyncSession, org_id: str, team_id: str, *, lock: bool = False) -> Team:
    query = select(Team).where(
        Team.id == team_id, Team.organization_id == org_id, Team.is_idp_managed.is_(True)
    )
    found = await db.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("group not found")
    return found


async def _members_of(db: AsyncSession, team_ids: Sequence[str]) -> dict[str, list[User]]:
    found: dict[str, list[User]] = {t: [] for t in team_ids}
    if team_ids:
        rows = await db.execute(
            select(TeamMember.team_id, User)
            .join(User, User.id == TeamMember.user_id)
            .where(TeamMember.team_id.in_(team_ids))
            .order_by(TeamMember.created_at, User.id)
        )
        for team_id, member in rows:
            found[team_id].append(member)
    return found


async def _check_members(db: AsyncSession, org_id: str, user_ids: Sequence[str]) -> list[str]:
    """The ids, deduplicated; Invalid unless every one is an account the organization manages
    and a member of it (another tenant's account reads as a made-up id)."""
    wanted = list(dict.fromkeys(user_ids))
    if len(wanted) > MAX_MEMBERS:
        raise Invalid("too many members", [FieldError("members", "too_many", f"{MAX_MEMBERS}")])
    found: set[str] = set()
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        found.update(
            await db.scalars(
                select(User.id)
                .join(Membership, Membership.user_id == User.id)
                .where(
                    User.id.in_(chunk),
                    User.managed_by_organization_id == org_id,
                    Membership.organization_id == org_id,
                )
            )
        )
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise Invalid(
            "a member is not a user of this organization",
            [FieldError("members", "invalid", "no such user")],
        )
    return wanted


async def get_group(db: AsyncSession, actor: Principal, team_id: str) -> GroupView:
    org_id = _guard(actor)
    team = await _owned_team(db, org_id, team_id)
    return GroupView(team, (await _members_of(db, [team.id]))[team.id])


async def list_groups(
    db: AsyncSession,
    actor: Principal,
    where: Predicate | None = None,
    *,
    offset: int = 0,
    limit: int = 100,
    order: Order | None = None,
) -> Page[GroupView]:
    """The organization's IdP teams matching `where` (over GROUP_FIELDS), in `order` (over
    GROUP_ORDERS), else oldest first; the organization's condition is ANDed outside `where`."""
    org_id = _guard(actor)
    limit = max(0, min(limit, MAX_PAGE))
    condition = true() if where is None else compile_predicate(where, GROUP_FIELDS)
    query = (
        select(Team)
        .where(Team.organization_id == org_id, Team.is_idp_managed.is_(True))
        .where(condition)
    )
    found: list[Team] = []
    if limit:
        ordered = _ordered(query, order, GROUP_ORDERS, (Team.created_at, Team.id))
        found = list(await db.scalars(ordered.offset(offset).limit(limit)))
    total = await _total(db, query, found, offset, limit)
    members = await _members_of(db, [t.id for t in found])
    return Page([GroupView(t, members[t.id]) for t in found], total, offset, limit)


async def create_group(db: AsyncSession, actor: Principal, new: ProvisionedGroup) -> GroupView:
    org_id = _guard(actor)
    member_ids = await _check_members(db, org_id, new.member_ids or [])
    try:
        team = await teams.add_idp_team(
            db, actor, org_id, new.display_name, new.external_id, member_ids
        )
    except Conflict as taken:
        raise Conflict(str(taken), [FieldError("displayName", "uniqueness", "taken")]) from None
    return GroupView(team, (await _members_of(db, [team.id]))[team.id])


async def replace_group(
    db: AsyncSession,
    actor: Principal,
    team_id: str,
    new: ProvisionedGroup,
    *,
    if_version: Sequence[str] | None = None,
) -> GroupView:
    return await update_group(db, actor, team_id, lambda _: new, if_version=if_version)


async def update_group(
    db: AsyncSession,
    actor: Principal,
    team_id: str,
    change: Callable[[GroupView], ProvisionedGroup],
    *,
    if_version: Sequence[str] | None = None,
) -> GroupView:
    """The group as `change` says from its current state and members, read under the
    team's row lock (a SCIM PATCH that is more than member changes)."""
    org_id = _guard(actor)
    team = await _owned_team(db, org_id, team_id, lock=True)
    check_version(team, if_version)
    current = (await _members_of(db, [team.id]))[team.id]
    new = change(GroupView(team, current))
    try:
        await teams.rename_idp_team(db, actor, team, new.display_name, new.external_id)
    except Conflict as taken:
        raise Conflict(str(taken), [FieldError("displayName", "uniqueness", "taken")]) from None
    if new.member_ids is not None:
        wanted = await _check_members(db, org_id, new.member_ids)
        held = {m.id for m in current}
        kept = set(wanted)
        await teams.change_idp_members(
            db,
            actor,
            team,
            add=[u for u in wanted if u not in held],
            remove=[u for u in held if u not in kept],
        )
    return GroupView(team, (await _members_of(db, [team.id]))[team.id])


async def change_members(
    db: AsyncSession,
    actor: Principal,
    team_id: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    if_version: Sequence[str] | None = None,
) -> Team:
    """Add and remove members without reading the rest (a PATCH of members only)."""
    org_id = _guard(actor)
    team = await _owned_team(db, org_id, team_id, lock=True)
    check_version(team, if_version)
    await teams.change_idp_members(
        db, actor, team, add=await _check_members(db, org_id, add), remove=remove
    )
    return team


async def delete_group(
    db: AsyncSession, actor: Principal, team_id: str, *, if_version: Sequence[str] | None = None
) -> None:
    org_id = _guard(actor)
    team = await _owned_team(db, org_id, team_id, lock=True)
    check_version(team, if_version)
    await teams.remove_team(db, actor, team)

"""Provisioning: an organization's identity provider creates, changes and removes the accounts
it manages, and the teams it keeps of them (the SCIM face calls these; the rules are here).

Who: the caller is the organization's SCIM token (identity/scim_tokens.py), which holds
`organization.scim.provision` at its organization and nowhere else; every use case checks it.

What the token sees: only the accounts its organization *manages* (`managed_by_organization_id`,
set when it provisioned them) and the teams it made (`is_idp_managed`). An account of anyone
else, in the organization or not, is "not found" exactly as a made-up id, is never matched by
a filter, and a new account whose login name another account holds is refused with one
uniqueness conflict that says nothing of whose (the anchor failure: GHSA-9m7q-6qg6-888h).

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import user_scope
from tenantry.db.models import Membership, Team, TeamMember, Token, TokenKind, User
from tenantry.db.paging import Page
from tenantry.directory import organizations, teams, users
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


@dataclass(frozen=True)
class Equals:
    """`attribute` equals `value`; attribute: username | external_id | full_name | email.

    SEAM: the minimal condition the SCIM face's interim filter (faces/scim/query.py) gives;
    directory/predicates.compile_predicate replaces it with the full grammar."""

    attribute: str
    value: str


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


def _condition(match: Equals) -> ColumnElement[bool]:
    if match.attribute == "username":
        return User.username_key == names.username_key(match.value)
    if match.attribute == "email":
        return func.lower(User.email) == match.value.lower()
    if match.attribute == "external_id":
        return User.external_id == match.value
    if match.attribute == "full_name":
        return User.full_name == match.value
    raise Invalid("unsupported filter", [FieldError("filter", "invalid", match.attribute)])


# --- users -------------------------------------------------------------------------------------


async def get_user(db: AsyncSession, actor: Principal, user_id: str) -> User:
    return await _owned(db, _guard(actor), user_id)


async def list_users(
    db: AsyncSession,
    actor: Principal,
    where: Sequence[Equals] = (),
    *,
    offset: int = 0,
    limit: int = 100,
) -> Page[User]:
    """The organization's managed accounts matching every condition, oldest first; the
    total is exact."""
    org_id = _guard(actor)
    limit = max(0, min(limit, MAX_PAGE))
    query = select(User).where(User.managed_by_organization_id == org_id)
    for match in where:
        query = query.where(_condition(match))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    if limit == 0 or offset >= total:
        return Page([], total, offset, limit)
    rows = await db.scalars(query.order_by(User.created_at, User.id).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


async def _ensure_name_free(db: AsyncSession, username: str, except_id: str | None) -> str:
    name = names.check_username(username)
    holder = await users.find_by_username(db, name)
    if holder is not None and holder.id != except_id:
        # Whose, and whether inside the organization, is not the identity provider's to learn.
        raise Conflict(TAKEN, [FieldError("username", "uniqueness", TAKEN)])
    return name


async def create_user(db: AsyncSession, actor: Principal, new: ProvisionedUser) -> User:
    org_id = _guard(actor)
    token = actor.token
    assert token is not None
    name = await _ensure_name_free(db, new.username, None)
    fields = UserFields(full_name=new.full_name, email=new.email or "", enabled=new.active)
    user = await users.add_user(
        db, actor, name, fields, email_from_username=False, email_verified=False
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


async def replace_user(
    db: AsyncSession,
    actor: Principal,
    user_id: str,
    new: ProvisionedUser,
    *,
    if_version: Sequence[str] | None = None,
) -> User:
    """Everything the identity provider owns of the account, as `new` says."""
    org_id = _guard(actor)
    user = await _owned(db, org_id, user_id, lock=True)
    check_version(user, if_version)
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
    where: Sequence[Equals] = (),
    *,
    offset: int = 0,
    limit: int = 100,
) -> Page[GroupView]:
    org_id = _guard(actor)
    limit = max(0, min(limit, MAX_PAGE))
    query = select(Team).where(Team.organization_id == org_id, Team.is_idp_managed.is_(True))
    for match in where:
        if match.attribute == "full_name":
            query = query.where(Team.name == match.value)
        elif match.attribute == "external_id":
            query = query.where(Team.external_id == match.value)
        else:
            raise Invalid("unsupported filter", [FieldError("filter", "invalid", match.attribute)])
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    if limit == 0 or offset >= total:
        return Page([], total, offset, limit)
    found = list(
        await db.scalars(query.order_by(Team.created_at, Team.id).offset(offset).limit(limit))
    )
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
    org_id = _guard(actor)
    team = await _owned_team(db, org_id, team_id, lock=True)
    check_version(team, if_version)
    try:
        await teams.rename_idp_team(db, actor, team, new.display_name, new.external_id)
    except Conflict as taken:
        raise Conflict(str(taken), [FieldError("displayName", "uniqueness", "taken")]) from None
    if new.member_ids is not None:
        wanted = await _check_members(db, org_id, new.member_ids)
        current = {m.id for m in (await _members_of(db, [team.id]))[team.id]}
        await teams.change_idp_members(
            db,
            actor,
            team,
            add=[u for u in wanted if u not in current],
            remove=[u for u in current if u not in set(wanted)],
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

"""Teams: groups of an organization's members that hold roles together.

Every role of a team, its organization role included, is a role binding with subject_type
"team" (the organization role at ORGANIZATION scope). The permission engine adds a team's
bindings to each of its members' own grants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import team_scope, user_scope
from tenantry.db.models import Membership, RoleBinding, Team, TeamMember, User
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory import members, organizations
from tenantry.directory.members import (
    RoleSet,
    bindings_by_subject,
    guard_strong_grants,
    roles_json,
    roleset_from_bindings,
)
from tenantry.directory.subjects import Subject, load_subjects
from tenantry.errors import Conflict, FieldError, Invalid, NotFound, Unchangeable
from tenantry.identity.principals import Principal
from tenantry.ids import new_id

DEFAULT_ORGANIZATION_ROLE = "ORGANIZATION_MEMBER"
MAX_NAME = 256
MAX_DESCRIPTION = 2048
MAX_MEMBERS_PER_REQUEST = 1000
TEAM_SORTS = ("name", "description", "createdAt", "updatedAt")
TEAM_MEMBER_SORTS = ("userId", "fullName", "username", "createdAt")
_TEAM_COLUMNS: dict[str, Any] = {
    "name": Team.name,
    "description": Team.description,
    "createdAt": Team.created_at,
    "updatedAt": Team.updated_at,
}
_MEMBER_COLUMNS: dict[str, Any] = {
    "userId": User.id,
    "fullName": User.full_name,
    "username": User.username_key,
    "createdAt": TeamMember.created_at,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TeamView:
    team: Team
    roles: RoleSet
    subjects: Mapping[str, Subject]


@dataclass(frozen=True)
class TeamQuery:
    names: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 20
    sorts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TeamMemberQuery:
    offset: int = 0
    limit: int = 20
    sorts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TeamMemberView:
    user: User
    added_at: datetime


@dataclass
class NewTeam:
    name: str
    description: str = ""
    member_ids: Sequence[str] = field(default_factory=list)
    organization_role: str | None = None  # ORGANIZATION_MEMBER when not given


# --- helpers ---------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise Invalid(
            "invalid team name",
            [FieldError("name", "invalid", f"1 to {MAX_NAME} printable characters")],
        )
    return name


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise Invalid(
            "invalid description",
            [FieldError("description", "invalid", f"at most {MAX_DESCRIPTION} characters")],
        )
    return description


async def _ensure_name_free(
    db: AsyncSession, org_id: str, name: str, except_id: str | None = None
) -> None:
    query = select(Team.id).where(Team.organization_id == org_id, Team.name == name)
    if except_id is not None:
        query = query.where(Team.id != except_id)
    if await db.scalar(query) is not None:
        raise Conflict(
            f"a team named {name!r} already exists in this organization",
            [FieldError("name", "conflict", "already taken")],
        )


async def _load(db: AsyncSession, org_id: str, team_id: str, *, lock: bool = False) -> Team:
    query = select(Team).where(Team.id == team_id, Team.organization_id == org_id)
    team = await db.scalar(query.with_for_update() if lock else query)
    if team is None:
        raise NotFound("team not found")
    return team


async def _org_members(
    db: AsyncSession, org_id: str, user_ids: Sequence[str], where: str
) -> list[str]:
    """The ids, deduplicated in order; 400 naming every id that is not a member."""
    if len(user_ids) > MAX_MEMBERS_PER_REQUEST:
        raise Invalid(
            f"too many {where}",
            [FieldError(where, "too_long", f"at most {MAX_MEMBERS_PER_REQUEST}")],
        )
    found: set[str] = set()
    if user_ids:
        found.update(
            await db.scalars(
                select(Membership.user_id).where(
                    Membership.organization_id == org_id, Membership.user_id.in_(set(user_ids))
                )
            )
        )
    errors = [
        FieldError(f"{where}[{i}]", "not_found", "not a member of this organization")
        for i, user_id in enumerate(user_ids)
        if user_id not in found
    ]
    if errors:
        raise Invalid("every team member must be a member of the organization", errors)
    return list(dict.fromkeys(user_ids))


def _org_binding(org_id: str, team_id: str, role: str, by: str | None) -> RoleBinding:
    scope = scopes.organization(org_id)
    return RoleBinding(
        organization_id=org_id,
        subject_type="team",
        subject_id=team_id,
        role=role,
        scope_type=scope.type.value,
        scope_key=scope.key,
        created_by=by,
    )


async def _validated_bindings(
    db: AsyncSession, org_id: str, team_id: str, roles: RoleSet, by: str | None
) -> list[RoleBinding]:
    """All of the team's bindings for `roles`, its organization role included."""
    if roles.organization_role is None:
        raise Invalid(
            "organizationRole is required",
            [FieldError("organizationRole", "required", "a team always has an organization role")],
        )
    scoped = await members.build_bindings(db, org_id, "team", team_id, roles, by)
    return [_org_binding(org_id, team_id, roles.organization_role, by), *scoped]


async def _views(db: AsyncSession, org_id: str, teams: Sequence[Team]) -> list[TeamView]:
    bindings = await bindings_by_subject(db, org_id, "team", [t.id for t in teams])
    subjects = await load_subjects(db, [i for t in teams for i in (t.created_by, t.updated_by)])
    return [TeamView(t, roleset_from_bindings(None, bindings[t.id]), subjects) for t in teams]


def _touch(team: Team, actor: Principal) -> None:
    team.updated_at = utcnow()
    team.updated_by = actor.actor_id


# --- teams -----------------------------------------------------------------------------------


async def visible_teams(db: AsyncSession, actor: Principal) -> list[tuple[Team, int]]:
    """Every team the caller could list anyway, with its member count, by name: all of them to
    a caller with `organization.teams.list` everywhere (system rights), else those of the
    organizations where they hold it (every member does). Another tenant's teams never."""
    query = (
        select(Team, func.count(TeamMember.user_id))
        .outerjoin(TeamMember, TeamMember.team_id == Team.id)
        .group_by(Team.id)
    )
    if not actor.can("organization.teams.list", scopes.SYSTEM_SCOPE):
        orgs = [
            org
            for org in actor.grants.organization_ids()
            if actor.can("organization.teams.list", scopes.organization(org))
        ]
        query = query.where(Team.organization_id.in_(orgs))
    rows = await db.execute(query.order_by(Team.name, Team.id))
    return [(team, int(count)) for team, count in rows]


async def list_teams(
    db: AsyncSession, actor: Principal, org_id: str, q: TeamQuery
) -> Page[TeamView]:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.list", scopes.organization(org_id))
    check_window(q.offset, q.limit)
    order = order_by(parse_sorts(q.sorts, TEAM_SORTS), _TEAM_COLUMNS, Team.id)
    query = select(Team).where(Team.organization_id == org_id)
    if q.names:
        query = query.where(Team.name.in_(set(q.names)))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    if q.limit == 0 or q.offset >= total:
        return Page([], total, q.offset, q.limit)
    teams = list(await db.scalars(query.order_by(*order).offset(q.offset).limit(q.limit)))
    return Page(await _views(db, org_id, teams), total, q.offset, q.limit)


async def get_team(db: AsyncSession, actor: Principal, org_id: str, team_id: str) -> TeamView:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.get", scopes.organization(org_id))
    team = await _load(db, org_id, team_id)
    return (await _views(db, org_id, [team]))[0]


async def create_team(db: AsyncSession, actor: Principal, org_id: str, new: NewTeam) -> TeamView:
    """A team with an organization role (ORGANIZATION_MEMBER by default) and, optionally,
    members, who must already belong to the organization."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.create", scopes.organization(org_id))
    name = _check_name(new.name)
    description = _check_description(new.description)
    team_id = new_id()
    roles = RoleSet(organization_role=new.organization_role or DEFAULT_ORGANIZATION_ROLE)
    await guard_strong_grants(db, actor, org_id, roles)
    bindings = await _validated_bindings(db, org_id, team_id, roles, actor.actor_id)
    member_ids = await _org_members(db, org_id, new.member_ids, "memberIds")
    await _ensure_name_free(db, org_id, name)
    now = utcnow()
    team = Team(
        id=team_id,
        organization_id=org_id,
        name=name,
        description=description,
        is_idp_managed=False,
        created_at=now,
        created_by=actor.actor_id,
        updated_at=now,
        updated_by=actor.actor_id,
    )
    db.add(team)
    await db.flush()
    db.add_all(bindings)
    db.add_all(
        TeamMember(team_id=team_id, user_id=u, organization_id=org_id, created_at=now)
        for u in member_ids
    )
    await db.flush()
    await record(
        db,
        actor,
        "organization.team.create",
        target_type="team",
        target_id=team_id,
        organization_id=org_id,
        details={"name": name, "memberIds": member_ids, "roles": roles_json(roles)},
    )
    return (await _views(db, org_id, [team]))[0]


async def update_team(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    team_id: str,
    name: str,
    description: str | None = None,
) -> TeamView:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.update", scopes.organization(org_id))
    team = await _load(db, org_id, team_id, lock=True)
    refuse_if_idp_managed(team)
    new_name = _check_name(name)
    if description is not None:
        _check_description(description)
    before = {"name": team.name, "description": team.description}
    if new_name != team.name:
        await _ensure_name_free(db, org_id, new_name, except_id=team.id)
        team.name = new_name
    if description is not None:
        team.description = description
    _touch(team, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.team.update",
        target_type="team",
        target_id=team.id,
        organization_id=org_id,
        details={"before": before, "after": {"name": team.name, "description": team.description}},
    )
    return (await _views(db, org_id, [team]))[0]


async def delete_team(db: AsyncSession, actor: Principal, org_id: str, team_id: str) -> None:
    """The team, its memberships and its role bindings: its members lose what it granted."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.delete", scopes.organization(org_id))
    team = await _load(db, org_id, team_id, lock=True)
    refuse_if_idp_managed(team)
    await remove_team(db, actor, team)


# --- members ---------------------------------------------------------------------------------


async def list_team_members(
    db: AsyncSession, actor: Principal, org_id: str, team_id: str, q: TeamMemberQuery
) -> Page[TeamMemberView]:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.get", scopes.organization(org_id))
    await _load(db, org_id, team_id)
    check_window(q.offset, q.limit)
    order = order_by(parse_sorts(q.sorts, TEAM_MEMBER_SORTS), _MEMBER_COLUMNS, User.id)
    query = (
        select(User, TeamMember.created_at)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team_id)
    )
    total = (
        await db.scalar(
            select(func.count()).select_from(TeamMember).where(TeamMember.team_id == team_id)
        )
        or 0
    )
    if q.limit == 0 or q.offset >= total:
        return Page([], total, q.offset, q.limit)
    rows = (await db.execute(query.order_by(*order).offset(q.offset).limit(q.limit))).all()
    return Page([TeamMemberView(u, added) for u, added in rows], total, q.offset, q.limit)


async def add_team_members(
    db: AsyncSession, actor: Principal, org_id: str, team_id: str, user_ids: Sequence[str]
) -> None:
    """Adds organization members to the team; those already in it stay as they are."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.members.update", scopes.organization(org_id))
    team = await _load(db, org_id, team_id, lock=True)
    refuse_if_idp_managed(team)
    team_roles = (await bindings_by_subject(db, org_id, "team", [team_id]))[team_id]
    # joining a team hands its members every role of the team
    await guard_strong_grants(db, actor, org_id, roleset_from_bindings(None, team_roles))
    if not user_ids:
        raise Invalid(
            "memberIds must not be empty", [FieldError("memberIds", "required", "at least one")]
        )
    wanted = await _org_members(db, org_id, user_ids, "memberIds")
    present = set(
        await db.scalars(
            select(TeamMember.user_id).where(
                TeamMember.team_id == team_id, TeamMember.user_id.in_(wanted)
            )
        )
    )
    added = [u for u in wanted if u not in present]
    now = utcnow()
    db.add_all(
        TeamMember(team_id=team_id, user_id=u, organization_id=org_id, created_at=now)
        for u in added
    )
    _touch(team, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.team.members.add",
        target_type="team",
        target_id=team_id,
        organization_id=org_id,
        details={"added": added},
    )


async def remove_team_member(
    db: AsyncSession, actor: Principal, org_id: str, team_id: str, user_id: str
) -> None:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.members.update", scopes.organization(org_id))
    team = await _load(db, org_id, team_id, lock=True)
    refuse_if_idp_managed(team)
    membership = await db.get(TeamMember, (team_id, user_id))
    if membership is None:
        raise NotFound("user is not a member of this team")
    await db.delete(membership)
    _touch(team, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.team.members.remove",
        target_type="team",
        target_id=team_id,
        organization_id=org_id,
        details={"removed": user_id},
    )


# --- roles -----------------------------------------------------------------------------------


async def replace_team_roles(
    db: AsyncSession, actor: Principal, org_id: str, team_id: str, roles: RoleSet
) -> RoleSet:
    """Replaces every role of the team; its members' permissions change at once."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.teams.roles.update", scopes.organization(org_id))
    team = await _load(db, org_id, team_id, lock=True)
    new_bindings = await _validated_bindings(db, org_id, team_id, roles, actor.actor_id)
    before = roleset_from_bindings(
        None, (await bindings_by_subject(db, org_id, "team", [team_id]))[team_id]
    )
    await guard_strong_grants(db, actor, org_id, roles, before)
    await db.execute(
        delete(RoleBinding)
        .where(
            RoleBinding.subject_type == "team",
            RoleBinding.subject_id == team_id,
            RoleBinding.organization_id == org_id,
        )
        .execution_options(**scoped(team_scope(team_id)))
    )
    await members.insert_bindings(db, new_bindings, team_scope(team_id))
    _touch(team, actor)
    await db.flush()
    after = roleset_from_bindings(None, new_bindings)
    await record(
        db,
        actor,
        "organization.team.roles.replace",
        target_type="team",
        target_id=team_id,
        organization_id=org_id,
        details={"before": roles_json(before), "after": roles_json(after)},
    )
    return after


# --- teams an identity provider keeps (directory/provisioning.py) ---------------------------


def refuse_if_idp_managed(team: Team) -> None:
    """An identity provider owns its teams' names and members: other callers change neither."""
    if team.is_idp_managed:
        raise Unchangeable("this team is managed by an identity provider", reason="external")


async def add_idp_team(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    name: str,
    external_id: str | None,
    member_ids: Sequence[str],
) -> Team:
    """A team the organization's identity provider keeps (the caller checked who may): the
    organization role ORGANIZATION_MEMBER, members already checked by the caller."""
    name = _check_name(name)
    await _ensure_name_free(db, org_id, name)
    now = utcnow()
    team = Team(
        id=new_id(),
        organization_id=org_id,
        name=name,
        external_id=external_id,
        is_idp_managed=True,
        created_at=now,
        created_by=actor.actor_id,
        updated_at=now,
        updated_by=actor.actor_id,
    )
    db.add(team)
    await db.flush()
    db.add(_org_binding(org_id, team.id, DEFAULT_ORGANIZATION_ROLE, actor.actor_id))
    wanted = list(dict.fromkeys(member_ids))
    await db.flush()
    await _insert_members(db, team.id, org_id, wanted)
    await record(
        db,
        actor,
        "organization.team.create",
        target_type="team",
        target_id=team.id,
        organization_id=org_id,
        details={"name": name, "memberIds": wanted, "idpManaged": True},
    )
    return team


async def rename_idp_team(
    db: AsyncSession, actor: Principal, team: Team, name: str, external_id: str | None
) -> None:
    new_name = _check_name(name)
    before = {"name": team.name, "externalId": team.external_id}
    if new_name == team.name and external_id == team.external_id:
        return
    if new_name != team.name:
        await _ensure_name_free(db, team.organization_id, new_name, except_id=team.id)
    team.name, team.external_id = new_name, external_id
    _touch(team, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.team.update",
        target_type="team",
        target_id=team.id,
        organization_id=team.organization_id,
        details={"before": before, "after": {"name": team.name, "externalId": external_id}},
    )


# Rows per INSERT: 4 parameters each stays far below PostgreSQL's 32 767 and SQLite's 32 766.
MEMBER_BATCH = 1000


async def _insert_members(
    db: AsyncSession, team_id: str, org_id: str, user_ids: Sequence[str]
) -> None:
    """New members' rows, one multi-row INSERT per MEMBER_BATCH (no ORM object per member: an
    identity provider sends thousands at once; an executemany is one round trip per row on
    asyncpg: 9 s for 1 000 members beside 1M users on a busy machine). The commit moves
    exactly the added users' cache scopes, as the ORM's flush of the rows would."""
    now = utcnow()
    for start in range(0, len(user_ids), MEMBER_BATCH):
        batch = user_ids[start : start + MEMBER_BATCH]
        rows = [
            {"team_id": team_id, "user_id": u, "organization_id": org_id, "created_at": now}
            for u in batch
        ]
        statement = insert(TeamMember).values(rows)
        await db.execute(statement.execution_options(**scoped(*map(user_scope, batch))))


async def change_idp_members(
    db: AsyncSession,
    actor: Principal,
    team: Team,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """Add and remove members (checked by the caller) in two statements; what changed."""
    team_id, org_id = team.id, team.organization_id
    dropped: list[str] = []
    if remove:
        rows = await db.execute(
            delete(TeamMember)
            .where(TeamMember.team_id == team_id, TeamMember.user_id.in_(set(remove)))
            .returning(TeamMember.user_id)
            .execution_options(**scoped(team_scope(team_id)))
        )
        dropped = list(rows.scalars())
    added: list[str] = []
    if add:
        present = set(
            await db.scalars(
                select(TeamMember.user_id).where(
                    TeamMember.team_id == team_id, TeamMember.user_id.in_(set(add))
                )
            )
        )
        added = [u for u in dict.fromkeys(add) if u not in present]
        await _insert_members(db, team_id, org_id, added)
    if not added and not dropped:
        return added, dropped
    _touch(team, actor)
    await db.flush()
    for action, key, ids in (("add", "added", added), ("remove", "removed", dropped)):
        if ids:
            await record(
                db,
                actor,
                f"organization.team.members.{action}",
                target_type="team",
                target_id=team_id,
                organization_id=org_id,
                details={key: ids},
            )
    return added, dropped


async def remove_team(db: AsyncSession, actor: Principal, team: Team) -> None:
    """Delete a team the caller may delete (checked by the caller's use case)."""
    team_id, org_id = team.id, team.organization_id
    await db.execute(
        delete(RoleBinding)
        .where(
            RoleBinding.subject_type == "team",
            RoleBinding.subject_id == team_id,
            RoleBinding.organization_id == org_id,
        )
        .execution_options(**scoped(team_scope(team_id)))
    )
    # Every member's cached answers depend on the team's scope (its members hold it).
    await db.execute(
        delete(TeamMember)
        .where(TeamMember.team_id == team_id)
        .execution_options(**scoped(team_scope(team_id)))
    )
    name = team.name
    await db.delete(team)
    await db.flush()
    await record(
        db,
        actor,
        "organization.team.delete",
        target_type="team",
        target_id=team_id,
        organization_id=org_id,
        details={"name": name},
    )

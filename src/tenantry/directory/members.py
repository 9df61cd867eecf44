"""An organization's members: read one, list with filters and sorts, replace their roles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    intersect,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.catalogue import (
    ORGANIZATION_ROLES,
    ROLE_PERMISSIONS,
    ROLES,
    WORKSPACE_ROLES,
    is_strong_permission_set,
)
from tenantry.authz.scopes import SYSTEM_SCOPE, ScopeType
from tenantry.clock import utcnow
from tenantry.db.engine import NOTIFY, scoped, user_notice, wrote_for_user
from tenantry.db.generation import user_scope
from tenantry.db.models import CustomRole, Membership, Organization, RoleBinding, User
from tenantry.db.models.directory import HolderCount, HolderCountDelta, TeamMember
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory import organizations, tree
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity.principals import Principal

OWNER = "ORGANIZATION_OWNER"
MEMBER_SORTS = ("id", "username", "fullName", "createdAt", "updatedAt")
_SORT_COLUMNS: dict[str, Any] = {
    "id": User.id,
    "username": User.username_key,
    "fullName": User.full_name,
    "createdAt": User.created_at,
    "updatedAt": User.updated_at,
}


class ShownUser(Protocol):
    """What a member listing shows of a user: an ORM User, or a row of SHOWN_USER."""

    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def full_name(self) -> str: ...
    @property
    def avatar_url(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class ShownBinding(Protocol):
    """What a RoleSet is made of: an ORM RoleBinding, or a row of _PAGE_BINDINGS or of
    _SHOWN_BINDING."""

    @property
    def scope_type(self) -> str: ...
    @property
    def scope_key(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def workspace_id(self) -> str | None: ...
    @property
    def deployment_id(self) -> str | None: ...
    @property
    def dag_id(self) -> str | None: ...
    @property
    def dag_tag(self) -> str | None: ...


_users = User.__table__.c
_bindings = RoleBinding.__table__.c
_memberships = Membership.__table__.c
_BINDINGS = cast(Table, RoleBinding.__table__)
# What a binding made by build_bindings gives its row (the id and created_at: defaults).
_BINDING_VALUES = (
    "organization_id",
    "subject_type",
    "subject_id",
    "role",
    "scope_type",
    "scope_key",
    "workspace_id",
    "deployment_id",
    "dag_id",
    "dag_tag",
    "created_by",
)
# A page reads only the columns it shows, as plain rows: loading whole ORM users (30 columns,
# the password hash and attributes JSON among them) and bindings cost more than the page's SQL.
SHOWN_USER = (
    _users.id,
    _users.username,
    _users.full_name,
    _users.avatar_url,
    _users.status,
    _users.created_at,
    _users.updated_at,
)
_SHOWN_BINDING = (
    _bindings.scope_type,
    _bindings.scope_key,
    _bindings.role,
    _bindings.workspace_id,
    _bindings.deployment_id,
    _bindings.dag_id,
    _bindings.dag_tag,
)
_PAGE_BINDINGS = select(_bindings.subject_id, *_SHOWN_BINDING).where(
    _bindings.subject_type == "user",
    _bindings.subject_id.in_(bindparam("ids", expanding=True)),
    _bindings.organization_id == bindparam("org"),
)


@dataclass(frozen=True)
class DagRole:
    deployment_id: str
    role: str
    dag_id: str | None = None
    dag_tag: str | None = None


@dataclass
class RoleSet:
    """A subject's roles inside one organization, as Astro's SubjectRoles describes them."""

    organization_role: str | None = None
    workspace_roles: list[tuple[str, str]] = field(default_factory=list)  # (workspaceId, role)
    deployment_roles: list[tuple[str, str]] = field(default_factory=list)  # (deploymentId, role)
    dag_roles: list[DagRole] = field(default_factory=list)


@dataclass
class Member:
    user: ShownUser
    roles: RoleSet


@dataclass(frozen=True)
class MemberQuery:
    workspace_id: str | None = None
    deployment_id: str | None = None
    dag_id: str | None = None
    dag_tags: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 20
    sorts: tuple[str, ...] = ()


def roleset_from_bindings(org_role: str | None, bindings: Sequence[ShownBinding]) -> RoleSet:
    roles = RoleSet(organization_role=org_role)
    for b in sorted(bindings, key=lambda b: (b.scope_key, b.role)):
        if b.scope_type == ScopeType.WORKSPACE:
            roles.workspace_roles.append((b.workspace_id or "", b.role))
        elif b.scope_type == ScopeType.DEPLOYMENT:
            roles.deployment_roles.append((b.deployment_id or "", b.role))
        elif b.scope_type in (ScopeType.DAG, ScopeType.DAG_TAG):
            roles.dag_roles.append(DagRole(b.deployment_id or "", b.role, b.dag_id, b.dag_tag))
        elif b.scope_type == ScopeType.ORGANIZATION and roles.organization_role is None:
            roles.organization_role = b.role
    return roles


async def bindings_by_subject(
    db: AsyncSession, org_id: str, subject_type: str, subject_ids: Sequence[str]
) -> dict[str, list[RoleBinding]]:
    grouped: dict[str, list[RoleBinding]] = defaultdict(list)
    if not subject_ids:
        return grouped
    rows = await db.scalars(
        select(RoleBinding).where(
            RoleBinding.subject_type == subject_type,
            RoleBinding.subject_id.in_(subject_ids),
            RoleBinding.organization_id == org_id,
        )
    )
    for binding in rows:
        grouped[binding.subject_id].append(binding)
    return grouped


async def _page_bindings(
    db: AsyncSession, org_id: str, user_ids: Sequence[str]
) -> dict[str, list[ShownBinding]]:
    grouped: dict[str, list[ShownBinding]] = defaultdict(list)
    if user_ids:
        for row in await db.execute(_PAGE_BINDINGS, {"ids": user_ids, "org": org_id}):
            grouped[row.subject_id].append(row)
    return grouped


async def get_member(db: AsyncSession, actor: Principal, org_id: str, user_id: str) -> Member:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.users.get", scopes.organization(org_id))
    row = (
        await db.execute(
            select(User, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organization_id == org_id, User.id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("user not found in this organization")
    user, org_role = row
    bindings = await bindings_by_subject(db, org_id, "user", [user.id])
    return Member(user, roleset_from_bindings(org_role, bindings[user.id]))


def _holder_conditions(q: MemberQuery) -> list[Any]:
    """One condition on role_bindings per filter: a binding at that scope or inside it.
    dagId and dagTags together mean "any binding reaching that DAG"."""
    conditions: list[Any] = []
    if q.workspace_id is not None:
        conditions.append(RoleBinding.workspace_id == q.workspace_id)
    if q.deployment_id is not None:
        conditions.append(RoleBinding.deployment_id == q.deployment_id)
    dag_conditions = []
    if q.dag_id is not None:
        dag_conditions.append(
            (RoleBinding.scope_type == ScopeType.DAG.value) & (RoleBinding.dag_id == q.dag_id)
        )
    if q.dag_tags:
        dag_conditions.append(
            (RoleBinding.scope_type == ScopeType.DAG_TAG.value)
            & RoleBinding.dag_tag.in_(q.dag_tags)
        )
    if dag_conditions:
        conditions.append(or_(*dag_conditions))
    return conditions


def _holders(org_id: str, condition: Any) -> Select[Any]:
    return select(RoleBinding.subject_id).where(
        RoleBinding.subject_type == "user", RoleBinding.organization_id == org_id, condition
    )


def _filtered(org_id: str, conditions: list[Any]) -> Select[Any]:
    """Members of the organization that satisfy every filter."""
    query = select(User.id).join(Membership, Membership.user_id == User.id)
    query = query.where(Membership.organization_id == org_id)
    for condition in conditions:
        query = query.where(User.id.in_(_holders(org_id, condition)))
    return query


def holder_key(q: MemberQuery) -> tuple[str, str] | None:
    """The holder_counts key whose count is the totalCount of `q`, when `q` filters by exactly
    one value (one workspace, one deployment, one dagId or one dagTag); otherwise None."""
    keys = [
        ("workspace", q.workspace_id),
        ("deployment", q.deployment_id),
        ("dag", q.dag_id),
        ("dag_tag", q.dag_tags[0] if len(q.dag_tags) == 1 else None),
    ]
    given = [(kind, key) for kind, key in keys if key is not None]
    if len(given) != 1 or len(q.dag_tags) > 1:
        return None
    kind, key = given[0]
    return kind, key


async def _held(db: AsyncSession, org_id: str, kind: str, key: str) -> int:
    """A holder count: its row plus the deltas not yet folded into it (migration 0009), read
    in one statement so that a fold (one transaction) is seen whole or not at all."""
    row = select(HolderCount.holders.label("n")).where(
        HolderCount.organization_id == org_id, HolderCount.kind == kind, HolderCount.key == key
    )
    deltas = select(HolderCountDelta.delta.label("n")).where(
        HolderCountDelta.organization_id == org_id,
        HolderCountDelta.kind == kind,
        HolderCountDelta.key == key,
    )
    both = union_all(row, deltas).subquery()
    return int(await db.scalar(select(func.coalesce(func.sum(both.c.n), 0))) or 0)


async def _count(db: AsyncSession, org: Organization, q: MemberQuery, conditions: list[Any]) -> int:
    """Exact totalCount, cheaply. No filter: the member count kept with the memberships. One
    filter value: the distinct holders kept in holder_counts by the role_bindings triggers.
    Otherwise (several filters, several dagTags): count the distinct holders of each condition
    straight from the covering indexes on role_bindings (intersected when there are several),
    which is exact because a user holds bindings in an organization only while a member of it
    (bindings are made with the membership and dropped with the user)."""
    if not conditions:
        return org.member_count
    key = holder_key(q)
    if key is not None:
        return await _held(db, org.id, *key)
    if len(conditions) == 1:
        holders = _holders(org.id, conditions[0]).subquery()
        query = select(func.count(func.distinct(holders.c.subject_id)))
        return int(await db.scalar(query) or 0)
    # users holding every condition: one index-only scan per condition, intersected (59 ms
    # for the biggest workspace with the biggest dagTag at 1M users, where joining users and
    # memberships to both took 1,060 ms)
    both = intersect(*(_holders(org.id, c) for c in conditions)).subquery()
    return int(await db.scalar(select(func.count()).select_from(both)) or 0)


async def list_members(
    db: AsyncSession, actor: Principal, org_id: str, q: MemberQuery
) -> Page[Member]:
    org = await organizations.get_visible(db, actor, org_id)
    actor.require("organization.users.list", scopes.organization(org_id))
    check_window(q.offset, q.limit)
    order = order_by(parse_sorts(q.sorts, MEMBER_SORTS), _SORT_COLUMNS, User.id)
    conditions = _holder_conditions(q)
    total = await _count(db, org, q, conditions)
    query = _filtered(org_id, conditions)
    if q.limit == 0 or q.offset >= total:
        return Page([], total, q.offset, q.limit)
    page = query.with_only_columns(*SHOWN_USER, Membership.role).order_by(*order)
    rows = (await db.execute(page.offset(q.offset).limit(q.limit))).all()
    bindings = await _page_bindings(db, org_id, [row.id for row in rows])
    members = [Member(row, roleset_from_bindings(row.role, bindings[row.id])) for row in rows]
    return Page(members, total, q.offset, q.limit)


# --- replacing roles -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Custom:
    scope_type: str
    restricted_to: frozenset[str]  # workspace ids; empty means anywhere in the organization


async def _custom_roles(db: AsyncSession, org_id: str) -> dict[str, _Custom]:
    rows = await db.execute(
        select(CustomRole.name, CustomRole.scope_type, CustomRole.restricted_workspace_ids).where(
            CustomRole.organization_id == org_id
        )
    )
    return {name: _Custom(scope, frozenset(ws or ())) for name, scope, ws in rows}


def _role_ok(role: str, scope: ScopeType, custom: dict[str, _Custom], ws_id: str) -> str | None:
    """None when `role` may be bound at `scope` in workspace `ws_id`, else why not."""
    wanted = ScopeType.DAG if scope is ScopeType.DAG_TAG else scope
    builtin = ROLES.get(role)
    if builtin is not None:
        return None if builtin.scope is wanted else f"not a {wanted.value} role"
    found = custom.get(role)
    if found is None or found.scope_type != wanted.value:
        return f"unknown {wanted.value} role"
    if found.restricted_to and ws_id not in found.restricted_to:
        return "this custom role is restricted to other workspaces"
    return None


async def build_bindings(
    db: AsyncSession,
    org_id: str,
    subject_type: str,
    subject_id: str,
    roles: RoleSet,
    created_by: str | None,
) -> list[RoleBinding]:
    """Validate a RoleSet against the organization and turn it into bindings (not yet added)."""
    errors: list[FieldError] = []
    scoped_roles = [r for _, r in [*roles.workspace_roles, *roles.deployment_roles]]
    named = {*scoped_roles, *(d.role for d in roles.dag_roles)}
    custom = await _custom_roles(db, org_id) if named - set(ROLES) else {}
    if roles.organization_role is not None and roles.organization_role not in ORGANIZATION_ROLES:
        errors.append(FieldError("organizationRole", "invalid", "unknown organization role"))
    dep_ids = [d for d, _ in roles.deployment_roles] + [d.deployment_id for d in roles.dag_roles]
    ws_found, dep_ws = await tree.ids_in(db, org_id, [w for w, _ in roles.workspace_roles], dep_ids)
    bindings: list[RoleBinding] = []

    def bind(scope: scopes.Scope, role: str) -> None:
        bindings.append(
            RoleBinding(
                organization_id=org_id,
                subject_type=subject_type,
                subject_id=subject_id,
                role=role,
                scope_type=scope.type.value,
                scope_key=scope.key,
                workspace_id=scope.workspace_id,
                deployment_id=scope.deployment_id,
                dag_id=scope.dag_id,
                dag_tag=scope.dag_tag,
                created_by=created_by,
            )
        )

    for i, (ws_id, role) in enumerate(roles.workspace_roles):
        where = f"workspaceRoles[{i}]"
        if ws_id not in ws_found:
            errors.append(FieldError(f"{where}.workspaceId", "not_found", "no such workspace"))
        elif role not in WORKSPACE_ROLES:
            errors.append(FieldError(f"{where}.role", "invalid", "unknown workspace role"))
        else:
            bind(scopes.workspace(org_id, ws_id), role)
    for i, (dep_id, role) in enumerate(roles.deployment_roles):
        where = f"deploymentRoles[{i}]"
        if dep_id not in dep_ws:
            errors.append(FieldError(f"{where}.deploymentId", "not_found", "no such deployment"))
        elif problem := _role_ok(role, ScopeType.DEPLOYMENT, custom, dep_ws[dep_id]):
            errors.append(FieldError(f"{where}.role", "invalid", problem))
        else:
            bind(scopes.deployment(org_id, dep_ws[dep_id], dep_id), role)
    for i, dag in enumerate(roles.dag_roles):
        where = f"dagRoles[{i}]"
        if dag.deployment_id not in dep_ws:
            errors.append(FieldError(f"{where}.deploymentId", "not_found", "no such deployment"))
        elif (dag.dag_id is None) == (dag.dag_tag is None):
            errors.append(FieldError(where, "invalid", "exactly one of dagId and dagTag"))
        elif problem := _role_ok(dag.role, ScopeType.DAG, custom, dep_ws[dag.deployment_id]):
            errors.append(FieldError(f"{where}.role", "invalid", problem))
        else:
            ws_id = dep_ws[dag.deployment_id]
            scope = (
                scopes.dag(org_id, ws_id, dag.deployment_id, dag.dag_id)
                if dag.dag_id is not None
                else scopes.dag_tag(org_id, ws_id, dag.deployment_id, dag.dag_tag or "")
            )
            bind(scope, dag.role)
    keys = [b.scope_key for b in bindings]
    if len(keys) != len(set(keys)):
        errors.append(FieldError("roles", "duplicate", "one role per scope"))
    if errors:
        raise Invalid("invalid roles", errors)
    return bindings


async def replace_user_roles(
    db: AsyncSession, actor: Principal, org_id: str, user_id: str, roles: RoleSet
) -> RoleSet:
    """Replace every role the user holds in the organization. A non-member given an
    organizationRole joins the organization, when the caller may see every user of the
    instance (system rights); to anyone else a non-member is "user not found", exactly as a
    made-up id, so that an organization's owner can neither learn that another tenant's user
    exists nor pull them in without an invite. Serialized per user by a row lock.

    Plain statements, no ORM unit of work on the way a member's roles change (bench/
    write_cost.py): the ORM's flush, identity map and loaded objects cost a role change
    more CPU than its SQL, and under read load every statement also waits its turn."""
    await _may_replace(db, actor, org_id)
    # Locks the user's row and stamps it, then their membership's (evaluated for the updated
    # row, so after its lock: the order every writer of a member takes) in one statement.
    found = await _locked_member(db, org_id, user_id)
    if found is None or not found.org_found:
        await organizations.load(db, org_id)  # 404 when the organization is missing
    has_scoped = roles.workspace_roles or roles.deployment_roles or roles.dag_roles
    if has_scoped and roles.organization_role is None:
        raise Invalid(
            "workspace, deployment and DAG roles require an organizationRole",
            [FieldError("organizationRole", "required", "required with scoped roles")],
        )
    member_role: str | None = found.role if found is not None else None
    if found is None or (member_role is None and not actor.can("system.users.get", SYSTEM_SCOPE)):
        raise NotFound("user not found")
    if member_role is None and roles.organization_role is None:
        raise NotFound("user not found in this organization")
    new_bindings = await build_bindings(db, org_id, "user", user_id, roles, actor.actor_id)
    demoting = member_role == OWNER and roles.organization_role not in (None, OWNER)
    # Lock order: the organization's row before the count locks that deleting bindings takes
    # (migration 0009), as remove_member takes them; only demoting an owner locks that row.
    if demoting:
        await _lock_organization(db, org_id)
    current = await _drop_user_bindings(db, org_id, user_id)
    before = roleset_from_bindings(member_role, current)
    await guard_strong_grants(db, actor, org_id, roles, before)
    role_now = roles.organization_role or member_role or ""
    if member_role is None:  # a non-member holds no bindings here: the DELETE locked nothing
        await organizations.add_member(db, org_id, user_id, role_now)
    elif role_now != member_role:
        if demoting:
            await _keep_an_owner(db, org_id)
        await _set_member_role(db, org_id, user_id, role_now)
    await insert_bindings(db, new_bindings, user_scope(user_id))
    after = roleset_from_bindings(role_now, new_bindings)
    await record(
        db,
        actor,
        "organization.user.roles.replace",
        target_type="user",
        target_id=user_id,
        organization_id=org_id,
        details={"before": roles_json(before), "after": roles_json(after)},
        at_once=True,
    )
    return after


_REPLACE_ROLES = "organization.users.roles.update"


async def _may_replace(db: AsyncSession, actor: Principal, org_id: str) -> None:
    """The caller may change members' roles here; refused as organizations.get_visible and
    then the permission check would, in that order (the organization is loaded only to
    refuse: the lock statement tells whether it exists)."""
    scope = scopes.organization(org_id)
    actor.require_visible("organization.get", scope, "organization")
    if not actor.can(_REPLACE_ROLES, scope):
        await organizations.load(db, org_id)  # a missing organization answers 404 first
        actor.require(_REPLACE_ROLES, scope)


def _lock_member(notify: bool) -> Any:
    """UPDATE of the user's row (stamped) returning its id, their role in the organization
    (row locked; None for a non-member) and whether the organization exists; with `notify`
    (PostgreSQL), also the commit's NOTIFY that the user's cached answers are stale, sent
    now with the statement rather than as one more before the commit (db/engine.py:
    wrote_for_user). A constant, its parameters bound: SQLAlchemy keys its compiled form
    by walking the statement, which a statement built per call pays on every execution."""
    user, org = bindparam("user", type_=String), bindparam("org", type_=String)
    role = (
        select(_memberships.role)
        .where(_memberships.organization_id == org, _memberships.user_id == user)
        .with_for_update()
        .scalar_subquery()
    )
    returned: list[ColumnElement[Any]] = [_users.id, role.label("role")]
    org_found = select(Organization.id).where(Organization.id == org).exists()
    returned.append(org_found.label("org_found"))
    if notify:
        returned.append(func.pg_notify(bindparam("channel"), bindparam("payload")))
    stamp = update(cast(Table, User.__table__)).values(updated_at=bindparam("now"))
    return stamp.where(_users.id == user).returning(*returned)


_LOCK_MEMBER = {notify: _lock_member(notify) for notify in (False, True)}


async def _locked_member(db: AsyncSession, org_id: str, user_id: str) -> Any:
    """The row of _LOCK_MEMBER (id, role, org_found), None when there is no such user."""
    notify = bool(db.sync_session.info.get(NOTIFY))
    params = {"user": user_id, "org": org_id, "now": utcnow()}
    found = await db.execute(
        _LOCK_MEMBER[notify],
        params | user_notice(user_id) if notify else params,
        execution_options=scoped(user_scope(user_id)),
    )
    row = found.first()
    if row is not None:
        wrote_for_user(db, user_id, announced=notify)
    return row


async def _set_member_role(db: AsyncSession, org_id: str, user_id: str, role: str) -> None:
    await db.execute(
        update(cast(Table, Membership.__table__))
        .where(_memberships.organization_id == org_id, _memberships.user_id == user_id)
        .values(role=role)
        .execution_options(**scoped(user_scope(user_id)))
    )


_INSERT_BINDINGS = insert(_BINDINGS)


async def insert_bindings(db: AsyncSession, bindings: Sequence[RoleBinding], scope: str) -> None:
    """Write bindings made by build_bindings (not added to the session) in one INSERT, as
    plain rows: their unit-of-work flush cost a role change more than the statement. The
    rows concern the subject's `scope` alone."""
    if bindings:
        rows = [{name: getattr(b, name) for name in _BINDING_VALUES} for b in bindings]
        await db.execute(_INSERT_BINDINGS, rows, execution_options=scoped(scope))


async def remove_member(db: AsyncSession, actor: Principal, org_id: str, user_id: str) -> None:
    """Take a user out of an organization: their organization role, every role they hold
    inside it, and their place in its teams. Their account, their roles in other
    organizations and their tokens stay. Removing an owner needs elevation, and an
    organization keeps at least one owner. Serialized per organization by its row lock."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.users.delete", scopes.organization(org_id))
    user = await db.scalar(select(User).where(User.id == user_id).with_for_update())
    membership = await db.get(Membership, (org_id, user_id), with_for_update=True)
    if user is None or membership is None:
        raise NotFound("user not found in this organization")
    if membership.role == OWNER:
        actor.require_elevation()
        await _keep_an_owner(db, org_id)
    await organizations.adjust_member_count(db, org_id, -1)
    current = await _drop_user_bindings(db, org_id, user_id)
    await db.execute(
        delete(TeamMember)
        .where(TeamMember.organization_id == org_id, TeamMember.user_id == user_id)
        .execution_options(**scoped(user_scope(user_id)))
    )
    before = roleset_from_bindings(membership.role, current)
    await db.delete(membership)
    if user.primary_organization_id == org_id:
        user.primary_organization_id = None
    user.updated_at = utcnow()
    await db.flush()
    await record(
        db,
        actor,
        "organization.user.remove",
        target_type="user",
        target_id=user_id,
        organization_id=org_id,
        details={"before": roles_json(before)},
    )


_DROP_USER_BINDINGS = (
    delete(_BINDINGS)  # the table's, not the ORM's bulk delete: no session to keep in step
    .where(
        _bindings.subject_type == "user",
        _bindings.subject_id == bindparam("user"),
        _bindings.organization_id == bindparam("org"),
    )
    .returning(*_SHOWN_BINDING)
)


async def _drop_user_bindings(
    db: AsyncSession, org_id: str, user_id: str
) -> Sequence[ShownBinding]:
    """Delete the user's own bindings in the organization; what they were. The holder counts
    follow in the role_bindings triggers, which serialize writers per user, not per counter
    (migration 0009)."""
    params = {"user": user_id, "org": org_id}
    rows = await db.execute(
        _DROP_USER_BINDINGS, params, execution_options=scoped(user_scope(user_id))
    )
    return rows.all()


async def _lock_organization(db: AsyncSession, org_id: str) -> None:
    await db.execute(select(Organization.id).where(Organization.id == org_id).with_for_update())


async def _keep_an_owner(db: AsyncSession, org_id: str) -> None:
    """Refuse to take away the organization's last owner. Counted under the organization's
    row lock, so two owners demoting or removing each other at once cannot both succeed."""
    await _lock_organization(db, org_id)
    count = await db.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == org_id, Membership.role == OWNER)
    )
    if int(count or 0) <= 1:
        raise Invalid("an organization keeps at least one owner: make someone else owner first")


def _grants(roles: RoleSet) -> set[tuple[str, str]]:
    """(where, role) for every role of a RoleSet."""
    pairs = {("organization", roles.organization_role)} if roles.organization_role else set()
    pairs |= {(f"workspace:{w}", r) for w, r in roles.workspace_roles}
    pairs |= {(f"deployment:{d}", r) for d, r in roles.deployment_roles}
    pairs |= {(f"dag:{d.deployment_id}:{d.dag_id}:{d.dag_tag}", d.role) for d in roles.dag_roles}
    return pairs


async def guard_strong_grants(
    db: AsyncSession, actor: Principal, org_id: str, new: RoleSet, old: RoleSet | None = None
) -> None:
    """The one guard on every path to a strong grant inside an organization (member roles,
    team roles and members, invites, API tokens): when a role the subject did not hold there
    is strong (authz.catalogue.is_strong; a custom role by its permissions), the caller's
    credential must be elevated if the instance demands it."""
    held = _grants(old) if old is not None else set()
    added = {role for _, role in _grants(new) - held}
    if not added:
        return
    custom = added - set(ROLE_PERMISSIONS)
    strong_custom = False
    if custom:
        perms = await db.scalars(
            select(CustomRole.permissions).where(
                CustomRole.organization_id == org_id, CustomRole.name.in_(custom)
            )
        )
        strong_custom = any(is_strong_permission_set(p) for p in perms)
    if strong_custom:
        actor.require_elevation()
    actor.require_elevation_to_grant(added)


def roles_json(roles: RoleSet) -> dict[str, Any]:
    return {
        "organizationRole": roles.organization_role,
        "workspaceRoles": [list(w) for w in roles.workspace_roles],
        "deploymentRoles": [list(d) for d in roles.deployment_roles],
        "dagRoles": [[d.deployment_id, d.role, d.dag_id, d.dag_tag] for d in roles.dag_roles],
    }

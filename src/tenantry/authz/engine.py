"""The permission engine: check, explain, effective (in memory) and who_can (in SQL).

A subject's grants (organization memberships, its own role bindings and its teams' bindings)
are loaded once per request and indexed by scope key, so `check` is a handful of dict look-ups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.catalogue import ROLE_PERMISSIONS, ROLES
from tenantry.authz.scopes import SYSTEM_SCOPE, Scope, ScopeType
from tenantry.db.models import CustomRole, Membership, RoleBinding, TeamMember

EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Grant:
    """One role held at one scope, and where it comes from."""

    role: str
    scope: Scope
    subject_type: str  # user | team | token
    subject_id: str
    source: str  # membership | binding

    def as_dict(self) -> dict[str, str | None]:
        return {
            "role": self.role,
            "scopeType": self.scope.type.value,
            "scopeKey": self.scope.key,
            "subjectType": self.subject_type,
            "subjectId": self.subject_id,
            "source": self.source,
        }


class Grants:
    """A subject's grants, indexed for fast checks."""

    def __init__(
        self,
        grants: Iterable[Grant],
        custom_roles: Mapping[tuple[str, str], frozenset[str]] | None = None,
        teams: Iterable[str] = (),
    ) -> None:
        self.grants = tuple(grants)
        self._custom = dict(custom_roles or {})
        # Every team the subject is in, whether or not it grants anything yet: a cached
        # answer for this subject depends on them all (identity/principals.scopes_of).
        self.teams = frozenset(teams)
        by_key: dict[str, set[str]] = defaultdict(set)
        for grant in self.grants:
            by_key[grant.scope.key] |= self.permissions_of(grant)
        self._by_key = {key: frozenset(perms) for key, perms in by_key.items()}
        # every permission held anywhere: most denials are a single set look-up
        self._held: frozenset[str] = frozenset().union(*self._by_key.values())

    def permissions_of(self, grant: Grant) -> frozenset[str]:
        builtin = ROLE_PERMISSIONS.get(grant.role)
        if builtin is not None:
            return builtin
        return self._custom.get((grant.scope.organization_id or "", grant.role), EMPTY)

    def check(self, permission: str, scope: Scope, dag_tags: Iterable[str] = ()) -> bool:
        """Whether a grant at `scope` or above carries `permission`. The keys looked up are
        exactly `scope.ancestor_keys(dag_tags)`, from the top, built one at a time and only
        until one grants: this is the hot path of every guard, hence unrolled."""
        if permission not in self._held:
            return False
        by_key = self._by_key
        if permission in by_key.get("SYSTEM", EMPTY):
            return True
        if (org := scope.organization_id) and permission in by_key.get(
            f"ORGANIZATION:{org}", EMPTY
        ):
            return True
        if (ws := scope.workspace_id) and permission in by_key.get(f"WORKSPACE:{ws}", EMPTY):
            return True
        if (dep := scope.deployment_id) and permission in by_key.get(f"DEPLOYMENT:{dep}", EMPTY):
            return True
        if scope.type is ScopeType.DAG:
            if permission in by_key.get(scope.key, EMPTY):
                return True
            return any(permission in by_key.get(f"DAG_TAG:{dep}:{tag}", EMPTY) for tag in dag_tags)
        return scope.type is ScopeType.DAG_TAG and permission in by_key.get(scope.key, EMPTY)

    def explain(self, permission: str, scope: Scope, dag_tags: Iterable[str] = ()) -> list[Grant]:
        keys = set(scope.ancestor_keys(dag_tags))
        return [
            g for g in self.grants if g.scope.key in keys and permission in self.permissions_of(g)
        ]

    def effective(self) -> list[tuple[str, Scope]]:
        seen: dict[tuple[str, str], Scope] = {}
        for grant in self.grants:
            for permission in sorted(self.permissions_of(grant)):
                seen.setdefault((permission, grant.scope.key), grant.scope)
        return [(perm, scope) for (perm, _), scope in seen.items()]

    def organization_ids(self) -> set[str]:
        return {g.scope.organization_id for g in self.grants if g.scope.organization_id}

    def has_system_role(self) -> bool:
        return any(g.scope.type is ScopeType.SYSTEM for g in self.grants)

    def custom_roles(self) -> set[tuple[str, str]]:
        """(organization, name) of every grant whose role is not a built-in one."""
        return {(g.scope.organization_id or "", g.role) for g in self.grants if g.role not in ROLES}


ALL_POWERFUL = Grants(
    [Grant("SYSTEM_ADMIN", Scope(ScopeType.SYSTEM), "system", "system", "builtin")]
)


def scope_of(binding: RoleBinding) -> Scope:
    return Scope(
        ScopeType(binding.scope_type),
        organization_id=binding.organization_id,
        workspace_id=binding.workspace_id,
        deployment_id=binding.deployment_id,
        dag_id=binding.dag_id,
        dag_tag=binding.dag_tag,
    )


def _binding_grant(binding: RoleBinding) -> Grant:
    return Grant(
        binding.role, scope_of(binding), binding.subject_type, binding.subject_id, "binding"
    )


async def _custom_roles(
    db: AsyncSession, org_ids: set[str]
) -> dict[tuple[str, str], frozenset[str]]:
    if not org_ids:
        return {}
    rows = await db.execute(
        select(CustomRole.organization_id, CustomRole.name, CustomRole.permissions).where(
            CustomRole.organization_id.in_(org_ids)
        )
    )
    return {(org, name): frozenset(perms) for org, name, perms in rows}


async def load_user_grants(db: AsyncSession, user_id: str) -> Grants:
    """Memberships, the user's own bindings and the bindings of every team they are in."""
    memberships = await db.execute(
        select(Membership.organization_id, Membership.role)
        .where(Membership.user_id == user_id)
        .order_by(Membership.organization_id)
    )
    grants = [
        Grant(
            role, Scope(ScopeType.ORGANIZATION, organization_id=org), "user", user_id, "membership"
        )
        for org, role in memberships
    ]
    teams = list(await db.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))
    bindings = await db.scalars(
        select(RoleBinding)
        .where(
            or_(
                (RoleBinding.subject_type == "user") & (RoleBinding.subject_id == user_id),
                (RoleBinding.subject_type == "team") & RoleBinding.subject_id.in_(teams),
            )
        )
        # A stable order, the same as directory.whoami's: the faces list roles in it.
        .order_by(RoleBinding.id)
    )
    grants.extend(_binding_grant(b) for b in bindings)
    return await _with_custom_roles(db, grants, teams)


async def load_token_grants(db: AsyncSession, token_id: str) -> Grants:
    bindings = await db.scalars(
        select(RoleBinding).where(
            RoleBinding.subject_type == "token", RoleBinding.subject_id == token_id
        )
    )
    return await _with_custom_roles(db, [_binding_grant(b) for b in bindings])


async def _with_custom_roles(
    db: AsyncSession, grants: list[Grant], teams: Iterable[str] = ()
) -> Grants:
    custom_orgs = {g.scope.organization_id for g in grants if g.role not in ROLES}
    custom = await _custom_roles(db, {o for o in custom_orgs if o})
    return Grants(grants, custom, teams)


class Holder(NamedTuple):
    """A subject that holds a permission at a scope, and the grant through which it does.
    (A named tuple: who_can builds one per binding, 100k of them on a big workspace.) Holders
    sort by their fields in this order, which is the order who_can returns them in."""

    subject_type: str
    subject_id: str
    scope_key: str
    role: str


async def who_can(
    db: AsyncSession,
    permission: str,
    scope: Scope,
    *,
    after: Holder | None = None,
    limit: int | None = None,
    system: bool = True,
) -> list[Holder]:
    """Every subject granted `permission` at `scope` directly or from a scope above it, in
    Holder order: the first `limit` of those after `after` (keyset pages; all when None).
    `system=False` leaves out grants at SYSTEM scope (for callers who may not see them)."""
    keys = tuple(k for k in scope.ancestor_keys() if system or k != SYSTEM_SCOPE.key)
    roles = {name for name, perms in ROLE_PERMISSIONS.items() if permission in perms}
    if scope.organization_id:
        custom = await _custom_roles(db, {scope.organization_id})
        roles |= {name for (_, name), perms in custom.items() if permission in perms}
    bound = (
        RoleBinding.subject_type,
        RoleBinding.subject_id,
        RoleBinding.scope_key,
        RoleBinding.role,
    )
    query = select(*bound).where(RoleBinding.scope_key.in_(keys), RoleBinding.role.in_(roles))
    holders = [Holder._make(row) for row in await db.execute(_page(query, bound, after, limit))]
    if scope.organization_id:
        org_key = f"ORGANIZATION:{scope.organization_id}"
        member: tuple[Any, ...] = (
            literal("user"),
            Membership.user_id,
            literal(org_key),
            Membership.role,
        )
        members = select(Membership.user_id, Membership.role).where(
            Membership.organization_id == scope.organization_id, Membership.role.in_(roles)
        )
        rows = await db.execute(_page(members, member, after, limit))
        holders.extend(Holder("user", user, org_key, role) for user, role in rows)
        holders.sort()  # two sorted runs: Timsort merges them in one pass
    return holders if limit is None else holders[:limit]


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _page(query: _Query, order: tuple[Any, ...], after: Holder | None, limit: int | None) -> _Query:
    """`query` in Holder order, past `after` (a row-value comparison), at most `limit` rows."""
    if after is not None:
        query = query.where(tuple_(*order) > tuple_(*(literal(v) for v in after)))
    query = query.order_by(*order)
    return query if limit is None else query.limit(limit)

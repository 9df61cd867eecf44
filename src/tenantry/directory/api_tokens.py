"""Astro API tokens: subjects of their own, with their own role bindings, owned by an
organization and capped by the user who created them.

A token row has kind "api", `organization_id`, `scope_type` (its Astro `type`: ORGANIZATION,
WORKSPACE or DEPLOYMENT), `scope_id` (its Astro entityId: the organization, workspace or
deployment) and `user_id` = the user who created it (directly, or through another API token of
theirs).
Authentication holds every API token under that user's grants as they are at each request
(`Principal.ceiling`), so a token loses power at once when its creator does.

Its roles are role bindings with subject_type "token": the organization role (ORGANIZATION
tokens only, required for them) at ORGANIZATION scope, workspace roles (ORGANIZATION tokens: any
workspace of the organization; WORKSPACE tokens: their own, required) and deployment roles
(ORGANIZATION tokens: any deployment; WORKSPACE tokens: those of their workspace; DEPLOYMENT
tokens: their own, required).

Permissions, checked at the token's *home* scope (the organization, its workspace or its
deployment): `organization.tokens.<action>`, `workspace.tokens.<action>` and
`deployment.tokens.<action>` respectively, for action list / get / create / update (renaming,
replacing roles, rotating) / delete. Roles inherit downwards, so an ORGANIZATION_OWNER manages
every token, a WORKSPACE_OWNER its workspace's tokens and the deployment tokens inside it, a
WORKSPACE_OPERATOR or DEPLOYMENT_ADMIN deployment tokens. Listing the whole organization needs
`organization.tokens.list`; a list filtered by workspaceId (deploymentId) needs only
`workspace.tokens.list` at that workspace (`deployment.tokens.list` at that deployment).

A token can never hold more than whoever gives it its roles: creating a token, replacing its
roles and rotating it (which hands the caller a working secret) require the caller to hold every
permission of each of the token's roles at that role's scope (for an API token caller, its own
roles as capped by its creator). The secret is `tnt_` + 256 random bits, stored only as its
SHA-256 digest and shown once, by create and rotate. Rotation replaces the digest and short
token of the same row (the token id, roles and expiry stay), so the old secret fails at once.
Deleting removes the row and its bindings.

Organizations the caller cannot reach are 404: the caller must see the organization
(`organization.get`) or hold a role inside it (a WORKSPACE token sees no organization but may
manage its workspace's tokens).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.catalogue import ORGANIZATION_ROLES, ROLE_PERMISSIONS
from tenantry.authz.engine import scope_of
from tenantry.authz.scopes import DEPTH, Scope, ScopeType
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import token_scope
from tenantry.db.models import CustomRole, Organization, RoleBinding, Token
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory import members, organizations, tree
from tenantry.directory.members import RoleSet, guard_strong_grants, roleset_from_bindings
from tenantry.directory.subjects import Subject, load_subjects
from tenantry.errors import FieldError, Forbidden, Invalid, NotFound
from tenantry.identity import tokens
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import TokenKind

TOKEN_TYPES = (ScopeType.ORGANIZATION.value, ScopeType.WORKSPACE.value, ScopeType.DEPLOYMENT.value)
_LEVEL = {"ORGANIZATION": "organization", "WORKSPACE": "workspace", "DEPLOYMENT": "deployment"}
MAX_NAME = 256
MAX_DESCRIPTION = 500
MAX_DAYS = 3650
MAX_ROLES = 1000
TOKEN_SORTS = ("name", "description", "createdAt", "updatedAt", "tokenStartAt")
_SORT_COLUMNS: dict[str, Any] = {
    "name": Token.name,
    "description": Token.description,
    "createdAt": Token.created_at,
    "updatedAt": Token.updated_at,
    "tokenStartAt": Token.created_at,
}
# What neither database stores nor a client can display: control characters (names) and lone
# surrogates; descriptions may keep tabs and line breaks.
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BUILT_FIELD = re.compile(r"^(workspaceRoles|deploymentRoles)\[(\d+)\](?:\.(\w+))?$")
SUBJECT = "token"


@dataclass(frozen=True)
class TokenRole:
    """One role of a token, as Astro's ApiTokenRole names it."""

    entity_type: str  # ORGANIZATION | WORKSPACE | DEPLOYMENT
    entity_id: str
    role: str


@dataclass(frozen=True)
class ApiTokenView:
    token: Token
    roles: tuple[TokenRole, ...]
    subjects: Mapping[str, Subject]
    secret: str | None = None  # only right after create and rotate

    @property
    def id(self) -> str:
        return self.token.id


@dataclass
class NewApiToken:
    name: str
    type: str  # ORGANIZATION | WORKSPACE | DEPLOYMENT
    role: str
    entity_id: str | None = None  # the workspace or deployment; the organization (or None)
    description: str = ""
    expiry_days: int | None = None  # None: never expires


@dataclass(frozen=True)
class ApiTokenQuery:
    workspace_id: str | None = None
    deployment_id: str | None = None
    only_organization_tokens: bool = False
    offset: int = 0
    limit: int = 20
    sorts: tuple[str, ...] = ()


# Field names of validation errors: (index into the request's roles or None, field) -> name.
FieldNames = Callable[[int | None, str], str]


def _create_fields(_index: int | None, field: str) -> str:
    return {"entityType": "type"}.get(field, field)


def _roles_fields(index: int | None, field: str) -> str:
    return "roles" if index is None else f"roles[{index}].{field}"


# --- helpers ---------------------------------------------------------------------------------


async def _reach(db: AsyncSession, actor: Principal, org_id: str) -> Organization:
    """The organization, or 404 unless the caller sees it or holds a role inside it."""
    if not actor.can("organization.get", scopes.organization(org_id)):
        inside = any(g.scope.organization_id == org_id for g in actor.grants.grants)
        capped = actor.ceiling is None or any(
            g.scope.organization_id == org_id for g in actor.ceiling.grants
        )
        if not (inside and capped):
            raise NotFound("organization not found")
    return await organizations.load(db, org_id)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or _BAD_NAME.search(name):
        raise Invalid(
            "invalid token name",
            [FieldError("name", "invalid", f"1 to {MAX_NAME} printable characters")],
        )
    return name


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION or _BAD_TEXT.search(description):
        raise Invalid(
            "invalid description",
            [FieldError("description", "invalid", f"at most {MAX_DESCRIPTION} characters")],
        )
    return description


def _check_days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise Invalid(
            "invalid token expiry",
            [
                FieldError(
                    "tokenExpiryPeriodInDays", "out_of_range", f"between 1 and {MAX_DAYS} days"
                )
            ],
        )
    return days


async def _home(db: AsyncSession, org_id: str, token_type: str, entity_id: str | None) -> Scope:
    """The scope a token of this type lives at; 400 naming entityId when it is not there."""
    if token_type not in TOKEN_TYPES:
        raise Invalid(
            "invalid token type",
            [FieldError("type", "invalid", f"one of {', '.join(TOKEN_TYPES)}")],
        )
    if token_type == ScopeType.ORGANIZATION.value:
        if entity_id not in (None, org_id):
            raise Invalid(
                "entityId must name this organization for an ORGANIZATION token",
                [FieldError("entityId", "invalid", "not this organization")],
            )
        return scopes.organization(org_id)
    if not entity_id:
        raise Invalid(
            f"entityId is required for a {token_type} token",
            [FieldError("entityId", "required", f"the {token_type.lower()} of the token")],
        )
    if token_type == ScopeType.WORKSPACE.value:
        scope = await tree.workspace_scope(db, org_id, entity_id)
    else:
        scope = await tree.deployment_scope(db, org_id, entity_id)
    if scope is None:
        raise Invalid(
            f"no such {token_type.lower()} in this organization",
            [FieldError("entityId", "not_found", f"no such {token_type.lower()}")],
        )
    return scope


async def _token_home(db: AsyncSession, token: Token) -> Scope | None:
    """None when the token's workspace or deployment no longer exists."""
    org_id = token.organization_id or ""
    if token.scope_type == ScopeType.WORKSPACE.value:
        return await tree.workspace_scope(db, org_id, token.scope_id or "")
    if token.scope_type == ScopeType.DEPLOYMENT.value:
        return await tree.deployment_scope(db, org_id, token.scope_id or "")
    return scopes.organization(org_id)


def _require(
    actor: Principal, token_type: str, action: str, home: Scope | None, org_id: str
) -> None:
    """`<level>.tokens.<action>` at the token's home scope (the organization's permission
    when that scope is gone)."""
    if home is None:
        actor.require(f"organization.tokens.{action}", scopes.organization(org_id))
        return
    actor.require(f"{_LEVEL.get(token_type, 'organization')}.tokens.{action}", home)


async def _load(db: AsyncSession, org_id: str, token_id: str, *, lock: bool = False) -> Token:
    query = select(Token).where(
        Token.id == token_id,
        Token.organization_id == org_id,
        Token.kind == TokenKind.API.value,
        Token.revoked_at.is_(None),
    )
    token = await db.scalar(query.with_for_update() if lock else query)
    if token is None:
        raise NotFound("API token not found")
    return token


async def _bindings_of(
    db: AsyncSession, org_id: str, token_ids: Sequence[str]
) -> dict[str, list[RoleBinding]]:
    grouped: dict[str, list[RoleBinding]] = defaultdict(list)
    if not token_ids:
        return grouped
    rows = await db.scalars(
        select(RoleBinding).where(
            RoleBinding.subject_type == SUBJECT,
            RoleBinding.subject_id.in_(token_ids),
            RoleBinding.organization_id == org_id,
        )
    )
    for binding in rows:
        grouped[binding.subject_id].append(binding)
    return grouped


def _token_roles(bindings: Sequence[RoleBinding]) -> tuple[TokenRole, ...]:
    """Organization role first, then workspace and deployment roles (DAG bindings, which this
    API cannot create, are not shown)."""
    shown = [b for b in bindings if b.scope_type in TOKEN_TYPES]
    shown.sort(key=lambda b: (DEPTH[ScopeType(b.scope_type)], b.scope_key, b.role))
    return tuple(TokenRole(b.scope_type, scope_of(b).entity_id or "", b.role) for b in shown)


async def _views(
    db: AsyncSession, org_id: str, rows: Sequence[Token], secret: str | None = None
) -> list[ApiTokenView]:
    bindings = await _bindings_of(db, org_id, [t.id for t in rows])
    subjects = await load_subjects(db, [i for t in rows for i in (t.created_by, t.updated_by)])
    return [ApiTokenView(t, _token_roles(bindings[t.id]), subjects, secret) for t in rows]


def _roles_json(roles: Sequence[TokenRole]) -> list[list[str]]:
    return [[r.entity_type, r.entity_id, r.role] for r in roles]


def _touch(token: Token, actor: Principal) -> None:
    token.updated_at = utcnow()
    token.updated_by = actor.actor_id


# --- roles: validation and the ceiling -------------------------------------------------------


def _remap(exc: Invalid, where: Mapping[str, list[int]], names: FieldNames) -> Invalid:
    """build_bindings names fields workspaceRoles[j].workspaceId...; name the request's."""
    fields = []
    for f in exc.fields:
        match = _BUILT_FIELD.match(f.field)
        if match is None:
            fields.append(FieldError(names(None, "role"), f.code, f.message))
            continue
        index = where[match.group(1)][int(match.group(2))]
        field = "role" if match.group(3) == "role" else "entityId"
        fields.append(FieldError(names(index, field), f.code, f.message))
    return Invalid(exc.message, fields)


async def _validated_bindings(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    token_type: str,
    home: Scope,
    roles: Sequence[TokenRole],
    names: FieldNames,
) -> list[RoleBinding]:
    """The token's bindings for `roles` (subject_id still empty), or 400 naming each problem.

    Each role must fit the token's type, and the role at the token's home scope is required."""
    errors: list[FieldError] = []
    org_roles: list[str] = []
    ws_roles: list[tuple[str, str]] = []
    dep_roles: list[tuple[str, str]] = []
    where: dict[str, list[int]] = {"workspaceRoles": [], "deploymentRoles": []}
    if len(roles) > MAX_ROLES:
        raise Invalid("too many roles", [FieldError(names(None, ""), "too_long", "at most 1000")])
    for i, r in enumerate(roles):
        if r.entity_type not in TOKEN_TYPES:
            errors.append(FieldError(names(i, "entityType"), "invalid", "unknown entity type"))
        elif DEPTH[ScopeType(r.entity_type)] < DEPTH[home.type]:
            errors.append(
                FieldError(
                    names(i, "entityType"),
                    "not_allowed",
                    f"a {token_type} token holds no {r.entity_type} role",
                )
            )
        elif r.entity_type == ScopeType.ORGANIZATION.value:
            if r.entity_id != org_id:
                errors.append(FieldError(names(i, "entityId"), "invalid", "not this organization"))
            elif r.role not in ORGANIZATION_ROLES:
                errors.append(FieldError(names(i, "role"), "invalid", "unknown organization role"))
            else:
                org_roles.append(r.role)
        elif r.entity_type == ScopeType.WORKSPACE.value:
            if home.type is ScopeType.WORKSPACE and r.entity_id != home.workspace_id:
                errors.append(
                    FieldError(names(i, "entityId"), "not_allowed", "not the token's own workspace")
                )
            else:
                where["workspaceRoles"].append(i)
                ws_roles.append((r.entity_id, r.role))
        elif home.type is ScopeType.DEPLOYMENT and r.entity_id != home.deployment_id:
            errors.append(
                FieldError(names(i, "entityId"), "not_allowed", "not the token's own deployment")
            )
        else:
            where["deploymentRoles"].append(i)
            dep_roles.append((r.entity_id, r.role))
    if len(org_roles) > 1:
        errors.append(FieldError(names(None, ""), "duplicate", "one organization role"))
    if not errors:
        own = {
            ScopeType.ORGANIZATION: bool(org_roles),
            ScopeType.WORKSPACE: any(w == home.workspace_id for w, _ in ws_roles),
            ScopeType.DEPLOYMENT: any(d == home.deployment_id for d, _ in dep_roles),
        }
        if not own.get(home.type, False):
            errors.append(
                FieldError(
                    names(None, "role"),
                    "required",
                    f"a {token_type} token needs a role at its own {token_type.lower()}",
                )
            )
    if errors:
        raise Invalid("invalid token roles", errors)
    try:
        scoped = await members.build_bindings(
            db, org_id, SUBJECT, "", RoleSet(None, ws_roles, dep_roles), actor.actor_id
        )
    except Invalid as exc:
        raise _remap(exc, where, names) from exc
    if home.type is ScopeType.WORKSPACE:
        outside = [
            where["deploymentRoles"][j]
            for j, b in enumerate(b for b in scoped if b.scope_type == ScopeType.DEPLOYMENT.value)
            if b.workspace_id != home.workspace_id
        ]
        if outside:
            raise Invalid(
                "a WORKSPACE token holds deployment roles only inside its workspace",
                [
                    FieldError(names(i, "entityId"), "not_allowed", "outside the workspace")
                    for i in outside
                ],
            )
    bindings = [_org_binding(org_id, org_roles[0], actor.actor_id)] if org_roles else []
    return bindings + scoped


def _org_binding(org_id: str, role: str, by: str | None) -> RoleBinding:
    scope = scopes.organization(org_id)
    return RoleBinding(
        organization_id=org_id,
        subject_type=SUBJECT,
        subject_id="",
        role=role,
        scope_type=scope.type.value,
        scope_key=scope.key,
        created_by=by,
    )


async def _permissions_of(
    db: AsyncSession, org_id: str, roles: set[str]
) -> dict[str, frozenset[str]]:
    found = {r: ROLE_PERMISSIONS[r] for r in roles if r in ROLE_PERMISSIONS}
    custom = roles - found.keys()
    if custom:
        rows = await db.execute(
            select(CustomRole.name, CustomRole.permissions).where(
                CustomRole.organization_id == org_id, CustomRole.name.in_(custom)
            )
        )
        found.update({name: frozenset(perms) for name, perms in rows})
    return found


async def _within_caller(
    db: AsyncSession, actor: Principal, org_id: str, bindings: Sequence[RoleBinding]
) -> None:
    """403 unless the caller holds every permission of each role at that role's scope; a
    strong role needs the caller's elevation too (creating, re-roling and rotating all hand
    out a working secret with these roles)."""
    await guard_strong_grants(db, actor, org_id, roleset_from_bindings(None, bindings))
    perms = await _permissions_of(db, org_id, {b.role for b in bindings})
    for binding in bindings:
        scope = scope_of(binding)
        missing = [p for p in sorted(perms.get(binding.role, ())) if not actor.can(p, scope)]
        if missing:
            raise Forbidden(
                f"cannot give a token {binding.role} at {binding.scope_type} {scope.entity_id}: "
                f"the caller lacks {missing[0]} there (a token never exceeds who grants it)"
            )


def _creator(actor: Principal) -> str:
    """The user whose grants cap the token: the caller, or the user behind a calling token."""
    if actor.user is not None:
        return actor.user.id
    if actor.token is not None and actor.token.user_id is not None:
        return actor.token.user_id
    raise Forbidden("an API token is created by a user or by one of their API tokens")


# --- use cases -------------------------------------------------------------------------------


async def list_api_tokens(
    db: AsyncSession, actor: Principal, org_id: str, q: ApiTokenQuery
) -> Page[ApiTokenView]:
    await _reach(db, actor, org_id)
    if not actor.can("organization.tokens.list", scopes.organization(org_id)):
        allowed = False
        if q.deployment_id is not None:
            dep = await tree.deployment_scope(db, org_id, q.deployment_id)
            allowed = dep is not None and actor.can("deployment.tokens.list", dep)
        if not allowed and q.workspace_id is not None:
            ws = await tree.workspace_scope(db, org_id, q.workspace_id)
            allowed = ws is not None and actor.can("workspace.tokens.list", ws)
        if not allowed:
            raise Forbidden("missing permission organization.tokens.list")
    check_window(q.offset, q.limit)
    order = order_by(parse_sorts(q.sorts, TOKEN_SORTS), _SORT_COLUMNS, Token.id)
    query = select(Token).where(
        Token.organization_id == org_id,
        Token.kind == TokenKind.API.value,
        Token.revoked_at.is_(None),
    )
    if q.only_organization_tokens:
        query = query.where(Token.scope_type == ScopeType.ORGANIZATION.value)

    def holding(*conditions: Any) -> Any:
        return Token.id.in_(
            select(RoleBinding.subject_id).where(
                RoleBinding.subject_type == SUBJECT,
                RoleBinding.organization_id == org_id,
                *conditions,
            )
        )

    if q.workspace_id is not None:
        query = query.where(holding(RoleBinding.workspace_id == q.workspace_id))
    if q.deployment_id is not None:
        query = query.where(holding(RoleBinding.deployment_id == q.deployment_id))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    if q.limit == 0 or q.offset >= total:
        return Page([], total, q.offset, q.limit)
    rows = list(await db.scalars(query.order_by(*order).offset(q.offset).limit(q.limit)))
    return Page(await _views(db, org_id, rows), total, q.offset, q.limit)


async def get_api_token(
    db: AsyncSession, actor: Principal, org_id: str, token_id: str
) -> ApiTokenView:
    await _reach(db, actor, org_id)
    token = await _load(db, org_id, token_id)
    _require(actor, token.scope_type or "", "get", await _token_home(db, token), org_id)
    return (await _views(db, org_id, [token]))[0]


async def create_api_token(
    db: AsyncSession, actor: Principal, org_id: str, new: NewApiToken
) -> ApiTokenView:
    """A token with one role at its home scope; the view carries the secret, shown once."""
    await _reach(db, actor, org_id)
    home = await _home(db, org_id, new.type, new.entity_id)
    _require(actor, new.type, "create", home, org_id)
    creator = _creator(actor)
    name = _check_name(new.name)
    description = _check_description(new.description)
    days = _check_days(new.expiry_days)
    role = TokenRole(new.type, home.entity_id or "", new.role)
    bindings = await _validated_bindings(db, actor, org_id, new.type, home, [role], _create_fields)
    await _within_caller(db, actor, org_id, bindings)
    minted = await tokens.mint(
        db,
        kind=TokenKind.API,
        user_id=creator,
        name=name,
        description=description,
        expires_at=tokens.expiry_from_days(days),
        organization_id=org_id,
        created_by=actor.actor_id,
    )
    token = minted.token
    token.scope_type = new.type
    token.scope_id = home.entity_id
    token.expiry_days = days
    for binding in bindings:
        binding.subject_id = token.id
    db.add_all(bindings)
    await db.flush()
    await record(
        db,
        actor,
        "organization.token.create",
        target_type="token",
        target_id=token.id,
        organization_id=org_id,
        details={
            "name": name,
            "type": new.type,
            "entityId": token.scope_id,
            "roles": _roles_json([role]),
            "expiryPeriodInDays": days,
            "creator": creator,
        },
    )
    return (await _views(db, org_id, [token], minted.secret))[0]


async def update_api_token(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    token_id: str,
    name: str,
    description: str | None = None,
) -> ApiTokenView:
    """Renames the token; a description of None keeps the current one."""
    await _reach(db, actor, org_id)
    token = await _load(db, org_id, token_id, lock=True)
    _require(actor, token.scope_type or "", "update", await _token_home(db, token), org_id)
    new_name = _check_name(name)
    if description is not None:
        _check_description(description)
    before = {"name": token.name, "description": token.description}
    token.name = new_name
    if description is not None:
        token.description = description
    _touch(token, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.token.update",
        target_type="token",
        target_id=token.id,
        organization_id=org_id,
        details={"before": before, "after": {"name": token.name, "description": token.description}},
    )
    return (await _views(db, org_id, [token]))[0]


async def replace_api_token_roles(
    db: AsyncSession, actor: Principal, org_id: str, token_id: str, roles: Sequence[TokenRole]
) -> RoleSet:
    """Replaces every role of the token; its next request runs with the new roles."""
    await _reach(db, actor, org_id)
    token = await _load(db, org_id, token_id, lock=True)
    home = await _token_home(db, token)
    _require(actor, token.scope_type or "", "update", home, org_id)
    if home is None:
        raise Invalid(
            "the token's workspace or deployment no longer exists",
            [FieldError("roles", "invalid", "the token can hold no role")],
        )
    if not roles:
        raise Invalid("roles must not be empty", [FieldError("roles", "required", "at least one")])
    token_type = token.scope_type or ""
    bindings = await _validated_bindings(db, actor, org_id, token_type, home, roles, _roles_fields)
    await _within_caller(db, actor, org_id, bindings)
    current = (await _bindings_of(db, org_id, [token.id]))[token.id]
    before = _token_roles(current)
    await db.execute(
        delete(RoleBinding)
        .where(
            RoleBinding.subject_type == SUBJECT,
            RoleBinding.subject_id == token.id,
            RoleBinding.organization_id == org_id,
        )
        .execution_options(**scoped(token_scope(token.id)))
    )
    for binding in bindings:
        binding.subject_id = token.id
    db.add_all(bindings)
    _touch(token, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.token.roles.replace",
        target_type="token",
        target_id=token.id,
        organization_id=org_id,
        details={"before": _roles_json(before), "after": _roles_json(_token_roles(bindings))},
    )
    return roleset_from_bindings(None, bindings)


async def rotate_api_token(
    db: AsyncSession, actor: Principal, org_id: str, token_id: str
) -> ApiTokenView:
    """A new secret for the same token (id, roles and expiry unchanged); the old secret is
    refused from this transaction's commit on. The caller must hold the token's roles, since
    it receives a working secret."""
    await _reach(db, actor, org_id)
    token = await _load(db, org_id, token_id, lock=True)
    _require(actor, token.scope_type or "", "update", await _token_home(db, token), org_id)
    current = (await _bindings_of(db, org_id, [token.id]))[token.id]
    await _within_caller(db, actor, org_id, current)
    secret = tokens.new_secret()
    old_short = token.short_token
    token.digest = tokens.digest(secret)
    token.short_token = secret[len(tokens.PREFIX) : len(tokens.PREFIX) + 8]
    _touch(token, actor)
    await db.flush()
    await record(
        db,
        actor,
        "organization.token.rotate",
        target_type="token",
        target_id=token.id,
        organization_id=org_id,
        details={"before": {"shortToken": old_short}, "after": {"shortToken": token.short_token}},
    )
    return (await _views(db, org_id, [token], secret))[0]


async def delete_api_token(db: AsyncSession, actor: Principal, org_id: str, token_id: str) -> None:
    """The token and its role bindings: its secret is refused from the commit on."""
    await _reach(db, actor, org_id)
    token = await _load(db, org_id, token_id, lock=True)
    _require(actor, token.scope_type or "", "delete", await _token_home(db, token), org_id)
    await db.execute(
        delete(RoleBinding)
        .where(
            RoleBinding.subject_type == SUBJECT,
            RoleBinding.subject_id == token.id,
            RoleBinding.organization_id == org_id,
        )
        .execution_options(**scoped(token_scope(token.id)))
    )
    details = {"name": token.name, "type": token.scope_type, "entityId": token.scope_id}
    await db.delete(token)
    await db.flush()
    await record(
        db,
        actor,
        "organization.token.delete",
        target_type="token",
        target_id=token_id,
        organization_id=org_id,
        details=details,
    )

"""Native routes: system users, organizations, personal tokens, permission checks, roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.responses import Response

from tenantry.authz import catalogue
from tenantry.directory import checks, members, organizations, users
from tenantry.directory.organizations import OrganizationFields
from tenantry.directory.users import UserFields
from tenantry.faces.http import BearerCaller, Db, face_router
from tenantry.faces.native import render, schemas
from tenantry.identity import personal_tokens
from tenantry.ids import ID_PATTERN

router = face_router()


Caller = BearerCaller
AnyId = Annotated[str, Path(pattern=ID_PATTERN)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=0, le=1000)]


@router.post("/organizations", status_code=201, tags=["Organizations"])
async def create_organization(caller: Caller, db: Db, body: schemas.CreateOrganization) -> Any:
    fields = OrganizationFields(
        name=body.name, billing_email=body.billingEmail, support_plan=body.supportPlan
    )
    return render.organization(await organizations.create_organization(db, caller, fields))


@router.get("/organizations", tags=["Organizations"])
async def list_organizations(caller: Caller, db: Db, offset: Offset = 0, limit: Limit = 20) -> Any:
    page = await organizations.list_organizations(db, caller, offset=offset, limit=limit)
    return render.page(
        [render.organization(o) for o in page.items],
        page.total,
        page.offset,
        page.limit,
        "organizations",
    )


@router.get("/organizations/{organizationId}", tags=["Organizations"])
async def get_organization(caller: Caller, db: Db, organizationId: AnyId) -> Any:
    return render.organization(await organizations.get_visible(db, caller, organizationId))


@router.delete("/organizations/{organizationId}", status_code=204, tags=["Organizations"])
async def delete_organization(caller: Caller, db: Db, organizationId: AnyId) -> Response:
    """Deletes the organization with everything inside it (system administrators only)."""
    await organizations.delete_organization(db, caller, organizationId)
    return Response(status_code=204)


@router.delete(
    "/organizations/{organizationId}/members/{userId}", status_code=204, tags=["Organizations"]
)
async def remove_member(caller: Caller, db: Db, organizationId: AnyId, userId: AnyId) -> Response:
    """Takes the user out of the organization: its role, their roles inside it, its teams."""
    await members.remove_member(db, caller, organizationId, userId)
    return Response(status_code=204)


@router.post("/users", status_code=201, tags=["Users"])
async def create_user(caller: Caller, db: Db, body: schemas.CreateUser) -> Any:
    fields = UserFields(full_name=body.fullName, avatar_url=body.avatarUrl, email=body.email)
    return render.user(await users.create_user(db, caller, body.username, fields))


@router.get("/users", tags=["Users"])
async def list_users(
    caller: Caller,
    db: Db,
    offset: Offset = 0,
    limit: Limit = 20,
    q: Annotated[str, Query(max_length=320)] = "",
) -> Any:
    page = await users.list_users(db, caller, offset=offset, limit=limit, search=q)
    return render.page(
        [render.user(u) for u in page.items], page.total, page.offset, page.limit, "users"
    )


@router.get("/users/{userId}", tags=["Users"])
async def get_user(caller: Caller, db: Db, userId: AnyId) -> Any:
    found = await users.get_user(db, caller, userId)
    own = caller.user is not None and caller.user.id == found.id
    return render.user(found, caller.elevated_until if own else None)


@router.patch("/users/{userId}", tags=["Users"])
async def update_user(caller: Caller, db: Db, userId: AnyId, body: schemas.UpdateUser) -> Any:
    fields = UserFields(
        full_name=body.fullName,
        avatar_url=body.avatarUrl,
        email=body.email,
        status=body.status,
        enabled=body.enabled,
    )
    return render.user(await users.update_user(db, caller, userId, fields))


@router.delete("/users/{userId}", status_code=204, tags=["Users"])
async def delete_user(caller: Caller, db: Db, userId: AnyId) -> Response:
    await users.delete_user(db, caller, userId)
    return Response(status_code=204)


@router.post("/users/{userId}/tokens", status_code=201, tags=["Tokens"])
async def create_token(caller: Caller, db: Db, userId: AnyId, body: schemas.CreateToken) -> Any:
    """Mints a personal token; the secret is in the response once and never again."""
    minted = await personal_tokens.create_personal_token(
        db, caller, userId, name=body.name, expires_in_days=body.expiresInDays
    )
    return render.token(minted.token, minted.secret)


@router.get("/users/{userId}/tokens", tags=["Tokens"])
async def list_tokens(caller: Caller, db: Db, userId: AnyId) -> Any:
    tokens = await personal_tokens.list_personal_tokens(db, caller, userId)
    return {"tokens": [render.token(t) for t in tokens]}


@router.delete("/tokens/{tokenId}", status_code=204, tags=["Tokens"])
async def revoke_token(caller: Caller, db: Db, tokenId: AnyId) -> Response:
    await personal_tokens.revoke_token(db, caller, tokenId)
    return Response(status_code=204)


def _scope_ref(scope: schemas.ScopeRef) -> checks.ScopeRef:
    return checks.ScopeRef(scope.type, scope.id, dag_id=scope.dagId, dag_tag=scope.dagTag)


@router.post("/check", tags=["Access"])
async def check(caller: Caller, db: Db, body: schemas.CheckRequest) -> Any:
    """Is `subject` granted `permission` at `scope`? `grantedBy` lists the granting bindings."""
    result = await checks.check(
        db,
        caller,
        body.subject.type,
        body.subject.id,
        body.permission,
        _scope_ref(body.scope),
        tuple(body.scope.dagTags),
    )
    return {"allowed": result.allowed, "grantedBy": [render.grant(g) for g in result.granted_by]}


@router.post("/who-can", tags=["Access"])
async def who_can(caller: Caller, db: Db, body: schemas.WhoCanRequest) -> Any:
    """Every subject granted `permission` at `scope`, with the binding that grants it, in
    pages of `limit` (default 1000): pass `nextCursor` back as `cursor` for the next one."""
    page = await checks.who_can(
        db, caller, body.permission, _scope_ref(body.scope), cursor=body.cursor, limit=body.limit
    )
    return {
        "holders": [
            {
                "subjectType": h.subject_type,
                "subjectId": h.subject_id,
                "role": h.role,
                "scopeKey": h.scope_key,
            }
            for h in page.holders
        ],
        "nextCursor": page.next_cursor,
    }


@router.get("/users/{userId}/permissions", tags=["Access"])
async def effective_permissions(caller: Caller, db: Db, userId: AnyId) -> Any:
    """Every permission the user holds, with the scope where it is granted."""
    pairs = await checks.effective(db, caller, "user", userId)
    return {
        "permissions": [
            {"permission": p, "scopeType": s.type.value, "scopeKey": s.key} for p, s in pairs
        ]
    }


@router.get("/roles", tags=["Access"])
async def list_roles(caller: Caller) -> Any:
    """The built-in role catalogue: every role, its scope and its permissions."""
    return {
        "roles": [
            {
                "name": r.name,
                "scopeType": r.scope.value,
                "description": r.description,
                "permissions": sorted(r.permissions),
            }
            for r in catalogue.BUILTIN_ROLES
        ],
        "permissions": sorted(catalogue.ALL_PERMISSIONS),
    }

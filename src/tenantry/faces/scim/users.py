"""/Users: parse -> one provisioning use case -> render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.models import User
from tenantry.directory import provisioning
from tenantry.directory.predicates import InvalidPredicate, Predicate, Value
from tenantry.errors import NotFound
from tenantry.faces.http import Db
from tenantry.faces.scim import resources
from tenantry.faces.scim.filter import filter_error, parse_filter, to_predicate
from tenantry.faces.scim.patch import apply_patch, parse_patch
from tenantry.faces.scim.render import ScimResponse
from tenantry.faces.scim.schema import USER
from tenantry.faces.scim.wire import (
    ScimCaller,
    ScimRoute,
    Search,
    base_url,
    body_of,
    if_match,
    is_id,
    list_response,
    order_of,
    project,
    projection,
    resource_response,
    search_of_body,
    search_of_query,
)
from tenantry.identity.principals import Principal

router = APIRouter(route_class=ScimRoute, tags=["Users"])

# What a filter may name (RFC 7644 §3.4.2.2), as directory/provisioning.USER_FIELDS' fields.
FILTER_ATTRIBUTES = {
    "id": "id",
    "userName": "username",
    "externalId": "external_id",
    "emails.value": "email",
    "displayName": "full_name",
    "active": "enabled",
    "meta.created": "created_at",
    "meta.lastModified": "updated_at",
    "groups.value": "group",
}
# An account has one address: `emails[type eq "work" and primary eq true]` is that one; and
# every group it is in holds it directly.
EMAIL_ENTRY: dict[str, Value] = {
    "emails.type": "work",
    "emails.primary": True,
    "groups.type": "direct",
}
# What sortBy may name (RFC 7644 §3.4.2.3), as directory/provisioning.USER_ORDERS' fields.
SORT_ATTRIBUTES = {
    "id": "id",
    "userName": "username",
    "displayName": "full_name",
    "name.familyName": "family_name",
    "externalId": "external_id",
    "emails.value": "email",
    "emails": "email",
    "meta.created": "created_at",
    "meta.lastModified": "updated_at",
}


def user_filter(text: str | None) -> Predicate | None:
    """The directory condition a `filter` stands for (None: no filter); ScimError
    invalidFilter for one that does not parse or names what cannot be filtered."""
    if text is None or not text.strip():
        return None
    return to_predicate(parse_filter(text), FILTER_ATTRIBUTES, fixed=EMAIL_ENTRY, schema=USER)


def _id(user_id: str) -> str:
    if not is_id(user_id):
        raise NotFound("user not found")
    return user_id


async def rendered(db: AsyncSession, caller: Principal, user: User, base: str) -> dict[str, Any]:
    """The User resource with its groups."""
    groups = await provisioning.groups_of(db, caller, [user.id])
    return resources.user(user, base, groups[user.id])


def _shown(request: Request, body: dict[str, Any], status: int = 200) -> Response:
    attributes, excluded = projection(request)
    shown = project(body, attributes, excluded, USER)
    return resource_response(shown, status) if "meta" in shown else ScimResponse(shown, status)


async def found_users(
    request: Request, caller: Principal, db: AsyncSession, search: Search
) -> tuple[list[dict[str, Any]], int]:
    """The page of users a search asks for (projected) and how many match in all."""
    return await users_where(request, caller, db, search, user_filter(search.filter))


async def users_where(
    request: Request, caller: Principal, db: AsyncSession, search: Search, where: Predicate | None
) -> tuple[list[dict[str, Any]], int]:
    order = order_of(search, SORT_ATTRIBUTES, USER)
    try:
        page = await provisioning.list_users(
            db, caller, where, offset=search.offset, limit=search.count, order=order
        )
    except InvalidPredicate as exc:
        raise filter_error(exc) from None
    base = base_url(request)
    groups = await provisioning.groups_of(db, caller, [u.id for u in page.items])
    found = [
        project(resources.user(u, base, groups[u.id]), search.attributes, search.excluded, USER)
        for u in page.items
    ]
    return found, page.total


@router.get("/Users")
async def list_users(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_query(request)
    found, total = await found_users(request, caller, db, search)
    return ScimResponse(list_response(found, total, search.offset))


@router.post("/Users/.search")
async def search_users(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_body(await body_of(request))
    found, total = await found_users(request, caller, db, search)
    return ScimResponse(list_response(found, total, search.offset))


@router.post("/Users")
async def create_user(request: Request, caller: ScimCaller, db: Db) -> Response:
    new = resources.read_user(await body_of(request))
    user = await provisioning.create_user(db, caller, new)
    return _shown(request, resources.user(user, base_url(request)), 201)


@router.get("/Users/{user_id}")
async def get_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    user = await provisioning.get_user(db, caller, _id(user_id))
    return _shown(request, await rendered(db, caller, user, base_url(request)))


@router.put("/Users/{user_id}")
async def replace_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    new = resources.read_user(await body_of(request))
    user = await provisioning.replace_user(
        db, caller, _id(user_id), new, if_version=if_match(request)
    )
    return _shown(request, await rendered(db, caller, user, base_url(request)))


@router.patch("/Users/{user_id}")
async def patch_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    ops = parse_patch(await body_of(request))
    base = base_url(request)
    # The groups as they are, so that an operation writing them unchanged is no change.
    groups = (await provisioning.groups_of(db, caller, [_id(user_id)]))[user_id]

    def patched(current: User) -> provisioning.ProvisionedUser:
        return resources.read_user(apply_patch(resources.user(current, base, groups), ops))

    user = await provisioning.update_user(
        db, caller, _id(user_id), patched, if_version=if_match(request)
    )
    return _shown(request, resources.user(user, base, groups))


@router.delete("/Users/{user_id}", status_code=204)
async def delete_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    await provisioning.delete_user(db, caller, _id(user_id), if_version=if_match(request))
    return Response(status_code=204)

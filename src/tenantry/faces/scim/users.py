"""/Users: parse -> one provisioning use case -> render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.directory import provisioning
from tenantry.errors import NotFound
from tenantry.faces.http import Db
from tenantry.faces.scim import patching, query, resources
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
    project,
    projection,
    resource_response,
    search_of_body,
    search_of_query,
)
from tenantry.identity.principals import Principal

router = APIRouter(route_class=ScimRoute, tags=["Users"])


def _id(user_id: str) -> str:
    if not is_id(user_id):
        raise NotFound("user not found")
    return user_id


def _shown(request: Request, body: dict[str, Any], status: int = 200) -> Response:
    attributes, excluded = projection(request)
    shown = project(body, attributes, excluded, USER)
    return resource_response(shown, status) if "meta" in shown else ScimResponse(shown, status)


async def found_users(
    request: Request, caller: Principal, db: AsyncSession, search: Search
) -> tuple[list[dict[str, Any]], int]:
    """The page of users a search asks for (projected) and how many match in all."""
    where = query.conditions(search.filter, query.USER_ATTRIBUTES)
    page = await provisioning.list_users(
        db, caller, where, offset=search.offset, limit=search.count
    )
    base = base_url(request)
    found = [
        project(resources.user(u, base), search.attributes, search.excluded, USER)
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
    return _shown(request, resources.user(user, base_url(request)))


@router.put("/Users/{user_id}")
async def replace_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    new = resources.read_user(await body_of(request))
    user = await provisioning.replace_user(
        db, caller, _id(user_id), new, if_version=if_match(request)
    )
    return _shown(request, resources.user(user, base_url(request)))


@router.patch("/Users/{user_id}")
async def patch_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    ops = patching.parse_patch(await body_of(request))
    base = base_url(request)
    current = await provisioning.get_user(db, caller, _id(user_id))
    patched = patching.apply_patch(resources.user(current, base), ops)
    user = await provisioning.replace_user(
        db, caller, current.id, resources.read_user(patched), if_version=if_match(request)
    )
    return _shown(request, resources.user(user, base))


@router.delete("/Users/{user_id}", status_code=204)
async def delete_user(request: Request, caller: ScimCaller, db: Db, user_id: str) -> Response:
    await provisioning.delete_user(db, caller, _id(user_id), if_version=if_match(request))
    return Response(status_code=204)

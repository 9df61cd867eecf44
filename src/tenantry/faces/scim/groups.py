"""/Groups (the organization's teams its identity provider keeps): parse -> one provisioning
use case -> render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.directory import provisioning
from tenantry.directory.predicates import InvalidPredicate, Predicate, Value
from tenantry.directory.provisioning import GroupView
from tenantry.errors import NotFound
from tenantry.faces.http import Db
from tenantry.faces.scim import resources
from tenantry.faces.scim.filter import filter_error, parse_filter, to_predicate
from tenantry.faces.scim.patch import apply_patch, member_changes, parse_patch
from tenantry.faces.scim.render import ScimResponse
from tenantry.faces.scim.schema import GROUP
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

router = APIRouter(route_class=ScimRoute, tags=["Groups"])

# What a filter may name, as directory/provisioning.GROUP_FIELDS' fields.
FILTER_ATTRIBUTES = {
    "id": "id",
    "displayName": "name",
    "externalId": "external_id",
    "members.value": "member",
    "meta.created": "created_at",
    "meta.lastModified": "updated_at",
}
# What sortBy may name, as directory/provisioning.GROUP_ORDERS' fields.
SORT_ATTRIBUTES = {
    "id": "id",
    "displayName": "name",
    "externalId": "external_id",
    "meta.created": "created_at",
    "meta.lastModified": "updated_at",
}
# Every member is a user (`members[type eq "User"]` is every member).
MEMBER_ENTRY: dict[str, Value] = {"members.type": "User"}


def group_filter(text: str | None) -> Predicate | None:
    """The directory condition a `filter` stands for (None: no filter), or ScimError."""
    if text is None or not text.strip():
        return None
    return to_predicate(parse_filter(text), FILTER_ATTRIBUTES, fixed=MEMBER_ENTRY, schema=GROUP)


def _id(group_id: str) -> str:
    if not is_id(group_id):
        raise NotFound("group not found")
    return group_id


def _body(request: Request, view: GroupView) -> dict[str, Any]:
    return resources.group(view.team, view.members, base_url(request))


def _shown(request: Request, body: dict[str, Any], status: int = 200) -> Response:
    attributes, excluded = projection(request)
    shown = project(body, attributes, excluded, GROUP)
    return resource_response(shown, status) if "meta" in shown else ScimResponse(shown, status)


async def found_groups(
    request: Request, caller: Principal, db: AsyncSession, search: Search
) -> tuple[list[dict[str, Any]], int]:
    """The page of groups a search asks for (projected) and how many match in all."""
    return await groups_where(request, caller, db, search, group_filter(search.filter))


async def groups_where(
    request: Request, caller: Principal, db: AsyncSession, search: Search, where: Predicate | None
) -> tuple[list[dict[str, Any]], int]:
    order = order_of(search, SORT_ATTRIBUTES, GROUP)
    try:
        page = await provisioning.list_groups(
            db, caller, where, offset=search.offset, limit=search.count, order=order
        )
    except InvalidPredicate as exc:
        raise filter_error(exc) from None
    found = [
        project(_body(request, v), search.attributes, search.excluded, GROUP) for v in page.items
    ]
    return found, page.total


@router.get("/Groups")
async def list_groups(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_query(request)
    found, total = await found_groups(request, caller, db, search)
    return ScimResponse(list_response(found, total, search.offset))


@router.post("/Groups/.search")
async def search_groups(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_body(await body_of(request))
    found, total = await found_groups(request, caller, db, search)
    return ScimResponse(list_response(found, total, search.offset))


@router.post("/Groups")
async def create_group(request: Request, caller: ScimCaller, db: Db) -> Response:
    new = resources.read_group(await body_of(request))
    view = await provisioning.create_group(db, caller, new)
    return _shown(request, _body(request, view), 201)


@router.get("/Groups/{group_id}")
async def get_group(request: Request, caller: ScimCaller, db: Db, group_id: str) -> Response:
    view = await provisioning.get_group(db, caller, _id(group_id))
    return _shown(request, _body(request, view))


@router.put("/Groups/{group_id}")
async def replace_group(request: Request, caller: ScimCaller, db: Db, group_id: str) -> Response:
    new = resources.read_group(await body_of(request))
    if new.member_ids is None:
        new = provisioning.ProvisionedGroup(new.display_name, new.external_id, [])
    view = await provisioning.replace_group(
        db, caller, _id(group_id), new, if_version=if_match(request)
    )
    return _shown(request, _body(request, view))


@router.patch("/Groups/{group_id}")
async def patch_group(request: Request, caller: ScimCaller, db: Db, group_id: str) -> Response:
    ops = parse_patch(await body_of(request))
    members = member_changes(ops)
    if members is not None:
        # Members only (what identity providers send most): no need to read the group.
        added, removed = members
        await provisioning.change_members(
            db, caller, _id(group_id), add=added, remove=removed, if_version=if_match(request)
        )
        return Response(status_code=204)
    base = base_url(request)

    def patched(current: GroupView) -> provisioning.ProvisionedGroup:
        body = resources.group(current.team, current.members, base)
        return resources.read_group(apply_patch(body, ops))

    view = await provisioning.update_group(
        db, caller, _id(group_id), patched, if_version=if_match(request)
    )
    return _shown(request, _body(request, view))


@router.delete("/Groups/{group_id}", status_code=204)
async def delete_group(request: Request, caller: ScimCaller, db: Db, group_id: str) -> Response:
    await provisioning.delete_group(db, caller, _id(group_id), if_version=if_match(request))
    return Response(status_code=204)

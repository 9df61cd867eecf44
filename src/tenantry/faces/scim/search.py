"""POST /.search at the root (RFC 7644 §3.4.3): Users, then Groups, as one list. A filter
here must fit both resource types (the interim filter: displayName or externalId)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tenantry.faces.http import Db
from tenantry.faces.scim.groups import found_groups
from tenantry.faces.scim.render import ScimResponse
from tenantry.faces.scim.users import found_users
from tenantry.faces.scim.wire import ScimCaller, ScimRoute, body_of, list_response, search_of_body

router = APIRouter(route_class=ScimRoute, tags=["Search"])


@router.post("/.search")
async def search_everything(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_body(await body_of(request))
    users, user_total = await found_users(request, caller, db, search)
    # Groups continue where the users end: skip what the users' total covered of the window.
    group_offset = max(0, search.offset - user_total)
    room = max(0, search.count - len(users))
    groups, group_total = await found_groups(
        request, caller, db, replace(search, offset=group_offset, count=room)
    )
    return ScimResponse(list_response(users + groups, user_total + group_total, search.offset))

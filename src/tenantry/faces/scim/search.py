"""POST /.search at the root (RFC 7644 §3.4.3): Users, then Groups, as one list. A filter
is read against each resource type; a type whose schema lacks an attribute the filter names
contributes nothing (`userName eq "x"` finds users only), and a filter that fits neither is
invalidFilter."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tenantry.directory.predicates import Constant, Predicate
from tenantry.faces.http import Db
from tenantry.faces.scim.errors import ScimError
from tenantry.faces.scim.groups import group_filter, groups_where
from tenantry.faces.scim.render import ScimResponse
from tenantry.faces.scim.users import user_filter, users_where
from tenantry.faces.scim.wire import ScimCaller, ScimRoute, body_of, list_response, search_of_body

router = APIRouter(route_class=ScimRoute, tags=["Search"])


def _both(text: str | None) -> tuple[Predicate | None, Predicate | None]:
    found: list[Predicate | None] = []
    refusals: list[ScimError] = []
    for read in (user_filter, group_filter):
        try:
            found.append(read(text))
        except ScimError as exc:
            if exc.scim_type != "invalidFilter":
                raise
            refusals.append(exc)
            found.append(Constant(False))
    if len(refusals) == 2:
        raise refusals[0]
    return found[0], found[1]


@router.post("/.search")
async def search_everything(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_body(await body_of(request))
    user_where, group_where = _both(search.filter)
    users, user_total = await users_where(request, caller, db, search, user_where)
    # Groups continue where the users end: skip what the users' total covered of the window.
    group_offset = max(0, search.offset - user_total)
    room = max(0, search.count - len(users))
    groups, group_total = await groups_where(
        request, caller, db, replace(search, offset=group_offset, count=room), group_where
    )
    return ScimResponse(list_response(users + groups, user_total + group_total, search.offset))

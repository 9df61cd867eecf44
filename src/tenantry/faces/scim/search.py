"""POST /.search at the root (RFC 7644 §3.4.3): Users, then Groups, as one list. A filter
is read against each resource type; a type whose schema lacks an attribute the filter names
contributes nothing (`userName eq "x"` finds users only), and a filter that fits neither is
invalidFilter. Likewise `sortBy` orders each type that has the attribute (users still come
first), and one that neither can sort by is invalidValue."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tenantry.directory.predicates import Constant, Predicate
from tenantry.faces.http import Db
from tenantry.faces.scim import groups, users
from tenantry.faces.scim.errors import ScimError
from tenantry.faces.scim.groups import group_filter, groups_where
from tenantry.faces.scim.render import ScimResponse
from tenantry.faces.scim.schema import GROUP, USER
from tenantry.faces.scim.users import user_filter, users_where
from tenantry.faces.scim.wire import (
    ScimCaller,
    ScimRoute,
    Search,
    body_of,
    list_response,
    order_of,
    search_of_body,
    sort_field,
)

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


def _sorted(search: Search) -> tuple[Search, Search]:
    """The users' search and the groups': each sorts by sortBy if it has the attribute."""
    if search.sort_by is None:
        return search, search
    fits = [
        sort_field(search.sort_by, users.SORT_ATTRIBUTES, USER) is not None,
        sort_field(search.sort_by, groups.SORT_ATTRIBUTES, GROUP) is not None,
    ]
    if not any(fits):
        order_of(search, users.SORT_ATTRIBUTES, USER)  # refuses it
    unsorted = replace(search, sort_by=None)
    return (search if fits[0] else unsorted), (search if fits[1] else unsorted)


@router.post("/.search")
async def search_everything(request: Request, caller: ScimCaller, db: Db) -> Response:
    search = search_of_body(await body_of(request))
    user_where, group_where = _both(search.filter)
    user_search, group_search = _sorted(search)
    found_users, user_total = await users_where(request, caller, db, user_search, user_where)
    # Groups continue where the users end: skip what the users' total covered of the window.
    group_offset = max(0, search.offset - user_total)
    room = max(0, search.count - len(found_users))
    found_groups, group_total = await groups_where(
        request, caller, db, replace(group_search, offset=group_offset, count=room), group_where
    )
    found = found_users + found_groups
    return ScimResponse(list_response(found, user_total + group_total, search.offset))

"""Tenant isolation across every astro route, discovered from the application.

Two organizations A and B, each with a workspace, a deployment, a team, a custom role, an invite,
an API token, an owner and a member. For every astro route that takes an {organizationId}:
A's owner (and A's API token, and a user in no organization) asking for B's organization, or
for B's objects through A's organization, gets the astro 404 and nothing anywhere changes; a
body naming B's objects is refused; a SYSTEM_ADMIN reaches both organizations and A's owner
reaches A's own objects (so the 404 is isolation, not a broken route); and nothing A can read
names B's objects.

Each test walks every route and reports every failing route at once (one world per test keeps
the run short; a request that wrongly writes is reported and becomes the new baseline).
"""

from __future__ import annotations

from typing import Any

import httpx

from tenantry.db.engine import Database
from tests.faces.routes import (
    FaceRoute,
    Findings,
    Tenant,
    build_tenant,
    call,
    describe,
    face_routes,
    kind_of,
    routes_of,
)
from tests.factories import World

ASTRO = routes_of("astro")
ORG_ROUTES = [r for r in ASTRO if "organizationId" in r.params]
READ_ROUTES = [r for r in ASTRO if r.method == "GET"]


def test_discovery_finds_the_astro_organization_routes() -> None:
    paths = {r.path for r in ORG_ROUTES}
    assert "/organizations/{organizationId}/users/{userId}/roles" in paths
    assert {r.prefix for r in routes_of("astro", all_prefixes=True)} == {
        "/v1",
        "/iam/v1beta1",
        "/platform/v1beta1",
    }
    assert {r.prefix for r in routes_of("native")} == {"/tenantry/v1"}


def _leaks(response: httpx.Response, tenant: Tenant, sent: str) -> list[str]:
    """The other tenant's ids and names in `response`, except those the request itself sent."""
    return [m for m in tenant.markers if m in response.text and m not in sent]


def _all_known(route: FaceRoute) -> bool:
    """Whether the tenants hold an object for every path parameter of the route."""
    return all(kind_of(p) is not None for p in route.params)


def _reachable(response: httpx.Response) -> bool:
    """The request got past authorization: not 401/403/404 and no server error."""
    return response.status_code not in (401, 403, 404) and response.status_code < 500


async def test_other_organizations_are_404_and_untouched(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    a = await build_tenant(world, "A")
    b = await build_tenant(world, "B")
    loner_token = await world.token(await world.user())  # in no organization
    found = Findings(database)
    await found.mark()
    for route in ORG_ROUTES:
        # B's organization and B's objects.
        url = route.url(b.values(route.params))
        body = route.body(b.ids)
        for who, token in (
            ("A's owner", a.owner_token),
            ("A's API token", a.api_token),
            ("a user in no org", loner_token),
        ):
            r = await call(client, route, url, token, body)
            what = f"{who}, B's ids: {describe(route, r)}"
            if found.check(r.status_code == 404, what):
                found.error_body(route, r, what)
            found.check(not _leaks(r, b, url + str(body)), f"leaks B: {what}")
            await found.unchanged(what)
        # A's organization, A's ids, except one parameter naming B's object.
        for param in route.params:
            if param == "organizationId":
                continue
            url = route.url(a.values(route.params) | {param: b.values([param])[param]})
            r = await call(client, route, url, a.owner_token, route.body(a.ids))
            what = f"A's owner, B's {param}: {describe(route, r)}"
            if found.check(r.status_code == 404, what):
                found.error_body(route, r, what)
            found.check(not _leaks(r, b, url), f"leaks B: {what}")
            await found.unchanged(what)
        # A's organization and A's ids, the body naming one of B's objects.
        url = route.url(a.values(route.params))
        for target in route.body_id_paths():
            body = route.body(a.ids | b.ids, target)
            r = await call(client, route, url, a.owner_token, body)
            what = f"A's owner, body {'.'.join(target)} naming B's: {describe(route, r)} {body}"
            if found.check(r.status_code in (400, 404), what):
                found.error_body(route, r, what)
            await found.unchanged(what)
    found.report()


async def test_instance_admin_and_own_owner_reach_every_organization_route(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """The other half of the 404s above: the same routes with the same kind of ids work for a
    SYSTEM_ADMIN (any organization) and for an organization's owner (their own)."""
    admin_token = await world.token(await world.admin())
    shared = await build_tenant(world, "S")
    found = Findings(database)
    for route in ORG_ROUTES:
        if not _all_known(route):
            continue  # the tenants hold no object for some parameter: nothing real to reach
        # Reads share one tenant; a write gets fresh tenants so that deletes do not interfere.
        own = shared if route.method == "GET" else await build_tenant(world, "O")
        other = shared if route.method == "GET" else await build_tenant(world, "X")
        for who, token, tenant in (("owner", own.owner_token, own), ("admin", admin_token, other)):
            url = route.url(tenant.values(route.params))
            r = await call(client, route, url, token, route.body(tenant.ids))
            found.check(_reachable(r), f"{who} on its organization: {describe(route, r)}")
    found.report()


async def test_nothing_a_reads_names_b(client: httpx.AsyncClient, world: World) -> None:
    a = await build_tenant(world, "A")
    b = await build_tenant(world, "B")
    found = Findings(world.database)
    for route in READ_ROUTES:
        url = route.url(a.values(route.params))
        # Query filters naming B's objects (e.g. ?workspaceId=<B's>) must find nothing of B's.
        query = {q: b.ids[kind_of(q) or ""] for q in route.query if kind_of(q) in b.ids}
        for who, token in (("owner", a.owner_token), ("member", a.member_token)):
            headers = {"Authorization": f"Bearer {token}"}
            r = await client.get(url, headers=headers)
            what = f"A's {who}: {describe(route, r)}"
            found.check(r.status_code < 500, what)
            found.check(who != "owner" or r.status_code == 200 or not _all_known(route), what)
            found.check(not _leaks(r, b, url), f"leaks B: {what}")
            if query:
                r = await client.get(url, params=query, headers=headers)
                what = f"A's {who} filtering on B's objects: {describe(route, r)}"
                allowed = (200, 400, 404) if who == "owner" else (200, 400, 403, 404)
                found.check(r.status_code in allowed, what)
                found.check(not _leaks(r, b, str(r.request.url)), f"leaks B: {what}")
    found.report()


async def test_every_route_requires_a_token(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """Every route of every face and prefix: 401 in the face's error body without a valid
    bearer token, whatever the ids and body, and nothing written. (Routes that need no token,
    e.g. sign-in, refuse the made-up request with some 4xx.)"""
    t = await build_tenant(world, "T")
    found = Findings(database)
    await found.mark()
    for route in face_routes():
        url = route.url(t.values(route.params))
        kwargs: dict[str, Any] = {"json": route.body(t.ids)} if route.has_body else {}
        for header in (None, "Bearer tnt_not-a-token", "Bearer ", "Basic YTpi", "tnt_raw"):
            headers = {"Authorization": header} if header else {}
            r = await client.request(route.method, url, headers=headers, **kwargs)
            what = f"Authorization {header!r}: {describe(route, r)}"
            if route.public:  # needs no token: any refusal of this made-up request will do
                if found.check(400 <= r.status_code < 500, f"public route: {what}"):
                    found.error_body(route, r, what)
            elif found.check(r.status_code == 401, what):
                found.error_body(route, r, what)
                found.check(
                    r.headers.get("www-authenticate", "").lower().startswith("bearer"),
                    f"no WWW-Authenticate: Bearer: {what}",
                )
    await found.unchanged("requests without a valid token")
    found.report()

"""Tenant isolation across every astro route, discovered from the application.

Two organizations A and B, each with a workspace, a deployment, a team, a custom role, an invite,
an API token, an owner and a member. For every astro route that takes an {organizationId}:
A's owner (and A's API token, and a user in no organization) asking for B's organization, or
for B's objects through A's organization, gets the astro 404 (403 where Astro documents no
404: its lists and CreateDeployment) and nothing anywhere changes; a body naming B's objects
is refused; a SYSTEM_ADMIN reaches both organizations and A's owner
reaches A's own objects (so the 404 is isolation, not a broken route); and nothing A can read
names B's objects.

The ece and unleash faces have no organizations in their URLs: there, isolation means that a user
of one organization without a SYSTEM role (an owner, a member, an API token of the organization,
a user in no organization) can neither read nor change another user, their API keys or their
personal access tokens through any route of these faces (403/404 in the face's error body, the
target unchanged), while a SYSTEM_ADMIN or the user themselves reach them through the same URLs.

Each test walks every route and reports every failing route at once (one world per test keeps
the run short; a request that wrongly writes is reported and becomes the new baseline).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tenantry.db.engine import Database
from tests.faces.documented import astro_unreachable_is_403
from tests.faces.errors import BAD_TOKEN, NO_TOKEN
from tests.faces.routes import (
    FaceRoute,
    Findings,
    Tenant,
    build_tenant,
    call,
    describe,
    diff,
    face_routes,
    kind_of,
    routes_of,
    snapshot,
)
from tests.factories import World

ASTRO = routes_of("astro")
ORG_ROUTES = [r for r in ASTRO if "organizationId" in r.params]
# Where Astro documents a 403 but no 404 (its lists, CreateDeployment), another organization is
# that 403 instead (tests/faces/astro/test_documented_errors.py).
FORBIDDEN_HERE = {(o.route.method, o.route.path) for o in astro_unreachable_is_403().values()}


def _refused(route: FaceRoute) -> int:
    """The status an astro route answers another organization with."""
    return 403 if (route.method, route.path) in FORBIDDEN_HERE else 404


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
    assert {r.prefix for r in routes_of("ece")} == {"/api/v1"}
    assert {r.prefix for r in routes_of("unleash")} == {"/api/admin", "/auth/simple"}
    ece = {r.id for r in routes_of("ece")}
    unleash = {r.id for r in routes_of("unleash")}
    assert {"GET /api/v1/users/{user_name}", "DELETE /api/v1/users/{user_id}/auth/keys"} <= ece
    assert {"PUT /api/admin/user-admin/{id}", "DELETE /api/admin/user/tokens/{id}"} <= unleash
    # Unleash handlers read their JSON themselves: still found to take a body, with the
    # vendor's schema.
    create = next(r for r in routes_of("unleash") if r.id == "POST /api/admin/user/tokens")
    assert create.has_body and create.body() == {
        "description": "probe",
        "expiresAt": "2030-01-01T00:00:00Z",
    }


def test_discovery_knows_the_public_routes() -> None:
    """Public = depends on no credential (see routes.PRINCIPALS). A route that forgets its
    credential dependency appears here and fails this test."""
    public = {r.id for r in face_routes() if r.public}
    assert {i for i in public if i.split()[1].startswith(("/api/", "/auth/"))} == {
        "POST /api/v1/users/auth/_login",
        "GET /api/v1/users/auth/methods",
        "POST /auth/simple/login",
    }
    assert not {i for i in public if i.startswith(("PUT", "PATCH", "DELETE"))}
    assert not {i for i in public if i.startswith("GET /api/admin")}


def _leaks(response: httpx.Response, tenant: Tenant, sent: str) -> list[str]:
    """The other tenant's ids and names in `response`, except those the request itself sent."""
    return [m for m in tenant.markers if m in response.text and m not in sent]


def _all_known(route: FaceRoute) -> bool:
    """Whether the tenants hold an object for every path parameter of the route."""
    return all(kind_of(p) is not None for p in route.params)


def _object_not_found(response: httpx.Response) -> bool:
    """An astro 404 for an object the caller may not see ("organization not found", "user not
    found in this organization", ...), not the one for a route that does not exist (app.py's
    "no such route"): so a 404 from a misspelt route cannot pass for isolation."""
    message = response.json().get("message")
    return isinstance(message, str) and "not" in message and message != "no such route"


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
            if found.check(r.status_code == _refused(route), what):
                found.error_body(route, r, what)
                found.check(_object_not_found(r), f"not an object's 404: {what}")
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
                found.check(_object_not_found(r), f"not an object's 404: {what}")
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


# (Authorization, unleash-session cookie) pairs that identify no one, for every face: absent,
# unknown, empty, a Basic pair of an unknown user, a raw secret; plus the forms only ece (ApiKey,
# Basic) and unleash (its cookie) accept, sent to that face only (astro has many routes).
NO_CREDENTIALS: tuple[tuple[str | None, str | None], ...] = (
    (None, None),
    ("Bearer tnt_not-a-token", None),
    ("Bearer ", None),
    ("Basic YTpi", None),
    ("tnt_raw", None),
)
FACE_NO_CREDENTIALS: dict[str, tuple[tuple[str | None, str | None], ...]] = {
    "ece": (("ApiKey tnt_not-a-key", None), ("ApiKey ", None), ("Basic not-base64!", None)),
    "unleash": ((None, "s%3Atnt_not-a-session"), (None, "tnt_not-a-session")),
}


def _unauthenticated_body(
    route: FaceRoute, response: httpx.Response, header: str | None, cookie: str | None
) -> str:
    """What is wrong with a 401 beyond the face's error body ("" when nothing)."""
    if route.face in ("astro", "native"):
        if not response.headers.get("www-authenticate", "").lower().startswith("bearer"):
            return "no WWW-Authenticate: Bearer"
        message = response.json()["message" if route.face == "astro" else "detail"]
        if message not in (NO_TOKEN, BAD_TOKEN):  # not a refused credential's answer
            return f"refused as {message!r}"
    elif route.face == "ece":
        if response.json()["errors"][0]["code"] != "root.unauthorized":
            return "not ECE's root.unauthorized"
    else:  # unleash: no header (no credential, or a cookie no session has) gets the login
        # hint (captures 02, 06, 16); a bad header UnauthorizedError (03)
        expected = "AuthenticationRequired" if header is None else "UnauthorizedError"
        if response.json()["name"] != expected:
            return f"not Unleash's {expected}"
    return ""


async def test_every_route_requires_a_token(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """Every route of every face and prefix: 401 in the face's error body without a valid
    credential, whatever the ids and body, and nothing written. (Routes that need no token,
    e.g. sign-in, refuse the made-up request with some 4xx.)"""
    t = await build_tenant(world, "T")
    found = Findings(database)
    await found.mark()
    for route in face_routes():
        url = route.url(t.values_for(route))
        kwargs: dict[str, Any] = {"json": route.body(t.face_ids(route.face))}
        if not route.has_body:
            kwargs = {}
        for header, cookie in NO_CREDENTIALS + FACE_NO_CREDENTIALS.get(route.face, ()):
            headers = {"Authorization": header} if header is not None else {}
            if cookie is not None:
                headers["Cookie"] = f"unleash-session={cookie}"
            r = await client.request(route.method, url, headers=headers, **kwargs)
            what = f"Authorization {header!r}, cookie {cookie!r}: {describe(route, r)}"
            if route.public and route.method == "GET":  # e.g. ECE's sign-in methods
                found.check(r.status_code == 200, f"public read: {what}")
            elif route.public:  # needs no token: any refusal of this made-up request will do
                if found.check(400 <= r.status_code < 500, f"public route: {what}"):
                    found.error_body(route, r, what)
            elif route.face == "ece" and header == "Basic YTpi" and r.status_code == 429:
                # A password on every request: after some refusals, the sign-in rate limit.
                found.error_body(route, r, what)
                code = r.json()["errors"][0]["code"]
                found.check(code == "root.too_many_requests", f"429 {code}: {what}")
            elif found.check(r.status_code == 401, what):
                found.error_body(route, r, what)
                wrong = _unauthenticated_body(route, r, header, cookie)
                found.check(not wrong, f"{wrong}: {what}")
    await found.unchanged("requests without a valid token")
    found.report()


# --- ece and unleash: other users, their keys and tokens -------------------------------------

USER_FACES = ("ece", "unleash")


def _names_another(route: FaceRoute) -> bool:
    """Whether the route's path names a user, an API key or a PAT (ece: user names and key
    ids; unleash: /user-admin/{id} and /user/tokens/{id}; its splash and feedback ids are the
    caller's own free-form names)."""
    if route.face == "ece":
        return any(route.kind(p) for p in route.params)
    return route.path.startswith(("/user-admin/{", "/user/tokens/{"))


@pytest.mark.parametrize("face", USER_FACES)
async def test_users_keys_and_tokens_of_others_are_out_of_reach(
    client: httpx.AsyncClient, world: World, database: Database, face: str
) -> None:
    """A's owner, member, API token and a user in no organization, on every route of the face:
    naming B's member (or B's key / PAT) in the path or the body is the face's 403/404 and
    writes nothing; any other request leaves B's rows as they were; no answer names B."""
    a = await build_tenant(world, "A")
    b = await build_tenant(world, "B")
    loner = await world.user()
    callers = (
        ("A's owner", a.owner_token),
        ("A's member", a.member_token),
        ("A's API token", a.api_token),
        ("a user in no org", await world.token(loner)),
    )
    b_ids = b.face_ids(face)
    found = Findings(database)
    await found.mark()
    b_rows = await snapshot(database, b)
    for route in routes_of(face):
        if route.public:
            continue
        url = route.url(b.values_for(route))
        query = {q: b.member.username for q in route.query if q == "q"}  # search for B
        for who, token in callers:
            if _names_another(route):
                r = await call(client, route, url, token, route.body(b_ids), params=query)
                what = f"{who}, B's ids: {describe(route, r)}"
                # An API token is no user: Unleash refuses its own-PAT routes (403
                # ForbiddenError) and GET /user/profile (400, capture 12).
                refusals = (400, 403, 404) if who == "A's API token" else (403, 404)
                # Unleash deletes a PAT `WHERE id AND user_id`: another user's is a 200 that
                # changes nothing (checked below).
                if face == "unleash" and route.method == "DELETE" and "tokens" in route.path:
                    refusals = (*refusals, 200)
                if found.check(r.status_code in refusals, what) and r.status_code >= 400:
                    found.error_body(route, r, what)
                found.check(not _leaks(r, b, url), f"leaks B: {what}")
                if route.method != "GET":  # (reads are checked once, after all callers)
                    await found.unchanged(what)
            for target in route.body_id_paths():
                body = route.body(b_ids, target)
                r = await call(client, route, url, token, body)
                what = f"{who}, body {'.'.join(target)} naming B's: {describe(route, r)} {body}"
                # 409: renaming oneself to B's user name (user names are unique)
                if found.check(r.status_code in (400, 403, 404, 409), what):
                    found.error_body(route, r, what)
                found.check(not _leaks(r, b, str(body)), f"leaks B: {what}")
                await found.unchanged(what)
            if _names_another(route) or route.body_id_paths():
                continue
            # Routes about the caller themselves (or a list of everyone): whatever they allow,
            # nothing of B's is shown or touched.
            r = await call(client, route, url, token, route.body(b_ids), params=query)
            what = f"{who}: {describe(route, r)}"
            if found.check(r.status_code < 500, what) and r.status_code >= 400:
                found.error_body(route, r, what)
            found.check(not _leaks(r, b, url + str(query)), f"leaks B: {what}")
            found.baseline = await snapshot(database)  # the caller's own changes are fine
        if route.method == "GET":
            await found.unchanged(f"{route.id} read by A's callers")
    after = await snapshot(database, b)
    found.check(after == b_rows, f"B's rows changed:\n{diff(b_rows, after)}")
    found.report()


@pytest.mark.parametrize("face", USER_FACES)
async def test_admin_or_the_user_reaches_the_same_urls(
    client: httpx.AsyncClient, world: World, face: str
) -> None:
    """The other half of the 403/404s above: every GET naming B's member, their key or their PAT
    answers 200 to a SYSTEM_ADMIN or to B's member themselves (so the refusal is isolation,
    not a URL that names nothing)."""
    b = await build_tenant(world, "B")
    admin_token = await world.token(await world.admin())
    found = Findings(world.database)
    for route in routes_of(face):
        if route.method != "GET" or not _names_another(route):
            continue
        url = route.url(b.values_for(route))
        answers = [await call(client, route, url, t) for t in (admin_token, b.member_token)]
        found.check(
            any(r.status_code == 200 for r in answers),
            " / ".join(describe(route, r) for r in answers),
        )
        found.check(
            all(b.member.username in r.text for r in answers if r.status_code == 200),
            f"{route.id}: a 200 that does not name the user",
        )
    found.report()

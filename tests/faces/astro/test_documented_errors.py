"""Every answer Astro's specs document for the routes of the astro face, provoked against
Tenantry; and every answer Tenantry gives on those routes, documented or listed with its
reason.

The table is read from the specs by code (tests/faces/documented.py): each (operationId,
status) that Astro's IAM and Platform YAMLs (or, for `GET /users/self`, astro-v1.md) document
for an operation the face serves. Astro documents the same few statuses everywhere (200 or
204, 400, 401, 403, 404, 500) and no error codes, so each status has one way of provoking it,
run on every operation that documents it (`PROVOKE`; the caller that lacks a permission is
chosen per operation in `FORBIDDEN_BY`): its status, its body against the schema the spec
documents (`Error` for every refusal), and that a refusal wrote nothing. What cannot be
provoked is listed in `NOT_PROVOKED` with the reason; a test fails when the two do not cover
the documented table exactly.

The other way round (`test_every_answer_is_documented_or_listed`): probes of every route (no
or a bad token, every kind of caller, unknown and malformed ids, bodies that are not JSON or
too large, a conflict, a wrong method, injected server faults); each (operation, status)
answered must be documented or one of `DIFFERENCES` (docs/faces/astro.md, "Documented
errors"), and each difference must be met.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.exc import IntegrityError

from tenantry.db.engine import Database
from tenantry.faces.http import bearer_principal
from tenantry.ids import new_id
from tests.faces.documented import (
    Fault,
    Key,
    Operation,
    Outcome,
    Recorder,
    astro_error_schema,
    astro_operations,
    astro_unreachable_is_403,
    documented_keys,
    face_app,
    raises,
)
from tests.faces.errors import NOT_JSON
from tests.faces.routes import BODY_METHODS, FaceRoute, Tenant, assert_face_error, build_tenant
from tests.factories import World
from tests.spec import assert_astro

OPERATIONS = astro_operations()
PREFIX = "/v1"


# --- who asks --------------------------------------------------------------------------------


@dataclass
class Cast:
    """An organization with one object of every kind, and every kind of caller."""

    tenant: Tenant
    tokens: dict[str, str]  # who -> bearer token

    def values(self, route: FaceRoute, **override: str) -> dict[str, str]:
        return self.tenant.values_for(route) | override


async def _cast(world: World) -> Cast:
    tenant = await build_tenant(world, "D")
    org, ids = tenant.org, tenant.ids
    other = await world.org(f"Other {secrets.token_hex(3)}")
    _, outsider = await world.member(other, "ORGANIZATION_OWNER")  # owns another organization
    workspace_token = await world.api_token(
        org, tenant.owner, "WORKSPACE_MEMBER", "WORKSPACE", ids["workspace"]
    )
    deployment_token = await world.api_token(
        org, tenant.owner, "DEPLOYMENT_ADMIN", "DEPLOYMENT", ids["deployment"]
    )
    _, plain = await world.member(org)  # ORGANIZATION_MEMBER and nothing else
    tokens = {
        "admin": await world.token(await world.admin()),
        "owner": tenant.owner_token,
        "member": tenant.member_token,
        "plain member": plain,
        "outsider": outsider,
        "loner": await world.token(await world.user()),  # in no organization
        "workspace token": workspace_token.secret,
        "deployment token": deployment_token.secret,
        "organization token": tenant.api_token,
    }
    return Cast(tenant, tokens)


# Bodies the synthesised sample (the smallest valid one by the face's schema) does not make
# succeed for an administrator: token types other than ORGANIZATION need an entity.
def _body(op: str, route: FaceRoute, cast: Cast) -> Any:
    org = cast.tenant.org.id
    if op == "CreateApiToken":
        return {"name": "ci", "type": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
    if op == "UpdateApiTokenRoles":
        role = {"entityId": org, "entityType": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
        return {"roles": [role]}
    return route.body(cast.tenant.ids)


# --- sending ---------------------------------------------------------------------------------


@dataclass
class Ctx:
    client: httpx.AsyncClient
    world: World
    database: Database
    recorder: Recorder
    app: Any
    cast: Cast

    async def send(
        self,
        route: FaceRoute,
        url: str,
        who: str | None,
        body: Any = None,
        *,
        content: bytes | None = None,
        token: str | None = None,
        record: bool = True,
    ) -> Outcome:
        """One request, with what it changed in the database (unless `record` is false)."""
        headers = {}
        secret = token or (self.cast.tokens[who] if who else None)
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        kwargs: dict[str, Any] = {"headers": headers}
        if content is not None:
            kwargs["content"] = content
            headers["content-type"] = "application/json"
        elif route.method in BODY_METHODS:
            kwargs["json"] = {} if body is None else body
        if not record:
            return Outcome(await self.client.request(route.method, url, **kwargs), "")
        return await self.recorder.send(lambda: self.client.request(route.method, url, **kwargs))


Provoke = Callable[[Ctx, str, FaceRoute], Awaitable[list[Outcome]]]
PROVOKE: dict[int, Provoke] = {}


def provokes(*statuses: int) -> Callable[[Provoke], Provoke]:
    def register(provoke: Provoke) -> Provoke:
        for status in statuses:
            PROVOKE[status] = provoke
        return provoke

    return register


@provokes(200, 204)
async def _succeed(ctx: Ctx, op: str, route: FaceRoute) -> list[Outcome]:
    """An administrator, on real objects (a fresh organization for whatever writes)."""
    cast = ctx.cast if route.method == "GET" else await _cast(ctx.world)
    url = route.url(cast.values(route))
    if op == "GetSelfUser":
        return [
            await ctx.send(route, url, None, token=cast.tokens["member"]),
            await ctx.send(
                route, url + "?createIfNotExist=true", None, token=cast.tokens["member"]
            ),
        ]
    return [await ctx.send(route, url, None, _body(op, route, cast), token=cast.tokens["admin"])]


@provokes(400)
async def _bad_input(ctx: Ctx, op: str, route: FaceRoute) -> list[Outcome]:
    """A malformed path id (or query value), and a body that is not JSON."""
    sent = []
    body = _body(op, route, ctx.cast)
    if route.params:
        url = route.url(ctx.cast.values(route, **{route.params[-1]: "not-an-id"}))
        sent.append(await ctx.send(route, url, "admin", body))
    else:
        query = "createIfNotExist=maybe" if op == "GetSelfUser" else "limit=-1"
        url = route.url({}) + "?" + query
        sent.append(await ctx.send(route, url, "admin", body))
    if route.has_body:
        url = route.url(ctx.cast.values(route))
        sent.append(await ctx.send(route, url, "admin", content=b"{not json"))
    return sent


@provokes(401)
async def _unauthenticated(ctx: Ctx, op: str, route: FaceRoute) -> list[Outcome]:
    url = route.url(ctx.cast.values(route))
    body = _body(op, route, ctx.cast)
    return [
        await ctx.send(route, url, None, body),
        await ctx.send(route, url, None, body, token="tnt_not-a-token"),
    ]


# Who can see the organization (or reach a workspace or deployment in it) but lacks the
# permission an operation needs; by default a plain member (ORGANIZATION_MEMBER, no role in
# any workspace or deployment).
FORBIDDEN_BY: dict[str, str] = {
    "ListApiTokens": "workspace token",
    "GetApiToken": "workspace token",
    "UpdateApiToken": "workspace token",
    "DeleteApiToken": "workspace token",
    "UpdateApiTokenRoles": "workspace token",
    "RotateApiToken": "workspace token",
}
# The operations whose spec documents a 403 but no 404: there an organization the caller
# cannot reach, or one that does not exist, is the 403 (faces/astro/errors.py).
UNREACHABLE_IS_403 = frozenset(astro_unreachable_is_403())


@provokes(403)
async def _forbidden(ctx: Ctx, op: str, route: FaceRoute) -> list[Outcome]:
    url = route.url(ctx.cast.values(route))
    body = _body(op, route, ctx.cast)
    if op in UNREACHABLE_IS_403:
        made_up = route.url(ctx.cast.values(route, organizationId=new_id()))
        return [
            await ctx.send(route, url, "outsider", body),
            await ctx.send(route, made_up, "outsider", body),
            await ctx.send(route, made_up, "admin", body),
        ]
    return [await ctx.send(route, url, FORBIDDEN_BY.get(op, "plain member"), body)]


@provokes(404)
async def _not_found(ctx: Ctx, op: str, route: FaceRoute) -> list[Outcome]:
    """A made-up id of the object the route names; and (no existence oracle) the real
    objects and made-up ones, asked by the owner of another organization."""
    body = _body(op, route, ctx.cast)
    made_up = route.url(ctx.cast.values(route, **{route.params[-1]: new_id()}))
    real = route.url(ctx.cast.values(route))
    all_made_up = route.url(dict.fromkeys(route.params, new_id()))
    return [
        await ctx.send(route, made_up, "admin", body),
        await ctx.send(route, real, "outsider", body),
        await ctx.send(route, all_made_up, "outsider", body),
    ]


@provokes(500)
async def _server_error(ctx: Ctx, op: str, route: FaceRoute) -> list[Outcome]:
    """A fault inside the request (injected where every route starts: its caller)."""
    face = face_app(ctx.app, PREFIX)
    face.dependency_overrides[bearer_principal] = raises(Fault("injected"))
    try:
        url = route.url(ctx.cast.values(route))
        if op == "GetSelfUser":
            url += "?createIfNotExist=false"  # past the hot path, which takes no query
        return [await ctx.send(route, url, "admin", _body(op, route, ctx.cast))]
    finally:
        face.dependency_overrides.clear()


# --- what cannot be provoked ---------------------------------------------------------------------

_EVERY_ROLE_READS = (
    "every organization role includes this read (organization.get, .users.get, .roles.list, "
    ".teams.list, ...), and a caller who cannot see the organization gets the 404 of a "
    "made-up id (no existence oracle): no caller can be refused it with a 403"
)
NOT_PROVOKED: dict[Key, str] = {
    **{
        (op, 403, None): _EVERY_ROLE_READS
        for op in (
            "GetUser",
            "GetOrganization",
            "ListRoles",
            "GetCustomRole",
            "ListTeams",
            "GetTeam",
            "ListTeamMembers",
        )
    },
    ("ListOrganizations", 403, None): (
        "the list is of the organizations the caller can see (none is an empty page): there is "
        "nothing to refuse"
    ),
}


def test_the_table_is_exactly_what_the_specs_document() -> None:
    documented = documented_keys(OPERATIONS)
    assert len(OPERATIONS) == 40 and len(documented) >= 230  # the specs were read
    assert astro_error_schema() == "Error"
    provoked = {key for key in documented if key[1] in PROVOKE} - set(NOT_PROVOKED)
    missing = documented - provoked - set(NOT_PROVOKED)
    assert not missing, f"documented but neither provoked nor listed: {sorted(missing)}"
    assert set(NOT_PROVOKED) <= documented, set(NOT_PROVOKED) - documented
    assert all(reason.strip() for reason in NOT_PROVOKED.values())
    # Every operation that documents no 404 but names an organization answers 403 for one it
    # cannot reach (the lists and CreateDeployment).
    lists = {"ListUsers", "ListWorkspaces", "ListDeployments", "CreateDeployment"}
    assert lists == UNREACHABLE_IS_403


def _check(operation: Operation, status: int, outcome: Outcome) -> list[str]:
    r = outcome.response
    request = f"{r.request.method} {r.request.url.path}?{r.request.url.query.decode()}"
    what = f"{operation.operation}: {request} -> {r.status_code} {r.text[:300]}"
    if r.status_code != status:
        return [f"not {status}: {what}"]
    answer = operation.answers[status]
    failures = []
    try:
        if answer.schema is not None:
            assert_astro(r.json(), answer.schema)
        elif status == 204:
            assert not r.content, r.content
        if status >= 400:
            assert_face_error("astro", r, status)
    except Exception as exc:  # a schema mismatch, no JSON, a missing key
        failures.append(f"not the documented body ({exc}): {what}")
    if status >= 400 and outcome.wrote:
        failures.append(f"{what} wrote:\n{outcome.wrote}")
    return failures


def _extra_checks(op: str, status: int, outcomes: list[Outcome]) -> list[str]:
    """What each status's requests must also show: the field a 400 blames, the same answer
    for a real and a made-up object (no oracle)."""
    failures = []
    bodies = [o.response.json() for o in outcomes if o.response.content]
    route = OPERATIONS[op].route
    if status == 400 and bodies:
        expected = (
            route.params[-1]
            if route.params
            else ("createIfNotExist" if op == "GetSelfUser" else "limit")
        )
        blamed = [e["field"] for e in bodies[0].get("fieldErrors", [])]
        if expected not in blamed:
            failures.append(f"{op}: the 400 blames {blamed}, not {expected}")
        if route.has_body and bodies[-1]["message"] != NOT_JSON:
            failures.append(f"{op}: a body that is not JSON: {bodies[-1]}")
    # The outsider's real and made-up ids (404: the last two; an unreachable organization's
    # 403: the first two) read the same.
    pair = bodies[-2:] if status == 404 else bodies[:2] if op in UNREACHABLE_IS_403 else []
    if status in (403, 404) and pair and pair[0]["message"] != pair[1]["message"]:
        failures.append(f"{op}: real and made-up objects answer differently: {pair}")
    return failures


@pytest.mark.parametrize("status", sorted(PROVOKE))
async def test_documented_answer(
    client: httpx.AsyncClient, world: World, database: Database, app: Any, status: int
) -> None:
    ctx = Ctx(client, world, database, Recorder(database), app, await _cast(world))
    failures: list[str] = []
    tried = 0
    for op, operation in OPERATIONS.items():
        if status not in operation.answers or (op, status, None) in NOT_PROVOKED:
            continue
        tried += 1
        outcomes = await PROVOKE[status](ctx, op, operation.route)
        for outcome in outcomes:
            failures += _check(operation, status, outcome)
        if not failures:
            failures += _extra_checks(op, status, outcomes)
    assert tried, f"no operation documents {status}"
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(f"- {f}" for f in failures)


# --- the other way round: what Tenantry answers ---------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """An answer Tenantry gives that Astro does not document for the operation."""

    status: int
    reason: str
    operations: frozenset[str] | None = None  # None: any operation

    def covers(self, operation: str, status: int) -> bool:
        return self.status == status and (self.operations is None or operation in self.operations)


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        405,
        "A method the path does not serve: Astro documents no answer for it; HTTP's 405, in "
        "Astro's error body",
    ),
    Difference(
        403,
        "GET /users/self with an organization's API token, which is no user: Astro documents "
        "no answer for it; 403 says the credential cannot do this (a 401 would tell the "
        "client its token is bad, and it is not)",
        frozenset({"GetSelfUser"}),
    ),
)


async def test_every_answer_is_documented_or_listed(
    client: httpx.AsyncClient, world: World, database: Database, app: Any
) -> None:
    cast = await _cast(world)
    ctx = Ctx(client, world, database, Recorder(database), app, cast)
    seen: dict[tuple[str, int], str] = {}

    async def probe(op: str, route: FaceRoute, url: str, who: str | None, **kw: Any) -> None:
        kw.setdefault("body", _body(op, route, cast))
        r = (await ctx.send(route, url, who, record=False, **kw)).response
        if r.status_code >= 400:
            assert_face_error("astro", r)  # whatever it is, it is Astro's error body
        seen.setdefault((op, r.status_code), f"{r.request.method} {r.request.url} ({who})")

    routes = sorted(
        OPERATIONS.items(), key=lambda item: {"GET": 0, "DELETE": 2}.get(item[1].route.method, 1)
    )
    for op, operation in routes:
        route = operation.route
        url = route.url(cast.values(route))
        await probe(op, route, url, None)
        await probe(op, route, url, None, token="tnt_not-a-token")
        for who in cast.tokens:
            if who != "admin":
                await probe(op, route, url, who)
        for value in (new_id(), "not-an-id"):
            if route.params:
                await probe(op, route, route.url(dict.fromkeys(route.params, value)), "admin")
        if route.has_body:
            await probe(op, route, url, "admin", content=b"{not json")
            big = orjson.dumps({"padding": "x" * 70_000})
            await probe(op, route, url, "admin", content=big)
        # Twice: the second of two creations with one name is the conflict.
        await probe(op, route, url, "admin")
        await probe(op, route, url, "admin")
    by_path: dict[str, set[str]] = {}
    for _, operation in routes:
        by_path.setdefault(operation.route.path, set()).add(operation.route.method)
    for op, operation in routes:
        route = operation.route
        unserved = [
            m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in by_path[route.path]
        ]
        if unserved:
            wrong = FaceRoute(route.face, route.prefix, route.path, unserved[0], False)
            await probe(op, wrong, route.url(cast.values(route)), "admin")
    face = face_app(app, PREFIX)
    for fault in (Fault("injected"), IntegrityError("INSERT", {}, Exception("injected"))):
        face.dependency_overrides[bearer_principal] = raises(fault)
        try:
            for op, operation in routes:
                url = operation.route.url(cast.values(operation.route)) + "?createIfNotExist=false"
                await probe(op, operation.route, url, "admin")
        finally:
            face.dependency_overrides.clear()
    assert len(seen) >= 150, len(seen)  # the probes reached every route
    unexplained = {
        key: example
        for key, example in seen.items()
        if key[1] not in OPERATIONS[key[0]].answers and not any(d.covers(*key) for d in DIFFERENCES)
    }
    assert not unexplained, "answers neither documented nor listed:\n" + "\n".join(
        f"- {k}: {v}" for k, v in sorted(unexplained.items(), key=str)
    )
    unmet = [d for d in DIFFERENCES if not any(d.covers(*key) for key in seen)]
    assert not unmet, f"differences no probe met (remove them?): {unmet}"

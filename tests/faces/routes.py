"""Route discovery and shared helpers for the cross-cutting face tests (isolation, bad input,
schemathesis).

Routes are read from the application itself (every Mount of `create_app()` whose prefix belongs to
a face, and every APIRoute of the mounted face app), so a route added to a face later is covered
by these tests without anyone listing it. Request bodies are synthesised from the face's own
OpenAPI document, and object ids for path parameters are picked by the parameter's name
(`workspaceId` -> a workspace, `memberId` -> a user, ...), so new routes need no test changes.

The ece and unleash faces declare few body schemas of their own (unleash handlers read the JSON
themselves; ece's user bodies are merge patches typed `Any`): their bodies are synthesised from
the vendor's document in tests/reference (ECE's Swagger definitions by operationId, Unleash's
OpenAPI by path), and their path parameters name users by user name (ece) or by number
(unleash), see `Tenant.values_for`.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Table, or_, select
from starlette.routing import Mount

from tenantry.app import create_app
from tenantry.clock import utcnow
from tenantry.config import load_settings
from tenantry.db.base import Base
from tenantry.db.engine import Database
from tenantry.db.models import CustomRole, Invite, Organization, Team, TeamMember, Token, User
from tenantry.faces import astro, ece, unleash
from tenantry.faces.ece.credentials import ece_principal
from tenantry.faces.http import bearer_principal
from tenantry.faces.native import app as native
from tenantry.faces.unleash.auth import unleash_principal
from tenantry.faces.unleash.pat_rules import pat_number
from tenantry.identity import tokens
from tenantry.identity.tokens import TokenKind
from tenantry.ids import ID_PATTERN, new_id
from tests.faces.ece import spec as ece_spec
from tests.faces.unleash import spec as unleash_spec
from tests.factories import World
from tests.spec import assert_astro

FACES: dict[str, str] = (
    dict.fromkeys(astro.PREFIXES, "astro")
    | {native.PREFIX: "native", ece.PREFIX: "ece"}
    | dict.fromkeys(unleash.PREFIXES, "unleash")
)
# The dependency through which each face identifies its caller. A route is *public* (needs no
# credential: sign-in, ECE's sign-in methods) when it depends on none of them, at any depth.
# Decided from the dependency tree rather than by probing without credentials, so that a route
# that forgot its credential dependency and answers anyone shows up as public in
# test_discovery_knows_the_public_routes instead of silently passing as "public".
PRINCIPALS: dict[str, Callable[..., Any]] = {
    "astro": bearer_principal,
    "native": bearer_principal,
    "ece": ece_principal,
    "unleash": unleash_principal,
}
REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "specs"
PARAM_RE = re.compile(r"\{(\w+)(?::\w+)?\}")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# --- discovery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceRoute:
    """One method of one route of a face, under one of the face's mount prefixes."""

    face: str
    prefix: str
    path: str  # the template inside the face, e.g. /organizations/{organizationId}/users
    method: str
    has_body: bool
    body_schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    query: tuple[str, ...] = field(default=(), compare=False)
    # path parameter -> the pattern its OpenAPI schema declares (None: no pattern)
    patterns: dict[str, str | None] = field(default_factory=dict, compare=False)
    # True when no bearer token is required (e.g. sign-in, accepting an invite by its secret)
    public: bool = False
    components: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(m.group(1) for m in PARAM_RE.finditer(self.path))

    @property
    def id(self) -> str:
        return f"{self.method} {self.prefix}{self.path}"

    def url(self, values: Mapping[str, str]) -> str:
        """The route's URL with each path parameter percent-encoded, dots included, so that
        "../x" reaches the server as one segment instead of being resolved by the client."""
        return self.prefix + PARAM_RE.sub(lambda m: _segment(values[m.group(1)]), self.path)

    def kind(self, name: str) -> str | None:
        """The kind of object a parameter or body field of this route names."""
        return face_kind(self.face, name)

    def body(self, ids: Mapping[str, str] | None = None, target: IdPath | None = None) -> Any:
        """A small body that is valid by the route's schema: required fields only, id-like
        fields naming `ids[kind]`; with `target`, the optional id field at that path is added."""
        if not self.has_body:
            return None
        if self.body_schema is None:
            return {}
        return example(self.body_schema, self.components, ids or {}, target=target, kinds=self.kind)

    def body_id_paths(self) -> list[IdPath]:
        """Where the body names other objects (e.g. ("workspaceRoles", "[]", "workspaceId"))."""
        if self.body_schema is None:
            return []
        return id_paths(self.body_schema, self.components, kinds=self.kind)


def _segment(value: str) -> str:
    return quote(value, safe="").replace(".", "%2E")


def _openapi_bodies(face_app: FastAPI) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """(path, method) -> (body schema, query parameter names, path parameter patterns)."""
    doc = face_app.openapi()
    bodies: dict[tuple[str, str], Any] = {}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            schema = next(
                (v.get("schema") for k, v in content.items() if "json" in k),
                None,
            )
            query = tuple(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            )
            patterns = {
                p["name"]: p.get("schema", {}).get("pattern")
                for p in operation.get("parameters", [])
                if p.get("in") == "path"
            }
            bodies[(path, method.upper())] = (schema, query, patterns)
    return bodies, doc.get("components", {}).get("schemas", {})


def _api_routes(face_app: FastAPI) -> list[APIRoute]:
    """The face's APIRoutes, through included routers whatever FastAPI's internal layout."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are flattened into app.routes
        return [r for r in face_app.routes if isinstance(r, APIRoute)]
    found = []
    for ctx in iter_route_contexts(face_app.routes):
        if isinstance(ctx.original_route, APIRoute):
            found.append(ctx.original_route)
    return found


def _requires_token(route: APIRoute, face: str) -> bool:
    """Whether the route depends, at any depth, on the face's principal (see PRINCIPALS)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is PRINCIPALS[face]:
            return True
        pending += dependency.dependencies
    return False


def _reads_json_itself(function: Any, depth: int = 3) -> bool:
    """Whether a handler (or a helper of its module it calls, a few levels deep) reads the body
    with the unleash face's `json_object` instead of declaring a body parameter."""
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    if "json_object" in code.co_names:
        return True
    helpers = (function.__globals__.get(name) for name in code.co_names)
    return depth > 0 and any(
        _reads_json_itself(h, depth - 1) for h in helpers if inspect.isfunction(h)
    )


@functools.cache
def _vendor() -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """The vendors' request body schemas: ("ece", operationId) and ("unleash", "METHOD /path")
    -> schema, and every definition / component schema they refer to (by name)."""
    schemas: dict[tuple[str, str], Any] = {}
    ece_doc = json.loads((REFERENCE / "elastic-ece" / "apidocs.json").read_text())
    for item in ece_doc["paths"].values():
        for method, op in item.items():
            if method == "parameters":
                continue
            for param in op.get("parameters", []):
                if param.get("in") == "body":
                    schemas[("ece", op["operationId"])] = param["schema"]
    unleash_doc = json.loads((REFERENCE / "unleash" / "openapi.json").read_text())
    for path, item in unleash_doc["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}) if isinstance(op, dict) else {}
            if "application/json" in content:
                schemas[("unleash", f"{method.upper()} {path}")] = content["application/json"][
                    "schema"
                ]
    components = ece_doc["definitions"] | unleash_doc["components"]["schemas"]
    return schemas, components


def _vendor_body(face: str, prefix: str, path: str, method: str, operation_id: str) -> Any:
    schemas, _ = _vendor()
    if face == "ece":
        schema = schemas.get(("ece", operation_id))
        if schema is not None and schema.get("type") == "string":
            # ECE's Swagger types its PATCH user bodies as a string; they are a JSON merge
            # patch of a User.
            schema = {"$ref": "#/definitions/User"}
        return schema
    if face == "unleash":
        return schemas.get(("unleash", f"{method} {prefix}{path}"))
    return None


def discover(app: FastAPI) -> list[FaceRoute]:
    """Every (face, prefix, path, method) that `app` serves through a face's Mount."""
    found: list[FaceRoute] = []
    for mount in app.routes:
        if not isinstance(mount, Mount) or mount.path not in FACES:
            continue
        face_app = mount.app
        face = FACES[mount.path]
        assert isinstance(face_app, FastAPI)
        bodies, components = _openapi_bodies(face_app)
        if face in ("ece", "unleash"):
            components = _vendor()[1] | components
        for route in _api_routes(face_app):
            for method in sorted(route.methods or ()):
                if method in ("HEAD", "OPTIONS"):
                    continue
                schema, query, patterns = bodies.get((route.path, method), (None, (), {}))
                has_body = route.body_field is not None
                if face in ("ece", "unleash") and not (schema and "$ref" in schema):
                    vendor = _vendor_body(
                        face, mount.path, route.path, method, route.operation_id or ""
                    )
                    schema = vendor if vendor is not None else schema
                    has_body = has_body or vendor is not None
                if face == "unleash" and method in BODY_METHODS:
                    has_body = has_body or _reads_json_itself(route.endpoint)
                found.append(
                    FaceRoute(
                        face=face,
                        prefix=mount.path,
                        path=route.path,
                        method=method,
                        has_body=has_body,
                        body_schema=schema,
                        query=query,
                        patterns=patterns,
                        public=not _requires_token(route, face),
                        components=components,
                    )
                )
    return found


@functools.cache
def face_routes() -> tuple[FaceRoute, ...]:
    # Building the app opens no connection; it only reads the routes.
    settings = load_settings(environment="test", database_url="sqlite+aiosqlite:///:memory:")
    routes = tuple(discover(create_app(settings)))
    assert {r.face for r in routes} == set(FACES.values()), "face mounts not found"
    return routes


def routes_of(face: str, *, all_prefixes: bool = False) -> list[FaceRoute]:
    """The face's routes; by default each (path, method) once, under the first prefix serving
    it (astro's prefixes serve the same handlers; unleash's two serve different ones)."""
    seen: set[tuple[str, str]] = set()
    found = []
    for r in face_routes():
        if r.face != face or (not all_prefixes and (r.path, r.method) in seen):
            continue
        seen.add((r.path, r.method))
        found.append(r)
    return found


def ids_of(routes: Sequence[FaceRoute]) -> list[str]:
    return [r.id for r in routes]


# --- object kinds, by parameter / field name ---------------------------------------------------

_KINDS = (
    ("customroleid", "role"),
    ("organizationid", "organization"),
    ("workspaceid", "workspace"),
    ("deploymentid", "deployment"),
    ("memberid", "user"),
    ("userid", "user"),
    ("teamid", "team"),
    ("roleid", "role"),
    ("inviteid", "invite"),
    ("tokenid", "token"),
)


def kind_of(name: str) -> str | None:
    """The kind of object an id-like parameter or field names (`restrictedWorkspaceIds` ->
    workspace), or None."""
    key = name.lower()
    if key.endswith("ids"):
        key = key[:-1]
    for suffix, kind in _KINDS:
        if key.endswith(suffix):
            return kind
    return None


# ECE names users by user name (its `user_id` is one too) and API keys by token id.
_ECE_KINDS = {"user_name": "user_name", "user_id": "user_name", "api_key_id": "key", "keys": "key"}


def face_kind(face: str, name: str) -> str | None:
    if face == "ece":
        return _ECE_KINDS.get(name)
    if face == "unleash":
        return None  # its path ids depend on the path: see Tenant.values_for
    return kind_of(name)


Kinds = Callable[[str], str | None]


# --- request bodies from JSON schema -------------------------------------------------------------

_STRING_CANDIDATES = ("probe", "x", "0", "a", "probe@example.com", "ORGANIZATION_MEMBER")


def _resolve(schema: Any, components: Mapping[str, Any]) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema if isinstance(schema, dict) else {}


def _choices(schema: dict[str, Any], components: Mapping[str, Any]) -> list[dict[str, Any]]:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(s, components) for s in schema[key]]
            return [o for o in options if o.get("type") != "null"] or options
    return [schema]


IdPath = tuple[str, ...]


def _is_string(schema: Any, components: Mapping[str, Any]) -> bool:
    return any(
        o.get("type") == "string" for o in _choices(_resolve(schema, components), components)
    )


def id_paths(
    schema: Any,
    components: Mapping[str, Any],
    seen: frozenset[str] = frozenset(),
    kinds: Kinds = kind_of,
) -> list[IdPath]:
    """Paths to the id-like string fields of a body schema; "[]" steps into array items."""
    if isinstance(schema, dict) and "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        seen = seen | {schema["$ref"]}
    found: list[IdPath] = []
    for option in _choices(_resolve(schema, components), components):
        for name, prop in option.get("properties", {}).items():
            resolved = _choices(_resolve(prop, components), components)
            if kinds(name) and _is_string(prop, components):
                found.append((name,))
            elif kinds(name) and any(
                o.get("type") == "array" and _is_string(o.get("items", {}), components)
                for o in resolved
            ):
                found.append((name, "[]"))
            else:
                found += [(name, *p) for p in id_paths(prop, components, seen, kinds)]
        if option.get("type") == "array":
            items = option.get("items", {})
            found += [("[]", *p) for p in id_paths(items, components, seen, kinds)]
    return list(dict.fromkeys(found))


def _string(
    schema: dict[str, Any], name: str, ids: Mapping[str, str], kinds: Kinds = kind_of
) -> str:
    kind = kinds(name)
    if kind is not None and kind in ids:
        return ids[kind]
    if "const" in schema:
        return str(schema["const"])
    if schema.get("enum"):
        return str(schema["enum"][0])
    if schema.get("format") == "email" or "email" in name.lower():
        candidates: tuple[str, ...] = ("probe@example.com",)
    elif schema.get("format") == "date-time":
        candidates = ("2030-01-01T00:00:00Z",)
    elif schema.get("format") in ("uri", "url") or name.lower().endswith("url"):
        candidates = ("https://example.com/probe",)
    elif schema.get("pattern") == ID_PATTERN or kind is not None:
        candidates = (new_id(),)
    elif "permission" in name.lower():
        candidates = ("deployment.get", *_STRING_CANDIDATES)
    elif name == "role":
        candidates = ("DEPLOYMENT_ADMIN", *_STRING_CANDIDATES)
    else:
        candidates = _STRING_CANDIDATES
    low: int = schema.get("minLength", 0)
    high: int = schema.get("maxLength", 10**9)
    pattern = schema.get("pattern")
    for value in candidates:
        if pattern and not re.search(pattern, value):
            continue
        if low <= len(value) <= high:
            return value
        if len(value) < low and not pattern:
            return value + "x" * (low - len(value))
    if pattern:
        return _from_regex(pattern)
    return "x" * max(low, 1)


def _from_regex(pattern: str) -> str:
    from hypothesis import HealthCheck, find, settings
    from hypothesis import strategies as st

    found: str = find(
        st.from_regex(pattern, fullmatch=True),
        lambda _: True,
        settings=settings(database=None, suppress_health_check=list(HealthCheck)),
    )
    return found


def example(
    schema: Any,
    components: Mapping[str, Any],
    ids: Mapping[str, str],
    *,
    target: IdPath | None = None,
    name: str = "",
    kinds: Kinds = kind_of,
) -> Any:
    """A small instance of `schema`: required properties only (plus the one at `target`),
    the first enum value, the shortest valid string, the smallest valid number; id-like strings
    name `ids[kind]` when given."""
    schema = _resolve(schema, components)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged |= _resolve(part, components)
        schema = merged
    schema = _choices(schema, components)[0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        body: dict[str, Any] = {}
        required = set(schema.get("required", ()))
        for prop_name, prop in schema.get("properties", {}).items():
            aimed = bool(target) and target[0] == prop_name  # type: ignore[index]
            if prop_name in required or aimed:
                rest = target[1:] if aimed else None  # type: ignore[index]
                body[prop_name] = example(
                    prop, components, ids, target=rest, name=prop_name, kinds=kinds
                )
        return body
    if kind == "array":
        aimed = bool(target) and target[0] == "[]"  # type: ignore[index]
        count = max(schema.get("minItems", 0), 1 if aimed else 0)
        rest = target[1:] if aimed else None  # type: ignore[index]
        item = schema.get("items", {})
        return [
            example(item, components, ids, target=rest, name=name, kinds=kinds)
            for _ in range(count)
        ]
    if kind == "string":
        return _string(schema, name, ids, kinds)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if kind in ("integer", "number"):
        if schema.get("enum"):
            return schema["enum"][0]
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        high = schema.get("maximum", low)
        return max(low, min(1, high))
    if kind == "boolean":
        return False
    if schema.get("enum"):
        return schema["enum"][0]
    return None


# --- test data ---------------------------------------------------------------------------------


@dataclass
class Tenant:
    """An organization with one object of every kind, its owner and a plain member."""

    org: Organization
    owner: User
    owner_token: str
    member: User
    member_token: str
    api_token: str  # the secret of an API token of the organization
    ids: dict[str, str]  # kind -> id
    user_ids: tuple[str, ...]
    markers: tuple[str, ...]  # strings that must never appear in another tenant's responses
    member_key_id: str = ""  # the id of the member's personal token (an ECE API key)
    member_pat: int = 0  # its number as an Unleash PAT

    def values(self, params: Sequence[str]) -> dict[str, str]:
        """Path parameter values naming this tenant's objects (an unknown kind gets a fresh,
        valid-looking id that names nothing)."""
        return {p: self.ids.get(kind_of(p) or "", new_id()) for p in params}

    def face_ids(self, face: str) -> dict[str, str]:
        """kind -> value, for the kinds `face_kind(face, ...)` names."""
        return self.ids | {"user_name": self.member.username, "key": self.member_key_id}

    def values_for(self, route: FaceRoute) -> dict[str, str]:
        """Path parameter values naming this tenant's objects (its member, the member's key),
        as the route's face names them."""
        if route.face == "ece":
            ids = self.face_ids("ece")
            return {p: ids.get(route.kind(p) or "", "probe") for p in route.params}
        if route.face == "unleash":
            return {p: self._unleash_value(route.path) for p in route.params}
        return self.values(route.params)

    def _unleash_value(self, path: str) -> str:
        if path.startswith("/user-admin/{"):
            return str(self.member.seq)  # Unleash's user ids are Tenantry's seq numbers
        if path.startswith("/user/tokens/{"):
            return str(self.member_pat)
        return "probe"  # a free-form name: a splash screen, a feedback questionnaire


async def build_tenant(world: World, label: str) -> Tenant:
    tag = f"{label.lower()}{secrets.token_hex(3)}"
    org = await world.org(f"Tenant {label} {tag}")
    ws = await world.workspace(org, f"ws-{tag}")
    dep = await world.deployment(ws, f"dep-{tag}")
    owner, owner_token = await world.member(
        org, "ORGANIZATION_OWNER", username=f"owner-{tag}@example.com"
    )
    member = await world.user(f"member-{tag}@example.com", f"Member {tag}")
    await world.roles(
        org,
        member,
        "ORGANIZATION_MEMBER",
        workspaces=[(ws.id, "WORKSPACE_MEMBER")],
        deployments=[(dep.id, "DEPLOYMENT_ADMIN")],
    )
    member_token = await world.token(member)
    ids = {"organization": org.id, "workspace": ws.id, "deployment": dep.id, "user": member.id}
    team_name, role_name = f"team-{tag}", f"ROLE_{tag.upper()}"
    email = f"invitee-{tag}@example.com"
    # Teams, custom roles and invites through the World's factories where it has them (their
    # services keep invariants, e.g. a team's organization role); otherwise as plain rows.
    team = await _made(world, "team", org, team_name, [member])
    role = await _made(world, "custom_role", org, role_name)
    invite = await _made(world, "invite", org, email)
    api = await _made(world, "api_token", org)
    async with world.database.transaction() as db:
        if team is None:
            team = Team(organization_id=org.id, name=team_name, description="")
            db.add(team)
            await db.flush()
            db.add(TeamMember(team_id=team.id, user_id=member.id, organization_id=org.id))
        if role is None:
            role = CustomRole(
                organization_id=org.id,
                name=role_name,
                description="",
                scope_type="DEPLOYMENT",
                permissions=["deployment.get"],
                restricted_workspace_ids=[],
            )
            db.add(role)
        if invite is None:
            invite = Invite(
                organization_id=org.id,
                invitee_email=email,
                role="ORGANIZATION_MEMBER",
                inviter_id=owner.id,
                secret_digest=tokens.digest(secrets.token_hex(16)),
                expires_at=utcnow() + timedelta(days=7),
            )
            db.add(invite)
        if api is None:
            api = await tokens.mint(
                db, kind=TokenKind.API, user_id=None, name=f"api-{tag}", organization_id=org.id
            )
        api_secret = api.secret
        api_id = api.id if hasattr(api, "id") else api.token.id
        await db.flush()
        ids |= {"team": team.id, "role": role.id, "invite": invite.id, "token": api_id}
    user_ids = (owner.id, member.id) + ((invite.user_id,) if invite.user_id else ())
    markers = (*ids.values(), owner.username, member.username, org.name, team_name, email)
    async with world.database.transaction(write=False) as db:
        key = await db.scalar(select(Token).where(Token.digest == tokens.digest(member_token)))
        assert key is not None
    markers += (key.id,)
    return Tenant(
        org,
        owner,
        owner_token,
        member,
        member_token,
        api_secret,
        ids,
        user_ids,
        markers,
        member_key_id=key.id,
        member_pat=pat_number(key),
    )


async def _made(world: World, factory: str, *args: Any) -> Any:
    """The object made by `world.<factory>(*args)`, or None when the World has no such factory
    (or one that cannot make it this way): the caller then inserts a plain row. These tests are
    about the faces, not the factories, which have tests of their own."""
    make = getattr(world, factory, None)
    if make is None:
        return None
    try:
        return await make(*args)
    except Exception:
        return None


# --- database snapshots ---------------------------------------------------------------------------

# What any request may legitimately write whatever its outcome: a token's and its user's last
# use, and the audit events recording authentication (failed sign-ins, a token's first use).
VOLATILE = frozenset({("tokens", "last_used_at"), ("users", "seen_at")})
USAGE_AUDIT_ACTIONS = ("token.first_use",)
USAGE_AUDIT_PREFIX = "auth."
Snapshot = dict[str, list[str]]


def _columns(table: Table) -> list[Any]:
    return [c for c in table.columns if (table.name, c.name) not in VOLATILE]


async def snapshot(database: Database, tenant: Tenant | None = None) -> Snapshot:
    """Every row of every table (or only the tenant's rows), minus volatile columns."""
    result: Snapshot = {}
    async with database.transaction(write=False) as s:
        for table in Base.metadata.sorted_tables:
            query = select(*_columns(table))
            if table.name == "audit_events":
                query = query.where(
                    table.c.action.not_in(USAGE_AUDIT_ACTIONS),
                    table.c.action.not_like(USAGE_AUDIT_PREFIX + "%"),
                )
            if tenant is not None:
                conditions = []
                if "organization_id" in table.c:
                    conditions.append(table.c.organization_id == tenant.org.id)
                if table.name == "organizations":
                    conditions.append(table.c.id == tenant.org.id)
                if table.name == "users":
                    conditions.append(table.c.id.in_(tenant.user_ids))
                if "user_id" in table.c:
                    conditions.append(table.c.user_id.in_(tenant.user_ids))
                if "subject_id" in table.c:
                    conditions.append(table.c.subject_id.in_(tenant.user_ids))
                if not conditions:
                    continue
                query = query.where(or_(*conditions))
            rows = (await s.execute(query)).all()
            result[table.name] = sorted(repr(tuple(row)) for row in rows)
    return result


def diff(before: Snapshot, after: Snapshot) -> str:
    lines = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        lines += [f"  {table} - {row}" for row in sorted(old - new)]
        lines += [f"  {table} + {row}" for row in sorted(new - old)]
    return "\n".join(lines)


# --- requests and error bodies ------------------------------------------------------------------


async def call(
    client: httpx.AsyncClient,
    route: FaceRoute,
    url: str,
    token: str | None,
    body: Any = None,
    **kwargs: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if route.method in BODY_METHODS and "content" not in kwargs:
        kwargs["json"] = {} if body is None else body
    return await client.request(route.method, url, headers=headers, **kwargs)


def describe(route: FaceRoute, response: httpx.Response) -> str:
    request = response.request
    return (
        f"{route.id}: {request.method} {request.url.raw_path.decode()} -> "
        f"{response.status_code} {response.text[:500]}"
    )


PROBLEM_KEYS = frozenset({"type", "title", "status", "detail", "instance"})
UNLEASH_KEYS = frozenset({"id", "name", "message", "details"})
# Extra keys Unleash 8.2 adds to some errors (captures 02 and 34).
UNLEASH_EXTRA = {
    "AuthenticationRequired": {"path", "type", "defaultHidden"},
    "PermissionError": {"permissions"},
}
# What Unleash 8.2 answers to a body that is not JSON at all (capture 26): not its error body.
UNLEASH_BAD_JSON = {"message": "Unexpected end of JSON input"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@functools.cache
def _unleash_error_schemas() -> dict[int, Any]:
    """status -> the error schema Unleash's document gives for it (the same {id, name,
    message} object on every admin operation)."""
    document = json.loads((REFERENCE / "unleash" / "openapi.json").read_text())
    item = document["paths"]["/api/admin/user-admin/{id}"]
    found: dict[int, Any] = {}
    for operation in item.values():
        for status, answer in operation.get("responses", {}).items():
            schema = answer.get("content", {}).get("application/json", {}).get("schema")
            if status.isdigit() and int(status) >= 400 and schema is not None:
                found.setdefault(int(status), unleash_spec._convert(schema))
    return found


@functools.cache
def _ece_error_validator() -> Any:
    """ECE's BasicFailedReply, validated with only the definitions it uses (validating against
    the whole Swagger document, as tests/faces/ece/spec.py does, takes about a second a body)."""
    from jsonschema import Draft4Validator

    definitions = ece_spec.document()["definitions"]
    used = ("BasicFailedReply", "BasicFailedReplyElement")
    schema = {
        "$ref": "#/definitions/BasicFailedReply",
        "definitions": {name: definitions[name] for name in used},
    }
    return Draft4Validator(schema, format_checker=ece_spec.FORMATS)


@functools.cache
def _unleash_error_validator(status: int) -> Any:
    from jsonschema import Draft7Validator

    schema = _unleash_error_schemas().get(status)
    return None if schema is None else Draft7Validator(schema)


# Unleash 8 answers GET /api/admin/user/roles without a projectId, and an own password change
# whose confirmation differs or lacks the old password, with a bare 400 and no body.
UNLEASH_BARE_400 = frozenset({"/api/admin/user/roles", "/api/admin/user/change-password"})


def _sent_json(response: httpx.Response) -> bool:
    try:
        json.loads(response.request.content)
    except (ValueError, RecursionError, httpx.RequestNotRead):
        return False
    return True


def assert_face_error(face: str, response: httpx.Response, status: int | None = None) -> None:
    """The response is the face's own error body (astro: {message, requestId, statusCode,
    fieldErrors?}; native: RFC 9457 problem+json; ece: {errors: [{code, message, fields?}]}
    per ECE's BasicFailedReply with the x-cloud-error-codes header; unleash: {id, name,
    message, details} per Unleash's document and captures), with `status` if given."""
    if status is not None:
        assert response.status_code == status, response.text[:500]
    assert 400 <= response.status_code < 600
    if (
        face == "unleash"
        and response.status_code == 400
        and not response.content
        and response.request.url.path in UNLEASH_BARE_400
    ):
        return
    body = response.json()
    if face == "ece":
        assert response.headers["content-type"].startswith("application/json")
        _ece_error_validator().validate(body)
        assert len(body["errors"]) >= 1, body
        codes = [e["code"] for e in body["errors"]]
        assert all(re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", c) for c in codes), body
        assert response.headers["x-cloud-error-codes"] == ",".join(codes)
        assert all(e["message"] for e in body["errors"]), body
    elif face == "unleash":
        assert response.headers["content-type"].startswith("application/json")
        if body == UNLEASH_BAD_JSON and response.status_code == 400:
            assert not _sent_json(response), "Unleash's bare JSON-parse answer to valid JSON"
            return
        validator = _unleash_error_validator(response.status_code)
        if validator is not None:
            validator.validate(body)
        # Unleash's middleware gives its errors an `id`, its services' errors have none.
        assert body.keys() >= UNLEASH_KEYS - {"id"}, body
        assert body.keys() <= UNLEASH_KEYS | UNLEASH_EXTRA.get(body["name"], set()), body
        assert "id" not in body or UUID_RE.match(body["id"]), body
        assert re.fullmatch(r"[A-Z][A-Za-z]+", body["name"]), body
        assert isinstance(body["message"], str) and body["message"], body
        details = body["details"]
        assert isinstance(details, list) and details, body
        assert all(isinstance(d, dict) and isinstance(d.get("message"), str) for d in details)
    elif face == "scim":
        assert response.headers["content-type"].startswith("application/scim+json")
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], body
        assert body["status"] == str(response.status_code), body
        assert isinstance(body["detail"], str), body
    elif face == "astro":
        assert response.headers["content-type"].startswith("application/json")
        assert_astro(body, "Error")
        assert body["statusCode"] == response.status_code
        assert body["requestId"] == response.headers["x-request-id"]
    else:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert body.keys() >= PROBLEM_KEYS, body
        assert body["status"] == response.status_code
        assert isinstance(body["detail"], str) and isinstance(body["title"], str)


class Findings:
    """Collects failures across routes so one run reports all of them."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.failures: list[str] = []
        self.baseline: Snapshot = {}

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def error_body(self, route: FaceRoute, response: httpx.Response, what: str) -> bool:
        """Whether the response is the face's error body (a failure is recorded if not)."""
        try:
            assert_face_error(route.face, response)
        except Exception as exc:  # a schema mismatch, no JSON, a missing key, ...
            self.failures.append(f"{what}: not the face's error body ({exc}): {response.text}")
            return False
        return True

    async def mark(self) -> None:
        self.baseline = await snapshot(self.database)

    async def unchanged(self, what: str) -> None:
        after = await snapshot(self.database)
        if after != self.baseline:
            self.failures.append(f"{what} wrote:\n{diff(self.baseline, after)}")
            self.baseline = after

    def report(self) -> None:
        assert not self.failures, f"{len(self.failures)} failure(s):\n" + "\n".join(
            f"- {f}" for f in self.failures
        )

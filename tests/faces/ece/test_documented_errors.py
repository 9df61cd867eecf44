"""Every answer ECE's specs document for the routes of the ece face, provoked against Tenantry;
and every answer Tenantry gives on those routes, documented or listed with its reason.

The table is read from the specs by code (tests/faces/documented.py): each (operationId,
status, error code) the Swagger documents for an operation the face serves. Each is either
provoked here (`CASES`: the request, then its status, its body against the schema the spec
documents for that status, its `x-cloud-error-codes` header and its code, and that a refusal
wrote nothing) or listed in `NOT_PROVOKED` with the reason Tenantry cannot give it; a test
fails when the two do not cover the documented table exactly.

The other way round (`test_every_answer_is_documented_or_listed`): a set of probes (no
credential, a credential without rights, an organization API token, unknown and malformed ids,
bodies that are not JSON or too large, a wrong method, an instance that requires elevation,
injected server faults, repeated wrong passwords) sent to every route; each (operation,
status, code) answered must be documented for that operation or be one of `DIFFERENCES`, each
with its reason (docs/faces/ece.md, "Documented errors"). A difference no probe meets fails
too, so the list cannot go stale.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenantry.app import create_app
from tenantry.db.engine import Database
from tenantry.db.models import Token, User
from tenantry.directory import bootstrap
from tenantry.faces.ece.credentials import ece_principal
from tenantry.faces.http import db_session
from tenantry.identity import tokens
from tests.faces.documented import (
    Fault,
    Key,
    Operation,
    Outcome,
    Recorder,
    assert_ece_body,
    documented_keys,
    ece_operations,
    face_app,
    raises,
    settings_like,
)
from tests.faces.ece.conftest import PASSWORD, V, apikey, basic, elevate, login, with_password
from tests.faces.routes import BODY_METHODS, assert_face_error, build_tenant
from tests.factories import World, bearer

OPERATIONS = ece_operations()
ELEVATION = "root.unauthorized.rbac.elevated_permissions_required"


def _name(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


# --- the world a case builds ---------------------------------------------------------------------


@dataclass
class Person:
    user: User
    key: str  # an API key (personal token) of theirs

    @property
    def name(self) -> str:
        return self.user.username

    @property
    def auth(self) -> dict[str, str]:
        return apikey(self.key)


@dataclass
class Ctx:
    client: httpx.AsyncClient
    world: World
    database: Database
    recorder: Recorder
    strict_client: httpx.AsyncClient | None = None

    async def person(self, role: str | None = None, name: str | None = None) -> Person:
        user = await with_password(self.world, name or _name(), role)
        return Person(user, await self.world.token(user))

    async def admin(self) -> Person:
        return await self.person("SYSTEM_ADMIN")

    async def external(self) -> Person:
        """A user an identity provider owns (a SAML realm)."""
        person = await self.person()
        async with self.database.transaction() as db:
            stored = await db.scalar(select(User).where(User.id == person.user.id))
            assert stored is not None
            stored.realm, stored.realm_id = "saml", "okta"
        return person

    async def builtin(self) -> Person:
        """ECE's built-in `admin` (made as `tenantry bootstrap` makes it), with an API key."""
        async with self.database.transaction() as db:
            made = await bootstrap.ensure_builtin_users(db)
        user = next(u for u in made if u.username == "admin")
        return Person(user, await self.world.token(user))

    async def organization_token(self) -> str:
        """An organization's API token (astro's): a credential that acts as no user."""
        org = await self.world.org(_name("Org "))
        made = await self.world.api_token(org)
        secret: str = made.secret
        return secret

    async def key_id(self, person: Person, secret: str | None = None) -> str:
        """The id of one of the person's API keys (by default the one `person.auth` uses)."""
        async with self.database.transaction(write=False) as db:
            token = await db.scalar(
                select(Token).where(Token.digest == tokens.digest(secret or person.key))
            )
            assert token is not None
            return token.id

    async def session(self, person: Person) -> str:
        return await login(self.client, person.name)

    def strict(self) -> httpx.AsyncClient:
        """A client of an instance with TENANTRY_REQUIRE_ELEVATION=true (same database)."""
        if self.strict_client is None:
            app = create_app(settings_like(self.database, require_elevation=True), self.database)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            self.strict_client = httpx.AsyncClient(
                transport=transport, base_url="http://tenantry.test"
            )
        return self.strict_client

    async def send(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        json: Any = None,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> Outcome:
        """One request, with what it changed in the database."""
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if json is not None or method in BODY_METHODS:
            kwargs["json"] = {} if json is None else json
        use = client or self.client
        return await self.recorder.send(lambda: use.request(method, V + path, **kwargs))


Scenario = Callable[[Ctx], Awaitable[list[Outcome]]]


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    # Tables a refusal may write to: a refused password keeps its failure count and audit
    # event (keeps_writes), nothing else does.
    keeps: frozenset[str] = frozenset()


CASES: dict[Key, Case] = {}


def case(
    operation: str, status: int, code: str | None = None, *, keeps: str = ""
) -> Callable[[Scenario], Scenario]:
    """Register the scenario provoking (operation, status, code)."""

    def register(scenario: Scenario) -> Scenario:
        key = (operation, status, code)
        assert key not in CASES, key
        CASES[key] = Case(scenario, frozenset(keeps.split()))
        return scenario

    return register


def _one(outcome: Outcome) -> list[Outcome]:
    return [outcome]


# --- the current user ------------------------------------------------------------------------


@case("get-current-user", 200)
async def _get_current_user(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return [
        await ctx.send("GET", "/user", person.auth),
        await ctx.send("GET", "/user?x=1", person.auth),
    ]


@case("get-current-user", 404, "user.not_found")
async def _current_user_of_no_user(ctx: Ctx) -> list[Outcome]:
    token = bearer(await ctx.organization_token())
    # The hot path (faces/hot.py) and the route answer alike.
    return [await ctx.send("GET", "/user", token), await ctx.send("GET", "/user?x=1", token)]


@case("update-current-user", 200)
async def _update_current_user(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return _one(await ctx.send("PATCH", "/user", person.auth, {"full_name": "Ann Lee"}))


@case("update-current-user", 400, "user.roles.invalid")
async def _own_unknown_roles(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    body = {"security": {"roles": ["superuser"]}}
    return _one(await ctx.send("PATCH", "/user", person.auth, body))


@case("update-current-user", 400, "user.roles.forbidden")
async def _own_roles(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    body = {"security": {"roles": ["ece_platform_viewer"]}}
    return _one(await ctx.send("PATCH", "/user", admin.auth, body))


@case("update-current-user", 400, "user.restricted_field")
async def _own_restricted_field(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return [
        await ctx.send("PATCH", "/user", person.auth, {"security": {"permissions": ["x"]}}),
        await ctx.send("PATCH", "/user", person.auth, {"builtin": True}),
        await ctx.send("PATCH", "/user", person.auth, {"security": {"enabled": False}}),
    ]


@case("update-current-user", 400, "user.cannot_modify_external")
async def _own_external(ctx: Ctx) -> list[Outcome]:
    person = await ctx.external()
    return _one(await ctx.send("PATCH", "/user", person.auth, {"user_name": _name()}))


@case("update-current-user", 400, "user.cannot_modify")
async def _own_builtin(ctx: Ctx) -> list[Outcome]:
    builtin = await ctx.builtin()
    return _one(await ctx.send("PATCH", "/user", builtin.auth, {"full_name": "Boss"}))


@case("update-current-user", 404, "user.not_found")
async def _update_current_of_no_user(ctx: Ctx) -> list[Outcome]:
    token = bearer(await ctx.organization_token())
    return _one(await ctx.send("PATCH", "/user", token, {"full_name": "Nobody"}))


# --- sessions ----------------------------------------------------------------------------------


@case("login", 200)
async def _login(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    body = {"username": person.name, "password": PASSWORD}
    return _one(await ctx.send("POST", "/users/auth/_login", json=body))


@case("login", 401, "root.unauthenticated", keeps="users audit_events")
async def _login_refused(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return [
        await ctx.send(
            "POST", "/users/auth/_login", json={"username": person.name, "password": "wrong-1"}
        ),
        await ctx.send(
            "POST", "/users/auth/_login", json={"username": _name(), "password": PASSWORD}
        ),
    ]


@case("logout", 200)
async def _logout(ctx: Ctx) -> list[Outcome]:
    session = await ctx.session(await ctx.person())
    return _one(await ctx.send("POST", "/users/auth/_logout", bearer(session)))


@case("refresh-token", 200)
async def _refresh(ctx: Ctx) -> list[Outcome]:
    session = await ctx.session(await ctx.person())
    return _one(await ctx.send("POST", "/users/auth/_refresh", bearer(session)))


@case("refresh-token", 401, "root.unauthorized")
async def _refresh_refused(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    session = await ctx.session(person)
    await ctx.send("POST", "/users/auth/_logout", bearer(session))
    return [
        await ctx.send("POST", "/users/auth/_refresh"),
        await ctx.send("POST", "/users/auth/_refresh", bearer(session)),  # logged out
        await ctx.send("POST", "/users/auth/_refresh", person.auth),  # not a session
    ]


@case("enable-elevated-permissions", 200)
async def _elevate(ctx: Ctx) -> list[Outcome]:
    session = await ctx.session(await ctx.person())
    body = {"token": PASSWORD}
    return _one(await ctx.send("POST", "/users/auth/_elevate", bearer(session), body))


# (A session's idle expiry moves on with its use, so its row in `tokens` changes too.)
@case("enable-elevated-permissions", 400, "authc.invalid_token", keeps="users audit_events tokens")
async def _elevate_refused(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    session = await ctx.session(person)
    return [
        await ctx.send("POST", "/users/auth/_elevate", bearer(session), {"token": "wrong-1"}),
        await ctx.send("POST", "/users/auth/_elevate", person.auth, {"token": PASSWORD}),
    ]


@case("enable-elevated-permissions", 401, "root.unauthorized")
async def _elevate_unauthenticated(ctx: Ctx) -> list[Outcome]:
    return [
        await ctx.send("POST", "/users/auth/_elevate", json={"token": PASSWORD}),
        await ctx.send("POST", "/users/auth/_elevate", bearer("tnt_nope"), {"token": PASSWORD}),
    ]


@case("disable-elevated-permissions", 200)
async def _drop_elevation(ctx: Ctx) -> list[Outcome]:
    session = await elevate(ctx.client, await ctx.session(await ctx.person()))
    return _one(await ctx.send("DELETE", "/users/auth/_elevate", bearer(session)))


@case("disable-elevated-permissions", 401, "root.unauthorized")
async def _drop_elevation_refused(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return [
        await ctx.send("DELETE", "/users/auth/_elevate"),
        await ctx.send("DELETE", "/users/auth/_elevate", person.auth),  # not a session
    ]


@case("get-authentication-info", 200)
async def _authentication_info(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    session = await ctx.session(person)
    return [
        await ctx.send("GET", "/users/auth", person.auth),
        await ctx.send("GET", "/users/auth", bearer(session)),
    ]


@case("methods", 200)
async def _methods(ctx: Ctx) -> list[Outcome]:
    return _one(await ctx.send("GET", "/users/auth/methods"))


# --- API keys ----------------------------------------------------------------------------------


@case("get-api-keys", 200)
async def _own_keys(ctx: Ctx) -> list[Outcome]:
    return _one(await ctx.send("GET", "/users/auth/keys", (await ctx.person()).auth))


@case("create-api-key", 201)
async def _create_key(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    body = {"description": "ci", "expiration": "1d"}
    return _one(await ctx.send("POST", "/users/auth/keys", person.auth, body))


@case("create-api-key", 400, "api_keys.invalid_input")
async def _create_key_refused(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    sent = []
    for body in (
        {"description": "  "},  # blank
        {"description": "ci", "expiration": "forever"},  # not a duration
        {"description": "ci", "expiration": "11y"},  # past the 3650-day cap (the domain's)
        {"description": "ci", "expiration": "0d"},  # not in the future (the domain's)
    ):
        sent.append(await ctx.send("POST", "/users/auth/keys", person.auth, body))
    token = bearer(await ctx.organization_token())  # belongs to no user
    sent.append(await ctx.send("POST", "/users/auth/keys", token, {"description": "ci"}))
    return sent


@case("delete-api-keys", 200)
async def _delete_own_keys(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    spare = await ctx.key_id(person, await ctx.world.token(person.user))
    return _one(await ctx.send("DELETE", "/users/auth/keys", person.auth, {"keys": [spare]}))


@case("get-api-key", 200)
async def _own_key(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return _one(await ctx.send("GET", f"/users/auth/keys/{await ctx.key_id(person)}", person.auth))


async def _foreign_and_unknown_keys(ctx: Ctx, method: str) -> list[Outcome]:
    person, other = await ctx.person(), await ctx.person()
    theirs = await ctx.key_id(other)
    return [
        await ctx.send(method, "/users/auth/keys/nokey", person.auth),
        await ctx.send(method, f"/users/auth/keys/{theirs}", person.auth),  # not yours
    ]


@case("get-api-key", 404, "api_keys.key_not_found")
async def _own_key_unknown(ctx: Ctx) -> list[Outcome]:
    return await _foreign_and_unknown_keys(ctx, "GET")


@case("delete-api-key", 200)
async def _delete_own_key(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    spare = await ctx.key_id(person, await ctx.world.token(person.user))
    return _one(await ctx.send("DELETE", f"/users/auth/keys/{spare}", person.auth))


@case("delete-api-key", 404, "api_keys.key_not_found")
async def _delete_own_key_unknown(ctx: Ctx) -> list[Outcome]:
    return await _foreign_and_unknown_keys(ctx, "DELETE")


@case("get-users-api-keys", 200)
async def _all_keys(ctx: Ctx) -> list[Outcome]:
    return _one(await ctx.send("GET", "/users/auth/keys/_all", (await ctx.admin()).auth))


@case("delete-users-api-keys", 200)
async def _delete_keys_of_users(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    body = {"user_api_keys": [{"user_id": person.name, "api_key_id": await ctx.key_id(person)}]}
    return _one(await ctx.send("DELETE", "/users/auth/keys/_all", admin.auth, body))


@case("get-user-api-keys", 200)
async def _user_keys(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    return [
        await ctx.send("GET", f"/users/{person.name}/auth/keys", admin.auth),
        await ctx.send("GET", f"/users/{person.name}/auth/keys", person.auth),  # your own
    ]


async def _keys_of_unknown_users(ctx: Ctx, method: str, suffix: str = "") -> list[Outcome]:
    admin, person, other = await ctx.admin(), await ctx.person(), await ctx.person()
    return [
        await ctx.send(method, f"/users/ghost/auth/keys{suffix}", admin.auth),
        # Another user, to one without system rights: as if they did not exist.
        await ctx.send(method, f"/users/{other.name}/auth/keys{suffix}", person.auth),
    ]


@case("get-user-api-keys", 404, "api_keys.user_not_found")
async def _user_keys_unknown(ctx: Ctx) -> list[Outcome]:
    return await _keys_of_unknown_users(ctx, "GET")


@case("delete-user-api-keys", 200)
async def _delete_user_keys(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    return _one(await ctx.send("DELETE", f"/users/{person.name}/auth/keys", admin.auth))


@case("delete-user-api-keys", 404, "api_keys.user_not_found")
async def _delete_user_keys_unknown(ctx: Ctx) -> list[Outcome]:
    return await _keys_of_unknown_users(ctx, "DELETE")


@case("get-user-api-key", 200)
async def _user_key(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    path = f"/users/{person.name}/auth/keys/{await ctx.key_id(person)}"
    return _one(await ctx.send("GET", path, admin.auth))


async def _unknown_key_of_a_user(ctx: Ctx, method: str) -> list[Outcome]:
    admin, person, other = await ctx.admin(), await ctx.person(), await ctx.person()
    theirs = await ctx.key_id(other)
    return [
        await ctx.send(method, f"/users/{person.name}/auth/keys/nokey", admin.auth),
        await ctx.send(method, f"/users/{person.name}/auth/keys/{theirs}", admin.auth),
        # The key of a user who is not there: ECE documents only the key's 404 here.
        await ctx.send(method, f"/users/ghost/auth/keys/{theirs}", admin.auth),
    ]


@case("get-user-api-key", 404, "api_keys.key_not_found")
async def _user_key_unknown(ctx: Ctx) -> list[Outcome]:
    return await _unknown_key_of_a_user(ctx, "GET")


@case("delete-user-api-key", 200)
async def _delete_user_key(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    path = f"/users/{person.name}/auth/keys/{await ctx.key_id(person)}"
    return _one(await ctx.send("DELETE", path, admin.auth))


@case("delete-user-api-key", 404, "api_keys.key_not_found")
async def _delete_user_key_unknown(ctx: Ctx) -> list[Outcome]:
    return await _unknown_key_of_a_user(ctx, "DELETE")


# --- users -------------------------------------------------------------------------------------


@case("get-security-realm-configurations", 200)
async def _realms(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    return _one(await ctx.send("GET", "/platform/configuration/security/realms", admin.auth))


@case("get-users", 200)
async def _users(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    return [
        await ctx.send("GET", "/users", admin.auth),
        await ctx.send("GET", "/users?include_disabled=false", admin.auth),
    ]


@case("create-user", 200)
async def _create_user(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    body = {
        "user_name": _name(),
        "full_name": "New",
        "security": {"password": "a-long-passphrase-42", "roles": ["ece_platform_viewer"]},
    }
    return _one(await ctx.send("POST", "/users", admin.auth, body))


async def _creates(ctx: Ctx, *bodies: dict[str, Any]) -> list[Outcome]:
    admin = await ctx.admin()
    return [await ctx.send("POST", "/users", admin.auth, body) for body in bodies]


@case("create-user", 400, "user.user_name.invalid")
async def _create_bad_name(ctx: Ctx) -> list[Outcome]:
    return await _creates(ctx, {"user_name": ""}, {"user_name": "bad name!"}, {"security": {}})


@case("create-user", 400, "user.roles.invalid")
async def _create_bad_roles(ctx: Ctx) -> list[Outcome]:
    return await _creates(
        ctx,
        {"user_name": _name(), "security": {"roles": ["superuser"]}},
        {
            "user_name": _name(),
            "security": {"roles": ["ece_platform_admin", "ece_platform_viewer"]},
        },
        {
            "user_name": _name(),
            "security": {"roles": ["ece_deployment_manager", "ece_deployment_viewer"]},
        },
    )


@case("create-user", 400, "user.restricted_field")
async def _create_restricted(ctx: Ctx) -> list[Outcome]:
    return await _creates(
        ctx,
        {"user_name": _name(), "builtin": True},
        {"user_name": _name(), "metadata": {"created_by": "me"}},
        {"user_name": _name(), "security": {"permissions": ["get-users"]}},
    )


@case("create-user", 409, "user.user_name.conflict")
async def _create_taken(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return await _creates(ctx, {"user_name": person.name}, {"user_name": person.name.upper()})


@case("create-user", 449, ELEVATION)
async def _create_unelevated(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    body = {"user_name": _name(), "security": {"roles": ["ece_platform_viewer"]}}
    return _one(await ctx.send("POST", "/users", admin.auth, body, client=ctx.strict()))


@case("get-user", 200)
async def _get_user(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    return [
        await ctx.send("GET", f"/users/{person.name}", admin.auth),
        await ctx.send("GET", f"/users/{person.name}", person.auth),  # yourself
    ]


@case("get-user", 404, "user.not_found")
async def _get_user_unknown(ctx: Ctx) -> list[Outcome]:
    admin, person, other = await ctx.admin(), await ctx.person(), await ctx.person()
    return [
        await ctx.send("GET", "/users/ghost", admin.auth),
        await ctx.send("GET", f"/users/{other.name}", person.auth),  # not to you
    ]


@case("update-user", 200)
async def _update_user(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    body = {"full_name": "Renamed", "security": {"roles": ["ece_deployment_viewer"]}}
    return _one(await ctx.send("PATCH", f"/users/{person.name}", admin.auth, body))


async def _updates(ctx: Ctx, name: str | None, *bodies: dict[str, Any]) -> list[Outcome]:
    """PATCH /users/{name} by an administrator (None: the administrator themselves)."""
    admin = await ctx.admin()
    path = f"/users/{name or admin.name}"
    return [await ctx.send("PATCH", path, admin.auth, body) for body in bodies]


@case("update-user", 400, "user.roles.invalid")
async def _update_bad_roles(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    return await _updates(ctx, person.name, {"security": {"roles": ["superuser"]}})


@case("update-user", 400, "user.roles.forbidden")
async def _update_own_roles(ctx: Ctx) -> list[Outcome]:
    return await _updates(ctx, None, {"security": {"roles": []}})


@case("update-user", 400, "user.restricted_field")
async def _update_restricted(ctx: Ctx) -> list[Outcome]:
    person = await ctx.person()
    refused = await _updates(
        ctx,
        person.name,
        {"builtin": True},
        {"security": {"security_realm": {"type": "native", "id": "native"}}},
        {"metadata": {"created_at": "2020-01-01T00:00:00+00:00"}},
    )
    # Disabling yourself: ECE's restricted field too.
    return refused + await _updates(ctx, None, {"security": {"enabled": False}})


@case("update-user", 400, "user.cannot_modify_external")
async def _update_external(ctx: Ctx) -> list[Outcome]:
    person = await ctx.external()
    return await _updates(
        ctx,
        person.name,
        {"user_name": _name()},
        {"security": {"enabled": False}},
        {"security": {"password": "a-long-passphrase-42"}},
    )


@case("update-user", 400, "user.cannot_modify")
async def _update_builtin(ctx: Ctx) -> list[Outcome]:
    await ctx.builtin()
    return await _updates(
        ctx, "admin", {"user_name": "boss"}, {"security": {"roles": ["ece_platform_viewer"]}}
    )


@case("update-user", 404, "user.not_found")
async def _update_unknown(ctx: Ctx) -> list[Outcome]:
    person, other = await ctx.person(), await ctx.person()
    refused = await _updates(ctx, "ghost", {"full_name": "x"})
    refused.append(await ctx.send("PATCH", f"/users/{other.name}", person.auth, {}))
    return refused


@case("update-user", 449, ELEVATION)
async def _update_unelevated(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    own = {"security": {"password": "a-long-passphrase-43"}}
    roles = {"security": {"roles": ["ece_platform_viewer"]}}
    return [
        # Your own password needs a fresh elevation of the credential, whatever the policy.
        await ctx.send("PATCH", f"/users/{admin.name}", admin.auth, own),
        # Another user's roles: when the instance requires elevation.
        await ctx.send("PATCH", f"/users/{person.name}", admin.auth, roles, client=ctx.strict()),
    ]


@case("delete-user", 200)
async def _delete_user(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    return _one(await ctx.send("DELETE", f"/users/{person.name}", admin.auth))


@case("delete-user", 400, "user.restricted_deletion")
async def _delete_self(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    return _one(await ctx.send("DELETE", f"/users/{admin.name}", admin.auth))


@case("delete-user", 400, "user.cannot_modify_external")
async def _delete_external(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.external()
    return _one(await ctx.send("DELETE", f"/users/{person.name}", admin.auth))


@case("delete-user", 400, "user.cannot_modify")
async def _delete_builtin(ctx: Ctx) -> list[Outcome]:
    admin = await ctx.admin()
    await ctx.builtin()
    return [
        await ctx.send("DELETE", "/users/admin", admin.auth),
        await ctx.send("DELETE", "/users/readonly", admin.auth),
    ]


@case("delete-user", 404, "user.not_found")
async def _delete_unknown(ctx: Ctx) -> list[Outcome]:
    admin, person, other = await ctx.admin(), await ctx.person(), await ctx.person()
    return [
        await ctx.send("DELETE", "/users/ghost", admin.auth),
        await ctx.send("DELETE", f"/users/{other.name}", person.auth),
    ]


@case("delete-user", 449, ELEVATION)
async def _delete_unelevated(ctx: Ctx) -> list[Outcome]:
    admin, person = await ctx.admin(), await ctx.person()
    return _one(await ctx.send("DELETE", f"/users/{person.name}", admin.auth, client=ctx.strict()))


# --- what cannot be provoked ---------------------------------------------------------------------

_NO_CLUSTER = (
    "Tenantry authenticates against its own directory: there is no authentication cluster to "
    "be unconfigured or to fail"
)
_OWN_KEYS = (
    "Tenantry asks for elevation to grant access or to change a credential, never to create "
    "your own API key or to revoke keys (revoking takes access away); the rule is the domain's "
    "(identity.personal_tokens), the same through every face"
)
NOT_PROVOKED: dict[Key, str] = {
    ("login", 302, None): (
        "login_state.path redirects to ECE's admin console (/sso/token#...); Tenantry serves "
        "no ECE console, ignores login_state and answers 200 with the token in the body"
    ),
    **{
        (op, status, code): _NO_CLUSTER
        for op in (
            "login",
            "logout",
            "refresh-token",
            "enable-elevated-permissions",
            "disable-elevated-permissions",
        )
        for status, code in (
            (501, "authc.no_authentication_cluster"),
            (502, "authc.authentication_cluster_error"),
        )
    },
    ("create-user", 400, "user.roles.forbidden"): (
        "no caller may create users without also being allowed to give them roles: "
        "system.users.create and system.users.roles.update come together (SYSTEM_ADMIN); "
        "anyone else is refused the creation itself (403 root.unauthorized.rbac)"
    ),
    **{
        (op, 449, ELEVATION): _OWN_KEYS
        for op in (
            "create-api-key",
            "delete-api-keys",
            "delete-api-key",
            "delete-users-api-keys",
            "delete-user-api-keys",
            "delete-user-api-key",
        )
    },
}


def test_the_table_is_exactly_what_the_specs_document() -> None:
    documented = documented_keys(OPERATIONS)
    assert len(OPERATIONS) == 26 and len(documented) >= 80  # the specs were read
    assert not set(CASES) & set(NOT_PROVOKED), set(CASES) & set(NOT_PROVOKED)
    missing = documented - set(CASES) - set(NOT_PROVOKED)
    assert not missing, f"documented but neither provoked nor listed: {sorted(missing)}"
    extra = (set(CASES) | set(NOT_PROVOKED)) - documented
    assert not extra, f"provoked or listed but not documented: {sorted(extra)}"
    assert all(reason.strip() for reason in NOT_PROVOKED.values())


def _check(operation: Operation, key: Key, outcome: Outcome, keeps: frozenset[str]) -> None:
    _, status, code = key
    r = outcome.response
    what = f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
    assert r.status_code == status, what
    answer = operation.answers[status]
    body: Any = r.json() if r.content else None
    if answer.schema is not None:
        assert_ece_body(body, answer.schema, answer.specs[0])
    if status < 400:
        return
    assert_face_error("ece", r, status)
    assert body["errors"][0]["code"] == code, what
    assert r.headers["x-cloud-error-codes"] == code, what
    changed = {line.split()[0] for line in outcome.wrote.splitlines()}
    assert changed <= keeps, f"{what} wrote:\n{outcome.wrote}"


@pytest.mark.parametrize("key", sorted(CASES, key=str), ids=lambda k: " ".join(map(str, k)))
async def test_documented_answer(
    client: httpx.AsyncClient, world: World, database: Database, key: Key
) -> None:
    ctx = Ctx(client, world, database, Recorder(database))
    try:
        outcomes = await CASES[key].scenario(ctx)
    finally:
        if ctx.strict_client is not None:
            await ctx.strict_client.aclose()
    assert outcomes
    for outcome in outcomes:
        _check(OPERATIONS[key[0]], key, outcome, CASES[key].keeps)


# --- the other way round: what Tenantry answers ---------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """An answer Tenantry gives that ECE does not document for the operation."""

    status: int
    code: str
    reason: str
    operations: frozenset[str] | None = None  # None: any operation

    def covers(self, operation: str, status: int, code: str | None) -> bool:
        return (
            self.status == status
            and self.code == code
            and (self.operations is None or operation in self.operations)
        )


_OWN_KEY_ROUTES = frozenset({"get-api-keys", "delete-api-keys", "get-api-key", "delete-api-key"})
DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        401,
        "root.unauthorized",
        "Every route but sign-in and the sign-in methods needs a credential; ECE documents its "
        "401 only where a token is the point (_refresh, _elevate), with this code",
    ),
    Difference(
        403,
        "root.unauthorized.rbac",
        "A caller without the platform permission an operation needs: ECE's code for it "
        "(documented on its platform routes, e.g. /phone-home/config), not listed on these",
    ),
    Difference(
        400,
        "root.invalid_json_request",
        "A request ECE's own rules have no code for: a body that is not JSON or not the "
        "schema's, an over-long id, a password the policy refuses (ECE's code for a request it "
        "cannot take, as in cloud-sdk-go's fixtures)",
    ),
    Difference(
        413,
        "root.request_too_large",
        "A body above TENANTRY_MAX_BODY_BYTES: ECE documents no limit; 413 is HTTP's status for it",
    ),
    Difference(
        405,
        "root.method_not_allowed",
        "A method the path does not serve: ECE documents no answer; HTTP's 405",
    ),
    Difference(
        429,
        "root.too_many_requests",
        "Too many password checks (sign-in, HTTP Basic, elevation) from one address or for one "
        "account: Tenantry's lockout and rate limits; ECE documents none",
    ),
    Difference(
        449,
        ELEVATION,
        "Your own password through PATCH /user needs a fresh elevation of the credential (ECE's "
        "wire carries no current password); ECE's status and code for elevation required",
        frozenset({"update-current-user"}),
    ),
    Difference(
        409,
        "user.user_name.conflict",
        "Renaming a user (or yourself) to a name another user has: the code ECE documents for "
        "a taken name on POST /users",
        frozenset({"update-current-user", "update-user"}),
    ),
    Difference(
        400,
        "user.user_name.invalid",
        "Renaming a user (or yourself) to a name ECE's pattern refuses: the code ECE documents "
        "for it on POST /users",
        frozenset({"update-current-user", "update-user"}),
    ),
    Difference(
        404,
        "api_keys.key_not_found",
        "A batch deletion naming a key that is not there deletes none (all or nothing): the "
        "code ECE documents for an unknown key on the single-key routes",
        frozenset({"delete-api-keys", "delete-users-api-keys"}),
    ),
    Difference(
        400,
        "api_keys.invalid_input",
        "A credential that belongs to no user (an organization's API token, astro's) has no "
        "API keys of its own: the code ECE documents for a refused key request",
        _OWN_KEY_ROUTES,
    ),
    Difference(
        500,
        "root.unexpected_error",
        "A server fault (here injected): ECE documents no 500 on these routes",
    ),
    Difference(
        409,
        "root.conflict",
        "Two changes racing for one row (the database's uniqueness check; here injected): "
        "retrying succeeds or meets the documented refusal",
    ),
)


@dataclass
class Seen:
    """(operation, status, code) -> an example request that got it."""

    answers: dict[tuple[str, int, str | None], str] = field(default_factory=dict)

    def add(self, operation: str, response: httpx.Response) -> None:
        code = None
        if response.status_code >= 400:
            assert_face_error("ece", response)  # whatever it is, it is ECE's error body
            code = response.json()["errors"][0]["code"]
        key = (operation, response.status_code, code)
        self.answers.setdefault(key, f"{response.request.method} {response.request.url}")


async def _probe(
    client: httpx.AsyncClient,
    seen: Seen,
    operation: str,
    method: str,
    url: str,
    headers: dict[str, str],
    **kwargs: Any,
) -> None:
    if method in BODY_METHODS and "json" not in kwargs and "content" not in kwargs:
        kwargs["json"] = {}
    seen.add(operation, await client.request(method, url, headers=headers, **kwargs))


async def test_every_answer_is_documented_or_listed(
    client: httpx.AsyncClient,
    world: World,
    database: Database,
    app: Any,
    strict: httpx.AsyncClient,
) -> None:
    tenant = await build_tenant(world, "D")
    ids = tenant.face_ids("ece")
    admin = await with_password(world, _name(), "SYSTEM_ADMIN")
    admin_key = apikey(await world.token(admin))
    viewer = apikey(await world.token(await with_password(world, _name(), "SYSTEM_VIEWER")))
    nobody = apikey(await world.token(await with_password(world, _name())))
    org_token = bearer(tenant.api_token)
    seen = Seen()
    routes = [(op, o.route) for op, o in OPERATIONS.items()]
    # Reads first, deletions last: the admin's requests change the tenant.
    routes.sort(key=lambda item: {"GET": 0, "DELETE": 2}.get(item[1].method, 1))
    for op, route in routes:
        url = route.url(tenant.values_for(route))
        body = route.body(ids)
        sample = {"json": body} if route.has_body else {}
        for headers in ({}, bearer("tnt_nope"), nobody, viewer, org_token):
            await _probe(client, seen, op, route.method, url, headers, **sample)
        if route.params:  # made up, and too long for any id
            for value in ("ghost", "x" * 400):
                made_up = route.url(dict.fromkeys(route.params, value))
                await _probe(client, seen, op, route.method, made_up, admin_key, **sample)
        if route.has_body:
            auth = admin_key | {"content-type": "application/json"}
            for raw in (b"{not json", b"[]", b'{"x": "' + b"x" * 70_000 + b'"}'):
                await _probe(client, seen, op, route.method, url, auth, content=raw)
        await _probe(strict, seen, op, route.method, url, admin_key, **sample)
        await _probe(client, seen, op, route.method, url, admin_key, **sample)
    # A method each path does not serve.
    by_path: dict[str, set[str]] = {}
    for _, route in routes:
        by_path.setdefault(route.path, set()).add(route.method)
    for op, route in routes:
        unserved = [m for m in ("PUT", "PATCH", "POST", "DELETE") if m not in by_path[route.path]]
        await _probe(client, seen, op, unserved[0], route.url(dict.fromkeys(route.params, "x")), {})
    # What a client may well send: a weak password, a rename to a taken or invalid name.
    own, other = await with_password(world, _name()), await with_password(world, _name())
    own_key = apikey(await world.token(own))
    for body in (
        {"user_name": other.username},
        {"user_name": "bad name!"},
        {"security": {"password": "short"}},
    ):
        await _probe(client, seen, "update-current-user", "PATCH", f"{V}/user", own_key, json=body)
        path = f"{V}/users/{own.username}"
        await _probe(client, seen, "update-user", "PATCH", path, admin_key, json=body)
    await _probe(
        client,
        seen,
        "update-current-user",
        "PATCH",
        f"{V}/user",
        own_key,
        json={"security": {"password": "a-long-passphrase-42"}},
    )
    spare = apikey(await world.token(own))
    body = {"keys": ["nokey"]}
    await _probe(
        client, seen, "delete-api-keys", "DELETE", f"{V}/users/auth/keys", spare, json=body
    )
    body = {"user_api_keys": [{"user_id": own.username, "api_key_id": "nokey"}]}
    await _probe(
        client,
        seen,
        "delete-users-api-keys",
        "DELETE",
        f"{V}/users/auth/keys/_all",
        admin_key,
        json=body,
    )
    # Repeated wrong passwords: sign-in, and HTTP Basic on any route.
    for _ in range(12):
        await _probe(
            client,
            seen,
            "login",
            "POST",
            f"{V}/users/auth/_login",
            {},
            json={"username": own.username, "password": "wrong-password-1"},
        )
        await _probe(client, seen, "get-users", "GET", f"{V}/users", basic(other.username, "no"))
    # Server faults inside every route (GET /user past the hot path, which has a query string).
    face = face_app(app, V)
    for fault in (Fault("injected"), IntegrityError("INSERT", {}, Exception("injected"))):
        for op, route in routes:
            dependency = db_session if route.public else ece_principal
            face.dependency_overrides[dependency] = raises(fault)
            try:
                url = route.url(tenant.values_for(route)) + "?fault=1"
                sample = {"json": route.body(ids)} if route.has_body else {}
                await _probe(client, seen, op, route.method, url, admin_key, **sample)
            finally:
                face.dependency_overrides.clear()
    assert len(seen.answers) >= 80, len(seen.answers)  # the probes reached every route
    unexplained = {
        key: example
        for key, example in seen.answers.items()
        if not OPERATIONS[key[0]].documents(key[1], key[2])
        and not any(d.covers(*key) for d in DIFFERENCES)
    }
    assert not unexplained, "answers neither documented nor listed:\n" + "\n".join(
        f"- {k}: {v}" for k, v in sorted(unexplained.items(), key=str)
    )
    unmet = [d for d in DIFFERENCES if not any(d.covers(*key) for key in seen.answers)]
    assert not unmet, f"differences no probe met (remove them?): {unmet}"

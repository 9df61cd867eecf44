"""The faces of the rule matrix: one adapter class per face, and one for the CLI.

`Face` is the contract: every operation a rule needs, with the rule it serves. An adapter
performs each operation over its face's real wire (the `client` against the app, or the CLI
through typer's runner) and answers a `Reply` whose error body is the face's own. An operation
a face does not have is listed in its `gaps` table with the reason (`NotApplicable`), and where
possible a probe that proves the route is really absent. `test_matrix.py` fails when a face
neither implements an operation nor lists it, so a new face (say, SCIM) joins every rule by
adding one class here and one entry to FACES; the failing cases then say what it must satisfy.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, unquote

import pytest
from typer.testing import CliRunner

from tenantry.cli import app as cli_app
from tenantry.clock import utcnow
from tenantry.db.models import Deployment, Organization, Workspace
from tenantry.ids import new_id
from tests.faces.routes import assert_face_error
from tests.factories import bearer
from tests.rules.matrix import (
    NATIVE,
    PASSWORD,
    WRONG_PASSWORD,
    Account,
    Command,
    Credential,
    NotApplicable,
    Refusal,
    Reply,
    Rig,
    Route,
    Tenants,
    unique,
)

MADE_UP = new_id()  # an id of the right shape that names nothing, for probes


@dataclass(frozen=True)
class RoleTarget:
    """Whom a system-role change is for: an existing user (with the SYSTEM roles they hold
    before) or, for a face that grants while creating, a name no user has yet."""

    username: str
    user_id: str | None
    before: tuple[str, ...] = ()


class Face:
    """One face as the rules see it. Each operation below names the rule it serves; an
    adapter overrides it or lists it in `gaps`. `variant` picks one of several ways a face
    has to do one operation (`variants`), each a case of its own in the matrix."""

    name: ClassVar[str]
    wire: ClassVar[str]  # the face whose error body tests/faces/routes.py knows
    variants: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    gaps: ClassVar[Mapping[str, NotApplicable]] = {}
    # How the face refuses an own password change without proof (rule 1), and a second
    # user with a taken name (rule 2).
    unproven_password_refusal: ClassVar[Refusal] = Refusal.of(400)
    conflict: ClassVar[Refusal] = Refusal.of(409)
    # How the face refuses what needs elevation without it (rule 4).
    elevation_required: ClassVar[Refusal] = Refusal.of(403)

    OPERATIONS: ClassVar[tuple[str, ...]] = (
        "sign_in",
        "unproven_own_password_changes",
        "proven_own_password_change",
        "set_password",
        "create_user",
        "invite",
        "set_own_email",
        "strong_grant",
        "hot_get",
        "write",
        "give_system_admin",
        "update_full_name",
        "read_foreign",
        "who_can",
        "mint_token",
        "list_accounts",
    )

    def __init__(self, rig: Rig, variant: str = "") -> None:
        self.rig = rig
        self.variant = variant
        self._actor: Account | None = None

    @classmethod
    def variants_of(cls, operation: str) -> tuple[str, ...]:
        return cls.variants.get(operation, ("",))

    # --- the wire ------------------------------------------------------------------------------

    def auth(self, credential: Credential) -> dict[str, str]:
        return bearer(credential.secret)

    def error_fields(self, body: Any) -> list[str]:
        return []

    def error_codes(self, reply: Reply) -> list[str]:
        return []

    def assert_error(self, reply: Reply, refusal: Refusal, what: str = "") -> None:
        """The reply is a refusal as `refusal` says, in the face's own error body."""
        label = f"{self.name} {what}".strip()
        assert reply.status in refusal.statuses, f"{label}: wanted {refusal.statuses}, {reply}"
        assert reply.response is not None
        assert_face_error(self.wire, reply.response)
        if refusal.field is not None:
            fields = self.error_fields(reply.body)
            assert refusal.field in fields, f"{label}: no field {refusal.field}: {reply}"
        if refusal.code is not None:
            codes = self.error_codes(reply)
            assert refusal.code in codes, f"{label}: no code {refusal.code}: {reply}"

    async def call(
        self, method: str, path: str, credential: Credential | None = None, **kwargs: Any
    ) -> Reply:
        headers = dict(kwargs.pop("headers", {}))
        if credential is not None:
            headers |= self.auth(credential)
        return Reply.of(await self.rig.client.request(method, path, headers=headers, **kwargs))

    async def confirm_gap(self, gap: NotApplicable) -> None:
        """A listed gap is real: it says why, and its probe finds no such route."""
        assert gap.reason.strip()
        if isinstance(gap.probe, Route):
            r = await self.rig.client.request(gap.probe.method, gap.probe.path, json={})
            assert r.status_code in (404, 405), f"{self.name} now has {gap.probe}: {r.text}"
            assert_face_error(self.wire, r)

    # --- who calls -------------------------------------------------------------------------

    async def actor(self) -> Account:
        """Someone allowed every operation of this face here: a SYSTEM_ADMIN by default."""
        if self._actor is None:
            self._actor = await self.rig.account(system_role="SYSTEM_ADMIN")
        return self._actor

    async def session(self, account: Account) -> Credential:
        """A sign-in session of `account` (through the face's own sign-in where it has one;
        sessions are Tenantry's, so the others use the native one)."""
        return await self.rig.native_session(account)

    async def personal_token(self, account: Account) -> Credential:
        """A personal token of `account`, minted through the face where it can."""
        secret = await self.rig.world.token(await self.rig.user(account.id))
        return Credential(secret, "personal")

    async def elevate(self, credential: Credential, password: str) -> Credential:
        """Elevate the session; the credential to use afterwards."""
        return await self.rig.native_elevate(credential, password)

    async def admin_credential(self, account: Account) -> Credential:
        """An administrator's elevated session: what rules about other things use, so that
        elevation is never the reason they fail."""
        return await self.elevate(await self.session(account), account.password)

    # --- the operations ----------------------------------------------------------------------

    def _missing(self, operation: str) -> NotImplementedError:
        return NotImplementedError(f"{self.name} neither implements {operation} nor lists it")

    async def sign_in(self, username: str, password: str) -> Reply:
        """Rules 6, 10: a password sign-in (one case per way the face has)."""
        raise self._missing("sign_in")

    async def unproven_own_password_changes(self, account: Account, new: str) -> dict[str, Reply]:
        """Rule 1: every way to change one's own password without proving the current one,
        labelled; each must be refused as `unproven_password_refusal`."""
        raise self._missing("unproven_own_password_changes")

    async def proven_own_password_change(self, account: Account, new: str) -> Reply:
        """Rule 1: the change with the proof the face demands."""
        raise self._missing("proven_own_password_change")

    async def set_password(self, admin: Account, target: Account, new: str) -> Reply:
        """Rule 1: an administrator sets another user's password."""
        raise self._missing("set_password")

    async def create_user(self, admin: Account, username: str, email: str | None = None) -> Reply:
        """Rule 2: create a user."""
        raise self._missing("create_user")

    async def invite(self, owner: Account, address: str) -> Reply:
        """Rule 2: `actor()` invites an address to their organization."""
        raise self._missing("invite")

    async def set_own_email(self, account: Account, email: str) -> Reply:
        """Rule 3: a user sets their own e-mail address."""
        raise self._missing("set_own_email")

    def answered_email(self, reply: Reply) -> str | None:
        """The e-mail address a successful set_own_email answer shows."""
        email: str | None = reply.body.get("email")
        return email

    async def strong_grant_target(self) -> Any:
        """Rule 4: whatever one strong grant needs, made beforehand (so that a refused
        grant can be seen to write nothing)."""
        raise self._missing("strong_grant")

    async def strong_grant(self, credential: Credential, target: Any) -> Reply:
        """Rule 4: one strong grant by `actor()`, with `credential`."""
        raise self._missing("strong_grant")

    async def hot_get(self, headers: list[tuple[str, str]]) -> Reply:
        """Rule 5: the face's "who am I" GET with exactly these headers."""
        raise self._missing("hot_get")

    async def write(self, headers: list[tuple[str, str]]) -> Reply:
        """Rule 5: a harmless write `actor()` may do, with exactly these headers."""
        raise self._missing("write")

    async def system_role_target(self) -> RoleTarget:
        """Rule 7: the user give_system_admin is for."""
        raise self._missing("give_system_admin")

    async def give_system_admin(self, admin: Account, target: RoleTarget) -> Reply:
        """Rule 7: make `target` SYSTEM_ADMIN (their one SYSTEM role)."""
        raise self._missing("give_system_admin")

    async def update_full_name(self, admin: Account, target: Account, full_name: str) -> Reply:
        """Rule 7: change `target`'s full name."""
        raise self._missing("update_full_name")

    async def read_foreign(self, credential: Credential, tenants: Tenants, made_up: bool) -> Reply:
        """Rule 8: A's owner asks about B's objects (or, `made_up`, ids that name nothing)."""
        raise self._missing("read_foreign")

    async def who_can(self, credential: Credential, org_id: str) -> tuple[Reply, list[str]]:
        """Rule 8: who may read the organization; the answer and the subject ids it lists."""
        raise self._missing("who_can")

    async def mint_token(self, account: Account, credential: Credential, days: int) -> Reply:
        """Rule 9: a token of `account`, expiring in `days` days."""
        raise self._missing("mint_token")

    async def list_accounts(self, credential: Credential) -> tuple[Reply, list[str]]:
        """Rule 13: the instance's user list as the caller asks for it; the answer and the
        usernames it lists (none when refused)."""
        raise self._missing("list_accounts")


def _in_days(days: int) -> str:
    """An instant `days` from now as the faces write it (at most 9999-12-31)."""
    now = utcnow()
    days = min(days, (date(9999, 12, 31) - now.date()).days)
    return (now + timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- native ------------------------------------------------------------------------------------


class Native(Face):
    """Tenantry's own face (/tenantry/v1); errors are RFC 9457 problem details."""

    name = "native"
    wire = "native"
    _FOREIGN = (
        *(
            f"{question}-{kind}"
            for question in ("check", "who-can")
            for kind in ("organization", "workspace", "deployment")
        ),
        "domains-list",
        "domains-verify",
    )
    variants = {"strong_grant": ("SYSTEM_ADMIN", "SYSTEM_VIEWER"), "read_foreign": _FOREIGN}
    gaps = {
        "invite": NotApplicable(
            "native accepts invites (POST /invites/accept) but creates none; astro does",
            Route("POST", f"{NATIVE}/organizations/{MADE_UP}/invites"),
        ),
    }
    unproven_password_refusal = Refusal.of(400, field="currentPassword")

    def error_fields(self, body: Any) -> list[str]:
        return [e["field"] for e in body.get("errors", [])]

    async def sign_in(self, username: str, password: str) -> Reply:
        return Reply.of(await self.rig.native_login(username, password))

    async def personal_token(self, account: Account) -> Credential:
        session = await self.session(account)
        r = await self.call("POST", f"{NATIVE}/me/tokens", session, json={"name": unique()})
        assert r.status == 201, r
        return Credential(r.body["token"], "personal")

    async def _password(self, credential: Credential, user_id: str, body: Any) -> Reply:
        return await self.call("PUT", f"{NATIVE}/users/{user_id}/password", credential, json=body)

    async def unproven_own_password_changes(self, account: Account, new: str) -> dict[str, Reply]:
        session = await self.session(account)
        wrong = {"password": new, "currentPassword": WRONG_PASSWORD}
        return {
            "without currentPassword": await self._password(session, account.id, {"password": new}),
            "with a wrong currentPassword": await self._password(session, account.id, wrong),
        }

    async def proven_own_password_change(self, account: Account, new: str) -> Reply:
        session = await self.session(account)
        body = {"password": new, "currentPassword": account.password}
        return await self._password(session, account.id, body)

    async def set_password(self, admin: Account, target: Account, new: str) -> Reply:
        credential = await self.admin_credential(admin)
        return await self._password(credential, target.id, {"password": new})

    async def create_user(self, admin: Account, username: str, email: str | None = None) -> Reply:
        body = {"username": username} | ({"email": email} if email is not None else {})
        return await self.call(
            "POST", f"{NATIVE}/users", await self.admin_credential(admin), json=body
        )

    async def set_own_email(self, account: Account, email: str) -> Reply:
        session = await self.session(account)
        return await self.call(
            "PATCH", f"{NATIVE}/users/{account.id}", session, json={"email": email}
        )

    async def strong_grant_target(self) -> Any:
        return (await self.rig.world.user(f"{unique()}@example.com")).id

    async def strong_grant(self, credential: Credential, target: Any) -> Reply:
        path = f"{NATIVE}/users/{target}/system-role"
        return await self.call("PUT", path, credential, json={"role": self.variant})

    async def hot_get(self, headers: list[tuple[str, str]]) -> Reply:
        return Reply.of(await self.rig.client.get(f"{NATIVE}/me/tokens", headers=headers))

    async def write(self, headers: list[tuple[str, str]]) -> Reply:
        body = {"name": unique("token")}
        return Reply.of(
            await self.rig.client.post(f"{NATIVE}/me/tokens", json=body, headers=headers)
        )

    async def system_role_target(self) -> RoleTarget:
        target = await self.rig.account(system_role="SYSTEM_VIEWER")
        return RoleTarget(target.username, target.id, ("SYSTEM_VIEWER",))

    async def give_system_admin(self, admin: Account, target: RoleTarget) -> Reply:
        path = f"{NATIVE}/users/{target.user_id}/system-role"
        credential = await self.admin_credential(admin)
        return await self.call("PUT", path, credential, json={"role": "SYSTEM_ADMIN"})

    async def update_full_name(self, admin: Account, target: Account, full_name: str) -> Reply:
        credential = await self.admin_credential(admin)
        body = {"fullName": full_name}
        return await self.call("PATCH", f"{NATIVE}/users/{target.id}", credential, json=body)

    async def read_foreign(self, credential: Credential, tenants: Tenants, made_up: bool) -> Reply:
        """`check` (whose grantedBy is the explanation: native has no separate explain) and
        `who-can`, at B's organization, workspace or deployment; B's verified domains (listed,
        or one verified: the domain need not exist for the answer to be "not found")."""
        if self.variant.startswith("domains-"):
            org_id = tenants.ids(made_up)["organization"]
            if not made_up:  # B really has the domain A asks about
                await self._claim(org_id, "example.com")
            domains = f"{NATIVE}/organizations/{org_id}/domains"
            if self.variant == "domains-list":
                return await self.call("GET", domains, credential)
            return await self.call("POST", f"{domains}/example.com/verify", credential)
        question, kind = self.variant.rsplit("-", 1)
        scope = {"type": kind.upper(), "id": tenants.ids(made_up)[kind]}
        permission = f"{kind}.get"
        if question == "check":
            subject = {"type": "user", "id": tenants.owner_a.id}
            body = {"subject": subject, "permission": permission, "scope": scope}
            return await self.call("POST", f"{NATIVE}/check", credential, json=body)
        body = {"permission": permission, "scope": scope}
        return await self.call("POST", f"{NATIVE}/who-can", credential, json=body)

    async def _claim(self, org_id: str, domain: str) -> None:
        from tenantry.directory import domains
        from tenantry.identity.principals import system_principal

        async with self.rig.world.database.transaction() as db:
            await domains.claim_domain(db, system_principal(), org_id, domain)

    async def who_can(self, credential: Credential, org_id: str) -> tuple[Reply, list[str]]:
        scope = {"type": "ORGANIZATION", "id": org_id}
        body = {"permission": "organization.get", "scope": scope}
        r = await self.call("POST", f"{NATIVE}/who-can", credential, json=body)
        holders = [h["subjectId"] for h in r.body.get("holders", [])] if r.ok else []
        return r, holders

    async def mint_token(self, account: Account, credential: Credential, days: int) -> Reply:
        body = {"name": unique("token"), "expiresInDays": days}
        return await self.call("POST", f"{NATIVE}/me/tokens", credential, json=body)

    async def list_accounts(self, credential: Credential) -> tuple[Reply, list[str]]:
        r = await self.call("GET", f"{NATIVE}/users", credential, params={"limit": 100})
        return r, [u["username"] for u in r.body["users"]] if r.ok else []


# --- ece ---------------------------------------------------------------------------------------

ECE = "/api/v1"


def _basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


class Ece(Face):
    """Elastic Cloud Enterprise (/api/v1): users by name, `security.roles` as platform roles,
    API keys as personal tokens, `_elevate` answering with a new session token."""

    name = "ece"
    wire = "ece"
    variants = {
        "sign_in": ("login", "basic"),
        "strong_grant": ("update", "create"),
        "give_system_admin": ("update", "create"),
        "update_full_name": ("admin", "self"),
    }
    gaps = {
        "invite": NotApplicable("ECE has no organizations to invite to"),
        "read_foreign": NotApplicable(
            "ECE has no organizations, workspaces or deployments: its users are the platform's"
        ),
        "who_can": NotApplicable("ECE has no who-can question"),
    }
    unproven_password_refusal = Refusal.of(
        449, code="root.unauthorized.rbac.elevated_permissions_required"
    )
    elevation_required = unproven_password_refusal  # ECE's 449, as its 2023 spec documents
    conflict = Refusal.of(409, code="user.user_name.conflict")

    def auth(self, credential: Credential) -> dict[str, str]:
        if credential.kind == "personal":
            return {"Authorization": f"ApiKey {credential.secret}"}
        return bearer(credential.secret)

    def error_fields(self, body: Any) -> list[str]:
        return [f for e in body["errors"] for f in e.get("fields", [])]

    def error_codes(self, reply: Reply) -> list[str]:
        return [e["code"] for e in reply.body["errors"]]

    async def sign_in(self, username: str, password: str) -> Reply:
        if self.variant == "basic":
            return await self.call("GET", f"{ECE}/user", headers=_basic(username, password))
        body = {"username": username, "password": password}
        return await self.call("POST", f"{ECE}/users/auth/_login", json=body)

    async def session(self, account: Account) -> Credential:
        body = {"username": account.username, "password": account.password}
        r = await self.call("POST", f"{ECE}/users/auth/_login", json=body)
        assert r.status == 200, r
        return Credential(r.body["token"], "session")

    async def personal_token(self, account: Account) -> Credential:
        session = await self.session(account)
        body = {"description": unique("key")}
        r = await self.call("POST", f"{ECE}/users/auth/keys", session, json=body)
        assert r.status == 201, r
        return Credential(r.body["key"], "personal")

    async def elevate(self, credential: Credential, password: str) -> Credential:
        r = await self.call(
            "POST", f"{ECE}/users/auth/_elevate", credential, json={"token": password}
        )
        assert r.status == 200, r
        return Credential(r.body["token"], "session")

    async def _patch_self(self, credential: Credential, body: Any) -> Reply:
        return await self.call("PATCH", f"{ECE}/user", credential, json=body)

    async def unproven_own_password_changes(self, account: Account, new: str) -> dict[str, Reply]:
        body = {"security": {"password": new}}
        key = await self.personal_token(account)
        session = await self.session(account)
        return {
            "with an API key": await self._patch_self(key, body),
            "with a session not elevated": await self._patch_self(session, body),
        }

    async def proven_own_password_change(self, account: Account, new: str) -> Reply:
        elevated = await self.elevate(await self.session(account), account.password)
        return await self._patch_self(elevated, {"security": {"password": new}})

    async def set_password(self, admin: Account, target: Account, new: str) -> Reply:
        credential = await self.admin_credential(admin)
        body = {"security": {"password": new}}
        return await self.call("PATCH", f"{ECE}/users/{target.username}", credential, json=body)

    async def create_user(self, admin: Account, username: str, email: str | None = None) -> Reply:
        body = {"user_name": username} | ({"email": email} if email is not None else {})
        return await self.call(
            "POST", f"{ECE}/users", await self.admin_credential(admin), json=body
        )

    async def set_own_email(self, account: Account, email: str) -> Reply:
        elevated = await self.elevate(await self.session(account), account.password)
        return await self._patch_self(elevated, {"email": email})

    async def _platform_admin(self, credential: Credential, username: str, create: bool) -> Reply:
        security = {"roles": ["ece_platform_admin"]}
        if create:
            body = {"user_name": username, "security": security}
            return await self.call("POST", f"{ECE}/users", credential, json=body)
        body = {"security": security}
        return await self.call("PATCH", f"{ECE}/users/{username}", credential, json=body)

    async def strong_grant_target(self) -> Any:
        if self.variant == "create":
            return unique("ece")
        return (await self.rig.world.user(unique("ece"))).username

    async def strong_grant(self, credential: Credential, target: Any) -> Reply:
        return await self._platform_admin(credential, target, self.variant == "create")

    async def hot_get(self, headers: list[tuple[str, str]]) -> Reply:
        return Reply.of(await self.rig.client.get(f"{ECE}/user", headers=headers))

    async def write(self, headers: list[tuple[str, str]]) -> Reply:
        body = {"description": unique("key")}
        r = await self.rig.client.post(f"{ECE}/users/auth/keys", json=body, headers=headers)
        return Reply.of(r)

    async def system_role_target(self) -> RoleTarget:
        if self.variant == "create":
            return RoleTarget(unique("ece"), None)
        target = await self.rig.account(unique("ece"), system_role="SYSTEM_VIEWER")
        return RoleTarget(target.username, target.id, ("SYSTEM_VIEWER",))

    async def give_system_admin(self, admin: Account, target: RoleTarget) -> Reply:
        credential = await self.admin_credential(admin)
        return await self._platform_admin(credential, target.username, self.variant == "create")

    async def update_full_name(self, admin: Account, target: Account, full_name: str) -> Reply:
        body = {"full_name": full_name}
        if self.variant == "self":
            return await self._patch_self(await self.session(target), body)
        credential = await self.admin_credential(admin)
        return await self.call("PATCH", f"{ECE}/users/{target.username}", credential, json=body)

    async def mint_token(self, account: Account, credential: Credential, days: int) -> Reply:
        body = {"description": unique("key"), "expiration": f"{days}d"}
        return await self.call("POST", f"{ECE}/users/auth/keys", credential, json=body)

    async def list_accounts(self, credential: Credential) -> tuple[Reply, list[str]]:
        r = await self.call("GET", f"{ECE}/users", credential)
        return r, [u["user_name"] for u in r.body["users"]] if r.ok else []


# --- unleash -----------------------------------------------------------------------------------

UNLEASH = "/api/admin"
COOKIE = "unleash-session"


class Unleash(Face):
    """Unleash (/api/admin, /auth/simple): users by number (`seq`), rootRole 1 Admin /
    2 Editor / 3 Viewer, PATs as personal tokens; sessions travel in Unleash's cookie."""

    name = "unleash"
    wire = "unleash"
    variants = {
        "sign_in": ("simple-login",),
        "strong_grant": ("create", "update"),
        "give_system_admin": ("create", "update"),
        # user-admin is for administrators; the search is any signed-in caller's
        "read_foreign": ("search-username", "search-name"),
    }
    gaps = {
        "invite": NotApplicable("Unleash has no organizations to invite to"),
        "set_own_email": NotApplicable(
            "Unleash users cannot edit their own profile", Route("PUT", f"{UNLEASH}/user")
        ),
        "who_can": NotApplicable("Unleash has no who-can question"),
    }
    conflict = Refusal.of(400)  # Unleash 8.2's "User already exists" (capture 21)
    # No oldPassword: Unleash's bare 400; a wrong one: its 401 PasswordMismatch.
    unproven_password_refusal = Refusal.of(400, 401)

    def auth(self, credential: Credential) -> dict[str, str]:
        if credential.kind in ("personal", "system"):  # a PAT, the admin API token: raw
            return {"Authorization": credential.secret}
        return {"Cookie": f"{COOKIE}={quote('s:' + credential.secret, safe='')}"}

    async def sign_in(self, username: str, password: str) -> Reply:
        body = {"username": username, "password": password}
        reply = await self.call("POST", "/auth/simple/login", json=body)
        self.rig.client.cookies.clear()  # the cookie goes only where a test sends it
        return reply

    async def confirm_gap(self, gap: NotApplicable) -> None:
        """Unleash authenticates all of /api before it finds no route (without a credential:
        401 AuthenticationRequired), so the probe comes signed in: then Unleash's 404."""
        assert gap.reason.strip()
        if isinstance(gap.probe, Route):
            credential = await self.session(await self.actor())
            r = await self.call(gap.probe.method, gap.probe.path, credential, json={})
            assert r.status == 404, f"{self.name} now has {gap.probe}: {r}"
            assert r.response is not None
            assert_face_error(self.wire, r.response)
            assert r.body["name"] == "NotFoundError", r

    async def session(self, account: Account) -> Credential:
        reply = await self.sign_in(account.username, account.password)
        assert reply.status == 200 and reply.response is not None, reply
        cookie = unquote(reply.response.cookies[COOKIE])
        return Credential(cookie.removeprefix("s:"), "session")

    async def personal_token(self, account: Account) -> Credential:
        r = await self.mint_token(account, await self.session(account), 30)
        assert r.status == 201, r
        return Credential(r.body["secret"], "personal")

    async def elevate(self, credential: Credential, password: str) -> Credential:
        """Unleash has no elevation of its own: the session is Tenantry's, elevated natively."""
        return await self.rig.native_elevate(credential, password)

    async def _seq(self, user_id: str) -> int:
        return (await self.rig.user(user_id)).seq

    async def _change_own(self, account: Account, body: Any) -> Reply:
        session = await self.session(account)
        return await self.call("POST", f"{UNLEASH}/user/change-password", session, json=body)

    async def unproven_own_password_changes(self, account: Account, new: str) -> dict[str, Reply]:
        body = {"password": new, "confirmPassword": new}
        wrong = body | {"oldPassword": WRONG_PASSWORD}
        return {
            "without oldPassword": await self._change_own(account, body),
            "with a wrong oldPassword": await self._change_own(account, wrong),
        }

    async def proven_own_password_change(self, account: Account, new: str) -> Reply:
        body = {"password": new, "confirmPassword": new, "oldPassword": account.password}
        return await self._change_own(account, body)

    async def set_password(self, admin: Account, target: Account, new: str) -> Reply:
        credential = await self.admin_credential(admin)
        path = f"{UNLEASH}/user-admin/{await self._seq(target.id)}/change-password"
        return await self.call("POST", path, credential, json={"password": new})

    async def create_user(self, admin: Account, username: str, email: str | None = None) -> Reply:
        body: dict[str, Any] = {"username": username, "rootRole": 3}
        if email is not None:
            body["email"] = email
        credential = await self.admin_credential(admin)
        return await self.call("POST", f"{UNLEASH}/user-admin", credential, json=body)

    async def _admin_role(self, credential: Credential, target: Any, create: bool) -> Reply:
        if create:
            body = {"username": target, "rootRole": 1}
            return await self.call("POST", f"{UNLEASH}/user-admin", credential, json=body)
        path = f"{UNLEASH}/user-admin/{target}"
        return await self.call("PUT", path, credential, json={"rootRole": 1})

    async def strong_grant_target(self) -> Any:
        if self.variant == "create":
            return unique("unleash")
        return await self._seq((await self.rig.world.user(unique("unleash"))).id)

    async def strong_grant(self, credential: Credential, target: Any) -> Reply:
        return await self._admin_role(credential, target, self.variant == "create")

    async def hot_get(self, headers: list[tuple[str, str]]) -> Reply:
        return Reply.of(await self.rig.client.get(f"{UNLEASH}/user", headers=headers))

    async def write(self, headers: list[tuple[str, str]]) -> Reply:
        body = {"description": unique("pat"), "expiresAt": _in_days(30)}
        r = await self.rig.client.post(f"{UNLEASH}/user/tokens", json=body, headers=headers)
        return Reply.of(r)

    async def system_role_target(self) -> RoleTarget:
        if self.variant == "create":
            return RoleTarget(unique("unleash"), None)
        target = await self.rig.account(system_role="SYSTEM_VIEWER")
        return RoleTarget(target.username, target.id, ("SYSTEM_VIEWER",))

    async def give_system_admin(self, admin: Account, target: RoleTarget) -> Reply:
        credential = await self.admin_credential(admin)
        if target.user_id is None:
            return await self._admin_role(credential, target.username, create=True)
        return await self._admin_role(credential, await self._seq(target.user_id), create=False)

    async def update_full_name(self, admin: Account, target: Account, full_name: str) -> Reply:
        credential = await self.admin_credential(admin)
        path = f"{UNLEASH}/user-admin/{await self._seq(target.id)}"
        return await self.call("PUT", path, credential, json={"name": full_name})

    async def mint_token(self, account: Account, credential: Credential, days: int) -> Reply:
        body = {"description": unique("pat"), "expiresAt": _in_days(days)}
        return await self.call("POST", f"{UNLEASH}/user/tokens", credential, json=body)

    async def read_foreign(self, credential: Credential, tenants: Tenants, made_up: bool) -> Reply:
        """A's owner searches for B's member by the start of their username or by their
        full name: found no more than a name nobody has."""
        if made_up:
            q = unique("nobody")
        else:
            member = await self.rig.user(tenants.real["user"])
            q = member.username if self.variant == "search-username" else member.full_name
        return await self.call("GET", f"{UNLEASH}/user-admin/search?q={quote(q)}", credential)

    async def list_accounts(self, credential: Credential) -> tuple[Reply, list[str]]:
        r = await self.call("GET", f"{UNLEASH}/user-admin", credential)
        return r, [u.get("username") or u["email"] for u in r.body["users"]] if r.ok else []


# --- astro -------------------------------------------------------------------------------------

ASTRO = "/v1"
_NO_PROFILE = Route("PATCH", f"{ASTRO}/users/self")


class Astro(Face):
    """Astronomer (/v1): organizations, workspaces, deployments, roles, invites, teams and
    organization API tokens. It has no sign-in, no personal tokens and no elevation: its
    callers bring a Tenantry session or personal token (made through the native face)."""

    name = "astro"
    wire = "astro"
    variants = {
        "strong_grant": (
            "member-organization-owner",
            "member-workspace-owner",
            "member-workspace-operator",
            "member-deployment-admin",
            "invite-organization-owner",
            "api-token-organization-owner",
            "team-organization-owner",
        ),
        "read_foreign": (
            "organization",
            "organization-users",
            "organization-user",
            "user-via-own-organization",
            "organization-workspaces",
            "workspace",
            "workspace-via-own-organization",
            "deployment",
            "deployment-via-own-organization",
        ),
        "mint_token": ("api-token",),
    }
    gaps = {
        "list_accounts": NotApplicable(
            "astro lists an organization's members only (rule 8), never the instance's users"
        ),
        "sign_in": NotApplicable("astro has no sign-in: its clients bring a token"),
        "unproven_own_password_changes": NotApplicable("astro has no password route", _NO_PROFILE),
        "proven_own_password_change": NotApplicable("astro has no password route", _NO_PROFILE),
        "set_password": NotApplicable(
            "astro has no password route",
            Route("PUT", f"{ASTRO}/organizations/{MADE_UP}/users/{MADE_UP}/password"),
        ),
        "create_user": NotApplicable(
            "astro makes users only by invites (rule 2's invite cases)",
            Route("POST", f"{ASTRO}/organizations/{MADE_UP}/users"),
        ),
        "set_own_email": NotApplicable("astro has no profile update", _NO_PROFILE),
        "give_system_admin": NotApplicable("astro has no SYSTEM roles"),
        "update_full_name": NotApplicable("astro has no profile update", _NO_PROFILE),
        "who_can": NotApplicable("astro has no who-can question"),
    }

    org: Organization
    ws: Workspace
    dep: Deployment

    async def actor(self) -> Account:
        """The owner of an organization with a workspace and a deployment."""
        if self._actor is None:
            org = await self.rig.world.org(unique("Org"))
            self.ws = await self.rig.world.workspace(org, "rules-ws")
            self.dep = await self.rig.world.deployment(self.ws, "rules-dep")
            self.org = org
            owner = await self.rig.account()
            await self.rig.world.roles(org, await self.rig.user(owner.id), "ORGANIZATION_OWNER")
            self._actor = owner
        return self._actor

    async def invite(self, owner: Account, address: str) -> Reply:
        body = {"inviteeEmail": address, "role": "ORGANIZATION_MEMBER"}
        path = f"{ASTRO}/organizations/{self.org.id}/invites"
        return await self.call("POST", path, await self.session(owner), json=body)

    async def strong_grant_target(self) -> Any:
        if self.variant.startswith("invite-"):
            return f"{unique()}@example.com"
        if self.variant.startswith("api-token-"):
            return unique("token")
        if self.variant.startswith("team-"):
            return (await self.rig.world.team(self.org)).id
        # A member already: astro answers a non-member like a made-up user (no oracle).
        member = await self.rig.world.user(f"{unique()}@example.com")
        await self.rig.world.roles(self.org, member)
        return member.id

    def _member_roles(self) -> dict[str, Any]:
        """The roles a member-* variant gives: each one lets its holder grant access."""
        member = "ORGANIZATION_MEMBER"
        roles: dict[str, dict[str, Any]] = {
            "member-organization-owner": {"organizationRole": "ORGANIZATION_OWNER"},
            "member-workspace-owner": {
                "organizationRole": member,
                "workspaceRoles": [{"workspaceId": self.ws.id, "role": "WORKSPACE_OWNER"}],
            },
            "member-workspace-operator": {
                "organizationRole": member,
                "workspaceRoles": [{"workspaceId": self.ws.id, "role": "WORKSPACE_OPERATOR"}],
            },
            "member-deployment-admin": {
                "organizationRole": member,
                "deploymentRoles": [{"deploymentId": self.dep.id, "role": "DEPLOYMENT_ADMIN"}],
            },
        }
        return roles[self.variant]

    async def strong_grant(self, credential: Credential, target: Any) -> Reply:
        org = f"{ASTRO}/organizations/{self.org.id}"
        owner = "ORGANIZATION_OWNER"
        if self.variant.startswith("member-"):
            path = f"{org}/users/{target}/roles"
            return await self.call("POST", path, credential, json=self._member_roles())
        if self.variant.startswith("invite-"):
            body = {"inviteeEmail": target, "role": owner}
            return await self.call("POST", f"{org}/invites", credential, json=body)
        if self.variant.startswith("api-token-"):
            body = {"name": target, "type": "ORGANIZATION", "role": owner}
            return await self.call("POST", f"{org}/tokens", credential, json=body)
        path = f"{org}/teams/{target}/roles"
        return await self.call("POST", path, credential, json={"organizationRole": owner})

    async def hot_get(self, headers: list[tuple[str, str]]) -> Reply:
        return Reply.of(await self.rig.client.get(f"{ASTRO}/users/self", headers=headers))

    async def write(self, headers: list[tuple[str, str]]) -> Reply:
        path = f"{ASTRO}/organizations/{self.org.id}/teams"
        r = await self.rig.client.post(path, json={"name": unique("team")}, headers=headers)
        return Reply.of(r)

    async def read_foreign(self, credential: Credential, tenants: Tenants, made_up: bool) -> Reply:
        ids = tenants.ids(made_up)
        org_b, own = f"{ASTRO}/organizations/{ids['organization']}", tenants.org_a
        paths = {
            "organization": org_b,
            "organization-users": f"{org_b}/users",
            "organization-user": f"{org_b}/users/{ids['user']}",
            "user-via-own-organization": f"{ASTRO}/organizations/{own}/users/{ids['user']}",
            "organization-workspaces": f"{org_b}/workspaces",
            "workspace": f"{org_b}/workspaces/{ids['workspace']}",
            "workspace-via-own-organization": (
                f"{ASTRO}/organizations/{own}/workspaces/{ids['workspace']}"
            ),
            "deployment": f"{org_b}/deployments/{ids['deployment']}",
            "deployment-via-own-organization": (
                f"{ASTRO}/organizations/{own}/deployments/{ids['deployment']}"
            ),
        }
        return await self.call("GET", paths[self.variant], credential)

    async def mint_token(self, account: Account, credential: Credential, days: int) -> Reply:
        """Astro's tokens are organization API tokens, not personal ones: the same cap."""
        await self.actor()
        body = {
            "name": unique("token"),
            "type": "ORGANIZATION",
            "role": "ORGANIZATION_MEMBER",
            "tokenExpiryPeriodInDays": days,
        }
        path = f"{ASTRO}/organizations/{self.org.id}/tokens"
        return await self.call("POST", path, credential, json=body)


# --- the CLI -----------------------------------------------------------------------------------

_runner = CliRunner()
_OPERATOR = "the CLI acts as the operator on the host (the system principal) and signs no one in"


class Cli(Face):
    """The `tenantry` command, run through typer's runner (in a thread: each command runs its
    own event loop). `status` is the exit code: 1 for a refused command, 2 for bad usage."""

    name = "cli"
    wire = ""
    variants = {"give_system_admin": ("bootstrap",)}
    gaps = {
        "list_accounts": NotApplicable(f"{_OPERATOR}: it lists every user to the operator"),
        "sign_in": NotApplicable(_OPERATOR),
        "unproven_own_password_changes": NotApplicable(
            f"{_OPERATOR}; `user set-password` is rule 1's administrator case"
        ),
        "proven_own_password_change": NotApplicable(
            f"{_OPERATOR}; `user set-password` is rule 1's administrator case"
        ),
        "invite": NotApplicable("the CLI has no invite command", Command(("invite",))),
        "set_own_email": NotApplicable(_OPERATOR),
        "strong_grant": NotApplicable(f"{_OPERATOR}: no session to elevate"),
        "hot_get": NotApplicable("the CLI sends no HTTP requests"),
        "write": NotApplicable("the CLI sends no HTTP requests"),
        "update_full_name": NotApplicable(
            "the CLI has no command to update a user", Command(("user", "update"))
        ),
        "read_foreign": NotApplicable(f"{_OPERATOR}: it sees the whole instance"),
        "who_can": NotApplicable("the CLI has no who-can command", Command(("who-can",))),
    }

    async def run(self, *args: str, input: str | None = None) -> Reply:
        result = await asyncio.to_thread(_runner.invoke, cli_app, list(args), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a crash, not a refusal
        return Reply(result.exit_code, None, result.output, result.exit_code == 0)

    def assert_error(self, reply: Reply, refusal: Refusal, what: str = "") -> None:
        """A refused command: a non-zero exit, a message, and no traceback (run raises)."""
        assert reply.status in (1, 2), f"cli {what}: wanted a refusal, {reply}"
        assert reply.text.strip(), f"cli {what}: refused without a word"
        if refusal.field is not None:
            assert f"{refusal.field}:" in reply.text, f"cli {what}: {reply}"

    async def confirm_gap(self, gap: NotApplicable) -> None:
        assert gap.reason.strip()
        if isinstance(gap.probe, Command):
            r = await self.run(*gap.probe.args, "--help")
            assert r.status == 2 and "No such command" in r.text, f"cli now has {gap.probe}"

    async def session(self, account: Account) -> Credential:
        return Credential("", "session")  # unused: the CLI is the operator

    async def admin_credential(self, account: Account) -> Credential:
        return Credential("", "session")

    async def set_password(self, admin: Account, target: Account, new: str) -> Reply:
        return await self.run("user", "set-password", target.username, "--stdin", input=new + "\n")

    async def create_user(self, admin: Account, username: str, email: str | None = None) -> Reply:
        extra = ("--email", email) if email is not None else ()
        return await self.run("user", "create", username, *extra)

    async def system_role_target(self) -> RoleTarget:
        target = await self.rig.account(system_role="SYSTEM_VIEWER")
        return RoleTarget(target.username, target.id, ("SYSTEM_VIEWER",))

    async def give_system_admin(self, admin: Account, target: RoleTarget) -> Reply:
        return await self.run("bootstrap", "--username", target.username)

    async def mint_token(self, account: Account, credential: Credential, days: int) -> Reply:
        return await self.run(
            "token", "create", "--user", account.username, "--expires-in", f"{days}d"
        )


# --- scim --------------------------------------------------------------------------------------

SCIM = "/scim/v2"
_SCIM_ONLY = "SCIM provisions the accounts its organization manages, with an organization's token"


class Scim(Face):
    """SCIM 2.0 (/scim/v2): an organization's identity provider, with the organization's SCIM
    token (made by its owner through the native face). It has no users' own credentials, no
    passwords, no system roles and no who-can: the rules it joins are those about other
    tenants' objects; its refusals to change IdP-owned attributes from the other faces are
    tests/faces/scim/test_other_faces.py, its isolation tests/faces/scim/test_isolation.py."""

    name = "scim"
    wire = "scim"
    variants = {"read_foreign": ("user", "user-replace", "user-filter", "group-member")}
    gaps = {
        "list_accounts": NotApplicable(f"{_SCIM_ONLY}, never the instance's users"),
        "sign_in": NotApplicable("SCIM has no sign-in: the identity provider brings a token"),
        "unproven_own_password_changes": NotApplicable("SCIM serves no passwords"),
        "proven_own_password_change": NotApplicable("SCIM serves no passwords"),
        "set_password": NotApplicable("SCIM serves no passwords (no password attribute)"),
        "create_user": NotApplicable(
            f"{_SCIM_ONLY}; its creates are tests/faces/scim/test_users.py"
        ),
        "invite": NotApplicable("SCIM provisions members instead of inviting them"),
        "set_own_email": NotApplicable("a SCIM token is no user's own credential"),
        "strong_grant": NotApplicable("SCIM grants only the token's default role, never owner"),
        "hot_get": NotApplicable("SCIM has no who-am-I GET"),
        "write": NotApplicable(
            "the one-credential rule is tests/faces/scim/test_credentials.py "
            "(two Authorization headers are refused there)"
        ),
        "give_system_admin": NotApplicable("SCIM has no system roles"),
        "update_full_name": NotApplicable(
            f"{_SCIM_ONLY}, never a native account such as this rule's target"
        ),
        "who_can": NotApplicable("SCIM has no who-can question"),
        "mint_token": NotApplicable("SCIM mints no tokens (its own are made by owners)"),
    }

    def auth(self, credential: Credential) -> dict[str, str]:
        return bearer(credential.secret) | {"Content-Type": "application/scim+json"}

    async def session(self, account: Account) -> Credential:
        """A SCIM token of the organization `account` owns, made by them (native face)."""
        from sqlalchemy import select

        from tenantry.db.models import Membership

        async with self.rig.world.database.transaction(write=False) as db:
            org_id = await db.scalar(
                select(Membership.organization_id).where(
                    Membership.user_id == account.id, Membership.role == "ORGANIZATION_OWNER"
                )
            )
        assert org_id is not None, "the account owns no organization"
        owner = await self.rig.native_session(account)
        r = await self.call("POST", f"{NATIVE}/organizations/{org_id}/scim-tokens", owner, json={})
        assert r.status == 201, r
        return Credential(r.body["token"], "scim")

    async def read_foreign(self, credential: Credential, tenants: Tenants, made_up: bool) -> Reply:
        user_id = tenants.ids(made_up)["user"]
        if self.variant == "user":
            return await self.call("GET", f"{SCIM}/Users/{user_id}", credential)
        if self.variant == "user-replace":
            body = {"userName": f"{unique()}@example.com"}
            return await self.call("PUT", f"{SCIM}/Users/{user_id}", credential, json=body)
        if self.variant == "user-filter":
            name = f"{user_id}@example.com"
            if not made_up:
                name = (await self.rig.user(user_id)).username
            flt = f'userName eq "{name}"'
            return await self.call("GET", f"{SCIM}/Users", credential, params={"filter": flt})
        group: dict[str, Any] = {"displayName": "Foreign", "members": [{"value": user_id}]}
        return await self.call("POST", f"{SCIM}/Groups", credential, json=group)


# --- the matrix --------------------------------------------------------------------------------

FACES: tuple[type[Face], ...] = (Astro, Ece, Unleash, Native, Cli, Scim)
RuleTest = TypeVar("RuleTest", bound=Callable[..., Awaitable[None]])


def cases(operation: str) -> list[Any]:
    """One case per face and variant of `operation`; a face lacking it is one visible
    `<face>-n/a` case, which checks the gap is real instead of running the rule."""
    found = []
    for face in FACES:
        if operation in face.gaps:
            found.append(pytest.param((face, ""), id=f"{face.name}-n/a"))
            continue
        for variant in face.variants_of(operation):
            label = f"{face.name}-{variant}" if variant else face.name
            found.append(pytest.param((face, variant), id=label))
    return found


def across_faces(operation: str) -> Callable[[RuleTest], RuleTest]:
    """Run the rule test once per face (fixture `face`) that has `operation`; for a face that
    lists it as a gap, confirm the gap instead."""

    def decorate(test: RuleTest) -> RuleTest:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            face: Face = kwargs["face"]
            gap = face.gaps.get(operation)
            if gap is not None:
                await face.confirm_gap(gap)
                return
            await test(*args, **kwargs)

        marked: RuleTest = pytest.mark.parametrize("face", cases(operation), indirect=True)(run)
        return marked

    return decorate


__all__ = ["FACES", "PASSWORD", "Face", "across_faces", "cases"]

"""Audit coverage: every mutation and every authentication event writes an audit row, in the
same transaction as the change; failed requests leave none; the log is append-only; and no
secret ever reaches the audit log or the application logs.

The app under test runs on a `ProbeDatabase`, which watches the SQL of every transaction it
hands out (which tables each one writes) and can roll them all back instead of committing.
Each scenario step is sent twice:
1. rolled back: the request succeeds, yet afterwards the database is exactly as before, audit
   table included: nothing was written behind the request's transactions;
2. committed: the data changed; exactly the expected audit actions were appended, each with
   the request's id and the client address; and every transaction that wrote anything also
   inserted into audit_events (and, but for a sign-in attempt on an unknown account, wrote the
   change too). That is "in the same transaction as the change", checked statement by
   statement rather than inferred.

Every mutating route the faces serve (discovered from their OpenAPI documents) must be
exercised by the scenario or be listed as read-only, so a new route without an audit step fails
`test_every_mutation_is_audited_in_its_transaction` until one is added.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from sqlalchemy import Table, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Mount

from tenantry.app import create_app
from tenantry.authz.engine import Grants
from tenantry.config import Settings, load_settings
from tenantry.db.base import Base
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Organization, Token, User
from tenantry.directory import accounts, email_change, invites, members, password_reset
from tenantry.directory.members import RoleSet
from tenantry.errors import DomainError
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import Principal, system_principal
from tenantry.identity.usage import recorder
from tests.dns import Zone
from tests.faces.errors import native_error
from tests.factories import World, bearer

V = "/tenantry/v1"
A = "/v1"
PASSWORD = "violet-staircase-42"
NEW_PASSWORD = "amber-lighthouse-77"
WRONG_PASSWORD = "not-the-password-13"
INVITEE_PASSWORD = "copper-meadow-58"
FACE_OF = {"/v1": "astro", "/iam/v1beta1": "astro", "/platform/v1beta1": "astro", V: "native"}
PREFIX_OF = {"astro": A, "native": V}
# POST routes that only read: they must change nothing and write no audit row.
READ_ONLY = {("native", "POST", "/check"), ("native", "POST", "/who-can")}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


DML = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)
# Data-modifying CTEs (the sign-in's one statement on PostgreSQL): WITH name AS (INSERT ...
CTE_DML = re.compile(r'\bAS\s*\(\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)


def written_tables(statement: str) -> set[str]:
    if statement.lstrip()[:4].upper() == "WITH":
        return {m.group(1).lower() for m in CTE_DML.finditer(statement)}
    match = DML.match(statement)
    return {match.group(1).lower()} if match else set()


@dataclass
class Tx:
    """One transaction the probe handed out: the tables its statements wrote."""

    tables: set[str] = field(default_factory=set)
    committed: bool = False


class ProbeDatabase(Database):
    """A Database that records what each transaction writes, and can roll back every
    transaction instead of committing it (`rollback_only`)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.rollback_only = False
        self.finished: list[Tx] = []
        self._open: dict[Any, Tx] = {}
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        tx = self._open.get(conn)
        if tx is not None:
            tx.tables |= written_tables(statement)

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """As Database.transaction, plus the bookkeeping."""
        async with self.sessions() as session:
            begin = {"sqlite_begin": "IMMEDIATE"} if write and self.settings.is_sqlite else {}
            conn = (await session.connection(execution_options=begin)).sync_connection
            tx = Tx()
            self._open[conn] = tx
            try:
                try:
                    yield session
                except DomainError as refusal:  # a refusal may keep its writes (sign-in)
                    if not refusal.keeps_writes:
                        await session.rollback()
                    else:
                        await self._finish(session, tx)
                    raise
                except BaseException:
                    await session.rollback()
                    raise
                await self._finish(session, tx)
            finally:
                self._open.pop(conn, None)
                self.finished.append(tx)

    async def _finish(self, session: AsyncSession, tx: Tx) -> None:
        if self.rollback_only:
            await session.rollback()
            # The code believes it committed (e.g. a token's first use, which the
            # cached caller remembers): forget what the process derived since.
            self.generation.bump()
        else:
            await session.commit()
            tx.committed = True


async def fingerprint(database: Database) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text (the whole database is small in these tests)."""
    state: dict[str, list[tuple[str, ...]]] = {}
    async with database.transaction(write=False) as db:
        for table in Base.metadata.sorted_tables:
            rows = (await db.execute(select(table))).all()
            state[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return state


def without_audit(state: dict[str, list[tuple[str, ...]]]) -> dict[str, list[tuple[str, ...]]]:
    return {k: v for k, v in state.items() if k != AuditEvent.__tablename__}


async def audit_rows(database: Database, after_id: int = 0) -> list[AuditEvent]:
    async with database.transaction(write=False) as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id)
        )
        return list(rows)


async def last_audit_id(database: Database) -> int:
    async with database.transaction(write=False) as db:
        return int(await db.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0)


class PathIds(TypedDict, total=False):
    """Path parameters passed to Harness.step as **ids: as a TypedDict, mypy knows they cannot
    stand for step's own keywords (status, changes, ...)."""

    organizationId: str
    workspaceId: str
    deploymentId: str
    teamId: str
    customRoleId: str
    tokenId: str


@dataclass
class Harness:
    client: httpx.AsyncClient
    probe: ProbeDatabase
    database: Database
    exercised: set[tuple[str, str, str]] = field(default_factory=set)
    sent: int = 0

    async def step(
        self,
        method: str,
        template: str,
        *,
        expect: list[str],
        face: str = "native",
        token: str | None = None,
        json: Any = None,
        status: int | None = None,
        changes: bool = True,
        **path: str,
    ) -> tuple[httpx.Response, list[AuditEvent]]:
        """Send the request rolled back, then committed (see the module docstring)."""
        url = PREFIX_OF[face] + template.format(**path)
        headers = bearer(token) if token else {}

        async def send(label: str) -> httpx.Response:
            r = await self.client.request(
                method, url, json=json, headers=headers | {"x-request-id": label}
            )
            ok = r.status_code == status if status is not None else r.is_success
            assert ok, f"{method} {url}: {r.status_code} {r.text}"
            # A reading request only queued its token's use: written here, as the
            # process's recorder would a moment later, in a transaction of the probe's.
            await recorder(self.probe).flush()
            return r

        before = await fingerprint(self.database)
        self.probe.rollback_only = True
        try:
            await send("probe-rollback")
        finally:
            self.probe.rollback_only = False
        after_rollback = await fingerprint(self.database)
        assert after_rollback == before, f"{method} {template}: wrote outside its transaction"

        since = await last_audit_id(self.database)
        self.sent += 1
        request_id = f"probe-{self.sent}"
        self.probe.finished.clear()
        r = await send(request_id)
        after = await fingerprint(self.database)
        events = await audit_rows(self.database, since)
        where = f"{method} {template}"
        assert sorted(e.action for e in events) == sorted(expect), where
        for e in events:
            assert e.request_id == request_id and e.ip == "127.0.0.1", (where, e.action)
        writers = [tx.tables for tx in self.probe.finished if tx.committed and tx.tables]
        audit = AuditEvent.__tablename__
        if not expect:
            assert after == before and not writers, f"{where} changed something"
        else:
            assert writers, where
            for tables in writers:
                assert audit in tables, f"{where}: a transaction wrote {tables} unaudited"
                if changes:
                    assert tables - {audit}, f"{where}: an audit row without its change"
            if changes:
                assert without_audit(after) != without_audit(before), f"{where} changed nothing"
        if method in MUTATING:
            self.exercised.add((face, method, template))
        return r, events


def json_text(e: AuditEvent) -> str:
    return json.dumps(
        [
            e.actor_type,
            e.actor_id,
            e.action,
            e.target_type,
            e.target_id,
            e.organization_id,
            e.request_id,
            e.ip,
            e.details,
        ]
    )


def one(events: list[AuditEvent], action: str) -> AuditEvent:
    found = [e for e in events if e.action == action]
    assert len(found) == 1, (action, [e.action for e in events])
    return found[0]


@functools.cache
def mutating_routes() -> frozenset[tuple[str, str, str]]:
    """(face, method, path) of every state-changing route any face serves."""
    app = create_app(load_settings(environment="test", database_url="sqlite+aiosqlite://"))
    found = set()
    for mount in app.routes:
        if isinstance(mount, Mount) and mount.path in FACE_OF:
            doc = mount.app.openapi()  # type: ignore[attr-defined]
            for path, operations in doc["paths"].items():
                for method in operations:
                    if method.upper() in MUTATING:
                        found.add((FACE_OF[mount.path], method.upper(), path))
    return frozenset(found)


def _hasher() -> Hasher:
    return Hasher(2, 19456, 1)


async def with_password(world: World, user: User, password: str = PASSWORD) -> None:
    async with world.database.transaction() as db:
        await accounts.set_password(db, _hasher(), system_principal(), user.id, password)


@pytest.fixture
def probe_settings(settings: Settings) -> Settings:
    return load_settings(
        database_url=settings.database_url,
        environment="test",
        lockout_threshold=2,
        dns_nameservers=settings.dns_nameservers,
        login_rate_per_account=1000,
        login_rate_per_ip=1000,
    )


@pytest.fixture
async def harness(probe_settings: Settings, database: Database) -> AsyncIterator[Harness]:
    probe = ProbeDatabase(probe_settings)
    app = create_app(probe_settings, probe)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield Harness(c, probe, database)
    await probe.dispose()


# --- the scenario -----------------------------------------------------------------------------


async def native_directory(h: Harness, admin: str, admin_id: str) -> dict[str, str]:
    """Users, organizations and personal tokens on the native face."""
    r, ev = await h.step(
        "POST",
        "/organizations",
        token=admin,
        json={"name": "Audited"},
        expect=["organization.create"],
    )
    org_id = r.json()["id"]
    e = one(ev, "organization.create")
    assert (e.actor_type, e.actor_id) == ("user", admin_id)
    assert (e.target_type, e.target_id, e.organization_id) == ("organization", org_id, org_id)

    r, ev = await h.step(
        "POST",
        "/users",
        token=admin,
        json={"username": "ursula@example.com"},
        expect=["user.create"],
    )
    user_id = r.json()["id"]
    assert one(ev, "user.create").target_id == user_id
    _, ev = await h.step(
        "PATCH",
        "/users/{userId}",
        userId=user_id,
        token=admin,
        json={"fullName": "Ursula K"},
        expect=["user.update"],
    )
    assert one(ev, "user.update").target_id == user_id
    r, ev = await h.step(
        "POST",
        "/users/{userId}/tokens",
        userId=user_id,
        token=admin,
        json={"name": "ci"},
        expect=["token.create"],
    )
    token_id, secret = r.json()["id"], r.json()["token"]
    assert one(ev, "token.create").target_id == token_id
    # the first use of a token is an event of its own (a read request: recorded on the side)
    _, ev = await h.step(
        "GET", "/users/{userId}", userId=user_id, token=secret, expect=["token.first_use"]
    )
    e = one(ev, "token.first_use")
    assert (e.actor_id, e.target_type, e.target_id) == (user_id, "token", token_id)
    await h.step("GET", "/users/{userId}", userId=user_id, token=secret, expect=[])
    _, ev = await h.step(
        "DELETE", "/tokens/{tokenId}", tokenId=token_id, token=admin, expect=["token.revoke"]
    )
    assert one(ev, "token.revoke").target_id == token_id
    _, ev = await h.step(
        "PUT",
        "/users/{userId}/password",
        userId=user_id,
        token=admin,
        json={"password": PASSWORD},
        expect=["user.password.set"],
    )
    assert one(ev, "user.password.set").target_id == user_id
    _, ev = await h.step(
        "PUT",
        "/users/{userId}/system-role",
        userId=user_id,
        token=admin,
        json={"role": "SYSTEM_VIEWER"},
        expect=["user.system_roles.set"],
    )
    assert one(ev, "user.system_roles.set").details == {"before": [], "after": ["SYSTEM_VIEWER"]}
    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/scim-tokens",
        organizationId=org_id,
        token=admin,
        json={"name": "okta"},
        expect=["organization.scim_token.create"],
    )
    scim_id = r.json()["id"]
    e = one(ev, "organization.scim_token.create")
    assert (e.target_id, e.organization_id) == (scim_id, org_id)
    assert r.json()["token"] not in str(e.details)  # the secret is not in the log
    _, ev = await h.step(
        "DELETE",
        "/organizations/{organizationId}/scim-tokens/{tokenId}",
        organizationId=org_id,
        tokenId=scim_id,
        token=admin,
        expect=["organization.scim_token.revoke"],
    )
    assert one(ev, "organization.scim_token.revoke").target_id == scim_id
    realm = {
        "id": "corp",
        "type": "oidc",
        "name": "Corp SSO",
        "oidc": {"issuer": "https://idp.example.com", "clientId": "tenantry"},
        "organizations": [{"organizationId": org_id}],
    }
    _, ev = await h.step("POST", "/realms", token=admin, json=realm, expect=["realm.create"])
    assert one(ev, "realm.create").details["organizations"] == [org_id]
    _, ev = await h.step(
        "PUT",
        "/realms/{realmId}",
        realmId="corp",
        token=admin,
        json=realm | {"name": "Corp"},
        expect=["realm.update"],
    )
    await h.step(
        "DELETE", "/realms/{realmId}", realmId="corp", token=admin, expect=["realm.delete"]
    )
    r, ev = await h.step(
        "POST",
        "/system/api-tokens",
        token=admin,
        json={"role": "SYSTEM_VIEWER", "name": "ci"},
        expect=["system.api_token.create"],
    )
    system_id = r.json()["id"]
    e = one(ev, "system.api_token.create")
    assert (e.target_id, e.organization_id, e.details["role"]) == (system_id, None, "SYSTEM_VIEWER")
    assert r.json()["token"] not in str(e.details)  # the secret is not in the log
    await h.step("GET", "/system/api-tokens", token=admin, expect=[])
    _, ev = await h.step(
        "DELETE",
        "/system/api-tokens/{tokenId}",
        tokenId=system_id,
        token=admin,
        expect=["system.api_token.revoke"],
    )
    assert one(ev, "system.api_token.revoke").target_id == system_id
    check = {
        "subject": {"type": "user", "id": user_id},
        "permission": "organization.get",
        "scope": {"type": "ORGANIZATION", "id": org_id},
    }
    await h.step("POST", "/check", token=admin, json=check, expect=[])
    who = {"permission": "organization.get", "scope": {"type": "ORGANIZATION", "id": org_id}}
    await h.step("POST", "/who-can", token=admin, json=who, expect=[])
    h.exercised.update(READ_ONLY)
    return {"org": org_id, "user": user_id}


async def verified_domains(h: Harness, zone: Zone, admin: str, org_id: str) -> None:
    """An organization's domain claimed, verified through the test DNS server, removed."""
    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/domains",
        organizationId=org_id,
        token=admin,
        json={"domain": "audited.example"},
        expect=["organization.domain.create"],
    )
    claim = r.json()
    e = one(ev, "organization.domain.create")
    assert (e.target_id, e.organization_id) == (claim["id"], org_id)
    assert e.details == {"domain": "audited.example"}
    zone.txt(claim["txtRecord"]["name"], claim["txtRecord"]["value"])
    _, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/domains/{domain}/verify",
        organizationId=org_id,
        domain="audited.example",
        token=admin,
        expect=["organization.domain.verify"],
    )
    assert one(ev, "organization.domain.verify").target_id == claim["id"]
    _, ev = await h.step(
        "DELETE",
        "/organizations/{organizationId}/domains/{domain}",
        organizationId=org_id,
        domain="audited.example",
        token=admin,
        expect=["organization.domain.delete"],
    )
    assert one(ev, "organization.domain.delete").target_id == claim["id"]


async def authentication(h: Harness, world: World) -> None:
    """Sign-in, failures, lockout, sessions, refresh, elevation, own tokens, password."""
    user = await world.user("sam@example.com")
    await with_password(world, user)
    login = {"username": "sam@example.com", "password": PASSWORD}
    r, ev = await h.step("POST", "/auth/login", json=login, expect=["auth.login.success"])
    session = r.json()["token"]
    e = one(ev, "auth.login.success")
    assert (e.target_type, e.target_id) == ("user", user.id)
    assert set(e.details) == {"token"} and e.details["token"] != session  # the id, not the secret
    async with world.database.transaction(write=False) as db:  # names the session it started
        started = await db.get(Token, e.details["token"])
        assert started is not None and started.kind == "session" and started.user_id == user.id
    _, ev = await h.step("GET", "/me/tokens", token=session, expect=["token.first_use"])
    assert one(ev, "token.first_use").actor_id == user.id

    wrong = {"username": "sam@example.com", "password": WRONG_PASSWORD}
    _, ev = await h.step(
        "POST", "/auth/login", json=wrong, status=401, expect=["auth.login.failure"]
    )
    assert one(ev, "auth.login.failure").target_id == user.id
    unknown = {"username": "nobody@example.com", "password": WRONG_PASSWORD}
    _, ev = await h.step(
        "POST",
        "/auth/login",
        json=unknown,
        status=401,
        expect=["auth.login.failure"],
        changes=False,  # an unknown account: the audit row is all there is
    )
    assert one(ev, "auth.login.failure").target_id is None
    # the second consecutive failure reaches the threshold (2): the account locks
    _, ev = await h.step(
        "POST", "/auth/login", json=wrong, status=401, expect=["auth.login.failure", "auth.lockout"]
    )
    assert one(ev, "auth.lockout").target_id == user.id
    users = User.__table__
    assert isinstance(users, Table)
    async with world.database.transaction() as db:
        await db.execute(users.update().values(locked_until=None, login_attempts=0))

    r, ev = await h.step("POST", "/auth/refresh", token=session, expect=["auth.refresh"])
    assert one(ev, "auth.refresh").target_id != session
    session = r.json()["token"]
    await h.step("GET", "/me/tokens", token=session, expect=["token.first_use"])
    _, ev = await h.step(
        "POST", "/auth/elevate", token=session, json={"password": PASSWORD}, expect=["auth.elevate"]
    )
    assert one(ev, "auth.elevate").target_id == user.id
    await h.step(
        "POST",
        "/auth/elevate",
        token=session,
        json={"password": WRONG_PASSWORD},
        status=403,
        expect=["auth.elevate.failure"],
    )
    await h.step("DELETE", "/auth/elevate", token=session, expect=["auth.elevate.drop"])
    r, ev = await h.step(
        "POST", "/me/tokens", token=session, json={"name": "laptop"}, expect=["token.create"]
    )
    own_id = r.json()["id"]
    _, ev = await h.step(
        "DELETE", "/me/tokens/{tokenId}", tokenId=own_id, token=session, expect=["token.revoke"]
    )
    assert one(ev, "token.revoke").target_id == own_id
    _, ev = await h.step(
        "PUT",
        "/users/{userId}/password",
        userId=user.id,
        token=session,
        json={"password": NEW_PASSWORD, "currentPassword": PASSWORD},
        expect=["user.password.set"],
    )
    assert one(ev, "user.password.set").details == {"self": True}
    # a second session, so that ending every session changes something
    r, _ = await h.step(
        "POST",
        "/auth/login",
        json={"username": "sam@example.com", "password": NEW_PASSWORD},
        expect=["auth.login.success"],
    )
    _, ev = await h.step(
        "DELETE",
        "/users/{userId}/sessions",
        userId=user.id,
        token=session,
        expect=["auth.sessions.revoke"],
    )
    assert one(ev, "auth.sessions.revoke").details["count"] == 2
    r, _ = await h.step(
        "POST",
        "/auth/login",
        json={"username": "sam@example.com", "password": NEW_PASSWORD},
        expect=["auth.login.success"],
    )
    last = r.json()["token"]
    _, ev = await h.step(
        "POST", "/auth/logout", token=last, expect=["token.first_use", "auth.logout"]
    )
    assert one(ev, "auth.logout").actor_id == user.id


async def astro_directory(h: Harness, world: World, admin: str) -> None:
    """Organizations, workspaces, deployments, roles, invites, teams, custom roles."""
    org = await world.org("Astro Audited")
    member = await world.user("mia@example.com")
    await world.roles(org, member)
    o: PathIds = {"organizationId": org.id}
    _, ev = await h.step(
        "POST",
        "/organizations/{organizationId}",
        face="astro",
        token=admin,
        json={"name": "Renamed", "billingEmail": "b@acme.io", "isScimEnabled": False},
        expect=["organization.update"],
        **o,
    )
    assert one(ev, "organization.update").organization_id == org.id

    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/workspaces",
        face="astro",
        token=admin,
        json={"name": "Data"},
        expect=["workspace.create"],
        **o,
    )
    ws_id = r.json()["id"]
    assert one(ev, "workspace.create").organization_id == org.id
    w = o | {"workspaceId": ws_id}
    await h.step(
        "POST",
        "/organizations/{organizationId}/workspaces/{workspaceId}",
        face="astro",
        token=admin,
        json={"name": "Data 2", "description": "d", "cicdEnforcedDefault": True},
        expect=["workspace.update"],
        **w,
    )
    dep = {"name": "prod", "workspaceId": ws_id}
    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/deployments",
        face="astro",
        token=admin,
        json=dep,
        expect=["deployment.create"],
        **o,
    )
    dep_id = r.json()["id"]
    d = o | {"deploymentId": dep_id}
    await h.step(
        "POST",
        "/organizations/{organizationId}/deployments/{deploymentId}",
        face="astro",
        token=admin,
        json={"name": "prod-2"},
        expect=["deployment.update"],
        **d,
    )

    roles = {
        "organizationRole": "ORGANIZATION_MEMBER",
        "workspaceRoles": [{"workspaceId": ws_id, "role": "WORKSPACE_AUTHOR"}],
    }
    _, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/users/{userId}/roles",
        face="astro",
        token=admin,
        json=roles,
        expect=["organization.user.roles.replace"],
        userId=member.id,
        **o,
    )
    details = one(ev, "organization.user.roles.replace").details
    assert details["before"]["organizationRole"] == "ORGANIZATION_MEMBER"
    assert details["before"] != details["after"]
    assert json.dumps(details).count("WORKSPACE_AUTHOR") == 1  # after only

    invite = {"inviteeEmail": "newbie@example.com", "role": "ORGANIZATION_MEMBER"}
    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/invites",
        face="astro",
        token=admin,
        json=invite,
        expect=["user.create", "organization.invite.create"],
        **o,
    )
    invite_id = r.json()["inviteId"]
    assert one(ev, "organization.invite.create").target_id == invite_id
    await h.step(
        "DELETE",
        "/organizations/{organizationId}/invites/{inviteId}",
        face="astro",
        token=admin,
        expect=["organization.invite.delete"],
        inviteId=invite_id,
        **o,
    )

    team = {"name": "Readers", "memberIds": [member.id]}
    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/teams",
        face="astro",
        token=admin,
        json=team,
        expect=["organization.team.create"],
        **o,
    )
    team_id = r.json()["id"]
    t = o | {"teamId": team_id}
    await h.step(
        "POST",
        "/organizations/{organizationId}/teams/{teamId}",
        face="astro",
        token=admin,
        json={"name": "Writers"},
        expect=["organization.team.update"],
        **t,
    )
    other = await world.user("otto@example.com")
    await world.roles(org, other)
    await h.step(
        "POST",
        "/organizations/{organizationId}/teams/{teamId}/members",
        face="astro",
        token=admin,
        json={"memberIds": [other.id]},
        expect=["organization.team.members.add"],
        **t,
    )
    await h.step(
        "DELETE",
        "/organizations/{organizationId}/teams/{teamId}/members/{memberId}",
        face="astro",
        token=admin,
        expect=["organization.team.members.remove"],
        memberId=other.id,
        **t,
    )
    _, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/teams/{teamId}/roles",
        face="astro",
        token=admin,
        json=roles,
        expect=["organization.team.roles.replace"],
        **t,
    )
    assert set(one(ev, "organization.team.roles.replace").details) == {"before", "after"}

    role = {"name": "Dep_Reader", "permissions": ["deployment.get"], "scopeType": "DEPLOYMENT"}
    r, _ = await h.step(
        "POST",
        "/organizations/{organizationId}/roles",
        face="astro",
        token=admin,
        json=role,
        expect=["organization.role.create"],
        **o,
    )
    rid = o | {"customRoleId": r.json()["id"]}
    await h.step(
        "POST",
        "/organizations/{organizationId}/roles/{customRoleId}",
        face="astro",
        token=admin,
        json=role | {"permissions": ["deployment.get", "deployment.update"]},
        expect=["organization.role.update"],
        **rid,
    )
    await h.step(
        "DELETE",
        "/organizations/{organizationId}/roles/{customRoleId}",
        face="astro",
        token=admin,
        expect=["organization.role.delete"],
        **rid,
    )

    await api_tokens(h, admin, org.id, ws_id)

    await h.step(
        "DELETE",
        "/organizations/{organizationId}/teams/{teamId}",
        face="astro",
        token=admin,
        expect=["organization.team.delete"],
        **t,
    )
    await h.step(
        "DELETE",
        "/organizations/{organizationId}/deployments/{deploymentId}",
        face="astro",
        token=admin,
        expect=["deployment.delete"],
        **d,
    )
    await h.step(
        "DELETE",
        "/organizations/{organizationId}/workspaces/{workspaceId}",
        face="astro",
        token=admin,
        expect=["workspace.delete"],
        **w,
    )


async def api_tokens(h: Harness, admin: str, org_id: str, ws_id: str) -> None:
    """Astro API tokens: a subject of their own, with roles."""
    o: PathIds = {"organizationId": org_id}
    body = {"name": "robot", "type": "WORKSPACE", "entityId": ws_id, "role": "WORKSPACE_MEMBER"}
    r, ev = await h.step(
        "POST",
        "/organizations/{organizationId}/tokens",
        face="astro",
        token=admin,
        json=body,
        expect=["organization.token.create"],
        **o,
    )
    tid, secret = r.json()["id"], r.json()["token"]
    assert one(ev, "organization.token.create").target_id == tid
    t = o | {"tokenId": tid}
    _, ev = await h.step(
        "GET",
        "/organizations/{organizationId}/workspaces/{workspaceId}",
        face="astro",
        token=secret,
        expect=["token.first_use"],
        workspaceId=ws_id,
        **o,
    )
    assert one(ev, "token.first_use").actor_type == "token"
    await h.step(
        "POST",
        "/organizations/{organizationId}/tokens/{tokenId}",
        face="astro",
        token=admin,
        json={"name": "robot 2"},
        expect=["organization.token.update"],
        **t,
    )
    roles = {"roles": [{"entityId": ws_id, "entityType": "WORKSPACE", "role": "WORKSPACE_AUTHOR"}]}
    await h.step(
        "POST",
        "/organizations/{organizationId}/tokens/{tokenId}/roles",
        face="astro",
        token=admin,
        json=roles,
        expect=["organization.token.roles.replace"],
        **t,
    )
    await h.step(
        "POST",
        "/organizations/{organizationId}/tokens/{tokenId}/rotate",
        face="astro",
        token=admin,
        expect=["organization.token.rotate"],
        **t,
    )
    await h.step(
        "DELETE",
        "/organizations/{organizationId}/tokens/{tokenId}",
        face="astro",
        token=admin,
        expect=["organization.token.delete"],
        **t,
    )


async def invite_acceptance(h: Harness, world: World) -> None:
    org = await world.org("Inviting")
    async with world.database.transaction() as db:
        created = await invites.create_invite(
            db, system_principal(), org.id, "joiner@example.com", "ORGANIZATION_MEMBER"
        )
    body = {"secret": created.secret, "password": INVITEE_PASSWORD}
    _, ev = await h.step("POST", "/invites/accept", json=body, expect=["invite.accept"])
    e = one(ev, "invite.accept")
    assert (e.target_id, e.organization_id) == (created.view.invite.id, org.id)


async def self_service_email(h: Harness, world: World) -> None:
    user = await world.user("changer@example.com")
    token = await world.token(user)
    body = {"email": "changed@example.com"}
    await h.step(
        "POST",
        "/users/me/email",
        token=token,
        json=body,
        expect=["token.first_use", "user.email.change_requested"],
    )
    async with world.database.transaction() as db:
        actor = Principal(grants=Grants([]), user=await db.get_one(User, user.seq))
        pending = await email_change.request_email_change(
            db, actor, "confirmed@example.com", public_url="http://t"
        )
    _, ev = await h.step(
        "POST", "/email/confirm", json={"secret": pending.secret}, expect=["user.email.change"]
    )
    assert one(ev, "user.email.change").target_id == user.id


async def password_reset_link(h: Harness, world: World) -> None:
    user = await world.user("resetter@example.com")
    async with world.database.transaction() as db:
        link = await password_reset.request_password_reset(
            db, system_principal(), user.id, public_url="http://t"
        )
    body = {"secret": link.url.split("#", 1)[1], "password": NEW_PASSWORD}
    _, ev = await h.step("POST", "/password/reset", json=body, expect=["user.password.set"])
    assert one(ev, "user.password.set").target_id == user.id


async def test_every_mutation_is_audited_in_its_transaction(
    harness: Harness, world: World, dns_zone: Zone
) -> None:
    admin_user = await world.admin()
    admin = await world.token(admin_user)
    await harness.step("GET", "/roles", token=admin, expect=["token.first_use"])
    made = await native_directory(harness, admin, admin_user.id)
    await verified_domains(harness, dns_zone, admin, made["org"])
    await authentication(harness, world)
    await astro_directory(harness, world, admin)
    await invite_acceptance(harness, world)
    await self_service_email(harness, world)
    await password_reset_link(harness, world)
    async with world.database.transaction() as db:
        joined = RoleSet("ORGANIZATION_MEMBER", [], [], [])
        await members.replace_user_roles(db, system_principal(), made["org"], made["user"], joined)
    _, ev = await harness.step(
        "DELETE",
        "/organizations/{organizationId}/members/{userId}",
        organizationId=made["org"],
        userId=made["user"],
        token=admin,
        expect=["organization.user.remove"],
    )
    e = one(ev, "organization.user.remove")
    assert (e.target_id, e.organization_id) == (made["user"], made["org"])
    await harness.step(
        "DELETE", "/users/{userId}", userId=made["user"], token=admin, expect=["user.delete"]
    )
    _, ev = await harness.step(
        "DELETE",
        "/organizations/{organizationId}",
        organizationId=made["org"],
        token=admin,
        expect=["organization.delete"],
    )
    assert one(ev, "organization.delete").organization_id == made["org"]

    missing = mutating_routes() - harness.exercised
    assert not missing, f"mutating routes without an audit step: {sorted(missing)}"


# --- failures leave nothing -------------------------------------------------------------------


async def test_failed_requests_leave_no_audit_row(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    user = await world.user("taken@example.com")
    await world.roles(org, user)
    admin = await world.token(await world.admin())
    h = bearer(admin)
    assert (await client.get(f"{V}/roles", headers=h)).status_code == 200  # first use: done
    before = await fingerprint(world.database)
    failures: list[tuple[str, str, Any, int]] = [
        ("POST", f"{V}/users", {"username": "TAKEN@example.com"}, 409),
        ("POST", f"{V}/users", {"username": ""}, 400),
        ("PATCH", f"{V}/users/{user.id}", {"status": "NOPE"}, 400),
        ("PUT", f"{V}/users/{user.id}/password", {"password": "short"}, 400),
        ("PUT", f"{V}/users/{user.id}/system-role", {"role": "GOD"}, 400),
        ("DELETE", f"{V}/tokens/cnope00000000000000000000", None, 404),
        ("POST", f"{V}/auth/login", {"username": "", "password": "x"}, 400),
        ("POST", f"{A}/organizations/{org.id}/workspaces", {"name": ""}, 400),
        (
            "POST",
            f"{A}/organizations/{org.id}/users/{user.id}/roles",
            {"organizationRole": "ORGANIZATION_MEMBER", "workspaceRoles": [{"workspaceId": "x"}]},
            400,
        ),
        ("POST", f"{A}/organizations/{org.id}/invites", {"inviteeEmail": "x", "role": "X"}, 400),
        ("POST", f"{A}/organizations/{org.id}/teams", {"name": "t", "memberIds": ["bad"]}, 400),
        ("DELETE", f"{A}/organizations/{org.id}/teams/cnope00000000000000000000", None, 404),
    ]
    for method, url, body, status in failures:
        r = await client.request(method, url, json=body, headers=h)
        assert r.status_code == status, (method, url, r.text)
    assert await fingerprint(world.database) == before
    # and a caller without the right changes nothing either
    _, member_token = await world.member(org)
    await client.get(f"{V}/roles", headers=bearer(member_token))
    before = await fingerprint(world.database)
    r = await client.delete(f"{V}/users/{user.id}", headers=bearer(member_token))
    assert r.status_code == 403
    native_error(r, 403, "missing permission system.users.delete")
    assert await fingerprint(world.database) == before


async def test_a_rolled_back_transaction_takes_its_audit_rows_along(world: World) -> None:
    """The service writes the row through the caller's session: no commit, no row."""
    from tenantry.directory import users

    class Boom(Exception):
        pass

    seen: list[int] = []

    async def create_then_fail() -> None:
        async with world.database.transaction() as db:
            await users.create_user(db, system_principal(), "ghost@example.com")
            seen.append(int(await db.scalar(select(func.count()).select_from(AuditEvent)) or 0))
            raise Boom

    with pytest.raises(Boom):
        await create_then_fail()
    assert seen == [1]  # the row was there, inside the transaction...
    assert await audit_rows(world.database) == []  # ...and went with it


# --- append-only ------------------------------------------------------------------------------


async def test_no_route_changes_audit_rows(client: httpx.AsyncClient, world: World) -> None:
    audit_routes = {r for r in mutating_routes() if "audit" in r[2]}
    assert audit_routes == set()
    token = await world.token(await world.admin())
    await client.get(f"{V}/roles", headers=bearer(token))
    before = await audit_rows(world.database)
    assert before
    event_id = before[0].id
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for url in (f"{V}/audit", f"{V}/audit/{event_id}", f"{V}/audit?organization=x"):
            r = await client.request(method, url, json={}, headers=bearer(token))
            assert r.status_code in (404, 405), (method, url, r.status_code)
    after = await audit_rows(world.database)
    assert [json_text(e) for e in after] == [json_text(e) for e in before]


def test_only_retention_deletes_audit_rows() -> None:
    """No code path but the retention prune issues UPDATE or DELETE on audit_events."""
    src = Path(__file__).resolve().parents[2] / "src" / "tenantry"
    pattern = re.compile(r"(update|delete)\(\s*AuditEvent|audit_events\b.*\b(UPDATE|DELETE)", re.I)
    writers = sorted(
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if pattern.search(p.read_text()) and "migrations" not in p.parts
    )
    assert writers == ["directory/audit_retention.py"]


# --- secrets ----------------------------------------------------------------------------------


async def test_no_secret_reaches_the_audit_log_or_the_logs(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("tenantry", "uvicorn", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    admin_user = await world.admin("root@example.com")
    await with_password(world, admin_user)
    org = await world.org("Secretive")
    ws = await world.workspace(org)
    secrets_seen: list[str] = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, INVITEE_PASSWORD]

    async def post(url: str, body: Any, token: str | None = None, status: int = 200) -> Any:
        r = await client.post(url, json=body, headers=bearer(token) if token else {})
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    login = {"username": "root@example.com", "password": PASSWORD}
    bad = {"username": "root@example.com", "password": WRONG_PASSWORD}
    await post(f"{V}/auth/login", bad, status=401)
    session = (await post(f"{V}/auth/login", login))["token"]
    personal = await post(f"{V}/users/{admin_user.id}/tokens", {"name": "p"}, session, 201)
    own = await post(f"{V}/me/tokens", {"name": "own"}, session, 201)
    assert (await client.get(f"{V}/me/tokens", headers=bearer(personal["token"]))).is_success
    await post(f"{V}/auth/elevate", {"password": PASSWORD}, session)
    body = {"password": NEW_PASSWORD, "currentPassword": PASSWORD}
    r = await client.put(f"{V}/users/{admin_user.id}/password", json=body, headers=bearer(session))
    assert r.status_code == 204
    refreshed = (await post(f"{V}/auth/refresh", None, session))["token"]
    api_body = {"name": "bot", "type": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
    api = await post(f"{A}/organizations/{org.id}/tokens", api_body, refreshed)
    rotated = await post(f"{A}/organizations/{org.id}/tokens/{api['id']}/rotate", None, refreshed)
    assert (await client.get(f"{A}/organizations", headers=bearer(rotated["token"]))).is_success
    env_secret = "s3cr3t-env-value-0001"
    dep = {
        "name": "prod",
        "workspaceId": ws.id,
        "environmentVariables": [{"key": "DB_PASSWORD", "value": env_secret, "isSecret": True}],
    }
    await post(f"{A}/organizations/{org.id}/deployments", dep, refreshed)
    async with world.database.transaction() as db:
        created = await invites.create_invite(
            db, system_principal(), org.id, "joiner@example.com", "ORGANIZATION_MEMBER"
        )
    accepted = await post(
        f"{V}/invites/accept", {"secret": created.secret, "password": INVITEE_PASSWORD}
    )
    await post(f"{V}/auth/logout", None, refreshed, 204)
    tokens = [
        session,
        refreshed,
        personal["token"],
        own["token"],
        api["token"],
        rotated["token"],
        accepted["session"]["token"],
        created.secret,
    ]
    assert all(len(t) >= 20 for t in tokens)
    secrets_seen += tokens

    events = await audit_rows(world.database)
    actions = {e.action for e in events}
    assert {
        "auth.login.failure",
        "auth.login.success",
        "token.create",
        "token.first_use",
        "auth.elevate",
        "user.password.set",
        "auth.refresh",
        "organization.token.create",
        "organization.token.rotate",
        "deployment.create",
        "invite.accept",
        "auth.logout",
    } <= actions
    audit_text = "\n".join(json_text(e) for e in events)
    logged = [caplog.text] + [
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    ]
    assert any(r.name.startswith("sqlalchemy") for r in caplog.records)  # SQL was logged
    for secret in [*secrets_seen, env_secret]:
        assert secret not in audit_text, "a secret is in the audit log"
        assert not any(secret in text for text in logged), "a secret is in the logs"
    # nor is any credential stored in clear anywhere in the database
    state = json.dumps(await fingerprint(world.database))
    for secret in secrets_seen:
        assert secret not in state
    async with world.database.transaction() as db:
        assert await db.get(Organization, org.id) is not None

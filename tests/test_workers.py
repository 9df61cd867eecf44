"""Two `tenantry serve` processes over one PostgreSQL database: a change made through one
worker (token revoked, user disabled, role changed, session ended) is honoured by the other on
its very next request (docs/operations.md, "Workers and instances").

The database is a separate one created for this module on the test server (the shared test
database is truncated by other tests), and dropped at the end. The data is made through the
service functions in the test's event loop; everything else goes over HTTP to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.migrate import upgrade
from tenantry.db.models import User
from tenantry.directory import accounts
from tenantry.identity import personal_tokens
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import system_principal
from tests.factories import World

V = "/tenantry/v1"
PASSWORD = "copper-lantern-58"
START_SECONDS = 60.0  # each server must answer /healthz within this (slow on a loaded machine)
STOP_SECONDS = 10.0
HTTP_TIMEOUT = 10.0


# --- the database and the two servers ---------------------------------------------------------


async def _admin(server_url: str, sql: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def workers_db(pg_server: str) -> Iterator[str]:
    """A database of this module's own on the test server (pg_server fails under CI=true
    when PostgreSQL is unreachable), migrated before either worker starts."""
    name = f"tenantry_workers_{secrets.token_hex(4)}"
    asyncio.run(_admin(pg_server, f'CREATE DATABASE "{name}"'))
    try:
        url = f"{pg_server.rpartition('/')[0]}/{name}"
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    base_url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _start(name: str, url: str, logs: Path) -> Worker:
    port = _free_port()
    # Only what this test sets: no TENANTRY_* from the caller's shell (e.g. require_elevation).
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(TENANTRY_DATABASE_URL=url, TENANTRY_LOG_LEVEL="WARNING")
    log = logs / f"worker-{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            [sys.executable, "-m", "tenantry", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Worker(name, proc, log, f"http://127.0.0.1:{port}")


def _stop(worker: Worker) -> None:
    if worker.proc.poll() is None:
        worker.proc.terminate()
        try:
            worker.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait(timeout=STOP_SECONDS)


def _wait_healthy(workers: list[Worker]) -> None:
    deadline = time.monotonic() + START_SECONDS
    pending = list(workers)
    with httpx.Client(timeout=2.0) as client:
        while pending:
            for w in list(pending):
                if w.proc.poll() is not None:
                    pytest.fail(
                        f"worker {w.name} exited with {w.proc.returncode}:\n{w.output()}",
                        pytrace=False,
                    )
                try:
                    if client.get(f"{w.base_url}/healthz").status_code == 200:
                        pending.remove(w)
                except httpx.TransportError:
                    pass
            if pending and time.monotonic() > deadline:
                w = pending[0]
                pytest.fail(
                    f"worker {w.name} did not answer /healthz within {START_SECONDS:.0f}s:\n"
                    f"{w.output()}",
                    pytrace=False,
                )
            if pending:
                time.sleep(0.1)


@pytest.fixture(scope="module")
def workers(
    workers_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    """Two independent server processes over the same database."""
    logs = tmp_path_factory.mktemp("workers")
    started: list[Worker] = []
    try:
        for name in ("A", "B"):
            started.append(_start(name, workers_db, logs))
        _wait_healthy(started)
        a, b = started
        assert a.proc.pid != b.proc.pid and a.base_url != b.base_url
        yield a, b
    finally:
        for w in started:
            _stop(w)


# --- per-test clients and data ----------------------------------------------------------------


@pytest.fixture
async def store(workers_db: str) -> AsyncIterator[World]:
    database = Database(load_settings(database_url=workers_db, environment="test"))
    try:
        yield World(database)
    finally:
        await database.dispose()


@pytest.fixture
async def clients(
    workers: tuple[Worker, Worker],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """One keep-alive client per worker, so each request lands on the process it names."""
    a, b = workers
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=HTTP_TIMEOUT) as ca,
        httpx.AsyncClient(base_url=b.base_url, timeout=HTTP_TIMEOUT) as cb,
    ):
        yield ca, cb


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_of_self(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/v1/users/self", headers=bearer(token))).status_code


async def warm(client: httpx.AsyncClient, token: str, times: int = 3) -> None:
    """Use a credential several times on a worker first, so that anything a worker might
    remember about it would be remembered before the change."""
    for _ in range(times):
        assert await status_of_self(client, token) == 200


async def personal_token(world: World, user: User) -> tuple[str, str]:
    """(token id, secret)."""
    async with world.database.transaction() as db:
        minted = await personal_tokens.create_personal_token(
            db, system_principal(), user.id, name="workers", expires_in_days=1
        )
        return minted.token.id, minted.secret


# --- the tests --------------------------------------------------------------------------------


async def test_token_revoked_on_one_worker_is_refused_by_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    a, b = clients
    admin_token = await store.token(await store.admin())
    user = await store.user()
    token_id, secret = await personal_token(store, user)
    for worker in (a, b):
        await warm(worker, secret)

    # An administrator revokes it through A; B refuses it on its very next request.
    r = await a.delete(f"{V}/tokens/{token_id}", headers=bearer(admin_token))
    assert r.status_code == 204, r.text
    assert await status_of_self(b, secret) == 401
    assert await status_of_self(a, secret) == 401

    # The user's own token, created through B and revoked by the user through A.
    _, keeper = await personal_token(store, user)
    created = await b.post(f"{V}/me/tokens", json={"name": "laptop"}, headers=bearer(keeper))
    assert created.status_code == 201, created.text
    own_id, own_secret = created.json()["id"], created.json()["token"]
    for worker in (b, a):
        await warm(worker, own_secret)
    r = await a.delete(f"{V}/me/tokens/{own_id}", headers=bearer(keeper))
    assert r.status_code == 204, r.text
    assert await status_of_self(b, own_secret) == 401
    assert await status_of_self(b, keeper) == 200  # only the revoked one


async def test_system_api_token_revoked_on_one_worker_is_refused_by_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    """Unleash's admin API token (a system API token: no user) on its hot path, /api/admin/user,
    cached on both workers; revoked through A, refused by B on its next request."""
    a, b = clients
    admin_token = await store.token(await store.admin())
    made = await b.post(
        f"{V}/system/api-tokens", json={"role": "SYSTEM_ADMIN"}, headers=bearer(admin_token)
    )
    assert made.status_code == 201, made.text
    token_id, secret = made.json()["id"], made.json()["token"]
    unleash = {"Authorization": secret}
    for worker in (a, b, a, b, a, b):
        assert (await worker.get("/api/admin/user", headers=unleash)).status_code == 200
    r = await a.delete(f"{V}/system/api-tokens/{token_id}", headers=bearer(admin_token))
    assert r.status_code == 204, r.text
    assert (await b.get("/api/admin/user", headers=unleash)).status_code == 401
    assert (await a.get("/api/admin/user", headers=unleash)).status_code == 401


async def test_user_disabled_on_one_worker_is_refused_by_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    a, b = clients
    admin_token = await store.token(await store.admin())
    user = await store.user()
    _, first = await personal_token(store, user)
    _, other = await personal_token(store, user)
    for worker in (a, b):
        await warm(worker, first)
        await warm(worker, other)

    r = await b.patch(f"{V}/users/{user.id}", json={"enabled": False}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False
    assert await status_of_self(a, other) == 401
    assert await status_of_self(a, first) == 401
    assert await status_of_self(b, other) == 401

    # Enabled again through B: A accepts the same tokens again (they were never revoked).
    r = await b.patch(f"{V}/users/{user.id}", json={"enabled": True}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert await status_of_self(a, other) == 200


async def test_role_changed_on_one_worker_applies_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    a, b = clients
    admin_h = bearer(await store.token(await store.admin()))
    org = await store.org(f"Workers {secrets.token_hex(3)}")
    await store.member(org, "ORGANIZATION_OWNER")  # so that the member can be demoted again
    member, member_token = await store.member(org, "ORGANIZATION_MEMBER")
    target, _ = await store.member(org, "ORGANIZATION_MEMBER")
    roles_of = f"/v1/organizations/{org.id}/users"
    as_member = {"organizationRole": "ORGANIZATION_MEMBER"}

    async def member_may_set_roles(worker: httpx.AsyncClient) -> int:
        r = await worker.post(
            f"{roles_of}/{target.id}/roles", json=as_member, headers=bearer(member_token)
        )
        return r.status_code

    async def self_roles(worker: httpx.AsyncClient) -> set[str]:
        r = await worker.get("/v1/users/self", headers=bearer(member_token))
        assert r.status_code == 200, r.text
        return {g["role"] for g in r.json()["roles"]}

    for _ in range(3):
        assert await member_may_set_roles(b) == 403
    assert "ORGANIZATION_OWNER" not in await self_roles(b)

    promote = {"organizationRole": "ORGANIZATION_OWNER"}
    r = await a.post(f"{roles_of}/{member.id}/roles", json=promote, headers=admin_h)
    assert r.status_code == 200, r.text
    assert await member_may_set_roles(b) == 200
    assert "ORGANIZATION_OWNER" in await self_roles(b)

    r = await a.post(f"{roles_of}/{member.id}/roles", json=as_member, headers=admin_h)
    assert r.status_code == 200, r.text
    assert await member_may_set_roles(b) == 403
    assert "ORGANIZATION_OWNER" not in await self_roles(b)


async def test_session_ended_on_one_worker_is_refused_by_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    a, b = clients
    user = await store.user()
    async with store.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), user.id, PASSWORD)
    r = await a.post(f"{V}/auth/login", json={"username": user.username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    session = r.json()["token"]
    for worker in (a, b):
        await warm(worker, session)

    r = await b.post(f"{V}/auth/logout", headers=bearer(session))
    assert r.status_code == 204, r.text
    assert await status_of_self(a, session) == 401
    assert await status_of_self(b, session) == 401


async def test_a_teams_new_role_on_one_worker_reaches_its_member_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    """A scoped change (the team's scope, not the member's own) crosses workers too."""
    a, b = clients
    org = await store.org(f"Teams {secrets.token_hex(3)}")
    ws = await store.workspace(org)
    _, owner_token = await store.member(org, "ORGANIZATION_OWNER")
    member, member_token = await store.member(org)
    team = await store.team(org, members=[member])

    async def projects(worker: httpx.AsyncClient) -> set[str]:
        r = await worker.get("/api/admin/user", headers={"Authorization": member_token})
        assert r.status_code == 200, r.text
        return {p["project"] for p in r.json()["permissions"] if "project" in p}

    for _ in range(3):
        assert ws.id not in await projects(b)
    roles = {
        "organizationRole": "ORGANIZATION_MEMBER",
        "workspaceRoles": [{"workspaceId": ws.id, "role": "WORKSPACE_OWNER"}],
    }
    r = await a.post(
        f"/v1/organizations/{org.id}/teams/{team.id}/roles",
        json=roles,
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    assert ws.id in await projects(b)
    assert ws.id in await projects(a)


async def _provisioned(client: httpx.AsyncClient, store: World, name: str) -> tuple[str, str, str]:
    """(SCIM token, user id, personal token of the user) for a user provisioned through SCIM."""
    from tenantry.directory import scim_tokens

    org = await store.org(f"Scim {name}")
    async with store.database.transaction() as db:
        scim = (await scim_tokens.create_scim_token(db, system_principal(), org.id)).secret
    r = await client.post(
        "/scim/v2/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name},
        headers=bearer(scim) | {"Content-Type": "application/scim+json"},
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    async with store.database.transaction() as db:
        user = await db.scalar(select(User).where(User.id == user_id))
    assert user is not None
    _, secret = await personal_token(store, user)
    return scim, user_id, secret


async def test_scim_deactivation_on_one_worker_ends_every_credential_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    a, b = clients
    scim, user_id, secret = await _provisioned(a, store, f"gone{secrets.token_hex(3)}@example.com")
    for worker in (a, b):
        await warm(worker, secret)
    r = await a.patch(
        f"/scim/v2/Users/{user_id}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
        headers=bearer(scim),
    )
    assert r.status_code == 200, r.text
    assert await status_of_self(b, secret) == 401
    assert await status_of_self(a, secret) == 401
    # revoked, not only refused while disabled: reactivating does not bring the token back
    r = await b.patch(
        f"/scim/v2/Users/{user_id}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": True}}],
        },
        headers=bearer(scim),
    )
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    assert await status_of_self(a, secret) == 401


async def test_scim_deletion_on_one_worker_ends_every_credential_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], store: World
) -> None:
    a, b = clients
    scim, user_id, secret = await _provisioned(b, store, f"del{secrets.token_hex(3)}@example.com")
    for worker in (a, b):
        await warm(worker, secret)
    r = await b.delete(f"/scim/v2/Users/{user_id}", headers=bearer(scim))
    assert r.status_code == 204, r.text
    assert await status_of_self(a, secret) == 401
    assert await status_of_self(b, secret) == 401

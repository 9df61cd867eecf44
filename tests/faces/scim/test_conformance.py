"""scim2-tester, the SCIM conformance suite, against a real `tenantry serve` (one per test
session, on a free port, SQLite): every check must be SUCCESS (SKIPPED included fails, as
`scim2 ... test` would exit 1). The SCIM token comes from the CLI, as an operator makes one."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.migrate import upgrade
from tenantry.directory import organizations
from tenantry.directory.organizations import OrganizationFields
from tenantry.identity.principals import system_principal

START_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cli(*args: str, env: dict[str, str]) -> str:
    tenantry = Path(sys.executable).with_name("tenantry")
    done = subprocess.run(  # noqa: S603
        [str(tenantry), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _organization(url: str) -> str:
    database = Database(load_settings(database_url=url, environment="test"))
    try:
        async with database.transaction() as db:
            org = await organizations.create_organization(
                db, system_principal(), OrganizationFields(name="Conformance")
            )
            return org.id
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def live_scim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the SCIM base URL of a running server, a SCIM token of one organization)."""
    folder = tmp_path_factory.mktemp("scim-live")
    url = f"sqlite+aiosqlite:///{folder / 'tenantry.db'}"
    upgrade(url)
    org_id = asyncio.run(_organization(url))
    env = os.environ | {"TENANTRY_DATABASE_URL": url, "TENANTRY_ENVIRONMENT": "test"}
    token = _cli("scim", "token", "create", "--organization", org_id, env=env).splitlines()[-1]
    port = _free_port()
    log = (folder / "server.log").open("w")
    tenantry = Path(sys.executable).with_name("tenantry")
    proc = subprocess.Popen(  # noqa: S603
        [str(tenantry), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert proc.poll() is None, (folder / "server.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield f"{base}/scim/v2", token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_scim2_tester_finds_every_check_successful(live_scim: tuple[str, str]) -> None:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server
    from scim2_tester.utils import Status

    base, token = live_scim
    with Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        results = check_server(SyncSCIMClient(http))
    assert len(results) >= 100, f"only {len(results)} checks ran"
    failures = [
        f"{r.status.name} {r.title}: {(r.reason or '')[:300]}"
        for r in results
        if r.status != Status.SUCCESS
    ]
    assert not failures, f"{len(failures)} of {len(results)} checks failed:\n" + "\n".join(failures)

"""Tenantry in the state an empty Unleash 8.2 starts in, for the harness and the replay test.

Unleash starts with the user `admin` / `unleash4all` (Admin root role) and the admin API token
of INIT_ADMIN_API_TOKENS. Tenantry's equivalents, made through the domain's use cases:

- `admin`: a user without e-mail (as Unleash's), password `unleash4all`, SYSTEM_ADMIN;
- the admin API token: a Tenantry system API token holding SYSTEM_ADMIN
  (directory/system_api_tokens.py): instance-wide and no user, as Unleash's admin token is.

Sign-in rate limits are raised (`SETTINGS`): the harness paces itself for Unleash's limits, but
the replay test sends the corpus at full speed. Everything else is Tenantry's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from compare.unleash.corpus import ADMIN_PASSWORD
from tenantry.authz.engine import load_user_grants
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.db.migrate import upgrade
from tenantry.directory import accounts, system_api_tokens
from tenantry.directory.users import get_by_id
from tenantry.identity.principals import Principal, system_principal
from tenantry.identity.security import Security

SETTINGS: dict[str, Any] = {"login_rate_per_ip": 100_000, "login_rate_per_account": 100_000}
TOKEN_NAME = "admin-api-token"


async def _as_user(db: Any, user_id: str) -> Principal:
    user = await get_by_id(db, user_id)
    return Principal(grants=await load_user_grants(db, user_id), user=user)


async def seed(database: Database, settings: Settings) -> dict[str, str]:
    """Make the starting state in an empty database; the variables the corpus starts with
    that depend on the server (the admin API token)."""
    hasher = Security.from_settings(settings).hasher
    async with database.transaction() as db:
        admin = await accounts.create_user(
            db,
            hasher,
            system_principal(),
            accounts.NewUser(
                username="admin",
                password=ADMIN_PASSWORD,
                system_roles=("SYSTEM_ADMIN",),
                email_from_username=False,
            ),
        )
        admin_id = admin.id
    async with database.transaction() as db:
        made = await system_api_tokens.create_system_api_token(
            db,
            await _as_user(db, admin_id),
            role="SYSTEM_ADMIN",
            name=TOKEN_NAME,
            expires_in_days=None,
        )
    assert made.secret is not None
    return {"token_admin_api": made.secret}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def served(log_path: Path | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """`tenantry serve` on a fresh SQLite file and a free port of 127.0.0.1, seeded; yields
    its base URL and the corpus's starting variables. Stopped (by its pid) on exit."""
    with tempfile.TemporaryDirectory(prefix="tenantry-compare-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'tenantry.db'}"
        port = free_port()
        env = {  # the caller's TENANTRY_* settings stay out: Tenantry's defaults, and ours
            **{k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")},
            "TENANTRY_DATABASE_URL": url,
            "TENANTRY_MAIL_OUTBOX": str(Path(tmp) / "mail"),
            "TENANTRY_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TENANTRY_LOG_LEVEL": "WARNING",
            **{f"TENANTRY_{k.upper()}": str(v) for k, v in SETTINGS.items()},
        }
        upgrade(url)
        settings = load_settings(database_url=url, **SETTINGS)

        async def make() -> dict[str, str]:
            database = Database(settings)
            try:
                return await seed(database, settings)
            finally:
                await database.dispose()

        variables = asyncio.run(make())
        out = open(log_path or os.devnull, "w")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "tenantry", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc)
            yield base, variables
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.close()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tenantry serve exited with {proc.returncode}")
        try:
            httpx.get(f"{base}/api/admin/user", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"tenantry serve did not answer on {base} within {timeout:.0f} s")

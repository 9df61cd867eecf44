"""The real Unleash 8.2 (the peer of /work/shared/peers/unleash: README.txt there): its
starting variables, a check that it is empty, and its reset to empty."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

# The peer's INIT_ADMIN_API_TOKENS: Unleash's documented insecure example token, the same on
# every peer (not a secret of a run; recorded as a placeholder all the same).
ADMIN_API_TOKEN = "*:*.unleash-insecure-admin-api-token"
DEFAULT_URL = "http://127.0.0.1:4242"


def variables() -> dict[str, Any]:
    return {"token_admin_api": ADMIN_API_TOKEN}


def _get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, headers={"Authorization": ADMIN_API_TOKEN}, timeout=5.0)


def version(base: str) -> str:
    try:
        found = _get(base, "/api/admin/ui-config").json().get("version")
    except (httpx.HTTPError, ValueError):
        return "unknown"
    return str(found)


def user_count(base: str) -> int:
    r = _get(base, "/api/admin/user-admin")
    r.raise_for_status()
    return len(r.json()["users"])


def check_empty(base: str) -> None:
    """The corpus builds its state from empty: only the built-in admin may exist."""
    count = user_count(base)
    if count != 1:
        raise SystemExit(
            f"Unleash at {base} has {count} users, not just admin: reset it first "
            "(--reset-peer DIR, or README.txt's 'Reset to an empty Unleash')"
        )


def reset(peer_dir: Path, base: str, timeout: float = 90.0) -> None:
    """README.txt's 'Reset to an empty Unleash': stop it (its pid file), drop and create its
    database, start it, and wait until the admin user exists."""
    env = {**os.environ, "PEER_DIR": str(peer_dir)}
    pid_file = peer_dir / "unleash.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
        else:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
    psql = ["psql", "-h", "127.0.0.1", "-p", "5499", "-U", "postgres", "-q"]
    subprocess.run(  # noqa: S603 (fixed arguments)
        [*psql, "-c", "drop database if exists unleash", "-c", "create database unleash"],
        check=True,
        env=env,
    )
    subprocess.run(  # noqa: S603 (the peer's own script)
        [str(peer_dir / "run-unleash.sh")], check=True, env=env, cwd=peer_dir
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if user_count(base) == 1:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(1.0)
    raise SystemExit(f"Unleash at {base} did not come back empty within {timeout:.0f} s")

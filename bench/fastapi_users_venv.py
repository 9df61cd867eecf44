"""fastapi-users in its own virtualenv, for the comparison figure.

    python -m bench.fastapi_users_venv      # create / update bench/.venv-fastapi-users

`ensure()` creates bench/.venv-fastapi-users (git-ignored) with the interpreter running the
bench and installs bench/fastapi-users-requirements.txt into it once (a stamp holds the hash of
the requirements); `setup_and_command()` gives the token and the server command for
bench/fastapi_users_app.py.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

from bench.common import BENCH

VENV = BENCH / ".venv-fastapi-users"
REQUIREMENTS = BENCH / "fastapi-users-requirements.txt"
APP = BENCH / "fastapi_users_app.py"
STRATEGIES = ("jwt", "database")


def python() -> Path:
    return VENV / "bin" / "python"


def ensure(quiet: bool = True) -> Path:
    """The venv's python, installing the pinned requirements when they changed."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text().strip() == wanted and python().exists():
        return python()
    if not python().exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(python()), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("-q")
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, stdout=sys.stderr)
    stamp.write_text(wanted)
    return python()


def setup_token(database_url: str, strategy: str) -> str:
    """Tables, the user and a bearer token (the last line `setup` prints)."""
    env = {"FU_DATABASE_URL": database_url, "FU_STRATEGY": strategy, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(python()), str(APP), "setup"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"fastapi-users setup failed: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def serve_command(workers: int = 1) -> list[str]:
    """For bench.common.server (`{port}` is filled in there)."""
    return [str(python()), str(APP), "serve", "--port", "{port}", "--workers", str(workers)]


def serve_env(database_url: str, strategy: str) -> dict[str, str]:
    return {"FU_DATABASE_URL": database_url, "FU_STRATEGY": strategy}


if __name__ == "__main__":
    print(ensure(quiet=False))

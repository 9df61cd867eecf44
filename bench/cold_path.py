"""The cold path of `GET /v1/users/self` on its own: one worker with `TENANTRY_CACHE=off` (every
request a miss) over a bulk-loaded PostgreSQL organization, the server's CPU per request, and
the in-process cost of `directory.whoami.load` and of one cached answer's memory.

    python -m bench.cold_path [--cache on|off] [--seconds 8] [--profile out.txt]

`--profile` records the worker with py-spy (raw collapsed stacks) while the load runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from bench.common import ROOT, fresh_database, mint_token, server
from bench.loadgen import LoadSpec, run_load

BUSIEST = """SELECT subject_id FROM role_bindings WHERE subject_type = 'user'
             GROUP BY subject_id ORDER BY count(*) DESC LIMIT 1"""


async def _prepare(url: str, users: int) -> str:
    """A bulk-loaded organization; the personal token of its user with the most bindings."""
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.devdata.bulk import load_organization

    await load_organization(url, users=users, workspaces=10, deployments_per_workspace=3, seed=1)
    database = Database(load_settings(database_url=url))
    try:
        async with database.transaction(write=False) as db:
            user_id = str((await db.execute(text(BUSIEST))).scalar())
    finally:
        await database.dispose()
    return await mint_token(url, user_id)


async def in_process(url: str, secret: str, calls: int = 3000) -> dict[str, Any]:
    """CPU per `whoami.load`, and bytes per cached answer (tracemalloc)."""
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.db.generation import Generation
    from tenantry.directory import whoami
    from tenantry.faces.astro.users import self_body
    from tenantry.faces.hot import HotAnswer
    from tenantry.identity.cache import AuthCache
    from tenantry.identity.policy import DEFAULT_POLICY
    from tenantry.identity.usage import CallerUse

    database = Database(load_settings(database_url=url))
    try:
        for _ in range(200):
            await whoami.load(database, secret, DEFAULT_POLICY)
        started = time.process_time()
        for _ in range(calls):
            await whoami.load(database, secret, DEFAULT_POLICY)
        load_ms = 1000 * (time.process_time() - started) / calls
        cache = AuthCache(Generation())
        gc.collect()
        tracemalloc.start()
        for _ in range(2000):
            caller, view = await whoami.load(database, secret, DEFAULT_POLICY)
            body, until = self_body(None, caller, view)  # type: ignore[arg-type]
            answer = HotAnswer(bytes(memoryview(body)), CallerUse.of(caller), until, (), ())
            cache.put(os.urandom(32), answer, cache.mark(), None, caller.scopes)  # as hot.py keys
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return {"whoami_load_cpu_ms": round(load_ms, 3), "bytes_per_answer": held // 2000}
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", choices=("on", "off"), default="off")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--profile", help="py-spy raw output file")
    args = parser.parse_args()
    with fresh_database("postgres", "cold") as url:
        secret = asyncio.run(_prepare(url, args.users))
        log = Path("/tmp") / f"tenantry-cold-{os.getpid()}.log"  # noqa: S108
        env = {"TENANTRY_CACHE": args.cache}
        with server(url=url, workers=1, log_path=log, env=env) as srv:
            headers = {"Authorization": f"Bearer {secret}"}
            run_load(LoadSpec(srv.base, ["/v1/users/self"], headers=headers, seconds=1, warmup=0))
            proc = psutil.Process(srv.worker_pids()[0])
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [
                        str(ROOT / ".venv/bin/py-spy"),
                        "record",
                        "-p",
                        str(proc.pid),
                        "-r",
                        "500",
                        "-f",
                        "raw",
                        "-o",
                        args.profile,
                        "-d",
                        str(int(args.seconds)),
                    ],
                )
            before = proc.cpu_times()
            stats = run_load(
                LoadSpec(
                    srv.base, ["/v1/users/self"], headers=headers, seconds=args.seconds, warmup=0
                )
            )
            after = proc.cpu_times()
            if spy is not None:
                spy.wait()
        cpu = (after.user - before.user) + (after.system - before.system)
        result = {
            "cache": args.cache,
            "req_s": stats.req_s,
            "p99_ms": stats.p99_ms,
            "errors": stats.errors,
            "server_cpu_ms_per_request": round(1000 * cpu / max(1, stats.requests), 3),
            **asyncio.run(in_process(url, secret)),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

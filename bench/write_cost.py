"""The cost of one role change on an idle server (issue 15): the server CPU and latency of
`POST /v1/organizations/{org}/users/{user}/roles`, in process, over bench.mix's data.

    python -m bench.write_cost [--db postgres|sqlite] [--writes 200] [--profile out]

The writes go through the whole ASGI app (httpx.ASGITransport, no socket), one at a time, as
the mix's writer sends them (a member of the callers' own organization, their workspace
role toggled); CPU is the process's own (`time.process_time`), so the database server's
work is not in it. `--profile` records another round of writes with py-spy (raw collapsed
stacks, CPU samples only) into `out`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import time
from typing import Any

import httpx

from bench import mix
from bench.common import ROOT, default_pg_url

WARMUP = 30
# The CPU figure is the least of the batches' means: on a shared machine, other processes
# cost this one CPU too (caches, frequency), and only in some batches.
BATCHES = 4


async def _writes(client: httpx.AsyncClient, spec: dict[str, Any], n: int) -> list[float]:
    """`n` role changes one after another; their latencies in ms, sorted."""
    auth = {"Authorization": f"Bearer {spec['owner_token']}"}
    latencies = []
    for k in range(n):
        item = spec["writes"][k % len(spec["writes"])]
        role = mix.next_role(item["last"])
        item["last"] = role
        body = mix.with_marker(item["body"], spec["marker"], role)
        path = mix.ROLES.format(org=spec["org"], user=item["user"])
        started = time.perf_counter()
        answer = await client.post(path, json=body, headers=auth)
        latencies.append(1000 * (time.perf_counter() - started))
        if answer.status_code != 200:
            raise RuntimeError(f"role change refused: {answer.status_code} {answer.text}")
    return sorted(latencies)


def _spy(out: str) -> subprocess.Popen[bytes]:
    """py-spy on this very process, CPU samples only (idle waits left out)."""
    command = [str(ROOT / ".venv/bin/py-spy"), "record", "-p", str(os.getpid())]
    command += ["-r", "1000", "-f", "raw", "-o", out, "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    return spy


async def measure(url: str, spec: dict[str, Any], writes: int, profile: str | None) -> Any:
    from tenantry.app import create_app
    from tenantry.config import load_settings

    app = create_app(load_settings(database_url=url))
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://bench")
    async with app.router.lifespan_context(app), client:
        await _writes(client, spec, WARMUP)
        latencies, cpu = [], []
        for _ in range(BATCHES):
            started = time.process_time()
            latencies += await _writes(client, spec, writes // BATCHES)
            cpu.append(1000 * (time.process_time() - started) / (writes // BATCHES))
        if profile:
            spy = _spy(profile)
            await _writes(client, spec, writes)
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait()
    latencies.sort()
    return {
        "writes": writes,
        "cpu_ms_per_write": round(min(cpu), 2),
        "cpu_ms_batches": [round(c, 2) for c in cpu],
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--profile", help="py-spy raw output file")
    args = parser.parse_args()
    with mix.dataset(args.db, 2000, default_pg_url(), print) as ds:
        case = mix.Case(db=args.db, workers=1, callers=2000, rate=20, where="own")
        spec = mix.writer_spec(ds, case, "http://bench", 60)
        result = asyncio.run(measure(ds.url, spec, args.writes, args.profile))
    print(json.dumps({"db": args.db, **result}))


if __name__ == "__main__":
    main()

"""CPU cost of one request inside the application, without a server or a network.

    python -m bench.asgi_cost                      # PostgreSQL, 5 000 requests per path
    python -m bench.asgi_cost --db sqlite --requests 20000

Calls the ASGI app directly (a synthetic scope, in-memory receive/send) and divides the
process CPU time (time.process_time) by the number of requests, for Tenantry's three hot
GETs and for bench.suite's ceiling (a bare ASGI app answering a constant body of the same
size), minus uvicorn. CPU time barely moves when other processes share the
machine, unlike req/s, so this is the figure to watch while optimising the hot path; the
suite's wrk figures add uvicorn's HTTP parsing and the socket writes, the same for both.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import fresh_database, mint_token

PATHS = ("/v1/users/self", "/api/v1/user", "/api/admin/user")
Headers = list[tuple[bytes, bytes]]


async def call(app: Any, path: str, headers: Headers) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"]), bytes(sent[1].get("body", b""))


async def cost(app: Any, path: str, headers: Headers, requests: int) -> tuple[float, int]:
    """CPU µs per request after a warm-up (which also fills Tenantry's caches)."""
    for _ in range(200):
        status, body = await call(app, path, headers)
    if status != 200:
        raise SystemExit(f"{path}: {status} {body[:200]!r}")
    start = time.process_time()
    for _ in range(requests):
        await call(app, path, headers)
    return (time.process_time() - start) / requests * 1e6, len(body)


def ceiling(size: int) -> Any:
    """The suite's ceiling app (a bare ASGI callable) with a body of `size` bytes."""
    import os

    from bench import ceiling_app

    os.environ[ceiling_app.ENV] = str(size)
    return ceiling_app.create_app()


async def measure(url: str, requests: int) -> list[tuple[str, float, int]]:
    from tenantry.app import create_app
    from tenantry.config import load_settings
    from tenantry.db.engine import Database
    from tenantry.directory import users
    from tenantry.directory.users import UserFields
    from tenantry.identity.principals import system_principal

    settings = load_settings(database_url=url)
    database = Database(settings)
    async with database.transaction() as db:
        user = await users.create_user(
            db, system_principal(), "cost@example.com", UserFields(full_name="Cost")
        )
    token = await mint_token(url, user.id)
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    app = create_app(settings, database)
    rows = []
    try:
        for path in PATHS:
            rows.append((path, *await cost(app, path, headers, requests)))
        size = rows[0][2]
        rows.append(("ceiling (bare ASGI app)", *await cost(ceiling(size), "/", headers, requests)))
    finally:
        await database.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args(argv)
    with fresh_database(args.db, "asgi_cost") as url:
        rows = asyncio.run(measure(url, args.requests))
    ceiling_us = rows[-1][1]
    print(f"| request ({args.db}) | CPU µs / request | body bytes | vs ceiling |")
    print("|---|---:|---:|---:|")
    for name, micros, size in rows:
        print(f"| `{name}` | {micros:.1f} | {size} | {micros / ceiling_us:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
